"""What matching one run costs stays independent of the knowledge base's size and of how many threads
match at once, with the same answers: one compilation shared by threads that find the cache stale together,
a few statements to store the matches, compiled scans and regex rewrites reused when nothing they depend on
changed."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from diagnostics import scanning
from diagnostics.knowledge import matcher, services
from diagnostics.models import Match, Symptom

from .test_knowledge_matcher import HEALTHY, KERNEL_LOG, STRACE


@pytest.mark.django_db(transaction=True)
def test_threads_that_find_the_knowledge_base_stale_together_share_one_compilation(kb):
    # A collector's runs finish together after a deploy or an edit: each thread compiling the whole
    # knowledge base for itself would multiply the cost by the number of threads, under one GIL.
    threads, results, errors = 6, [], []
    barrier = threading.Barrier(threads)

    def compile_in_thread() -> None:
        try:
            barrier.wait()
            results.append(matcher.compiled_symptoms())
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=compile_in_thread) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert len(results) == threads
    assert len({id(result) for result in results}) == 1, "every thread got the one compilation"
    assert results[0] and matcher.current_plan().scanner is not None
    assert matcher.compiled_symptoms() is results[0], "and it is kept until the knowledge base changes"


def test_an_edit_compiles_again_and_the_symptoms_scan_and_fits_come_from_one_compilation(kb, make_run):
    before = matcher.compiled_knowledge()
    symptom = Symptom.objects.get(key="bnx2-irq-link-flap")
    data = services.symptom_data(symptom)
    data["signature"] = {"probe": "kernel_log", "regex": "EXT3-fs: mounted", "describe": "ext3 mounted"}
    services.symptom_save(data=data, by=None, note="test")
    after = matcher.compiled_knowledge()
    assert after is not before and after.stamp != before.stamp
    assert after.plan.scanner is not before.plan.scanner, "a new regex, a new scan"
    leaf = next(s for s in after.symptoms if s.key == "bnx2-irq-link-flap").signature.regex_leaves()[0]
    assert after.plan.scanner.patterns[after.plan.scan_ids[leaf]].regex == "EXT3-fs: mounted"
    run = make_run({"kernel_log": KERNEL_LOG})
    (match,) = [m for m in matcher.match_run(run=run) if m.symptom.key == "bnx2-irq-link-flap"]
    assert match.why == "ext3 mounted" and [c["line_start"] for c in match.citations] == [1]


def test_an_edit_that_changes_no_regex_reuses_the_compiled_scan_with_the_same_answers(kb, make_run):
    run = make_run({"kernel_log": KERNEL_LOG, "strace": STRACE})
    first = [(m.symptom.key, m.score, m.matched, m.why, m.citations) for m in matcher.match_run(run=run)]
    before, scan_before = matcher.compiled_symptoms(), matcher.current_plan().scanner
    symptom = Symptom.objects.get(key="ident-lookup-timeout")
    services.symptom_save(
        data={**services.symptom_data(symptom), "title": "Ident lookups time out (edited)"}, by=None, note="test"
    )
    after, scan_after = matcher.compiled_symptoms(), matcher.current_plan().scanner
    assert after is not before, "the edit is seen"
    assert scan_after is scan_before, "no regex changed: hyperscan's database is not compiled again"
    second = [(m.symptom.key, m.score, m.matched, m.why, m.citations) for m in matcher.match_run(run=run)]
    assert second == first and any(matched for _, _, matched, _, _ in first)


def test_storing_a_run_s_matches_takes_a_few_statements_whatever_the_number_of_symptoms(kb, make_run):
    symptoms = len(matcher.compiled_symptoms())
    assert symptoms > 30
    healthy, faulty = make_run(HEALTHY), make_run({"kernel_log": KERNEL_LOG, "strace": STRACE})
    for run in (healthy, faulty, faulty):  # the last one: a re-match updating its rows in place
        with CaptureQueriesContext(connection) as queries:
            matcher.match_run(run=run)
        assert len(queries) < 25, [q["sql"][:80] for q in queries.captured_queries]


def test_a_rematch_updates_the_rows_in_place_keeping_their_ids_and_creation_times(kb, make_run):
    run = make_run({"kernel_log": KERNEL_LOG, "strace": STRACE})
    first = {m.symptom.key: m for m in matcher.match_run(run=run)}
    symptom = Symptom.objects.get(key="bnx2-irq-link-flap")
    services.symptom_save(data={**services.symptom_data(symptom), "threshold": 0.99}, by=None, note="test")
    second = {m.symptom.key: m for m in matcher.match_run(run=run)}
    assert set(second) == set(first)
    for key, match in second.items():
        assert (match.pk, match.created_at) == (first[key].pk, first[key].created_at), key
    edited = second["bnx2-irq-link-flap"]
    assert edited.symptom_version == 2
    assert (edited.matched, edited.near_miss) == (edited.score >= 0.99, edited.score < 0.99)
    assert Match.objects.filter(run=run).count() == len(second)


def test_a_regex_rewrite_is_remembered_apart_from_the_id_and_errors_name_their_own_id():
    a = scanning.translate(scanning.Pattern(5, r"link (is )?down", "i"))
    b = scanning.translate(scanning.Pattern(9, r"link (is )?down", "i"))
    assert (a.pattern_id, b.pattern_id) == (5, 9)
    assert (a.regex, a.to_line_end, a.fewer_ends, a.can_be_empty) == (
        b.regex,
        b.to_line_end,
        b.fewer_ends,
        b.can_be_empty,
    )
    assert scanning.translate(scanning.Pattern(2, "x", max_hits=3)).max_hits == 3
    assert scanning.translate(scanning.Pattern(2, "x")).max_hits is None
    for pattern_id in (3, 4):
        with pytest.raises(scanning.PatternError) as caught:
            scanning.translate(scanning.Pattern(pattern_id, r"(a)\1"))
        assert caught.value.pattern_id == pattern_id and caught.value.construct
