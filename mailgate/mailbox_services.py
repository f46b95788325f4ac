"""Writes for the hosted mailboxes the desk polls over IMAP (beside the SMTP listener):
saving one (its password encrypted like SSH credentials), trying its connection, and polling.

Kept beside `services.py` (inbound, routes, notifications) as diagnostics keeps `sweep_views.py`
beside `views.py`: the mailbox sub-domain is its own, and it calls `services.inbound_receive`.

A poll, and why a message becomes a ticket once:
1. Claim the mailbox with a conditional UPDATE (`polling_until`); a second poller finds it
   claimed and leaves it (two beats, or a slow poll overlapping the next one).
2. Open the folder read-only (EXAMINE) and read its UIDVALIDITY. The desk keeps its own place,
   the highest UID it has taken (`last_uid`), instead of the \\Seen flag: mail someone already
   read in webmail is taken in all the same, and the people sharing the mailbox find every flag
   as they left it (the desk never marks, moves or deletes anything, so it needs no more rights
   than reading, and a bug in it cannot lose anyone's mail).
3. Take the UIDs above `last_uid`, oldest first, at most MAX_PER_POLL (a backlog is worked off
   over several polls), after the few that failed last time (`retry_uids`). Read their sizes,
   so a message over TRIAGE_MAIL_MAX_BYTES is recorded as refused (as the SMTP listener's 552
   is) and never downloaded.
4. Each message: download it (BODY.PEEK[]), take it in through `services.inbound_receive`
   (exactly what the SMTP listener does), then move `last_uid` past it (one UPDATE each, so a
   crash costs at most the message in hand). A message taken in again (that crash, a second
   poller, a re-read window) is known by its Message-ID, from this mailbox, another poller or
   SMTP: `inbound_receive` counts a redelivery instead of opening a second ticket.
5. A message the desk failed to process is kept in `retry_uids` (at most RETRY_LIMIT, oldest
   dropped; its raw bytes are in its "failed" record whatever happens) and tried again next
   poll, as an SMTP sender retries after 451; the others go on.
6. When the folder's UIDVALIDITY is not the one stored (the first poll, the server rebuilt its
   index, the folder was recreated, the mailbox's settings changed), the UIDs held mean
   nothing: the poll starts again at the folder's newest RESYNC_WINDOW messages. On a folder
   never polled (a new mailbox, or new settings) only the unread ones among them are taken:
   mail already read there was handled by whoever read it. On a folder polled before, all of
   them are read again and the Message-ID skips those already taken in. Older mail is left alone.
7. A failure of the mailbox itself (unreachable, timeout, TLS, login, folder) is the mailbox's
   `last_error`, shown on the Mailboxes page; other mailboxes are polled by their own tasks
   (mailgate.tasks.poll_mailboxes queues one per enabled mailbox).
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from mailgate import imap, services
from mailgate.models import Mailbox, Security
from triage import crypto

log = logging.getLogger(__name__)

DEFAULT_PORTS: dict[str, int] = {Security.IMAPS: 993, Security.STARTTLS: 143, Security.PLAIN: 143}
# Messages taken from one mailbox per poll: a backlog is worked off over several polls,
# each short enough for its claim (and the task's time limit).
MAX_PER_POLL = 100
# After a UIDVALIDITY change (or on the first poll), how many of the newest messages are read again.
RESYNC_WINDOW = 100
# Failed messages remembered for another try; past this the oldest is dropped (its record keeps the bytes).
RETRY_LIMIT = 20
# Longer than a poll can take (each step is bounded by TRIAGE_IMAP_TIMEOUT); a poller that
# died holding the claim lets go when it passes.
CLAIM = timedelta(minutes=10)


# --- Saving --------------------------------------------------------------------


def _validate(*, host: str, port: int, security: str, folder: str, username: str, password: str) -> None:
    errors = {}
    # imaplib sends both on the LOGIN line: a line break would end the command early.
    for name, value in (("username", username), ("password", password)):
        if any(c in value for c in "\r\n\0"):
            errors[name] = "Line breaks and NUL characters cannot be sent to an IMAP server."
    if security not in Security.values:
        errors["security"] = "Choose IMAPS, STARTTLS or plain text."
    elif security == Security.PLAIN and not imap.is_loopback(host):
        errors["security"] = (
            "Plain text sends the password in the clear: only for a server on this machine "
            "(localhost, 127.0.0.1, ::1). Use IMAPS or STARTTLS."
        )
    if not 1 <= port <= 65535:
        errors["port"] = "A port is between 1 and 65535."
    if not folder or any(not (0x20 <= ord(c) < 0x7F) for c in folder):
        errors["folder"] = "A folder name in plain ASCII, e.g. INBOX or INBOX/Support."
    if errors:
        raise ValidationError(errors)


def mailbox_create(
    *,
    name: str,
    host: str,
    port: int | None,
    security: str,
    username: str,
    password: str,
    folder: str = "INBOX",
    enabled: bool = True,
    by=None,
) -> Mailbox:
    port = port or DEFAULT_PORTS.get(security, 993)
    _validate(host=host, port=port, security=security, folder=folder, username=username, password=password)
    if not password:
        raise ValidationError({"password": "The mailbox's password is required."})
    return Mailbox.objects.create(
        name=name,
        host=host,
        port=port,
        security=security,
        username=username,
        password_token=crypto.encrypt(password),
        folder=folder,
        enabled=enabled,
        created_by=by,
    )


def mailbox_update(
    *,
    mailbox: Mailbox,
    name: str,
    host: str,
    port: int | None,
    security: str,
    username: str,
    password: str = "",
    folder: str = "INBOX",
    enabled: bool = True,
) -> Mailbox:
    """Save the settings; a blank password keeps the stored one (it is never shown back)."""
    port = port or DEFAULT_PORTS.get(security, 993)
    _validate(host=host, port=port, security=security, folder=folder, username=username, password=password)
    mailbox.name, mailbox.host, mailbox.port, mailbox.security = name, host, port, security
    # Another server, account or folder: the UIDs held are another folder's (see the module docstring, 6).
    moved = (mailbox.host, mailbox.username, mailbox.folder) != (host, username, folder)
    mailbox.username, mailbox.folder, mailbox.enabled = username, folder, enabled
    fields = ["name", "host", "port", "security", "username", "folder", "enabled"]
    if moved:
        mailbox.uid_validity, mailbox.last_uid, mailbox.retry_uids = None, 0, []
        fields += ["uid_validity", "last_uid", "retry_uids"]
    if password:
        mailbox.password_token = crypto.encrypt(password)
        fields.append("password_token")
    mailbox.save(update_fields=fields)
    return mailbox


def mailbox_passwords_rotate() -> int:
    """Re-encrypt every mailbox's password under the newest credentials key (`rotate_credentials`)."""
    return crypto.rotate_rows(Mailbox.objects.all(), ["password_token"])


# --- Connecting ------------------------------------------------------------------


def ssl_context() -> ssl.SSLContext:
    """The system's trusted CAs, plus TRIAGE_IMAP_CA_FILE (a private CA) when set; hostnames checked."""
    context = ssl.create_default_context()
    if settings.TRIAGE_IMAP_CA_FILE:
        try:
            context.load_verify_locations(cafile=settings.TRIAGE_IMAP_CA_FILE)
        except (OSError, ssl.SSLError) as exc:
            raise imap.ImapError(
                "tls",
                f"TRIAGE_IMAP_CA_FILE ({settings.TRIAGE_IMAP_CA_FILE}) cannot be used: {imap.printable(str(exc))}",
            ) from None
    return context


def _session(mailbox: Mailbox) -> imap.Session:
    try:
        password = mailbox.password()
    except crypto.CredentialUnreadable as exc:
        raise imap.ImapError("auth", f"the stored password cannot be read: {exc}; enter it again") from None
    endpoint = imap.Endpoint(
        host=mailbox.host,
        port=mailbox.port,
        security=mailbox.security,
        username=mailbox.username,
        password=password,
        folder=mailbox.folder,
    )
    return imap.Session(endpoint, timeout=settings.TRIAGE_IMAP_TIMEOUT, ssl_context=ssl_context())


def mailbox_test(*, mailbox: Mailbox) -> str:
    """Connect, log in, open the folder and count what is new; raises imap.ImapError with why not."""
    with _session(mailbox) as box:
        unseen = box.count_unseen()
    return f"Connected to {mailbox.host}:{mailbox.port} as {mailbox.username}: {unseen} unread in {mailbox.folder}."


# --- Polling -----------------------------------------------------------------------


@dataclass
class PollResult:
    mailbox: str
    claimed: bool = True
    taken: int = 0  # new records: tickets, replies, held, ignored or rejected mail
    known: int = 0  # already taken in (by SMTP, an earlier poll, another poller): counted, not filed again
    refused: int = 0  # over the size limit
    failed: list[str] = field(default_factory=list)
    error: str = ""


def mailbox_poll(*, mailbox_id: int, now: datetime | None = None) -> PollResult:
    """Take in a mailbox's new mail once; see the module docstring for the algorithm."""
    now = now or timezone.now()
    claimable = Q(polling_until__isnull=True) | Q(polling_until__lt=now)
    claimed = Mailbox.objects.filter(claimable, pk=mailbox_id, enabled=True).update(polling_until=now + CLAIM)
    mailbox = Mailbox.objects.filter(pk=mailbox_id).first()
    if not claimed or mailbox is None:
        return PollResult(mailbox=mailbox.name if mailbox else "", claimed=False)
    result = PollResult(mailbox=mailbox.name)
    try:
        with _session(mailbox) as box:
            _take_new_mail(mailbox=mailbox, box=box, result=result)
    except imap.ImapError as exc:
        result.error = exc.message
        log.warning("polling mailbox %s failed (%s): %s", mailbox.name, exc.kind, exc.message)
    except Exception as exc:
        result.error = f"the poll stopped on an internal error: {type(exc).__name__}: {imap.printable(str(exc))}"
        raise
    finally:
        Mailbox.objects.filter(pk=mailbox_id).update(
            polling_until=None, last_polled_at=timezone.now(), last_error=_last_error(result)
        )
    return result


def _last_error(result: PollResult) -> str:
    if result.error:
        return result.error[:2000]
    if result.failed:
        return (
            f"{len(result.failed)} message(s) could not be processed and are retried next poll: "
            + "; ".join(result.failed[:5])
        )[:2000]
    return ""


def _resync(*, mailbox: Mailbox, box: imap.Session) -> set[int]:
    """Start again at the folder's newest RESYNC_WINDOW messages: the stored UIDs are another
    numbering's (or there are none yet). Returns the UIDs to pass over without taking them in.

    - A folder the desk never polled (a new mailbox, or its server, user or folder changed): the
      window's messages someone already read were handled by whoever read them, as the desk always
      treated read mail; only the unread ones are taken. Its UIDVALIDITY is stored once the window
      is done (``_take_new_mail``), so a poll that fails half way starts the window again, still
      passing over read mail.
    - A folder polled before whose UIDVALIDITY changed: every message of the window is read again,
      and the Message-ID skips those taken in before. Saved at once.
    """
    window = box.newest_uids(RESYNC_WINDOW)
    never_polled = mailbox.uid_validity is None
    if not never_polled:
        mailbox.uid_validity = box.uid_validity
    mailbox.last_uid = window[0] - 1 if window else 0
    mailbox.retry_uids = []
    Mailbox.objects.filter(pk=mailbox.pk).update(
        uid_validity=mailbox.uid_validity, last_uid=mailbox.last_uid, retry_uids=[]
    )
    if not never_polled or not window:
        return set()
    return set(window) - set(box.unseen(within=(window[0], window[-1])))


def _take_new_mail(*, mailbox: Mailbox, box: imap.Session, result: PollResult) -> None:
    passed_over: set[int] = set()
    if box.uid_validity is None or box.uid_validity != mailbox.uid_validity:
        passed_over = _resync(mailbox=mailbox, box=box)
    retry = sorted(uid for uid in mailbox.retry_uids if uid <= mailbox.last_uid)[:MAX_PER_POLL]
    uids = retry + box.uids_after(mailbox.last_uid, limit=MAX_PER_POLL - len(retry))
    sizes = box.sizes([uid for uid in uids if uid not in passed_over])
    peer = mailbox.address[:100]
    envelope_to = [mailbox.username] if "@" in mailbox.username else []
    for uid in uids:
        if uid in passed_over:
            outcome = "passed over"
        else:
            outcome = _take_one(
                uid=uid,
                size=sizes.get(uid, 0),
                mailbox=mailbox,
                box=box,
                peer=peer,
                envelope_to=envelope_to,
                result=result,
            )
        # The place moves past every message, failed or not: a failure waits in retry_uids instead.
        retrying = set(mailbox.retry_uids) - {uid} | ({uid} if outcome == "failed" else set())
        mailbox.retry_uids = sorted(retrying)[-RETRY_LIMIT:]
        mailbox.last_uid = max(mailbox.last_uid, uid)
        Mailbox.objects.filter(pk=mailbox.pk).update(last_uid=mailbox.last_uid, retry_uids=mailbox.retry_uids)
    if mailbox.uid_validity != box.uid_validity:  # a first poll's window is done
        mailbox.uid_validity = box.uid_validity
        Mailbox.objects.filter(pk=mailbox.pk).update(uid_validity=mailbox.uid_validity)


def _take_one(
    *, uid: int, size: int, mailbox: Mailbox, box: imap.Session, peer: str, envelope_to: list[str], result: PollResult
) -> str:
    """Take in one message: "taken", "known", "refused", "gone" or "failed" (recorded in ``result``)."""
    if size > settings.TRIAGE_MAIL_MAX_BYTES:
        services.inbound_record_refused(
            envelope_from=None,
            envelope_to=envelope_to,
            peer=peer,
            size=size,
            reason=f"too big: {size} bytes in {mailbox.name}, over the limit of "
            f"{settings.TRIAGE_MAIL_MAX_BYTES} bytes; left in the mailbox",
        )
        result.refused += 1
        return "refused"
    raw = box.fetch(uid)
    if raw is None:
        return "gone"  # expunged by someone else since the search
    try:
        record = services.inbound_receive(raw=raw, envelope_from=None, envelope_to=envelope_to, peer=peer)
    # inbound_receive has recorded the message as "failed" and why; it is tried again next poll,
    # as an SMTP sender retries after the listener's 451, and the mailbox's other mail goes on.
    except Exception as exc:  # noqa: BLE001
        result.failed.append(f"UID {uid}: {type(exc).__name__}: {imap.printable(str(exc), 200)}")
        return "failed"
    # A record this call made is returned as created (no redeliveries); one the desk had already
    # (from SMTP, an earlier poll, a poller racing this one) comes back with its redelivery counted.
    if record.redeliveries:
        result.known += 1
        return "known"
    result.taken += 1
    return "taken"
