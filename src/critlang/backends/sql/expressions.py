"""Values and conditions: the protocol's expressions as SQL over the patient row `w`
(and, inside a list condition, the item row `i`), each construct as the compiled
Python evaluator (backends/python.py) computes it, unknown as NULL."""

from __future__ import annotations

from fractions import Fraction

from sqlglot import exp

from ... import nodes as n
from ...checker import ENROLLMENT, Ref
from ...functions import MATH
from ...typesys import QuantT, ScaleT, Type
from ...units import Unit, parse_unit
from ..python_normalise import limit_key
from . import calendar as cal
from . import intervals as iv
from .calendar import const_of, num
from .functions import Functions
from .sqltree import case, col, compare_sql, guard, is_null, lit, null, paren, sig_sql


class Expressions(Functions):
    """Values (`value`) and three-valued conditions (`cond`); date windows are in
    windows.py and list conditions in lists.py."""

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
            return num(-value) if value is not None else paren(exp.Neg(this=inner))
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
                    exp.If(this=is_null(cond), true=null()),
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
            return lit(r.name)
        if r.kind == "assume":
            return self.value(self.c.assumed[r.name].value)
        key = (r.kind, r.name)
        if r.kind == "field" and self.hypothetical is not None:
            return null()  # future_events.py: read plainly, a hypothetical field is unknown
        if r.kind == "field":
            if self.in_item is None:
                raise self.unsupported("a list field outside its list condition", e)
            name = self.item_fields[self.in_item][r.name]
            if iv.capable(self.type(e)) and f"{self.in_item}.{name}" not in self.no_range:
                self.plain_fields.add(r.name)
            return col(name, "i")
        if key in self.env:
            return self.env[key].copy()
        if r.kind == "define":
            return self.let(self.value(self.c.defines[r.name].body))
        if r.kind == "arm" or (r.kind == "fact" and r.name == "arm"):
            if self.arm is not None:
                return lit(self.arm)
            return self.column("arm")
        if r.kind == "fact":
            if iv.capable(self.c.record_types.get(r.name)) and r.name not in self.no_range:
                self.plain_reads.add(r.name)
            return self.column(r.name)
        if r.kind == "anchor":
            if r.name == ENROLLMENT:
                return num(self.as_of.toordinal())
            return self.column("@" + r.name)
        raise self.unsupported(f"the name kind {r.kind!r}", e)

    def call(self, e: n.Call) -> exp.Expression:
        if e.func in MATH:
            return self.math(e)
        if e.func == "elapsed_years":
            a, b = (self.let(self.value(x)) for x in e.args)
            return self.let(guard(cal.completed_years(a, b, self.name_once), a, b))
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
        result: exp.Expression = paren(op(this=a, expression=b))
        if id(e) in self.rounded:
            result = sig_sql(result)
        guards = [is_null(x) for x in (a, b) if const_of(x) is None]
        if e.op == "/":
            guards.append(exp.EQ(this=b.copy(), expression=num(0)))
        if not guards:
            return self.let(result)
        return self.let(case(exp.or_(*guards, copy=False), null(), result))

    # ------------------------------------------------------------------ intervals
    def interval(self, e: n.Expr) -> iv.Iv | None:
        """A fact or list field that may hold an interval, as its interval columns (a
        read that intervals.py reasons over, so not a plain read); else None."""
        if not isinstance(e, n.Name):
            return None
        r = self.ref(e)
        if (r.kind, r.name) in self.env or not iv.capable(self.type(e)):
            return None
        if r.kind == "field" and self.hypothetical is not None:
            return self.hypothetical.get(r.name)
        if r.kind == "fact" and iv.capable(self.c.record_types.get(r.name)):
            if r.name in self.points:  # no interval in this cohort: its one value
                return iv.Iv.of(self.column(r.name + iv.LO))
            return iv.fact_iv(self.column, r.name)
        if r.kind == "field" and self.in_item is not None:
            name = self.item_fields[self.in_item][r.name]
            if f"{self.in_item}.{name}" in self.points:
                return iv.Iv.of(iv.field_iv("i", name).lo)
            return iv.field_iv("i", name)
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
        if n.compared(e) and id(e) not in self.lifting:
            # a comparison form over a conditional value: branch by branch, decided when
            # every branch agrees (as `compare`; the Python back end's over_alternatives)
            self.lifting.add(id(e))
            try:
                return self.over_branches(e, lambda: self.cond(e))
            finally:
                self.lifting.discard(id(e))
        if isinstance(e, n.BoolLit):
            return exp.Boolean(this=e.value)
        if isinstance(e, (n.Name, n.Call, n.FirstAvailable, n.Conditional)):
            return self._value(e)
        if isinstance(e, n.Not):
            return paren(exp.Not(this=paren(self.cond(e.operand))))
        if isinstance(e, n.And):
            return paren(exp.And(this=self.cond(e.left), expression=self.cond(e.right)))
        if isinstance(e, n.Or):
            return paren(exp.Or(this=self.cond(e.left), expression=self.cond(e.right)))
        if isinstance(e, n.Implies):  # python.py: True when the premise is False (Kleene)
            premise = exp.Not(this=paren(self.cond(e.premise)))
            return paren(exp.Or(this=premise, expression=self.cond(e.conclusion)))
        if isinstance(e, n.Unless):
            return paren(
                exp.And(
                    this=self.cond(e.rule), expression=exp.Not(this=paren(self.cond(e.exception)))
                )
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
            return guard(test, a, lo, hi)
        if isinstance(e, n.Member):
            a = self.let(self.value(e.subject))
            t = self.type(e.subject)
            if isinstance(t, ScaleT):
                members = [num(t.members.index(m)) for m in e.members]
            else:
                members = [lit(m) for m in sorted(e.members)]
            test: exp.Expression = exp.In(this=a, expressions=members)
            if e.negated:
                test = exp.Not(this=paren(test))
            return guard(test, a)
        if isinstance(e, n.IsKnown) and id(e) not in self.lifting:
            self.lifting.add(id(e))  # known when every possibility is (over_branches)
            try:
                return self.over_branches(e, lambda: self.cond(e), known=True)
            finally:
                self.lifting.discard(id(e))
        if isinstance(e, n.IsKnown) and self.any_interval(e.subject):
            found = self.interval(e.subject)
            assert found is not None
            return found.known()
        if isinstance(e, n.IsKnown):
            a = self.value(e.subject)
            return exp.Not(this=is_null(a))
        if isinstance(e, n.CompareRef) and self.any_interval(e.left):
            x = self.operand(e.left)
            limit = self.column(limit_key(e.left.name, e.limit, e.factor.value))
            bound = iv.Iv.of(limit)
            return self.let(iv.guard(iv.compare(e.op, x, bound), x, bound))
        if isinstance(e, n.CompareRef):
            assert isinstance(e.left, n.Name)
            a = self.let(self.value(e.left))
            # k x the limit as the Python evaluator compares it (limit_products)
            limit = self.column(limit_key(e.left.name, e.limit, e.factor.value))
            return guard(compare_sql(e.op, a, limit), a, limit)
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
                is_null(a), exp.and_(is_null(lo), is_null(hi), copy=False), copy=False
            )
            test = exp.and_(
                paren(
                    exp.or_(is_null(lo), exp.LTE(this=lo.copy(), expression=a.copy()), copy=False)
                ),
                paren(
                    exp.or_(is_null(hi), exp.LTE(this=a.copy(), expression=hi.copy()), copy=False)
                ),
                copy=False,
            )
            return case(unknown, null(), test)
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
            return guard(test, d, a)
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
        if op in ("=", "!=") and all(isinstance(x, exp.Literal) and x.is_string for x in (a, b)):
            # two categories (the arm a per-arm verdict binds against a named arm)
            return exp.Boolean(this=(a.this == b.this) == (op == "="))
        return guard(compare_sql(op, a, b), a, b)
