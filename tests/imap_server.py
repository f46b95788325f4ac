"""A real IMAP server for the mailbox-polling tests: Debian's dovecot with a config of its own in a
temporary directory (no system config), users in a passwd-file, maildirs under the same directory,
plain IMAP (with STARTTLS) and IMAPS on free loopback ports, and a self-signed certificate made
with `openssl` for each server, naming localhost only. The `dovecot` fixture is in
tests/imap_fixtures.py. Mail is put in with IMAP APPEND, as another client would.

As root (CI) dovecot's own unprivileged users run its login and mail processes, as in a normal
install; as anyone else every process runs as that user (no chroot), so root is not needed.
"""

from __future__ import annotations

import contextlib
import getpass
import grp
import imaplib
import itertools
import os
import pwd
import socket
import ssl
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path

from tests.conftest import free_port

DOVECOT = Path("/usr/sbin/dovecot")
PASSWORD = "imap-s3cret"
USERS = 200  # per server, so per test module


class Dovecot:
    def __init__(self, root: Path):
        self.root = root
        self.imap_port, self.imaps_port = free_port(), free_port()
        self.cert = root / "cert.pem"
        self.passwd = root / "passwd"
        self._next_user = itertools.count(1)
        self.process: subprocess.Popen | None = None

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> Dovecot:
        if os.geteuid() == 0:
            internal, login, mail_user = "dovecot", "dovenull", "dovecot"
            login_chroot, unprivileged = "", ""
        else:
            internal = login = mail_user = getpass.getuser()
            # Without root nothing can chroot or change user: every service runs as this user.
            login_chroot = "  chroot =\n"
            unprivileged = "service auth-worker {\n  user = $default_internal_user\n}\nservice anvil {\n  chroot =\n}\n"
        account = pwd.getpwnam(mail_user)
        (self.root / "mail").mkdir()
        (self.root / "home").mkdir()
        for folder in ("mail", "home"):
            os.chown(self.root / folder, account.pw_uid, account.pw_gid)
        self._make_certificate()
        # Every user up front: dovecot notices a rewritten passwd-file by its mtime, to the second,
        # so a user added in the same second as the one before would be refused.
        self.passwd.write_text("".join(f"desk{n}:{{PLAIN}}{PASSWORD}\n" for n in range(1, USERS + 1)))
        (self.root / "dovecot.conf").write_text(f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal}
default_internal_group = {grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name}
default_login_user = {login}
first_valid_uid = 1
mail_location = maildir:{self.root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd}
}}
userdb {{
  driver = static
  args = uid={account.pw_uid} gid={account.pw_gid} home={self.root}/home/%u
}}
service imap-login {{
{login_chroot}  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
}}
{unprivileged}""")
        self.process = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.process.stderr.read().decode()} {self.log()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.imap_port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not listen within 15 s: {self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def _make_certificate(self) -> None:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                str(self.root / "key.pem"),
                "-out",
                str(self.cert),
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        os.chmod(self.root / "key.pem", 0o600)

    # --- users and their mail -------------------------------------------------------

    def add_user(self) -> str:
        """A user of its own (an empty INBOX) for one test, with the password PASSWORD."""
        return f"desk{next(self._next_user)}"

    @contextlib.contextmanager
    def client(self, user: str):
        client = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        try:
            client.login(user, PASSWORD)
            client.select("INBOX")
            yield client
        finally:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                client.logout()

    def deliver(
        self, user: str, message: EmailMessage | bytes, *, received: str | None = None, folder: str = "INBOX"
    ) -> None:
        """APPEND a message to the user's folder, unread (a Received header first when given)."""
        raw = message if isinstance(message, bytes) else message.as_bytes()
        if received:
            raw = f"Received: {received}\r\n".encode() + raw
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        with self.client(user) as client:
            status, data = client.append(folder, None, None, raw)
            assert status == "OK", data

    def flags(self, user: str) -> dict[int, set[str]]:
        """{uid: flags} of every message in the INBOX."""
        with self.client(user) as client:
            _status, data = client.uid("FETCH", "1:*", "(FLAGS)")
        found = {}
        for line in data:
            if not line:
                continue
            text = line.decode()
            uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
            found[uid] = set(text.split("FLAGS (")[1].split(")")[0].split())
        return found

    def mark_read(self, user: str) -> None:
        """As someone reading the mailbox in webmail would."""
        with self.client(user) as client:
            client.uid("STORE", "1:*", "+FLAGS", r"(\Seen)")

    def recreate_folder(self, user: str, folder: str) -> None:
        """Delete the folder (and its mail) and make it again: a new UIDVALIDITY, UIDs from 1."""
        with self.client(user) as client:
            client.select("INBOX")  # not the folder being deleted
            client.delete(folder)
            status, data = client.create(folder)
            assert status == "OK", data

    def create_folder(self, user: str, folder: str) -> None:
        with self.client(user) as client:
            status, data = client.create(folder)
            assert status == "OK", data

    def uid_validity(self, user: str, folder: str = "INBOX") -> int:
        with self.client(user) as client:
            _status, data = client.status(folder, "(UIDVALIDITY)")
        return int(data[0].decode().split("UIDVALIDITY ")[1].rstrip(")"))

    def trusting_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))
