"""Forms pass: blood pressure pairs, date windows people write, implication, value dates.

Also the notation check: `bp < 140/90` against a plain number, or `ratio < 5 / 10`, is the
kind of mistake that reads right and computes wrong (140 divided by 90), so it is an error.
"""

from __future__ import annotations

import re
from fractions import Fraction

from .. import nodes as n
from ..typesys import (
    BoolT,
    DateT,
    ErrorT,
    ListT,
    NumberT,
    PressureT,
    QuantT,
    Type,
    mm_hg,
)
from ..units import CALENDAR, Unit, UnitError, describe, is_duration, parse_unit
from .result import Ref

PRESSURE_PARTS = ("systolic", "diastolic")


class FormsPass:
    # ------------------------------------------------------------------ blood pressure
    def pressure_literal(self, e: n.PressureLit) -> Type:
        if e.unit:
            try:
                u = parse_unit(e.unit)
            except UnitError:
                u = mm_hg()  # the terminal allows only `mmHg` and `mm[Hg]`: both are mm[Hg]
            if not u.same_dimension(mm_hg()):
                return self.err("E302", f"`{e.unit}` is not a pressure", e.span)
        if e.systolic <= e.diastolic:
            self.err(
                "E602",
                f"{e.systolic}/{e.diastolic}: the systolic value (first) must be above the "
                "diastolic (second)",
                e.span,
                hint="write systolic/diastolic, e.g. 140/90 mmHg",
            )
        return PressureT(mm_hg())

    def pressure_fact(self, e: n.Expr, scope: dict) -> bool:
        return (
            isinstance(e, n.Name)
            and e.name not in scope
            and e.name in self.r.facts
            and isinstance(self.r.facts[e.name].type, PressureT)
        )

    def pressure_compare(self, e: n.Compare, scope: dict) -> bool:
        """Check a comparison that involves a blood pressure; False when none does."""
        sides = (e.left, e.right)
        if not any(isinstance(s, n.PressureLit) or self.pressure_fact(s, scope) for s in sides):
            return False
        lt = self.expr(e.left, scope)
        rt = self.expr(e.right, scope, expected=lt)
        if isinstance(lt, ErrorT) or isinstance(rt, ErrorT):
            return True
        if isinstance(lt, PressureT) and isinstance(rt, PressureT):
            if not any(isinstance(s, n.PressureLit) for s in sides):
                self.err(
                    "E602",
                    "a blood pressure is compared with a written pair, e.g. `bp < 140/90 mmHg`",
                    e.right.span,
                )
            return True
        pressure, other, t = (
            (e.left, e.right, rt)
            if isinstance(lt, PressureT)
            else (
                e.right,
                e.left,
                lt,
            )
        )
        if isinstance(pressure, n.PressureLit):
            self.notation_error(pressure, t)
            return True
        self.err(
            "E602",
            f"a blood pressure cannot be compared with {t.describe()}",
            other.span,
            label="not a systolic/diastolic pair",
            hint="write both values (`bp < 140/90 mmHg`) or compare one of them "
            "(`bp.systolic < 140 mmHg`)",
        )
        return True

    def notation_error(self, pair: n.PressureLit, other: Type) -> None:
        text = pair.raw or f"{pair.systolic}/{pair.diastolic}"
        self.err(
            "E601",
            f"`{text}` reads as a blood pressure (systolic/diastolic), but the other side is "
            f"{other.describe()}",
            pair.span,
            label="not a division",
            hint="declare the fact as `blood pressure` and compare `bp < 140/90 mmHg` (both "
            "below) or `bp > 160/100 mmHg` (either above); for a ratio write its value "
            "(e.g. `0.5`)",
        )

    def bare_division(self, e: n.Compare) -> bool:
        """`x < 5 / 10`: a division of two bare numbers compared with a fact (E601)."""
        for side, other in ((e.right, e.left), (e.left, e.right)):
            if (
                isinstance(side, n.Arith)
                and side.op == "/"
                and not side.parens  # `x < (1 / 3)`: arithmetic, written as such
                and isinstance(side.left, n.NumberLit)
                and isinstance(side.right, (n.NumberLit, n.QuantityLit))
                and not side.left.parens
                and not side.right.parens
                and not isinstance(other, (n.NumberLit, n.QuantityLit))
            ):
                self.err(
                    "E601",
                    f"`{side.left.text} / {getattr(side.right, 'text', '')}` divides two "
                    "written numbers in a comparison",
                    side.span,
                    label="a threshold written as a division",
                    hint="for a blood pressure declare `fact bp: blood pressure` and write "
                    "`bp < 140/90 mmHg`; for a ratio write its value (e.g. `0.5`)",
                )
                return True
        return False

    def pressure_part(self, e: n.Attribute, scope: dict) -> Type | None:
        """`bp.systolic`, `bp.diastolic`; None when `e.obj` is not a blood pressure."""
        if e.obj in scope or e.obj not in self.r.facts:
            return None
        t = self.r.facts[e.obj].type
        if not isinstance(t, PressureT):
            return None
        self.refs_out.add(e.obj)
        if e.attr not in PRESSURE_PARTS:
            return self.err(
                "E103",
                f"a blood pressure has `systolic` and `diastolic`, not `{e.attr}`",
                e.span,
            )
        return QuantT(t.unit)

    def number_threshold_warning(self, e: n.Compare, crit: n.Criterion | None) -> None:
        """W601: a plain `number` fact against a bare number the protocol writes with a unit."""
        if crit is None:
            return
        for subject, value in ((e.left, e.right), (e.right, e.left)):
            if not isinstance(value, n.NumberLit) or not isinstance(subject, n.Name):
                continue
            if self.r.refs.get(id(subject), Ref("", "")).kind != "fact":
                continue
            if not isinstance(self.r.facts[subject.name].type, NumberT):
                continue
            pattern = rf"(?<![\d.]){re.escape(value.text)}\s*([A-Za-z%µ\[][^\s,;)]*)"
            for m in re.finditer(pattern, crit.text):
                word = m.group(1).rstrip(".")
                try:
                    unit = parse_unit(word)
                except UnitError:
                    continue
                if unit.is_dimensionless and word != "%":
                    continue
                self.warn(
                    "W601",
                    f"the protocol writes {value.text} {word}, but `{subject.name}` is a "
                    "plain number",
                    value.span,
                    label="the unit is dropped here",
                    hint=f"declare `{subject.name}` as `quantity {word}` so the unit is checked",
                )
                return

    # ------------------------------------------------------------------ dates
    def date_of(self, e: n.DateOf) -> Type:
        info = self.r.facts.get(e.fact)
        if info is None:
            anchor = e.fact in self.r.anchors
            return self.err(
                "E604",
                f"`date of {e.fact}`: {e.fact} is not a fact"
                + (" (an anchor is a date already)" if anchor else ""),
                e.fact_span,
                hint=f"write `{e.fact}`" if anchor else "name a declared fact",
            )
        self.refs_out.add(e.fact)
        if isinstance(info.type, (ListT, DateT)):
            what = "a list (each item has its own dates)" if isinstance(info.type, ListT) else ""
            return self.err(
                "E604",
                f"`date of {e.fact}`: {e.fact} is {what or 'a date already'}",
                e.fact_span,
                hint=f"write `{e.fact}`" if isinstance(info.type, DateT) else "",
            )
        return DateT()

    def duration(self, q: n.QuantityLit, what: str = "a time window") -> Fraction | None:
        """Check a window's duration literal; its exact size in base units, or None."""
        u = self.unit(q.unit, q.span)
        self.record(q, QuantT(u) if u else ErrorT())
        if u is None:
            return None
        if not is_duration(u):
            self.err(
                "E307",
                f"`{q.text}` is not a duration ({describe(u.dims)})",
                q.span,
                hint="write days, weeks, months or years",
            )
            return None
        problem = duration_problem(q, u, what)
        if problem is not None:
            message, hint = problem
            self.err("E307", message, q.span, label="dates are whole days", hint=hint)
            return None
        return q.value * u.factor

    def date_bound(self, e: n.DateBound, scope: dict) -> Type:
        self.date_operand(e.subject, scope)
        self.date_operand(e.anchor, scope)
        if e.duration is not None:
            self.duration(e.duration)
        return BoolT()

    def window_between(self, e: n.WindowBetween, scope: dict) -> Type:
        self.date_operand(e.subject, scope)
        self.date_operand(e.anchor, scope)
        ends = e.durations()
        if ends is None:
            for side in (e.low, e.high):
                self.expr(side, scope)
            self.err(
                "E603",
                "the window's ends are written durations, e.g. `between 2 and 6 weeks before`",
                e.span,
            )
            return BoolT()
        lo, hi = ends
        self.record(e.low, NumberT() if isinstance(e.low, n.NumberLit) else ErrorT())
        a, b = self.duration(lo), self.duration(hi)
        if a is not None and b is not None:
            lu, hu = parse_unit(lo.unit), parse_unit(hi.unit)
            if lu.dims != hu.dims:
                self.dimension_error(lo.span, hu, lu, "the other end")
            elif a > b:
                self.err(
                    "E402",
                    "the window is empty: the first duration is longer than the second",
                    e.span,
                    hint="write the shorter duration first: `between 2 and 6 weeks before`",
                )
        return BoolT()

    def period(self, e: n.Period, scope: dict) -> Type:
        for side in (e.start, e.end, e.anchor):
            self.date_operand(side, scope)
        if e.duration is not None:
            self.duration(e.duration)
        return BoolT()

    def implies(self, e: n.Implies, scope: dict) -> Type:
        word = "`if`" if e.form == "if" else "`implies`"
        self.boolean(e.premise, scope, f"the condition of {word}")
        self.boolean(e.conclusion, scope, f"the consequence of {word}")
        return BoolT()


_DAY_SECONDS = 86400
_SUB_DAY_UNITS = ("s", "min", "h")


def duration_problem(q: n.QuantityLit, u: Unit, what: str) -> tuple[str, str] | None:
    """Why a duration cannot measure a window between dates, as (message, hint), or None.

    Dates in records and anchors are calendar days, and a date-only value is a whole day
    (FHIR R4 `date`/`dateTime` to day precision; ISO 8601 calendar date), so a window is
    a whole number of days, or of calendar months (a month is 28 to 31 days). A fixed
    duration in hours, minutes or seconds, or a fraction of a day, cannot be decided on
    dates: "within 72 hours before" a dose dated 2026-11-27 holds for a test on 2026-11-24
    at 10:00 and fails for one at 08:00, so it is refused rather than read as 3 days.
    """
    amount = q.value * u.factor
    if u.dims == CALENDAR:
        if amount.denominator == 1:
            return None
        # a calendar step is a whole number of months (a month is 28 to 31 days)
        return (
            f"`{q.text}` is not a whole number of months",
            "write whole months or years, or the window in weeks or days",
        )
    days = amount / _DAY_SECONDS
    sub_day_unit = q.unit in _SUB_DAY_UNITS or u.factor < _DAY_SECONDS
    if days.denominator == 1 and not sub_day_unit:
        return None
    whole = max(1, -(-days.numerator // days.denominator))  # rounded up
    shorter = whole - 1

    def n_days(k: int) -> str:
        return f"{k} day" if k == 1 else f"{k} days"

    return (
        f"`{q.text}` in {what} is not a whole number of days: dates are calendar days, so "
        "a window between dates cannot be measured in hours, minutes or parts of a day",
        f"write `{n_days(whole)}` or `{n_days(shorter)}`: a date {n_days(whole)} before may "
        f"be up to {24 * (whole + 1)} hours earlier, one {n_days(shorter)} before at most "
        f"{24 * whole} hours, whatever the times of day; say which reading you chose in an "
        "`assumption`",
    )
