"""Bounded matching: no signature can stall a request or a worker.

Validation refuses every pattern only a backtracking engine can run (backreferences,
lookarounds, conditional and atomic groups, possessive quantifiers, the ``s`` flag), saying
where and how to do without; what it accepts runs on hyperscan, linear in the evidence,
including patterns that are catastrophic for Python's ``re`` (``(a|aa)+$`` on a line of "a"
ending in "b" takes ``re`` about 2**(n/2) steps: with n = 120 these tests would never finish on
``re``). A ``Budget`` stops an evaluation cleanly, checked here by its state and reason.
"""

from __future__ import annotations

import re
import time
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from diagnostics.knowledge import matcher
from diagnostics.knowledge.signature import (
    Budget,
    BudgetExceeded,
    Document,
    SignatureError,
    compile_signature,
    signature_errors,
)
from diagnostics.management.commands.load_kb import SEED
from diagnostics.models import Match, Symptom

TABLES = {"log_lines": ("program", "message"), "filesystems": ("fstype", "mountpoint", "use_pct")}
PROBES = {"kernel_log", "system_log", "disk"}


def compile_(spec):
    return compile_signature(spec, tables=TABLES, probes=PROBES)


def leaf(regex, **extra):
    return {"probe": "kernel_log", "regex": regex, **extra}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"any": [leaf("ok"), leaf(r"(a+)\1b")]},
            "signature.any[1].regex: this pattern cannot be run in bounded time (backreference); "
            "rewrite it without backreferences",
        ),
        (
            leaf(r"(?<=port )113"),
            "signature.regex: this pattern cannot be run in bounded time (lookbehind); "
            "rewrite it without the lookbehind",
        ),
        (
            leaf(r"^(?!/dev/loop)\S+"),
            "signature.regex: this pattern cannot be run in bounded time (negative lookahead)",
        ),
        (leaf(r"connect(?= to)"), "signature.regex: this pattern cannot be run in bounded time (lookahead)"),
        (leaf(r"(a)?(?(1)b|c)"), "signature.regex: this pattern cannot be run in bounded time (conditional group)"),
        (leaf(r"(?>ab)c"), "signature.regex: this pattern cannot be run in bounded time (atomic group)"),
        (leaf(r"a++b"), "signature.regex: this pattern cannot be run in bounded time (possessive quantifier)"),
        (
            {"all": [{"facts": "log_lines", "where": {"message": {"regex": r"(\w+) \1"}}}]},
            "signature.all[0].where.message.regex: this pattern cannot be run in bounded time (backreference)",
        ),
        (
            {"facts": "filesystems", "where": {"fstype": {"regex": "^(?!squashfs$)"}}},
            "signature.where.fstype.regex: this pattern cannot be run in bounded time (negative lookahead)",
        ),
        (
            leaf("Link is Down.*Up", flags="is"),
            "signature.flags: the s flag (a dot matching a newline) is not supported",
        ),
        (leaf(r"RX errors\n\s+\d+"), "signature.regex: this pattern cannot be matched line by line"),
    ],
)
def test_patterns_that_cannot_be_bounded_are_refused_at_their_path(spec, message):
    with pytest.raises(SignatureError) as caught:
        compile_(spec)
    assert any(error.startswith(message) for error in caught.value.errors), caught.value.errors
    assert signature_errors(spec, tables=TABLES, probes=PROBES) == caught.value.errors


HOSTILE = "a" * 120 + "b"  # (a|aa)+$ and (a+)+$ backtrack ~2**60 times on this before failing


@pytest.mark.parametrize(
    ("regex", "text", "held"),
    [
        (r"(a|aa)+$", f"kernel: {HOSTILE}\n", False),
        (r"(a|aa)+$", f"kernel: {HOSTILE}\nkernel: aaaa\n", True),
        (r"(a+)+$", f"{HOSTILE}\n", False),
        (r"(x+x+)+y", "x" * 120 + "\n", False),
        (r"(x+x+)+y", "x" * 120 + "y\n", True),
    ],
)
def test_patterns_catastrophic_for_backtracking_run_bounded_in_leaves_and_where(regex, text, held):
    doc = Document(probe="kernel_log", text=text)
    assert compile_(leaf(regex)).evaluate([doc]).held is held
    rows = [{"program": "kernel", "message": line, "line_no": n} for n, line in enumerate(text.splitlines(), 1)]
    facts = Document(probe="kernel_log", facts={"log_lines": rows})
    assert compile_({"facts": "log_lines", "where": {"message": {"regex": regex}}}).evaluate([facts]).held is held


def test_a_regex_leaf_cites_each_matching_line_once_with_its_number():
    text = "ok\nlink down eth0 down\nok\nlink down eth1\n"
    result = compile_(leaf(r"down", describe="{count} lines")).evaluate([Document(probe="kernel_log", text=text)])
    assert [(c["line_start"], c["line_end"], c["text"]) for c in result.citations] == [
        (2, 2, "link down eth0 down"),
        (4, 4, "link down eth1"),
    ]
    assert result.reasons == ["2 lines"]


def test_the_verbose_flag_only_changes_how_a_pattern_is_written():
    text = "x\nIRQ 17: nobody cared\n"
    verbose = compile_(leaf("irq \\s \\d+ :  # the IRQ number\n  \\s nobody", flags="ix"))
    plain = compile_(leaf(r"irq\s\d+:\snobody", flags="i"))
    doc = Document(probe="kernel_log", text=text)
    assert verbose.evaluate([doc]).citations == plain.evaluate([doc]).citations != []


def test_not_in_replaces_an_exclusion_by_lookahead():
    rows = [
        {"fstype": "squashfs", "mountpoint": "/snap/x", "use_pct": 100},
        {"fstype": "ext4", "mountpoint": "/var", "use_pct": 97},
        {"fstype": None, "mountpoint": "/odd", "use_pct": 99},
    ]
    spec = {
        "facts": "filesystems",
        "where": {"use_pct": {"gte": 95}, "fstype": {"not_in": ["squashfs", "udf"]}},
        "per": "mountpoint",
        "describe": "{group}",
    }
    result = compile_(spec).evaluate([Document(probe="disk", facts={"filesystems": rows})])
    assert result.held and result.reasons == ["/var"]  # no fstype known: not counted, as a regex would not
    with pytest.raises(SignatureError, match=r"signature.where.fstype.not_in: expected a list"):
        compile_({"facts": "filesystems", "where": {"fstype": {"not_in": "udf"}}})


# --- the budget: by state and reason, never by the clock's reading ---------------------------------------------


def test_a_spent_budget_stops_an_evaluation_before_it_reads_anything():
    signature = compile_({"all": [leaf("No irq handler"), {"facts": "log_lines", "where": {"program": "kernel"}}]})
    doc = Document(probe="kernel_log", text="No irq handler for vector\n")
    budget = Budget(seconds=0)
    with pytest.raises(BudgetExceeded) as caught:
        signature.evaluate([doc], budget=budget)
    assert caught.value.reason == "the matching budget of 0 s ran out before scanning kernel_log output"
    assert budget.spent_on == "scanning kernel_log output"
    with pytest.raises(BudgetExceeded):  # once spent, it stays spent
        compile_(leaf("x")).evaluate([Document(probe="kernel_log", text="x\n")], budget=budget)


def test_a_budget_stops_between_units_of_work_and_says_which():
    # Made; the regex leaf scans kernel_log only; the facts leaf reads both logs: past the deadline at the second.
    ticks = iter([0.0, 0.0, 0.0, 9.0, 9.0])
    budget = Budget(seconds=5, clock=lambda: next(ticks))
    signature = compile_({"all": [leaf("irq"), {"facts": "log_lines", "where": {"program": "kernel"}}]})
    docs = [Document(probe="kernel_log", text="irq 1\n"), Document(probe="system_log", text="irq 2\n")]
    with pytest.raises(BudgetExceeded, match="budget of 5 s ran out before reading log_lines of system_log"):
        signature.evaluate(docs, budget=budget)
    assert budget.spent_on == "reading log_lines of system_log"


def test_without_a_budget_nothing_is_stopped():
    result = compile_(leaf("irq")).evaluate([Document(probe="kernel_log", text="irq 1\n")])
    assert result.held


# --- the knowledge base: load_kb, the seed, stored rows that are now invalid -----------------------------------


def test_every_seed_signature_validates_and_no_seed_regex_needs_backtracking():
    document = yaml.safe_load(SEED.read_text())
    for symptom in document["symptoms"]:
        assert signature_errors(symptom["signature"]) == [], symptom["key"]
    for recipe in document["recipes"]:
        if recipe.get("applies_when"):
            assert signature_errors(recipe["applies_when"]) == [], recipe["key"]


@pytest.mark.parametrize(
    ("key", "probe", "line", "loop_line"),
    [
        (
            "disk-full",
            "disk",
            "/dev/sda1 ext4 1000 980 20 98% /var",
            "/dev/loop3 squashfs 1000 1000 0 100% /snap/core/1",
        ),
        ("inodes-full", "disk", "/dev/sda1 1000 980 20 98% /var", "/dev/loop3 1000 1000 0 100% /snap/core/1"),
        (
            "disk-io-errors",
            "kernel_log",
            "blk_update_request: I/O error, dev sdb, sector 1953525048",
            "blk_update_request: I/O error, dev loop0, sector 1953525048",
        ),
    ],
)
def test_seed_regexes_rewritten_without_lookaheads_still_tell_the_fault_from_the_excluded_device(
    key, probe, line, loop_line
):
    """The seed's df and I/O error regexes excluded loop devices with a lookahead; spelled out without one,
    each still holds on a real device's line and not on a loop device's (regex alternatives on their own)."""
    [symptom] = [s for s in yaml.safe_load(SEED.read_text())["symptoms"] if s["key"] == key]
    node = symptom["signature"]
    leaves = [n for n in node.get("any", [node]) if "regex" in n and probe in n["probe"]]
    assert leaves
    signature = compile_signature({"any": leaves})
    for text, held in ((line, True), (loop_line, False)):
        docs = [Document(probe=probe, text=f"{text}\n" * 2)]
        assert signature.evaluate(docs).held is held, (key, text)


def test_load_kb_refuses_a_file_with_an_unbounded_pattern_and_changes_nothing(db, tmp_path):
    call_command("load_kb", stdout=StringIO())
    before = list(Symptom.objects.values_list("key", "version"))
    document = yaml.safe_load(SEED.read_text())
    document["symptoms"][2]["signature"] = {
        "any": [{"probe": "kernel_log", "regex": "ok"}, {"probe": "kernel_log", "regex": r"(a+)\1b"}]
    }
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(document))
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was changed"):
        call_command("load_kb", str(tmp_path / "bad.yaml"), stdout=StringIO(), stderr=err)
    assert "signature.any[1].regex: this pattern cannot be run in bounded time (backreference)" in err.getvalue()
    assert list(Symptom.objects.values_list("key", "version")) == before


OOM = Path(__file__).parent / "fixtures" / "catalogue" / "oom-killer"


def test_a_stored_signature_now_invalid_is_skipped_and_the_genuine_matches_are_kept(kb, make_run, caplog):
    # Saved before validation refused it: straight into the table, as an old database holds it.
    stale = Symptom.objects.create(
        key="aa-stall",
        title="Stored before bounded matching",
        threshold=0.5,
        enabled=True,
        signature={"probe": "kernel_log", "regex": r"(a|aa)+\1c"},
    )
    outputs = {f.name.split(".")[1]: f.read_text() for f in sorted(OOM.glob("positive.*.txt"))}
    outputs["kernel_log"] += "a" * 60 + "b\n"
    run = make_run(outputs)
    matches = matcher.match_run(run=run)
    assert "oom-killer" in {m.symptom.key for m in matches if m.matched}
    assert not Match.objects.filter(symptom=stale).exists()
    assert "backreference" in " ".join(matcher.skipped_symptoms()[stale.pk])
    assert any("aa-stall has an invalid signature, skipped" in r.getMessage() for r in caplog.records)


def test_a_where_regex_still_prefilters_log_lines_through_the_scan(kb):
    """The facts leaves' line prefilter reads the where regex's pattern from its bounded matcher."""
    plan = matcher.compiled_knowledge().plan
    leaves = [leaf for s in matcher.compiled_symptoms() for leaf in s.signature.facts_leaves()]
    regex_where = [lf for lf in leaves if any(op == "regex" for _n, op, _e in lf.where) and lf.table == "log_lines"]
    for lf in regex_where:
        assert plan.line_filters.get(lf), lf.where
    for lf in leaves:
        for _name, _op, expected in lf.where:
            assert not isinstance(expected, re.Pattern)  # nothing left for backtracking re to run


def test_compiling_the_knowledge_base_does_not_spend_a_runs_matching_budget(kb, make_run, monkeypatch):
    """The knowledge base compiles once per process (or after an edit): on a busy worker that took longer than the
    whole budget, and the first run it served got no diagnosis at all ("48 of 48 symptoms were not evaluated")."""
    compile_once = matcher.compiled_knowledge

    def slow_compile():
        time.sleep(2.5)  # a compilation on a loaded machine
        return compile_once()

    monkeypatch.setattr(matcher, "compiled_knowledge", slow_compile)
    run = make_run({"kernel_log": "[ 5.1] EXT4-fs error (device sda1): ext4_find_entry: reading directory lblock 0\n"})
    outcome = matcher.match_run_bounded(run=run, budget=2.0)
    assert outcome.note == "", outcome.note
