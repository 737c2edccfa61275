"""Date windows as day-number arithmetic: `within / less than / more than ... before /
after`, `at least ...`, `on or before`, `between D1 and D2 before`, periods; calendar
months through calendar.py, intervals (partial dates, ongoing ends) through intervals.py."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from sqlglot import exp

from ... import nodes as n
from ...time_edges import edge_side
from ...units import TIME, parse_unit
from . import calendar as cal
from . import intervals as iv
from .calendar import const_of, num
from .expressions import Expressions
from .sqltree import compare_sql, guard, is_null, null, paren


class Windows(Expressions):
    """Date windows and periods (python.py `window`, `date_bound`, `window_between`,
    `period`)."""

    def shift(self, e: n.Window) -> Any:
        """The window's edge from its anchor's day number (monotonic: python.edge)."""
        return self.shift_by(e.duration, -1 if e.direction == "before" else 1, edge_side(e))

    def shift_by(self, duration: n.QuantityLit, sign: int, side: str = "lo") -> Any:
        """A day number moved by sign * duration: weeks and days fixed, months calendar
        steps from the earlier date (time_edges.py: before the anchor, the `side` edge)."""
        unit = parse_unit(duration.unit)
        amount = duration.value * unit.factor
        if unit.dims == (("[calendar]", 1),) and amount.denominator == 1 and sign < 0:
            return lambda a: cal.months_back(a.copy(), int(amount), side, self.name_once)
        if unit.dims == (("[calendar]", 1),) and amount.denominator == 1:
            return lambda a: cal.add_months(a.copy(), sign * int(amount), self.name_once)
        days = amount * (Fraction(30436875, 1000000) if unit.dims != TIME else 1)
        days = days / 86400 if unit.dims == TIME else days
        shift = float(sign * days)

        def add(a: exp.Expression) -> exp.Expression:
            value = const_of(a)
            if value is not None:
                return num(value + shift)
            return self.let(paren(exp.Add(this=a.copy(), expression=num(shift))))

        return add

    def window(self, e: n.Window) -> exp.Expression:
        shift = self.shift(e)
        if self.any_interval(e.subject, e.anchor):
            di, ai = self.operand(e.subject), self.operand(e.anchor)
            edge_iv = iv.shifted(ai, shift)
            before = e.direction == "before"
            return self.let(iv.window(e.kind, before, di, ai, edge_iv))
        d = self.let(self.value(e.subject))
        a = self.let(self.value(e.anchor))
        edge = shift(a)

        def le(x: exp.Expression, y: exp.Expression) -> exp.Expression:
            return exp.LTE(this=x.copy(), expression=y.copy())

        def lt(x: exp.Expression, y: exp.Expression) -> exp.Expression:
            return exp.LT(this=x.copy(), expression=y.copy())

        if e.direction == "before":
            test = {
                "within": lambda: exp.and_(le(edge, d), le(d, a), copy=False),
                "more": lambda: lt(d, edge),
                "less": lambda: exp.and_(lt(edge, d), le(d, a), copy=False),
            }[e.kind]()
        else:
            test = {
                "within": lambda: exp.and_(le(a, d), le(d, edge), copy=False),
                "more": lambda: lt(edge, d),
                "less": lambda: exp.and_(le(a, d), lt(d, edge), copy=False),
            }[e.kind]()
        return guard(test, d, a)

    def date_bound(self, e: n.DateBound) -> exp.Expression:
        """`S at least D before A`: S <= A - D; `on or before A`: S <= A; and mirrors;
        over intervals as python.date_bound (intervals.less)."""
        d, a = self.operand(e.subject), self.operand(e.anchor)
        edge = a
        if e.duration is not None:
            sign = -1 if e.direction == "before" else 1
            edge = iv.shifted(a, self.shift_by(e.duration, sign, edge_side(e)))
        return self.let(iv.guard(iv.compare(e.op, d, edge), d, edge))

    def window_between(self, e: n.WindowBetween) -> exp.Expression:
        """`S between D1 and D2 before A`: A - D2 <= S <= A - D1 (after: A + D1 .. A + D2)."""
        ends = e.durations()
        assert ends is not None  # the checker requires written durations
        d, a = self.operand(e.subject), self.operand(e.anchor)
        sign = -1 if e.direction == "before" else 1
        near = iv.shifted(a, self.shift_by(ends[0], sign, "hi"))
        far = iv.shifted(a, self.shift_by(ends[1], sign, "lo"))
        low, high = (far, near) if sign < 0 else (near, far)
        test = iv.kleene_and(iv.less(low, d, False), iv.less(d, high, False))
        return self.let(iv.guard(test, d, low, high))

    def range_flag(self, e: n.Expr) -> exp.Expression | None:
        """TRUE when e (a fact or field that may be an interval) is one, else None."""
        if self.interval(e) is None:
            return None
        assert isinstance(e, n.Name)
        r = self.ref(e)
        if r.kind == "field" and self.hypothetical is not None:
            return exp.true()  # a hypothetical item's date (lists.future_only): a range
        if r.kind == "field":
            assert self.in_item is not None
            name = self.item_fields[self.in_item][r.name]
            if f"{self.in_item}.{name}" in self.no_range:
                return None  # no item of the cohort has an interval there
            return iv.field_is_range("i", name)
        if r.name in self.no_range:
            return None
        return exp.EQ(this=self.column(r.name + iv.IS_RANGE), expression=exp.Literal.number(1))

    def period(self, e: n.Period) -> exp.Expression:
        """START..END against a window [LOW, HIGH]: START <= HIGH and END >= LOW (Kleene),
        over intervals (an ongoing end: at least the evaluation date); unknown when two
        exact dates have the end before the start (python.period)."""
        start, end, a = (self.operand(x) for x in (e.start, e.end, e.anchor))
        low = high = a
        if e.duration is not None:
            sign = -1 if e.direction == "before" else 1
            shifted = iv.shifted(a, self.shift_by(e.duration, sign))
            low, high = (shifted, a) if sign < 0 else (a, shifted)
        first = iv.guard(iv.less(start, high, False), start, high)
        second = iv.guard(iv.less(low, end, False), end, low)
        # an unknown end is never before its start (R4 Period per-1): a start surely on
        # or after LOW decides END >= LOW (python.period; realfhir7 F3)
        by_start = iv.guard(iv.less(low, start, False), start, low)
        second = exp.Case(
            ifs=[
                exp.If(
                    this=exp.and_(
                        exp.Not(this=paren(end.known())),
                        exp.Is(this=paren(by_start), expression=exp.true()),
                        copy=False,
                    ),
                    true=exp.true(),
                )
            ],
            default=second,
        )
        test = paren(exp.and_(paren(first), paren(second), copy=False))
        flags = [f for f in (self.range_flag(x) for x in (e.start, e.end)) if f is not None]
        swapped = exp.and_(
            exp.Not(this=is_null(start.lo.copy())),
            exp.Not(this=is_null(end.lo.copy())),
            compare_sql("<", end.lo.copy(), start.lo.copy()),
            copy=False,
        )
        ifs = [exp.If(this=exp.or_(*flags, copy=False), true=test.copy())] if flags else []
        ifs.append(exp.If(this=swapped, true=null()))
        return self.let(exp.Case(ifs=ifs, default=test))
