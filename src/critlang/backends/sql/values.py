"""The per-patient tables: screening without touching the facts rows.

A FHIR cohort is read as of one date, so every value the compiled query would pick
from the facts table (the `row_number()` pick and the pivot, pivot.py) is known when the
cohort is written. `critlang ingest` therefore also writes

  critlang_values(pid, id, deceased, world, f1, ...) one row per patient (per world for a
                                                    patient with conflicting values:
                                                    worlds.py), one column per
                                                    record key the query reads (a fact's
                                                    picked value, `fact#low`, an interval
                                                    bound, a conflict mark, an anchor, a
                                                    list's item count)
  critlang_items_1, ...(pid, item, x1, ...)          per list condition's list, one row per
                                                    item, one column per field

built by the very pivot the facts form of the query runs (pivot.pivot_rows,
lists.item_rows: one SQL tree builder, executed once at ingest instead of at every
screening), and a layout in `critlang_meta` (key `values`): per record key its column
and its definition (the rows it is picked from, the pick order and its aggregate, as
SQL text). The query reads these tables instead of the facts table only where the
stored definition of every key and list it reads is the one it would compute itself
(`Layout.covers`); otherwise (another protocol, another date, an older cohort) it reads
the facts table, with the same answers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from . import intervals as iv
from .lists import item_rows
from .pivot import key_definition, pivot_rows

if TYPE_CHECKING:
    from ..python import Compiled
    from .base import CompilerBase

VALUES = "critlang_values"
ITEMS = "critlang_items_"
META_KEY = "values"
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}\Z")  # a generated column or table name


@dataclass(frozen=True)
class Layout:
    """Where the per-patient tables hold what: record key -> (column, definition) and
    list fact -> (table, definition of its item rows)."""

    columns: dict[str, tuple[str, str]]
    lists: dict[str, tuple[str, str]]
    # measured in the tables when they are written (`measured`): the facts and list
    # fields ("list.x3") whose interval columns hold only points (closed, low = high, not
    # ongoing: an interval there is its one value) and those with no interval row at all
    points: frozenset[str] = frozenset()
    no_range: frozenset[str] = frozenset()

    def covers(self, comp: CompilerBase) -> bool:
        """Whether these tables hold every record key and list the compiled query reads,
        each defined as this query would pick it (the same protocol facts, date and
        windows); definitions are compared as SQL text, so any difference falls back
        to the facts table."""
        from .worlds import WORLD_DEFINITION, WORLD_KEY

        if self.columns.get(WORLD_KEY) != ("world", WORLD_DEFINITION):
            return False  # written before conflicting candidates had a row per world
        for key in comp.columns:
            stored = self.columns.get(key)
            if stored is None or stored[1] != key_definition(comp, key):
                return False
        for name in {q.node.list_name for q in comp.quantifiers}:
            stored = self.lists.get(name)
            if stored is None or stored[1] != item_rows(comp, name).sql(copy=False):
                return False
        return True

    def column_names(self) -> dict[str, str]:
        return {key: c for key, (c, _) in self.columns.items()}

    def list_tables(self) -> dict[str, str]:
        return {name: t for name, (t, _) in self.lists.items()}

    def measured(self, con: Any) -> Layout:
        """This layout with `points` and `no_range` read from the cohort's per-patient
        tables (DuckDB connection `con`): one aggregate query per table over the
        interval columns only, run once when the tables are written (at 200,000
        patients it took 0.18 CPU s: too much for every screening). A cohort read from
        FHIR has intervals for few facts (an ongoing therapy's end, a censored lab
        value), a generated or warehouse cohort often none; where a fact has none, the
        query compares its plain value instead of reasoning over bounds (intervals.py),
        with the same answers."""
        points: set[str] = set()
        no_range: set[str] = set()
        names = self.column_names()
        ranged = {
            key[: -len(suffix)]
            for key in names
            for suffix in (iv.LO, iv.IS_RANGE)
            if key.endswith(suffix)
        }
        facts = {fact: tuple(names.get(fact + s) for s in iv.SUFFIXES) for fact in sorted(ranged)}
        tables: list[tuple[str, dict[str, tuple[str | None, ...]]]] = [(VALUES, facts)]
        for list_name, (table, _) in sorted(self.lists.items()):
            cols = _table_columns(con, table)
            fields = {
                f"{list_name}.{c[:-3]}": tuple(
                    c[:-3] + tail if c[:-3] + tail in cols else None
                    for tail in ("_lo", "_hi", "_lop", "_hop", "_ong", "_rng")
                )
                for c in sorted(cols)
                if c.endswith("_lo")
            }
            tables.append((table, fields))
        for table, what in tables:
            tests: list[tuple[str, str, exp.Expression]] = []
            for name, (lo, hi, lop, hop, ong, rng) in what.items():
                if lo and hi and lop and hop and ong:
                    tests.append((name, "point", _point_test(lo, hi, lop, hop, ong)))
                if rng:
                    tests.append((name, "plain", exp.Count(this=exp.column(rng))))
            if not tests:
                continue
            select = exp.select(
                *[exp.alias_(t, f"t{i}", copy=False) for i, (_, _, t) in enumerate(tests)],
                copy=False,
            ).from_(table, copy=False)
            row = con.execute(select.sql("duckdb")).fetchone()
            for (name, kind, _), value in zip(tests, row, strict=True):
                if kind == "point" and value is True:
                    points.add(name)
                elif kind == "plain" and value == 0:
                    no_range.add(name)
        return dataclasses.replace(self, points=frozenset(points), no_range=frozenset(no_range))

    def to_meta(self) -> str:
        data: dict[str, Any] = {"columns": self.columns, "lists": self.lists}
        if self.points or self.no_range:
            data |= {"points": sorted(self.points), "no_range": sorted(self.no_range)}
        return json.dumps(data, sort_keys=True)

    @staticmethod
    def from_meta(meta: dict[str, str]) -> Layout | None:
        """The layout a cohort file records, or None (absent, or not one this code wrote:
        a cohort file is input, so every name must be a generated one)."""
        try:
            data = json.loads(meta.get(META_KEY) or "null")
            columns = {str(k): (str(v[0]), str(v[1])) for k, v in data["columns"].items()}
            lists = {str(k): (str(v[0]), str(v[1])) for k, v in data["lists"].items()}
            # absent in a cohort written before they were measured: no plain reading
            points = frozenset(str(x) for x in data.get("points", []))
            no_range = frozenset(str(x) for x in data.get("no_range", []))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return None
        names = [c for c, _ in columns.values()] + [t for t, _ in lists.values()]
        if not all(_NAME.match(n) for n in names):
            return None
        return Layout(columns, lists, points, no_range)


def _table_columns(con: Any, table: str) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
    ).fetchall()
    return {r[0] for r in rows if _NAME.match(r[0])}


def _point_test(lo: str, hi: str, lop: str, hop: str, ong: str) -> exp.Expression:
    """TRUE when, in every row, the interval columns are one closed point (or unknown)
    and never ongoing: intervals.Iv(lo, hi, lop, hop, ong) then gives, in every
    comparison, what the plain value `lo` gives (an unknown value stays unknown)."""
    c = exp.column
    zero = exp.Literal.number(0)
    same = exp.NullSafeEQ(this=c(lo), expression=c(hi))
    not_ongoing = exp.EQ(this=exp.Coalesce(this=c(ong), expressions=[zero]), expression=zero)
    closed = exp.or_(
        exp.Is(this=c(lo), expression=exp.Null()),
        exp.and_(
            exp.EQ(this=c(lop), expression=zero.copy()),
            exp.EQ(this=c(hop), expression=zero.copy()),
            exp.EQ(this=c(ong), expression=zero.copy()),
            copy=False,
        ),
        copy=False,
    )
    row = exp.and_(same, not_ongoing, exp.paren(closed, copy=False), copy=False)
    every = exp.Anonymous(
        this="bool_and",
        expressions=[exp.Coalesce(this=exp.paren(row, copy=False), expressions=[exp.false()])],
    )
    # no rows: nothing to reason over either
    return exp.Coalesce(this=every, expressions=[exp.true()])


def build_statements(
    compiled: Compiled, as_of: dt.date, read: bool = False
) -> tuple[list[exp.Expression], Layout]:
    """The statements that write the per-patient tables from the facts table (any
    dialect), and their layout. `read`: the facts table is ingest's, holding no
    impossible value (pivot.picked_rows). Raises SqlUnsupported as compile_sql does."""
    from .compiler import compile_parts
    from .worlds import WORLD_DEFINITION, WORLD_KEY, with_worlds

    comp, _ = compile_parts(compiled, as_of)
    statements: list[exp.Expression] = []
    columns = {key: (name, key_definition(comp, key)) for key, name in comp.columns.items()}
    columns[WORLD_KEY] = ("world", WORLD_DEFINITION)
    # one row per patient, or per world for a patient with conflicting candidates
    rows = pivot_rows(comp, comp.columns, read).subquery("b", copy=False)
    statements.append(_create(VALUES, with_worlds(comp, rows)))
    lists: dict[str, tuple[str, str]] = {}
    for number, name in enumerate(dict.fromkeys(q.node.list_name for q in comp.quantifiers), 1):
        rows = item_rows(comp, name)
        lists[name] = (f"{ITEMS}{number}", rows.sql())
        statements.append(_create(f"{ITEMS}{number}", rows))
    return statements, Layout(columns, lists)


def _create(table: str, select: exp.Select) -> exp.Expression:
    return exp.Create(this=exp.to_table(table), kind="TABLE", expression=select)


def write_values(con: Any, compiled: Compiled, as_of: dt.date) -> Layout:
    """Write the per-patient tables into a DuckDB cohort (connection `con`, holding the
    facts, patients and meta tables) and record their layout in critlang_meta."""
    statements, layout = build_statements(compiled, as_of, read=True)
    for s in statements:
        con.execute(f"DROP TABLE IF EXISTS {s.this.name}")  # a generated name
        con.execute(s.sql("duckdb"))
    layout = layout.measured(con)
    con.execute("DELETE FROM critlang_meta WHERE key = ?", [META_KEY])
    con.execute("INSERT INTO critlang_meta VALUES (?, ?)", [META_KEY, layout.to_meta()])
    return layout
