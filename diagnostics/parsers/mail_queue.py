"""The mail_queue probe -> ``mail_queue``: how many messages wait, per queue tool.

Our own parser for four one-line summaries: postfix's ``-- 3 Kbytes in 2 Requests.`` (or ``Mail
queue is empty``), exim's ``-bpc`` count, ``qmail-qstat``'s two lines and sendmail's ``Total
requests: 2``.
"""

from __future__ import annotations

import re
from typing import Literal, TypedDict

from diagnostics.parsers.sections import split_sections


class MailQueue(TypedDict):
    line_no: int
    tool: str  # postqueue, exim, exim4, qmail-qstat, mailq
    messages: int | None
    unprocessed: int | None  # qmail: messages not yet preprocessed
    size_kb: int | None  # postfix


_POSTFIX = re.compile(r"-- (\d+) Kbytes in (\d+) Requests?\.")
_EMPTY = re.compile(r".*\bis empty\b.*", re.IGNORECASE)
_QMAIL = re.compile(r"messages in queue( but not yet preprocessed)?: (\d+)")
_SENDMAIL = re.compile(r"\s*Total requests: (\d+)")


def parse_mail_queue(text: str) -> list[MailQueue]:
    rows: list[MailQueue] = []
    for part in split_sections(text):
        if part.title is None:
            continue
        tool = part.title.split()[0]
        row: MailQueue = {
            "line_no": part.first_line,
            "tool": tool,
            "messages": None,
            "unprocessed": None,
            "size_kb": None,
        }
        for line_no, line in part.numbered():
            if match := _POSTFIX.search(line):
                row.update({"line_no": line_no, "size_kb": int(match.group(1)), "messages": int(match.group(2))})
            elif _EMPTY.fullmatch(line):
                row.update({"line_no": line_no, "messages": 0})
            elif match := _QMAIL.match(line):
                key: Literal["unprocessed", "messages"] = "unprocessed" if match.group(1) else "messages"
                row[key] = int(match.group(2))
                row["line_no"] = row["line_no"] if key == "unprocessed" else line_no
            elif match := _SENDMAIL.match(line):
                row.update({"line_no": line_no, "messages": int(match.group(1))})
            elif tool.startswith("exim") and line.strip().isdigit():
                row.update({"line_no": line_no, "messages": int(line.strip())})
        rows.append(row)
    return rows
