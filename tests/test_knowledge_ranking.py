"""Ranking fixes on recorded evidence: the recipe that fits the host first, the root cause before its consequence."""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnostics.knowledge import services
from diagnostics.knowledge.selectors import ranked_fixes
from diagnostics.models import RecipeFit, RecipeOutcome
from tests.diagnosing import diagnosed

FIXTURES = Path(__file__).parent / "fixtures"
IDENT_SOCKETS = (FIXTURES / "sockets" / "ident_syn_sent_113.txt").read_text()
IDENT_STRACE = (FIXTURES / "strace" / "tcpserver_ident_113.txt").read_text()
FD_AT_LIMIT = (FIXTURES / "catalogue" / "open-files-limit-reached" / "positive.fd_usage.txt").read_text()
IDENT_RECIPES = {"tcpserver-disable-ident", "exim-disable-ident", "sendmail-disable-ident"}


def hung_upstream_sockets(peer: str, count: int) -> str:
    """ss output of a relay whose connections to ``peer`` handshook and then stopped taking data."""
    lines = [
        f"state ESTAB {count + 1}",
        "==> ss -tanpo <==",
        "State    Recv-Q Send-Q Local Address:Port  Peer Address:Port Process",
    ]
    for i in range(count):
        lines.append(
            f"ESTAB    0      {2_000_000 + i} 10.9.0.5:{40000 + i}   {peer}:25   "
            f'users:(("python3",pid=7,fd={4 + i})) timer:(on,1min,9)'
        )
    lines.append('ESTAB    0      0       10.9.0.5:22     10.9.0.1:50450 users:(("sshd",pid=10,fd=4))')
    return "\n".join(lines) + "\n"


def by_key(fixes: list[dict]) -> dict[str, dict]:
    return {f["recipe"].key: f for f in fixes}


def alternatives(fix) -> dict[str, bool | None]:
    return {a.recipe.key: a.fits for a in fix.alternatives}


def test_on_a_tcpserver_host_the_tcpserver_fix_leads_and_the_other_mtas_are_its_alternatives(kb, make_run):
    run = make_run({"sockets": IDENT_SOCKETS, "strace": IDENT_STRACE})
    diagnosed(run)
    fixes = ranked_fixes(run=run)
    assert fixes[0]["recipe"].key == "tcpserver-disable-ident"
    fit = fixes[0]["fit"]
    assert fit.applies and "tcpserver owns" in fit.why
    assert any('"tcpserver"' in c["text"] and c["probe"] == "sockets" for c in fit.citations)
    # One entry for the symptom, not the same evidence three times: exim and sendmail are listed under it.
    assert alternatives(fixes[0]) == {"exim-disable-ident": False, "sendmail-disable-ident": False}
    assert not {"exim-disable-ident", "sendmail-disable-ident"} & set(by_key(fixes))


def test_on_an_exim_host_the_exim_fix_leads(kb, make_run):
    run = make_run({"sockets": IDENT_SOCKETS.replace('"tcpserver"', '"exim4"')})
    diagnosed(run)
    fixes = ranked_fixes(run=run)
    assert fixes[0]["recipe"].key == "exim-disable-ident"
    assert alternatives(fixes[0])["tcpserver-disable-ident"] is False


def test_a_run_that_did_not_look_at_processes_or_sockets_offers_every_ident_fix_as_one_entry(kb, make_run):
    run = make_run({"strace": IDENT_STRACE})
    assert [m.symptom.key for m in diagnosed(run) if m.matched] == ["ident-lookup-timeout"]
    assert not RecipeFit.objects.filter(run=run).exists(), "no evidence either way is not 'does not fit'"
    (fix,) = ranked_fixes(run=run)
    assert {fix["recipe"].key, *alternatives(fix)} == IDENT_RECIPES
    assert set(alternatives(fix).values()) == {None} and fix["fit"] is None


def test_a_fix_shown_to_fit_outranks_the_same_fix_as_general_advice(kb, make_run):
    fitting = make_run({"sockets": IDENT_SOCKETS, "strace": IDENT_STRACE})
    general = make_run({"strace": IDENT_STRACE})
    diagnosed(fitting), diagnosed(general)
    assert ranked_fixes(run=fitting)[0]["score"] > ranked_fixes(run=general)[0]["score"]


def test_fits_follow_the_evidence_when_the_run_is_matched_again(kb, make_run):
    run = make_run({"sockets": IDENT_SOCKETS})
    diagnosed(run)
    assert set(RecipeFit.objects.filter(run=run, applies=True).values_list("recipe__key", flat=True)) == {
        "tcpserver-disable-ident"
    }
    run.evidence.filter(probe="sockets").update(output=IDENT_SOCKETS.replace('"tcpserver"', '"sendmail"').encode())
    diagnosed(run)
    assert set(RecipeFit.objects.filter(run=run, applies=True).values_list("recipe__key", flat=True)) == {
        "sendmail-disable-ident"
    }
    assert RecipeFit.objects.filter(run=run).count() == 3


def test_a_hung_upstream_ranks_above_the_fd_limit_it_exhausted(kb, make_run):
    run = make_run({"sockets": hung_upstream_sockets("10.9.0.77", 30), "fd_usage": FD_AT_LIMIT})
    matched = {m.symptom.key for m in diagnosed(run) if m.matched}
    assert {"upstream-hang-fd-exhaustion", "open-files-limit-reached"} <= matched
    fixes = ranked_fixes(run=run)
    assert fixes[0]["recipe"].key == "upstream-timeouts-and-fd-alerts"
    consequence = by_key(fixes)["raise-nofile-limit"]
    assert [s.key for s in consequence["causes"]] == ["upstream-hang-fd-exhaustion"]
    assert consequence["score"] < fixes[0]["score"]


def test_an_fd_limit_with_no_cause_found_keeps_its_rank_and_says_its_cause_was_not_found(kb, make_run):
    run = make_run({"fd_usage": FD_AT_LIMIT})
    (match,) = [m for m in diagnosed(run) if m.matched]
    assert match.symptom.key == "open-files-limit-reached"
    (fix,) = ranked_fixes(run=run)
    assert fix["recipe"].key == "raise-nofile-limit" and fix["causes"] == []
    assert "upstream-hang-fd-exhaustion" in {s.key for s in fix.missing_causes}
    with_cause = make_run({"sockets": hung_upstream_sockets("10.9.0.77", 30), "fd_usage": FD_AT_LIMIT})
    diagnosed(with_cause)
    assert by_key(ranked_fixes(run=with_cause))["raise-nofile-limit"]["score"] < fix["score"]


def test_matching_records_each_suggestion_once_per_ticket(kb, make_run, ticket):
    first = make_run({"strace": IDENT_STRACE})
    diagnosed(first)
    diagnosed(first)
    diagnosed(make_run({"sockets": IDENT_SOCKETS}))
    suggested = RecipeOutcome.objects.filter(ticket=ticket, kind=RecipeOutcome.SUGGESTED)
    assert sorted(suggested.values_list("recipe__key", flat=True)) == sorted(IDENT_RECIPES)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"caused_by": ["no-such-symptom"]}, 'symptom.caused_by: unknown symptom "no-such-symptom"'),
        ({"caused_by": ["disk-full"]}, "symptom.caused_by: a symptom cannot be its own cause"),
        ({"caused_by": "disk-io-errors"}, "symptom.caused_by: expected a list of non-empty text"),
    ],
)
def test_a_bad_cause_is_refused_with_its_reason(kb, admin_user, change, error):
    data = {**services.symptom_data(services.Symptom.objects.get(key="disk-full")), **change}
    with pytest.raises(services.KnowledgeError) as refused:
        services.symptom_save(data=data, by=admin_user)
    assert error in refused.value.errors


def test_a_bad_applies_when_is_refused_with_its_path(kb, admin_user):
    data = services.recipe_data(services.FixRecipe.objects.get(key="exim-disable-ident"))
    data["applies_when"] = {"any": [{"probe": "processes", "regex": "exim("}]}
    with pytest.raises(services.KnowledgeError) as refused:
        services.recipe_save(data=data, by=admin_user)
    assert any(e.startswith("recipe.applies_when.signature.any[0].regex") for e in refused.value.errors), (
        refused.value.errors
    )


def test_causes_named_later_in_a_document_are_linked_on_first_load(db, admin_user):
    consequence = {
        "key": "later-effect",
        "title": "Effect",
        "caused_by": ["the-cause"],
        "signature": {"probe": "kernel_log", "regex": "effect"},
    }
    cause = {"key": "the-cause", "title": "Cause", "signature": {"probe": "kernel_log", "regex": "cause"}}
    services.kb_apply(document={"symptoms": [consequence, cause]}, by=admin_user)
    again = services.kb_apply(document={"symptoms": [consequence, cause]}, by=admin_user)
    assert not again.changed, again.changes
    effect = services.Symptom.objects.get(key="later-effect")
    assert [s.key for s in effect.caused_by.all()] == ["the-cause"] and effect.version == 1


RST_CAPTURE = (FIXTURES / "tcpdump" / "asa_off_by_one_rst.pcap").read_bytes()
CLOSE_WAIT_SOCKETS = (FIXTURES / "sockets" / "varnish_close_wait.txt").read_text()


def test_close_wait_with_a_forged_rst_in_the_capture_points_at_the_middlebox_not_at_varnish(kb, make_run):
    run = make_run({"sockets": CLOSE_WAIT_SOCKETS})
    run.evidence.create(
        step=1,
        probe="tcpdump",
        command="tcpdump",
        exit_status=0,
        binary=True,
        output=RST_CAPTURE,
        output_bytes=len(RST_CAPTURE),
    )
    matched = {m.symptom.key: m for m in diagnosed(run) if m.matched}
    assert set(matched) == {"middlebox-rst-out-of-window"}, "a reset is no evidence of a long send_timeout"
    match = matched["middlebox-rst-out-of-window"]
    assert "a peer sent a RST outside the expected sequence (1 flow(s))" in match.why
    assert any("rst_offset=-1" in c["text"] and c["probe"] == "tcpdump" for c in match.citations)
    assert ranked_fixes(run=run)[0]["recipe"].key == "find-the-resetting-middlebox"


def test_close_wait_without_a_capture_is_not_blamed_on_a_middlebox(kb, make_run):
    run = make_run({"sockets": CLOSE_WAIT_SOCKETS})
    assert not [m for m in diagnosed(run) if m.matched and m.symptom.key == "middlebox-rst-out-of-window"]


def test_sandboxed_processes_with_a_token_open_files_limit_are_not_at_their_limit(kb, make_run):
    """OpenSSH's pre-auth child drops RLIMIT_NOFILE to 0 or 1 on purpose (its sandbox) while it holds a few
    descriptors: any server with logins in progress (or a brute force) shows some. Not a daemon out of files."""
    preauth = "\n".join(f"{13649 + n} sshd 7 1" for n in range(22))
    healthy = FD_AT_LIMIT.replace("7 python3 32 32", "7 python3 12 20000")
    run = make_run({"fd_usage": healthy + preauth + "\n"})
    matched = {m.symptom.key for m in diagnosed(run) if m.matched}
    assert not matched & {"open-files-limit-reached", "upstream-hang-fd-exhaustion"}, matched
    near = {m.symptom.key: m.score for m in diagnosed(run)}
    assert near.get("upstream-hang-fd-exhaustion", 0) == 0, near


def test_a_busy_pools_requests_in_flight_are_not_a_hung_upstream(kb, make_run):
    """A pool near its fd limit whose connections each have a request on its way (a Send-Q of a few bytes,
    the retransmit timer armed, nothing retransmitted yet) is busy, not hung; the same sockets retransmitting
    are the war story (CI caught the healthy lab pool under load with 5 bytes queued on 11 connections)."""

    def pool(timer: str) -> str:
        lines = [
            "state ESTAB 12",
            "==> ss -tanpo <==",
            "State    Recv-Q Send-Q Local Address:Port  Peer Address:Port Process",
        ]
        for i in range(11):
            lines.append(
                f"ESTAB    0      5      10.9.0.5:{43000 + i}   10.9.0.23:6432   "
                f'users:(("python3",pid=7,fd={5 + i})) timer:({timer})'
            )
        return "\n".join(lines) + "\n"

    busy = make_run({"sockets": pool("on,204ms,0"), "fd_usage": FD_AT_LIMIT})
    assert "upstream-hang-fd-exhaustion" not in {m.symptom.key for m in diagnosed(busy) if m.matched}

    stuck = make_run({"sockets": pool("on,12sec,5"), "fd_usage": FD_AT_LIMIT})
    assert "upstream-hang-fd-exhaustion" in {m.symptom.key for m in diagnosed(stuck) if m.matched}
