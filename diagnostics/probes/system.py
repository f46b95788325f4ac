"""Host-level probes: processes, file descriptors, mounts, disk, memory, load, logs, sshd."""

from __future__ import annotations

from diagnostics.probes.base import LOG_CAP, Params, Probe
from diagnostics.probes.params import Param
from diagnostics.probes.privilege import AS_ROOT, NEEDS_ROOT, NEEDS_ROOT_NOTE
from diagnostics.probes.shell import BOUNDED, PIDS_NAMED, have, header, need, q, script, tail_existing

SYSTEM_LOGS = ("/var/log/messages", "/var/log/syslog", "/var/log/kern.log")
# Package managers' own logs, where an install's failing scripts show (Debian's term.log keeps their output).
INSTALL_LOGS = (
    "/var/log/apt/term.log",
    "/var/log/dpkg.log",
    "/var/log/yum.log",
    "/var/log/dnf.log",
    "/var/log/dnf.rpm.log",
    "/var/log/zypp/history",
)
AUTH_LOGS = ("/var/log/secure", "/var/log/auth.log")


def lines_param(default: int) -> Param:
    return Param("lines", "lines", default=default, help="How many of the newest lines to show (1-5000).")


def _processes(p: Params) -> str:
    return script(
        need("ps"),
        "ps -ww -eo pid,ppid,user,stat,etimes,pcpu,rss,nlwp,args --sort=-pcpu 2>/dev/null || ps auxww;",
    )


# fd_usage joins three streams tagged C (comm), L (limits) and F (one line per open fd)
# in one awk pass: a fork per process would take seconds on a busy host. Sorted by the
# share of the soft limit in use, then by count; name may contain spaces, so open and
# soft_limit are always the last two fields.
_FD_AWK = (
    '$1 == "F" { split($2, a, "/"); n[a[3]]++; next } '
    '$1 == "L" { split($2, a, "/"); soft[a[3]] = $(NF - 2); next } '
    '$1 == "C" { s = substr($0, 3); i = index(s, ":"); split(substr(s, 1, i - 1), a, "/"); '
    "name[a[3]] = substr(s, i + 1); next } "
    'END { for (p in n) { if (want != "" && name[p] != want) continue; lim = soft[p]; '
    "r = (lim ~ /^[0-9]+$/ && lim > 0) ? n[p] / lim : 0; "
    'printf "%.6f\\t%d\\t%s %s %d %s\\n", r, n[p], p, (p in name) ? name[p] : "?", n[p], (lim == "") ? "?" : lim } }'
)


def _fd_usage(p: Params) -> str:
    want = p["process"][:15] if p["process"] else ""  # /proc/<pid>/comm keeps 15 characters
    return script(
        PIDS_NAMED,
        AS_ROOT,
        f"name={q(p['process'] or '')}; want={q(want)};",
        'if [ -n "$want" ] && [ -z "$(pids_named "$want")" ]; then echo "probe: no process named $name"; exit 1; fi;',
        # awk, not sh's read: dash reads byte by byte and /proc/sys files end after the first byte.
        "awk '{ print \"file-nr\", $1, $2, $3 }' /proc/sys/fs/file-nr 2>/dev/null;",
        "echo 'pid name open soft_limit';",
        "tab=$(printf '\\t');",
        # Other users' fd directories are root's to read: without root only the login user's own
        # processes would be counted, so that listing is marked "needs root" (exit 77 at the end).
        "set -- find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1; denied=;",
        'if ! root_check "$@"; then denied=1; echo "' + NEEDS_ROOT_NOTE + "fd_usage reads other users' open files"
        " as root and $(id -un) may not (${root_why:-no reason given}); only its own processes are counted;"
        " the server's Access page lists the sudoers lines that allow it\";"
        " root_mode=0; fi;",
        "{ grep -H '' /proc/[0-9]*/comm 2>/dev/null | sed 's/^/C /';",
        "grep -H '^Max open files' /proc/[0-9]*/limits 2>/dev/null | sed 's/^/L /';",
        "root_timed TERM 20 \"$@\" 2>/dev/null | sed 's/^/F /'; }",
        f'| awk -v want="$want" {q(_FD_AWK)}',
        '| sort -t "$tab" -k1,1nr -k2,2nr | cut -f3- | head -n 200;',
        f'if [ -n "$denied" ]; then exit {NEEDS_ROOT}; fi;',
    )


def _mounts(p: Params) -> str:
    findmnt = "findmnt -rno TARGET,SOURCE,FSTYPE,OPTIONS"
    return script(
        header("/proc/self/mountinfo"),
        "cat /proc/self/mountinfo;",
        f"if {have('findmnt')}; then {header(findmnt)} {findmnt}; fi;",
    )


def _disk(p: Params) -> str:
    # df blocks on a dead NFS server; each call is bounded so the probe still reports.
    return script(
        need("df"),
        BOUNDED,
        header("df -PT"),
        "bounded 10 df -PT;",
        header("df -Pi"),
        "bounded 10 df -Pi;",
    )


def _memory(p: Params) -> str:
    return script(
        f"if {have('free')}; then {header('free -b')} free -b; fi;",
        header("/proc/meminfo"),
        "cat /proc/meminfo;",
        header("/proc/swaps"),
        "cat /proc/swaps 2>/dev/null;",
        header("/proc/vmstat"),
        "grep -E '^(pswp|pgmajfault|oom_kill|allocstall)' /proc/vmstat 2>/dev/null;",
    )


def _load(p: Params) -> str:
    return script(
        f"if {have('uptime')}; then {header('uptime')} uptime; fi;",
        header("/proc/loadavg"),
        "cat /proc/loadavg;",
        header("nproc"),
        "nproc 2>/dev/null || grep -c '^processor' /proc/cpuinfo;",
        f"if {have('vmstat')}; then {header('vmstat 1 2')} vmstat 1 2; fi;",
    )


def _kernel_log(p: Params) -> str:
    n = q(p["lines"])
    return script(
        need("dmesg"),
        "{ dmesg -T 2>/dev/null || dmesg 2>&1 ||",
        f"{{ {have('journalctl')} && journalctl --no-pager -k -b -n {n} 2>&1; }}; }}",
        f"| tail -n {n};",
    )


def _system_log(p: Params) -> str:
    return script(
        *tail_existing(SYSTEM_LOGS, p["lines"], journal_match="", missing=f"none of {', '.join(SYSTEM_LOGS)} exists")
    )


def _auth_log(p: Params) -> str:
    return script(
        *tail_existing(
            AUTH_LOGS,
            p["lines"],
            journal_match="SYSLOG_FACILITY=4 SYSLOG_FACILITY=10",
            missing=f"none of {', '.join(AUTH_LOGS)} exists",
        )
    )


def _install_log(p: Params) -> str:
    return script(
        *tail_existing(
            INSTALL_LOGS,
            p["lines"],
            journal_match="_COMM=dpkg _COMM=rpm",
            missing=f"none of {', '.join(INSTALL_LOGS)} exists",
        )
    )


def _log_tail(p: Params) -> str:
    path = q(p["log_path"])
    return script(
        AS_ROOT,
        f"f={path}; n={q(p['lines'])};",
        'if [ ! -e "$f" ]; then echo "probe: $f does not exist"; exit 1; fi;',
        'if [ -r "$f" ]; then tail -n "$n" "$f";',
        'elif root_check tail -n "$n" "$f"; then root_timed TERM 20 tail -n "$n" "$f";',
        'else root_denied "reading $f"; fi;',
    )


# `-f PATH` (or `-fPATH`) from a process's command line. The listener of OpenSSH >= 7.9 rewrites its
# title into one string ("sshd: /usr/sbin/sshd -D -f /etc/ssh/alt_config [listener] ..."), older ones
# keep NUL-separated argv: NULs become spaces and both read the same.
_SSHD_F_AWK = (
    '{ for (i = 1; i <= NF; i++) { if ($i == "-f" && i < NF) { print $(i + 1); exit } '
    "if ($i ~ /^-f\\//) { print substr($i, 3); exit } } }"
)
# Config paths taken from the process list: absolute, plain characters only (they are word-split and
# passed as arguments), never with "..". Anything else is skipped with a note.
SAFE_PATH_CASE = 'case "$c" in /*) ;; *) c=;; esac; case "$c" in *[!A-Za-z0-9_./@+-]*|*..*) c=;; esac;'


def _sshd_config(p: Params) -> str:
    # sshd -T prints the effective settings (UseDNS, LoginGraceTime...) but needs root and host keys;
    # it is asked about the config each running daemon was started with (-f), as that daemon reads
    # it; otherwise the files are shown as written, comments and blanks dropped.
    return script(
        PIDS_NAMED,
        AS_ROOT,
        "confs=; n=0;",
        "for p in $(pids_named sshd); do",
        f"c=$(tr '\\000' ' ' < \"/proc/$p/cmdline\" 2>/dev/null | awk {q(_SSHD_F_AWK)});",
        'if [ -z "$c" ]; then continue; fi; raw=$c;',
        SAFE_PATH_CASE,
        'if [ -z "$c" ]; then echo "probe: sshd (pid $p) reads a config path this probe will not use";'
        ' printf "%s\\n" "$raw" >&2; continue; fi;',
        'case " $confs " in *" $c "*) ;; *) confs="$confs $c"; n=$((n + 1));; esac;',
        'if [ "$n" -ge 4 ]; then break; fi;',  # a bound on the sshd -T calls, whatever runs here
        "done;",
        "shown=0;",
        f"if {have('sshd')}; then",
        "for c in ${confs:--}; do",
        'if [ "$c" = - ]; then title="sshd -T"; set -- sshd -T;',
        'else title="sshd -T -f $c"; set -- sshd -T -f "$c"; fi;',
        # sudo only where the login user is not root (root_check): see diagnostics.probes.privilege.
        'if root_check "$@"; then out=$(root_timed TERM 10 "$@" 2>&1); rc=$?;',
        f"else out=$root_why; rc={NEEDS_ROOT}; fi;",
        'if [ "$rc" = 0 ]; then shown=1; echo "==> $title <=="; printf "%s\\n" "$out";',
        f'elif [ "$rc" = {NEEDS_ROOT} ]; then echo "probe: $title needs root and $(id -un) may not run it through sudo,'
        ' showing the files instead"; printf "%s\\n" "$out" >&2;',
        'else echo "probe: $title failed (exit $rc), showing the files instead"; printf "%s\\n" "$out" >&2; fi;',
        "done;",
        "fi;",
        'if [ "$shown" = 0 ]; then',
        'files=${confs:-"/etc/ssh/sshd_config"};',
        "for f in $files /etc/ssh/sshd_config.d/*.conf; do",
        'if [ -r "$f" ]; then shown=1; echo "==> $f <=="; grep -Ev \'^[[:space:]]*(#|$)\' "$f"; fi;',
        "done;",
        'if [ "$shown" = 0 ]; then echo "probe: neither sshd -T nor $files is available"; exit 1; fi;',
        "fi;",
    )


PROBES = (
    Probe(
        "processes",
        "Processes by CPU",
        "Every process with parent, user, state, age in seconds, CPU, memory and threads, busiest first.",
        (),
        _processes,
    ),
    Probe(
        "fd_usage",
        "Open files against each process's limit",
        "One line per process, 'pid name open soft_limit', closest to its 'Max open files' soft limit first "
        "(top 200), after the system-wide 'file-nr allocated unused max' line. Running out of file "
        "descriptors shows up here before it shows up as 'Too many open files'.",
        (Param("process", "process", help="Only processes with this name, e.g. varnishd."),),
        _fd_usage,
        root_tools=("find",),
    ),
    Probe(
        "mounts",
        "Mounts and their options",
        "The mount table with options (noexec, ro, nosuid...): a /tmp mounted noexec breaks installers and "
        "mail scanners that unpack and run helpers there.",
        (),
        _mounts,
    ),
    Probe("disk", "Disk space and inodes", "Free space and free inodes per filesystem (df -PT, df -Pi).", (), _disk),
    Probe(
        "memory",
        "Memory and swap",
        "free -b, /proc/meminfo, swap devices, and swap/OOM counters from /proc/vmstat.",
        (),
        _memory,
    ),
    Probe(
        "load",
        "Load and CPU count",
        "uptime, /proc/loadavg, the CPU count, and a one-second vmstat sample (run queue, I/O wait).",
        (),
        _load,
        waits=1,  # vmstat 1 2
    ),
    Probe(
        "kernel_log",
        "Kernel messages",
        "The newest kernel ring buffer lines with wall-clock times: driver errors such as "
        "'No irq handler for vector', link flaps, OOM kills, file-max warnings.",
        (lines_param(300),),
        _kernel_log,
        output_cap=LOG_CAP,
    ),
    Probe(
        "system_log",
        "System log",
        "The newest lines of each of /var/log/messages, /var/log/syslog and /var/log/kern.log that exist "
        "(journald if none does), each under a '==> path <==' header.",
        (lines_param(300),),
        _system_log,
        output_cap=LOG_CAP,
        root_tools=("tail",),
    ),
    Probe(
        "auth_log",
        "Login log",
        "The newest lines of /var/log/secure or /var/log/auth.log (journald if neither exists): slow or "
        "failed SSH logins, reverse-lookup warnings.",
        (lines_param(300),),
        _auth_log,
        output_cap=LOG_CAP,
        root_tools=("tail",),
    ),
    Probe(
        "install_log",
        "Package install log",
        "The newest lines of each package manager log that exists (apt's term.log with the install scripts' "
        "own output, dpkg.log, yum/dnf, zypper), each under a '==> path <==' header: installs that failed "
        "because /tmp is noexec or a module is missing.",
        (lines_param(500),),
        _install_log,
        output_cap=LOG_CAP,
        root_tools=("tail",),
    ),
    Probe(
        "log_tail",
        "Tail of a log file",
        "The newest lines of one log file from the allowed list.",
        (
            Param("log_path", "log_path", required=True, help="Which log file, e.g. /var/log/maillog."),
            lines_param(500),
        ),
        _log_tail,
        output_cap=LOG_CAP,
        root_tools=("tail",),
    ),
    Probe(
        "sshd_config",
        "SSH server settings",
        "The effective sshd settings (sshd -T, needs root) of the config each running sshd was started "
        "with (its -f, found in the process list; /etc/ssh/sshd_config otherwise), or the config files "
        "without comments: UseDNS yes makes every login wait on reverse DNS.",
        (),
        _sshd_config,
        root_tools=("sshd",),
    ),
)
