"""The mounts probe (``/proc/self/mountinfo``, then ``findmnt -rno``) -> ``mounts``.

Our own split of proc(5)'s fixed mountinfo format (``id parent maj:min root mountpoint options
[optional...] - fstype source superoptions``): jc 1.26's ``proc_pid_mountinfo`` loses the units of
key=value superblock options (``size=10k`` becomes ``10``) and leaves the octal escapes in mount
points (``/mnt/with\\040space``), and its ``findmnt`` parser needs the header that ``-n`` removes.
The per-mount and superblock options are joined in one string, since ``noexec`` and ``nosuid`` live
in the first and ``ro`` may live in either. Rows keep mount order: a later mount on the same
mountpoint covers the earlier ones. findmnt is read only when mountinfo gave nothing.
"""

from __future__ import annotations

import re
from typing import TypedDict

from diagnostics.parsers.sections import Section, split_sections


class Mount(TypedDict):
    line_no: int | None
    mountpoint: str
    source: str | None
    fstype: str | None
    options: str  # mount options then superblock options, comma-joined, duplicates dropped
    noexec: bool
    nosuid: bool
    readonly: bool


_ESCAPE = re.compile(r"\\(?:([0-7]{3})|x([0-9A-Fa-f]{2}))")


def unescape(text: str) -> str:
    r"""mountinfo's octal escapes (``\040`` is a space) and findmnt -r's hex ones (``\x20``)."""
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8) if m.group(1) else int(m.group(2), 16)), text)


def _mount(line_no: int | None, mountpoint: str, source: str | None, fstype: str | None, options: list[str]) -> Mount:
    seen = list(dict.fromkeys(o for o in options if o))
    flags = set(seen)
    return {
        "line_no": line_no,
        "mountpoint": unescape(mountpoint),
        "source": unescape(source) if source else None,
        "fstype": fstype,
        "options": ",".join(seen),
        "noexec": "noexec" in flags,
        "nosuid": "nosuid" in flags,
        "readonly": "ro" in flags,
    }


def _mountinfo(part: Section) -> list[Mount]:
    mounts = []
    for line_no, line in part.numbered():
        fields = line.split(" ")
        try:
            dash = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < dash + 3:
            continue
        superoptions = fields[dash + 3].split(",") if len(fields) > dash + 3 else []
        mounts.append(
            _mount(line_no, fields[4], fields[dash + 2], fields[dash + 1], [*fields[5].split(","), *superoptions])
        )
    return mounts


def _findmnt(part: Section) -> list[Mount]:
    mounts = []
    for line_no, line in part.numbered():
        fields = line.split(" ")
        if len(fields) == 4:
            target, source, fstype, options = fields
            mounts.append(_mount(line_no, target, source, fstype, options.split(",")))
    return mounts


def parse_mounts(text: str) -> list[Mount]:
    sections = split_sections(text)
    for part in sections:
        if part.title == "/proc/self/mountinfo" and (mounts := _mountinfo(part)):
            return mounts
    for part in sections:
        if part.title and part.title.startswith("findmnt"):
            return _findmnt(part)
    return []
