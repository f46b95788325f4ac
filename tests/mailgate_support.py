"""Helpers for the mailgate tests: building mail, sending it, and an SMTP sink
standing in for the relay the desk sends through (fixtures: tests/mailgate_fixtures.py)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default

from aiosmtpd.controller import Controller

from mailgate.smtp import MailListener

DESK = "support@desk.test"
LIMIT = 64 * 1024


def mail(
    *,
    sender="Olga Ops <ops@northwind.test>",
    to=DESK,
    subject="Mail stuck in queue",
    body="Hello desk.",
    message_id=None,
    headers=None,
    attachments=(),
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    if message_id:
        msg["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


class Sink:
    """An SMTP server that keeps what it is sent; RCPT to a `refuse` address gets 550."""

    def __init__(self, port: int, refuse: tuple[str, ...] = ()):
        self.port, self.refuse, self.messages = port, refuse, []
        # The envelope recipients of each message, in order: who really got it (Bcc included).
        self.envelopes: list[list[str]] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=port, ready_timeout=10)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(BytesParser(policy=default).parsebytes(envelope.original_content))
        self.envelopes.append(list(envelope.rcpt_tos))
        return "250 OK"

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()


def send(
    listener: MailListener, message: EmailMessage, *, envelope_from: str | None = None, to: tuple[str, ...] = (DESK,)
) -> None:
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as smtp:
        sender = envelope_from if envelope_from is not None else message["From"].addresses[0].addr_spec
        smtp.send_message(message, from_addr=sender, to_addrs=list(to))
