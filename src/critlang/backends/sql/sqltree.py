"""Small builders of sqlglot nodes shared by the SQL back end's modules.

Three-valued logic: unknown is SQL NULL; `guard` is Python's `None if a is None ...`
(a CASE, so that a NULL operand never lets a Kleene AND turn into FALSE).
"""

from __future__ import annotations

from sqlglot import exp

from .calendar import const_of, num


class SqlUnsupported(ValueError):
    """A protocol construct the SQL back end does not express (message names it)."""


def lit(text: str) -> exp.Expression:
    return exp.Literal.string(text)


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=False)


def null() -> exp.Expression:
    return exp.Null()


def paren(e: exp.Expression) -> exp.Expression:
    return exp.paren(e, copy=False)


def case(cond: exp.Expression, then: exp.Expression, default: exp.Expression) -> exp.Expression:
    return exp.Case(ifs=[exp.If(this=cond, true=then)], default=default)


def is_null(e: exp.Expression) -> exp.Expression:
    return exp.Is(this=paren(e.copy()), expression=exp.Null())


def is_(e: exp.Expression, value: bool) -> exp.Expression:
    return exp.Is(this=paren(e.copy()), expression=exp.Boolean(this=value))


def guard(test: exp.Expression, *operands: exp.Expression) -> exp.Expression:
    """NULL when any non-constant operand is NULL, else `test` (Python's `None if ...`)."""
    unknowns = [is_null(o) for o in operands if const_of(o) is None and not is_literal(o)]
    if not unknowns:
        return test
    return case(exp.or_(*unknowns, copy=False), null(), test)


def is_literal(e: exp.Expression) -> bool:
    return isinstance(e, (exp.Literal, exp.Boolean))


def any_of(items: list[exp.Expression]) -> exp.Expression:
    return exp.or_(*items, copy=False) if items else exp.false()


def compare_sql(op: str, a: exp.Expression, b: exp.Expression) -> exp.Expression:
    cls = {"<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE, "=": exp.EQ, "!=": exp.NEQ}[op]
    return cls(this=a.copy(), expression=b.copy())


# Statuses and verdicts are small integers inside the query (cheaper to compare, count
# and store than their words: about a third of the query's time at 100,000 patients,
# measured), and words only in the per-patient rows given out (`SqlProtocol.select`).
STATUSES = ("met", "not met", "unknown", "not applicable")  # code i is STATUSES[i]
VERDICTS = ("eligible", "ineligible", "undetermined")


def code(word: str) -> exp.Expression:
    """A status's or a verdict's code (an integer literal)."""
    return exp.Literal.number(STATUSES.index(word) if word in STATUSES else VERDICTS.index(word))


def words(e: exp.Expression, names: tuple[str, ...]) -> exp.Expression:
    """The word of a code."""
    return exp.Case(
        ifs=[exp.If(this=exp.EQ(this=e.copy(), expression=code(w)), true=lit(w)) for w in names]
    )


def status_code(b: exp.Expression) -> exp.Expression:
    return exp.Case(
        ifs=[
            exp.If(this=is_(b, True), true=code("met")),
            exp.If(this=is_(b, False), true=code("not met")),
        ],
        default=code("unknown"),
    )


def sig_sql(x: exp.Expression) -> exp.Expression:
    """runtime.sig in SQL: round to 12 significant digits (0 stays 0).

    FLOOR(x * 10^k + 0.5) / 10^k with k = 11 - FLOOR(LOG10(|x|)) (LOG10 written as a
    plain call: the base-10 logarithm of a DOUBLE in all three engines): the same decimal
    rounding as Python's `float(f"{x:.12g}")` except at exact ties in the 13th digit.
    """
    ax = exp.Abs(this=x.copy())
    k = exp.Sub(
        this=num(11), expression=exp.Floor(this=exp.Anonymous(this="LOG10", expressions=[ax]))
    )
    scale = exp.Pow(this=num(10), expression=paren(k))
    rounded = exp.Div(
        this=exp.Floor(
            this=exp.Add(this=exp.Mul(this=x.copy(), expression=scale), expression=num(0.5))
        ),
        expression=scale.copy(),
    )
    # a negative x rounds half away from zero like Python's formatting does
    neg = exp.Div(
        this=exp.Neg(
            this=exp.Floor(
                this=exp.Add(
                    this=exp.Mul(this=exp.Neg(this=x.copy()), expression=scale.copy()),
                    expression=num(0.5),
                )
            )
        ),
        expression=scale.copy(),
    )
    return exp.Case(
        ifs=[
            exp.If(this=exp.EQ(this=x.copy(), expression=num(0)), true=x.copy()),
            exp.If(this=exp.LT(this=x.copy(), expression=num(0)), true=neg),
        ],
        default=rounded,
    )


def star(table: str) -> exp.Expression:
    return exp.Column(this=exp.Star(), table=exp.to_identifier(table))
