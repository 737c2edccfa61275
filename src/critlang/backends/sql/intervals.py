"""Values known only as an interval (runtime.Range) in the SQL back end.

A censored value ("< 1.5"), a partial date ("2024-05") or an exposure's end that is
ongoing (or planned after the evaluation date) is a runtime.Range in the Python
evaluator. Ingest (data/ingest.py) writes such a value with `value` NULL and its
bounds in `value_low` / `value_high` (NULL: unbounded), `low_open` / `high_open` (1: the
bound itself is excluded) and `ongoing` (1: an exposure not ended by the evaluation date).

Here an operand is an `Iv`: its lowest and highest possible values (for a plain value,
both the value), openness flags and the ongoing flag. A NULL bound means unbounded for a
known interval and unknown for an unknown value; the two never need telling apart in
a comparison, because each test below compares a bound of one operand with a bound of
the other inside a CASE condition, where NULL is "not satisfied": an unbounded side
never satisfies `a.hi < b.lo`, and an unknown operand satisfies neither test, so the
comparison is NULL (unknown), as `None if a is None or b is None` is in Python.

Comparisons are runtime._less, case by case: True when every value of `a` lies below
every value of `b`, False when none does, else NULL. Windows are runtime.r_window
(an ongoing end meets a `before` window as if it ended at the anchor); date bounds
(`at least D before A`, `no later than A`, `between D1 and D2 before A`) and periods
(`ongoing at`, `overlaps`) are the same comparisons on the interval's bounds, as in
Python. Any other use of an interval (arithmetic, a formula, `first available`) is
unknown in SQL, where Python may decide it (interval arithmetic over unbounded ends,
runtime._product): the compiler marks what reads such a value plainly (`taint`), never
a decided answer Python would not give.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from ...typesys import DateT, NumberT, QuantT, Type
from .calendar import const_of
from .sqltree import guard as plain_guard

# suffixes of a fact's record keys holding its interval (a column each in the pivot)
LO, HI, LO_OPEN, HI_OPEN, ONGOING, IS_RANGE = "#vlo", "#vhi", "#vlopen", "#vhopen", "#vong", "#vrng"
SUFFIXES = (LO, HI, LO_OPEN, HI_OPEN, ONGOING, IS_RANGE)
# the facts-table columns (data/ingest.py COLUMNS)
COLUMNS = ("value_low", "value_high", "low_open", "high_open", "ongoing")

Flag = bool | exp.Expression  # a Python constant, or an SQL 0/1 (NULL: unknown value)


def capable(t: Type | None) -> bool:
    """Whether values of this type may be intervals (censored numbers, partial dates)."""
    return isinstance(t, (QuantT, NumberT, DateT))


@dataclass
class Iv:
    lo: exp.Expression
    hi: exp.Expression
    lo_open: Flag = False
    hi_open: Flag = False
    ongoing: Flag = False
    plain: bool = True  # a plain value: lo and hi are the same expression

    @staticmethod
    def of(v: exp.Expression) -> Iv:
        return Iv(v, v)

    def known(self) -> exp.Expression:
        """The value is known (plain or an interval): not both bounds NULL."""
        if const_of(self.lo) is not None:
            return exp.true()
        if self.plain:
            return exp.Not(this=_is_null(self.lo))
        return exp.Not(
            this=exp.paren(exp.and_(_is_null(self.lo), _is_null(self.hi), copy=False), copy=False)
        )


def _is_null(e: exp.Expression) -> exp.Expression:
    return exp.Is(this=exp.paren(e.copy(), copy=False), expression=exp.Null())


def _flag(f: Flag) -> exp.Expression:
    if isinstance(f, bool):
        return exp.Boolean(this=f)
    return exp.EQ(this=f.copy(), expression=exp.Literal.number(1))


def _any(*flags: Flag) -> Flag:
    """OR of flags, folded where constant."""
    if any(f is True for f in flags):
        return True
    rest = [f for f in flags if not isinstance(f, bool)]
    if not rest:
        return False
    return exp.paren(exp.or_(*[_flag(f) for f in rest], copy=False), copy=False)


def _touch(
    x: exp.Expression, y: exp.Expression, strict_part: Flag, cmp: type[exp.Expression]
) -> exp.Expression:
    """`x cmp y OR (x = y AND strict_part)`, folded."""
    base = cmp(this=x.copy(), expression=y.copy())
    if strict_part is False:
        return base
    eq = exp.EQ(this=x.copy(), expression=y.copy())
    same = eq if strict_part is True else exp.and_(eq, strict_part, copy=False)
    return exp.or_(base, same, copy=False)


def _points(*operands: Iv) -> bool:
    """Whether every operand is one plain value (closed, not ongoing): a point, over
    which the interval tests below are the plain comparisons (an unknown value, NULL,
    gives NULL either way). A fact without intervals in the cohort is read so
    (values.Layout.points), and the query compares its value directly."""
    return all(
        o.plain and o.lo is o.hi and o.lo_open is o.hi_open is o.ongoing is False for o in operands
    )


def less(a: Iv, b: Iv, strict: bool) -> exp.Expression:
    """runtime._less: every `a` below every `b` (TRUE), none (FALSE), else NULL."""
    if _points(a, b):
        return (exp.LT if strict else exp.LTE)(this=a.lo.copy(), expression=b.lo.copy())
    yes = _touch(a.hi, b.lo, _any(not strict, a.hi_open, b.lo_open), exp.LT)
    no = _touch(a.lo, b.hi, _any(strict, a.lo_open, b.hi_open), exp.GT)
    return exp.Case(
        ifs=[exp.If(this=yes, true=exp.true()), exp.If(this=no, true=exp.false())],
        default=exp.Null(),
    )


def equal(a: Iv, b: Iv) -> exp.Expression:
    """Range.__eq__: FALSE when one cannot reach the other, TRUE only for one same point."""
    if _points(a, b):
        return exp.EQ(this=a.lo.copy(), expression=b.lo.copy())
    le, ge = less(a, b, False), less(b, a, False)
    point = exp.and_(
        exp.EQ(this=a.lo.copy(), expression=a.hi.copy()),
        exp.EQ(this=a.hi.copy(), expression=b.lo.copy()),
        exp.EQ(this=b.lo.copy(), expression=b.hi.copy()),
        copy=False,
    )
    return exp.Case(
        ifs=[
            exp.If(
                this=exp.or_(
                    exp.Is(this=exp.paren(le, copy=False), expression=exp.false()),
                    exp.Is(this=exp.paren(ge, copy=False), expression=exp.false()),
                    copy=False,
                ),
                true=exp.false(),
            ),
            exp.If(this=point, true=exp.true()),
        ],
        default=exp.Null(),
    )


def compare(op: str, a: Iv, b: Iv) -> exp.Expression:
    if op == "<":
        return less(a, b, True)
    if op == "<=":
        return less(a, b, False)
    if op == ">":
        return less(b, a, True)
    if op == ">=":
        return less(b, a, False)
    eq = equal(a, b)
    return eq if op == "=" else exp.Not(this=exp.paren(eq, copy=False))


def guard(test: exp.Expression, *operands: Iv) -> exp.Expression:
    """NULL when an operand is unknown (Python's `None if a is None or ...`), else test."""
    if _points(*operands):  # no CASE where the test is NULL exactly then (sqltree.strict)
        return plain_guard(test, *[o.lo for o in operands])
    unknown = [
        exp.Not(this=exp.paren(o.known(), copy=False)) for o in operands if const_of(o.lo) is None
    ]
    if not unknown:
        return test
    return exp.Case(ifs=[exp.If(this=exp.or_(*unknown, copy=False), true=exp.Null())], default=test)


def in_range(x: Iv, lo: exp.Expression, hi: exp.Expression) -> exp.Expression:
    """runtime.r_in_range under python's guard: NULL when x is unknown or both limits
    are absent; an absent limit holds."""

    def side(limit: exp.Expression, test: exp.Expression) -> exp.Expression:
        return exp.Case(ifs=[exp.If(this=_is_null(limit), true=exp.true())], default=test)

    test = kleene_and(side(lo, less(Iv.of(lo), x, False)), side(hi, less(x, Iv.of(hi), False)))
    unknown = exp.or_(
        exp.Not(this=exp.paren(x.known(), copy=False)),
        exp.and_(_is_null(lo), _is_null(hi), copy=False),
        copy=False,
    )
    return exp.Case(ifs=[exp.If(this=unknown, true=exp.Null())], default=test)


def kleene_and(*tests: exp.Expression) -> exp.Expression:
    return exp.paren(exp.and_(*tests, copy=False), copy=False)


def shifted(a: Iv, shift: Callable[[exp.Expression], exp.Expression]) -> Iv:
    """Both bounds moved by a monotonic shift (runtime._r_add_months, Range + days)."""
    if a.plain:
        return Iv.of(shift(a.lo))
    return Iv(shift(a.lo), shift(a.hi), a.lo_open, a.hi_open, False, plain=False)


def _case_min(x: exp.Expression, y: exp.Expression) -> exp.Expression:
    """min(x, y) of bounds where NULL is the side's infinity: `low` -inf, `high` +inf."""
    return exp.Case(
        ifs=[exp.If(this=exp.LTE(this=x.copy(), expression=y.copy()), true=x.copy())],
        default=y.copy(),
    )


def until_anchor(d: Iv, a: Iv) -> Iv:
    """runtime.r_window for `before`: an ongoing end counts as at A at the latest,
    Range(min(d.lo, a.lo), min(d.hi, a.hi)), closed."""
    if d.ongoing is False:
        return d
    ong = _flag(d.ongoing)
    # lows: NULL is -inf, so a NULL on either side gives NULL
    low = exp.Case(
        ifs=[exp.If(this=exp.or_(_is_null(d.lo), _is_null(a.lo), copy=False), true=exp.Null())],
        default=_case_min(d.lo, a.lo),
    )
    # highs: NULL is +inf, so the other side wins
    high = exp.Case(
        ifs=[
            exp.If(this=_is_null(d.hi), true=a.hi.copy()),
            exp.If(this=_is_null(a.hi), true=d.hi.copy()),
        ],
        default=_case_min(d.hi, a.hi),
    )

    def pick(then: exp.Expression, other: exp.Expression) -> exp.Expression:
        return exp.Case(ifs=[exp.If(this=ong.copy(), true=then)], default=other.copy())

    def open_(f: Flag) -> Flag:
        if isinstance(f, bool):
            f = exp.Literal.number(int(f))
        return exp.Case(ifs=[exp.If(this=ong.copy(), true=exp.Literal.number(0))], default=f.copy())

    return Iv(
        pick(low, d.lo), pick(high, d.hi), open_(d.lo_open), open_(d.hi_open), False, plain=False
    )


def window(kind: str, before: bool, d: Iv, a: Iv, edge: Iv) -> exp.Expression:
    """runtime.r_window over intervals (plain values are one-point intervals)."""
    if before:
        d = until_anchor(d, a)
        if kind == "within":  # edge <= d <= a
            test = kleene_and(less(edge, d, False), less(d, a, False))
        elif kind == "more":  # d < edge
            test = less(d, edge, True)
        else:  # edge < d <= a
            test = kleene_and(less(edge, d, True), less(d, a, False))
    elif kind == "within":  # a <= d <= edge
        test = kleene_and(less(a, d, False), less(d, edge, False))
    elif kind == "more":  # d > edge
        test = less(edge, d, True)
    else:  # a <= d < edge
        test = kleene_and(less(a, d, False), less(d, edge, True))
    return guard(test, d, a)


# ---------------------------------------------------------------------- columns


def fact_iv(column: Callable[[str], exp.Expression], fact: str) -> Iv:
    """A scalar fact's interval, from its pivot columns (see `pivot`)."""
    return Iv(
        column(fact + LO),
        column(fact + HI),
        column(fact + LO_OPEN),
        column(fact + HI_OPEN),
        column(fact + ONGOING),
        plain=False,
    )


def field_iv(table: str, name: str) -> Iv:
    """A list item field's interval, from the item row's columns (see `item_columns`)."""

    def col(suffix: str) -> exp.Expression:
        return exp.column(name + suffix, table=table, quoted=False)

    return Iv(col("_lo"), col("_hi"), col("_lop"), col("_hop"), col("_ong"), plain=False)


def field_is_range(table: str, name: str) -> exp.Expression:
    return exp.EQ(
        this=exp.column(name + "_rng", table=table, quoted=False),
        expression=exp.Literal.number(1),
    )


def _row_value(suffix: str) -> exp.Expression:
    """The facts-row expression behind one interval column."""
    value = exp.column("value", quoted=False)
    if suffix in (LO, HI):
        bound = exp.column("value_low" if suffix == LO else "value_high", quoted=False)
        return exp.Coalesce(this=value, expressions=[bound])
    if suffix == IS_RANGE:
        return exp.Case(
            ifs=[
                exp.If(
                    this=exp.Not(this=_is_null(exp.column("low_open", quoted=False))),
                    true=exp.Literal.number(1),
                )
            ],
            default=exp.Null(),
        )
    col = {LO_OPEN: "low_open", HI_OPEN: "high_open", ONGOING: "ongoing"}[suffix]
    return exp.Coalesce(this=exp.column(col, quoted=False), expressions=[exp.Literal.number(0)])


def pivot(key: str, is_fact: exp.Expression, table: str) -> exp.Expression | None:
    """The pivot column of an interval record key (`fact#vlo`...), else None."""
    for suffix in SUFFIXES:
        if key.endswith(suffix):
            inner = _row_value(suffix)
            for c in inner.find_all(exp.Column):
                c.set("table", exp.to_identifier(table))
            return exp.Max(
                this=exp.Case(ifs=[exp.If(this=is_fact, true=inner)], default=exp.Null())
            )
    return None


def item_columns(is_field: exp.Expression, name: str) -> list[exp.Expression]:
    """A list field's interval columns in the per-item row (`x1_lo`, ...)."""
    out = []
    for suffix, tail in ((LO, "_lo"), (HI, "_hi"), (LO_OPEN, "_lop"), (HI_OPEN, "_hop"),
                         (ONGOING, "_ong"), (IS_RANGE, "_rng")):  # fmt: skip
        value = exp.Max(
            this=exp.Case(
                ifs=[exp.If(this=is_field.copy(), true=_row_value(suffix))], default=exp.Null()
            )
        )
        out.append(exp.alias_(value, name + tail, copy=False))
    return out
