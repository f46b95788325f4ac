"""The browser's requests survive labs coming and going (tests/browser_network.py).

Lab tests in other pytest-xdist workers add and remove bridges and their addresses in the root
network namespace; chromium fails the connections it is opening when its namespace's addresses
change (ERR_NETWORK_CHANGED). Here a bridge of the test's own comes and goes in the root namespace,
as a lab's does, while a page fetches hundreds of files from the live server: every fetch succeeds.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections import Counter

import pytest

from tests.browser import BROWSER_MARKS

pytestmark = [*BROWSER_MARKS, pytest.mark.root]

FETCHES = 300
BURSTS = 2

FETCH_ALL = """async (count) => {
  const settled = await Promise.allSettled(Array.from({length: count},
    (_, i) => fetch(`/static/js/queue.js?${i}`, {cache: "no-store"})));
  return settled.map((s) => s.status === "fulfilled" ? String(s.value.status) : String(s.reason));
}"""


def _flap_a_bridge(stop: threading.Event, name: str) -> None:
    """Add a bridge with an address, bring it up and delete it, over and over, as labs starting and ending do."""
    try:
        while not stop.is_set():
            subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
            subprocess.run(["ip", "addr", "add", "198.18.213.1/30", "dev", name], check=True)
            subprocess.run(["ip", "link", "set", name, "up"], check=True)
            stop.wait(0.02)
            subprocess.run(["ip", "link", "del", name], check=True)
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True)


def test_fetches_succeed_while_a_bridge_comes_and_goes_in_the_root_namespace(page, browser_network):
    assert browser_network is not None, "as root, chromium gets a network namespace of its own"
    page.goto("/login/")
    stop = threading.Event()
    name = f"tbrflap{os.getpid() % 100000}"
    flapper = threading.Thread(target=_flap_a_bridge, args=(stop, name), name="bridge-flapper")
    flapper.start()
    try:
        outcomes = Counter()
        for _ in range(BURSTS):
            outcomes.update(page.evaluate(FETCH_ALL, FETCHES))
    finally:
        stop.set()
        flapper.join(timeout=10)
    assert not flapper.is_alive()
    assert outcomes == Counter({"200": FETCHES * BURSTS}), outcomes
