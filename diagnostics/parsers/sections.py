"""How every probe's output is laid out: ``==> title <==`` sections, ``probe:`` notes, the runner's cut.

Probes separate the parts of a multi-part output with tail-style headers and say things about
themselves on ``probe: ...`` lines (``probe: strace not installed``). The runner keeps the head and
tail of an output that exceeds its cap and puts ``[... N bytes not kept ...]`` on a line of its own
between them (``diagnostics.ssh.HeadTail``); the lines on either side of it may be partial.
Our own code: this is the product's own framing, not a tool's format. ``jc_parse`` is the one door
to jc for the modules that use it, so a listing jc chokes on costs its facts, not the collection's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jc

HEADER = re.compile(r"==> (.*) <==")  # a section header line (fullmatch)
_HEADER = HEADER
_CUT = re.compile(r"\[\.\.\. \d+ bytes not kept \.\.\.\]")
NOTE_PREFIX = "probe: "


@dataclass(slots=True)
class Section:
    """A run of lines under one header (``title`` None before the first header).

    ``first_line`` is the 1-based line number, within the whole output, of ``lines[0]``.
    """

    title: str | None
    first_line: int
    lines: list[str] = field(default_factory=list)

    def numbered(self) -> Iterator[tuple[int, str]]:
        """(line number, line) for the section's lines, skipping notes, cut markers and blank lines."""
        number = self.first_line
        for line in self.lines:
            if line and not is_noise(line):
                yield number, line
            number += 1

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def lines_of(text: str) -> list[str]:
    """The output's lines, without line terminators (``\\r\\n`` and ``\\n`` both end a line)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if "\r" in text:
        lines = [line.removesuffix("\r") for line in lines]
    return lines


def is_noise(line: str) -> bool:
    """A ``probe:`` note or the runner's cut marker: never data."""
    return line.startswith(NOTE_PREFIX) or (line.startswith("[... ") and _CUT.fullmatch(line) is not None)


def split_sections(text: str) -> list[Section]:
    """The output as sections; a part before any header is a section with title None (kept only if non-empty)."""
    sections = [Section(None, 1)]
    for number, line in enumerate(lines_of(text), start=1):
        if line.startswith("==> ") and line.endswith(" <==") and (match := _HEADER.fullmatch(line)):
            sections.append(Section(match.group(1), number + 1))
        else:
            sections[-1].lines.append(line)
    if not sections[0].lines:
        sections.pop(0)
    return sections


def section(sections: list[Section], prefix: str) -> Section | None:
    """The first section whose title starts with ``prefix``."""
    for candidate in sections:
        if candidate.title is not None and candidate.title.startswith(prefix):
            return candidate
    return None


def notes(text: str) -> list[str]:
    """The probe's own ``probe: ...`` lines, without the prefix."""
    return [line[len(NOTE_PREFIX) :] for line in lines_of(text) if line.startswith(NOTE_PREFIX)]


def jc_parse(parser: str, lines: list[str]) -> Any:
    """jc's reading of these lines (a dict or a list of dicts, by parser), or None. jc raises assorted
    errors on a listing whose last line was cut (its df parser does); such a listing is read again
    without that line."""
    for attempt in (lines, lines[:-1]):
        if not attempt:
            return None
        try:
            return jc.parse(parser, "\n".join(attempt), quiet=True)
        except Exception:  # noqa: BLE001, S112 - jc raises assorted errors on malformed input; retry shorter
            continue
    return None


def to_int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def to_float(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None
