"""A checked protocol as one SQL query over the facts table, built as a sqlglot tree.

The same tree is written out in every dialect sqlglot knows (DuckDB, PostgreSQL, Spark
SQL). Nothing from a criteria file is pasted as text: fact and field names become
generated column names (`f3`, `i1_2`), and names, categories and numbers reach the query
only as sqlglot literals (quoted by the generator).

Semantics are those of the compiled Python evaluator (backends/python.py), construct by
construct, and the differential tests hold them to it on every engine:
- three values: unknown is SQL NULL; AND, OR and NOT in SQL are Kleene's. Every
  comparison whose Python code says `None if a is None or b is None else ...` is guarded
  the same way (a CASE), so a NULL operand never lets a Kleene AND turn into FALSE;
- each fact's value is the one the record reader picks: the newest usable value inside
  the fact's look-back window (ties: the first recorded), or the newest dated one, or
  the last one when none is dated; values are already in the fact's declared unit
  (converted once, at ingest), so no unit work happens in the query;
- windows are day-number arithmetic (calendar months through backends/sql/calendar);
- lists become per-patient counts (items true, unknown, false) joined to the patient;
- a conditional criterion is "not applicable" when its `applies if` is false; when the
  recorded arm is unknown and some criterion depends on it, the verdict is decided per
  arm as evaluate.Evaluator does (the same verdict under every arm, else undetermined).

What the SQL back end cannot express is refused with SqlUnsupported, naming the
construct and its line: never a silently different answer.

Modules, by topic: sqltree (node builders), base (state, names, ), expressions
(values, conditions), windows (date windows), lists (list conditions and their
per-patient counts), pivot (facts to one row per patient); this module puts the
criteria, the verdict and the attrition table together.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from ...data.records import CONFLICT, MAYBE_DECEASED
from ...typesys import BoolT, DateT, EnumT, ErrorT, IntT, ListT, NumberT, QuantT, ScaleT
from ..python import Compiled
from . import intervals as iv
from .calendar import num
from .lists import Lists, join_list_counts
from .pivot import FACTS, PATIENTS, pivot_rows, stored_rows
from .sqltree import (
    STATUSES,
    VERDICTS,
    SqlUnsupported,
    any_of,
    case,
    code,
    col,
    is_,
    is_null,
    lit,
    paren,
    star,
    status_code,
    words,
)
from .values import VALUES, Layout
from .worlds import combine, first_world, read_by_lists, with_worlds

__all__ = ["FACTS", "PATIENTS", "SqlProtocol", "SqlUnsupported", "compile_sql"]

STATUS_TEXT = {True: "met", False: "not met", None: "unknown"}
# the value kinds the facts table and this compiler express (others are refused)
KNOWN_TYPES = (QuantT, NumberT, IntT, EnumT, ScaleT, BoolT, DateT, ListT, ErrorT)
NOT_APPLICABLE = "not applicable"


@dataclass
class SqlProtocol:
    """The compiled query and what it needs: per patient `pid`, `verdict`, one status
    column per criterion in protocol order, named by its id ("I1"; `c1`... inside the
    query), as codes (`codes`: what engines store and count) or as the words `screen`
    prints (`select`)."""

    compiled: Compiled
    as_of: dt.date
    # the per-patient rows with statuses and verdicts as codes (sqltree.STATUSES,
    # VERDICTS); `select` is `as_words` over it
    codes: exp.Select
    criteria: list[str]  # criterion ids, in order; internal column i is f"c{i + 1}"
    # facts and list fields ("list.field") read where an interval is not reasoned over
    # (arithmetic, a formula, `first available`...): such an interval leaves unknown what
    # reads it, where Python may decide (backends/sql/intervals.py)
    plain_intervals: frozenset[str] = frozenset()
    # what the query reads: "facts" (the facts table: the pick and the pivot) or
    # "values" (the per-patient table ingest writes, values.py)
    form: str = "facts"
    # the facts form's pivot, named once (a CTE) at the top of the query
    wide: exp.Select | None = None
    # facts whose conflicting candidates a list condition reads from the patient row:
    # not weighed world by world (worlds.read_by_lists), so unknown where Python may decide
    unweighed: frozenset[str] = frozenset()

    @property
    def select(self) -> exp.Select:
        """The per-patient statuses and verdict as words (built when asked: an engine
        stores and counts `codes`)."""
        codes = self.codes.copy()
        named = codes.args.get("with_")
        codes.set("with_", None)  # the CTEs go to the top of the words query
        select = as_words(codes.subquery("r", copy=False), self.criteria)
        if named is not None:
            select.set("with_", named)
        return select

    def sql(self, dialect: str, pretty: bool = False) -> str:
        return self.select.sql(dialect=dialect, pretty=pretty, copy=False)

    def attrition(self, results: str | None = None) -> exp.Select:
        """One row: per criterion met / not met / unknown / not applicable counts, the
        patients cleared so far and not ruled out so far, and the verdict counts; over
        the table `results` holding this query's `codes` rows (else over the query,
        named once as a CTE).

        Two passes over the rows, joined: the counts of statuses, verdicts and deaths;
        and how far each patient gets (the first criterion that rules them out: cleared,
        not passed; open, decided against; 0 for the dead, else past the last one)
        grouped into at most (criteria + 2)^2 groups, whose sums give "passed so far"
        and "not ruled out" at each criterion. Counting `k > i` for every criterion over
        every row instead took a third more time (measured: docs/scale.md)."""
        crits = self.compiled.criteria
        one = exp.Literal.number(1)

        def count(cond: exp.Expression) -> exp.Expression:
            # COUNT of a CASE over integers: cheaper than SUM(CASE ... ELSE 0) (measured)
            return exp.Count(this=exp.Case(ifs=[exp.If(this=cond, true=one.copy())]))

        def named(e: exp.Expression, alias: str) -> exp.Expression:
            # a criterion id: a quoted identifier, never pasted text
            return exp.alias_(e, exp.to_identifier(alias, quoted=True), copy=False)

        def number(i: int) -> exp.Expression:
            return exp.Literal.number(i)

        # `dead`: 1 dead, 2 perhaps dead (not past the "(deceased)" row, not ruled out)
        dead = exp.EQ(this=col("dead"), expression=number(1))
        dead_or_maybe = exp.GTE(this=col("dead"), expression=number(1))
        stop_cleared: list[exp.If] = [exp.If(this=dead_or_maybe, true=number(0))]
        stop_open: list[exp.If] = [exp.If(this=dead.copy(), true=number(0))]
        counts: list[exp.Expression] = []
        reached: list[exp.Expression] = []
        order: list[tuple[str, str]] = []  # (part, column) in the documented order
        n = col("n")
        for i, crit in enumerate(crits, 1):
            c = col(f"c{i}")
            for j, word in enumerate(STATUSES):
                alias = attrition_column(crit.id, j)
                counts.append(named(count(exp.EQ(this=c.copy(), expression=code(word))), alias))
                order.append(("s", alias))
            good = "met" if crit.section == "inclusion" else "not met"
            clear = exp.In(this=c.copy(), expressions=[code(good), code(NOT_APPLICABLE)])
            stop_cleared.append(exp.If(this=exp.Not(this=paren(clear)), true=number(i)))
            bad = exp.Not(
                this=exp.In(
                    this=c.copy(),
                    expressions=[code(good), code(NOT_APPLICABLE), code("unknown")],
                )
            )
            stop_open.append(exp.If(this=bad, true=number(i)))
            for j, k in ((4, "k_cleared"), (5, "k_open")):
                alias = attrition_column(crit.id, j)
                past = exp.GT(this=col(k), expression=number(i))
                reached.append(
                    named(exp.Sum(this=case(past, n.copy(), number(0))), alias),
                )
                order.append(("h", alias))
        for v in VERDICTS:
            counts.append(named(count(exp.EQ(this=col("verdict"), expression=code(v))), f"v_{v}"))
            order.append(("s", f"v_{v}"))
        for alias, which in (("deceased", 1), ("maybe_deceased", 2)):
            counts.append(named(count(exp.EQ(this=col("dead"), expression=number(which))), alias))
            order.append(("s", alias))
        counts.append(named(exp.Count(this=exp.Star()), "patients"))
        order.append(("s", "patients"))
        table = results or "critlang_r"

        def rows() -> exp.Expression:
            return exp.alias_(exp.to_table(table), "r0", table=True, copy=False)

        beyond = number(len(crits) + 1)
        reach = exp.select(
            exp.alias_(exp.Case(ifs=stop_cleared, default=beyond), "k_cleared", copy=False),
            exp.alias_(exp.Case(ifs=stop_open, default=beyond.copy()), "k_open", copy=False),
            copy=False,
        ).from_(rows(), copy=False)
        groups = (
            exp.select(
                col("k_cleared"),
                col("k_open"),
                exp.alias_(exp.Count(this=exp.Star()), "n", copy=False),
                copy=False,
            )
            .from_(reach.subquery("r", copy=False), copy=False)
            .group_by(col("k_cleared"), col("k_open"), copy=False)
        )
        statuses = exp.select(*counts, copy=False).from_(rows(), copy=False)
        passed = exp.select(*reached, copy=False).from_(
            groups.subquery("g", copy=False), copy=False
        )
        out = (
            exp.select(
                *[
                    exp.column(exp.to_identifier(alias, quoted=True), table=part)
                    for part, alias in order
                ],
                copy=False,
            )
            .from_(statuses.subquery("s", copy=False), copy=False)
            .join(passed.subquery("h", copy=False), join_type="cross", copy=False)
        )
        if results is None:
            out = out.with_(table, as_=self.codes.copy(), copy=False)
        return out


class _Compiler(Lists):
    """The whole compiler: expressions, windows and lists (by inheritance), and here
    each criterion's status."""

    def status(self, crit: Any) -> exp.Expression:
        """The criterion's status as a boolean (NULL unknown) and, when it has an
        `applies if`, the word; returns the status word expression."""
        self.plain_reads = set()
        word = self._status(crit)
        self.all_plain |= self.plain_reads
        # a fact with conflicting candidate values (data/ingest.py CONFLICT): Python decides
        # only where every candidate decides alike; SQL says unknown, never another answer
        types = self.c.record_types
        conflicts = [
            exp.Not(this=is_null(self.column(fact + CONFLICT)))
            for fact in sorted(crit.facts)
            if not fact.startswith("@") and fact in types and not isinstance(types[fact], ListT)
        ]
        # a fact read as a plain value (arithmetic, a formula, `first available`...) that
        # is an interval: Python reasons over the Range there, SQL says unknown
        conflicts += [
            exp.Not(this=is_null(self.column(fact + iv.IS_RANGE)))
            for fact in sorted(self.plain_reads)
        ]
        if not conflicts:
            return word
        return self.let(case(any_of(conflicts), code("unknown"), word))

    def _status(self, crit: Any) -> exp.Expression:
        c = crit.node
        rule = c.rule
        assert rule is not None
        if c.applies is None:
            return self.let(status_code(self.let(self.cond(rule))))
        a = self.let(self.cond(c.applies))
        r = self.let(self.cond(rule))
        harmless = crit.section == "inclusion"
        # applies unknown: still decided when the rule passes either way (python.py)
        decided = exp.or_(is_(a, True), is_(r, harmless), copy=False)
        return self.let(
            exp.Case(
                ifs=[
                    exp.If(this=is_(a, False), true=code(NOT_APPLICABLE)),
                    exp.If(this=decided, true=status_code(r)),
                ],
                default=code("unknown"),
            )
        )


# ---------------------------------------------------------------------- the query


def compile_sql(compiled: Compiled, as_of: dt.date, stored: Layout | None = None) -> SqlProtocol:
    """The protocol as one query over `critlang_patients` and `critlang_facts`; with
    `stored` (the layout of the per-patient tables a cohort file holds, values.py) over
    those tables instead, where they hold every value the query reads as it would pick
    it (`SqlProtocol.form` says which).

    Raises SqlUnsupported (with the criteria line) for what SQL here cannot express.
    """
    return compile_parts(compiled, as_of, stored)[1]


def compile_parts(
    compiled: Compiled, as_of: dt.date, stored: Layout | None = None
) -> tuple[_Compiler, SqlProtocol]:
    """compile_sql, with the compiler's state (its record keys and list fields)."""
    comp = _Compiler(compiled, as_of)
    if stored is not None:  # what the cohort's tables hold (values.Layout.measured)
        comp.points, comp.no_range = stored.points, stored.no_range
    for name, t in compiled.checked.record_types.items():
        if not isinstance(t, KNOWN_TYPES):
            info = compiled.checked.facts.get(name)
            raise SqlUnsupported(
                f"{compiled.checked.source.path}:{info.node.span.line if info else 0}: the SQL "
                f"back end cannot express the fact {name!r} ({t.describe()}); screen this "
                "protocol with the Python engine (`--engine python`)"
            )
    crits = compiled.criteria
    # every status and verdict is named (a column of a stage): the verdict and the
    # per-arm verdicts read statuses, the attrition the verdict; written out inline,
    # each status appeared in the query once per use (6,800 nodes in NCT05610826's
    # verdict, the query's largest cost: measured)
    statuses = [comp.name_once(comp.status(crit)) for crit in crits]
    h = compiled.checked.protocol.header
    arms = [a.name for a in h.arms] if h is not None else []
    arm_dependent = any("arm" in c.facts for c in crits)
    arm_statuses: dict[str, list[exp.Expression]] = {}
    if arms and arm_dependent:
        for arm in arms:
            comp.arm = arm
            # a criterion that does not read the arm has the same status under each
            arm_statuses[arm] = [
                comp.name_once(comp.status(crit)) if "arm" in crit.facts else status
                for crit, status in zip(crits, statuses, strict=True)
            ]
        comp.arm = None
    arm_col = comp.column("arm") if arm_statuses else None
    verdict = verdict_tree(crits, statuses, arm_statuses, arm_col, comp.name_once)
    use = stored is not None and stored.covers(comp)
    if stored is not None and not use and (stored.points or stored.no_range):
        # read from the facts table: what was measured in the per-patient tables says
        # nothing of it
        return compile_parts(
            compiled, as_of, dataclasses.replace(stored, points=frozenset(), no_range=frozenset())
        )
    wide: exp.Select | None = None
    if stored is not None and use:
        # the per-patient tables: read in place, no CTE (materialising it copied every
        # column of every patient once more: measured); a patient with conflicting
        # candidates has a row per world there (worlds.with_worlds, written at ingest)
        rows = stored_rows(comp, stored.column_names(), VALUES)
        stage = exp.select(star("w0"), copy=False).from_(
            rows.copy().subquery("w0", copy=False), copy=False
        )
        stage = join_list_counts(comp, stage, stored.list_tables(), first_world(rows))
    else:
        wide = pivot_rows(comp, comp.columns)
        base = exp.alias_(exp.to_table("critlang_wide"), "b", table=True, copy=False)
        stage = exp.select(star("w0"), copy=False).from_(
            with_worlds(comp, base).subquery("w0", copy=False), copy=False
        )
        stage = join_list_counts(comp, stage)
    # each stage adds the named values whose inputs the stages before it hold
    last = max((st for _, _, st in comp.lets.values()), default=0)
    for level in range(1, last + 1):
        named = [
            exp.alias_(e, name, copy=False) for name, e, st in comp.lets.values() if st == level
        ]
        stage = exp.select(star("w"), *named, copy=False).from_(
            stage.subquery("w", copy=False), copy=False
        )
    # a patient dead by the screening date is ineligible whatever the criteria say; one
    # that may have died (a partial date of death) is not eligible yet (python.deceased_verdict)
    maybe = exp.Like(this=col("deceased", "w"), expression=lit(MAYBE_DECEASED + "%"))
    dead = exp.and_(exp.Not(this=is_null(col("deceased", "w"))), exp.Not(this=maybe.copy()))
    verdict = exp.Case(
        ifs=[
            exp.If(this=dead.copy(), true=code("ineligible")),
            exp.If(
                this=exp.and_(
                    maybe.copy(), exp.EQ(this=paren(verdict), expression=code("eligible"))
                ),
                true=code("undetermined"),
            ),
        ],
        default=verdict.copy(),
    )
    # per arm, the statuses of the criteria that read the arm (for a patient's worlds,
    # combined before the verdict is decided again: worlds.combine)
    per_arm: dict[str, list[str]] = {}
    extra: list[exp.Expression] = []
    for k, (arm, arm_list) in enumerate(arm_statuses.items(), 1):
        per_arm[arm] = []
        for i, (s_arm, s_all) in enumerate(zip(arm_list, statuses, strict=True), 1):
            if s_arm is s_all:
                per_arm[arm].append(f"c{i}")
            else:
                per_arm[arm].append(f"a{k}_{i}")
                extra.append(exp.alias_(s_arm.copy(), f"a{k}_{i}", copy=False))
    if arm_col is not None:
        extra.append(exp.alias_(arm_col.copy(), "arm", copy=False))
    rows = exp.select(
        col("pid", "w"),
        exp.alias_(col("id", "w"), "id", copy=False),
        exp.alias_(col("world", "w"), "world", copy=False),
        exp.alias_(verdict, "verdict", copy=False),
        *[exp.alias_(s, f"c{i}", copy=False) for i, s in enumerate(statuses, 1)],
        # 1 deceased, 2 perhaps deceased (not past the "(deceased)" row, not ruled out)
        exp.alias_(
            exp.Case(
                ifs=[exp.If(this=dead, true=num(1)), exp.If(this=maybe, true=num(2))],
                default=num(0),
            ),
            "dead",
            copy=False,
        ),
        *extra,
        copy=False,
    ).from_(stage.subquery("w", copy=False), copy=False)
    codes = combine(
        rows,
        len(statuses),
        per_arm,
        lambda st, by_arm, arm, name: verdict_tree(crits, st, by_arm, arm, name),
        # the pivot, named once at the top of the query
        {} if wide is None else {"critlang_wide": wide},
    )
    query = SqlProtocol(
        compiled,
        as_of,
        codes,
        [c.id for c in crits],
        frozenset(comp.all_plain),
        "values" if use else "facts",
        wide,
        frozenset(read_by_lists(comp)),
    )
    return comp, query


ATTRITION_WORDS = ("met", "not met", "unknown", "not applicable", "passed so far", "not ruled out")


def attrition_column(criterion: str, j: int) -> str:
    """The attrition query's column for a criterion's count j (ATTRITION_WORDS[j], the
    headings of `screen`'s attrition table): "E1 not met". Written as a quoted
    identifier built from the checked criterion id (grammar CRIT_ID: `[A-Z]+-?[0-9]+
    [a-z]?`, so never two ids that differ only in case), never pasted text."""
    return f"{criterion} {ATTRITION_WORDS[j]}"


def as_words(source: exp.Expression, criteria: list[str]) -> exp.Select:
    """The per-patient rows of `source` (a table or subquery of `codes` rows) with the
    verdict and statuses as the words `screen` prints, each status column named by its
    criterion id (a quoted identifier: "I1", "IN-3"; sqltest7 finding 8)."""
    return exp.select(
        col("pid"),
        col("id"),
        exp.alias_(words(col("verdict"), VERDICTS), "verdict", copy=False),
        *[
            exp.alias_(
                words(col(f"c{i}"), STATUSES), exp.to_identifier(cid, quoted=True), copy=False
            )
            for i, cid in enumerate(criteria, 1)
        ],
        col("dead"),
        copy=False,
    ).from_(source, copy=False)


def verdict_tree(
    crits: list[Any],
    statuses: list[exp.Expression],
    arm_statuses: dict[str, list[exp.Expression]],
    arm: exp.Expression | None,
    name: Callable[[exp.Expression], exp.Expression] = lambda e: e,
) -> exp.Expression:
    """The verdict from the statuses (codes), as evaluate.Evaluator decides it: with an
    unknown arm and criteria that read it, the verdict every arm gives (`arm_statuses`:
    per arm, every criterion's status), else undetermined. `name` names each part (the
    query's `let`)."""
    verdict = name(_verdict(crits, statuses))
    if not arm_statuses or arm is None:
        return verdict
    per_arm = [name(_verdict(crits, s)) for s in arm_statuses.values()]
    same = exp.and_(
        *[exp.EQ(this=per_arm[0].copy(), expression=v) for v in per_arm[1:]], copy=False
    )
    return name(
        exp.Case(
            ifs=[
                exp.If(this=exp.Not(this=is_null(arm)), true=verdict),
                exp.If(this=same, true=per_arm[0].copy()),
            ],
            default=code("undetermined"),
        )
    )


def _verdict(crits: list[Any], statuses: list[exp.Expression]) -> exp.Expression:
    bad = [
        exp.EQ(this=s.copy(), expression=code("not met" if c.section == "inclusion" else "met"))
        for c, s in zip(crits, statuses, strict=True)
    ]
    unknown = [exp.EQ(this=s.copy(), expression=code("unknown")) for s in statuses]
    return exp.Case(
        ifs=[
            exp.If(this=any_of(bad), true=code("ineligible")),
            exp.If(this=any_of(unknown), true=code("undetermined")),
        ],
        default=code("eligible"),
    )
