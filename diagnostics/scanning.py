"""Multi-pattern, line-oriented regex scanning of evidence text.

Every knowledge-base signature is compiled once into a single hyperscan
database; one pass over a probe's output then finds, for each pattern, the
first lines it matches (cited with their 1-based line numbers).

Semantics are exactly those of Python's ``re.search`` applied to each line's
*bytes*, the pattern being encoded as UTF-8 (so ``\\d``, ``\\w``, ``\\s``,
``\\b`` and ``(?i)`` are ASCII, and ``.`` matches one byte). Lines are split on
``\\n`` only; a trailing ``\\r`` stays part of its line. To get there each
pattern is parsed with Python's own regex parser and re-emitted with every
character set spelled out as explicit bytes minus the newline, so a match can
never cross a line boundary and the two engines cannot disagree on classes or
case folding; ``\\A``/``\\Z`` become ``^``/``$`` in multiline mode. Constructs
hyperscan cannot run (backreferences, lookarounds, conditionals, atomic groups,
possessive quantifiers) raise :class:`PatternError` naming the pattern.

Finding the line of a match: hyperscan scans the pattern itself, with its
trailing optional repeats dropped and a trailing ``X{m,n}`` cut to ``X{m}``
(the same lines match, and a match ends in fewer places). The callback keeps,
per pattern, the end of the last line it cited: a report inside that line
returns at once, a report in a new line looks up that line's end (one
``bytes.find``) and is kept while the pattern is under its cap. A pattern that
can match the empty string would be reported at every offset, so it is scanned
as ``(?:P)[^\\n]*$`` instead, reported once at the end of each matching line.
Emitting ``(?:P)[^\\n]*$`` for every pattern gives the same answers but costs
hyperscan far more as patterns are added (bench/match_kb.py: 4.5x the scan time
for 10x the patterns, against 1.5x this way). Line numbers are computed after
the scan with one ``bytes.count`` pass over the newlines up to the last hit,
and only if there were hits.

A pattern may carry its own ``max_hits`` (the scan's cap otherwise). A
``loose`` pattern is a line prefilter rather than a signature: its anchors and
word-boundary assertions are dropped and ``\\s``/``\\w``/``\\d`` take
``str`` semantics on ASCII, so on ASCII text it matches every line in which
some *substring* is matched by the regex as Python applies it to ``str``
(and possibly more lines). The knowledge base uses it to find the only lines a
facts predicate on log messages can be about.

When the ``hyperscan`` package cannot be imported, a pure-``re`` engine with
the same interface and results is used (logged once at import); it scans each
pattern separately and is far slower.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import re
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Python's own regex parser, private since 3.11 (it was the public sre_parse, now a deprecated alias):
# the only way to read re's exact grammar, which the translation must agree with byte for byte.
# No public API exposes a parse tree, and re-implementing the grammar would be a second, drifting copy.
# Only ``_parse_regex`` calls the parser; ``sre_c`` is read for opcode names. ``_check_parser_api``
# runs at import and tests/test_scanning.py pins the tree shape, so a Python that changes either fails
# loudly (at start-up and in CI) rather than translating patterns wrongly.
from re import _constants as sre_c  # type: ignore[attr-defined]  # private: not in typeshed
from re import _parser as _sre_parser  # type: ignore[attr-defined]  # private: not in typeshed

logger = logging.getLogger(__name__)

try:
    import hyperscan
except ImportError as exc:  # pragma: no cover - depends on the machine
    hyperscan = None  # type: ignore[assignment]  # the pure-Python re scanner stands in
    logger.warning("scanning: hyperscan is not importable (%s); using the slower pure-Python re scanner", exc)
else:
    logger.info("scanning: using hyperscan %s", hyperscan.__version__)  # type: ignore[attr-defined]  # not in its stubs

ENGINES = ("hyperscan", "re") if hyperscan is not None else ("re",)
DEFAULT_ENGINE = ENGINES[0]

MAX_TEXT_CHARS = 500
NEWLINE = 0x0A
_ALL_BYTES = frozenset(range(256))


@dataclass(frozen=True)
class Pattern:
    id: int
    regex: str
    flags: str = ""  # "i" (caseless) is the only flag for now
    max_hits: int | None = None  # this pattern's own cap on cited lines; the scan's when None
    loose: bool = False  # a line prefilter: see the module docstring


@dataclass(frozen=True)
class Hit:
    line_no: int  # 1-based
    line_start: int  # byte offset of the line's first byte
    line_end: int  # byte offset just past the line's last byte (its "\n" excluded)
    text: str  # the line, decoded as UTF-8 with replacement, at most MAX_TEXT_CHARS


class PatternError(ValueError):
    """A pattern that cannot be scanned; the message names its id and why.

    ``construct`` is set when the reason is a construct only a backtracking engine can run
    (a backreference, a lookaround...): such a pattern cannot be run in bounded time at all.
    """

    def __init__(self, pattern_id: int, reason: str, *, construct: str | None = None, advice: str = ""):
        super().__init__(f"pattern {pattern_id}: {reason}")
        self.pattern_id = pattern_id
        self.reason = reason
        self.construct = construct
        self.advice = advice  # how to do without the construct


# -- translation: Python regex -> newline-free regex both engines run identically


def _bytes_matching(regex: bytes) -> frozenset[int]:
    compiled = re.compile(regex)
    return frozenset(b for b in range(256) if compiled.fullmatch(bytes([b])))


# Measured from re itself rather than restated, so they cannot drift.
_CATEGORIES = {
    sre_c.CATEGORY_DIGIT: _bytes_matching(rb"\d"),
    sre_c.CATEGORY_NOT_DIGIT: _bytes_matching(rb"\D"),
    sre_c.CATEGORY_SPACE: _bytes_matching(rb"\s"),
    sre_c.CATEGORY_NOT_SPACE: _bytes_matching(rb"\S"),
    sre_c.CATEGORY_WORD: _bytes_matching(rb"\w"),
    sre_c.CATEGORY_NOT_WORD: _bytes_matching(rb"\W"),
}
# What a str pattern's classes match on ASCII text, for loose patterns (\\s takes in \\x1c-\\x1f there).
_STR_CATEGORIES = {
    category: frozenset(b for b in range(128) if re.fullmatch(regex, chr(b))) | {b for b in bytes_set if b >= 128}
    for (category, bytes_set), regex in zip(
        _CATEGORIES.items(), (r"\d", r"\D", r"\s", r"\S", r"\w", r"\W"), strict=True
    )
}
_END_ANCHORS = (sre_c.AT_END, sre_c.AT_END_LINE, sre_c.AT_END_STRING)
_REPEATS = (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT)
# Appended to every pattern so that it is reported once, at the end of its line.
LINE_REST = r"[^\n]*$"
# Constructs no automaton engine runs (only a backtracking one, with no bound on its time):
# opcode -> (what it is, how to do without it).
_UNBOUNDED = {
    sre_c.GROUPREF: ("backreference", "rewrite it without backreferences"),
    sre_c.GROUPREF_EXISTS: ("conditional group", "rewrite it with alternatives"),
    sre_c.ATOMIC_GROUP: ("atomic group", "use a plain group"),
    sre_c.POSSESSIVE_REPEAT: ("possessive quantifier", "use a greedy one"),
}


def _parse_regex(regex: bytes, flags: int) -> tuple[list, int, int]:
    """re's parse tree of ``regex``: its (opcode, argument) items, its final flags and its minimum width.

    The one call into the private parser (see the imports). Raises re.error and RecursionError as re does.
    """
    parsed = _sre_parser.parse(regex, flags)
    return list(parsed), parsed.state.flags, parsed.getwidth()[0]


def _check_parser_api() -> None:
    """Fail at import, naming the Python, when the private parser no longer looks as this module reads it."""
    needed = ("LITERAL", "NOT_LITERAL", "ANY", "IN", "BRANCH", "SUBPATTERN", "MAX_REPEAT", "MIN_REPEAT", "AT",
              "ASSERT", "ASSERT_NOT", "GROUPREF", "GROUPREF_EXISTS", "ATOMIC_GROUP", "POSSESSIVE_REPEAT",
              "NEGATE", "RANGE", "CATEGORY", "MAXREPEAT", "AT_END", "AT_BEGINNING", "AT_BOUNDARY",
              "AT_NON_BOUNDARY", "CATEGORY_DIGIT")  # fmt: skip
    missing = [name for name in needed if not hasattr(sre_c, name)]
    try:
        items, _flags, width = _parse_regex(rb"a(?:b|c)*\d", 0)
        shape = [op for op, _av in items]
    except Exception as exc:  # any change at all in the parser's interface
        python = sys.version.split()[0]
        raise RuntimeError(f"scanning: re's private parser changed in Python {python}: {exc!r}") from exc
    if missing or shape != [sre_c.LITERAL, sre_c.MAX_REPEAT, sre_c.IN] or width != 2:
        raise RuntimeError(
            f"scanning: re's private parser changed in Python {sys.version.split()[0]} "
            f"(missing opcodes {missing}, tree {shape}, width {width}); diagnostics/scanning.py must be updated"
        )


_check_parser_api()


def _case_closure(chars: Iterable[int]) -> set[int]:
    closed = set(chars)
    for c in list(closed):
        if 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A:
            closed.add(c ^ 0x20)
    return closed


def _byte_set(chars: set[int] | frozenset[int]) -> str | None:
    """A character class for exactly ``chars`` minus the newline; None if empty."""
    codes = sorted(set(chars) - {NEWLINE})
    if not codes:
        return None
    if len(codes) == 1:
        return _escape(codes[0])
    parts, start, prev = [], codes[0], codes[0]
    for c in [*codes[1:], None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        parts.append(_escape(start) if start == prev else f"{_escape(start)}-{_escape(prev)}")
        if c is not None:
            start = prev = c
    return "[" + "".join(parts) + "]"


def _escape(code: int) -> str:
    char = chr(code)
    return char if char.isascii() and char.isalnum() else f"\\x{code:02x}"


class _Translator:
    def __init__(self, pattern_id: int, *, loose: bool = False):
        self.pattern_id = pattern_id
        self.uses_non_boundary = False
        self.embedded_end = False
        self.loose = loose
        self.categories = _STR_CATEGORIES if loose else _CATEGORIES

    def fail(self, reason: str, *, construct: str | None = None, advice: str = "") -> PatternError:
        return PatternError(self.pattern_id, reason, construct=construct, advice=advice)

    def seq(self, items, flags: int) -> str | None:
        """Translate a sequence; None means it can never match inside one line."""
        out = []
        for op, av in items:
            part = self.node(op, av, flags)
            if part is None:
                return None
            out.append(part)
        return "".join(out)

    def seq_fewer_ends(self, items, flags: int) -> str | None:
        """The sequence with trailing optional repeats dropped and a trailing ``X{m,n}`` as ``X{m}``.

        A line matches it exactly when it matches the sequence, and a match ends in fewer places.
        """
        items = list(items)
        while items and items[-1][0] in _REPEATS and items[-1][1][0] == 0:
            items.pop()
        if items and items[-1][0] in _REPEATS:
            low, _high, body = items[-1][1]
            items[-1] = (sre_c.MAX_REPEAT, (low, low, body))
        return self.seq(items, flags)

    def seq_to_line_end(self, items, flags: int) -> str | None:
        """Translate a sequence followed by "the rest of its line" (see the module docstring).

        The tail is pushed into trailing alternatives and groups because
        hyperscan only accepts ``$`` at the very end of a pattern, and a ``$``
        there already ends the line.
        """
        if not items:
            return LINE_REST
        *init, (op, av) = items
        head = self.seq(init, flags)
        if head is None:
            return None
        last: str | None
        if op is sre_c.AT and av in _END_ANCHORS and not self.loose:
            last = "$"
        elif op is sre_c.BRANCH:
            alternatives = [alt for alt in (self.seq_to_line_end(branch, flags) for branch in av[1]) if alt is not None]
            last = "(?:" + "|".join(alternatives) + ")" if alternatives else None
        elif op is sre_c.SUBPATTERN:
            _group, add_flags, del_flags, body = av
            last = self.seq_to_line_end(body, (flags | add_flags) & ~del_flags)
        else:
            last = self.node(op, av, flags)
            last = None if last is None else last + LINE_REST
        return None if last is None else head + last

    def node(self, op, av, flags: int) -> str | None:
        caseless = bool(flags & re.IGNORECASE)
        if op is sre_c.LITERAL:
            return _byte_set(_case_closure([av]) if caseless else {av})
        if op is sre_c.NOT_LITERAL:
            return _byte_set(_ALL_BYTES - (_case_closure([av]) if caseless else {av}))
        if op is sre_c.ANY:
            return _byte_set(_ALL_BYTES)
        if op is sre_c.IN:
            return _byte_set(self.charset(av, caseless))
        if op is sre_c.BRANCH:
            alternatives = [alt for alt in (self.seq(branch, flags) for branch in av[1]) if alt is not None]
            return "(?:" + "|".join(alternatives) + ")" if alternatives else None
        if op is sre_c.SUBPATTERN:
            _group, add_flags, del_flags, body = av
            inner = self.seq(body, (flags | add_flags) & ~del_flags)
            return None if inner is None else f"(?:{inner})"
        if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
            # Laziness cannot change *whether* a line matches, only where.
            low, high, body = av
            inner = self.seq(body, flags)
            if inner is None:
                return None if low else ""
            if high is sre_c.MAXREPEAT:
                quantifier = {0: "*", 1: "+"}.get(low, f"{{{low},}}")
            else:
                quantifier = "?" if (low, high) == (0, 1) else f"{{{low},{high}}}"
            return f"(?:{inner}){quantifier}"
        if op is sre_c.AT:
            if self.loose:
                return ""  # dropping an assertion only lets more lines through
            if av in (sre_c.AT_BEGINNING, sre_c.AT_BEGINNING_LINE, sre_c.AT_BEGINNING_STRING):
                return "^"
            if av in _END_ANCHORS:
                self.embedded_end = True
                return "$"
            if av is sre_c.AT_BOUNDARY:
                return r"\b"
            if av is sre_c.AT_NON_BOUNDARY:
                self.uses_non_boundary = True
                return r"\B"
        if op in (sre_c.ASSERT, sre_c.ASSERT_NOT):
            direction, _body = av
            kind = (
                ("lookbehind" if direction < 0 else "lookahead")
                if op is sre_c.ASSERT
                else ("negative lookbehind" if direction < 0 else "negative lookahead")
            )
            raise self.fail(
                f"{kind} is not supported; rewrite it",
                construct=kind,
                advice=f"rewrite it without the {kind}: spell an exclusion out as the characters allowed "
                "at that place, or test it in a condition of its own (a where operator such as not_in)",
            )
        if op in _UNBOUNDED:
            construct, advice = _UNBOUNDED[op]
            raise self.fail(f"{construct}s are not supported; {advice}", construct=construct, advice=advice)
        raise self.fail(f"the construct {op} is not supported")  # pragma: no cover - exhaustive above

    def charset(self, items, caseless: bool) -> set[int]:
        chars: set[int] = set()
        negate = False
        for op, av in items:
            if op is sre_c.NEGATE:
                negate = True
            elif op is sre_c.LITERAL:
                chars.add(av)
            elif op is sre_c.RANGE:
                chars.update(range(av[0], av[1] + 1))
            elif op is sre_c.CATEGORY:
                chars.update(self.categories[av])
            else:  # pragma: no cover - the parser emits nothing else in a set
                raise self.fail(f"the set item {op} is not supported")
        if caseless:
            chars = _case_closure(chars)
        return set(_ALL_BYTES - chars) if negate else chars


@dataclass(frozen=True)
class _Translated:
    pattern_id: int
    regex: str  # newline-free, for multiline mode, in syntax both engines accept
    to_line_end: str  # the same followed by the rest of its line, for hyperscan
    can_be_empty: bool
    fewer_ends: str = ""  # the same lines as regex, fewer match ends (for hyperscan)
    max_hits: int | None = None


def translate(pattern: Pattern) -> _Translated:
    """Check one pattern and rewrite it for the scan engines (raises PatternError).

    A pure function of the pattern, and the costly part of compiling a knowledge base (every regex is
    validated, then compiled into the shared scan, then compiled again after each edit): the rewrite is
    remembered by everything but the id, so an id given to the same regex elsewhere costs nothing.
    """
    try:
        translated = _translate_anonymous(Pattern(0, pattern.regex, pattern.flags, pattern.max_hits, pattern.loose))
    except PatternError:
        return _translate(pattern)  # raises again, naming this pattern's id (errors are not remembered)
    return dataclasses.replace(translated, pattern_id=pattern.id)


@functools.lru_cache(maxsize=8192)
def _translate_anonymous(pattern: Pattern) -> _Translated:
    return _translate(pattern)


def _translate(pattern: Pattern) -> _Translated:
    unknown = set(pattern.flags) - {"i"}
    if unknown:
        raise PatternError(pattern.id, f"unknown flag(s) {''.join(sorted(unknown))!r}; only 'i' is supported")
    if pattern.loose and not pattern.regex.isascii():
        # str case folding maps some non-ASCII letters onto ASCII ones (the long s onto "s").
        raise PatternError(pattern.id, "a loose pattern must be ASCII")
    try:
        parsed, flags, min_width = _parse_regex(pattern.regex.encode(), re.IGNORECASE if "i" in pattern.flags else 0)
    except re.error as exc:
        raise PatternError(pattern.id, f"invalid regular expression: {exc}") from None
    except RecursionError:
        raise PatternError(pattern.id, "the expression is nested too deeply") from None
    if flags & re.LOCALE:
        raise PatternError(pattern.id, "the locale flag (?L) is not supported")
    translator = _Translator(pattern.id, loose=pattern.loose)
    regex = translator.seq(parsed, flags)
    if regex is None:
        raise PatternError(pattern.id, "it can only match across a newline, and matching is per line")
    translator.embedded_end = False
    to_line_end = translator.seq_to_line_end(parsed, flags)
    assert to_line_end is not None  # None exactly where seq() is None, node by node, and regex is not None
    if translator.embedded_end:
        raise PatternError(
            pattern.id, "$ (end of line) is only supported at the end of the pattern or its alternatives"
        )
    can_be_empty = min_width == 0
    # re's \B never matches an empty string, hyperscan's does on an empty line.
    if can_be_empty and translator.uses_non_boundary:
        raise PatternError(pattern.id, r"\B in a pattern that can match an empty string is not supported")
    fewer_ends = translator.seq_fewer_ends(parsed, flags) or ""
    return _Translated(pattern.id, regex, to_line_end, can_be_empty, fewer_ends, pattern.max_hits)


def _translate_all(patterns: Sequence[Pattern]) -> list[_Translated]:
    seen: set[int] = set()
    translated = []
    for pattern in patterns:
        if pattern.id in seen:
            raise PatternError(pattern.id, "the id is used by more than one pattern")
        seen.add(pattern.id)
        translated.append(translate(pattern))
    return translated


# -- offsets -> hits


def _hits_from_line_ends(data: bytes, found: list[tuple[int, int]], ids: Sequence[int]) -> dict[int, list[Hit]]:
    """Turn (pattern index, line end offset) pairs into Hits, counting newlines once."""
    # A final "\n" ends the last line; the empty rest after it is no line.
    found = [(index, end) for index, end in found if end < len(data) or data[-1:] not in (b"", b"\n")]
    if not found:
        return {}
    lines: dict[int, tuple[int, int, str]] = {}
    line_no, counted_to = 1, 0
    for end in sorted({end for _index, end in found}):
        start = data.rfind(b"\n", 0, end) + 1
        line_no += data.count(b"\n", counted_to, start)
        counted_to = start
        # 4 bytes per character at most: decode no more than the cap needs.
        text = data[start : min(end, start + 4 * MAX_TEXT_CHARS)].decode("utf-8", "replace")[:MAX_TEXT_CHARS]
        lines[end] = (line_no, start, text)
    hits: dict[int, list[Hit]] = {}
    for index, end in found:
        line_no, start, text = lines[end]
        hits.setdefault(ids[index], []).append(Hit(line_no, start, end, text))
    for pattern_hits in hits.values():
        pattern_hits.sort(key=lambda hit: hit.line_start)
    return hits


# -- engines


class Scanner:
    """Compiled patterns; ``scan`` is safe to call from several threads at once."""

    engine: str
    patterns: tuple[Pattern, ...] = ()  # as given to compile

    def __init__(self, translated: list[_Translated]):
        self._ids = [t.pattern_id for t in translated]
        self._translated = translated
        self._own_caps = {t.pattern_id: t.max_hits for t in translated if t.max_hits is not None}

    @classmethod
    def compile(cls, patterns: Sequence[Pattern], *, engine: str | None = None) -> Scanner:
        """Compile all patterns together; deterministic for the same input. Raises PatternError."""
        engine = engine or DEFAULT_ENGINE
        if engine not in ENGINES:
            raise ValueError(f"scan engine {engine!r} is not available here; available: {', '.join(ENGINES)}")
        translated = _translate_all(patterns)
        scanner = _HyperscanScanner(translated) if engine == "hyperscan" else _ReScanner(translated)
        scanner.patterns = tuple(patterns)
        return scanner

    def max_hits(self, pattern_id: int, default: int) -> int:
        """The most lines a scan cites for this pattern when the scan's own cap is ``default``."""
        return self._own_caps.get(pattern_id, default)

    def _caps(self, default: int) -> list[int]:
        return [default if t.max_hits is None else t.max_hits for t in self._translated]

    def scan(self, data: bytes, *, max_hits_per_pattern: int = 20) -> dict[int, list[Hit]]:
        """Pattern id -> its first ``max_hits_per_pattern`` matching lines, in order.

        Patterns that match no line are absent from the result; a pattern with
        its own ``max_hits`` gets that many instead.
        """
        raise NotImplementedError


class _HyperscanScanner(Scanner):
    engine = "hyperscan"

    def __init__(self, translated: list[_Translated]):
        super().__init__(translated)
        self._database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        if translated:
            self._compile_database(translated)
        self._local = threading.local()

    def _compile_database(self, translated: list[_Translated]) -> None:
        # See the module docstring: a pattern that can match empty is reported at line ends only.
        expressions = [(t.to_line_end if t.can_be_empty else t.fewer_ends).encode() for t in translated]
        flags = [
            hyperscan.HS_FLAG_MULTILINE | (hyperscan.HS_FLAG_ALLOWEMPTY if t.can_be_empty else 0) for t in translated
        ]
        try:
            self._database.compile(
                expressions=expressions, ids=list(range(len(expressions))), elements=len(expressions), flags=flags
            )
        except hyperscan.HyperscanError:
            # The binding does not say which expression failed: find it (error path only).
            for expression, flag, t in zip(expressions, flags, translated, strict=True):
                try:
                    hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK).compile(
                        expressions=[expression], ids=[0], elements=1, flags=[flag]
                    )
                except hyperscan.HyperscanError as exc:
                    raise PatternError(t.pattern_id, f"hyperscan rejects it: {exc}") from None
            raise

    def _scratch(self):
        # Scratch space must not be shared by concurrent scans; cloning the
        # database's prototype once per thread is cheap and then reused.
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._database.scratch.clone()
        return scratch

    def scan(self, data: bytes, *, max_hits_per_pattern: int = 20) -> dict[int, list[Hit]]:
        # Hyperscan cannot scan zero bytes; b"" has no lines anyway.
        if not self._ids or not data:
            return {}
        caps = self._caps(max_hits_per_pattern)
        # Per pattern, the end of the last line cited; -1 before any.
        cited_to = [-1] * len(self._ids)
        found: list[tuple[int, int]] = []
        append, find, size = found.append, data.find, len(data)

        def on_match(index, _start, end, _flags, _context):
            # The hot path: hyperscan cannot mute one pattern, so stay minimal.
            if end > cited_to[index] and caps[index] > 0:
                # A match holds no newline, so its line ends at the first one from its end on.
                line_end = find(b"\n", end)
                line_end = size if line_end < 0 else line_end
                cited_to[index] = line_end
                caps[index] -= 1
                append((index, line_end))

        self._database.scan(data, match_event_handler=on_match, scratch=self._scratch())
        return _hits_from_line_ends(data, found, self._ids)


class _ReScanner(Scanner):
    engine = "re"

    def __init__(self, translated: list[_Translated]):
        super().__init__(translated)
        self._compiled = [re.compile(t.regex.encode(), re.MULTILINE) for t in translated]

    def scan(self, data: bytes, *, max_hits_per_pattern: int = 20) -> dict[int, list[Hit]]:
        found: list[tuple[int, int]] = []
        for index, (compiled, cap) in enumerate(zip(self._compiled, self._caps(max_hits_per_pattern), strict=True)):
            pos, count = 0, 0
            while count < cap:
                match = compiled.search(data, pos)
                if match is None:
                    break
                end = data.find(b"\n", match.start())
                end = len(data) if end < 0 else end
                found.append((index, end))
                count += 1
                pos = end + 1
                if pos > len(data):
                    break
        return _hits_from_line_ends(data, found, self._ids)


class LineRegex:
    """One pattern, asked only whether some line of a text matches it (``re.search`` per line, with
    the scan's semantics above). Hyperscan answers in time linear in the text whatever the pattern,
    which Python's backtracking ``re`` cannot promise (``(a|aa)+$`` on a line of 40 "a" and a "b").

    ``pattern`` and ``flags`` mirror ``re.Pattern``'s, for callers that read them
    (``diagnostics.parsers.line_prefilter``). Raises PatternError as ``translate`` does, and when
    hyperscan refuses the pattern. Safe to use from several threads at once.
    """

    def __init__(self, regex: str, flags: str = ""):
        translated = translate(Pattern(0, regex, flags))
        self.pattern = regex
        self.flags = re.compile(regex, re.MULTILINE | (re.IGNORECASE if "i" in flags else 0)).flags
        self._re = None
        self._database = None
        if hyperscan is None:
            self._re = re.compile(translated.regex.encode(), re.MULTILINE)
            return
        expression = translated.to_line_end if translated.can_be_empty else translated.fewer_ends
        hs_flags = hyperscan.HS_FLAG_MULTILINE | hyperscan.HS_FLAG_SINGLEMATCH
        if translated.can_be_empty:
            hs_flags |= hyperscan.HS_FLAG_ALLOWEMPTY
        database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        try:
            database.compile(expressions=[expression.encode()], ids=[0], elements=1, flags=[hs_flags])
        except hyperscan.HyperscanError as exc:
            raise PatternError(0, f"hyperscan rejects it: {exc}") from None
        self._database = database
        self._local = threading.local()

    def search(self, text: str) -> bool:
        # An empty text is one empty line, as b"\n" is (and hyperscan cannot scan zero bytes).
        data = text.encode("utf-8", "replace") or b"\n"
        if self._re is not None:
            return self._re.search(data) is not None
        assert self._database is not None  # __init__ builds it whenever it leaves _re unset
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._database.scratch.clone()
        found = []

        def on_match(*_args):
            found.append(True)
            return True  # one match answers the question: stop the scan

        with contextlib.suppress(hyperscan.ScanTerminated):  # raised when on_match stops the scan
            self._database.scan(data, match_event_handler=on_match, scratch=scratch)
        return bool(found)
