"""Every generalisation-lab scenario by group: a group is built at once (its hosts share waits) and torn down
(its background programs) before the next, so the machine never carries more than one group's traffic."""

from __future__ import annotations

from collections.abc import Callable

from tests.genlab import bnx2, close_wait, ident, resolvers, tmp_noexec, upstream
from tests.genlab.base import Env, Scenario


def _upstream(env: Env) -> list[Scenario]:
    pairs = [upstream.api_proxy_8080_limit64(env), upstream.smtps_relay_465_limit256(env)]
    return [*upstream.wait_quiet(pairs), upstream.busy_pool_near_limit(env)]


GROUPS: dict[str, Callable[[Env], list[Scenario]]] = {
    "ident": lambda env: [
        ident.tcpserver_submission_t10(env),
        ident.sendmail_like_2525_t5(env),
        ident.bridged_refused_ident(env),
    ],
    "upstream": _upstream,
    "tmp-noexec": lambda env: [
        tmp_noexec.amavis_clamd(env),
        tmp_noexec.spamd_cpan_build(env),
        tmp_noexec.noexec_web_host(env),
    ],
    "close-wait": lambda env: [
        close_wait.varnish_8080_send900(env),
        close_wait.varnish_6081_send1800(env),
        close_wait.varnish_healthy_busy(env),
    ],
    "resolvers": lambda env: [
        resolvers.two_blackholes_ens18(env),
        resolvers.blackhole_and_no_host_enp3s0f1(env),
        resolvers.usedns_yes_working_resolver(env),
        resolvers.second_resolver_refuses_fast(env),
    ],
    "bnx2": lambda env: [
        bnx2.ring_buffer_enp3s0f0(env),
        bnx2.rfc5424_em2(env),
        bnx2.busybox_eth1(env),
        bnx2.informational_bnx2(env),
    ],
}

# (group, scenario name) without building anything: what tests and the bench iterate over.
INDEX: list[tuple[str, str]] = [
    ("ident", "ident/tcpserver-587-t10"),
    ("ident", "ident/sendmail-like-2525-t5"),
    ("ident", "decoy/bridged-host-refused-ident"),
    ("upstream", "upstream/quiet-8080-nofile64"),
    ("upstream", "upstream/quiet-465-nofile256"),
    ("upstream", "decoy/busy-pool-near-fd-limit"),
    ("tmp-noexec", "tmp-noexec/amavisd-clamd-no-perl-error"),
    ("tmp-noexec", "tmp-noexec/spamd-cpanm-no-perl-error"),
    ("tmp-noexec", "decoy/tmp-noexec-no-scanner"),
    ("close-wait", "close-wait/varnish-8080-send900"),
    ("close-wait", "close-wait/varnish-6081-send1800"),
    ("close-wait", "decoy/varnish-busy-healthy"),
    ("resolvers", "resolvers/two-blackholes-ens18"),
    ("resolvers", "resolvers/no-host-and-blackhole-enp3s0f1"),
    ("resolvers", "decoy/usedns-yes-resolver-answers"),
    ("resolvers", "decoy/second-resolver-refuses-fast"),
    ("bnx2", "bnx2/dmesg-only-enp3s0f0"),
    ("bnx2", "bnx2/rfc5424-messages-em2"),
    ("bnx2", "bnx2/busybox-messages-eth1"),
    ("bnx2", "decoy/bnx2-informational-only"),
]


class Builder:
    """Builds groups on demand in one lab; the previous group's background programs stop first."""

    def __init__(self, env: Env):
        self.env = env
        self.current: tuple[str, dict[str, Scenario], Env] | None = None

    def scenario(self, group: str, name: str) -> Scenario:
        if self.current is None or self.current[0] != group:
            self.close()
            env = Env(self.env.lab, _dns=self.env.dns)
            built = {scenario.name: scenario for scenario in GROUPS[group](env)}
            self.current = (group, built, env)
        return self.current[1][name]

    def close(self) -> None:
        if self.current is not None:
            self.current[2].close()
            self.current = None
