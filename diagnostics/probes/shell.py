"""Pieces of POSIX sh that every probe script is assembled from.

A probe's command is ONE line of POSIX sh (no newlines): the runner hands it to
``sh -c`` on the remote side, and a single line survives any wrapping
(``timeout -k ... sh -c '...'``) and any login shell that might see it first.
Statements are written one per Python string and joined with spaces, so each
string must end where sh allows a space to follow (``;``, ``then``, ``do``,
``{``, ``|``, ``&&``, ``||``).
"""

from __future__ import annotations

import shlex

from diagnostics.probes.privilege import AS_ROOT, NEEDS_ROOT, NEEDS_ROOT_NOTE

# Appended (not prepended) to the remote PATH: non-root and non-login sessions on
# RHEL-like hosts often lack the sbin directories where ss, sshd and tcpdump live.
SBIN_DIRS: tuple[str, ...] = ("/usr/local/sbin", "/usr/sbin", "/sbin")

# Exit status of a probe whose tool is missing, as sh itself uses for "command not found".
NOT_INSTALLED = 127


def q(value: str | int) -> str:
    """Shell-quote one (already validated) value."""
    return shlex.quote(str(value))


def script(*statements: str) -> str:
    """Join statements into one sh command line, behind the common preamble."""
    extra = "".join(f":{d}" for d in SBIN_DIRS)
    parts = ["LC_ALL=C; export LC_ALL;", f'PATH="${{PATH:-/usr/bin:/bin}}{extra}"; export PATH;', *statements]
    for part in parts:
        if "\n" in part or "\r" in part or "\0" in part:
            raise ValueError(f"probe script statement spans lines: {part!r}")
    return " ".join(parts)


def need(tool: str) -> str:
    """Stop with a recorded result (stdout line, exit 127) when ``tool`` is missing."""
    message = q(f"probe: {tool} not installed")
    return f"command -v {q(tool)} >/dev/null 2>&1 || {{ echo {message}; exit {NOT_INSTALLED}; }};"


def have(tool: str) -> str:
    """A condition for ``if``: the tool is on PATH."""
    return f"command -v {q(tool)} >/dev/null 2>&1"


def header(title: str) -> str:
    """A section header in tail's own style, so parsers split every probe's output one way."""
    return f"echo {q(f'==> {title} <==')};"


# `bounded SECONDS cmd...`: run cmd under timeout(1) when it exists. Used for the
# sub-commands that can hang (df on a dead NFS mount, varnishadm, sshd -T, dig).
BOUNDED = (
    'bounded() { s=$1; shift; if command -v timeout >/dev/null 2>&1; then timeout -k 2 "$s" "$@"; else "$@"; fi; };'
)

# `pids_named NAME`: pids whose /proc/<pid>/comm is exactly NAME (no regex, unlike
# pgrep), skipping this shell and its parent so a probe never traces itself.
PIDS_NAMED = (
    'pids_named() { for f in /proc/[0-9]*/comm; do c=; { read -r c <"$f"; } 2>/dev/null; '
    "p=${f#/proc/}; p=${p%/comm}; "
    'if [ "$c" = "$1" ] && [ "$p" != "$$" ] && [ "$p" != "$PPID" ]; then echo "$p"; fi; done; };'
)

# `now_ms`: wall clock in milliseconds; falls back to whole seconds where date lacks %N.
NOW_MS = (
    "now_ms() { t=$(date +%s%N 2>/dev/null); case $t in ''|*[!0-9]*) t=$(( $(date +%s) * 1000000000 ));; esac; "
    "echo $(( t / 1000000 )); };"
)


def tail_existing(paths: tuple[str, ...], lines: int, *, journal_match: str, missing: str) -> tuple[str, ...]:
    """Tail every readable file among ``paths`` under a header; else journald; else say so."""
    files = " ".join(q(p) for p in paths)
    journal = f"journalctl --no-pager -n {q(lines)} {journal_match}".rstrip()
    n = q(lines)
    return (
        AS_ROOT,
        "found=0; unread=;",
        f"for f in {files}; do",
        f'if [ -f "$f" ] && [ -r "$f" ]; then found=1; echo "==> $f <=="; tail -n {n} "$f";',
        # A log only root may read (RHEL's /var/log/secure and maillog are 0600): through sudo tail.
        f'elif [ -f "$f" ] && root_check tail -n {n} "$f"; then found=1; echo "==> $f <==";',
        f'root_timed TERM 20 tail -n {n} "$f";',
        'elif [ -f "$f" ]; then unread="$unread $f"; fi;',
        "done;",
        f'if [ -n "$unread" ]; then echo "{NEEDS_ROOT_NOTE}reading$unread needs root and $(id -un) may not'
        " (${root_why:-no reason given}); the server's Access page lists the sudoers lines that allow it\";"
        f' if [ "$found" = 0 ]; then exit {NEEDS_ROOT}; fi; fi;',
        'if [ "$found" = 0 ]; then',
        f"if {have('journalctl')}; then {header(journal)} {journal} 2>&1;",
        f"else echo {q(f'probe: {missing}')}; exit 1; fi;",
        "fi;",
    )
