"""The facts_for contract over every fixture: table names and fields as TABLES says, JSON values only,
{} for unknown probes and note-only outputs, and no exception for any bytes at all."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagnostics import probes
from diagnostics.parsers import _TEXT_PARSERS, PROBE_TABLES, TABLES, facts_for, pcap

FIXTURES = Path(__file__).parent / "fixtures"
ALL = sorted(p for p in FIXTURES.glob("*/*") if p.suffix in (".txt", ".pcap"))


def probe_of(path: Path) -> str:
    return path.parent.name


def test_every_registered_probe_has_a_parser_and_its_tables_are_documented():
    assert set(PROBE_TABLES) == probes.evidence_probes()
    assert {table for tables in PROBE_TABLES.values() for table in tables} == set(TABLES)
    assert all(fields and len(set(fields)) == len(fields) for fields in TABLES.values())


def test_every_fixture_folder_is_a_probe_name():
    assert {probe_of(p) for p in ALL} <= probes.evidence_probes()


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_fixture_yields_only_its_probes_tables_with_the_documented_fields(path):
    facts = facts_for(probe_of(path), path.read_bytes())
    assert set(facts) <= set(PROBE_TABLES[probe_of(path)])
    for table, rows in facts.items():
        for row in rows:
            assert tuple(row) == TABLES[table]
            assert all(v is None or isinstance(v, str | int | float | bool) for v in row.values())
    json.dumps(facts, allow_nan=False)


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_outputs_cut_anywhere_or_with_the_runners_marker_still_parse(path, caplog):
    data = path.read_bytes()
    marker = b"\n[... 4242 bytes not kept ...]\n"
    variants = [data[: len(data) // 3], data[: len(data) // 2], data[:-5], data[:1],
                data[: len(data) // 3] + marker + data[-len(data) // 3 :]]  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="diagnostics.parsers"):
        for variant in variants:
            assert isinstance(facts_for(probe_of(path), variant), dict)
    assert not caplog.records, "a parser raised on a cut output"


@pytest.mark.parametrize("probe", sorted(PROBE_TABLES))
def test_empty_output_and_notes_alone_give_no_facts(probe):
    assert facts_for(probe, b"") == {}
    assert facts_for(probe, f"probe: {probe} not installed\n".encode()) == {}
    assert facts_for(probe, b"\n\n[... 12 bytes not kept ...]\n") == {}


def test_an_unknown_probe_or_a_non_bytes_output_gives_no_facts():
    assert facts_for("no_such_probe", b"state ESTAB 3\n") == {}
    assert facts_for(None, b"x") == {}  # type: ignore[arg-type]
    assert facts_for("sockets", None) == {}  # type: ignore[arg-type]


def test_a_memoryview_from_the_database_is_read_like_bytes():
    data = (FIXTURES / "sockets" / "varnish_close_wait.txt").read_bytes()
    assert facts_for("sockets", memoryview(data)) == facts_for("sockets", data)


def test_a_parser_that_raises_is_logged_and_costs_only_its_facts(monkeypatch, caplog):
    def broken(text, recorded_at):
        raise RuntimeError("parser bug")

    monkeypatch.setitem(_TEXT_PARSERS, "load", broken)
    with caplog.at_level(logging.ERROR, logger="diagnostics.parsers"):
        assert facts_for("load", b"1.0 1.0 1.0 1/100 42\n") == {}
    assert "parser bug" in caplog.text


# Lines of every real fixture, to build inputs that look almost like real outputs.
_LINES = sorted({line for p in ALL if p.suffix == ".txt" for line in p.read_bytes().splitlines()})
_NEAR_REAL = st.lists(st.sampled_from(_LINES) | st.binary(max_size=80), max_size=30).map(b"\n".join)
_PCAPS = [p.read_bytes() for p in ALL if p.suffix == ".pcap"]


@pytest.mark.parametrize("probe", [*sorted(PROBE_TABLES), "nope"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=4096) | _NEAR_REAL)
def test_facts_for_never_raises_and_no_parser_fails_on_any_bytes(probe, data):
    facts = facts_for(probe, data)
    assert isinstance(facts, dict)
    if probe in _TEXT_PARSERS:  # the parsers themselves, without facts_for's safety net
        _TEXT_PARSERS[probe](data.decode("utf-8", errors="replace"), None)
    json.dumps(facts, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(pcap_index=st.integers(0, len(_PCAPS) - 1), cut=st.integers(0, 4000), junk=st.binary(max_size=64),
       flip=st.integers(0, 4000))  # fmt: skip
def test_the_pcap_parser_survives_cut_and_corrupted_captures(pcap_index, cut, junk, flip):
    data = bytearray(_PCAPS[pcap_index][: max(cut, 24)] + junk)
    if flip < len(data):
        data[flip] ^= 0xFF
    facts = pcap.parse_pcap(bytes(data))
    assert set(facts) == {"flows", "packets_summary"}
