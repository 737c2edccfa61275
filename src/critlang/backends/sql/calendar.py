"""Calendar arithmetic on day numbers in SQL.

Dates travel through the SQL back end as day numbers (Python's proleptic Gregorian
ordinal: 0001-01-01 is 1), exactly as in the compiled Python evaluator, so windows are
number comparisons. Where the calendar itself matters (a shift by calendar months, an
age in completed years) the day number becomes a DATE (0001-01-01 plus days), and the
dialect's own date functions, as sqlglot writes them, do the work: EXTRACT of year,
month and day; a month shift (`+ INTERVAL n MONTH` in DuckDB and PostgreSQL,
ADD_MONTHS in Spark), which in all three clamps the day to the month's end like
runtime.add_months (Mar 31 - 1 month = Feb 28/29); then back to a day number. All three
engines use the proleptic Gregorian calendar, as Python does. A constant operand (the
screening date) is folded here in Python instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlglot import exp

from ..runtime import add_months as py_add_months
from ..runtime import elapsed_years
from ..runtime_calendar import months_back as py_months_back

Let = Callable[[exp.Expression], exp.Expression]


def inline(e: exp.Expression) -> exp.Expression:
    """The default `let`: the expression itself (no shared column to name it)."""
    return e


def sql_type(name: str) -> exp.DataType:
    """A plain SQL type node (DOUBLE, INT, DATE), built directly: `DataType.build` parses
    its text each time (a third of the tree's building time, measured)."""
    return exp.DataType(this=exp.DataType.Type[name], nested=False)


def num(x: float | int) -> exp.Expression:
    """A numeric constant as an exact DOUBLE in every dialect (never a DECIMAL literal)."""
    if isinstance(x, int) or (float(x).is_integer() and abs(x) < 2**53):
        value = exp.Literal.number(int(x))
    else:
        value = exp.Literal.string(repr(float(x)))
    out = exp.Cast(this=value, to=sql_type("DOUBLE"))
    out.meta["const"] = float(x)
    return out


def const_of(e: exp.Expression) -> float | None:
    """The Python value of a constant built by `num`, else None."""
    return e.meta.get("const") if e.meta else None


def _double(e: exp.Expression) -> exp.Expression:
    return exp.Cast(this=e, to=sql_type("DOUBLE"))


def _epoch() -> exp.Expression:
    return exp.Cast(this=exp.Literal.string("0001-01-01"), to=sql_type("DATE"))


def to_date(day: exp.Expression) -> exp.Expression:
    """The DATE of a day number."""
    days = exp.Cast(
        this=exp.Sub(this=exp.paren(day, copy=False), expression=exp.Literal.number(1)),
        to=sql_type("INT"),
    )
    return exp.DateAdd(this=_epoch(), expression=days, unit=exp.var("DAY"))


def day_number(date: exp.Expression) -> exp.Expression:
    """The day number of a DATE (or midnight TIMESTAMP)."""
    diff = exp.DateDiff(this=date, expression=_epoch(), unit=exp.var("DAY"))
    return _double(exp.Add(this=diff, expression=exp.Literal.number(1)))


def civil(
    day: exp.Expression, let: Let = inline
) -> tuple[exp.Expression, exp.Expression, exp.Expression]:
    """(year, month, day of month) of a day number (NULL stays NULL)."""
    value = const_of(day)
    if value is not None:
        d = dt.date.fromordinal(int(value))
        return num(d.year), num(d.month), num(d.day)
    date = to_date(let(day))
    return tuple(  # type: ignore[return-value]
        let(_double(exp.Extract(this=exp.var(part), expression=date.copy())))
        for part in ("YEAR", "MONTH", "DAY")
    )


def add_months(day: exp.Expression, months: int, let: Let = inline) -> exp.Expression:
    """Day number shifted by calendar months, the day clamped to the month's end, as
    runtime.add_months (Mar 31 - 1 month = Feb 28/29)."""
    value = const_of(day)
    if value is not None:
        return num(py_add_months(int(value), months))
    shifted = exp.DateAdd(
        this=to_date(let(day)), expression=exp.Literal.number(months), unit=exp.var("MONTH")
    )
    return let(day_number(shifted))


def months_back(day: exp.Expression, months: int, side: str, let: Let = inline) -> exp.Expression:
    """runtime_calendar.months_back: the `lo` / `hi` edge of a `before` form, the step
    added to the earlier date (lo: the month shift back, plus one day when the anchor's
    day does not exist in that month; hi: the last day of that month when the anchor is
    the last day of its own, else the shift back)."""
    value = const_of(day)
    if value is not None:
        return num(py_months_back(int(value), months, side))
    day = let(day)
    back = add_months(day.copy(), -months, let)
    if side == "lo":
        clamped = exp.LT(this=civil(back, let)[2], expression=civil(day, let)[2])
        bump = exp.Case(ifs=[exp.If(this=clamped, true=num(1))], default=num(0))
        return let(exp.paren(exp.Add(this=back.copy(), expression=bump), copy=False))
    following = let(exp.paren(exp.Add(this=day.copy(), expression=num(1)), copy=False))
    last_of_month = exp.EQ(this=civil(following, let)[2], expression=num(1))
    month_end = exp.Sub(this=add_months(following, -months, let), expression=num(1))
    return let(exp.Case(ifs=[exp.If(this=last_of_month, true=month_end)], default=back.copy()))


def paren_(e: exp.Expression) -> exp.Expression:
    return exp.paren(e, copy=False)


def completed_years(
    start: exp.Expression, end: exp.Expression, let: Let = inline
) -> exp.Expression:
    """runtime.elapsed_years: completed calendar years from start to end (NULL if either)."""
    a, b = const_of(start), const_of(end)
    if a is not None and b is not None:
        return num(elapsed_years(int(a), int(b)) or 0)
    ya, ma, da = civil(start, let)
    yb, mb, db = civil(end, let)
    earlier = exp.or_(
        exp.LT(this=mb, expression=ma),
        exp.and_(exp.EQ(this=mb.copy(), expression=ma.copy()), exp.LT(this=db, expression=da)),
        copy=False,
    )
    # born on 29 February: the step clamps to 28 February in a common year
    # (runtime.elapsed_years, runtime_calendar), so that day completes the year
    following = let(exp.paren(exp.Add(this=end.copy(), expression=num(1)), copy=False))
    leapling = exp.and_(
        exp.EQ(this=ma.copy(), expression=num(2)),
        exp.EQ(this=da.copy(), expression=num(29)),
        exp.EQ(this=mb.copy(), expression=num(2)),
        exp.EQ(this=db.copy(), expression=num(28)),
        exp.EQ(this=civil(following, let)[1], expression=num(3)),
        copy=False,
    )
    earlier = exp.and_(paren_(earlier), exp.Not(this=paren_(leapling)), copy=False)
    return exp.paren(
        exp.Sub(
            this=exp.Sub(this=yb.copy(), expression=ya.copy()),
            expression=exp.Case(ifs=[exp.If(this=earlier, true=num(1))], default=num(0)),
        ),
        copy=False,
    )
