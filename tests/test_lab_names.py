"""Lab tests draw host names from a per-test seed, and a module's lab keeps the hosts of its earlier tests:
a name drawn twice must be redrawn, not refused (CI once failed on `smarthost-38c` drawn by two tests)."""

from __future__ import annotations

import random

from tests.lab import _HOST_NAME, variant_name


def test_a_name_already_in_the_lab_is_redrawn():
    taken = {variant_name(random.Random(7), "smarthost")}

    drawn = variant_name(random.Random(7), "smarthost", taken)

    assert drawn not in taken
    assert drawn.startswith("smarthost") and _HOST_NAME.fullmatch(drawn)


def test_names_differ_in_their_details_across_seeds():
    names = {variant_name(random.Random(seed), "ns") for seed in range(50)}

    assert len(names) > 25
    assert all(_HOST_NAME.fullmatch(name) for name in names)
