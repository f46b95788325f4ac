"""Lanes: a run's probes over few SSH channels, each channel running its probes one after another.

Every channel costs the host a login shell (sshd forks one and sources the user's rc files): fifty
hosts swept at six channels each made sshd start 300 shells at once. A lane is one channel whose
shell runs a script of several probes in turn, so a run needs a channel per probe that waits by
design (a capture window, a sample) plus one for all the quick probes.

The script reaches the shell on the channel's stdin (`exec sh -s`), never on its command line, so
nothing in it shows in `ps` on the host: not the per-run token of the frames, not a sudo password.
Each probe still runs under its own `timeout -k` (``remote_wrapper``), with its stdin from
/dev/null (or from the shell's builtin printf, for a sudo password), and is bracketed on stdout and
on stderr by frame lines that carry the token, the probe's key and, at its end, its exit status::

    <token> begin <key>\\n   ...the probe's output, byte for byte...   \\n<token> end <key> <status>\\n

The leading newline of the end frame is the lane's own, so output that does not end in a newline
(or binary output) comes back exactly as the probe wrote it. Output that merely looks like a frame
cannot end a section: it lacks the token, which no process on the host can read.

This module holds the pure parts (the script, the frame reader, the assignment of probes to
lanes); ``diagnostics.ssh.Session.run_lane`` runs a lane over paramiko.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from diagnostics.ssh import CommandSpec

# The nominal seconds a probe that waits for nothing is counted as when lanes are balanced: small
# against any wait, so the quick probes of a playbook share one lane next to the waiting ones.
QUICK_SECONDS = 0.1
# The command sshd hands the login shell: the lane's script follows on stdin.
LANE_COMMAND = "exec sh -s"
_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class Sink(Protocol):
    def feed(self, data: bytes) -> None: ...


@dataclass(frozen=True)
class Section:
    key: str
    wrapped: str  # the probe's command as remote_wrapper built it
    stdin: bytes | None = None  # fed to the probe alone (a sudo password), through the shell's builtin printf


def start_marker(token: str) -> bytes:
    """The line the script prints first on both streams: everything before it is rc-file noise."""
    return f"rundesk-start-{token}\n".encode()


def lane_script(token: str, sections: Sequence[Section]) -> bytes:
    """The shell script of a lane: the start marker, then each section framed, one after another.

    It is one brace group, so the shell reads all of it before running anything (no probe can
    read the rest of the script from the channel's stdin, and no send waits on a probe).
    """
    marker = shlex.quote(start_marker(token).decode().rstrip("\n"))
    lines = ["{", f"printf '\\n%s\\n' {marker}; printf '\\n%s\\n' {marker} >&2"]
    for section in sections:
        if not _KEY.fullmatch(section.key):
            raise ValueError(f"lane key {section.key!r}: letters, digits, '_', '.', '-' only")
        frame = f"{token} begin {section.key}"
        lines.append(f"printf '%s\\n' '{frame}'; printf '%s\\n' '{frame}' >&2")
        if section.stdin is None:
            lines.append(f"{section.wrapped} </dev/null")
        else:
            data = shlex.quote(section.stdin.decode("utf-8", "surrogateescape"))
            lines.append(f"printf '%s' {data} | {section.wrapped}")
        end = f"{token} end {section.key}"
        lines.append(f"rc=$?; printf '\\n%s %s\\n' '{end}' \"$rc\"; printf '\\n%s %s\\n' '{end}' \"$rc\" >&2")
    lines += ["}", "exit 0", ""]
    return "\n".join(lines).encode("utf-8", "surrogateescape")


class FrameReader:
    """One stream of a lane (stdout or stderr), cut into its sections as the bytes arrive.

    Section ``i``'s bytes go to ``sinks[i]`` as soon as they cannot be the start of an end frame;
    ``ended`` counts the sections whose end frame has been read and ``statuses`` holds their exit
    statuses. Bytes outside any section (a background process writing after its probe ended) are
    dropped: they belong to no probe.
    """

    def __init__(self, token: str, keys: Sequence[str], sinks: Sequence[Sink]):
        self._begin = [f"{token} begin {key}\n".encode() for key in keys]
        self._end = [f"\n{token} end {key} ".encode() for key in keys]
        self.sinks = list(sinks)
        self.statuses: list[int | None] = [None] * len(keys)
        self.ended = 0
        self._inside = False
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while self.ended < len(self._begin):
            if not self._inside:
                begin = self._begin[self.ended]
                at = self._buffer.find(begin)
                if at < 0:
                    del self._buffer[: max(0, len(self._buffer) - len(begin) + 1)]
                    return
                del self._buffer[: at + len(begin)]
                self._inside = True
                continue
            end = self._end[self.ended]
            sink = self.sinks[self.ended]
            at = self._buffer.find(end)
            if at < 0:  # keep only what could still be the start of the end frame
                keep = len(end) - 1
                if len(self._buffer) > keep:
                    sink.feed(bytes(self._buffer[:-keep]))
                    del self._buffer[:-keep]
                return
            newline = self._buffer.find(b"\n", at + len(end))
            if newline < 0:  # the status has not all arrived yet
                sink.feed(bytes(self._buffer[:at]))
                del self._buffer[:at]
                return
            sink.feed(bytes(self._buffer[:at]))
            status = self._buffer[at + len(end) : newline]
            self.statuses[self.ended] = int(status) if status.isdigit() else None
            del self._buffer[: newline + 1]
            self.ended += 1
            self._inside = False
        self._buffer.clear()  # after the last section: nothing more belongs to a probe

    def flush(self) -> None:
        """The stream ends here: what was held back (it might have begun an end frame) is the section's."""
        if self._inside and self._buffer:
            self.sinks[self.ended].feed(bytes(self._buffer))
        self._buffer.clear()


def weight(spec: CommandSpec) -> float:
    return spec.waits + QUICK_SECONDS


def assign_lanes(specs: Sequence[CommandSpec], max_lanes: int) -> list[list[CommandSpec]]:
    """The specs grouped into lanes: a lane for each probe that waits by design, one for the quick ones,
    at most ``max_lanes`` lanes in all.

    Longest first onto the least-loaded lane (ties: the lower lane, then the earlier spec), so the
    assignment depends on the specs alone; within a lane the specs keep their given order (the
    playbook's), which is also the order their evidence arrives in.
    """
    if not specs:
        return []
    waiting = sum(1 for spec in specs if spec.waits > 0)
    quick = len(specs) - waiting
    count = max(1, min(max_lanes, waiting + (1 if quick else 0)))
    loads = [0.0] * count
    members: list[list[int]] = [[] for _ in range(count)]
    for index in sorted(range(len(specs)), key=lambda i: (-weight(specs[i]), i)):
        lane = min(range(count), key=lambda n: (loads[n], n))
        loads[lane] += weight(specs[index])
        members[lane].append(index)
    return [[specs[i] for i in sorted(lane)] for lane in members if lane]
