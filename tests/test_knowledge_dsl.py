"""The signature language: validation names the path of every problem; evaluation on hand-built facts."""

from __future__ import annotations

import pytest

from diagnostics.knowledge.signature import Document, SignatureError, compile_signature

TABLES = {
    "syscalls": ("pid", "time", "syscall", "args", "fd", "family", "address", "port", "result", "errno", "duration"),
    "sockets": ("state", "recv_q", "send_q", "local_address", "local_port", "peer_address", "peer_port", "process"),
}
PROBES = {"strace", "sockets", "kernel_log", "system_log"}


def compile_(spec):
    return compile_signature(spec, tables=TABLES, probes=PROBES)


LEAF = {"facts": "syscalls", "where": {"syscall": "connect"}}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"any": [LEAF, {"facts": "syscalls", "where": {"duration": {"ge": 5}}}]},
            'signature.any[1].where.duration: unknown operator "ge"',
        ),
        ({"probe": "kernel_log", "regex": "No irq (handler"}, "signature.regex: bad regular expression"),
        ({"facts": "packets"}, 'signature.facts: unknown fact table "packets"'),
        ({"facts": "sockets", "where": {"colour": "red"}}, 'signature.where.colour: unknown field "colour"'),
        ({"all": [LEAF], "weight": 2}, "signature.weight: unknown key"),
        ({"probe": "kernel_log", "regex": "x", "flavour": 1}, "signature.flavour: unknown key"),
        ({"probe": "dmesg", "regex": "x"}, 'signature.probe: unknown probe "dmesg"'),
        ({"regex": "x"}, "signature.probe: required"),
        ({"all": []}, "signature.all: expected a non-empty list"),
        ({"not": {"any": [LEAF, "connect"]}}, "signature.not.any[1]: expected a node"),
        ({"facts": "sockets", "count": {"atleast": 3}}, 'signature.count: unknown operator "atleast"'),
        (
            {"facts": "sockets", "aggregate": {"field": "send_q", "op": "median", "gte": 1}},
            'signature.aggregate.op: unknown aggregate "median"',
        ),
        ({"facts": "sockets", "per": "peer"}, 'signature.per: unknown field "peer"'),
        ({"facts": "sockets", "where": {"state": ["ESTAB"]}}, "signature.where.state: a list needs an operator"),
        ({"facts": "sockets", "where": {"state": {"in": "ESTAB"}}}, "signature.where.state.in: expected a list"),
        ({"probe": "strace", "regex": "x", "weight": 0}, "signature.weight: expected a number above 0"),
        ({"probe": "strace", "regex": "x", "min_matches": 0}, "signature.min_matches: expected a whole number"),
        ({"probe": "strace", "regex": "x", "flags": "q"}, "signature.flags: expected some of the letters"),
        ({"weird": 1}, "signature: unknown node with keys weird"),
        ("connect", "signature: expected a node"),
    ],
)
def test_validation_names_the_path_of_the_problem(spec, message):
    with pytest.raises(SignatureError) as caught:
        compile_(spec)
    assert any(error.startswith(message) for error in caught.value.errors), caught.value.errors


def test_validation_refuses_trees_nested_too_deeply():
    spec = LEAF
    for _ in range(10):
        spec = {"not": spec}
    with pytest.raises(SignatureError, match="nested too deeply"):
        compile_(spec)


def test_validation_refuses_signatures_with_too_many_nodes():
    with pytest.raises(SignatureError, match="too many nodes"):
        compile_({"any": [LEAF] * 250})


def test_validation_lists_every_problem_at_once():
    with pytest.raises(SignatureError) as caught:
        compile_({"all": [{"facts": "nope"}, {"probe": "strace", "regex": "("}]})
    assert len(caught.value.errors) == 2


def test_field_names_are_not_checked_when_no_tables_are_known():
    compile_signature({"facts": "anything", "where": {"whatever": 1}}, tables=None, probes=None, check_names=False)


CONNECTS = [
    {"syscall": "connect", "port": 113, "duration": 26.01, "errno": "ETIMEDOUT", "line_no": 2},
    {"syscall": "connect", "port": "113", "duration": 0.001, "errno": "", "line_no": 5},
    {"syscall": "read", "port": None, "duration": 0.2, "line_no": 7},
]
SOCKETS = [
    *({"state": "CLOSE-WAIT", "peer_address": "203.0.113.9", "send_q": 1000} for _ in range(25)),
    *({"state": "CLOSE-WAIT", "peer_address": "198.51.100.4", "send_q": 10} for _ in range(5)),
    {"state": "ESTAB", "peer_address": "192.0.2.1", "send_q": 0},
]
STRACE_TEXT = "\n".join(f"line {n}" for n in range(1, 9))


def docs():
    return [
        Document(probe="strace", text=STRACE_TEXT, evidence_id=1, step=0, facts={"syscalls": CONNECTS}),
        Document(probe="sockets", text="", evidence_id=2, step=1, facts={"sockets": SOCKETS}),
    ]


def evaluate(spec):
    return compile_(spec).evaluate(docs())


def test_a_facts_leaf_counts_rows_meeting_every_condition_and_cites_their_lines():
    result = evaluate(
        {
            "facts": "syscalls",
            "where": {"syscall": "connect", "port": 113, "duration": {"gte": 5}},
            "describe": "{count} slow connect(s)",
        }
    )
    assert result.held
    assert [(c["evidence_id"], c["line_start"], c["text"]) for c in result.citations] == [(1, 2, "line 2")]
    assert result.reasons == ["1 slow connect(s)"]


def test_numbers_given_as_text_compare_as_numbers():
    assert evaluate({"facts": "syscalls", "where": {"port": 113}, "count": {"eq": 2}}).held


@pytest.mark.parametrize(
    ("where", "count"),
    [
        ({"errno": {"ne": "ETIMEDOUT"}}, 2),
        ({"duration": {"lt": 1}}, 2),
        ({"duration": {"lte": 0.2}}, 2),
        ({"duration": {"gt": 26}}, 1),
        ({"syscall": {"in": ["read", "write"]}}, 1),
        ({"errno": {"contains": "TIMED"}}, 1),
        ({"errno": {"regex": "^E[A-Z]+OUT$"}}, 1),
        ({"port": {"gte": 100}}, 2),
    ],
)
def test_each_operator_filters_rows(where, count):
    assert evaluate({"facts": "syscalls", "where": where, "count": {"eq": count}}).held


def test_per_compares_the_largest_group_instead_of_the_total():
    held = evaluate(
        {
            "facts": "sockets",
            "where": {"state": "CLOSE-WAIT"},
            "per": "peer_address",
            "count": {"gte": 20},
            "describe": "{count} towards {group}",
        }
    )
    assert held.held and held.reasons == ["25 towards 203.0.113.9"]
    assert not evaluate(
        {"facts": "sockets", "where": {"state": "CLOSE-WAIT"}, "per": "peer_address", "count": {"gte": 26}}
    ).held


def test_aggregate_compares_a_sum_max_min_or_average():
    base = {"facts": "sockets", "where": {"state": "CLOSE-WAIT"}}
    assert evaluate({**base, "aggregate": {"field": "send_q", "op": "sum", "gte": 25050}}).held
    assert evaluate({**base, "aggregate": {"field": "send_q", "op": "max", "eq": 1000}}).held
    assert evaluate({**base, "aggregate": {"field": "send_q", "op": "min", "eq": 10}}).held
    assert not evaluate({**base, "aggregate": {"field": "send_q", "op": "avg", "gte": 1000}}).held


def test_a_regex_leaf_cites_each_matching_line_once_and_honours_min_matches():
    text = "boot\nNo irq handler for vector (irq -1)\nok\nno IRQ handler for vector again"
    doc = Document(probe="kernel_log", text=text, evidence_id=7, step=3)
    spec = {"probe": "kernel_log", "regex": "no irq handler for vector", "flags": "i", "min_matches": 2}
    result = compile_(spec).evaluate([doc])
    assert result.held
    assert [(c["line_start"], c["line_end"]) for c in result.citations] == [(2, 2), (4, 4)]
    assert not compile_({**spec, "min_matches": 3}).evaluate([doc]).held
    assert not compile_({**spec, "probe": "system_log"}).evaluate([doc]).held


def test_all_needs_every_child_and_scores_by_weight():
    result = evaluate(
        {
            "all": [
                {"facts": "syscalls", "where": {"syscall": "connect"}, "weight": 3},
                {"facts": "syscalls", "where": {"syscall": "accept"}, "weight": 1},
            ]
        }
    )
    assert not result.held
    assert result.score == 0.75


def test_any_counts_as_its_best_alternative():
    result = evaluate(
        {
            "any": [
                {"facts": "syscalls", "where": {"syscall": "accept"}, "weight": 2},
                {"facts": "syscalls", "where": {"syscall": "connect"}, "weight": 1},
            ]
        }
    )
    assert result.held and result.score == 1.0


def test_not_holds_when_its_subtree_does_not():
    missing = evaluate({"not": {"facts": "syscalls", "where": {"syscall": "accept"}}, "describe": "no accept"})
    assert missing.held and missing.score == 1.0 and missing.reasons == ["no accept"]
    present = evaluate({"not": {"facts": "syscalls", "where": {"syscall": "connect"}}})
    assert not present.held and present.score == 0.0


def test_facts_leaves_can_be_restricted_to_some_probes():
    spec = {"facts": "syscalls", "where": {"syscall": "connect"}, "probe": "sockets"}
    assert not evaluate(spec).held
