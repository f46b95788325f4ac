"""The sshd_config probe (``sshd -T``, or the config files) -> ``sshd_settings``.

Our own split of OpenSSH's ``Keyword value`` lines: jc's ``sshd_conf`` converts values (``120`` to an
int, repeated keywords to lists) and drops order, line numbers and ``Match`` context, and here a
setting inside ``Match User backup`` must not read as global (``UseDNS yes`` there slows only that
user's logins).
"""

from __future__ import annotations

from typing import TypedDict

from diagnostics.parsers.sections import split_sections


class SshdSetting(TypedDict):
    line_no: int
    file: str | None  # "sshd -T" or the config file's path
    name: str  # lowercased keyword, as sshd -T prints it
    value: str
    match: str | None  # the Match condition the line sits under; None for global settings


def parse_sshd_config(text: str) -> list[SshdSetting]:
    rows: list[SshdSetting] = []
    for part in split_sections(text):
        match: str | None = None
        for line_no, line in part.numbered():
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            name, _, value = stripped.replace("\t", " ").partition(" ")
            if "=" in name:  # "Keyword=value" is valid too
                name, _, rest = name.partition("=")
                value = f"{rest} {value}".strip()
            name, value = name.lower(), value.strip().lstrip("=").strip()
            if name == "match":
                match = None if value.lower() == "all" else value
                continue
            rows.append({"line_no": line_no, "file": part.title, "name": name, "value": value, "match": match})
    return rows
