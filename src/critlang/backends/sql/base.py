"""The SQL compiler's state and naming: record keys as generated columns, named
intermediate values (`let`), and conditional values enumerated branch by branch."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from sqlglot import exp

from ... import nodes as n
from ...checker import Ref
from ...typesys import QuantT, Type
from ...units import Unit, conversion_factor
from ..python import Compiled
from .calendar import const_of, num
from .sqltree import SqlUnsupported, col, is_, null, paren, same


@dataclass
class Quantifier:
    """One list condition's body, counted per patient (one aggregate per list table for
    all its conditions); conditions with the same body on the same list share it."""

    alias: str
    node: n.Quantified
    body: exp.Expression  # over the item row `i` and the patient row `w`
    # the per-patient aggregates read, in this order: the items true ("yes") and unknown
    # counted, or the body's Kleene OR over the items ("max") or AND ("min") as one
    # aggregate of a code (false 0, unknown 1, true 2: lists.AGGREGATES)
    needs: tuple[str, ...] = ()

    def need(self, quantifier: str) -> None:
        """Add the aggregates a quantifier (any, no, all, majority, at least) reads: any
        and no the OR, all the AND (one aggregate instead of two counts: measured), a
        majority or a number of items the counts."""
        wanted = {"any": {"max"}, "no": {"max"}, "all": {"min"}}.get(quantifier, {"yes", "unknown"})
        order = ("yes", "unknown", "max", "min")
        self.needs = tuple(c for c in order if c in wanted or c in self.needs)

    def counts(self) -> tuple[str, ...]:
        return self.needs


class CompilerBase:
    """What every part of the compiler shares: the protocol, the screening date, the
    columns named so far and the named values (`let`)."""

    def __init__(self, compiled: Compiled, as_of: dt.date) -> None:
        self.compiled = compiled
        self.c = compiled.checked
        self.as_of = as_of
        self.columns: dict[str, str] = {}  # record key (fact, "@anchor", "x#low") -> column
        self.quantifiers: list[Quantifier] = []
        self.env: dict[tuple[str, str], exp.Expression] = {}
        self.item_fields: dict[str, dict[str, str]] = {}  # list fact -> field -> column
        self.arm: str | None = None  # the arm bound while compiling per-arm verdicts
        self.in_item: str | None = None  # the list whose item row is in scope
        self.rounded = n.arithmetic_roots(self.c.protocol)
        # named intermediate values: the expression (sqlglot's structural hash and
        # equality, confirmed node by node: `same`) -> (column, expression, stage)
        self.lets: dict[exp.Expression | str, tuple[str, exp.Expression, int]] = {}
        self.stage_of: dict[str, int] = {}
        self.forced: dict[int, bool] = {}  # conditional -> branch, while enumerating
        self.forced_cond: dict[int, exp.Expression] = {}
        self.lifting: set[int] = set()  # comparison forms being enumerated by branch
        # list field -> its interval while a body is compiled over a hypothetical item
        # (future_events.py; lists.Lists.future_only), None otherwise
        self.hypothetical: dict[str, Any] | None = None
        # facts / list fields read as plain values where they may be intervals: a
        # criterion (an item) reading one that is an interval is unknown (intervals.py)
        self.plain_reads: set[str] = set()
        self.plain_fields: set[str] = set()
        self.all_plain: set[str] = set()  # both, over the whole protocol
        # measured in the cohort's per-patient tables (values.Layout.measured): facts and
        # list fields ("list.x3") whose interval columns hold only closed points, read
        # as plain values; those with no interval at all, whose plain reads need no mark
        self.points: frozenset[str] = frozenset()
        self.no_range: frozenset[str] = frozenset()

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

    def over_branches(self, e: n.Expr, build: Any, known: bool = False) -> exp.Expression:
        """A comparison over a value with a conditional inside: with the condition
        unknown the value is both branches (runtime.choice), and the comparison is
        decided when both branches decide it alike, as the Python back end does.
        `known` (`x is known`): with the condition unknown, known when both branches
        are (runtime.choice is None when a possibility is)."""
        conds = self.conditionals(e)
        if not conds:
            return build()
        first = conds[0]
        results = []
        for branch in (True, False):
            self.forced[id(first)] = branch
            try:
                results.append(self.let(self.over_branches(e, build, known)))
            finally:
                del self.forced[id(first)]
        yes, no = results
        cond = self.forced_cond.pop(id(first), None)
        if cond is None:  # the conditional was not reached: nothing to enumerate
            return yes
        agree: exp.Expression = exp.Case(
            ifs=[
                exp.If(this=exp.and_(is_(yes, True), is_(no, True), copy=False), true=exp.true()),
                exp.If(
                    this=exp.and_(is_(yes, False), is_(no, False), copy=False), true=exp.false()
                ),
            ],
            default=null(),
        )
        if known:
            agree = exp.and_(yes.copy(), no.copy(), copy=False)
        return self.let(
            exp.Case(
                ifs=[
                    exp.If(this=is_(cond, True), true=yes.copy()),
                    exp.If(this=is_(cond, False), true=no.copy()),
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
        key: exp.Expression | str = e
        found = self.lets.get(key)
        if found is not None and not same(found[1], e):
            key = e.sql()  # a hash collision (never seen): the text tells them apart
            found = self.lets.get(key)
        if found is None:
            reads = [self.stage_of.get(c.name, 0) for c in e.find_all(exp.Column) if c.table == "w"]
            stage = 1 + max(reads, default=0)
            name = f"l{len(self.lets) + 1}"
            found = self.lets[key] = (name, e, stage)
            self.stage_of[name] = stage
        return col(found[0], "w")

    def name_once(self, e: exp.Expression) -> exp.Expression:
        """`let` whatever its size (a value the calendar splits many times)."""
        return self.let(e, small=0)

    # ------------------------------------------------------------------ names
    def column(self, key: str) -> exp.Expression:
        """The patient row's column for a record key (a fact, "@anchor", "fact#low")."""
        if key not in self.columns:
            self.columns[key] = f"f{len(self.columns) + 1}"
        return col(self.columns[key], "w")

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
        return paren(exp.Mul(this=e, expression=num(float(k))))
