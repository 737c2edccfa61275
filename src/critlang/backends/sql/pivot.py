"""Facts to one row per patient: each fact's value picked as the record reader picks
it (the newest usable value inside the look-back window, ties to the first recorded;
without a window the newest dated one, else the last one), then pivoted into one
column per record key (`f1`...: a fact, an anchor, `fact#low`, an interval bound)."""

from __future__ import annotations

from fractions import Fraction

from sqlglot import exp

from ...checker import ENROLLMENT
from ...data.records import CONFLICT, window_start
from ...typesys import BoolT, DateT, EnumT, ListT, ScaleT
from ...units import parse_unit
from ..python import _range_limits
from ..python_normalise import limit_product
from . import intervals as iv
from .base import CompilerBase
from .calendar import num
from .sqltree import any_of, case, col, is_null, lit, null, paren, star

FACTS = "critlang_facts"
PATIENTS = "critlang_patients"


def pick_filter(comp: CompilerBase, fact: str) -> exp.Expression:
    """Which of a fact's rows may be picked: inside its look-back window, if it has one."""
    info = comp.c.facts.get(fact)
    look = info.lookback if info else None
    if look is None or look.quantity is None:
        return exp.true()
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


def picked_rows(comp: CompilerBase, keys: dict[str, str]) -> exp.Select:
    """The chosen facts row per patient and fact (`row_number()` over (pid, fact)) for
    the record keys `keys`."""
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
    filters = []
    for text, (window, facts) in sorted(by_window.items()):
        listed = exp.In(this=col("fact"), expressions=[lit(f) for f in sorted(facts)])
        always = text == exp.true().sql()
        filters.append(listed if always else paren(exp.and_(listed, window, copy=False)))
    ranked = (
        exp.select(
            "pid",
            "fact",
            "value",
            "text",
            "low",
            "high",
            *iv.COLUMNS,
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
        .where(
            exp.and_(
                is_null(col("problem")),
                is_null(col("item")),
                any_of(filters),
                copy=False,
            ),
            copy=False,
        )
    )
    return (
        exp.select("pid", "fact", "value", "text", "low", "high", *iv.COLUMNS, copy=False)
        .from_(ranked.subquery("ranked", copy=False), copy=False)
        .where(exp.EQ(this=col("rn"), expression=exp.Literal.number(1)), copy=False)
    )


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
    (a warehouse's) has no such rows: k times the limit, in floats."""
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
        exp.Mul(this=num(float(factor)), expression=limit),
    )
    return exp.Coalesce(this=own, expressions=[fallback])


def key_definition(comp: CompilerBase, key: str) -> str:
    """What a record key's column holds, as text: the rows it is picked from, the pick
    order and its aggregate. A per-patient table (values.py) column is used for a key
    only where its stored definition is this one."""
    # (trees built here and dropped: written without sqlglot's defensive copy)
    window = fact_filter(comp, key).sql(copy=False)
    return f"{window} | {_ORDER_TEXT} | {key_value(comp, key).sql(copy=False)}"


_ORDER_TEXT = ", ".join(o.sql() for o in PICK_ORDER)


def pivot_rows(comp: CompilerBase, keys: dict[str, str]) -> exp.Select:
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
            picked_rows(comp, keys).subquery("v", copy=False),
            on=exp.EQ(this=col("pid", "v"), expression=col("pid", "p")),
            join_type="left",
            copy=False,
        )
        .group_by(col("pid", "p"), col("id", "p"), col("deceased", "p"), copy=False)
    )


def wide_rows(comp: CompilerBase) -> tuple[exp.Select, exp.Select]:
    """One row per patient from the facts table: each used fact's picked value
    (`w.f1`...) and reference limits (the pivot), as the CTE `critlang_wide`, and the
    query stage reading it."""
    query = exp.select(star("w0"), copy=False).from_(
        exp.alias_(exp.to_table("critlang_wide"), "w0", table=True, copy=False), copy=False
    )
    return pivot_rows(comp, comp.columns), query


def stored_rows(comp: CompilerBase, stored: dict[str, str], table: str) -> exp.Select:
    """One row per patient read from the per-patient table ingest wrote (values.py):
    `stored` names each record key's column there; each is renamed to the query's own
    name (`f1`...), a projection the engine does without copying."""
    cols: list[exp.Expression] = [col("pid"), col("id"), col("deceased")]
    for key, name in comp.columns.items():
        cols.append(exp.alias_(col(stored[key]), name, copy=False))
    return exp.select(*cols, copy=False).from_(table, copy=False)
