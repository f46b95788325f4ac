"""War story 5, the login half (drjmailgw): the nameservers sit behind the interface that died, so every
reverse lookup (sshd UseDNS, the MTA's greeting) waits out the resolver timeouts.

Variants: NIC renamed ens18, two nameservers that drop DNS, timeout 1 s; NIC renamed enp3s0f1, one
nameserver that drops DNS and one address where no host answers at all (ARP fails), timeout 2 s (the lab's
scenario: eth0, blackholes only).
Decoys: UseDNS yes against a resolver that answers; a second nameserver that refuses at once (nothing
listens on its port 53: ICMP port unreachable, dig exits 9 within milliseconds).
"""

from __future__ import annotations

from tests.genlab.base import Env, Scenario, contained_host, rename_interface

SUBJECT = "SSH logins take ages"
# Shipped playbooks that time each nameserver.
EVIDENCE = ("Slow logins", "Mail is slow to send", "Network interface down", "Mail queue growing")
RESOLVER_FIXES = frozenset({"fix-resolvers-usedns-no", "sshd-usedns-no"})


def _blackhole(env: Env, name: str) -> str:
    host = env.lab.add_host(name, start_sshd=False)
    host.drop_dns()
    return host.address


def _unused_address(env: Env) -> str:
    """An address on the lab's network where no host will ever be (the top of the /24)."""
    return str(env.lab.subnet[-2])


def two_blackholes_ens18(env: Env) -> Scenario:
    servers = [_blackhole(env, "ns-a"), _blackhole(env, "ns-b")]
    resolv = "search corp.test\n" + "".join(f"nameserver {s}\n" for s in servers) + "options timeout:1 attempts:1\n"
    host = contained_host(env, "shell-ens", resolv_conf=resolv, sshd_options={"UseDNS": "yes"}, start_sshd=False)
    rename_interface(host, "ens18")
    host.start_sshd()
    return Scenario(
        name="resolvers/two-blackholes-ens18",
        story="resolvers",
        host=host,
        subject=SUBJECT,
        recipe="fix-resolvers-usedns-no",
        playbook="Slow logins",
        evidence=EVIDENCE,
    )


def blackhole_and_no_host_enp3s0f1(env: Env) -> Scenario:
    servers = [_unused_address(env), _blackhole(env, "ns-c")]
    resolv = "".join(f"nameserver {s}\n" for s in servers) + "options timeout:2 attempts:1\n"
    host = contained_host(env, "login-enp", resolv_conf=resolv, sshd_options={"UseDNS": "yes"}, start_sshd=False)
    rename_interface(host, "enp3s0f1")
    host.start_sshd()
    return Scenario(
        name="resolvers/no-host-and-blackhole-enp3s0f1",
        story="resolvers",
        host=host,
        subject=SUBJECT,
        recipe="fix-resolvers-usedns-no",
        playbook="Slow logins",
        evidence=EVIDENCE,
    )


def usedns_yes_working_resolver(env: Env) -> Scenario:
    host = contained_host(env, "shell-ok", sshd_options={"UseDNS": "yes"})
    return Scenario(
        name="decoy/usedns-yes-resolver-answers", story="resolvers", host=host, subject="Just checking the shell server"
    )


def second_resolver_refuses_fast(env: Env) -> Scenario:
    """Not healthy in every respect (one nameserver is down) but nothing waits: its refusal comes at once.
    It must get no dead-resolvers fix; a finding of its own (the refusing server) is allowed."""
    refuser = env.lab.add_host("ns-refuse", start_sshd=False)  # up, nothing on port 53
    host = contained_host(
        env,
        "shell-ref",
        resolv_conf=env.resolv_conf(extra=f"nameserver {refuser.address}\n"),
        sshd_options={"UseDNS": "yes"},
    )
    return Scenario(
        name="decoy/second-resolver-refuses-fast",
        story="resolvers",
        host=host,
        subject="Just checking the shell server",
        forbidden=RESOLVER_FIXES,
    )
