"""Facts to one row per patient: each fact's value picked as the record reader picks
it (the newest usable value inside the look-back window, ties to the first recorded;
without a window the newest dated one, else the last one), then pivoted into one
column per record key (`f1`...: a fact, an anchor, `fact#low`, an interval bound)."""

from __future__ import annotations

from fractions import Fraction

from sqlglot import exp

from ...checker import ENROLLMENT
from ...data.records import CONFLICT, NOLIMITS, window_start
from ...typesys import BoolT, DateT, EnumT, ListT, ScaleT
from ...units import parse_unit
from ..python import _range_limits
from ..python_normalise import limit_product
from . import intervals as iv
from .base import CompilerBase
from .calendar import num, sql_type
from .plausible import NO_DAY, impossible
from .sqltree import any_of, case, col, is_null, lit, null, paren, star

FACTS = "critlang_facts"
PATIENTS = "critlang_patients"


def pick_filter(comp: CompilerBase, fact: str) -> exp.Expression:
    """Which of a fact's rows may be picked: inside its look-back window, if it has one."""
    info = comp.c.facts.get(fact)
    look = info.lookback if info else None
    if look is None or look.quantity is None:
        # the newest value as of the screening date, never a later one (data/reader.py)
        return exp.or_(
            is_null(col("day")),
            exp.LTE(this=col("day"), expression=num(comp.as_of.toordinal())),
            copy=False,
        )
    if (look.anchor or ENROLLMENT) != ENROLLMENT:
        raise comp.unsupported(
            f"a look-back window anchored at {look.anchor!r} (only the screening date)", info.node
        )
    start = window_start(comp.as_of, look.quantity.value, parse_unit(look.quantity.unit))
    return exp.Between(
        this=col("day"), low=num(start.toordinal()), high=num(comp.as_of.toordinal())
    )


def fact_filter(comp: CompilerBase, key: str) -> exp.Expression:
    """The rows a record key's value may be picked from (pick_filter for a scalar fact;
    every row for a conflict mark, an anchor and a list's item count)."""
    types = comp.c.record_types
    fact = key.split("#")[0]
    if key.endswith(CONFLICT) or fact.startswith("@") or isinstance(types.get(fact), ListT):
        return exp.true()
    return pick_filter(comp, fact)


PICK_ORDER = [  # the record reader's order: dated first, newest first, then first recorded
    exp.Ordered(this=case(is_null(col("day")), num(1), num(0))),
    exp.Ordered(this=col("day"), desc=True),
    exp.Ordered(this=case(is_null(col("day")), exp.Neg(this=col("seq")), col("seq"))),
]


def picked_rows(comp: CompilerBase, keys: dict[str, str], read: bool = False) -> exp.Select:
    """The chosen facts row per patient and fact (`row_number()` over (pid, fact)) for
    the record keys `keys`. `read`: the facts were written by `critlang ingest`, whose
    reader let no impossible value through (plausible.py's test would find none)."""
    # facts sharing a look-back window (or having none) are tested together, one IN
    # list each: a row is kept when its fact is listed under a window that holds its day
    # (the same rows as a test per fact, without one string comparison per fact per row)
    by_window: dict[str, tuple[exp.Expression, set[str]]] = {}
    products = {p[0] for p in comp.compiled.products}
    for key in keys:
        window = fact_filter(comp, key)
        fact = key if key.endswith(CONFLICT) else key.split("#")[0]
        group = by_window.setdefault(window.sql(), (window, set()))[1]
        group.add(fact)
        if key in products:  # the exact `k x ULN` rows ingest wrote (limit_products)
            group.add(key)
        if key.endswith(("#low", "#high")):  # limits left unknown by reported ranges
            group.add(fact + NOLIMITS)
    filters = []
    for text, (window, facts) in sorted(by_window.items()):
        listed = exp.In(this=col("fact"), expressions=[lit(f) for f in sorted(facts)])
        always = text == exp.true().sql()
        filters.append(listed if always else paren(exp.and_(listed, window, copy=False)))
    kept = exp.and_(
        is_null(col("problem")),
        is_null(col("item")),
        any_of(filters),
        copy=False,
    )
    values = ["pid", "fact", "value", "text", "low", "high", *iv.COLUMNS]
    if not read:  # a warehouse's table: impossible values, ties (checked_pick)
        bad = impossible(comp, {k.split("#")[0] for k in keys})
        return checked_pick(values, kept, exp.Literal.number(0) if bad is None else bad)
    ranked = (
        exp.select(
            *values,
            exp.alias_(
                exp.Window(
                    this=exp.RowNumber(),
                    partition_by=[col("pid"), col("fact")],
                    order=exp.Order(expressions=[o.copy() for o in PICK_ORDER]),
                ),
                "rn",
                copy=False,
            ),
            copy=False,
        )
        .from_(FACTS, copy=False)
        .where(kept, copy=False)
    )
    return (
        exp.select(*values, copy=False)
        .from_(ranked.subquery("ranked", copy=False), copy=False)
        .where(exp.EQ(this=col("rn"), expression=exp.Literal.number(1)), copy=False)
    )


def checked_pick(values: list[str], kept: exp.Expression, bad: exp.Expression) -> exp.Select:
    """picked_rows over a facts table written by other means than ingest, which may hold
    what the record reader never lets through: impossible values (`bad` 1: plausible.py)
    and values it cannot order. The newest possible row, unless
    - an impossible one may be newer (the reader's `hidden`): dated on or after its day,
      undated, or beside an undated possible one;
    - another possible row on the same day, or an undated one, holds another value (the
      reader's conflict: the time of day is not in the table, and the row order is the
      file's, which never decides): the fact is then unknown, where Python weighs the
      candidates and may decide (weaker, never different).
    """
    rows = (
        exp.select(*values, "day", "seq", exp.alias_(bad, "bad", copy=False), copy=False)
        .from_(FACTS, copy=False)
        .where(kept, copy=False)
    )

    def per_fact(this: exp.Expression, order: list[exp.Expression] | None = None) -> exp.Window:
        return exp.Window(
            this=this,
            partition_by=[col("pid"), col("fact")],
            order=exp.Order(expressions=order) if order else None,
        )

    is_bad = exp.EQ(this=col("bad"), expression=exp.Literal.number(1))
    undated = is_null(col("day"))
    ranked = exp.select(
        *values,
        "day",
        "bad",
        exp.alias_(
            per_fact(
                exp.RowNumber(),
                [exp.Ordered(this=col("bad")), *[o.copy() for o in PICK_ORDER]],
            ),
            "rn",
            copy=False,
        ),
        exp.alias_(
            per_fact(
                exp.Max(
                    this=case(
                        is_bad,
                        exp.Coalesce(this=col("day"), expressions=[num(NO_DAY)]),
                        null(),
                    )
                )
            ),
            "bad_day",
            copy=False,
        ),
        exp.alias_(
            per_fact(
                exp.Max(
                    this=case(exp.and_(exp.Not(this=is_bad.copy()), undated.copy()), num(1), null())
                )
            ),
            "undated",
            copy=False,
        ),
        exp.alias_(
            per_fact(exp.Max(this=case(exp.Not(this=is_bad.copy()), col("day"), null()))),
            "good_day",
            copy=False,
        ),
        copy=False,
    ).from_(rows.subquery("facts_rows", copy=False), copy=False)
    # the candidates the reader would weigh: possible rows of the newest day, undated ones
    candidate = exp.and_(
        exp.Not(this=is_bad.copy()),
        exp.or_(undated.copy(), exp.EQ(this=col("day"), expression=col("good_day")), copy=False),
        copy=False,
    )
    same = [
        exp.alias_(per_fact(agg(this=case(candidate.copy(), _value_key(values), null()))), name)
        for agg, name in ((exp.Min, "k_min"), (exp.Max, "k_max"))
    ]
    ranked = exp.select(star("ranked0"), *same, copy=False).from_(
        ranked.subquery("ranked0", copy=False), copy=False
    )
    hidden = exp.and_(
        exp.Not(this=is_null(col("bad_day"))),
        exp.or_(
            undated.copy(),
            exp.Not(this=is_null(col("undated"))),
            exp.GTE(this=col("bad_day"), expression=col("day")),
            copy=False,
        ),
        copy=False,
    )
    return (
        exp.select(*values, copy=False)
        .from_(ranked.subquery("ranked", copy=False), copy=False)
        .where(
            exp.and_(
                exp.EQ(this=col("rn"), expression=exp.Literal.number(1)),
                exp.EQ(this=col("bad"), expression=exp.Literal.number(0)),
                exp.Not(this=paren(hidden)),
                exp.EQ(this=col("k_min"), expression=col("k_max")),
                copy=False,
            ),
            copy=False,
        )
    )


def _value_key(values: list[str]) -> exp.Expression:
    """A row's value as one text (value, category, reference limits, interval bounds;
    NULL as an empty part): equal texts, one value (the reader's `same_value`)."""
    parts: list[exp.Expression] = []
    for name in values:
        if name in ("pid", "fact"):
            continue
        text = exp.Cast(this=col(name), to=sql_type("VARCHAR"))
        parts += [exp.Coalesce(this=text, expressions=[lit("")]), lit("|")]
    return exp.Concat(expressions=parts)


def key_value(comp: CompilerBase, key: str) -> exp.Expression:
    """One record key's column of the pivot: an aggregate over the picked rows `v`."""
    types = comp.c.record_types
    fact = key.split("#")[0]
    is_fact = exp.EQ(this=col("fact", "v"), expression=lit(fact))
    t = types.get(fact) if not key.startswith("@") else DateT()
    ranged = iv.pivot(key, is_fact, "v")
    if ranged is not None:
        return ranged
    if key.endswith(CONFLICT):
        is_conflict = exp.EQ(this=col("fact", "v"), expression=lit(key))
        return exp.Max(this=case(is_conflict, col("value", "v"), null()))
    product = next((p for p in comp.compiled.products if p[0] == key), None)
    if product is not None:
        return limit_product_value(comp, product, is_fact)
    if key.endswith("#low") or key.endswith("#high"):
        which = "low" if key.endswith("#low") else "high"
        default_low, default_high = _range_limits(None, comp.c, fact)
        default = default_low if which == "low" else default_high
        own = col(which, "v")
        none_own = exp.and_(is_null(col("low", "v")), is_null(col("high", "v")), copy=False)
        limit: exp.Expression = own
        if default is not None:
            limit = case(none_own, num(default), own.copy())
        value = exp.Max(this=case(is_fact, limit, null()))
        # the default applies also when the fact is unknown (python._range_limits)
        if default is not None:
            value = exp.Coalesce(this=value, expressions=[num(default)])
            # but not where reported ranges leave the value's own limits unknown
            # (ingest's NOLIMITS row; python_normalise._exact_limits)
            unknown = exp.Max(
                this=case(
                    exp.EQ(this=col("fact", "v"), expression=lit(fact + NOLIMITS)), num(1), null()
                )
            )
            value = case(is_null(unknown), value, null())
        return value
    if isinstance(t, (EnumT,)) and not isinstance(t, ScaleT):
        return exp.Max(this=case(is_fact, col("text", "v"), null()))
    if isinstance(t, BoolT):
        picked_value = exp.Max(this=case(is_fact, col("value", "v"), null()))
        return case(
            is_null(picked_value),
            null(),
            exp.NEQ(this=picked_value.copy(), expression=num(0)),
        )
    # quantities, numbers, integers, grades, dates (day numbers), list item counts
    return exp.Max(this=case(is_fact, col("value", "v"), null()))


def limit_product_value(
    comp: CompilerBase, product: tuple[str, str, str, Fraction], is_fact: exp.Expression
) -> exp.Expression:
    """`k x ULN` (or LLN) as the Python evaluator compares it: the product ingest wrote,
    computed exactly and rounded once (python_normalise.limit_products); without a value
    the protocol's default range's exact product. A facts table written by other means
    (a warehouse's) has no such rows: k times the limit in DECIMAL (exact_multiple)."""
    key, name, which, factor = product
    own = exp.Max(
        this=case(exp.EQ(this=col("fact", "v"), expression=lit(key)), col("value", "v"), null())
    )
    has_row = exp.Max(this=case(is_fact, num(1), null()))
    default = limit_product(None, comp.c, name, which, factor)
    limit = key_value(comp, f"{name}#{which}")
    fallback = case(
        is_null(has_row),
        null() if default is None else num(default),
        exact_multiple(limit, factor),
    )
    return exp.Coalesce(this=own, expressions=[fallback])


LIMIT_SCALE = 9  # decimal places a limit stored as a DOUBLE is read to (exact_multiple)


def exact_multiple(limit: exp.Expression, factor: Fraction) -> exp.Expression:
    """`factor x limit` as Python computes it from a recorded limit (python_normalise.
    limit_product: exact, then rounded once to a double), for a limit held as a DOUBLE:
    the limit read as a DECIMAL with LIMIT_SCALE places (the decimal it was recorded as,
    for any limit of up to 9 places), times the factor's exact decimal, and the product
    rounded once to a DOUBLE. In floats 1.5 x 1.1 is 1.6500000000000001, above a
    recorded 1.65 (sqltest7 finding 1: an excluded patient admitted). The same nodes in
    every dialect (DuckDB rounds a DOUBLE to the scale, PostgreSQL through its decimal
    text, Spark through Java's shortest decimal; each converts the exact product to the
    nearest DOUBLE while it has at most 15 digits: limits times factors below 10^5)."""
    places = 0
    while (factor * 10**places).denominator != 1 and places < 12:
        places += 1
    exact = factor * 10**places
    if exact.denominator != 1:  # not a decimal (never from the grammar): as floats
        return exp.Mul(this=num(float(factor)), expression=limit)
    digits = max(len(str(exact.numerator)), places + 1)
    k = exp.Cast(
        this=exp.Literal.number(_decimal_text(exact.numerator, places)),
        to=decimal_type(digits, places),
    )
    held = exp.Cast(this=limit, to=decimal_type(15 + LIMIT_SCALE, LIMIT_SCALE))
    return exp.Cast(this=exp.Mul(this=held, expression=k), to=sql_type("DOUBLE"))


def decimal_type(precision: int, scale: int) -> exp.DataType:
    """DECIMAL(precision, scale), built directly (calendar.sql_type)."""
    return exp.DataType(
        this=exp.DataType.Type.DECIMAL,
        expressions=[
            exp.DataTypeParam(this=exp.Literal.number(precision)),
            exp.DataTypeParam(this=exp.Literal.number(scale)),
        ],
        nested=False,
    )


def _decimal_text(units: int, places: int) -> str:
    """The decimal `units / 10**places` as text ("15", 1 -> "1.5")."""
    text = str(abs(units)).rjust(places + 1, "0")
    sign = "-" if units < 0 else ""
    return sign + (text[:-places] + "." + text[-places:] if places else text)


def key_definition(comp: CompilerBase, key: str) -> str:
    """What a record key's column holds, as text: the rows it is picked from, the pick
    order and its aggregate. A per-patient table (values.py) column is used for a key
    only where its stored definition is this one."""
    # (trees built here and dropped: written without sqlglot's defensive copy)
    window = fact_filter(comp, key).sql(copy=False)
    return f"{window} | {_ORDER_TEXT} | {key_value(comp, key).sql(copy=False)}"


_ORDER_TEXT = ", ".join(o.sql() for o in PICK_ORDER)


def pivot_rows(comp: CompilerBase, keys: dict[str, str], read: bool = False) -> exp.Select:
    """One row per patient (`pid`, `id`, `deceased`, then one column per record key,
    named as `keys` says) from the facts table: each key's picked value."""
    # pivot: one column per record key (grouping by the patient number alone and
    # joining the patients after took 40% more time at 200,000 patients: measured)
    cols: list[exp.Expression] = [col("pid", "p"), col("id", "p"), col("deceased", "p")]
    for key, name in keys.items():
        cols.append(exp.alias_(key_value(comp, key), name, copy=False))
    return (
        exp.select(*cols, copy=False)
        .from_(exp.alias_(exp.to_table(PATIENTS), "p", table=True, copy=False), copy=False)
        .join(
            picked_rows(comp, keys, read).subquery("v", copy=False),
            on=exp.EQ(this=col("pid", "v"), expression=col("pid", "p")),
            join_type="left",
            copy=False,
        )
        .group_by(col("pid", "p"), col("id", "p"), col("deceased", "p"), copy=False)
    )


def stored_rows(comp: CompilerBase, stored: dict[str, str], table: str) -> exp.Select:
    """One row per patient read from the per-patient table ingest wrote (values.py):
    `stored` names each record key's column there; each is renamed to the query's own
    name (`f1`...), a projection the engine does without copying."""
    cols: list[exp.Expression] = [col("pid"), col("id"), col("deceased"), col("world")]
    for key, name in comp.columns.items():
        cols.append(exp.alias_(col(stored[key]), name, copy=False))
    return exp.select(*cols, copy=False).from_(table, copy=False)
