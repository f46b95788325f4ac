"""Time-boxed captures: strace of a named process, tcpdump on an interface.

Both run under ``timeout -s INT <seconds>`` so strace detaches and tcpdump
flushes cleanly; reaching the end of the window is the normal way for a capture
to finish, so timeout's 124 becomes 0. The runner's own bound is the window plus
``SLACK`` seconds.
"""

from __future__ import annotations

from diagnostics.probes.base import PCAP_CAP, Params, Probe
from diagnostics.probes.params import Param
from diagnostics.probes.privilege import AS_ROOT
from diagnostics.probes.shell import PIDS_NAMED, need, q, script

SLACK = 10
MAX_PIDS = 64  # strace -p per process; a few dozen workers is plenty of evidence
# glibc >= 2.33 implements select() with pselect6, and poll() is ppoll on arm64; an event loop waits in
# epoll_wait/epoll_pwait on what epoll_ctl registered: without these a connect()'s wait is invisible.
DEFAULT_SYSCALLS = (
    "connect,accept,accept4,read,write,sendto,recvfrom,poll,ppoll,select,pselect6,"
    "epoll_wait,epoll_pwait,epoll_ctl,close"
)
# The trace's own clock when the window closed: a call still blocked then waited at least until it.
WINDOW_END_NOTE = "probe: window ended at "
WINDOW_ENDED = '[ "$rc" = 124 ] && rc=0; exit "$rc";'


def _window(p: Params) -> int:
    return p["seconds"] + SLACK


def _seconds(p: Params) -> int:
    """How long the capture waits by design (it may end sooner: tcpdump at its packet count)."""
    return p["seconds"]


def _strace(p: Params) -> str:
    name = p["process"]
    return script(
        need("timeout"),
        need("strace"),
        PIDS_NAMED,
        AS_ROOT,
        f"name={q(name)};",
        "set --; n=0;",
        f"for pid in $(pids_named {q(name[:15])}); do n=$((n + 1));",
        f'if [ "$n" -le {MAX_PIDS} ]; then set -- "$@" -p "$pid"; fi; done;',
        'if [ "$n" = 0 ]; then echo "probe: no process named $name"; exit 1; fi;',
        f'if [ "$n" -gt {MAX_PIDS} ]; then echo "probe: tracing the first {MAX_PIDS} of $n processes named $name";',
        'else echo "probe: tracing $n process(es) named $name"; fi;',
        f'set -- strace -f -tt -T -e {q("trace=" + p["syscalls"])} "$@";',
        'root_check "$@" || root_denied strace;',
        # strace reports on stderr; the trace is the evidence, so it goes to stdout.
        f'root_timed INT {q(p["seconds"])} "$@" 2>&1; rc=$?;',
        # strace -tt prints local wall-clock time; date +%N is GNU/busybox, "N" where it is not known.
        f'echo "{WINDOW_END_NOTE}$(date +%H:%M:%S.%N | cut -c1-15)";',
        WINDOW_ENDED,
    )


def _tcpdump(p: Params) -> str:
    return script(
        need("timeout"),
        need("tcpdump"),
        AS_ROOT,
        f"f={q(p['bpf'] or '')};",
        # Leave our own SSH session out, or the capture of `-i any` fills with the pcap
        # bytes it is itself sending back. SSH_CONNECTION is "client cport server sport".
        'own=; if [ -n "${SSH_CONNECTION:-}" ]; then set -f; set -- $SSH_CONNECTION; set +f;',
        'case "$1$2$4" in *[!0-9A-Fa-f.:]*) ;; *) if [ "$#" = 4 ]; then'
        ' own="not (host $1 and tcp port $2 and tcp port $4)"; fi;; esac; fi;',
        'if [ -n "$f" ] && [ -n "$own" ]; then f="($f) and $own"; elif [ -n "$own" ]; then f=$own; fi;',
        f"set -- tcpdump -i {q(p['interface'])} -s 0 -U -w - -c {q(p['count'])};",
        'if [ -n "$f" ]; then set -- "$@" -- "$f"; fi;',
        'root_check "$@" || root_denied tcpdump;',
        f'root_timed INT {q(p["seconds"])} "$@"; rc=$?;',
        WINDOW_ENDED,
    )


PROBES = (
    Probe(
        "strace",
        "System calls of a process",
        "Attaches to every process with this exact name (and the children they fork) for a few seconds "
        "and records the chosen system calls with timestamps and durations: a connect() that sits for "
        "26 s is a lookup or ident callback the service is waiting on.",
        (
            Param("process", "process", required=True, help="Exact process name as ps shows it, e.g. tcpserver."),
            Param("seconds", "seconds", default=15, help="How long to watch (1-60 s)."),
            Param(
                "syscalls",
                "syscalls",
                default=DEFAULT_SYSCALLS,
                help="Comma-separated system calls or strace classes, e.g. connect,poll or %network.",
            ),
        ),
        _strace,
        timeout=_window,
        waits=_seconds,
        root_tools=("strace",),
    ),
    Probe(
        "tcpdump",
        "Packet capture",
        "Captures packets to a pcap file for a few seconds (or until the packet count), leaving out this "
        "SSH session: unanswered SYNs to port 113, RSTs that do not close a connection, retransmits.",
        (
            Param("interface", "interface", default="any", help="Interface name, or 'any' for all."),
            Param("seconds", "seconds", default=15, help="How long to capture (1-60 s)."),
            Param("count", "count", default=1000, help="Stop after this many packets (1-10000)."),
            Param(
                "bpf",
                "bpf",
                help="Capture filter, e.g. 'tcp port 113 or tcp port 25' or 'host 10.0.0.1'. Empty for all.",
            ),
        ),
        _tcpdump,
        timeout=_window,
        waits=_seconds,
        output_cap=PCAP_CAP,
        binary=True,
        root_tools=("tcpdump",),
    ),
)
