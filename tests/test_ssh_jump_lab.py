"""Jump hosts against real sshd: a bastion namespace is the only way into a private network of hosts, and
every way a hop can fail is named after the hop."""

from __future__ import annotations

import subprocess

import pytest

from diagnostics import ssh
from tests.lab import leftovers

pytestmark = [pytest.mark.root]

QUICK = ssh.Timeouts(connect=3, banner=3, handshake=10, auth=10)


def _key(line: str) -> ssh.HostKey:
    key_type, key_b64 = line.split()[:2]
    return ssh.HostKey(key_type, key_b64)


def _root_key(host) -> ssh.Secret:
    return ssh.Secret(private_key=host.client_key_path.read_text())


def _hop(host, *, name=None, pinned=None, secret=None, username="root", timeouts=QUICK, port=None) -> ssh.Hop:
    return ssh.Hop(
        name=name or host.name,
        address=host.address,
        port=port or host.port,
        username=username,
        secret=secret or _root_key(host),
        pinned=tuple(pinned if pinned is not None else [_key(host.host_public_key)]),
        timeouts=timeouts,
    )


def _connect(target, via, **overrides):
    args = dict(
        address=target.address,
        port=target.port,
        username="root",
        secret=_root_key(target),
        pinned=[_key(target.host_public_key)],
        timeouts=QUICK,
        via=via,
    )
    return ssh.connect(**{**args, **overrides})


@pytest.fixture(scope="module")
def net(lab):
    """A private network with one host on it, and a bastion on both the lab's bridge and the private network."""
    private = lab.add_private_network()
    bastion = lab.add_host("bastion1", also_on=private)
    inner = lab.add_host("inner", network=private)
    return private, bastion, inner


def test_a_host_on_the_private_network_is_reached_only_through_the_bastion(net):
    private, bastion, inner = net
    # No lab bridge carries the private subnet from here, and the lab refuses it locally rather than let the
    # attempt follow the machine's default route out.
    route = subprocess.run(["ip", "-4", "route", "get", inner.address], capture_output=True, text=True).stdout
    assert private.bridge not in route and bastion.lab.bridge not in route, route
    with pytest.raises(ssh.SshError) as direct:
        _connect(inner, via=())
    assert direct.value.kind == "unreachable" and direct.value.hop is None
    with _connect(inner, via=[_hop(bastion)]) as session:
        result = session.run(ssh.CommandSpec("1", "hostname; ip -4 -o addr show dev eth0", timeout=5))
        assert session.host_key == _key(inner.host_public_key)
        assert session.timings.via is not None and session.timings.auth is not None
    assert result.exit_status == 0 and result.stdout.startswith(b"inner\n"), result
    assert inner.address in result.stdout.decode()
    # The private host saw the login come from the bastion's leg on the private network.
    assert f"Accepted publickey for root from {bastion.address_on[private.bridge]} " in inner.sshd_log()


def test_two_hops_reach_a_network_behind_the_first_private_one(lab, net):
    private, bastion, _ = net
    deeper = lab.add_private_network()
    second = lab.add_host("bastion2", network=private, also_on=deeper)
    deep = lab.add_host("deep", network=deeper)
    try:
        with pytest.raises(ssh.SshError) as one_hop_short:  # the first bastion has no leg on the deeper network
            _connect(deep, via=[_hop(bastion)])
        assert one_hop_short.value.hop == "bastion1"
        assert f"jump host bastion1 could not reach {deep.address} port 22" in one_hop_short.value.message
        with _connect(deep, via=[_hop(bastion), _hop(second)]) as session:
            result = session.run(ssh.CommandSpec("1", "hostname", timeout=5))
        assert result.stdout == b"deep\n", result
    finally:
        lab.remove_host(deep)
        lab.remove_host(second)


def test_a_jump_host_logs_in_with_its_own_credential(lab, net, tmp_path):
    """The bastion takes only its password user, by password; the target only root, by the lab's key."""
    private = net[0]
    bastion = lab.add_host("pwbastion", also_on=private)
    inner = net[2]
    try:
        bastion.set_authorized_keys("root", "")  # the target's key opens nothing on this bastion
        with pytest.raises(ssh.SshError) as refused:
            _connect(inner, via=[_hop(bastion)])
        assert refused.value.kind == "auth_failed" and refused.value.hop == "pwbastion"
        assert refused.value.message.startswith("jump host pwbastion: authentication refused for root")
        by_password = _hop(bastion, username=bastion.user, secret=ssh.Secret(password=bastion.password))
        with _connect(inner, via=[by_password]) as session:
            assert session.run(ssh.CommandSpec("1", "hostname", timeout=5)).stdout == b"inner\n"
    finally:
        lab.remove_host(bastion)


def test_a_bastion_that_drops_syns_or_never_sends_a_banner_is_named(lab, net):
    private, _, inner = net
    bastion = lab.add_host("mute", also_on=private)
    try:
        bastion.drop_syn()
        with pytest.raises(ssh.SshError) as dropped:
            _connect(inner, via=[_hop(bastion)])
        assert dropped.value.kind == "unreachable" and dropped.value.hop == "mute"
        assert dropped.value.message == "jump host mute: unreachable: connect timed out after 3 s"
        bastion.restore_network()
        bastion.serve_silence(2200)
        with pytest.raises(ssh.SshError) as silent:
            _connect(inner, via=[_hop(bastion, port=2200)])
        assert silent.value.kind == "no_banner" and silent.value.hop == "mute"
        assert silent.value.message.startswith("jump host mute: no SSH banner within 3 s")
    finally:
        lab.remove_host(bastion)


def test_a_target_behind_the_bastion_that_never_sends_a_banner_is_bounded(net):
    """The banner wait through a channel: the private host's port answers, nothing speaks SSH."""
    _, bastion, inner = net
    inner.serve_silence(2201)
    try:
        with pytest.raises(ssh.SshError) as silent:
            _connect(inner, via=[_hop(bastion)], port=2201)
        assert silent.value.kind == "no_banner" and silent.value.hop is None
        assert silent.value.message.startswith("no SSH banner within 3 s")
    finally:
        inner.stop_serving(2201)


def test_a_changed_or_unpinned_bastion_key_is_refused_by_name(net, tmp_path):
    _, bastion, inner = net
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    with pytest.raises(ssh.SshError) as changed:
        _connect(inner, via=[_hop(bastion, pinned=[_key(stranger.with_suffix(".pub").read_text())])])
    assert changed.value.kind == "host_key_changed" and changed.value.hop == "bastion1"
    assert changed.value.message.startswith(
        f"jump host bastion1: host key changed: the server offered {bastion.host_key_fingerprint}"
    )
    assert changed.value.host_key == _key(bastion.host_public_key)  # what an admin may trust, the bastion's
    with pytest.raises(ssh.SshError) as unknown:
        _connect(inner, via=[_hop(bastion, pinned=[])])
    assert unknown.value.kind == "host_key_unknown" and unknown.value.hop == "bastion1"
    # The target's own key check is the target's: not blamed on the bastion.
    with pytest.raises(ssh.SshError) as target_changed:
        _connect(inner, via=[_hop(bastion)], pinned=[_key(bastion.host_public_key)])
    assert target_changed.value.kind == "host_key_changed" and target_changed.value.hop is None
    assert target_changed.value.host_key == _key(inner.host_public_key)


def test_a_bastion_that_cannot_reach_the_target_or_may_not_forward_says_so(lab, net):
    private, bastion, inner = net
    # Nothing listens on this port of the private host: the bastion's connect is refused.
    with pytest.raises(ssh.SshError) as refused:
        _connect(inner, via=[_hop(bastion)], port=2299)
    assert refused.value.kind == "unreachable" and refused.value.hop == "bastion1"
    assert refused.value.message == (
        f"jump host bastion1 could not reach {inner.address} port 2299: connect failed (Connection refused)"
    )
    # The private host drops the bastion's SYNs: bounded by our connect timeout, not the bastion's kernel.
    inner.drop_syn()
    try:
        with pytest.raises(ssh.SshError) as timed_out:
            _connect(inner, via=[_hop(bastion)])
        assert timed_out.value.message == (
            f"jump host bastion1 could not reach {inner.address} port 22: no connection within 3 s"
        )
    finally:
        inner.restore_network()
    locked = lab.add_host("locked", also_on=private, sshd_options={"AllowTcpForwarding": "no"})
    try:
        with pytest.raises(ssh.SshError) as prohibited:
            _connect(inner, via=[_hop(locked)])
        assert prohibited.value.kind == "jump_refused" and not prohibited.value.transient
        assert prohibited.value.message == (
            f"jump host locked could not reach {inner.address} port 22: administratively prohibited "
            "(does the jump host allow TCP forwarding for this user?)"
        )
    finally:
        lab.remove_host(locked)


def test_closing_the_session_closes_every_hop(net):
    _, bastion, inner = net
    session = _connect(inner, via=[_hop(bastion)])
    hops = list(session._hops)
    assert all(t.is_active() for t in hops)
    session.close()
    assert not session.alive and not any(t.is_active() for t in hops)


def test_a_lab_with_a_private_network_tears_down_completely():
    from tests.lab import Lab

    with Lab() as own:
        private = own.add_private_network()
        own.add_host("b", also_on=private)
        own.add_host("p", network=private)
        prefix = own.prefix
        assert f"trlab:{prefix}" in subprocess.run(["iptables", "-S", "OUTPUT"], capture_output=True, text=True).stdout
    assert leftovers(prefix) == []
    assert f"trlab:{prefix}" not in subprocess.run(["iptables", "-S", "OUTPUT"], capture_output=True, text=True).stdout
