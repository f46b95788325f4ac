"""War story 4 (debugging the Internet): Varnish client sockets pile up in CLOSE-WAIT behind a long
send_timeout, towards the clients of one office.

Variants: varnishd on :8080 with send_timeout 900, varnishd on Debian's :6081 with send_timeout 1800 (the lab's
scenario: :80 and the shipped 600). The backend accepts and never answers, so every request waits and each
client that gives up leaves a CLOSE-WAIT socket.
Decoy (busy neighbours): varnishd with the shipped 600 s send_timeout in front of a backend that answers,
clients requesting all the time: sockets come and go, CLOSE-WAIT clears at once.
"""

from __future__ import annotations

from tests.genlab.base import Env, Scenario, background, contained_host, wait_until
from tests.lab import HOST_PYTHON, Host

SUBJECT = "The site hangs under load"
# Shipped playbooks that list the sockets and read the services' settings (varnishadm param.show).
EVIDENCE = ("Connections piling up", "Mail is slow to send")

BACKEND = r"""
import socket, sys, threading
def serve(conn):
    with conn:
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
        conn.recv(4096)
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(256)
while True:
    threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()
"""


def _varnish(cache: Host, *, listen: int, backend: int, send_timeout: int | None) -> None:
    cache.run("mount", "-t", "tmpfs", "varnish", "/var/lib/varnish")
    params = ["-p", "first_byte_timeout=300"]
    if send_timeout is not None:
        params += ["-p", f"send_timeout={send_timeout}"]
    cache.run("varnishd", "-a", f":{listen}", "-b", f"127.0.0.1:{backend}", "-s", "malloc,32m", *params, timeout=30)
    wait_until(lambda: f":{listen} " in cache.run("ss", "-ltn").stdout, what=f"varnishd on :{listen}")


def _hang_up(env: Env, browser: Host, cache: Host, port: int, count: int) -> None:
    request = (
        f"exec 3<>/dev/tcp/{cache.address}/{port}; printf 'GET /slow/%s HTTP/1.1\\r\\nHost: cache\\r\\n\\r\\n' "
        '"$1" >&3; sleep 0.4'
    )
    for index in range(count):
        background(env, browser, "bash", "-c", request, "req", str(index))


def _close_wait(cache: Host) -> int:
    return max(0, cache.run("ss", "-tn", "state", "close-wait").stdout.count("\n") - 1)


def _variant(env: Env, *, name: str, listen: int, backend: int, send_timeout: int, count: int) -> Scenario:
    cache = contained_host(env, name)
    browser = env.lab.add_host(f"{name}-office")
    cache.serve_silence(backend)
    _varnish(cache, listen=listen, backend=backend, send_timeout=send_timeout)
    _hang_up(env, browser, cache, listen, count)
    wait_until(lambda: _close_wait(cache) >= count, what=f"{count} CLOSE-WAIT sockets on {name}")
    return Scenario(
        name=f"close-wait/varnish-{listen}-send{send_timeout}",
        story="close-wait",
        host=cache,
        subject=SUBJECT,
        recipe="varnish-lower-send-timeout",
        playbook="Connections piling up",
        evidence=EVIDENCE,
    )


def varnish_8080_send900(env: Env) -> Scenario:
    return _variant(env, name="cache-8080", listen=8080, backend=8181, send_timeout=900, count=26)


def varnish_6081_send1800(env: Env) -> Scenario:
    return _variant(env, name="cache-6081", listen=6081, backend=7070, send_timeout=1800, count=34)


def varnish_healthy_busy(env: Env) -> Scenario:
    """Healthy: the shipped send_timeout (600 s), a backend that answers, clients requesting non-stop."""
    cache = contained_host(env, "cache-ok")
    cache.write_file("/tmp/backend.py", BACKEND)
    background(env, cache, HOST_PYTHON, "-I", "-S", "/tmp/backend.py", "8088")
    wait_until(lambda: ":8088 " in cache.run("ss", "-ltn").stdout, what="the backend")
    _varnish(cache, listen=80, backend=8088, send_timeout=None)
    browser = env.lab.add_host("cache-ok-office")
    loop = (
        f"while :; do for i in 1 2 3 4 5 6; do (exec 3<>/dev/tcp/{cache.address}/80; "
        "printf 'GET /page/%s HTTP/1.1\\r\\nHost: cache\\r\\nConnection: close\\r\\n\\r\\n' $i >&3; "
        "timeout 2 cat <&3 >/dev/null) & done; wait; sleep 0.3; done"
    )
    background(env, browser, "bash", "-c", loop)
    wait_until(
        lambda: "ESTAB" in cache.run("ss", "-tan").stdout or "TIME-WAIT" in cache.run("ss", "-tan").stdout,
        what="traffic through varnish",
    )
    return Scenario(name="decoy/varnish-busy-healthy", story="close-wait", host=cache, subject="Is the cache alright?")
