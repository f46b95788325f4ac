"""Symptom signatures: a small declarative language, validated and compiled, never eval'd.

A signature is a tree. Inner nodes combine: ``{"all": [...]}``, ``{"any": [...]}``,
``{"not": node}``. Leaves test the evidence of a run:

* regex leaf -- a regular expression over the raw output of some probes, every
  matching line cited::

    {"probe": "kernel_log", "regex": "No irq handler for vector", "flags": "i",
     "min_matches": 1, "weight": 1.0, "describe": "kernel reports an IRQ with no handler"}

* facts leaf -- a predicate over a parsed fact table (``diagnostics.parsers``)::

    {"facts": "syscalls", "where": {"syscall": "connect", "port": 113, "duration": {"gte": 5}},
     "count": {"gte": 1}, "per": "peer_address", "probe": "strace",
     "aggregate": {"field": "send_q", "op": "sum", "gte": 1000}, "weight": 2, "describe": "..."}

  ``where`` compares fields with eq/ne/gt/gte/lt/lte/in/not_in/contains/regex (a bare
  value means eq); ``count`` compares the number of rows left (default ``{"gte": 1}``), or
  with ``per`` the size of the largest group of rows sharing that field;
  ``aggregate`` compares sum/max/min/avg of a field over those rows. ``own_address: message``
  drops rows whose field names IP addresses, none of them this host's (its ``interfaces``
  evidence): another container's or host's line (``diagnostics.knowledge.addresses``).

Scoring: each leaf carries a weight (default 1). An ``all`` adds up its children;
an ``any`` counts as its best alternative (so listing alternative evidence does not
dilute the score); a ``not`` is worth its subtree's weight when the subtree does
NOT hold. Score = weight held / total weight; the root must hold for a match.
``describe`` may mention ``{count}``, ``{value}`` (the aggregate) and ``{group}``
(the ``per`` value of the largest group): they are filled in for the "why".

Bounded: every regular expression (a regex leaf's, a ``where`` regex) is matched line by line
by hyperscan (``diagnostics.scanning``), in time linear in the evidence whatever the pattern;
Python's backtracking ``re`` never runs one on evidence. Validation refuses what hyperscan
cannot run (backreferences, lookarounds, conditional and atomic groups, possessive
quantifiers) and the ``s`` flag (a match never spans lines). ``flags: x`` (verbose) is
accepted: it only changes how the pattern is written. A ``Budget`` given to
``Signature.evaluate`` stops an evaluation cleanly (``BudgetExceeded``) once its time is spent.
"""

from __future__ import annotations

import bisect
import functools
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from diagnostics.knowledge.addresses import host_addresses, names_this_host

MAX_DEPTH = 8
MAX_NODES = 200
MAX_REGEX = 2000
CITATIONS_PER_LEAF = 20
CITED_TEXT = 300  # characters of a cited line kept in the citation
ROWS_PER_CHECK = 1000  # fact rows compared between two looks at the budget

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte")
OPERATORS = (*COMPARISONS, "in", "not_in", "contains", "regex")
AGGREGATES = ("sum", "max", "min", "avg")
REGEX_FLAGS = {"i": re.IGNORECASE, "x": re.VERBOSE}
# Fields the parsers may add to any row besides the table's own.
ROW_EXTRAS = ("line_no",)

COMMON_KEYS = {"weight", "describe"}
REGEX_KEYS = {"probe", "regex", "flags", "min_matches"} | COMMON_KEYS
FACTS_KEYS = {"facts", "where", "count", "aggregate", "per", "probe", "own_address"} | COMMON_KEYS


class BudgetExceeded(Exception):
    """An evaluation stopped because its ``Budget`` ran out; ``reason`` says so in words."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class Budget:
    """A deadline shared by every evaluation of one piece of work (matching one run, a preview).

    Leaves call ``check`` before each unit of work (a document scanned, a table read, a thousand
    rows compared); past the deadline it raises ``BudgetExceeded``. A regex scan itself is linear
    in its document, so the overshoot is at most one such unit. ``Budget(seconds=0)`` is spent
    before anything runs.
    """

    def __init__(self, *, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self.deadline = clock() + seconds
        self.spent_on: str | None = None  # what was about to run when the budget ran out

    def check(self, what: str) -> None:
        if self.spent_on is None and self._clock() < self.deadline:
            return
        self.spent_on = self.spent_on or what
        raise BudgetExceeded(f"the matching budget of {self.seconds:g} s ran out before {self.spent_on}")


def _check(docs, what: str) -> None:
    budget = docs[0].budget if docs else None
    if budget is not None:
        budget.check(what)


class SignatureError(ValueError):
    """A signature that cannot be compiled; ``errors`` name the path of each problem."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


# --- what the evaluator reads ------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ScanPlan:
    """What one shared multi-pattern scan serves, as data: the matcher builds it and documents carry
    it; compiled leaves are never changed, so one signature can be read under several plans at once.

    ``scan_ids``: a regex leaf -> its pattern id in ``scanner``. ``line_filters``: a facts leaf -> the
    ids of the loose patterns that, together, match every line its ``where`` can keep (see
    ``Document.table``). Leaves are keys by identity. A leaf absent from both reads on its own.
    """

    scanner: Any = None  # a diagnostics.scanning.Scanner, or None: no shared scan
    cap: int = CITATIONS_PER_LEAF  # the scan's cap on cited lines per pattern
    scan_ids: Mapping[Any, int] = field(default_factory=dict)
    line_filters: Mapping[Any, tuple[int, ...]] = field(default_factory=dict)


NO_SCAN = ScanPlan()


class Document:
    """One piece of evidence as signatures see it: its text, line offsets and facts, each computed once.

    Facts are parsed lazily, one table at a time (``table``). ``facts_loader(tables=None,
    spans=None)`` is ``diagnostics.parsers.facts_for`` bound to the evidence: ``tables`` names the
    tables wanted (None: all), ``spans`` the only lines to read, as ``(line_no, start, end)``
    offsets into ``text``. ``tables`` (the tables this probe can yield; None: unknown) lets a table
    the probe never yields cost nothing.
    """

    def __init__(
        self,
        *,
        probe: str,
        text: str = "",
        evidence_id: int | None = None,
        step: int | None = None,
        facts: dict[str, list[dict]] | None = None,
        facts_loader: Callable[..., dict[str, list[dict]]] | None = None,
        tables: Iterable[str] | None = None,
    ):
        self.probe = probe
        self.text = text
        self.evidence_id = evidence_id
        self.step = step
        self._facts = facts
        self._facts_loader = facts_loader
        self.tables = frozenset(tables) if tables is not None else None
        self._tables: dict[str, list[dict]] = {}  # tables parsed whole, on demand
        self._line_rows: dict[str, dict[int, dict | None]] = {}  # line_no -> row, of lines read alone
        self._line_starts: list[int] | None = None
        self.plan = NO_SCAN  # the matcher's shared scan, set by the matcher
        self._hits: dict | None = None
        self.budget: Budget | None = None  # set by Signature.evaluate(budget=...) or the matcher

    def scan_hits(self, scan_id: int) -> list | None:
        """Lines of this document matching scanned pattern ``scan_id``; None when there is no scan."""
        if self.plan.scanner is None:
            return None
        if self._hits is None:
            self._hits = self.plan.scanner.scan(self.text.encode(), max_hits_per_pattern=self.plan.cap)
        return self._hits.get(scan_id, [])

    @property
    def facts(self) -> dict[str, list[dict]]:
        """Every table at once (signatures read ``table``, which parses only what they ask for)."""
        if self._facts is None:
            self._facts = (self._facts_loader() if self._facts_loader else None) or {}
        return self._facts

    def table(self, name: str, *, line_filter: Iterable[int] = ()) -> list[dict]:
        """The rows of one fact table, parsing only that table, at most once.

        ``line_filter``: ids of scanned patterns that, together, match every line a caller's
        predicate can hold on. When the scan ran on ASCII text (where its byte offsets are
        character offsets) and none of them reached its cap, only those lines are read and the
        answer is the table's rows of those lines, in table order (each read at most once). A
        caller may use it only when its predicate keeps no row of any other line.
        """
        if self._facts is not None:
            return self._facts.get(name, [])
        if name in self._tables:
            return self._tables[name]
        if self._facts_loader is None or (self.tables is not None and name not in self.tables):
            return []
        if line_filter:
            rows = self._rows_at(name, tuple(line_filter))
            if rows is not None:
                return rows
        loaded = self._facts_loader(tables=(name,)) or {}
        for table, rows in loaded.items():  # tables read in the same pass come along
            self._tables.setdefault(table, rows)
        return self._tables.setdefault(name, [])

    def _rows_at(self, name: str, scan_ids: tuple[int, ...]) -> list[dict] | None:
        if self.plan.scanner is None or not self.text or not self.text.isascii():
            return None
        spans: dict[int, tuple[int, int, int]] = {}
        for scan_id in scan_ids:
            hits = self.scan_hits(scan_id)
            if hits is None or len(hits) >= self.plan.scanner.max_hits(scan_id, self.plan.cap):
                return None  # capped: there may be more lines than were cited
            for hit in hits:
                spans[hit.line_no] = (hit.line_no, hit.line_start, hit.line_end)
        known = self._line_rows.setdefault(name, {})
        missing = [spans[n] for n in spans if n not in known]
        if missing:
            assert self._facts_loader is not None  # rows() asks for lines only when there is a loader
            loaded = (self._facts_loader(tables=(name,), spans=missing) or {}).get(name, [])
            by_line = {row.get("line_no"): row for row in loaded}
            for line_no, _start, _end in missing:
                known[line_no] = by_line.get(line_no)
        return [row for row in (known[n] for n in sorted(spans)) if row is not None]

    def _starts(self) -> list[int]:
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        return self._line_starts

    def line_of(self, offset: int) -> int:
        """1-based line number holding character ``offset``."""
        return bisect.bisect_right(self._starts(), offset)

    def line_text(self, line_no: int) -> str:
        starts = self._starts()
        if not 1 <= line_no <= len(starts):
            return ""
        end = starts[line_no] - 1 if line_no < len(starts) else len(self.text)
        return self.text[starts[line_no - 1] : end]

    def cite(self, line_start: int | None, line_end: int | None, text: str) -> dict:
        return {
            "evidence_id": self.evidence_id,
            "step": self.step,
            "probe": self.probe,
            "line_start": line_start,
            "line_end": line_end,
            "text": text.rstrip("\r")[:CITED_TEXT],
        }


@dataclass
class Result:
    held: bool
    weight_held: float
    weight_total: float
    citations: list[dict] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.weight_held / self.weight_total if self.weight_total else 0.0


# --- compiled nodes -----------------------------------------------------------------------


def _probe_selector(probe: Any) -> Callable[[str], bool]:
    if probe is None or probe == "*":
        return lambda name: True
    names = {probe} if isinstance(probe, str) else set(probe)
    return lambda name: name in names


class _All:
    def __init__(self, children):
        self.children = children

    def evaluate(self, docs):
        results = [child.evaluate(docs) for child in self.children]
        return Result(
            held=all(r.held for r in results),
            weight_held=sum(r.weight_held for r in results),
            weight_total=sum(r.weight_total for r in results),
            citations=[c for r in results for c in r.citations],
            reasons=[t for r in results for t in r.reasons],
        )


class _Any:
    def __init__(self, children):
        self.children = children

    def evaluate(self, docs):
        results = [child.evaluate(docs) for child in self.children]
        total = max(r.weight_total for r in results)
        best = max(r.score for r in results)
        return Result(
            held=any(r.held for r in results),
            weight_held=best * total,
            weight_total=total,
            citations=[c for r in results if r.held for c in r.citations],
            reasons=[t for r in results if r.held for t in r.reasons],
        )


class _Not:
    def __init__(self, child, describe: str):
        self.child = child
        self.describe = describe

    def evaluate(self, docs):
        inner = self.child.evaluate(docs)
        held = not inner.held
        return Result(
            held=held,
            weight_held=inner.weight_total if held else 0.0,
            weight_total=inner.weight_total,
            reasons=[self.describe] if held and self.describe else [],
        )


def _fill(describe: str, values: dict[str, Any]) -> str:
    # Only these placeholders, by substitution: str.format on stored text could reach attributes.
    def one(m):
        value = values.get(m.group(1))
        if value is None:
            return m.group(0)
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)

    return re.sub(r"\{(count|value|group)\}", one, describe)


class _Regex:
    def __init__(self, *, probe, regex, flags, scanner, min_matches, weight, describe):
        self.wants = _probe_selector(probe)
        self.regex = regex  # as the scan takes it: the verbose flag is inline, "i" is in flags
        self.flags = flags
        self.scanner = scanner  # its own one-pattern scan, for documents with no shared scan
        self.min_matches = min_matches
        self.weight = weight
        self.describe = describe

    def evaluate(self, docs):
        lines = 0
        citations: list[dict] = []
        for doc in docs:
            if not self.wants(doc.probe) or not doc.text:
                continue
            _check([doc], f"scanning {doc.probe} output")
            scan_id = doc.plan.scan_ids.get(self)
            hits = doc.scan_hits(scan_id) if scan_id is not None else None
            if hits is None:
                # No shared scan here: this regex's own, with the same line-by-line answers.
                cap = max(CITATIONS_PER_LEAF, self.min_matches)
                hits = self.scanner.scan(doc.text.encode(), max_hits_per_pattern=cap).get(0, [])
            lines += len(hits)
            for hit in hits[: max(0, CITATIONS_PER_LEAF - len(citations))]:
                citations.append(doc.cite(hit.line_no, hit.line_no, hit.text))
        held = lines >= self.min_matches
        return Result(
            held=held,
            weight_held=self.weight if held else 0.0,
            weight_total=self.weight,
            citations=citations if held else [],
            reasons=[_fill(self.describe, {"count": lines})] if held and self.describe else [],
        )


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _compare(op: str, actual: Any, expected: Any) -> bool:
    """One comparison, forgiving of "113" vs 113 and never raising on odd types."""
    if op in ("in", "not_in", "contains", "regex"):
        if actual is None:
            return False
        if op == "in":
            return any(_compare("eq", actual, item) for item in expected)
        if op == "not_in":
            return not any(_compare("eq", actual, item) for item in expected)
        if op == "contains":
            if isinstance(actual, list | tuple | set):
                return any(_compare("eq", item, expected) for item in actual)
            return str(expected) in str(actual)
        return expected.search(str(actual))  # a scanning.LineRegex: bounded, line by line
    left: Any
    right: Any
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        left = _number(actual)
        right = float(expected)
    elif isinstance(expected, str) and not isinstance(actual, str) and actual is not None:
        left, right = str(actual), expected
    else:
        left, right = actual, expected
    if op == "eq":
        return left == right
    if op == "ne":
        return left != right
    if left is None or right is None:
        return False
    try:
        return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[op]
    except TypeError:
        return False


class _Facts:
    def __init__(self, *, table, probe, where, count, aggregate, per, weight, describe, own_address=None):
        self.table = table
        self.own_address = own_address  # a field whose addresses must include one of the host's
        self.wants = _probe_selector(probe)
        self.where = where  # [(field, op, expected)]
        self.count = count  # [(op, n)]
        self.aggregate = aggregate  # (field, op, [(cmp, n)]) or None
        self.per = per
        self.weight = weight
        self.describe = describe

    def _keep(self, row: dict) -> bool:
        return all(_compare(op, row.get(name), expected) for name, op, expected in self.where)

    def evaluate(self, docs):
        rows: list[tuple[Document, dict]] = []
        own = host_addresses(doc.table("addresses") for doc in docs) if self.own_address else None
        for doc in docs:
            if self.wants(doc.probe):
                _check([doc], f"reading {self.table} of {doc.probe}")
                table = doc.table(self.table, line_filter=doc.plan.line_filters.get(self, ()))
                for start in range(0, len(table), ROWS_PER_CHECK):
                    if start:
                        _check([doc], f"comparing {self.table} rows of {doc.probe}")
                    rows.extend(
                        (doc, row)
                        for row in table[start : start + ROWS_PER_CHECK]
                        if self._keep(row) and names_this_host(row.get(self.own_address or ""), own)
                    )
        group = None
        if self.per:
            groups: dict[Any, list] = {}
            for doc, row in rows:
                groups.setdefault(row.get(self.per), []).append((doc, row))
            if groups:
                # Largest group; ties go to the first seen so the answer is stable.
                group, rows = max(groups.items(), key=lambda item: len(item[1]))
            else:
                rows = []
        count = len(rows)
        held = all(_compare(op, count, n) for op, n in self.count)
        value = None
        if self.aggregate:
            name, how, tests = self.aggregate
            numbers = [n for n in (_number(row.get(name)) for _, row in rows) if n is not None]
            if numbers:
                summaries: dict[str, Callable[[list[float]], float]] = {"sum": sum, "max": max, "min": min}
                value = summaries.get(how, lambda ns: sum(ns) / len(ns))(numbers)
            held = held and value is not None and all(_compare(op, value, n) for op, n in tests)
        citations = []
        if held:
            for doc, row in rows[:CITATIONS_PER_LEAF]:
                line = _number(row.get("line_no"))
                if line is not None and doc.line_text(int(line)):
                    citations.append(doc.cite(int(line), int(line), doc.line_text(int(line))))
                else:
                    shown = " ".join(f"{k}={v}" for k, v in row.items() if v not in (None, "") and k != "line_no")
                    citations.append(doc.cite(None, None, shown))
        reason = _fill(self.describe, {"count": count, "value": value, "group": group}) if self.describe else ""
        return Result(
            held=held,
            weight_held=self.weight if held else 0.0,
            weight_total=self.weight,
            citations=citations,
            reasons=[reason] if held and reason else [],
        )


# --- validation and compilation ----------------------------------------------------------


class _Compiler:
    def __init__(self, *, tables: dict[str, tuple[str, ...]] | None, probes: Iterable[str] | None):
        self.tables = tables
        self.probes = set(probes) if probes is not None else None
        self.errors: list[str] = []
        self.nodes = 0

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def node(self, spec: Any, path: str, depth: int):
        self.nodes += 1
        if self.nodes == MAX_NODES + 1:
            self.error(path, f"too many nodes (at most {MAX_NODES})")
        if depth > MAX_DEPTH:
            self.error(path, f"nested too deeply (at most {MAX_DEPTH} levels)")
            return None
        if not isinstance(spec, dict) or not spec:
            self.error(path, "expected a node: {all: [...]}, {any: [...]}, {not: ...} or a regex or facts leaf")
            return None
        for combiner in ("all", "any"):
            if combiner in spec:
                self.unknown(spec, {combiner}, path)
                children = spec[combiner]
                if not isinstance(children, list) or not children:
                    self.error(f"{path}.{combiner}", "expected a non-empty list of nodes")
                    return None
                compiled = [self.node(child, f"{path}.{combiner}[{i}]", depth + 1) for i, child in enumerate(children)]
                if any(c is None for c in compiled):
                    return None
                return _All(compiled) if combiner == "all" else _Any(compiled)
        if "not" in spec:
            self.unknown(spec, {"not", "describe"}, path)
            describe = self.text(spec, "describe", path)
            child = self.node(spec["not"], f"{path}.not", depth + 1)
            return _Not(child, describe) if child is not None else None
        if "regex" in spec:
            return self.regex_leaf(spec, path)
        if "facts" in spec:
            return self.facts_leaf(spec, path)
        self.error(path, f"unknown node with keys {', '.join(sorted(map(str, spec)))}")
        return None

    def unknown(self, spec: dict, allowed: set[str], path: str) -> None:
        for key in sorted(set(spec) - allowed, key=str):
            self.error(f"{path}.{key}", "unknown key")

    def text(self, spec: dict, key: str, path: str) -> str:
        value = spec.get(key, "")
        if not isinstance(value, str):
            self.error(f"{path}.{key}", "expected text")
            return ""
        return value

    def weight(self, spec: dict, path: str) -> float:
        value = spec.get("weight", 1.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 100:
            self.error(f"{path}.weight", "expected a number above 0 and at most 100")
            return 1.0
        return float(value)

    def probe(self, spec: dict, path: str, *, required: bool):
        if "probe" not in spec:
            if required:
                self.error(f"{path}.probe", 'required: a probe name, a list of them, or "*"')
            return None
        value = spec["probe"]
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            self.error(f"{path}.probe", 'expected a probe name, a list of them, or "*"')
            return None
        if value == "*":
            return value
        if self.probes is not None:
            for name in names:
                if name not in self.probes:
                    self.error(f"{path}.probe", f'unknown probe "{name}"')
        return value

    def compile_regex(self, pattern: Any, flags: int, path: str, *, leaf: bool = False):
        """The bounded matcher of one pattern (a one-pattern scan for a leaf, a ``LineRegex``
        for a ``where``); None, with the error at ``path``, when there is none."""
        from diagnostics import scanning

        if not isinstance(pattern, str) or not pattern:
            self.error(path, "expected a non-empty regular expression")
            return None
        if len(pattern) > MAX_REGEX:
            self.error(path, f"regular expression longer than {MAX_REGEX} characters")
            return None
        try:
            re.compile(pattern, flags | re.MULTILINE)  # compiled, never run: only for its error message
        except re.error as exc:
            self.error(path, f"bad regular expression: {exc}")
            return None
        regex = f"(?x){pattern}" if flags & re.VERBOSE else pattern
        letters = "i" if flags & re.IGNORECASE else ""
        try:
            return _leaf_scanner(regex, letters) if leaf else _line_regex(regex, letters)
        except scanning.PatternError as exc:
            if exc.construct:
                self.error(path, f"this pattern cannot be run in bounded time ({exc.construct}); {exc.advice}")
            else:
                self.error(path, f"this pattern cannot be matched line by line: {exc.reason}")
            return None

    def regex_leaf(self, spec: dict, path: str):
        self.unknown(spec, REGEX_KEYS, path)
        probe = self.probe(spec, path, required=True)
        flags = 0
        letters = spec.get("flags", "")
        if isinstance(letters, str) and "s" in letters:
            self.error(
                f"{path}.flags",
                "the s flag (a dot matching a newline) is not supported: matching is line by line and a "
                "match never spans lines; remove it",
            )
        elif not isinstance(letters, str) or set(letters) - set(REGEX_FLAGS):
            self.error(f"{path}.flags", f"expected some of the letters {''.join(REGEX_FLAGS)}")
        else:
            for letter in letters:
                flags |= REGEX_FLAGS[letter]
        scanner = self.compile_regex(spec["regex"], flags, f"{path}.regex", leaf=True)
        min_matches = spec.get("min_matches", 1)
        if isinstance(min_matches, bool) or not isinstance(min_matches, int) or min_matches < 1:
            self.error(f"{path}.min_matches", "expected a whole number of at least 1")
            min_matches = 1
        if scanner is None:
            return None
        [pattern] = scanner.patterns
        return _Regex(
            probe=probe,
            regex=pattern.regex,
            flags=pattern.flags,
            scanner=scanner,
            min_matches=min_matches,
            weight=self.weight(spec, path),
            describe=self.text(spec, "describe", path),
        )

    def field_name(self, table: str | None, name: Any, path: str) -> bool:
        if not isinstance(name, str) or not name:
            self.error(path, "expected a field name")
            return False
        if self.tables is not None and table in self.tables:
            known = self.tables[table]
            if name not in known and name not in ROW_EXTRAS:
                self.error(path, f'unknown field "{name}" of table "{table}" (known: {", ".join(known)})')
                return False
        return True

    def comparisons(self, spec: Any, path: str, *, allowed=COMPARISONS) -> list[tuple[str, float]]:
        if not isinstance(spec, dict) or not spec:
            self.error(path, f"expected comparisons such as {{gte: 1}} ({'/'.join(allowed)})")
            return []
        tests = []
        for op, n in spec.items():
            if op not in allowed:
                self.error(path, f'unknown operator "{op}" (expected {"/".join(allowed)})')
            elif isinstance(n, bool) or not isinstance(n, int | float):
                self.error(f"{path}.{op}", "expected a number")
            else:
                tests.append((op, n))
        return tests

    def condition(self, table, name, value, path) -> list[tuple[str, str, Any]]:
        if not isinstance(value, dict):
            if isinstance(value, list):
                self.error(path, "a list needs an operator: {in: [...]}")
                return []
            return [(name, "eq", value)]
        if not value:
            self.error(path, "expected an operator such as {gte: 5}")
        out = []
        for op, expected in value.items():
            if op not in OPERATORS:
                self.error(path, f'unknown operator "{op}" (expected {"/".join(OPERATORS)})')
                continue
            if op in ("gt", "gte", "lt", "lte") and (
                isinstance(expected, bool) or not isinstance(expected, int | float | str)
            ):
                self.error(f"{path}.{op}", "expected a number or text")
                continue
            if op in ("in", "not_in") and not isinstance(expected, list):
                self.error(f"{path}.{op}", "expected a list")
                continue
            if op in ("eq", "ne", "contains") and isinstance(expected, dict | list):
                self.error(f"{path}.{op}", "expected a single value")
                continue
            if op == "regex":
                expected = self.compile_regex(expected, 0, f"{path}.{op}")
                if expected is None:
                    continue
            out.append((name, op, expected))
        return out

    def facts_leaf(self, spec: dict, path: str):
        self.unknown(spec, FACTS_KEYS, path)
        table = spec["facts"]
        if not isinstance(table, str) or not table:
            self.error(f"{path}.facts", "expected a fact table name")
            table = None
        elif self.tables is not None and table not in self.tables:
            self.error(f"{path}.facts", f'unknown fact table "{table}" (known: {", ".join(sorted(self.tables))})')
            table = None
        probe = self.probe(spec, path, required=False)
        where = []
        raw_where = spec.get("where", {})
        if not isinstance(raw_where, dict):
            self.error(f"{path}.where", "expected a mapping of field to value or {operator: value}")
        else:
            for name, value in raw_where.items():
                if self.field_name(table, name, f"{path}.where.{name}"):
                    where.extend(self.condition(table, name, value, f"{path}.where.{name}"))
        count = self.comparisons(spec.get("count", {"gte": 1}), f"{path}.count")
        per = spec.get("per")
        if per is not None and not self.field_name(table, per, f"{path}.per"):
            per = None
        aggregate = None
        if "aggregate" in spec:
            raw = spec["aggregate"]
            apath = f"{path}.aggregate"
            if not isinstance(raw, dict):
                self.error(apath, "expected {field: ..., op: sum|max|min|avg, gte: N}")
            else:
                rest = {k: v for k, v in raw.items() if k not in ("field", "op")}
                ok = self.field_name(table, raw.get("field"), f"{apath}.field")
                if raw.get("op") not in AGGREGATES:
                    self.error(f"{apath}.op", f'unknown aggregate "{raw.get("op")}" (expected {"/".join(AGGREGATES)})')
                    ok = False
                tests = self.comparisons(rest, apath)
                if ok and tests:
                    aggregate = (raw["field"], raw["op"], tests)
        own_address = spec.get("own_address")
        if own_address is not None and not self.field_name(table, own_address, f"{path}.own_address"):
            own_address = None
        return _Facts(
            own_address=own_address,
            table=table,
            probe=probe,
            where=where,
            count=count,
            aggregate=aggregate,
            per=per,
            weight=self.weight(spec, path),
            describe=self.text(spec, "describe", path),
        )


# Compiled patterns, shared by every signature using them (compiling is the costly part of validation).
@functools.lru_cache(maxsize=2048)
def _leaf_scanner(regex: str, flags: str):
    from diagnostics import scanning

    return scanning.Scanner.compile([scanning.Pattern(0, regex, flags)])


@functools.lru_cache(maxsize=2048)
def _line_regex(regex: str, flags: str):
    from diagnostics import scanning

    return scanning.LineRegex(regex, flags)


def _known_tables() -> dict[str, tuple[str, ...]] | None:
    try:
        from diagnostics.parsers import TABLES
    except ImportError:
        return None  # parsers not installed yet: table and field names cannot be checked
    return dict(TABLES)


def _known_probes() -> set[str]:
    from diagnostics.probes import evidence_probes

    return evidence_probes()


class Signature:
    """A compiled signature: ``evaluate(documents) -> Result``."""

    def __init__(self, root):
        self.root = root

    def leaves(self) -> list:
        found, stack = [], [self.root]
        while stack:
            node = stack.pop()
            if isinstance(node, (_Regex, _Facts)):
                found.append(node)
            stack.extend(getattr(node, "children", ()))
            if isinstance(node, _Not):
                stack.append(node.child)
        return found

    def regex_leaves(self) -> list:
        return [leaf for leaf in self.leaves() if isinstance(leaf, _Regex)]

    def facts_leaves(self) -> list:
        return [leaf for leaf in self.leaves() if isinstance(leaf, _Facts)]

    def reads_any(self, documents: list[Document]) -> bool:
        """Whether any leaf has evidence to read here: a document of a probe it looks at (and,
        for a facts leaf, a probe that yields its table). When none has, a failed signature
        says nothing about the host: the run simply did not look."""
        from diagnostics.parsers import PROBE_TABLES

        for leaf in self.leaves():
            for doc in documents:
                if not leaf.wants(doc.probe):
                    continue
                if isinstance(leaf, _Regex) or leaf.table in PROBE_TABLES.get(doc.probe, ()):
                    return True
        return False

    def evaluate(self, documents: list[Document], *, budget: Budget | None = None) -> Result:
        """Raises BudgetExceeded when ``budget`` (or one already set on the documents) runs out."""
        if budget is not None:
            for doc in documents:
                doc.budget = budget
        return self.root.evaluate(documents)


def compile_signature(
    spec: Any,
    *,
    tables: dict[str, tuple[str, ...]] | None = None,
    probes: Iterable[str] | None = None,
    check_names: bool = True,
) -> Signature:
    """Validate and compile; SignatureError lists every problem with its path (``signature.any[1].where``).

    Table, field and probe names are checked against the parsers and the probe
    registry unless ``tables``/``probes`` are given or ``check_names`` is off.
    """
    if check_names:
        tables = tables if tables is not None else _known_tables()
        probes = probes if probes is not None else _known_probes()
    compiler = _Compiler(tables=tables, probes=probes)
    root = compiler.node(spec, "signature", 1)
    if compiler.errors or root is None:
        raise SignatureError(compiler.errors or ["signature: cannot be compiled"])
    return Signature(root)


def signature_errors(spec: Any, **kwargs) -> list[str]:
    """Every problem in ``spec``; empty when it compiles."""
    try:
        compile_signature(spec, **kwargs)
    except SignatureError as exc:
        return exc.errors
    return []
