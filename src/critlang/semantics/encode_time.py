"""Dates in z3 (part of semantics/encode.py's Encoder): look-back edges and windows,
calendar months exactly as runtime.add_months steps them, day numbers tied to their
proleptic Gregorian (year, month, day) as `datetime.date.toordinal` counts them.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

import z3

from .. import nodes as n
from ..backends.runtime import add_months
from ..backends.runtime_calendar import months_back
from ..future_events import past_date_fields
from ..time_edges import edge_side
from ..typesys import ListT
from ..units import CALENDAR, parse_unit
from .logic import FALSE, TRUE, TV, Val, plain

if TYPE_CHECKING:
    from .encode import Space


class TimeEncoding:
    """Mixin of the Encoder: what reads dates and durations. It uses the Encoder's
    `s` (the Space), `value` and `decided`."""

    s: Space
    c: Any  # CheckResult
    value: Any
    decided: Any
    var: Any
    scalar_var: Any
    cond: Any

    def edge(
        self,
        anchor: n.Expr,
        duration: n.QuantityLit,
        sign: int,
        env: dict[str, Any],
        side: str = "lo",
    ) -> Val:
        """The day number anchor + sign * duration: months and years as calendar steps
        from the earlier date (runtime.add_months after the anchor, the `side` edge of
        runtime_calendar.months_back before it), weeks and days as fixed lengths."""
        a = plain(self.value(anchor, env))
        unit = parse_unit(duration.unit)
        amount = duration.value * unit.factor
        if unit.dims == CALENDAR and amount.denominator == 1:
            return Val(self.calendar_edge(a.v, sign * int(amount), side), a.k)
        days = amount / 86400 if unit.dims != CALENDAR else amount * Fraction(30436875, 10**6)
        return Val(a.v + z3.RealVal(str(sign * days)), a.k)

    def window(self, e: n.Window, env: dict[str, Any]) -> TV:
        d, a = plain(self.value(e.subject, env)), plain(self.value(e.anchor, env))
        unit = parse_unit(e.duration.unit)
        amount = e.duration.value * unit.factor
        sign = -1 if e.direction == "before" else 1
        if unit.dims == CALENDAR and amount.denominator == 1:
            edge: Any = self.calendar_edge(a.v, sign * int(amount), edge_side(e))
        else:
            days = amount / 86400 if unit.dims != CALENDAR else amount * Fraction(30436875, 10**6)
            edge = a.v + z3.RealVal(str(sign * days))
        dv, av = d.v, a.v
        if e.direction == "before":
            test = {
                "within": z3.And(edge <= dv, dv <= av),
                "more": dv < edge,
                "less": z3.And(edge < dv, dv <= av),
            }[e.kind]
        else:
            test = {
                "within": z3.And(av <= dv, dv <= edge),
                "more": dv > edge,
                "less": z3.And(av <= dv, dv < edge),
            }[e.kind]
        return self.decided(test, d.k, a.k)

    def calendar_edge(self, day: Any, months: int, side: str) -> Any:
        """add_months(day, months) after the anchor; months_back(day, -months, side)
        before it: a constant folded in Python, a variable day encoded exactly."""
        constant = z3.simplify(day)
        if z3.is_int_value(constant):
            if constant.as_long() == self.s.today:
                self.s.calendar_on_today = True  # the proof holds for this date only
            if months >= 0:
                return z3.IntVal(add_months(constant.as_long(), months))
            return z3.IntVal(months_back(constant.as_long(), -months, side))
        if months >= 0:
            return self.shifted(day, months)
        return self.shifted_back(day, -months, side)

    def shifted_back(self, day: Any, months: int, side: str) -> Any:
        """months_back(day, months, side) exactly (runtime_calendar): lo is the shift back
        plus one day when day's day of month does not exist there; hi is the last day of
        the month shifted to when day is the last of its own month, else the shift back."""
        key = ("edge back", day.get_id(), months, side)
        if key not in self.s.vars:
            y, m, d = self.calendar(day)
            t = m - 1 - months
            y2, m2 = y + t / 12, t % 12 + 1  # floor division and modulo by a constant
            last = _days_in_month(y2, m2)
            back = _ordinal(y2, m2, z3.If(d > last, last, d))
            if side == "lo":
                self.s.vars[key] = z3.If(d > last, back + 1, back)
            else:
                at_end = d == _days_in_month(y, m)
                self.s.vars[key] = z3.If(at_end, _ordinal(y2, m2, last), back)
        return self.s.vars[key]

    def calendar(self, day: Any) -> tuple[Any, Any, Any]:
        """(year, month, day of month) of a day number, exactly (proleptic Gregorian, as
        `datetime.date.toordinal`): the day number is tied to its calendar date."""
        key = ("calendar", day.get_id())
        if key not in self.s.vars:
            label = len(self.s.vars)
            y, m, d = z3.Ints(f"|y:{label}| |m:{label}| |d:{label}|")
            self.s.vars[key] = (y, m, d)
            self.s.constraints += [
                m >= 1,
                m <= 12,
                d >= 1,
                d <= _days_in_month(y, m),
                day == _ordinal(y, m, d),
            ]
        return self.s.vars[key]

    def shifted(self, day: Any, months: int) -> Any:
        """`add_months(day, months)` exactly: the same day of the month `months` later,
        clamped to the month's last day (runtime.add_months)."""
        key = ("edge", day.get_id(), months)
        if key not in self.s.vars:
            y, m, d = self.calendar(day)
            t = m - 1 + months
            y2, m2 = y + t / 12, t % 12 + 1  # floor division and modulo by a constant
            last = _days_in_month(y2, m2)
            self.s.vars[key] = _ordinal(y2, m2, z3.If(d > last, last, d))
        return self.s.vars[key]

    def only_future(self, e: n.Quantified, env: dict[str, Any]) -> Any:
        """future_events.py's test, which the evaluators decide on interval-valued
        hypothetical items: abstracted (a fresh boolean, so a proof holds for either
        answer) and tied by what it implies for exact values: the body fails for every
        item whose dates are on or before the evaluation date and other fields unknown
        (a z3 ForAll over those dates; where reading a date added calendar constraints,
        only for an item dated on the evaluation date), and it does not fail for an
        item with every field unknown."""
        dates = past_date_fields(self.c, e)
        if not dates:
            return FALSE
        t = self.s.types[e.list_name]
        assert isinstance(t, ListT)
        number = len(self.s.vars)
        later = self.var(("future", e.list_name, number), lambda: z3.Bool(f"|future:{number}|"))

        def fields(days: dict[str, Any], past: bool) -> dict[str, Any]:
            inner = dict(env)
            for fname, ft in t.fields:
                key = ("phantom", e.list_name, number, past, fname)
                if fname in days:
                    inner[fname] = Val(days[fname], TRUE)
                else:
                    inner[fname] = Val(self.scalar_var(key, ft, f"{e.list_name}.{fname}"), FALSE)
            inner["__list__"] = e.list_name
            return inner

        def body(days: dict[str, Any], past: bool) -> TV:
            return self.cond(e.body, fields(days, past))

        bound = {d: z3.Int(f"|phantom:{number}:{d}|") for d in dates}
        inner = fields(bound, True)
        before = len(self.s.constraints)  # a constraint now would read a bound date
        every = self.cond(e.body, inner)
        if len(self.s.constraints) == before:
            past_fails = z3.ForAll(
                list(bound.values()),
                z3.Implies(z3.And(*[d <= self.s.today for d in bound.values()]), every.f),
            )
        else:
            today = z3.IntVal(self.s.today)
            past_fails = body({d: today for d in dates}, True).f
        anything = body({}, False)
        self.s.constraints += [z3.Implies(later, past_fails), z3.Implies(later, z3.Not(anything.f))]
        return later


_BEFORE_MONTH = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


def _leap(y: Any) -> Any:
    return z3.And(y % 4 == 0, z3.Or(y % 100 != 0, y % 400 == 0))


def _days_in_month(y: Any, m: Any) -> Any:
    return z3.If(
        m == 2,
        z3.If(_leap(y), 29, 28),
        z3.If(z3.Or(m == 4, m == 6, m == 9, m == 11), 30, 31),
    )


def _ordinal(y: Any, m: Any, d: Any) -> Any:
    """`datetime.date(y, m, d).toordinal()` as linear integer arithmetic (division by
    constants only): days before the year, before the month, then the day."""
    p = y - 1
    before_year = 365 * p + p / 4 - p / 100 + p / 400
    before_month = z3.IntVal(0)
    for month in range(12, 0, -1):
        before_month = z3.If(m == month, _BEFORE_MONTH[month - 1], before_month)
    leap_day = z3.If(z3.And(m > 2, _leap(y)), 1, 0)
    return before_year + before_month + leap_day + d
