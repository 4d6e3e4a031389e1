"""Session durations as a mergeable histogram with a relative-error bound of 1 %.

The idea is DDSketch's: logarithmic buckets, each stored as one value within 1 % of every
duration in it, so that ``SessionDuration`` keeps a bounded number of rows per hour however
many sessions exit, and percentiles over any set of rows stay within 1 % of the exact ones
(docs/health.md §9.2, docs/decisions.md §7.5). The values are round numbers, a
preferred-number series, so that durations with two significant digits (60 s, 3.5 s, 250 ms)
stay exact. Integer arithmetic only, no Django.

- Durations below :data:`EXACT_BELOW_MS` are kept as they are (1 ms is already more than 1 %
  of them).
- In each decade ``[D, 10·D)`` from 100 ms on, the values are ``D·m`` for the mantissas
  ``m`` = 1.00, 1.02, … 2.48 (steps of 0.02), 2.50, 2.55, … 4.95 (0.05), 5.0, 5.1, … 9.9
  (0.1): 175 values a decade, each at most 2 % above the one before. A duration between two
  values ``a < b`` goes to the nearer one, so its error is at most ``(b - a) / 2`` at the
  midpoint ``(a + b) / 2``: ``(b - a) / (a + b) ≤ 0.02 / 2.02 < 0.99 %`` of it.
"""

from __future__ import annotations

from bisect import bisect_right

#: The guaranteed bound: ``|representative(d) - d| <= RELATIVE_ACCURACY * d``.
RELATIVE_ACCURACY = 0.01
#: Durations below this many milliseconds are stored exactly.
EXACT_BELOW_MS = 100


# The decades' first values, 100 ms up to past the largest accepted duration (10^9 s).
_DECADES = tuple(10**k for k in range(2, 16))


def representative(duration_ms: int) -> int:
    """The whole-millisecond value stored for ``duration_ms`` (≥ 0).

    Within 1 % of the duration, non-decreasing in it, and a fixed point
    (``representative(representative(d)) == representative(d)``), so that re-bucketing
    stored values changes nothing.
    """
    if duration_ms < EXACT_BELOW_MS:
        return duration_ms
    decade = _DECADES[bisect_right(_DECADES, duration_ms) - 1]
    # The mantissa range holding the duration: its first value and its step.
    if duration_ms * 2 < decade * 5:  # below 2.5
        start, step = decade, decade // 50
    elif duration_ms < decade * 5:
        start, step = decade * 5 // 2, decade // 20
    else:
        start, step = decade * 5, decade // 10
    low = start + (duration_ms - start) // step * step
    high = low + step  # the next value: the next range's start is on this grid too
    return low if duration_ms * 2 <= low + high else high
