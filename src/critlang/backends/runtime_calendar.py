"""Calendar steps measured from the earlier date (one convention for every phrasing).

critlang adds a month or year step to the EARLIER date of a pair, clamping to the
month's last day, as CQL date arithmetic does (CQL 1.5, "Date/Time Arithmetic": adding
months "the day component is constrained to the last day of the resulting month"; SQL
`date + INTERVAL 'n month'` and dateutil.relativedelta alike): 2024-02-29 + 2 years =
2026-02-28, 2026-01-31 + 1 month = 2026-02-28. So `enrollment less than 1 months after
surgery` and `surgery less than 1 months before enrollment` are the same test:
add_months(surgery, 1) > enrollment.

A `before` form is tested against its anchor A (the later date): the set of dates d with
add_months(d, m) >= A is {d >= lo(A)} and the set with add_months(d, m) <= A is
{d <= hi(A)} (add_months is monotonic), so each form needs only one of these two edges:
`within` / `more than` / `between`'s far end / a period's start of window use `lo`,
`less than` / `at least` / `between`'s near end use `hi`. For days and weeks lo = hi.
"""

from __future__ import annotations

import datetime as dt
import math
from functools import lru_cache
from typing import Any

from .runtime import EXPORTS, Range, _add_months, _made, _span


@lru_cache(maxsize=8192)
def _back(day: int, months: int, side: str) -> int:
    """lo: min d with add_months(d, months) >= day; hi: max d with add_months(d, months) <= day."""
    a = dt.date.fromordinal(day)
    s = _add_months(day, -months)
    if not 1 <= (a.year * 12 + a.month - 1 - months) // 12 <= 9999 or a.year == 9999:
        return s  # out of the calendar's range: the approximation add_months makes
    b = dt.date.fromordinal(s)
    if side == "lo":
        # a's day does not exist in the month m back (Mar 31 - 1 month): no day of
        # that month reaches A, the first of the next one does
        return s + 1 if b.day < a.day else s
    last_of_a = (a + dt.timedelta(days=1)).day == 1
    if last_of_a:  # every day of the month m back reaches at most A (clamped)
        return _add_months(day + 1, -months) - 1
    return s


def months_back(day: Any, months: int, side: str) -> Any:
    """The edge of a `before` form measured from the earlier date (module docstring):
    `lo` or `hi` for an anchor day number; a Range gives the Range of edges (monotonic)."""
    if day is None:
        return None
    if day.__class__ is Range:
        r = _span(day)
        lo = r.lo if not math.isfinite(r.lo) else _back(int(r.lo), months, side)
        hi = r.hi if not math.isfinite(r.hi) else _back(int(r.hi), months, side)
        return _made(lo, hi, r.lo_open, r.hi_open) if lo != hi else lo
    return _back(day, months, side)


def completed_months(start: int, end: int) -> int:
    """Whole calendar months from start to end: the largest n with add_months(start, n)
    <= end (negative when end is before start), the convention above."""
    a, b = dt.date.fromordinal(start), dt.date.fromordinal(end)
    n = (b.year - a.year) * 12 + b.month - a.month
    while _add_months(start, n) > end:  # n months lands in end's month: at most 1 too many
        n -= 1
    return n


def elapsed_months(start: Any, end: Any) -> Any:
    """Completed calendar months from start to end (an age in months); None when either
    is unknown; a Range (partial date, ongoing end) gives the Range of values."""
    if start is None or end is None:
        return None
    if start.__class__ is Range or end.__class__ is Range:
        s, e = _span(start), _span(end)
        finite = math.isfinite
        low = completed_months(int(s.hi), int(e.lo)) if finite(s.hi) and finite(e.lo) else -math.inf
        high = completed_months(int(s.lo), int(e.hi)) if finite(s.lo) and finite(e.hi) else math.inf
        if low == high:
            return float(low)
        return _made(float(low), float(high), False, False)
    return float(completed_months(start, end))


EXPORTS["months_back"] = months_back
EXPORTS["elapsed_months"] = elapsed_months
