"""War story 1 (30 s after Send): the SMTP server calls back to each client's port 113 (ident) and the
client's firewall drops it, so every greeting waits out the ident timeout.

Variants: tcpserver on the submission port with a 10 s ident timeout (-t10, the lab's scenario uses the 26 s
default on port 25); a sendmail-like server (Python, ident timeout 5 s as sendmail's confTO_IDENT is often
set) on port 2525 whose process is named ``sendmail`` as sendmail's is: sendmail itself is not installable
here in a form a test can run, and what the product reads is the process name and its sockets.
Decoy: tcpserver with ident on a bridged host (``tcpdump -i any`` sees each packet twice) whose clients
refuse port 113 at once (RST), so every greeting is immediate.
"""

from __future__ import annotations

from tests.genlab.base import Env, Scenario, background, contained_host, wait_until
from tests.lab import HOST_PYTHON, Host

SUBJECT = "Outlook waits ages after pressing Send"
# Every shipped playbook that lists the sockets (SYN-SENT to :113) or captures port 113.
EVIDENCE = ("Mail is slow to send", "Connections piling up", "Network interface down", "Mail queue growing")

# A sendmail-like SMTP daemon: before its greeting it asks the client's identd (RFC 1413) with a timeout,
# as sendmail does with confTO_IDENT. prctl(PR_SET_NAME) gives it sendmail's process name.
SENDMAIL_LIKE = r"""
import ctypes, socket, sys, threading
ctypes.CDLL(None).prctl(15, b"sendmail", 0, 0, 0)
port, ident_timeout = int(sys.argv[1]), float(sys.argv[2])

def session(conn, peer):
    try:
        with socket.create_connection((peer[0], 113), timeout=ident_timeout) as ident:
            ident.sendall(b"%d, %d\r\n" % (peer[1], port))
            ident.recv(512)
    except OSError:
        pass
    try:
        conn.sendall(b"220 mail.lab ESMTP Sendmail 8.17.1/8.17.1; ready\r\n")
    finally:
        conn.close()

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", port))
server.listen(128)
while True:
    conn, peer = server.accept()
    threading.Thread(target=session, args=(conn, peer), daemon=True).start()
"""


def _offices(env: Env, stem: str, count: int, *, drop_ident: bool) -> list[Host]:
    offices = [env.lab.add_host(f"{stem}{i}") for i in range(count)]
    if drop_ident:
        for office in offices:
            office.drop_syn(113)
    return offices


def _keep_sending(env: Env, office: Host, mail: Host, port: int, pause: float) -> None:
    """A mail client that opens a new SMTP connection every `pause` seconds until the lab closes."""
    loop = (
        f"while :; do (timeout 40 bash -c 'exec 3<>/dev/tcp/{mail.address}/{port}; cat <&3' &); sleep {pause:.2f}; done"
    )
    background(env, office, "bash", "-c", loop)


def _listening(host: Host, port: int) -> bool:
    return f":{port} " in host.run("ss", "-ltn").stdout


def tcpserver_submission_t10(env: Env) -> Scenario:
    mail = contained_host(env, "mx-sub")
    background(
        env, mail, "tcpserver", "-v", "-t", "10", "-c", "60", "0", "587", "/bin/echo", "220", "mx-sub.lab", "ESMTP"
    )
    wait_until(lambda: _listening(mail, 587), what="tcpserver on :587")
    for office in _offices(env, "branch", 2, drop_ident=True):
        _keep_sending(env, office, mail, 587, 0.5)
    # Callbacks in flight: the first SYNs to :113 are out and unanswered.
    wait_until(lambda: ":113" in mail.run("ss", "-tn", "state", "syn-sent").stdout, what="ident callbacks")
    return Scenario(
        name="ident/tcpserver-587-t10",
        story="ident",
        host=mail,
        subject=SUBJECT,
        recipe="tcpserver-disable-ident",
        playbook="Mail is slow to send",
        evidence=EVIDENCE,
        capture=4,
    )


def sendmail_like_2525_t5(env: Env) -> Scenario:
    mail = contained_host(env, "relay-sm")
    mail.write_file("/tmp/sendmail.py", SENDMAIL_LIKE)
    background(env, mail, HOST_PYTHON, "-I", "-S", "/tmp/sendmail.py", "2525", "5")
    wait_until(lambda: _listening(mail, 2525), what="the sendmail-like server on :2525")
    for office in _offices(env, "desk", 1, drop_ident=True):
        _keep_sending(env, office, mail, 2525, 0.3)
    wait_until(lambda: ":113" in mail.run("ss", "-tn", "state", "syn-sent").stdout, what="ident callbacks")
    return Scenario(
        name="ident/sendmail-like-2525-t5",
        story="ident",
        host=mail,
        subject=SUBJECT,
        recipe="sendmail-disable-ident",
        playbook="Mail is slow to send",
        evidence=EVIDENCE,
        capture=4,
    )


def bridged_refused_ident(env: Env) -> Scenario:
    """Healthy: clients refuse :113 with a RST, so the callbacks end at once; the host is a bridge member
    (eth0 enslaved to br0, as with Docker, KVM or LXC), so ``tcpdump -i any`` records each packet twice."""
    mail = contained_host(env, "mx-br", start_sshd=False)
    mail.run("ip", "link", "add", "br0", "type", "bridge")
    mail.run("ip", "addr", "flush", "dev", "eth0")
    mail.run("ip", "link", "set", "eth0", "master", "br0")
    mail.run("ip", "addr", "add", f"{mail.address}/24", "dev", "br0")
    mail.run("ip", "link", "set", "br0", "up")
    mail.start_sshd()
    background(env, mail, "tcpserver", "-v", "-c", "60", "0", "25", "/bin/echo", "220", "mx-br.lab", "ESMTP")
    wait_until(lambda: _listening(mail, 25), what="tcpserver on :25")
    for office in _offices(env, "shop", 1, drop_ident=False):
        _keep_sending(env, office, mail, 25, 0.3)
    return Scenario(
        name="decoy/bridged-host-refused-ident", story="ident", host=mail, subject="Is the mail server alright?"
    )
