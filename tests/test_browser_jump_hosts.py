"""An admin puts a server behind a jump host in a real browser: adds the jump host from the server's Access
page, stores its credential, pins its key from a known_hosts line, and chooses it as the server's first hop."""

from __future__ import annotations

import re
import subprocess

from playwright.sync_api import expect

from diagnostics.models import HostKey
from diagnostics.services import jump_hosts
from tests.browser import BROWSER_MARKS, save_screenshot, sign_in

pytestmark = BROWSER_MARKS


def test_an_admin_adds_a_jump_host_and_sets_the_servers_chain(page, admin_user, server, tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "host")], check=True)
    key_type, key_b64 = (tmp_path / "host.pub").read_text().split()[:2]
    sign_in(page, admin_user, then=f"/servers/{server.pk}/access/")
    expect(page.locator("[data-jump-path]")).to_contain_text("connect to this server directly")

    page.click("text=Add a jump host")
    page.fill("#id_jump-name", "bastion1")
    page.fill("#id_jump-address", "203.0.113.7")
    page.fill("#id_jump-username", "hop")
    page.fill("#id_jump-banner_timeout", "4")
    page.click("button:has-text('Add jump host')")
    expect(page).to_have_url(re.compile(r"/jump-hosts/\d+/$"))
    expect(page.locator("main")).to_contain_text("No credential")

    page.check("input[name='jcred-kind'][value='password']")
    page.fill("#id_jcred-secret", "hop-password")
    page.click("button:has-text('Store credential')")
    expect(page.locator("main")).to_contain_text("A password is stored for hop")
    page.fill("#id_kh-known_hosts", f"203.0.113.7 {key_type} {key_b64}\n")
    page.click("button:has-text('Import and trust')")
    expect(page.locator("#jump-host-keys")).to_contain_text("Trusted")

    page.goto(f"/servers/{server.pk}/access/")
    page.select_option("#id_hop1", label="bastion1")
    page.click("button:has-text('Save chain')")
    expect(page.locator("[data-jump-path]")).to_contain_text("through its own chain: bastion1")
    expect(page.locator("h1")).to_contain_text(f"{server.address}:22 via bastion1")
    save_screenshot(page, "jump-hosts")

    [jump] = jump_hosts.jump_chain(server)
    assert (jump.name, jump.username, jump.banner_timeout) == ("bastion1", "hop", 4.0)
    assert jump.host_keys.get().status == HostKey.TRUSTED
    assert jump_hosts.hops_for([jump], defaults={"connect": 5})[0].secret.password == "hop-password"
