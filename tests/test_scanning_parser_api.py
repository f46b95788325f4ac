"""The scanner reads re's private parser (diagnostics/scanning.py says why): these tests pin the shape
of the tree it reads, so a Python release that changes it fails here, loudly, not in a wrong scan."""

import re
from re import _constants as sre_c  # type: ignore[attr-defined]

from diagnostics import scanning


def test_the_parser_still_answers_the_tree_the_translator_reads():
    items, flags, min_width = scanning._parse_regex(rb"(?i)^a(?-i:bc|d)+?x{2,5}[^\d]\b(?=y)", 0)
    assert flags & re.IGNORECASE
    assert min_width == 5  # a, d (the shorter branch), x twice, one set member; assertions are zero-width
    ops = [op for op, _av in items]
    assert ops == [sre_c.AT, sre_c.LITERAL, sre_c.MIN_REPEAT, sre_c.MAX_REPEAT, sre_c.IN, sre_c.AT, sre_c.ASSERT]
    assert items[0][1] is sre_c.AT_BEGINNING and items[1][1] == ord("a")
    low, high, body = items[2][1]  # a repeat is (min, max, body)
    assert (low, high) == (1, sre_c.MAXREPEAT)
    [(op, (group, add_flags, del_flags, inner))] = list(body)  # a group is (number, add, remove, body)
    assert op is sre_c.SUBPATTERN and group is None and (add_flags, del_flags) == (0, re.IGNORECASE)
    [(branch_op, (_none, branches))] = list(inner)
    assert branch_op is sre_c.BRANCH and len(branches) == 2
    assert items[3][1][:2] == (2, 5)
    assert list(items[4][1]) == [(sre_c.NEGATE, None), (sre_c.CATEGORY, sre_c.CATEGORY_DIGIT)]
    direction, _body = items[6][1]  # a lookaround is (direction, body)
    assert direction == 1


def test_the_import_time_check_passes_on_this_python():
    scanning._check_parser_api()  # raises RuntimeError naming the Python when the parser changed
