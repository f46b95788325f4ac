"""Facts are parsed per table on demand, and a log-message predicate reads only the lines the scan lets through.

Every answer must equal the one a full parse gives: the rows of chosen lines equal the full parse's
rows of those lines, and a signature evaluated through the prefilter equals it evaluated on fully
parsed facts, on the real log fixtures and on lines built to trip the prefilter up.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from diagnostics.knowledge import matcher
from diagnostics.knowledge.matcher import CompiledSymptom
from diagnostics.knowledge.signature import Document, compile_signature
from diagnostics.models import Evidence
from diagnostics.parsers import LOG_PROBES, facts_for
from diagnostics.parsers.logs import parse_log_lines, parse_log_lines_at

FIXTURES = Path(__file__).parent / "fixtures"
RECORDED = dt.datetime(2026, 11, 22, 0, 45, tzinfo=dt.UTC)
LOG_FIXTURES = sorted(path for probe in LOG_PROBES for path in (FIXTURES / probe).glob("*.txt"))

# Lines in the formats whose message is not simply the line: nginx puts "[level] " before it,
# syslog and dmesg cut a prefix off, a PRI goes, a header is no line, \x1c is \s only for str.
TRICKY = (
    "==> /var/log/nginx/error.log <==\n"
    "2026/11/21 23:51:32 [error] 812#812: *1 connect() failed (111: Connection refused) while connecting\n"
    "2026/11/21 23:51:33 [crit] 812#812: accept4() failed (24: Too many open files)\n"
    "==> /var/log/messages <==\n"
    "Nov 21 23:51:32 web kernel: [3018172.820223] do_IRQ: 1.221 No irq handler for vector (irq -1)\n"
    "<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8\n"
    "Nov 21 23:51:34 web sshd[12]: error:\x1cbad packet length\n"
    "Nov 21 23:51:35 web sshd[13]: Failed password for root from 10.0.0.9 port 4022 ssh2\n"
    "probe: tail exited 1\n"
    "[12.500000] eth0: link down\n"
    "@4000000068d3c7a91c2b7e5c tcpserver: status: 3/40\n"
    "2026-11-21T23:51:32.123456+00:00 web sshd[14]: Connection closed by 10.0.0.9\n"
    "Nov 21 23:51:36 web sshd[15]: FAILED PASSWORD for admin\n"
)
CRLF = TRICKY.replace("\n", "\r\n")

WHERE_REGEXES = [
    r"^\[error\] \*1 connect",  # nginx: the "[error] " is only in the message
    r"^do_IRQ",  # the uptime is cut off the front
    r"^'su root'",  # after a PRI and a syslog prefix
    r"error:\sbad",  # \x1c is whitespace to str regexes, not to bytes ones
    r"(?i)failed password for \w+$",
    r"\bpassword\b",
    r"^Connection closed by [\d.]+$",
    r"link down$",
    r"status: \d+/\d+",
    r"nothing of the kind",
]


def spans_of(text: str) -> list[tuple[int, int, int]]:
    spans, start = [], 0
    for line_no, line in enumerate(text.split("\n"), start=1):
        spans.append((line_no, start, start + len(line)))
        start += len(line) + 1
    if text.endswith("\n"):
        spans.pop()
    return spans


@pytest.mark.parametrize("text", [TRICKY, CRLF, *(p.read_text() for p in LOG_FIXTURES)])
def test_rows_read_at_chosen_lines_equal_the_full_parses_rows_of_those_lines(text):
    full = parse_log_lines(text, recorded_at=RECORDED)
    spans = spans_of(text)
    assert parse_log_lines_at(text, spans, recorded_at=RECORDED) == full
    every_other = spans[::2]
    chosen = {line_no for line_no, _start, _end in every_other}
    assert parse_log_lines_at(text, every_other, recorded_at=RECORDED) == [
        row for row in full if row["line_no"] in chosen
    ]


def test_facts_for_reads_only_the_tables_asked_for_and_only_for_a_probe_that_yields_them():
    sockets = (FIXTURES / "sockets").glob("*")
    output = next(p for p in sockets if p.is_file()).read_bytes()
    assert facts_for("sockets", output, tables={"log_lines"}) == {}
    assert set(facts_for("sockets", output, tables={"sockets"})) <= {"sockets", "socket_states", "tcp_limits"}
    log = (FIXTURES / "log_tail" / "messages.txt").read_bytes()
    assert facts_for("log_tail", log, tables={"log_lines"}) == facts_for("log_tail", log)


def symptoms_for(specs: list[dict]) -> list[CompiledSymptom]:
    return [CompiledSymptom(i, f"s{i}", 1, 0.5, compile_signature(spec)) for i, spec in enumerate(specs)]


def leaf_specs() -> list[dict]:
    specs = []
    for regex in WHERE_REGEXES:
        specs.append({"facts": "log_lines", "where": {"message": {"regex": regex}}, "describe": "{count} line(s)"})
        specs.append({"facts": "log_lines", "where": {"message": {"regex": regex}, "program": "sshd"}, "per": "pid"})
    specs.append({"facts": "log_lines", "where": {"message": {"contains": "] 812#"}}})  # not in any message
    specs.append({"facts": "log_lines", "where": {"message": {"contains": "Too many open files"}}})
    specs.append({"facts": "log_lines", "where": {"program": "kernel"}, "count": {"gte": 1}})  # no prefilter
    specs.append({"regex": "Failed password", "probe": "*", "flags": "i"})
    return specs


def evidence(probe: str, text: str) -> Evidence:
    return Evidence(probe=probe, step=0, command="tail", exit_status=0, output=text.encode(), recorded_at=RECORDED)


@pytest.mark.parametrize("text", [TRICKY, CRLF, *(p.read_text() for p in LOG_FIXTURES)])
def test_a_signature_answers_the_same_through_the_prefilter_as_on_fully_parsed_facts(text):
    symptoms = symptoms_for(leaf_specs())
    plan = matcher.scan_plan([s.signature for s in symptoms])
    assert sum(leaf in plan.line_filters for s in symptoms for leaf in s.signature.facts_leaves()) == 22
    scanned = matcher.documents_for([evidence("system_log", text)], plan=plan)
    parsed = [
        Document(probe="system_log", text=text, evidence_id=None, step=0, facts=facts_for(
            "system_log", text.encode(), recorded_at=RECORDED))
    ]  # fmt: skip
    for symptom in symptoms:
        lazy, full = symptom.signature.evaluate(scanned), symptom.signature.evaluate(parsed)
        assert (lazy.held, lazy.score, lazy.reasons, lazy.citations) == (
            full.held, full.score, full.reasons, full.citations), symptom.key  # fmt: skip


def test_a_message_predicate_parses_only_candidate_lines_and_other_tables_not_at_all():
    symptoms = symptoms_for([{"facts": "log_lines", "where": {"message": {"regex": r"(?i)failed password"}}}])
    plan = matcher.scan_plan([s.signature for s in symptoms])
    log, sockets = evidence("system_log", TRICKY), evidence("sockets", "State Recv-Q Send-Q\n")
    documents = matcher.documents_for([log, sockets], plan=plan)
    assert symptoms[0].signature.evaluate(documents).held
    # Two lines say "failed password" (any case) and the two nginx lines may: four read, no full parse.
    assert sorted(documents[0]._line_rows["log_lines"]) == [2, 3, 8, 13]
    assert documents[0]._tables == {}
    assert documents[1]._tables == {} and documents[1]._line_rows == {}  # sockets yields no log_lines


def test_a_prefilter_past_its_cap_falls_back_to_the_full_parse(monkeypatch):
    monkeypatch.setattr(matcher, "PREFILTER_LINES", 3)
    text = "".join(f"Nov 21 23:51:{n % 60:02d} web sshd[{n}]: Failed password for root\n" for n in range(10))
    symptoms = symptoms_for([{"facts": "log_lines", "where": {"message": {"regex": "Failed"}}, "count": {"gte": 10}}])
    plan = matcher.scan_plan([s.signature for s in symptoms])
    documents = matcher.documents_for([evidence("system_log", text)], plan=plan)
    assert symptoms[0].signature.evaluate(documents).held
    assert len(documents[0]._tables["log_lines"]) == 10
