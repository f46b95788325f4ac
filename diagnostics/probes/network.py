"""Network probes: sockets, listeners, interfaces, resolvers."""

from __future__ import annotations

from diagnostics.probes.base import SOCKETS_CAP, Params, Probe
from diagnostics.probes.params import Param
from diagnostics.probes.shell import NOT_INSTALLED, NOW_MS, have, header, need, q, script

# Socket states named as ss names them, whichever tool produced the listing, so the
# summary reads the same on a host with only netstat or only /proc. `port` (awk -v)
# keeps sockets whose local or peer address ends in :port; ss and netstat both print
# local and peer as fields 4 and 5, /proc/net/tcp as hex in fields 2 and 3.
_ON_PORT = '(port == "" || $4 ~ (":" port "$") || $5 ~ (":" port "$"))'
_SS_STATES = f'NR > 1 && {_ON_PORT} {{ n[$1]++ }} END {{ for (s in n) print "state", s, n[s] }}'
_NETSTAT_STATES = (
    'BEGIN { m["ESTABLISHED"] = "ESTAB"; m["FIN_WAIT1"] = "FIN-WAIT-1"; m["FIN_WAIT2"] = "FIN-WAIT-2"; '
    'm["CLOSE"] = "UNCONN" } '
    f"$1 ~ /^tcp/ && {_ON_PORT} "
    '{ s = ($6 in m) ? m[$6] : $6; gsub(/_/, "-", s); n[s]++ } '
    'END { for (s in n) print "state", s, n[s] }'
)
# ss -i prints a line of TCP info under each socket (600 bytes of it); only lastsnd and lastrcv
# (ms since data last went out and came in) are kept, appended to the socket's own line, so the
# listing stays one line per socket and its size barely grows. They tell a connection that
# moves from one where nothing has moved for minutes (a hung upstream).
_SS_FOLD = (
    'NR == 1 { sub(/ +$/, ""); print; next } '
    '/^[ \t]/ { if (row != "") { for (i = 1; i <= NF; i++) if ($i ~ /^last(snd|rcv):/) row = row " " $i; '
    'print row; row = "" } next } '
    f'{{ if (row != "") print row; sub(/ +$/, ""); row = {_ON_PORT} ? $0 : "" }} '
    'END { if (row != "") print row }'
)
_PROC_ON_PORT = '(port == "" || $2 ~ (":" port "$") || $3 ~ (":" port "$"))'
_PROC_STATES = (
    'BEGIN { split("ESTAB SYN-SENT SYN-RECV FIN-WAIT-1 FIN-WAIT-2 TIME-WAIT UNCONN CLOSE-WAIT LAST-ACK '
    'LISTEN CLOSING NEW-SYN-RECV", name, " "); hex = "0123456789ABCDEF" } '
    f"$4 ~ /^[0-9A-Fa-f][0-9A-Fa-f]$/ && {_PROC_ON_PORT} {{ h = toupper($4); "
    "i = (index(hex, substr(h, 1, 1)) - 1) * 16 + index(hex, substr(h, 2, 1)) - 1; "
    "n[(i in name) ? name[i] : h]++ } "
    'END { for (s in n) print "state", s, n[s] }'
)


# The host's own limits the socket counts are judged against, one "name value..." line each.
SOCKET_LIMITS = (
    "net.ipv4.ip_local_port_range",  # the ephemeral ports outgoing connections take
    "net.core.somaxconn",  # the cap on every listen backlog
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.tcp_max_tw_buckets",  # TIME-WAIT sockets beyond this are destroyed early
)


def _socket_limits() -> str:
    # awk, not sh's read: dash reads byte by byte and /proc/sys files end after the first byte.
    reads = " ".join(
        f"awk -v k={q(name)} '{{ $1 = $1; print k, $0 }}' {q('/proc/sys/' + name.replace('.', '/'))} 2>/dev/null;"
        for name in SOCKET_LIMITS
    )
    return f"{header('/proc/sys limits')} {reads}"


def _sockets(p: Params) -> str:
    return script(
        f"port={q(p['port'] or '')}; hexport=;",
        'if [ -n "$port" ]; then hexport=$(printf "%04X" "$port"); fi;',
        f"if {have('ss')}; then",
        f'ss -tan | awk -v port="$port" {q(_SS_STATES)} | sort;',
        f'{header("ss -tanpo")} ss -tanpoi | awk -v port="$port" {q(_SS_FOLD)};',
        f"elif {have('netstat')}; then",
        f'netstat -tan | awk -v port="$port" {q(_NETSTAT_STATES)} | sort;',
        f'{header("netstat -tanpo")} netstat -tanpo | awk -v port="$port" {q("NR <= 2 || " + _ON_PORT)};',
        "else",
        f'cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v port="$hexport" {q(_PROC_STATES)} | sort;',
        'for f in /proc/net/tcp /proc/net/tcp6; do if [ -r "$f" ]; then echo "==> $f <==";',
        f'awk -v port="$hexport" {q("FNR == 1 || " + _PROC_ON_PORT)} "$f"; fi; done;',
        "fi;",
        _socket_limits(),
    )


def _listening(p: Params) -> str:
    return script(
        f"if {have('ss')}; then ss -ltnup;",
        f"elif {have('netstat')}; then netstat -ltnup;",
        f"else echo 'probe: neither ss nor netstat installed'; exit {NOT_INSTALLED}; fi;",
    )


def _interfaces(p: Params) -> str:
    return script(
        f"if {have('ip')}; then",
        f"{header('ip -s link')} ip -s link; {header('ip addr')} ip addr; {header('ip route')} ip route;",
        f"elif {have('ifconfig')}; then",
        f"{header('ifconfig -a')} ifconfig -a;",
        f"if {have('route')}; then {header('route -n')} route -n; fi;",
        "fi;",
        header("/proc/net/dev"),
        "cat /proc/net/dev;",
    )


# The lookups run at once (each nameserver and the system resolver), so a host whose resolvers are
# all dead costs the longest one, not their sum: hostname -f 2 s, then getent 5 s (dig's 4 s bound
# runs beside it) = 7 s, inside the 20 s the runner allows. glibc never asks more than 3 servers.
# 5 s is glibc's default wait for one try, so a dead chain still shows as a measured TIMEOUT.
RESOLVERS_TIMEOUT = 20
SYSTEM_LOOKUP_SECONDS = 5


# `failed OUT RC MS`: how a lookup that got no DNS answer failed, from the tool's words first and
# its exit status and the time it took second. dig exits 9 ("no reply") both when the query timed
# out and when the nameserver's host answered ICMP port unreachable; only the second is fast, and
# a fast failure is a refusal (nothing listens on :53, a REJECT rule), never a timeout.
FAILED = (
    'failed() { case "$1" in *"connection refused"*|*"Connection refused"*) echo CONNREFUSED;; '
    '*nreachable*) echo UNREACHABLE;; *"timed out"*) echo TIMEOUT;; '
    '*) if [ "$2" = 124 ] || [ "$2" = 137 ] || [ "$3" -ge 1000 ]; then echo TIMEOUT; '
    'elif [ "$2" = 9 ]; then echo CONNREFUSED; else echo ERROR; fi;; esac; };'
)
# The answer's status from host's or nslookup's words ("Host x not found: 3(NXDOMAIN)").
_RCODE_WORDS = 'case "$out" in *NXDOMAIN*) st=NXDOMAIN;; *SERVFAIL*) st=SERVFAIL;; *REFUSED*) st=REFUSED;;'


def _resolvers(p: Params) -> str:
    per_server = (
        # One query, one try, 2 s, to this nameserver alone; the status word comes from the
        # answer header (NOERROR, NXDOMAIN, SERVFAIL, REFUSED) or the way the tool failed.
        'if [ -n "$rev" ]; then set -- -x "$name"; else set -- "$name"; fi;',
        f"if {have('dig')}; then tool=dig;",
        't0=$(now_ms); out=$(timeout -k 1 4 dig +time=2 +tries=1 @"$ns" "$@" 2>&1); rc=$?; t1=$(now_ms);',
        "st=$(printf '%s\\n' \"$out\" | sed -n 's/.*status: \\([A-Z]*\\).*/\\1/p' | head -n 1);",
        'if [ -z "$st" ]; then st=$(failed "$out" "$rc" "$((t1 - t0))"); fi;',
        f"elif {have('host')}; then tool=host;",
        't0=$(now_ms); out=$(timeout -k 1 4 host -W 2 "$name" "$ns" 2>&1); rc=$?; t1=$(now_ms);',
        _RCODE_WORDS,
        '*) if [ "$rc" = 0 ]; then st=NOERROR; else st=$(failed "$out" "$rc" "$((t1 - t0))"); fi;; esac;',
        f"elif {have('nslookup')}; then tool=nslookup;",
        't0=$(now_ms); out=$(timeout -k 1 4 nslookup -timeout=2 -retry=1 "$name" "$ns" 2>&1); rc=$?; t1=$(now_ms);',
        _RCODE_WORDS,
        '*) if [ "$rc" = 0 ]; then st=NOERROR; else st=$(failed "$out" "$rc" "$((t1 - t0))"); fi;; esac;',
        "else t0=0; t1=0; st=UNTESTED; fi;",
        'if [ "$st" = UNTESTED ]; then echo "nameserver $ns - ms UNTESTED (no dig, host or nslookup)";',
        'else echo "nameserver $ns $((t1 - t0)) ms $st via $tool"; fi;',
    )
    # Each lookup's result is one short write (under PIPE_BUF), so lookups running at once never
    # interleave within a line; the getent answer goes out in the same write as its timing line.
    return script(
        need("timeout"),
        "set -f;",  # nameserver values are word-split below; never glob them
        NOW_MS,
        FAILED,
        header("/etc/resolv.conf"),
        "cat /etc/resolv.conf 2>&1;",
        header("/etc/nsswitch.conf hosts"),
        "grep -E '^hosts:' /etc/nsswitch.conf 2>/dev/null;",
        f"name={q(p['host'] or '')};",
        'if [ -z "$name" ]; then name=$(timeout -k 1 2 hostname -f 2>/dev/null);'
        ' case "$name" in ""|-*|*[!A-Za-z0-9_.-]*) name=$(hostname 2>/dev/null);; esac; fi;',
        'case "$name" in ""|-*) echo "probe: no host name to look up; give the host parameter"; exit 1;; esac;',
        # An address means a reverse lookup: what sshd (UseDNS) and sendmail do per client.
        'case "$name" in *:*) rev=1;; *[!0-9.]*) rev=;; *) rev=1;; esac;',
        'echo "==> lookups of $name <==";',
        "n=0;",
        "for ns in $(awk '$1 == \"nameserver\" { print $2 }' /etc/resolv.conf 2>/dev/null); do",
        'n=$((n + 1)); if [ "$n" -gt 3 ]; then break; fi;',
        'case "$ns" in -*|*[!0-9A-Fa-f.:]*) echo "nameserver $ns - ms SKIPPED"; continue;; esac;',
        "(",
        *per_server,
        ") &",
        "done;",
        'if [ "$n" = 0 ]; then echo "probe: no nameserver lines in /etc/resolv.conf"; fi;',
        # The whole chain as sshd and the MTA see it: /etc/hosts, every nameserver, retries.
        # getent says only found (0) or not (2): a slow "not found" is the nameservers' timeouts.
        f't0=$(now_ms); out=$(timeout -k 1 {SYSTEM_LOOKUP_SECONDS} getent hosts "$name" 2>&1); rc=$?; t1=$(now_ms);',
        'case "$rc" in 0) st=NOERROR;; 2) st=NXDOMAIN;; 124|137) st=TIMEOUT;; *) st=ERROR;; esac;',
        'timed="resolver system $((t1 - t0)) ms $st via getent";',
        'if [ -n "$out" ]; then out=$(printf "%s\\n" "$out" | head -n 5); printf "%s\\n%s\\n" "$timed" "$out";',
        'else printf "%s\\n" "$timed"; fi;',
        "wait;",
    )


PROBES = (
    Probe(
        "sockets",
        "Sockets by state with owning process",
        "A count of TCP sockets per state ('state CLOSE-WAIT 340'), then every TCP socket with its "
        "queues, peer, owning process and timers (ss -tanpo; netstat or /proc/net/tcp where ss is missing). "
        "Piles of CLOSE-WAIT or SYN-SENT point at the peer or at a timeout. Last, the limits the counts "
        "are judged against: the ephemeral port range, somaxconn, the SYN and TIME-WAIT caps.",
        (Param("port", "port", help="Only sockets with this local or remote port, e.g. 25."),),
        _sockets,
        output_cap=SOCKETS_CAP,
    ),
    Probe(
        "listening",
        "Listening ports",
        "TCP and UDP sockets waiting for connections, with the owning process (ss -ltnup).",
        (),
        _listening,
    ),
    Probe(
        "interfaces",
        "Network interfaces",
        "Link state, counters (errors, drops), addresses and routes per interface, and /proc/net/dev.",
        (),
        _interfaces,
    ),
    Probe(
        "resolvers",
        "Resolver response times",
        "/etc/resolv.conf, then one timed lookup per nameserver ('nameserver 10.0.0.2 2004 ms TIMEOUT via dig') "
        "and one through the system resolver as sshd and mail servers do ('resolver system ... ms ... via "
        "getent'). Each ends NOERROR, NXDOMAIN, SERVFAIL, REFUSED, CONNREFUSED (nothing listens on :53), "
        "UNREACHABLE or TIMEOUT; without dig, host or nslookup only the system resolver is timed. "
        "An address is looked up in reverse. Dead resolvers make logins and SMTP greetings slow.",
        (
            Param(
                "host",
                "host",
                help="Name or address to look up; by default this server's own name (hostname -f).",
            ),
        ),
        _resolvers,
        timeout=RESOLVERS_TIMEOUT,
    ),
)
