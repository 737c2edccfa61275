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
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from sqlglot import exp

from ... import nodes as n
from ...checker import ENROLLMENT, Ref
from ...data.records import CONFLICT, MAYBE_DECEASED, window_start
from ...typesys import BoolT, DateT, EnumT, ErrorT, IntT, ListT, NumberT, QuantT, ScaleT, Type
from ...units import TIME, Unit, conversion_factor, parse_unit
from ..python import Compiled, _range_limits
from . import calendar as cal
from . import intervals as iv
from .calendar import const_of, num

FACTS = "critlang_facts"
PATIENTS = "critlang_patients"

STATUS_TEXT = {True: "met", False: "not met", None: "unknown"}
# the value kinds the facts table and this compiler express (others are refused)
KNOWN_TYPES = (QuantT, NumberT, IntT, EnumT, ScaleT, BoolT, DateT, ListT, ErrorT)
NOT_APPLICABLE = "not applicable"


class SqlUnsupported(ValueError):
    """A protocol construct the SQL back end does not express (message names it)."""


def _lit(text: str) -> exp.Expression:
    return exp.Literal.string(text)


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=False)


def _null() -> exp.Expression:
    return exp.Null()


def _p(e: exp.Expression) -> exp.Expression:
    return exp.paren(e, copy=False)


def _case(cond: exp.Expression, then: exp.Expression, default: exp.Expression) -> exp.Expression:
    return exp.Case(ifs=[exp.If(this=cond, true=then)], default=default)


def _is_null(e: exp.Expression) -> exp.Expression:
    return exp.Is(this=_p(e.copy()), expression=exp.Null())


def _is(e: exp.Expression, value: bool) -> exp.Expression:
    return exp.Is(this=_p(e.copy()), expression=exp.Boolean(this=value))


def _guard(test: exp.Expression, *operands: exp.Expression) -> exp.Expression:
    """NULL when any non-constant operand is NULL, else `test` (Python's `None if ...`)."""
    unknowns = [_is_null(o) for o in operands if const_of(o) is None and not _is_literal(o)]
    if not unknowns:
        return test
    return _case(exp.or_(*unknowns, copy=False), _null(), test)


def _is_literal(e: exp.Expression) -> bool:
    return isinstance(e, (exp.Literal, exp.Boolean))


def _or(items: list[exp.Expression]) -> exp.Expression:
    return exp.or_(*items, copy=False) if items else exp.false()


@dataclass
class _Quantifier:
    """One list condition, counted per patient in its own subquery."""

    alias: str
    node: n.Quantified
    body: exp.Expression  # over the item row `i` and the patient row `w`


@dataclass
class SqlProtocol:
    """The compiled query and what it needs: per patient `pid`, `verdict`, one status
    column per criterion (`c1`...) in protocol order, as the words `screen` prints."""

    compiled: Compiled
    as_of: dt.date
    select: exp.Select  # the per-patient statuses and verdict
    criteria: list[str]  # criterion ids, in order; column i is f"c{i + 1}"
    # facts and list fields ("list.field") read where an interval is not reasoned over
    # (arithmetic, a formula, `first available`...): such an interval leaves unknown what
    # reads it, where Python may decide (backends/sql/intervals.py)
    plain_intervals: frozenset[str] = frozenset()

    def sql(self, dialect: str, pretty: bool = False) -> str:
        return self.select.sql(dialect=dialect, pretty=pretty)

    def attrition(self, results: str | None = None) -> exp.Select:
        """One row: per criterion met / not met / unknown / not applicable counts, the
        patients cleared so far and not ruled out so far, and the verdict counts; over
        the table `results` holding this query's rows (else over the query itself)."""
        crits = self.compiled.criteria
        cols: list[exp.Expression] = []

        def count(cond: exp.Expression, alias: str) -> None:
            cols.append(exp.alias_(exp.Sum(this=_case(cond, num(1), num(0))), alias))

        alive = exp.NEQ(this=_col("dead"), expression=num(1))
        cleared: list[exp.Expression] = [alive]
        open_: list[exp.Expression] = [alive.copy()]
        for i, crit in enumerate(crits, 1):
            c = _col(f"c{i}")
            for j, word in enumerate(("met", "not met", "unknown", NOT_APPLICABLE)):
                count(exp.EQ(this=c, expression=_lit(word)), f"a{i}_{j}")
            good = "met" if crit.section == "inclusion" else "not met"
            clear = exp.In(this=c, expressions=[_lit(good), _lit(NOT_APPLICABLE)])
            cleared.append(clear)
            open_.append(exp.or_(clear.copy(), exp.EQ(this=c, expression=_lit("unknown"))))
            count(exp.and_(*[x.copy() for x in cleared], copy=False), f"a{i}_4")
            count(exp.and_(*[x.copy() for x in open_], copy=False), f"a{i}_5")
        for v in ("eligible", "ineligible", "undetermined"):
            count(exp.EQ(this=_col("verdict"), expression=_lit(v)), f"v_{v}")
        count(exp.EQ(this=_col("dead"), expression=num(1)), "deceased")
        cols.append(exp.alias_(exp.Count(this=exp.Star()), "patients"))
        source = (
            exp.alias_(exp.to_table(results), "r", table=True)
            if results
            else self.select.copy().subquery("r", copy=False)
        )
        return exp.select(*cols, copy=False).from_(source, copy=False)


class _Compiler:
    def __init__(self, compiled: Compiled, as_of: dt.date) -> None:
        self.compiled = compiled
        self.c = compiled.checked
        self.as_of = as_of
        self.columns: dict[str, str] = {}  # record key (fact, "@anchor", "x#low") -> column
        self.quantifiers: list[_Quantifier] = []
        self.env: dict[tuple[str, str], exp.Expression] = {}
        self.item_fields: dict[str, dict[str, str]] = {}  # list fact -> field -> column
        self.arm: str | None = None  # the arm bound while compiling per-arm verdicts
        self.in_item: str | None = None  # the list whose item row is in scope
        self.rounded = n.arithmetic_roots(self.c.protocol)
        # named intermediate values: SQL text -> (column, expression, stage)
        self.lets: dict[str, tuple[str, exp.Expression, int]] = {}
        self.stage_of: dict[str, int] = {}
        self.forced: dict[int, bool] = {}  # conditional -> branch, while enumerating
        self.forced_cond: dict[int, exp.Expression] = {}
        # facts / list fields read as plain values where they may be intervals: a
        # criterion (an item) reading one that is an interval is unknown (intervals.py)
        self.plain_reads: set[str] = set()
        self.plain_fields: set[str] = set()
        self.all_plain: set[str] = set()  # both, over the whole protocol

    def conditionals(self, e: n.Expr, seen: set[str] | None = None) -> list[n.Conditional]:
        """Conditional values inside e, through definitions and function bodies."""
        seen = set() if seen is None else seen
        out: list[n.Conditional] = []
        for x in e.walk():
            if isinstance(x, n.Conditional) and id(x) not in self.forced:
                out.append(x)
            elif isinstance(x, n.Name):
                r = self.c.refs.get(id(x))
                if r is not None and r.kind == "define" and r.name not in seen:
                    seen.add(r.name)
                    out += self.conditionals(self.c.defines[r.name].body, seen)
            elif isinstance(x, n.Call) and x.func in self.c.defines and x.func not in seen:
                seen.add(x.func)
                out += self.conditionals(self.c.defines[x.func].body, seen)
        return list({id(c): c for c in out}.values())

    def over_branches(self, e: n.Expr, build: Any) -> exp.Expression:
        """A comparison over a value with a conditional inside: with the condition
        unknown the value is both branches (runtime.choice), and the comparison is
        decided when both branches decide it alike, as the Python back end does."""
        conds = self.conditionals(e)
        if not conds:
            return build()
        first = conds[0]
        results = []
        for branch in (True, False):
            self.forced[id(first)] = branch
            try:
                results.append(self.let(self.over_branches(e, build)))
            finally:
                del self.forced[id(first)]
        yes, no = results
        cond = self.forced_cond.pop(id(first), None)
        if cond is None:  # the conditional was not reached: nothing to enumerate
            return yes
        agree = exp.Case(
            ifs=[
                exp.If(this=exp.and_(_is(yes, True), _is(no, True), copy=False), true=exp.true()),
                exp.If(
                    this=exp.and_(_is(yes, False), _is(no, False), copy=False), true=exp.false()
                ),
            ],
            default=_null(),
        )
        return self.let(
            exp.Case(
                ifs=[
                    exp.If(this=_is(cond, True), true=yes.copy()),
                    exp.If(this=_is(cond, False), true=no.copy()),
                ],
                default=agree,
            )
        )

    def let(self, e: exp.Expression, small: int = 40) -> exp.Expression:
        """Name a value once, as a column of a query stage after those it reads: the
        query's counterpart of the Python evaluator's hoisted locals. Keeps the text
        linear (a large value used twice is not written twice); equal values share a
        column. Small values and values inside a list condition (per item) stay inline.
        """
        inner = e.this if isinstance(e, exp.Paren) else e
        if (
            self.in_item is not None
            or const_of(e) is not None
            or isinstance(inner, (exp.Column, exp.Literal, exp.Boolean, exp.Null))
        ):
            return e
        if next(itertools.islice(e.walk(), small, None), None) is None:
            return e  # at most `small` nodes
        key = e.sql()
        if key not in self.lets:
            reads = [self.stage_of.get(c.name, 0) for c in e.find_all(exp.Column) if c.table == "w"]
            stage = 1 + max(reads, default=0)
            name = f"l{len(self.lets) + 1}"
            self.lets[key] = (name, e, stage)
            self.stage_of[name] = stage
        return _col(self.lets[key][0], "w")

    def name_once(self, e: exp.Expression) -> exp.Expression:
        """`let` whatever its size (a value the calendar splits many times)."""
        return self.let(e, small=0)

    # ------------------------------------------------------------------ names
    def column(self, key: str) -> exp.Expression:
        """The patient row's column for a record key (a fact, "@anchor", "fact#low")."""
        if key not in self.columns:
            self.columns[key] = f"f{len(self.columns) + 1}"
        return _col(self.columns[key], "w")

    def type(self, e: n.Expr) -> Type:
        return self.c.types[id(e)]

    def ref(self, e: n.Name) -> Ref:
        return self.c.refs[id(e)]

    def unsupported(self, what: str, node: n.Node) -> SqlUnsupported:
        return SqlUnsupported(
            f"{self.c.source.path}:{node.span.line}: the SQL back end cannot express {what}; "
            "screen this protocol with the Python engine (`--engine python`)"
        )

    # ------------------------------------------------------------------ values
    def carrier(self, e: n.Expr) -> Unit | None:
        t = self.type(e)
        return t.unit if isinstance(t, QuantT) else None

    def factor(self, src: Unit | None, dst: Unit | None, molar: Fraction | None = None) -> Fraction:
        if src is None or dst is None:
            return Fraction(1)
        k = conversion_factor(src, dst, molar)
        assert k is not None, (src, dst)
        return k

    def scaled(self, e: exp.Expression, k: Fraction) -> exp.Expression:
        """As python._Codegen.scaled: a constant folded in Python, a column times float(k)."""
        if k == 1:
            return e
        value = const_of(e)
        if value is not None:
            return num(value * float(k))
        return _p(exp.Mul(this=e, expression=num(float(k))))

    def value(
        self, e: n.Expr, target: Unit | None = None, molar: Fraction | None = None
    ) -> exp.Expression:
        if isinstance(e, n.DualQuantityLit):
            e = e.primary
        if isinstance(e, n.QuantityLit):
            unit = target or parse_unit(e.unit)
            k = self.factor(parse_unit(e.unit), unit, molar)
            return num(float(e.value * k))
        out = self._value(e)
        if target is not None:
            return self.scaled(out, self.factor(self.carrier(e), target, molar))
        return out

    def _value(self, e: n.Expr) -> exp.Expression:
        if isinstance(e, n.NumberLit):
            return num(float(e.value))
        if isinstance(e, n.DateLit):
            return num(e.value.toordinal())
        if isinstance(e, n.BoolLit):
            return exp.Boolean(this=e.value)
        if isinstance(e, n.Name):
            return self.name(e)
        if isinstance(e, n.Call):
            return self.call(e)
        if isinstance(e, n.Magnitude):
            inner = self.value(e.expr)
            return self.scaled(inner, self.factor(self.carrier(e.expr), parse_unit(e.unit)))
        if isinstance(e, n.WithUnit):
            return self.value(e.expr)
        if isinstance(e, n.Arith):
            return self.arith(e)
        if isinstance(e, n.Neg):
            inner = self.value(e.operand)
            value = const_of(inner)
            return num(-value) if value is not None else _p(exp.Neg(this=inner))
        if isinstance(e, n.Conditional) and id(e) in self.forced:
            # its condition, where the conditional stands (a function's parameters bound)
            self.forced_cond[id(e)] = self.let(self.cond(e.cond))
            branch = e.then if self.forced[id(e)] else e.otherwise
            return self.value(branch, self.carrier(e))
        if isinstance(e, n.Conditional):
            cond = self.let(self.cond(e.cond))
            target = self.carrier(e)
            return exp.Case(
                ifs=[
                    exp.If(this=_is_null(cond), true=_null()),
                    exp.If(this=cond.copy(), true=self.value(e.then, target)),
                ],
                default=self.value(e.otherwise, target),
            )
        if isinstance(e, n.FirstAvailable):
            target = self.carrier(e.options[0])
            first = self.value(e.options[0])
            rest = [self.value(o, target) for o in e.options[1:]]
            return exp.Coalesce(this=first, expressions=rest)
        return self.cond(e)

    def name(self, e: n.Name) -> exp.Expression:
        r = self.ref(e)
        if r.kind == "member":
            t = self.type(e)
            if isinstance(t, ScaleT):
                return num(t.members.index(r.name))
            return _lit(r.name)
        if r.kind == "assume":
            return self.value(self.c.assumed[r.name].value)
        key = (r.kind, r.name)
        if r.kind == "field":
            if self.in_item is None:
                raise self.unsupported("a list field outside its list condition", e)
            if iv.capable(self.type(e)):
                self.plain_fields.add(r.name)
            return _col(self.item_fields[self.in_item][r.name], "i")
        if key in self.env:
            return self.env[key].copy()
        if r.kind == "define":
            return self.let(self.value(self.c.defines[r.name].body))
        if r.kind == "arm" or (r.kind == "fact" and r.name == "arm"):
            if self.arm is not None:
                return _lit(self.arm)
            return self.column("arm")
        if r.kind == "fact":
            if iv.capable(self.c.record_types.get(r.name)):
                self.plain_reads.add(r.name)
            return self.column(r.name)
        if r.kind == "anchor":
            if r.name == ENROLLMENT:
                return num(self.as_of.toordinal())
            return self.column("@" + r.name)
        raise self.unsupported(f"the name kind {r.kind!r}", e)

    def call(self, e: n.Call) -> exp.Expression:
        if e.func == "elapsed_years":
            a, b = (self.let(self.value(x)) for x in e.args)
            return self.let(_guard(cal.completed_years(a, b, self.name_once), a, b))
        d = self.c.defines[e.func]
        assert d.params is not None
        saved = dict(self.env)
        for arg, p in zip(e.args, d.params, strict=True):
            pt = self.param_type(p)
            target = pt.unit if isinstance(pt, QuantT) else None
            self.env[("param", p.name)] = self.let(self.value(arg, target))
        try:
            return self.let(self.value(d.body))
        finally:
            self.env = saved

    def param_type(self, p: n.Param) -> Type:
        from ...typesys import NumberT

        if isinstance(p.type, n.QuantityTypeExpr):
            return QuantT(parse_unit(p.type.unit))
        return NumberT()

    def arith(self, e: n.Arith) -> exp.Expression:
        a = self.let(self.value(e.left))
        lu = self.carrier(e.left)
        b = self.let(self.value(e.right, lu) if e.op in "+-" else self.value(e.right))
        op = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul, "/": exp.Div}[e.op]
        ca, cb = const_of(a), const_of(b)
        if ca is not None and cb is not None and not (e.op == "/" and cb == 0):
            folded = {"+": ca + cb, "-": ca - cb, "*": ca * cb, "/": ca / cb if cb else 0.0}
            value = folded[e.op]
            if id(e) in self.rounded:
                from ..runtime import sig

                value = sig(value)
            return num(value)
        result: exp.Expression = _p(op(this=a, expression=b))
        if id(e) in self.rounded:
            result = _sig(result)
        guards = [_is_null(x) for x in (a, b) if const_of(x) is None]
        if e.op == "/":
            guards.append(exp.EQ(this=b.copy(), expression=num(0)))
        if not guards:
            return self.let(result)
        return self.let(_case(exp.or_(*guards, copy=False), _null(), result))

    # ------------------------------------------------------------------ intervals
    def interval(self, e: n.Expr) -> iv.Iv | None:
        """A fact or list field that may hold an interval, as its interval columns (a
        read that intervals.py reasons over, so not a plain read); else None."""
        if not isinstance(e, n.Name):
            return None
        r = self.ref(e)
        if (r.kind, r.name) in self.env or not iv.capable(self.type(e)):
            return None
        if r.kind == "fact" and iv.capable(self.c.record_types.get(r.name)):
            return iv.fact_iv(self.column, r.name)
        if r.kind == "field" and self.in_item is not None:
            return iv.field_iv("i", self.item_fields[self.in_item][r.name])
        return None

    def operand(
        self, e: n.Expr, target: Unit | None = None, molar: Fraction | None = None
    ) -> iv.Iv:
        """e as an interval: its columns when it may be one, else a plain value."""
        if isinstance(e, n.DualQuantityLit):
            e = e.primary
        found = self.interval(e)
        if found is None:
            return iv.Iv.of(self.let(self.value(e, target, molar)))
        if target is None or self.factor(self.carrier(e), target, molar) == 1:
            return found
        return iv.Iv.of(self.let(self.value(e, target, molar)))

    def any_interval(self, *es: n.Expr) -> bool:
        return any(self.interval(x) is not None for x in es)

    # ------------------------------------------------------------------ conditions
    def cond(self, e: n.Expr) -> exp.Expression:
        if isinstance(e, n.BoolLit):
            return exp.Boolean(this=e.value)
        if isinstance(e, (n.Name, n.Call, n.FirstAvailable, n.Conditional)):
            return self._value(e)
        if isinstance(e, n.Not):
            return _p(exp.Not(this=_p(self.cond(e.operand))))
        if isinstance(e, n.And):
            return _p(exp.And(this=self.cond(e.left), expression=self.cond(e.right)))
        if isinstance(e, n.Or):
            return _p(exp.Or(this=self.cond(e.left), expression=self.cond(e.right)))
        if isinstance(e, n.Implies):  # python.py: True when the premise is False (Kleene)
            premise = exp.Not(this=_p(self.cond(e.premise)))
            return _p(exp.Or(this=premise, expression=self.cond(e.conclusion)))
        if isinstance(e, n.Unless):
            return _p(
                exp.And(this=self.cond(e.rule), expression=exp.Not(this=_p(self.cond(e.exception))))
            )
        if isinstance(e, n.Compare):
            return self.over_branches(e, lambda: self.compare(e.op, e.left, e.right))
        if isinstance(e, n.Between) and self.any_interval(e.subject, e.low, e.high):
            x = self.operand(e.subject)
            target, molar = self.carrier(e.subject), self.molar(e.subject)
            lo = self.operand(e.low, target, molar)
            hi = self.operand(e.high, target, molar)
            test = iv.kleene_and(iv.less(lo, x, False), iv.less(x, hi, False))
            return self.let(iv.guard(test, x, lo, hi))
        if isinstance(e, n.Between):
            a = self.let(self.value(e.subject))
            target = self.carrier(e.subject)
            lo = self.let(self.value(e.low, target, self.molar(e.subject)))
            hi = self.let(self.value(e.high, target, self.molar(e.subject)))
            test = exp.and_(
                exp.LTE(this=lo, expression=a), exp.LTE(this=a.copy(), expression=hi), copy=False
            )
            return _guard(test, a, lo, hi)
        if isinstance(e, n.Member):
            a = self.let(self.value(e.subject))
            t = self.type(e.subject)
            if isinstance(t, ScaleT):
                members = [num(t.members.index(m)) for m in e.members]
            else:
                members = [_lit(m) for m in sorted(e.members)]
            test: exp.Expression = exp.In(this=a, expressions=members)
            if e.negated:
                test = exp.Not(this=_p(test))
            return _guard(test, a)
        if isinstance(e, n.IsKnown) and self.any_interval(e.subject):
            found = self.interval(e.subject)
            assert found is not None
            return found.known()
        if isinstance(e, n.IsKnown):
            a = self.value(e.subject)
            return exp.Not(this=_is_null(a))
        if isinstance(e, n.CompareRef) and self.any_interval(e.left):
            x = self.operand(e.left)
            limit = self.column(e.left.name + ("#high" if e.limit == "ULN" else "#low"))
            k = num(float(e.factor.value))
            bound = iv.Iv.of(exp.Mul(this=k, expression=limit))
            return self.let(iv.guard(iv.compare(e.op, x, bound), x, bound))
        if isinstance(e, n.CompareRef):
            assert isinstance(e.left, n.Name)
            a = self.let(self.value(e.left))
            limit = self.column(e.left.name + ("#high" if e.limit == "ULN" else "#low"))
            k = num(float(e.factor.value))
            return _guard(_compare(e.op, a, exp.Mul(this=k, expression=limit)), a, limit)
        if isinstance(e, n.InNormalRange) and self.any_interval(e.subject):
            assert isinstance(e.subject, n.Name)
            x = self.operand(e.subject)
            lo = self.column(e.subject.name + "#low")
            hi = self.column(e.subject.name + "#high")
            return self.let(iv.in_range(x, lo, hi))
        if isinstance(e, n.InNormalRange):
            assert isinstance(e.subject, n.Name)
            a = self.let(self.value(e.subject))
            lo = self.column(e.subject.name + "#low")
            hi = self.column(e.subject.name + "#high")
            unknown = exp.or_(
                _is_null(a), exp.and_(_is_null(lo), _is_null(hi), copy=False), copy=False
            )
            test = exp.and_(
                _p(exp.or_(_is_null(lo), exp.LTE(this=lo.copy(), expression=a.copy()), copy=False)),
                _p(exp.or_(_is_null(hi), exp.LTE(this=a.copy(), expression=hi.copy()), copy=False)),
                copy=False,
            )
            return _case(unknown, _null(), test)
        if isinstance(e, n.Window):
            return self.window(e)
        if isinstance(e, n.DateBound):
            return self.date_bound(e)
        if isinstance(e, n.WindowBetween):
            return self.window_between(e)
        if isinstance(e, n.Period):
            return self.period(e)
        if isinstance(e, n.Order) and self.any_interval(e.subject, e.anchor):
            d, a = self.operand(e.subject), self.operand(e.anchor)
            test = iv.less(d, a, True) if e.direction == "before" else iv.less(a, d, True)
            return self.let(iv.guard(test, d, a))
        if isinstance(e, n.Order):
            d, a = self.let(self.value(e.subject)), self.let(self.value(e.anchor))
            test = (
                exp.LT(this=d, expression=a)
                if e.direction == "before"
                else exp.GT(this=d, expression=a)
            )
            return _guard(test, d, a)
        if isinstance(e, n.Quantified):
            return self.quantified(e)
        raise self.unsupported(f"the construct {type(e).__name__}", e)

    def molar(self, e: n.Expr) -> Fraction | None:
        if isinstance(e, n.Name) and self.c.refs.get(id(e), Ref("", "")).kind == "fact":
            return self.c.facts[e.name].molar_mass
        return None

    def compare(self, op: str, left: n.Expr, right: n.Expr) -> exp.Expression:
        lt, rt = self.type(left), self.type(right)
        if isinstance(rt, ScaleT) and not isinstance(lt, ScaleT):
            left, right = right, left
            op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
        if self.any_interval(left, right):
            x = self.operand(left)
            y = self.operand(right, self.carrier(left), self.molar(left))
            return self.let(iv.guard(iv.compare(op, x, y), x, y))
        a = self.let(self.value(left))
        b = self.let(self.value(right, self.carrier(left), self.molar(left)))
        return _guard(_compare(op, a, b), a, b)

    def shift(self, e: n.Window) -> Any:
        """The window's edge from its anchor's day number (monotonic: python.edge)."""
        return self.shift_by(e.duration, -1 if e.direction == "before" else 1)

    def shift_by(self, duration: n.QuantityLit, sign: int) -> Any:
        """A day number moved by sign * duration: weeks and days fixed, months calendar."""
        unit = parse_unit(duration.unit)
        amount = duration.value * unit.factor
        if unit.dims == (("[calendar]", 1),) and amount.denominator == 1:
            return lambda a: cal.add_months(a.copy(), sign * int(amount), self.name_once)
        days = amount * (Fraction(30436875, 1000000) if unit.dims != TIME else 1)
        days = days / 86400 if unit.dims == TIME else days
        shift = float(sign * days)

        def add(a: exp.Expression) -> exp.Expression:
            value = const_of(a)
            if value is not None:
                return num(value + shift)
            return self.let(_p(exp.Add(this=a.copy(), expression=num(shift))))

        return add

    def window(self, e: n.Window) -> exp.Expression:
        shift = self.shift(e)
        if self.any_interval(e.subject, e.anchor):
            di, ai = self.operand(e.subject), self.operand(e.anchor)
            edge_iv = iv.shifted(ai, shift)
            before = e.direction == "before"
            return self.let(iv.window(e.kind, before, di, ai, edge_iv))
        d = self.let(self.value(e.subject))
        a = self.let(self.value(e.anchor))
        edge = shift(a)

        def le(x: exp.Expression, y: exp.Expression) -> exp.Expression:
            return exp.LTE(this=x.copy(), expression=y.copy())

        def lt(x: exp.Expression, y: exp.Expression) -> exp.Expression:
            return exp.LT(this=x.copy(), expression=y.copy())

        if e.direction == "before":
            test = {
                "within": lambda: exp.and_(le(edge, d), le(d, a), copy=False),
                "more": lambda: lt(d, edge),
                "less": lambda: exp.and_(lt(edge, d), le(d, a), copy=False),
            }[e.kind]()
        else:
            test = {
                "within": lambda: exp.and_(le(a, d), le(d, edge), copy=False),
                "more": lambda: lt(edge, d),
                "less": lambda: exp.and_(le(a, d), lt(d, edge), copy=False),
            }[e.kind]()
        return _guard(test, d, a)

    def date_bound(self, e: n.DateBound) -> exp.Expression:
        """`S at least D before A`: S <= A - D; `on or before A`: S <= A; and mirrors;
        over intervals as python.date_bound (intervals.less)."""
        d, a = self.operand(e.subject), self.operand(e.anchor)
        edge = a
        if e.duration is not None:
            edge = iv.shifted(a, self.shift_by(e.duration, -1 if e.direction == "before" else 1))
        return self.let(iv.guard(iv.compare(e.op, d, edge), d, edge))

    def window_between(self, e: n.WindowBetween) -> exp.Expression:
        """`S between D1 and D2 before A`: A - D2 <= S <= A - D1 (after: A + D1 .. A + D2)."""
        ends = e.durations()
        assert ends is not None  # the checker requires written durations
        d, a = self.operand(e.subject), self.operand(e.anchor)
        sign = -1 if e.direction == "before" else 1
        near, far = (iv.shifted(a, self.shift_by(x, sign)) for x in ends)
        low, high = (far, near) if sign < 0 else (near, far)
        test = iv.kleene_and(iv.less(low, d, False), iv.less(d, high, False))
        return self.let(iv.guard(test, d, low, high))

    def range_flag(self, e: n.Expr) -> exp.Expression | None:
        """TRUE when e (a fact or field that may be an interval) is one, else None."""
        if self.interval(e) is None:
            return None
        assert isinstance(e, n.Name)
        r = self.ref(e)
        if r.kind == "field":
            assert self.in_item is not None
            return iv.field_is_range("i", self.item_fields[self.in_item][r.name])
        return exp.EQ(this=self.column(r.name + iv.IS_RANGE), expression=exp.Literal.number(1))

    def period(self, e: n.Period) -> exp.Expression:
        """START..END against a window [LOW, HIGH]: START <= HIGH and END >= LOW (Kleene),
        over intervals (an ongoing end: at least the evaluation date); unknown when two
        exact dates have the end before the start (python.period)."""
        start, end, a = (self.operand(x) for x in (e.start, e.end, e.anchor))
        low = high = a
        if e.duration is not None:
            sign = -1 if e.direction == "before" else 1
            shifted = iv.shifted(a, self.shift_by(e.duration, sign))
            low, high = (shifted, a) if sign < 0 else (a, shifted)
        first = iv.guard(iv.less(start, high, False), start, high)
        second = iv.guard(iv.less(low, end, False), end, low)
        test = _p(exp.and_(_p(first), _p(second), copy=False))
        flags = [f for f in (self.range_flag(x) for x in (e.start, e.end)) if f is not None]
        swapped = exp.and_(
            exp.Not(this=_is_null(start.lo.copy())),
            exp.Not(this=_is_null(end.lo.copy())),
            _compare("<", end.lo.copy(), start.lo.copy()),
            copy=False,
        )
        ifs = [exp.If(this=exp.or_(*flags, copy=False), true=test.copy())] if flags else []
        ifs.append(exp.If(this=swapped, true=_null()))
        return self.let(exp.Case(ifs=ifs, default=test))

    def quantified(self, e: n.Quantified) -> exp.Expression:
        if self.in_item is not None:
            raise self.unsupported("a list condition inside another list condition", e)
        for x in e.body.walk():
            if isinstance(x, n.Name) and self.c.refs.get(id(x), Ref("", "")).kind == "param":
                raise self.unsupported("a list condition on a function's parameter", e)
        t = self.c.facts[e.list_name].type
        assert isinstance(t, ListT)
        fields = self.item_fields.setdefault(e.list_name, {})
        for fname, _ in t.fields:
            fields.setdefault(fname, f"x{len(fields) + 1}")
        saved_arm = self.arm
        self.in_item = e.list_name
        self.plain_fields = set()
        try:
            body = self.cond(e.body)
        finally:
            self.in_item = None
        self.all_plain |= {f"{e.list_name}.{f}" for f in self.plain_fields}
        if self.plain_fields:  # an item whose field read plainly is an interval: unknown
            ranged = [iv.field_is_range("i", fields[f]) for f in sorted(self.plain_fields)]
            body = _case(exp.or_(*ranged, copy=False), _null(), body)
        alias = f"q{len(self.quantifiers) + 1}"
        self.quantifiers.append(_Quantifier(alias, e, body))
        self.arm = saved_arm
        known = self.column(e.list_name)  # the item count; NULL when the list is unknown
        yes = _col(f"{alias}_yes", "w")
        unk = _col(f"{alias}_unknown", "w")
        no = _col(f"{alias}_no", "w")
        total = known.copy()
        q = e.quantifier
        if q == "any":
            result = exp.Case(
                ifs=[
                    exp.If(this=exp.GT(this=yes, expression=num(0)), true=exp.true()),
                    exp.If(this=exp.GT(this=unk, expression=num(0)), true=_null()),
                ],
                default=exp.false(),
            )
        elif q == "no":
            result = exp.Case(
                ifs=[
                    exp.If(this=exp.GT(this=yes, expression=num(0)), true=exp.false()),
                    exp.If(this=exp.GT(this=unk, expression=num(0)), true=_null()),
                ],
                default=exp.true(),
            )
        elif q == "all":
            result = exp.Case(
                ifs=[
                    exp.If(this=exp.GT(this=no, expression=num(0)), true=exp.false()),
                    exp.If(this=exp.GT(this=unk, expression=num(0)), true=_null()),
                ],
                default=exp.true(),
            )
        elif q == "majority":
            result = exp.Case(
                ifs=[
                    exp.If(
                        this=exp.GT(this=exp.Mul(this=num(2), expression=yes), expression=total),
                        true=exp.true(),
                    ),
                    exp.If(
                        this=exp.LTE(
                            this=exp.Mul(
                                this=num(2), expression=_p(exp.Add(this=yes.copy(), expression=unk))
                            ),
                            expression=total.copy(),
                        ),
                        true=exp.false(),
                    ),
                ],
                default=_null(),
            )
        else:
            k = num(int(e.count or 0))
            result = exp.Case(
                ifs=[
                    exp.If(this=exp.GTE(this=yes, expression=k), true=exp.true()),
                    exp.If(
                        this=exp.LT(
                            this=_p(exp.Add(this=yes.copy(), expression=unk)), expression=k.copy()
                        ),
                        true=exp.false(),
                    ),
                ],
                default=_null(),
            )
        return self.let(_case(_is_null(known), _null(), result))

    # ------------------------------------------------------------------ criteria
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
            exp.Not(this=_is_null(self.column(fact + CONFLICT)))
            for fact in sorted(crit.facts)
            if not fact.startswith("@") and fact in types and not isinstance(types[fact], ListT)
        ]
        # a fact read as a plain value (arithmetic, a formula, `first available`...) that
        # is an interval: Python reasons over the Range there, SQL says unknown
        conflicts += [
            exp.Not(this=_is_null(self.column(fact + iv.IS_RANGE)))
            for fact in sorted(self.plain_reads)
        ]
        if not conflicts:
            return word
        return self.let(_case(_or(conflicts), _lit("unknown"), word))

    def _status(self, crit: Any) -> exp.Expression:
        c = crit.node
        rule = c.rule
        assert rule is not None
        if c.applies is None:
            return self.let(_word(self.let(self.cond(rule))))
        a = self.let(self.cond(c.applies))
        r = self.let(self.cond(rule))
        harmless = crit.section == "inclusion"
        # applies unknown: still decided when the rule passes either way (python.py)
        decided = exp.or_(_is(a, True), _is(r, harmless), copy=False)
        return self.let(
            exp.Case(
                ifs=[
                    exp.If(this=_is(a, False), true=_lit(NOT_APPLICABLE)),
                    exp.If(this=decided, true=_word(r)),
                ],
                default=_lit("unknown"),
            )
        )


def _compare(op: str, a: exp.Expression, b: exp.Expression) -> exp.Expression:
    cls = {"<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE, "=": exp.EQ, "!=": exp.NEQ}[op]
    return cls(this=a.copy(), expression=b.copy())


def _word(b: exp.Expression) -> exp.Expression:
    return exp.Case(
        ifs=[
            exp.If(this=_is(b, True), true=_lit("met")),
            exp.If(this=_is(b, False), true=_lit("not met")),
        ],
        default=_lit("unknown"),
    )


def _sig(x: exp.Expression) -> exp.Expression:
    """runtime.sig in SQL: round to 12 significant digits (0 stays 0).

    FLOOR(x * 10^k + 0.5) / 10^k with k = 11 - FLOOR(LOG10(|x|)) (LOG10 written as a
    plain call: the base-10 logarithm of a DOUBLE in all three engines): the same decimal
    rounding as Python's `float(f"{x:.12g}")` except at exact ties in the 13th digit.
    """
    ax = exp.Abs(this=x.copy())
    k = exp.Sub(
        this=num(11), expression=exp.Floor(this=exp.Anonymous(this="LOG10", expressions=[ax]))
    )
    scale = exp.Pow(this=num(10), expression=_p(k))
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


# ---------------------------------------------------------------------- the query


def compile_sql(compiled: Compiled, as_of: dt.date) -> SqlProtocol:
    """The protocol as one query over `critlang_patients` and `critlang_facts`.

    Raises SqlUnsupported (with the criteria line) for what SQL here cannot express.
    """
    comp = _Compiler(compiled, as_of)
    for name, t in compiled.checked.record_types.items():
        if not isinstance(t, KNOWN_TYPES):
            info = compiled.checked.facts.get(name)
            raise SqlUnsupported(
                f"{compiled.checked.source.path}:{info.node.span.line if info else 0}: the SQL "
                f"back end cannot express the fact {name!r} ({t.describe()}); screen this "
                "protocol with the Python engine (`--engine python`)"
            )
    crits = compiled.criteria
    statuses = [comp.status(crit) for crit in crits]
    h = compiled.checked.protocol.header
    arms = [a.name for a in h.arms] if h is not None else []
    arm_dependent = any("arm" in c.facts for c in crits)
    verdict = _verdict(crits, statuses)
    if arms and arm_dependent:
        per_arm = []
        for arm in arms:
            comp.arm = arm
            per_arm.append(_verdict(crits, [comp.status(crit) for crit in crits]))
        comp.arm = None
        same = exp.and_(
            *[exp.EQ(this=per_arm[0].copy(), expression=v) for v in per_arm[1:]], copy=False
        )
        arm_col = comp.column("arm")
        verdict = exp.Case(
            ifs=[
                exp.If(this=exp.Not(this=_is_null(arm_col)), true=verdict),
                exp.If(this=same, true=per_arm[0].copy()),
            ],
            default=_lit("undetermined"),
        )
    wide, stage = _patient_rows(comp)
    # each stage adds the named values whose inputs the stages before it hold
    last = max((st for _, _, st in comp.lets.values()), default=0)
    for level in range(1, last + 1):
        named = [exp.alias_(e, name) for name, e, st in comp.lets.values() if st == level]
        stage = exp.select(_star("w"), *named, copy=False).from_(
            stage.subquery("w", copy=False), copy=False
        )
    # a patient dead by the screening date is ineligible whatever the criteria say; one
    # that may have died (a partial date of death) is not eligible yet (python.deceased_verdict)
    maybe = exp.Like(this=_col("deceased", "w"), expression=_lit(MAYBE_DECEASED + "%"))
    dead = exp.and_(exp.Not(this=_is_null(_col("deceased", "w"))), exp.Not(this=maybe.copy()))
    verdict = exp.Case(
        ifs=[
            exp.If(this=dead.copy(), true=_lit("ineligible")),
            exp.If(
                this=exp.and_(maybe.copy(), exp.EQ(this=_p(verdict), expression=_lit("eligible"))),
                true=_lit("undetermined"),
            ),
        ],
        default=verdict.copy(),
    )
    select = (
        exp.select(
            _col("pid", "w"),
            exp.alias_(_col("id", "w"), "id"),
            exp.alias_(verdict, "verdict"),
            *[exp.alias_(s, f"c{i}") for i, s in enumerate(statuses, 1)],
            exp.alias_(_case(dead, num(1), num(0)), "dead"),
            copy=False,
        )
        .from_(stage.subquery("w", copy=False), copy=False)
        .with_("critlang_wide", as_=wide, copy=False)
    )
    return SqlProtocol(compiled, as_of, select, [c.id for c in crits], frozenset(comp.all_plain))


def _verdict(crits: list[Any], statuses: list[exp.Expression]) -> exp.Expression:
    bad = [
        exp.EQ(this=s.copy(), expression=_lit("not met" if c.section == "inclusion" else "met"))
        for c, s in zip(crits, statuses, strict=True)
    ]
    unknown = [exp.EQ(this=s.copy(), expression=_lit("unknown")) for s in statuses]
    return exp.Case(
        ifs=[
            exp.If(this=_or(bad), true=_lit("ineligible")),
            exp.If(this=_or(unknown), true=_lit("undetermined")),
        ],
        default=_lit("eligible"),
    )


def _pick_filter(comp: _Compiler, fact: str) -> exp.Expression:
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
        this=_col("day"), low=num(start.toordinal()), high=num(comp.as_of.toordinal())
    )


def _patient_rows(comp: _Compiler) -> tuple[exp.Select, exp.Select]:
    """One row per patient: each used fact's picked value (`w.f1`...), reference limits,
    and the per-patient counts of every list condition."""
    keys = dict(comp.columns)  # record key -> column
    base_facts = sorted(
        {k.split("#")[0] for k in keys if not k.startswith("@")}
        | {k for k in keys if k.startswith("@")}
    )
    types = comp.c.record_types
    # ---- picked: the chosen row of each fact per patient
    filters = []
    for key in keys:
        if key.endswith(CONFLICT):
            filters.append(exp.EQ(this=_col("fact"), expression=_lit(key)))
    for fact in base_facts:
        cond = exp.EQ(this=_col("fact"), expression=_lit(fact))
        if not fact.startswith("@") and not isinstance(types.get(fact), ListT):
            cond = exp.and_(cond, _pick_filter(comp, fact), copy=False)
        filters.append(_p(cond))
    order = [
        exp.Ordered(this=_case(_is_null(_col("day")), num(1), num(0))),
        exp.Ordered(this=_col("day"), desc=True),
        exp.Ordered(this=_case(_is_null(_col("day")), exp.Neg(this=_col("seq")), _col("seq"))),
    ]
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
                    partition_by=[_col("pid"), _col("fact")],
                    order=exp.Order(expressions=order),
                ),
                "rn",
            ),
            copy=False,
        )
        .from_(FACTS, copy=False)
        .where(
            exp.and_(
                _is_null(_col("problem")),
                _is_null(_col("item")),
                _or(filters),
                copy=False,
            ),
            copy=False,
        )
    )
    picked = (
        exp.select("pid", "fact", "value", "text", "low", "high", *iv.COLUMNS, copy=False)
        .from_(ranked.subquery("ranked", copy=False), copy=False)
        .where(exp.EQ(this=_col("rn"), expression=num(1)), copy=False)
    )
    # ---- pivot: one column per record key
    cols: list[exp.Expression] = [_col("pid", "p"), _col("id", "p"), _col("deceased", "p")]
    for key, name in keys.items():
        fact = key.split("#")[0]
        is_fact = exp.EQ(this=_col("fact", "v"), expression=_lit(fact))
        t = types.get(fact) if not key.startswith("@") else DateT()
        ranged = iv.pivot(key, is_fact, "v")
        if ranged is not None:
            value = ranged
        elif key.endswith(CONFLICT):
            is_conflict = exp.EQ(this=_col("fact", "v"), expression=_lit(key))
            value = exp.Max(this=_case(is_conflict, _col("value", "v"), _null()))
        elif key.endswith("#low") or key.endswith("#high"):
            which = "low" if key.endswith("#low") else "high"
            default_low, default_high = _range_limits(None, comp.c, fact)
            default = default_low if which == "low" else default_high
            own = _col(which, "v")
            none_own = exp.and_(_is_null(_col("low", "v")), _is_null(_col("high", "v")), copy=False)
            limit: exp.Expression = own
            if default is not None:
                limit = _case(none_own, num(default), own.copy())
            value = exp.Max(this=_case(is_fact, limit, _null()))
            # the default applies also when the fact is unknown (python._range_limits)
            if default is not None:
                value = exp.Coalesce(this=value, expressions=[num(default)])
        elif isinstance(t, (EnumT,)) and not isinstance(t, ScaleT):
            value = exp.Max(this=_case(is_fact, _col("text", "v"), _null()))
        elif isinstance(t, BoolT):
            picked_value = exp.Max(this=_case(is_fact, _col("value", "v"), _null()))
            value = _case(
                _is_null(picked_value),
                _null(),
                exp.NEQ(this=picked_value.copy(), expression=num(0)),
            )
        else:  # quantities, numbers, integers, grades, dates (day numbers), list item counts
            value = exp.Max(this=_case(is_fact, _col("value", "v"), _null()))
        cols.append(exp.alias_(value, name))
    wide = (
        exp.select(*cols, copy=False)
        .from_(exp.alias_(exp.to_table(PATIENTS), "p", table=True), copy=False)
        .join(
            picked.subquery("v", copy=False),
            on=exp.EQ(this=_col("pid", "v"), expression=_col("pid", "p")),
            join_type="left",
            copy=False,
        )
        .group_by(_col("pid", "p"), _col("id", "p"), _col("deceased", "p"), copy=False)
    )
    query = exp.select(_star("w0"), copy=False).from_(
        exp.alias_(exp.to_table("critlang_wide"), "w0", table=True), copy=False
    )
    # ---- list conditions: per patient, items true / unknown / false
    by_list: dict[str, list[_Quantifier]] = {}
    for q in comp.quantifiers:
        by_list.setdefault(q.node.list_name, []).append(q)
    for number, (list_name, quantifiers) in enumerate(by_list.items(), 1):
        fields = comp.item_fields[list_name]
        item_cols: list[exp.Expression] = [_col("pid"), _col("item")]
        t = comp.c.facts[list_name].type
        assert isinstance(t, ListT)
        ftypes = dict(t.fields)
        for fname, cname in fields.items():
            is_field = exp.EQ(this=_col("field"), expression=_lit(fname))
            ft = ftypes[fname]
            if isinstance(ft, EnumT):
                v = exp.Max(this=_case(is_field, _col("text"), _null()))
            elif isinstance(ft, BoolT):
                raw = exp.Max(this=_case(is_field, _col("value"), _null()))
                v = _case(_is_null(raw), _null(), exp.NEQ(this=raw.copy(), expression=num(0)))
            else:
                v = exp.Max(this=_case(is_field, _col("value"), _null()))
            item_cols.append(exp.alias_(v, cname))
            if iv.capable(ft):
                item_cols += iv.item_columns(is_field, cname)
        items = (
            exp.select(*item_cols, copy=False)
            .from_(FACTS, copy=False)
            .where(
                exp.and_(
                    exp.EQ(this=_col("fact"), expression=_lit(list_name)),
                    exp.Not(this=_is_null(_col("item"))),
                    _is_null(_col("problem")),
                    copy=False,
                ),
                copy=False,
            )
            .group_by(_col("pid"), _col("item"), copy=False)
        )
        # every condition on this list, counted in one pass over its items
        sums: list[exp.Expression] = [exp.alias_(_col("pid", "i"), "pid")]
        needs_patient = False
        for q in quantifiers:
            body = q.body
            needs_patient = needs_patient or any(c.table == "w" for c in body.find_all(exp.Column))
            for suffix, test in (
                ("yes", _is(body, True)),
                ("unknown", _is_null(body)),
                ("no", _is(body, False)),
            ):
                sums.append(
                    exp.alias_(exp.Sum(this=_case(test, num(1), num(0))), f"{q.alias}_{suffix}")
                )
        counts = exp.select(*sums, copy=False).from_(items.subquery("i", copy=False), copy=False)
        if needs_patient:  # a condition reads the patient's own values (an anchor date)
            counts = counts.join(
                exp.alias_(exp.to_table("critlang_wide"), "w", table=True),
                on=exp.EQ(this=_col("pid", "w"), expression=_col("pid", "i")),
                copy=False,
            )
        counts = counts.group_by(_col("pid", "i"), copy=False)
        alias = f"n{number}"
        query = query.join(
            counts.subquery(alias, copy=False),
            on=exp.EQ(this=_col("pid", alias), expression=_col("pid", "w0")),
            join_type="left",
            copy=False,
        )
        for q in quantifiers:
            for suffix in ("yes", "unknown", "no"):
                name = f"{q.alias}_{suffix}"
                query = query.select(
                    exp.alias_(exp.Coalesce(this=_col(name, alias), expressions=[num(0)]), name),
                    copy=False,
                )
    return wide, query


def _star(table: str) -> exp.Expression:
    return exp.Column(this=exp.Star(), table=exp.to_identifier(table))
