"""Root for the few probe commands that need it, through sudo limited to exactly those commands.

Customers rarely give a support desk root: they give a login user and sudo rights for our probes.
A probe script never runs itself (``sh -c``) under sudo: a sudoers line cannot allow a shell
script whose parameters vary without allowing any script. Instead the script, running as the login
user, calls ``sudo`` for one fixed binary at a time (strace, tcpdump, sshd -T, find over /proc/*/fd,
tail of an allowed log), and the sudoers lines
the Access page shows (``sudoers_lines``) allow those binaries with exactly the argument shapes the
probes use, as anchored regular expressions, the command's path included (sudo 1.9.10 or later:
older sudo rejects a command path that is a regular expression, so visudo refuses the lines rather
than reading the arguments as glob patterns, where ``*`` would match anything). ``strace -o FILE``,
``tcpdump -z CMD``, ``find -exec``, ``tail /etc/shadow`` or ``sshd -T -f /etc/shadow`` do not match
them (``tests/test_sudo_lab.py`` asks a real sudo). strace as root does see what the traced processes
read and write (the first 32 bytes of each buffer): that is what the customer grants by allowing it.

In the script: ``root_check CMD ARGS...`` asks sudo (``sudo -l``, which runs nothing) whether this
exact command may run as root, and ``root_timed SIGNAL SECONDS CMD ARGS...`` runs it under
timeout(1). When the check fails, ``root_denied TOOL`` prints the :data:`NEEDS_ROOT_NOTE` line and
the probe exits :data:`NEEDS_ROOT`, so the evidence says what was missing and the rest of the run
carries on. As root (uid 0) both just run the command.

A sudo password, where a customer insists on one, reaches the host on the channel's stdin, never on
a command line: the runner prefixes the script with :func:`reading_sudo_password` (the shell reads one
line into an unexported variable), and the script hands it to ``sudo -S`` through the shell's
builtin printf, which forks no process whose arguments could show it.
"""

from __future__ import annotations

from dataclasses import dataclass

from diagnostics.probes.params import LOG_PATHS

# Exit status of a probe that needed root and could not get it (77: "skipped" in automake's tests).
NEEDS_ROOT = 77
NEEDS_ROOT_NOTE = "probe: needs root: "
# The shell variable holding the sudo password (never exported, so no child's environment has it).
PASSWORD_VARIABLE = "triage_sudo_pw"  # noqa: S105 - a variable name, not a password


@dataclass(frozen=True)
class RootCommand:
    """A binary a probe runs as root, where distributions install it, and the argument shape allowed."""

    tool: str
    paths: tuple[str, ...]
    args: str  # POSIX extended regex over the arguments joined by spaces, anchored ^...$
    why: str


def _one_of(paths: tuple[str, ...]) -> str:
    """An alternation matching exactly these paths (their dots literal)."""
    return "(" + "|".join(path.replace(".", "[.]") for path in paths) + ")"


ROOT_COMMANDS: dict[str, RootCommand] = {
    command.tool: command
    for command in (
        RootCommand(
            "strace",
            ("/usr/bin/strace",),
            r"^-f -tt -T -e trace=[A-Za-z0-9_%,]+( -p [0-9]+)+$",
            "attach to the named processes, which belong to other users, for the window asked",
        ),
        RootCommand(
            "tcpdump",
            ("/usr/bin/tcpdump", "/usr/sbin/tcpdump"),
            # The filter follows "--", so nothing in it is read as an option (no -z, no -w FILE).
            r"^-i [A-Za-z0-9_.:][A-Za-z0-9_.:-]* -s 0 -U -w - -c [0-9]+( -- []A-Za-z0-9+ ().:/!=<>&|*[-]+)?$",
            "capture packets to standard output (never to a file)",
        ),
        RootCommand(
            "tail",
            ("/usr/bin/tail",),
            # Only the log files probes may read (diagnostics.probes.params.LOG_PATHS), one at a time.
            rf"^-n [0-9]+ {_one_of(LOG_PATHS)}$",
            "read the newest lines of the allowed log files that only root may read (/var/log/secure, maillog)",
        ),
        RootCommand(
            "find",
            ("/usr/bin/find",),
            # Lists the fd directories of the processes given; no expression (-exec, -delete) fits.
            r"^(/proc/[0-9]+/fd )+-mindepth 1 -maxdepth 1$",
            "list the open files of processes that belong to other users (fd_usage counts them)",
        ),
        RootCommand(
            "sshd",
            ("/usr/sbin/sshd",),
            # Only configs under /etc/ssh: sshd -T echoes bad lines, so any file would be readable.
            r"^-T( -f /etc/ssh/[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*)?$",
            "print the effective settings (sshd -T reads the host keys, which only root may)",
        ),
    )
}

# Characters sudoers treats as syntax inside a command's arguments; a backslash makes them literal.
_SUDOERS_SPECIAL = ",:=!\\"

# The shell functions below, one line (see diagnostics.probes.shell).
_FUNCTIONS = (
    'root_feed() { if [ "$root_mode" = S ]; then printf \'%s\\n\' "$' + PASSWORD_VARIABLE + '"; fi; };',
    "root_check() { root_mode=0; root_why=;",
    'if [ "$(id -u)" = 0 ]; then return 0; fi;',
    'if ! command -v sudo >/dev/null 2>&1; then root_why="sudo is not installed"; return 1; fi;',
    'if [ -n "${' + PASSWORD_VARIABLE + ':-}" ]; then root_mode=S; else root_mode=n; fi;',
    'if root_why=$(root_feed | sudo -"$root_mode" -p \'\' -l -- "$@" 2>&1 >/dev/null); then return 0; fi;',
    # sudo's last line says why (earlier ones are warnings such as "unable to resolve host").
    "root_why=$(printf '%s\\n' \"$root_why\" | tail -n 1 | cut -c1-300); return 1; };",
    'root_timed() { sig=$1; s=$2; shift 2; if [ "$root_mode" = 0 ]; then timeout -s "$sig" -k 2 "$s" "$@";',
    'else root_feed | timeout -s "$sig" -k 2 "$s" sudo -"$root_mode" -p \'\' -- "$@"; fi; };',
    'root_denied() { echo "' + NEEDS_ROOT_NOTE + "$1 must run as root and $(id -un) may not run it through"
    " sudo (${root_why:-no reason given}); the server's Access page lists the sudoers lines that allow it\";"
    f" exit {NEEDS_ROOT}; }};",
)
AS_ROOT = " ".join(_FUNCTIONS)


def reading_sudo_password(command: str) -> str:
    """``command`` preceded by reading the sudo password from stdin (one line; the runner sends it)."""
    return f"{PASSWORD_VARIABLE}=; IFS= read -r {PASSWORD_VARIABLE} || :; {command}"


def needs_root_note(output: str) -> str:
    """The probe's "needs root" line, without its prefix; '' when the probe did not report one."""
    for line in output.splitlines():
        if line.startswith(NEEDS_ROOT_NOTE):
            return line[len(NEEDS_ROOT_NOTE) :]
    return ""


def _sudoers_escape(text: str) -> str:
    return "".join("\\" + c if c in _SUDOERS_SPECIAL else c for c in text)


def sudoers_lines(*, user: str, tools: list[str] | tuple[str, ...], password: bool = False) -> list[str]:
    """The sudoers lines that let ``user`` run exactly the probes' root commands (``tools``) as root.

    ``user`` must already be validated (a login name); ``password`` keeps sudo asking for the
    user's password (``PASSWD``), for customers who insist on one.
    """
    # The path is a regular expression too: sudo before 1.9.10, which would read the arguments as glob
    # patterns (where "*" matches "-z CMD" too), refuses a command that does not start with "/" outright.
    specs = [f"^{_one_of(ROOT_COMMANDS[tool].paths)}$ {_sudoers_escape(ROOT_COMMANDS[tool].args)}" for tool in tools]
    tag = "PASSWD" if password else "NOPASSWD"
    alias = "TRIAGE_PROBES"
    lines = [f"# {command.tool}: {command.why}" for command in (ROOT_COMMANDS[t] for t in tools)]
    lines += [
        f"Defaults:{user} !requiretty, !lecture",
        f"Cmnd_Alias {alias} = " + ", \\\n    ".join(specs),
        f"{user} ALL=(root) {tag}: {alias}",
    ]
    return lines
