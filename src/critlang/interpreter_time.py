"""The reference interpreter's dates against anchors: windows (`within / less than /
more than D before A`), date bounds (`at least D before A`, `no later than A`), `between
D1 and D2 before A` and periods (`START to END ongoing at / overlaps`), on day numbers.

Part of the reference interpreter (interpreter.py): `TimeForms` is a base of
`Interpreter` and reads its helpers (`plain`, `quantity`, `base_unit`). Its own calendar
arithmetic and interval reasoning (intervals.py), shared with nothing in the compiled
back end. A date known only as an interval (a partial date, an ongoing end) decides a
form when every day it may be decides it alike (docs/patients.md).
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from typing import Any

from . import nodes as n
from .intervals import Iv, as_iv, both
from .intervals import compare as iv_compare
from .time_edges import edge_side


def _shift_months(d: dt.date, months: int) -> int:
    """Day number of d shifted by calendar months, the day clamped to the month's end.

    Outside the calendar's years 1-9999 the shift is approximated by the mean month
    (30.436875 days), as the compiled runtime does.
    """
    y, m = divmod(d.year * 12 + d.month - 1 + months, 12)
    if not 1 <= y <= 9999:
        return d.toordinal() + round(months * 30.436875)
    for day in range(d.day, 0, -1):
        try:
            return dt.date(y, m + 1, day).toordinal()
        except ValueError:
            continue
    raise AssertionError(d)  # every month has a 28th


def _months_back(a: dt.date, months: int, side: str) -> int:
    """The `lo` / `hi` edge of a `before` form (time_edges.py), by its definition on
    the reference interpreter's own month shift: lo is the first day d with
    shift(d, months) >= a, hi the last with shift(d, months) <= a (the step from the
    earlier date, CQL date arithmetic). A search over the at most 3 days after a
    clamped shift back, so it shares no arithmetic with runtime_calendar."""
    o = a.toordinal()
    back = _shift_months(a, -months)
    if not 1 <= back <= dt.date.max.toordinal() - 4 or not dt.date.fromordinal(back).year >= 1:
        return back
    fwd = lambda d: _shift_months(dt.date.fromordinal(d), months)  # noqa: E731
    if side == "lo":
        d = back - 3
        while fwd(d) < o:
            d += 1
        return d
    d = back + 4
    while fwd(d) > o:
        d -= 1
    return d


def _days(x: Any) -> Any:
    """A date as its day number; an interval of dates as the interval of day numbers."""
    if isinstance(x, Iv):
        return x.map(_days)
    return x.toordinal() if isinstance(x, dt.date) else x


class TimeForms:
    """Date forms of the reference interpreter (a base of interpreter.Interpreter)."""

    plain: Any  # Interpreter.plain: a value where one is needed
    quantity: Any  # Interpreter.quantity
    base_unit: Any  # Interpreter.base_unit

    def edge(
        self, a: dt.date, duration: n.QuantityLit, sign: int, side: str = "lo"
    ) -> Fraction | int:
        """Day number of `a + sign * duration`: calendar steps for months and years, added
        to the earlier date (time_edges.py): before the anchor, the `side` edge."""
        dur = self.quantity(duration.value, duration.unit)
        if dur.dimensionality == self.base_unit((("[calendar]", 1),)).dimensionality:
            months = Fraction(dur.to_base_units().magnitude)
            assert months.denominator == 1, "fractional months are approximated by the compiler"
            if sign < 0:
                return _months_back(a, int(months), side)
            return _shift_months(a, sign * int(months))
        return a.toordinal() + sign * Fraction(dur.to_base_units().magnitude) / 86400

    def date_form(self, e: n.Expr, env: dict[str, Any]) -> bool | None:
        """The windows people write (nodes.DateBound, WindowBetween, Period), on day numbers.

        A date known only as an interval (a partial date, an ongoing end: no latest day)
        decides a form when every day it may be decides it alike (docs/patients.md): an
        ongoing therapy is ongoing at the evaluation date and overlaps a window reaching
        it; a form its days split is unknown."""
        if isinstance(e, n.DateBound):
            d, a = self.plain(e.subject, env), self.plain(e.anchor, env)
            if d is None or a is None:
                return None
            sign = -1 if e.direction == "before" else 1
            return iv_compare(e.op, _days(d), self.edges(a, e.duration, sign, edge_side(e)))
        if isinstance(e, n.WindowBetween):
            d, a = self.plain(e.subject, env), self.plain(e.anchor, env)
            ends = e.durations()
            assert ends is not None
            if d is None or a is None:
                return None
            sign = -1 if e.direction == "before" else 1
            near, far = self.edges(a, ends[0], sign, "hi"), self.edges(a, ends[1], sign, "lo")
            low, high = (far, near) if sign < 0 else (near, far)
            return both(iv_compare("<=", low, _days(d)), iv_compare("<=", _days(d), high))
        assert isinstance(e, n.Period)
        start, end = self.plain(e.start, env), self.plain(e.end, env)
        a = self.plain(e.anchor, env)
        # START <= HIGH and END >= LOW, in Kleene logic (an unknown date leaves it open
        # unless the other comparison is already false)
        low = high = None if a is None else _days(a)
        if a is not None and e.duration is not None:
            sign = -1 if e.direction == "before" else 1
            shifted = self.edges(a, e.duration, sign)
            low, high = (shifted, _days(a)) if sign < 0 else (low, shifted)
        first = None if start is None or high is None else iv_compare("<=", _days(start), high)
        second = None if end is None or low is None else iv_compare(">=", _days(end), low)
        if second is None and start is not None and low is not None:
            # an unknown end is never before its start (R4 Period per-1: "start SHALL
            # have a lower value than end"): a start surely on or after LOW decides
            # END >= LOW (realfhir7 F3)
            if iv_compare(">=", _days(start), low) is True:
                second = True
        exact = not (isinstance(start, Iv) or isinstance(end, Iv))
        if exact and start is not None and end is not None and end < start:
            return None  # an end before the start is no period (swapped dates)
        if first is False or second is False:
            return False
        return None if first is None or second is None else True

    def edges(self, a: Any, duration: n.QuantityLit | None, sign: int, side: str = "lo") -> Any:
        """Day number(s) of `a + sign * duration` (a itself without one); an anchor known
        as an interval gives the interval of edges (the shift is monotonic)."""
        if duration is None:
            return _days(a)
        if isinstance(a, Iv):
            shift = lambda x: self.edge(x, duration, sign, side)  # noqa: E731
            return Iv(
                None if a.lo is None else shift(a.lo),
                None if a.hi is None else shift(a.hi),
                a.lo_open,
                a.hi_open,
            )
        return self.edge(a, duration, sign, side)

    def window(self, e: n.Window, env: dict[str, Any]) -> bool | None:
        d, a = self.plain(e.subject, env), self.plain(e.anchor, env)
        if d is None or a is None:
            return None
        sign, side = -1 if e.direction == "before" else 1, edge_side(e)
        if isinstance(d, Iv) or isinstance(a, Iv):
            return self.interval_window(
                e, as_iv(d), as_iv(a), lambda x: self.edge(x, e.duration, sign, side)
            )
        edge = self.edge(a, e.duration, sign, side)
        # compared as day numbers: an edge may fall outside the calendar (year 1 - 9999)
        d, a = d.toordinal(), a.toordinal()
        if e.direction == "before":
            if e.kind == "within":
                return edge <= d <= a
            if e.kind == "more":
                return d < edge
            return edge < d <= a
        if e.kind == "within":
            return a <= d <= edge
        if e.kind == "more":
            return d > edge
        return a <= d < edge

    def interval_window(self, e: n.Window, d: Iv, a: Iv, edge_of: Any) -> bool | None:
        """A window test where a date is only known as an interval of days.

        An ongoing exposure's end meets `before A` windows as if it ended at A (no later):
        lasting up to A or beyond is at least as recent as ending at A.
        """
        day = lambda x: x if isinstance(x, (int, Fraction)) else x.toordinal()  # noqa: E731
        d, a = d.map(day), a.map(day)
        edge = Iv(
            None if a.lo is None else edge_of(dt.date.fromordinal(a.lo)),
            None if a.hi is None else edge_of(dt.date.fromordinal(a.hi)),
        )
        if e.direction == "before" and d.ongoing:
            lo = a.lo if d.lo is None else min(d.lo, a.lo)
            hi = a.hi if d.hi is None else min(d.hi, a.hi)
            d = Iv(lo, hi)
        if e.direction == "before":
            if e.kind == "within":
                return both(iv_compare("<=", edge, d), iv_compare("<=", d, a))
            if e.kind == "more":
                return iv_compare("<", d, edge)
            return both(iv_compare("<", edge, d), iv_compare("<=", d, a))
        if e.kind == "within":
            return both(iv_compare("<=", a, d), iv_compare("<=", d, edge))
        if e.kind == "more":
            return iv_compare(">", d, edge)
        return both(iv_compare("<=", a, d), iv_compare("<", d, edge))
