"""Impossible values in a facts table the SQL back end picks from itself.

`critlang ingest` writes only values the record reader accepted (data/reader_quantity.py
`plausible`): a value outside the range the fact declares with `plausible LOW..HIGH`, a
negative amount, a share above 100 % is a per-fact problem there, never a value. A facts
table written by other means (a warehouse's, in the documented layout) has no such
filter, so the query's own pick applies the same rules: such a row is never picked, and
as in the reader (`Reader.hidden`: a value that could not be used may be the newest), it
leaves the fact unknown when it is dated on or after the day of the newest usable value,
or undated, or the usable values include an undated one; an older one never decides in
its place. `implausible_rows` lists them, with the reader's wording, for `--patients`.

Compared in the fact's declared unit, as DOUBLEs: the reader compares exact decimals, so
the two can differ only for a value within a double's rounding of the limit itself.
"""

from __future__ import annotations

from fractions import Fraction

from sqlglot import exp

from ...data.reader_quantity import declared_range
from ...data.signs import never_negative
from ...typesys import NumberT, QuantT
from .base import CompilerBase
from .calendar import num
from .sqltree import col, is_null, lit

NO_DAY = 99_999_999  # later than any day number (9999-12-31 is 3,652,059)


def limits(comp: CompilerBase, fact: str) -> tuple[Fraction | None, Fraction | None]:
    """The lowest and highest possible value of a fact in its declared unit (None: no
    limit): its own `plausible` range, 0 for an amount that is never negative, 100 for
    a percentage (the reader's rules, reader_quantity.Reader.plausible)."""
    t = comp.c.record_types.get(fact)
    if not isinstance(t, (QuantT, NumberT)):
        return None, None
    low: Fraction | None = None
    high: Fraction | None = None
    own = declared_range(comp.c, fact)
    if own is not None:
        low, high = own[0], own[1]
    if isinstance(t, QuantT):
        if never_negative(t.unit, comp.c.bindings.get(fact, [])):
            low = Fraction(0) if low is None else max(low, Fraction(0))
        if t.unit.text == "%":
            high = Fraction(100) if high is None else min(high, Fraction(100))
    return low, high


def outside(
    low: Fraction | None, high: Fraction | None, table: str | None = None
) -> exp.Expression:
    """Whether a facts row's value is impossible: every value it stands for (a censored
    value's interval, `value_low` .. `value_high`) below `low` or above `high`."""

    def c(name: str) -> exp.Expression:
        return col(name, table)

    tests: list[exp.Expression] = []
    if low is not None:
        lo = num(float(low))
        plain = exp.LT(this=c("value"), expression=lo)
        # "< 1.5" (open) is all below 1.5 when 1.5 <= low; "<= 1.5" when 1.5 < low
        censored = exp.or_(
            exp.LT(this=c("value_high"), expression=lo.copy()),
            exp.and_(
                exp.EQ(this=c("value_high"), expression=lo.copy()),
                exp.EQ(this=c("high_open"), expression=num(1)),
                copy=False,
            ),
            copy=False,
        )
        tests.append(exp.Case(ifs=[exp.If(this=is_null(c("value")), true=censored)], default=plain))
    if high is not None:
        hi = num(float(high))
        plain = exp.GT(this=c("value"), expression=hi)
        censored = exp.or_(
            exp.GT(this=c("value_low"), expression=hi.copy()),
            exp.and_(
                exp.EQ(this=c("value_low"), expression=hi.copy()),
                exp.EQ(this=c("low_open"), expression=num(1)),
                copy=False,
            ),
            copy=False,
        )
        tests.append(exp.Case(ifs=[exp.If(this=is_null(c("value")), true=censored)], default=plain))
    if not tests:
        return exp.false()
    # NULL (no value, no bound on that side) is not impossible
    return exp.Coalesce(this=exp.or_(*tests, copy=False), expressions=[exp.false()])


def impossible(
    comp: CompilerBase, facts: set[str], table: str | None = None
) -> exp.Expression | None:
    """1 for a row of one of `facts` whose value is impossible, else 0; None when none of
    them has a limit (the pick is then as before)."""
    ifs = []
    for fact in sorted(facts):
        low, high = limits(comp, fact)
        if low is None and high is None:
            continue
        ifs.append(
            exp.If(
                this=exp.and_(
                    exp.EQ(this=col("fact", table), expression=lit(fact)),
                    outside(low, high, table),
                    copy=False,
                ),
                true=num(1),
            )
        )
    if not ifs:
        return None
    return exp.Case(ifs=ifs, default=num(0))
