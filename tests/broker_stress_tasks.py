"""A task for the embedded-broker stress test: each message appends its number to a
file, so the test can count that every message ran exactly once."""

from __future__ import annotations

import os

from celery import shared_task


@shared_task(ignore_result=True)
def note_message(number: int) -> None:
    # O_APPEND writes this small are atomic, so concurrent pool processes never interleave lines.
    fd = os.open(os.environ["TRIAGE_STRESS_LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{number}\n".encode())
    finally:
        os.close(fd)
