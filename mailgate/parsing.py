"""Pure functions over one raw message: parse it, say whether a machine sent it,
find the ticket it refers to, and cut the quoted history off a reply.

Nothing here touches the database; `mailgate.services` decides what to do.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

from django.utils.html import strip_tags

TICKET_REF = re.compile(r"\[#(\d{1,12})\]")
MSGID = re.compile(r"<[^<>\s]{1,250}>")
MAX_ATTACHMENTS = 50
MAX_REFERENCES = 30
# To and Cc addresses read from one message: enough for a real thread, not a mailing list's roster.
MAX_COPIED = 20
BOUNCE_SENDERS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"}


class Malformed(ValueError):
    """The message cannot be taken in; the text says why, for the record."""


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    content: bytes


@dataclass
class ParsedMail:
    message_id: str
    in_reply_to: str
    references: list[str]
    from_address: str
    from_name: str
    subject: str
    body: str
    attachments: list[ParsedAttachment] = field(default_factory=list)
    # "bounce" or "auto_reply" with the reason, or ("", "") for a person's mail.
    machine: tuple[str, str] = ("", "")
    dropped_attachments: int = 0
    # (display name, lower-case address) of the To and Cc headers, in order, once each, at most MAX_COPIED.
    copied: list[tuple[str, str]] = field(default_factory=list)

    @property
    def thread_ids(self) -> list[str]:
        """Message-IDs this one answers, nearest first."""
        ids = [self.in_reply_to] if self.in_reply_to else []
        return ids + [ref for ref in reversed(self.references) if ref not in ids]

    def ticket_reference(self) -> int | None:
        match = TICKET_REF.search(self.subject)
        return int(match.group(1)) if match else None


def dedupe_key(*, message_id: str, raw: bytes) -> str:
    return message_id or "sha256:" + hashlib.sha256(raw).hexdigest()


def _msgids(value: str | None) -> list[str]:
    return MSGID.findall(str(value or ""))[:MAX_REFERENCES]


def _one_line(value, limit: int) -> str:
    return " ".join(str(value or "").split())[:limit]


def parse(raw: bytes, *, envelope_from: str | None = None) -> ParsedMail:
    """Parse a raw RFC 5322 message; raises Malformed with the reason."""
    if not raw.strip():
        raise Malformed("empty message")
    try:
        msg: EmailMessage = BytesParser(policy=policy.default).parsebytes(raw)
        headers = {k.lower() for k in msg}
        if "from" not in headers:
            raise Malformed("no From header")
        try:
            from_name, from_address = _sender(msg)
        except (ValueError, IndexError, TypeError) as exc:
            raise Malformed(f"unreadable From header: {exc}") from None
        if not from_address or "@" not in from_address:
            raise Malformed(f"From header has no usable address: {_one_line(msg.get('from', ''), 200)!r}")
        body_part = msg.get_body(preferencelist=("plain", "html"))
        body = _text_of(body_part) if body_part is not None else ""
        attachments, dropped = _attachments(msg, body_part)
        machine = machine_sender(msg, envelope_from=envelope_from, from_address=from_address)
        return ParsedMail(
            message_id=(_msgids(msg.get("message-id")) or [""])[0],
            in_reply_to=(_msgids(msg.get("in-reply-to")) or [""])[0],
            references=_msgids(msg.get("references")),
            from_address=from_address.lower(),
            from_name=_one_line(from_name, 200),
            subject=_one_line(msg.get("subject", ""), 300),
            body=body,
            attachments=attachments,
            machine=machine,
            dropped_attachments=dropped,
            copied=_copied(msg),
        )
    except Malformed:
        raise
    except Exception as exc:  # noqa: BLE001 - the stdlib parser raises many types on hostile input
        raise Malformed(f"unparseable message: {type(exc).__name__}: {exc}") from None


def _sender(msg: EmailMessage) -> tuple[str, str]:
    header = msg["from"]
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())
    if addresses:
        first = addresses[0]
        return first.display_name, first.addr_spec
    name, address = parseaddr(str(header))
    return name, address


def _copied(msg: EmailMessage) -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    for name in ("to", "cc"):
        for header in msg.get_all(name) or ():
            try:
                addresses = getattr(header, "addresses", None)
                pairs = (
                    [(a.display_name, a.addr_spec) for a in addresses]
                    if addresses is not None
                    else getaddresses([str(header)])
                )
            except (ValueError, IndexError, TypeError):
                continue  # an unreadable To or Cc costs the copies, never the message
            for display, address in pairs:
                address = address.strip().lower()
                if "@" in address and address not in found and len(found) < MAX_COPIED:
                    found[address] = _one_line(display, 200)
    return [(display, address) for address, display in found.items()]


def _text_of(part: MIMEPart) -> str:
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, AssertionError):
        payload = part.get_payload(decode=True)  # bytes for a leaf part (None for a multipart one)
        content = (payload if isinstance(payload, bytes) else b"").decode("utf-8", errors="replace")
    if isinstance(content, bytes):
        content = content.decode("utf-8", errors="replace")
    if part.get_content_subtype() == "html":
        content = strip_tags(re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", content))
    return content.replace("\r\n", "\n").strip()


def _attachments(msg: EmailMessage, body_part) -> tuple[list[ParsedAttachment], int]:
    found: list[ParsedAttachment] = []
    dropped = 0
    for part in msg.walk():
        if part.is_multipart() or part is body_part:
            continue
        filename = part.get_filename()
        disposition = part.get_content_disposition()
        # The plain/html alternatives of the body are the body, not attachments.
        if not filename and disposition != "attachment" and part.get_content_maintype() == "text":
            continue
        if len(found) >= MAX_ATTACHMENTS:
            dropped += 1
            continue
        payload = part.get_payload(decode=True)  # bytes for a leaf part (None for a multipart one)
        content = payload if isinstance(payload, bytes) else b""
        found.append(
            ParsedAttachment(
                filename=safe_filename(filename or f"part-{len(found) + 1}"),
                content_type=_one_line(part.get_content_type(), 100),
                content=content,
            )
        )
    return found, dropped


def safe_filename(name: str) -> str:
    """A file name without a path, control characters or quotes, at most 200 characters."""
    name = re.split(r"[\\/]", str(name))[-1]
    name = re.sub(r"[\x00-\x1f\x7f\"]", "", name).strip().lstrip(".")
    return name[-200:] or "attachment"


def machine_sender(msg: EmailMessage, *, envelope_from: str | None, from_address: str) -> tuple[str, str]:
    """("bounce" | "auto_reply", why) when a machine sent this, else ("", "").

    Follows RFC 3834 (Auto-Submitted) and the de-facto headers of common auto-responders,
    so the desk never answers one and never loops with another robot.
    """
    if msg.get_content_type() == "multipart/report":
        return "bounce", f"multipart/report ({msg.get_param('report-type') or 'unknown'})"
    local = from_address.split("@", 1)[0].lower()
    if local in BOUNCE_SENDERS:
        return "bounce", f"sent by {local}"
    if envelope_from is not None and envelope_from.strip("<> ") == "":
        return "bounce", "empty envelope sender (<>)"
    return_path = msg.get("return-path")
    if return_path is not None and str(return_path).strip().strip("<>").strip() == "":
        return "bounce", "empty Return-Path (<>)"
    auto_submitted = str(msg.get("auto-submitted", "")).strip().lower()
    if auto_submitted and auto_submitted != "no":
        return "auto_reply", f"Auto-Submitted: {auto_submitted[:60]}"
    precedence = str(msg.get("precedence", "")).strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return "auto_reply", f"Precedence: {precedence}"
    for header in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        if msg.get(header) is not None:
            return "auto_reply", f"{header} header"
    if str(msg.get("x-auto-response-suppress", "")).strip().lower() in ("all", "oof", "autoreply") and (
        "automatic reply" in str(msg.get("subject", "")).lower()
    ):
        return "auto_reply", "Outlook automatic reply"
    return "", ""


_ATTRIBUTION = re.compile(
    r"^(on .{0,200}wrote:|am .{0,200}schrieb .{0,80}:|le .{0,200}a écrit\s?:|-{2,}\s*original message\s*-{2,}"
    r"|_{10,}|from:\s.+|sent from my \w+)\s*$",
    re.IGNORECASE,
)


def strip_quoted(text: str) -> str:
    """The new part of a reply: cut at the first quote attribution ("On ... wrote:",
    Outlook's "-----Original Message-----" or its "From:" header block) and drop
    ">"-quoted lines and the signature. The full text stays in the raw message."""
    kept: list[str] = []
    lines = text.replace("\r\n", "\n").split("\n")
    for index, line in enumerate(lines):
        stripped = line.strip()
        # "On <date>, <name> wrote:" is often wrapped over two lines.
        joined = f"{stripped} {lines[index + 1].strip()}" if index + 1 < len(lines) else stripped
        if _ATTRIBUTION.match(stripped) or (stripped.lower().startswith("on ") and _ATTRIBUTION.match(joined)):
            break
        if stripped == "--":
            break
        if stripped.startswith(">"):
            continue
        kept.append(line.rstrip())
    result = "\n".join(kept).strip()
    return result or text.strip()


def thread_header_ids(*, ids: list[str]) -> tuple[str, list[str]]:
    """In-Reply-To and References for a new message in a thread whose messages are `ids`, oldest first."""
    ids = [i for i in ids if i][-MAX_REFERENCES:]
    return (ids[-1] if ids else ""), ids


def recipients(value: str) -> list[str]:
    return [addr.lower() for _name, addr in getaddresses([value]) if addr]
