"""Path ids that always fit the database's integer columns: a longer number is a 404, not an overflow."""

from __future__ import annotations

MAX_DIGITS = 18  # < 2**63


class IdConverter:
    regex = rf"[0-9]{{1,{MAX_DIGITS}}}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(int(value))
