"""Conflicting candidate values in SQL, weighed as the Python evaluator weighs them.

Where a patient's record has conflicting candidates for facts (data/reader.py: two
values at one instant, say), the Python evaluator runs the criteria once per
combination of candidates (a "world": backends/python.py `_with_candidates`) and keeps,
per criterion, the status every world gives, else unknown; the verdict then follows
from those statuses. `critlang ingest` writes each world's candidates as `fact#world`
rows, `seq` the world's number (data/ingest_worlds.py). Here:

- `with_worlds`: the patient rows (one per patient, from the pivot) joined to the
  per-(patient, world) pivot of those rows; in a world, a conflicting fact's record keys
  (its value, limits, `k x ULN`, interval bounds, conflict mark) are its candidate's.
  A patient without worlds keeps one row, `world` NULL;
- `combine`: the per-row statuses of a patient's worlds combined per criterion (the
  same code in every world, else unknown), and the verdict decided from them as
  compiler.verdict_tree decides it for one row.

A list condition whose body reads a conflicting fact of the patient row keeps the
conflict mark (the criterion unknown in SQL, where Python may decide): the items are
counted once per patient, not per world.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from ...data.records import CONFLICT, NOLIMITS, WORLD
from ...typesys import ListT
from .base import CompilerBase
from .calendar import num
from .pivot import FACTS, key_value
from .sqltree import case, code, col, is_null, lit, null, star

ROWS = "critlang_rows"  # the per-(patient, world) statuses, named once (a CTE)
WORLD_KEY = "#world"  # the per-patient table's `world` column in its layout (values.py)
# what that column holds (compared as text by Layout.covers: a cohort written before it
# existed has none, and is screened from the facts table)
WORLD_DEFINITION = f"{FACTS} rows fact#world, seq the world; combined as python._with_candidates"


def scalar_fact(comp: CompilerBase, key: str) -> str | None:
    """The scalar fact a record key belongs to (its value, limits, products, interval
    bounds, conflict mark), or None (an anchor, a list's item count)."""
    fact = key.split("#")[0]
    t = comp.c.record_types.get(fact)
    if key.startswith("@") or t is None or isinstance(t, ListT):
        return None
    return fact


def world_keys(comp: CompilerBase) -> dict[str, list[str]]:
    """Scalar fact -> the record keys of it the query reads."""
    out: dict[str, list[str]] = {}
    for key in comp.columns:
        fact = scalar_fact(comp, key)
        if fact is not None:
            out.setdefault(fact, []).append(key)
    return out


def read_by_lists(comp: CompilerBase) -> set[str]:
    """Scalar facts a list condition's body reads from the patient row (counted once per
    patient: their conflict stays a mark, unknown)."""
    names = {name: key for key, name in comp.columns.items()}
    out = set()
    for q in comp.quantifiers:
        for c in q.body.find_all(exp.Column):
            key = names.get(c.name) if c.table == "w" else None
            fact = scalar_fact(comp, key) if key is not None else None
            if fact is not None:
                out.add(fact)
    return out


def world_rows(comp: CompilerBase, keys: dict[str, list[str]]) -> exp.Select:
    """The `fact#world` rows of the facts the query reads, with the suffix taken off the
    fact name (so that pivot.key_value reads them as it reads picked rows) and `seq`
    as `world`."""
    names: list[str] = []
    for fact, fact_keys in sorted(keys.items()):
        names += [fact, fact + NOLIMITS]
        names += [k for k in fact_keys if k not in names and "*" in k]  # `k x ULN` rows
    strip = exp.Case(
        ifs=[
            exp.If(this=exp.EQ(this=col("fact"), expression=lit(n + WORLD)), true=lit(n))
            for n in names
        ]
    )
    return (
        exp.select(
            "pid",
            exp.alias_(col("seq"), "world", copy=False),
            exp.alias_(strip, "fact", copy=False),
            "value",
            "text",
            "low",
            "high",
            "value_low",
            "value_high",
            "low_open",
            "high_open",
            "ongoing",
            copy=False,
        )
        .from_(FACTS, copy=False)
        .where(
            exp.and_(
                is_null(col("problem")),
                exp.In(this=col("fact"), expressions=[lit(n + WORLD) for n in names]),
                copy=False,
            ),
            copy=False,
        )
    )


def with_worlds(comp: CompilerBase, base: exp.Expression) -> exp.Select:
    """The patient rows `base` (a table or subquery aliased `b`: pid, id, deceased, one
    column per record key as comp.columns names it) with a `world` column: one row per world for a
    patient with conflicting candidates, the candidate's keys in place of the fact's;
    one row (`world` NULL) for every other patient."""
    keys = world_keys(comp)
    kept = read_by_lists(comp)
    if not keys:
        return exp.select(star("b"), exp.alias_(null(), "world", copy=False), copy=False).from_(
            base, copy=False
        )
    facts = sorted(keys)
    pivot: list[exp.Expression] = [col("pid", "v"), col("world", "v")]
    for i, fact in enumerate(facts, 1):
        here = exp.EQ(this=col("fact", "v"), expression=lit(fact))
        pivot.append(exp.alias_(exp.Max(this=case(here, num(1), null())), f"h{i}", copy=False))
        for key in keys[fact]:
            pivot.append(exp.alias_(key_value(comp, key), comp.columns[key], copy=False))
    per_world = (
        exp.select(*pivot, copy=False)
        .from_(world_rows(comp, keys).subquery("v", copy=False), copy=False)
        .group_by(col("pid", "v"), col("world", "v"), copy=False)
    )
    out: list[exp.Expression] = [col("pid", "b"), col("id", "b"), col("deceased", "b")]
    out.append(exp.alias_(col("world", "x"), "world", copy=False))
    which = {fact: f"h{i}" for i, fact in enumerate(facts, 1)}
    for key, name in comp.columns.items():
        fact = scalar_fact(comp, key)
        if fact is None or (fact in kept and key == fact + CONFLICT):
            out.append(col(name, "b"))
            continue
        in_world = exp.EQ(this=col(which[fact], "x"), expression=num(1))
        out.append(exp.alias_(case(in_world, col(name, "x"), col(name, "b")), name, copy=False))
    return (
        exp.select(*out, copy=False)
        .from_(base, copy=False)
        .join(
            per_world.subquery("x", copy=False),
            on=exp.EQ(this=col("pid", "x"), expression=col("pid", "b")),
            join_type="left",
            copy=False,
        )
    )


def combine(
    rows: exp.Select,
    statuses: int,
    arm_statuses: dict[str, list[str]],
    verdict: Callable[
        [
            list[exp.Expression],
            dict[str, list[exp.Expression]],
            exp.Expression,
            Callable[[exp.Expression], exp.Expression],
        ],
        exp.Expression,
    ],
    before: dict[str, exp.Select],
) -> exp.Expression:
    """The per-patient result from `rows` (pid, id, world, verdict, c1..cN, dead, and
    where the verdict depends on an unknown arm `arm` and per-arm status columns
    `arm_statuses`): rows without a world as they are; a patient's world rows combined
    per criterion (one code in every world, else unknown) with the verdict decided
    again from the combined statuses by `verdict(statuses, per-arm statuses, arm)`.
    `before`: the CTEs `rows` reads (the facts form's pivot), named first."""
    named = [
        exp.CTE(this=q, alias=exp.TableAlias(this=exp.to_identifier(name)))
        for name, q in [*before.items(), (ROWS, rows)]
    ]
    out = [f"c{i}" for i in range(1, statuses + 1)]
    plain = (
        exp.select("pid", "id", "verdict", *out, "dead", copy=False)
        .from_(ROWS, copy=False)
        .where(is_null(col("world")), copy=False)
    )

    def agree(name: str) -> exp.Expression:  # python.combine: the one status, else unknown
        low, high = exp.Min(this=col(name)), exp.Max(this=col(name))
        return exp.alias_(
            case(exp.EQ(this=low, expression=high), low.copy(), code("unknown")), name, copy=False
        )

    extra = sorted({c for cols in arm_statuses.values() for c in cols} - set(out))
    aggregates: list[exp.Expression] = [
        col("pid"),
        exp.alias_(exp.Min(this=col("id")), "id", copy=False),
        *[agree(c) for c in out + extra],
        exp.alias_(exp.Max(this=col("dead")), "dead", copy=False),
    ]
    if arm_statuses:
        arm = exp.Min(this=col("arm"))
        one = exp.EQ(this=arm, expression=exp.Max(this=col("arm")))
        aggregates.append(exp.alias_(case(one, arm.copy(), null()), "arm", copy=False))
    grouped = (
        exp.select(*aggregates, copy=False)
        .from_(ROWS, copy=False)
        .where(exp.Not(this=is_null(col("world"))), copy=False)
        .group_by(col("pid"), copy=False)
    )
    # the verdict's parts (per-arm verdicts, then the verdict) named in stages over the
    # combined statuses, as `let` names them for one row: each written once
    parts: list[tuple[str, exp.Expression, int]] = []

    def name(e: exp.Expression) -> exp.Expression:
        reads = [st for n, _, st in parts if any(c.name == n for c in e.find_all(exp.Column))]
        parts.append((f"v{len(parts) + 1}", e, 1 + max(reads, default=0)))
        return col(parts[-1][0])

    decided = verdict(
        [col(c) for c in out],
        {a: [col(c) for c in cols] for a, cols in arm_statuses.items()},
        col("arm"),
        name,
    )
    staged: exp.Select = grouped
    for level in range(1, max(st for _, _, st in parts) + 1):
        named_parts = [exp.alias_(e, n, copy=False) for n, e, st in parts if st == level]
        staged = exp.select(star("g"), *named_parts, copy=False).from_(
            staged.subquery("g", copy=False), copy=False
        )
    dead = col("dead")
    final = exp.Case(
        ifs=[
            exp.If(this=exp.EQ(this=dead, expression=num(1)), true=code("ineligible")),
            exp.If(
                this=exp.and_(
                    exp.EQ(this=dead.copy(), expression=num(2)),
                    exp.EQ(this=exp.paren(decided.copy()), expression=code("eligible")),
                    copy=False,
                ),
                true=code("undetermined"),
            ),
        ],
        default=decided,
    )
    weighed = exp.select(
        "pid", "id", exp.alias_(final, "verdict", copy=False), *out, "dead", copy=False
    ).from_(staged.subquery("g", copy=False), copy=False)
    union = exp.union(plain, weighed, distinct=False, copy=False)
    union.set("with_", exp.With(expressions=named))
    return union


def first_world(rows: exp.Select) -> exp.Select:
    """`rows` (the per-patient table's rows) with one row per patient: the first world of
    a patient with worlds (what a list condition's body reads of the patient row is the
    same in every world, but for facts whose conflict mark stays: read_by_lists)."""
    return rows.copy().where(
        exp.or_(is_null(col("world")), exp.EQ(this=col("world"), expression=num(0)), copy=False),
        copy=False,
    )
