"""Mail and service probes: mail logs, queues, and the settings behind slow sessions."""

from __future__ import annotations

from diagnostics.probes.base import LOG_CAP, Params, Probe
from diagnostics.probes.shell import BOUNDED, have, header, q, script, tail_existing
from diagnostics.probes.system import lines_param

MAIL_LOGS = (
    "/var/log/maillog",
    "/var/log/mail.log",
    "/var/log/exim4/mainlog",
    "/var/log/exim/main.log",
    "/var/log/qmail/current",
    "/var/log/qmail/smtpd/current",
)

# Where tcpserver's options live (-Rt0 turns off the ident callback to port 113):
# daemontools/runit run scripts, and Plesk's xinetd entries for qmail.
RUN_SCRIPTS = (
    "/service/*/run",
    "/var/qmail/supervise/*/run",
    "/etc/sv/*/run",
    "/etc/xinetd.d/smtp_psa",
    "/etc/xinetd.d/smtps_psa",
    "/etc/xinetd.d/submission_psa",
)
HAVE_E = 'command -v "$e" >/dev/null 2>&1'  # the loop variable, not a fixed tool name


def _mail_log(p: Params) -> str:
    return script(*tail_existing(MAIL_LOGS, p["lines"], journal_match="SYSLOG_FACILITY=2", missing="no mail log found"))


def _mail_queue(p: Params) -> str:
    return script(
        BOUNDED,
        "found=0;",
        f"if {have('postqueue')}; then found=1; {header('postqueue -p (summary)')}"
        " bounded 20 postqueue -p 2>&1 | tail -n 1; fi;",
        "for e in exim exim4; do",
        f'if {HAVE_E}; then found=1; echo "==> $e -bpc <=="; bounded 20 "$e" -bpc 2>&1; break; fi;',
        "done;",
        "if [ -x /var/qmail/bin/qmail-qstat ]; then found=1;"
        f" {header('qmail-qstat')} bounded 20 /var/qmail/bin/qmail-qstat 2>&1; fi;",
        f'if [ "$found" = 0 ] && {have("mailq")}; then found=1; {header("mailq (summary)")}'
        " bounded 20 mailq 2>&1 | tail -n 1; fi;",
        'if [ "$found" = 0 ]; then echo "probe: no postfix, exim, qmail or sendmail queue tool found"; exit 1; fi;',
    )


# The value of a config option in a command line (NULs turned to spaces): -C/-c/-f/--config PATH,
# --config=PATH or -CPATH/-cPATH/-fPATH; `opts` is the option letters this program uses for it.
_CONFIG_ARG_AWK = (
    "{ for (i = 1; i <= NF; i++) { a = $i; "
    'if ((a == "--config" || (length(a) == 2 && index(opts, substr(a, 2, 1)) && substr(a, 1, 1) == "-")) '
    "&& i < NF) { print $(i + 1); exit } "
    "if (a ~ /^--config=/) { print substr(a, 10); exit } "
    'if (substr(a, 1, 1) == "-" && index(opts, substr(a, 2, 1)) && substr(a, 3, 1) == "/") '
    "{ print substr(a, 3); exit } "
    "} }"
)
# Programs whose settings this probe reads from the running process, and the option naming their config.
_OWNER_CASE = (
    'case "$n" in tcpserver|tcp-env) opts=;; exim|exim4|sendmail) opts=C;; master) opts=c;; varnishd) opts=n;;'
    " *) continue;; esac;"
)
MAX_OWNERS = 20


def _socket_owners() -> tuple[str, ...]:
    """Settings of the processes that own listening TCP sockets, read as each was started: its command line
    (tcpserver keeps its options there) and the config its -C/-c (or varnishd's -n instance) names."""
    ss_pids = "grep -oE 'pid=[0-9]+|\\\",[0-9]+,' | tr -cd '0-9\\n'"  # users:(("x",pid=1,fd=3)) and ("x",1,3)
    return (
        "owners=;",
        f"if {have('ss')}; then owners=$(ss -ltnp 2>/dev/null | {ss_pids});",
        f"elif {have('netstat')}; then owners=$(netstat -ltnp 2>/dev/null | awk '{{ print $NF }}' | cut -d/ -f1); fi;",
        f"owners=$(printf '%s\\n' $owners | grep -E '^[0-9]+$' | sort -un | head -n {MAX_OWNERS});",
        "for p in $owners; do",
        'n=; { read -r n < "/proc/$p/comm"; } 2>/dev/null;',
        _OWNER_CASE,
        "args=$(tr '\\000' ' ' < \"/proc/$p/cmdline\" 2>/dev/null); found=1;",
        'echo "==> process $p $n <=="; printf "%s\\n" "$args";',
        f'c=$(printf "%s\\n" "$args" | awk -v opts="$opts" {q(_CONFIG_ARG_AWK)});',
        # An absolute path of plain characters; varnishd's -n may also be a bare instance name.
        'raw=$c; case "$c" in /*) case "$c" in *[!A-Za-z0-9_./@+-]*|*..*) c=;; esac;;'
        ' *) if [ "$n" != varnishd ]; then c=; fi; case "$c" in *[!A-Za-z0-9_.-]*|-*) c=;; esac;; esac;',
        'if [ -n "$raw" ] && [ -z "$c" ]; then echo "probe: $n (pid $p) names a config this probe will not use"; fi;',
        'if [ -z "$c" ]; then continue; fi;',
        'case "$n" in',
        'exim|exim4) echo "==> $n -bP rfc1413_query_timeout rfc1413_hosts -C $c <==";'
        ' bounded 8 "$n" -C "$c" -bP rfc1413_query_timeout rfc1413_hosts 2>&1;;',
        'master) if command -v postconf >/dev/null 2>&1; then echo "==> postconf -n -c $c <==";'
        ' bounded 8 postconf -c "$c" -n 2>&1; fi;;',
        'sendmail) if [ -r "$c" ]; then echo "==> sendmail -C $c (timeouts) <=="; grep -E "Timeout|confTO" "$c"; fi;;',
        'varnishd) if command -v varnishadm >/dev/null 2>&1; then echo "==> varnishadm -n $c param.show <==";'
        ' bounded 8 varnishadm -n "$c" param.show 2>&1; fi;;',
        "esac;",
        "done;",
    )


def _service_settings(p: Params) -> str:
    sendmail_mc = "/etc/mail/sendmail.mc"
    return script(
        BOUNDED,
        "found=0;",
        *_socket_owners(),
        f"if {have('varnishadm')}; then found=1; {header('varnishadm param.show')}"
        " bounded 8 varnishadm param.show 2>&1; fi;",
        f"for f in {' '.join(RUN_SCRIPTS)}; do",
        'if [ -f "$f" ] && [ -r "$f" ]; then found=1; echo "==> $f <=="; awk \'NR <= 200\' "$f"; fi;',
        "done;",
        "for f in /var/qmail/control/timeout*; do",
        'if [ -f "$f" ] && [ -r "$f" ]; then found=1; echo "==> $f <=="; head -n 1 "$f"; fi;',
        "done;",
        f"if [ -r {sendmail_mc} ]; then found=1; {header(sendmail_mc + ' (timeouts)')}"
        f" grep -E 'Timeout|confTO' {sendmail_mc}; fi;",
        "for e in exim exim4; do",
        f'if {HAVE_E}; then found=1; echo "==> $e -bP rfc1413_query_timeout rfc1413_hosts <==";'
        ' bounded 8 "$e" -bP rfc1413_query_timeout rfc1413_hosts 2>&1; break; fi;',
        "done;",
        f"if {have('postconf')}; then found=1; {header('postconf -n')} bounded 8 postconf -n 2>&1; fi;",
        'if [ "$found" = 0 ]; then echo "probe: no varnish, tcpserver/qmail, sendmail, exim or postfix settings found";'
        " fi;",
    )


PROBES = (
    Probe(
        "mail_log",
        "Mail log",
        "The newest lines of each mail log that exists (maillog, mail.log, exim mainlog, qmail current), "
        "each under a '==> path <==' header; journald's mail facility if none exists.",
        (lines_param(500),),
        _mail_log,
        output_cap=LOG_CAP,
        root_tools=("tail",),
    ),
    Probe(
        "mail_queue",
        "Mail queue size",
        "How many messages wait in the queue (postfix, exim, qmail or sendmail): a queue that keeps growing "
        "means deliveries are hanging somewhere.",
        (),
        _mail_queue,
        timeout=30,
    ),
    Probe(
        "service_settings",
        "Mail and cache service settings",
        "The settings that decide how long a service waits: first those of the processes that own "
        "listening sockets, as each was started (tcpserver's command line; the config named by exim's or "
        "sendmail's -C, postfix master's -c, varnishd's -n instance), then varnish parameters, "
        "tcpserver/qmail run scripts (-Rt0 = no ident lookups), qmail timeouts, sendmail Timeout/confTO "
        "lines, exim's rfc1413 (ident) settings and postfix's non-default settings. Each only where installed.",
        (),
        _service_settings,
        timeout=45,
    ),
)
