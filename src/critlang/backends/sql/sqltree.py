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
    """NULL when any non-constant operand is NULL, else `test` (Python's `None if ...`).

    Without the CASE where `test` is already NULL exactly then (`strict`): an SQL
    comparison is NULL when an operand is, so `a < b` guarded is `a < b`."""
    variables = [o for o in operands if const_of(o) is None and not is_literal(o)]
    if not variables or strict(test, variables):
        return test
    return case(exp.or_(*[is_null(o) for o in variables], copy=False), null(), test)


COMPARISONS = (exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE)


def strict(test: exp.Expression, variables: list[exp.Expression]) -> bool:
    """Whether `test` is NULL when any of `variables` is NULL and TRUE or FALSE otherwise:
    comparisons (and IN lists of literals) each of whose sides is a constant or one of
    `variables`, every variable read by each, under NOT, AND and OR (Kleene: with every
    part NULL the whole is NULL; with none, none is)."""
    if isinstance(test, exp.Paren):
        return strict(test.this, variables)
    if isinstance(test, exp.Not):
        return strict(test.this, variables)
    if isinstance(test, (exp.And, exp.Or)):
        return strict(test.this, variables) and strict(test.expression, variables)
    if isinstance(test, COMPARISONS):
        sides = [test.this, test.expression]
    elif (
        isinstance(test, exp.In)
        and test.expressions
        and all(is_literal(x) for x in test.expressions)
    ):
        sides = [test.this]
    else:
        return False
    read = [s for s in sides if const_of(s) is None and not is_literal(s)]
    return all(any(same(s, v) for v in variables) for s in read) and all(
        any(same(v, s) for s in read) for v in variables
    )


def same(a: exp.Expression, b: exp.Expression) -> bool:
    """Whether two trees are the same node for node (types, argument values and their
    letter case): what lets `let` share a column, checked after the hash matched."""
    if a is b:
        return True
    if type(a) is not type(b) or a.args.keys() != b.args.keys():
        return False
    for k, x in a.args.items():
        y = b.args[k]
        if isinstance(x, exp.Expression):
            if not isinstance(y, exp.Expression) or not same(x, y):
                return False
        elif isinstance(x, list):
            if not isinstance(y, list) or len(x) != len(y):
                return False
            for u, v in zip(x, y, strict=True):
                if isinstance(u, exp.Expression):
                    if not isinstance(v, exp.Expression) or not same(u, v):
                        return False
                elif u != v or type(u) is not type(v):
                    return False
        elif x != y or type(x) is not type(y):
            return False
    return True


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
