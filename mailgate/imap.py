"""The one door to imaplib: a thin typed session on one mailbox folder.

Every network step (connect, TLS handshake, greeting, STARTTLS, login, examine,
search, fetch, logout) is bounded by the same socket timeout, so a
server that stops answering costs at most that long per step. Failures become
`ImapError` with a `kind` and a sentence a tech can act on; the server's own
words are kept (made printable and cut short), never the password.

The folder is opened read-only (EXAMINE): the desk never changes a flag, moves or
deletes anything. It keeps its own place instead, by UID (mailgate.mailbox_services),
so the people who also read the mailbox see it as they left it, and mail they have
already read is taken in all the same. Fetching still uses BODY.PEEK[], which leaves
\\Seen alone on any server, read-only or not.
"""

from __future__ import annotations

import contextlib
import imaplib
import ipaddress
import re
import socket
import ssl
from dataclasses import dataclass, field

# UIDs in one UID FETCH or STORE command: keeps a command line short on any server.
UID_CHUNK = 100


class ImapError(Exception):
    """A failure talking to the mailbox, with a reason a tech can act on.

    `kind` is one of: unreachable, timeout, tls, auth, folder, refused (plain text
    to a host that is not loopback), protocol.
    """

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    security: str  # "imaps", "starttls" or "plain" (mailgate.models.Security)
    username: str
    password: str = field(repr=False)  # never in a log or a traceback
    folder: str = "INBOX"


def is_loopback(host: str) -> bool:
    """Plain-text IMAP sends the password in the clear: only to this machine."""
    if host.strip().lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def printable(text: object, limit: int = 300) -> str:
    """Server words for a record: one printable line, cut short (bytes decoded, anything else as str() shows it)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return re.sub(r"[^\x20-\x7e\u00a0-\uffff]", "?", " ".join(str(text).split()))[:limit]


def _server_words(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    return printable(args[0] if args else str(exc))


def _quote(folder: str) -> str:
    # imaplib sends arguments as they are; a folder name with spaces or quotes must be a quoted string.
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Session:
    """One logged-in connection with a folder opened read-only. Use as a context manager:

        with Session(endpoint, timeout=30, ssl_context=ctx) as box:
            for uid in box.uids_after(box_state.last_uid, limit=100): ...

    After opening, ``uid_validity`` is the folder's UIDVALIDITY (UIDs are only comparable
    while it stays the same) and ``exists`` its number of messages.
    """

    def __init__(self, endpoint: Endpoint, *, timeout: float, ssl_context: ssl.SSLContext):
        self.endpoint = endpoint
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._client: imaplib.IMAP4 | None = None
        self._where = f"{endpoint.host}:{endpoint.port}"
        self.uid_validity: int | None = None
        self.exists = 0

    # --- opening and closing -------------------------------------------------

    def __enter__(self) -> Session:
        try:
            self.open()
        except BaseException:
            self.close()  # a refused login or a missing folder still leaves a connection to end
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        ep = self.endpoint
        if ep.security == "plain" and not is_loopback(ep.host):
            raise ImapError(
                "refused",
                f"plain-text IMAP would send the password in the clear to {ep.host}; "
                "use IMAPS or STARTTLS (plain text is for loopback only)",
            )
        self._step("connecting", self._connect)
        self._step("logging in", self._login)
        self._step("opening the folder", self._select)

    def _connect(self) -> None:
        ep = self.endpoint
        if ep.security == "imaps":
            self._client = imaplib.IMAP4_SSL(ep.host, ep.port, ssl_context=self.ssl_context, timeout=self.timeout)
            return
        self._client = imaplib.IMAP4(ep.host, ep.port, timeout=self.timeout)
        if ep.security == "starttls":
            if "STARTTLS" not in self._client.capabilities:
                raise ImapError("tls", f"{self._where} does not offer STARTTLS; choose IMAPS or another port")
            self._client.starttls(ssl_context=self.ssl_context)

    def _login(self) -> None:
        ep = self.endpoint
        try:
            self._connected.login(ep.username, ep.password)
        except imaplib.IMAP4.error as exc:
            raise ImapError("auth", f"{self._where} refused the login of {ep.username}: {_server_words(exc)}") from None

    def _select(self) -> None:
        folder = self.endpoint.folder
        status, data = self._connected.select(_quote(folder), readonly=True)  # EXAMINE: nothing can change
        if status != "OK":
            raise ImapError(
                "folder",
                f"cannot open the folder {folder!r} on {self._where}: {printable(data[0] if data else status)}",
            )
        self.exists = int(data[-1]) if data and data[-1] and data[-1].isdigit() else 0
        _code, validity = self._connected.response("UIDVALIDITY")
        # RFC 3501 requires UIDVALIDITY in the answer to SELECT/EXAMINE; a server without it gets
        # the bounded re-read of the newest messages on every poll (see mailbox_services).
        self.uid_validity = int(validity[-1]) if validity and validity[-1] and validity[-1].isdigit() else None

    @property
    def _connected(self) -> imaplib.IMAP4:
        assert self._client is not None  # _connect, the first step, set it
        return self._client

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()  # bounded by the same socket timeout
        except (OSError, imaplib.IMAP4.error):
            with contextlib.suppress(OSError):
                client.shutdown()

    def _step(self, doing: str, function, /, *args):
        """Run one network step, turning its failures into ImapError naming what was being done."""
        try:
            return function(*args)
        except ImapError:
            raise
        except TimeoutError:
            raise ImapError(
                "timeout", f"{self._where} did not answer within {self.timeout:g} s while {doing}"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise ImapError(
                "tls",
                f"the TLS certificate of {self._where} is not trusted: {printable(exc.verify_message or str(exc))}",
            ) from None
        except ssl.SSLError as exc:
            raise ImapError(
                "tls", f"TLS with {self._where} failed while {doing}: {printable(exc.reason or str(exc))}"
            ) from None
        except socket.gaierror as exc:
            raise ImapError(
                "unreachable", f"cannot resolve {self.endpoint.host}: {printable(exc.strerror or str(exc))}"
            ) from None
        except ConnectionRefusedError:
            raise ImapError(
                "unreachable", f"{self._where} refused the connection (no IMAP server on that port?)"
            ) from None
        except (imaplib.IMAP4.abort, OSError) as exc:
            raise ImapError(
                "unreachable",
                f"the connection to {self._where} failed while {doing}: {_server_words(exc) or type(exc).__name__}",
            ) from None
        except imaplib.IMAP4.error as exc:
            raise ImapError(
                "protocol", f"{self._where} answered an error while {doing}: {_server_words(exc)}"
            ) from None

    # --- reading ----------------------------------------------------------------

    def _uid(self, doing: str, command: str, *args) -> list:
        status, data = self._step(doing, self._connected.uid, command, *args)
        if status != "OK":
            raise ImapError(
                "protocol",
                f"{self._where} answered {status} while {doing}: {printable(data[0] if data and data[0] else '')}",
            )
        return data

    def unseen(self, *, within: tuple[int, int] | None = None) -> list[int]:
        """UIDs of the folder's messages without \\Seen, oldest first; only those in the UID range
        ``within`` (first, last) when given, so the answer is bounded by it."""
        criteria = ["UNSEEN"] if within is None else ["UID", f"{within[0]}:{within[1]}", "UNSEEN"]
        data = self._uid("searching for unread mail", "SEARCH", *criteria)
        uids = sorted(int(uid) for uid in b" ".join(d for d in data if d).split())
        return [u for u in uids if within is None or within[0] <= u <= within[1]]

    def uids_after(self, uid: int, *, limit: int) -> list[int]:
        """UIDs above ``uid``, oldest first, at most ``limit``."""
        # "n:*" always includes the folder's last message, even when its UID is below n: filtered here.
        data = self._uid("searching for new mail", "SEARCH", "UID", f"{uid + 1}:*")
        uids = sorted(u for u in (int(x) for x in b" ".join(d for d in data if d).split()) if u > uid)
        return uids[:limit]

    def newest_uids(self, count: int) -> list[int]:
        """The UIDs of the folder's last ``count`` messages, oldest first: by message number, so the
        answer is bounded however large the folder is."""
        if self.exists == 0 or count <= 0:
            return []
        first = max(1, self.exists - count + 1)
        doing = "listing the newest messages"
        status, data = self._step(doing, self._connected.fetch, f"{first}:*", "(UID)")
        if status != "OK":
            raise ImapError(
                "protocol",
                f"{self._where} answered {status} while {doing}: {printable(data[0] if data and data[0] else '')}",
            )
        found = []
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            match = re.search(rb"UID (\d+)", line or b"")
            if match:
                found.append(int(match.group(1)))
        return sorted(found)

    def sizes(self, uids: list[int]) -> dict[int, int]:
        """{uid: size in bytes} (RFC822.SIZE), so an oversized message is never downloaded."""
        found: dict[int, int] = {}
        for start in range(0, len(uids), UID_CHUNK):
            chunk = ",".join(str(uid) for uid in uids[start : start + UID_CHUNK])
            for item in self._uid("reading message sizes", "FETCH", chunk, "(RFC822.SIZE)"):
                line = item[0] if isinstance(item, tuple) else item
                match = re.search(rb"UID (\d+).*RFC822\.SIZE (\d+)|RFC822\.SIZE (\d+).*UID (\d+)", line or b"")
                if match:
                    uid, size = (match.group(1), match.group(2)) if match.group(1) else (match.group(4), match.group(3))
                    found[int(uid)] = int(size)
        return found

    def fetch(self, uid: int) -> bytes | None:
        """The raw message, without marking it seen; None when it is gone (expunged meanwhile)."""
        for item in self._uid("downloading a message", "FETCH", str(uid), "(BODY.PEEK[])"):
            if isinstance(item, tuple) and len(item) == 2:
                return item[1]
        return None

    def count_unseen(self) -> int:
        return len(self.unseen())
