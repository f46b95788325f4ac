"""Chromium's own network namespace, so that the labs other test processes build do not break its page loads.

Chromium watches the addresses of its network namespace, and when one is added or removed it fails
the connections it is opening with ERR_NETWORK_CHANGED. Lab tests in the other pytest-xdist
workers add and remove bridge addresses in the root namespace all the time, so on a shared
namespace a browser test failed now and then (a page showed "Your connection was interrupted").
With a bridge coming and going as a lab's does, 576 of a page's 600 fetches failed
(tests/test_browser_network.py, run with the namespace turned off); in the namespace, none do.

Here Playwright's driver, and so chromium, runs in a namespace with nothing in it but a loopback
that nobody changes, and the live server's listening socket is opened inside that namespace (a
socket stays in the namespace it was made in), while the server's threads stay in the root
namespace, where the database is. The namespace lives as long as this process holds its file
descriptor or a process runs in it: a killed test process leaves nothing behind.

Making a namespace needs root (CAP_SYS_ADMIN); without it chromium shares the machine's network as
before, which is only the occasional failure above.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
import threading
from collections.abc import Iterator

from django.test.testcases import LiveServerThread

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _new_namespace() -> int:
    """A new network namespace, made on a thread of its own (unshare and setns change only the
    calling thread's namespace), held open by the file descriptor returned."""
    made: dict[str, object] = {}

    def unshare() -> None:
        try:
            _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            made["fd"] = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            made["error"] = exc

    thread = threading.Thread(target=unshare, name="browser-netns")
    thread.start()
    thread.join()
    if "error" in made:
        raise made["error"]  # type: ignore[misc]
    return made["fd"]  # type: ignore[return-value]


class BrowserNetwork:
    """A network namespace with only a loopback (up), for chromium and the live server's socket."""

    def __init__(self) -> None:
        self.fd = _new_namespace()
        with self.entered():  # a child started from this thread is in the namespace
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Run the block with this thread in the namespace: sockets made in it stay in it, and
        processes started from it run in it."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_libc.setns(self.fd, CLONE_NEWNET), "setns into the browser's namespace")
            try:
                yield
            finally:
                _check(_libc.setns(own, CLONE_NEWNET), "setns back")
        finally:
            os.close(own)

    def close(self) -> None:
        os.close(self.fd)


def browser_network() -> BrowserNetwork | None:
    """The browser's namespace, or None where this process may not make one (not root)."""
    if os.geteuid() != 0:
        return None
    return BrowserNetwork()


class LiveServerThreadInNamespace(LiveServerThread):
    """Django's live server thread, listening inside `network`, serving from the root namespace."""

    def __init__(self, *args, network: BrowserNetwork, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.network = network

    def _create_server(self, connections_override=None):
        with self.network.entered():
            return super()._create_server(connections_override)
