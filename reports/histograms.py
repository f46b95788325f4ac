"""Fixed log-scale duration buckets and percentiles read off merged histograms.

Durations (time to first response, time to resolution) are rolled up as counts per
bucket, so a week's or a customer's median is the sum of daily histograms, read at
the right rank. Buckets grow by sqrt(2) from one minute to ~91 days: a percentile is
exact to its bucket, and the value reported is the bucket's geometric midpoint
(within ±19% of any duration in the bucket).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence

# edges[i] is the lower bound (seconds) of bucket i; the last bucket is open-ended.
EDGES: tuple[float, ...] = (0.0, *(60.0 * 2 ** (k / 2) for k in range(35)))
NUM_BUCKETS = len(EDGES)


def bucket_of(seconds: float) -> int:
    """The bucket holding a duration; negative durations (clock skew) count as zero."""
    return bisect_right(EDGES, max(seconds, 0.0)) - 1


def bucket_value(index: int) -> float:
    """The duration (seconds) a bucket stands for: its geometric midpoint."""
    if index == 0:
        return EDGES[1] / 2
    if index == NUM_BUCKETS - 1:
        return EDGES[-1]
    return math.sqrt(EDGES[index] * EDGES[index + 1])


def histogram(durations: Iterable[float]) -> list[int]:
    counts = [0] * NUM_BUCKETS
    for seconds in durations:
        counts[bucket_of(seconds)] += 1
    return counts


def merge(histograms: Iterable[Sequence[int]]) -> list[int]:
    total = [0] * NUM_BUCKETS
    for counts in histograms:
        for i, n in enumerate(counts):
            total[i] += n
    return total


def percentile_bucket(counts: Sequence[int], q: float) -> int | None:
    """The bucket of the nearest-rank q-quantile (0 < q <= 1); None for an empty histogram."""
    n = sum(counts)
    if n == 0:
        return None
    rank = max(1, math.ceil(q * n))
    seen = 0
    for i, c in enumerate(counts):
        seen += c
        if seen >= rank:
            return i
    raise AssertionError("unreachable: rank <= n")


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The approximate q-quantile in seconds (see the module docstring); None when empty."""
    index = percentile_bucket(counts, q)
    return None if index is None else bucket_value(index)
