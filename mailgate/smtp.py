"""The desk's SMTP listener (aiosmtpd): accepts mail for the desk's addresses only,
persists each message through `services.inbound_receive` before answering 250,
refuses oversized mail with 552 (and records the refusal), and bounds every
session with an idle timeout.

aiosmtpd runs an asyncio loop in a thread; the ORM is synchronous, so each
message is handed to a small thread pool and the session waits for the answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
from concurrent.futures import ThreadPoolExecutor

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.db import close_old_connections

from mailgate import services
from mailgate.models import Outcome

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 20


def _db_call(function, /, **kwargs):
    # Connections in pool threads are long-lived: drop broken or expired ones around each use.
    close_old_connections()
    try:
        return function(**kwargs)
    finally:
        close_old_connections()


def _reply_text(text: str) -> str:
    """One printable line for an SMTP reply."""
    return re.sub(r"[^\x20-\x7e]", "?", " ".join(text.split()))[:200]


class DeskHandler:
    def __init__(self, *, addresses: list[str], max_bytes: int, workers: int = 4):
        self.addresses = {a.lower() for a in addresses}
        self.max_bytes = max_bytes
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mailgate-db")

    async def _run(self, function, /, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: _db_call(function, **kwargs))

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options):
        if address.lower() not in self.addresses:
            return f"550 5.1.1 <{_reply_text(address)}>: no such mailbox at this desk"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        try:
            record = await self._run(
                services.inbound_receive,
                raw=bytes(envelope.original_content or b""),  # set by the time DATA is handled
                envelope_from=envelope.mail_from,
                envelope_to=list(envelope.rcpt_tos),
                peer=_peer(session),
            )
        except Exception:  # anything unexpected: the sender keeps the message and retries
            log.exception("inbound mail from %s could not be processed", envelope.mail_from)
            return "451 4.3.0 Temporary failure at the desk, please retry later"
        if record.outcome == Outcome.REJECTED:
            return f"554 5.6.0 Message rejected: {_reply_text(record.reason)}"
        return f"250 2.0.0 OK: received as {record.pk} ({record.get_outcome_display().lower()})"

    async def record_refused(self, *, session: Session, envelope: Envelope | None, reason: str) -> None:
        try:
            await self._run(
                services.inbound_record_refused,
                envelope_from=envelope.mail_from if envelope else "",
                envelope_to=list(envelope.rcpt_tos) if envelope else [],
                peer=_peer(session),
                reason=reason,
            )
        except Exception:  # the refusal is still answered
            log.exception("could not record a refused message")

    def close(self) -> None:
        self.executor.shutdown(wait=True)


def _peer(session: Session | None) -> str:
    peer = getattr(session, "peer", None)
    if isinstance(peer, tuple):
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "")


class DeskSMTP(SMTP):
    """aiosmtpd's SMTP with the size refusal recorded: aiosmtpd answers 552 itself
    (at MAIL FROM for a declared SIZE, after DATA otherwise) without calling a
    handler hook, so the refusal is caught where it is sent."""

    async def push(self, status):
        text = status.decode() if isinstance(status, bytes) else status
        if text.startswith("552"):
            limit = self.event_handler.max_bytes
            text = f"552 5.3.4 Message too big for the desk (limit {limit} bytes)"
            await self.event_handler.record_refused(
                session=self.session,
                envelope=self.envelope,
                reason=f"too big: over the limit of {limit} bytes ({status if isinstance(status, str) else text})",
            )
        await super().push(text)


class MailListener(Controller):
    """The SMTP service: `MailListener(...).start()`, then `.stop()`."""

    def __init__(
        self, *, host: str, port: int, addresses: list[str], max_bytes: int, timeout: int, hostname: str | None = None
    ):
        handler = DeskHandler(addresses=addresses, max_bytes=max_bytes)
        super().__init__(
            handler,
            hostname=host,
            port=port,
            ready_timeout=10,
            data_size_limit=max_bytes,
            timeout=timeout,
            enable_SMTPUTF8=True,
            ident="triage desk mailgate",
            server_hostname=hostname,
        )

    def factory(self):
        return DeskSMTP(self.handler, **self.SMTP_kwargs)

    def stop(self, *args, **kwargs):
        super().stop(*args, **kwargs)
        self.handler.close()
