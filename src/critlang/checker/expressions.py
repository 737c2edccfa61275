"""Expressions pass: types of every expression, calls, quantifiers and reference ranges."""

from __future__ import annotations

from fractions import Fraction

from .. import nodes as n
from ..functions import MATH
from ..typesys import (
    NUMERIC,
    BoolT,
    DateT,
    EnumT,
    ErrorT,
    IntT,
    ListT,
    NumberT,
    QuantT,
    ScaleT,
    Type,
    same_kind,
)
from ..units import (
    mass_substance_pair,
)
from .result import (
    BUILTINS,
    Ref,
    _did_you_mean,
)


class ExpressionsPass:
    def expr(self, e: n.Expr, scope: dict, expected: Type | None = None) -> Type:
        return self.record(e, self._expr(e, scope, expected))

    def _expr(self, e: n.Expr, scope: dict, expected: Type | None) -> Type:
        if isinstance(e, n.NumberLit):
            return NumberT()
        if isinstance(e, n.QuantityLit):
            u = self.unit(e.unit, e.span)
            return QuantT(u) if u else ErrorT()
        if isinstance(e, n.DualQuantityLit):
            a = self.expr(e.primary, scope)
            b = self.expr(e.secondary, scope)
            if isinstance(expected, QuantT):
                pass  # in a comparison each part is checked against the subject (see `dual`)
            elif isinstance(a, QuantT) and isinstance(b, QuantT):
                if not a.unit.same_dimension(b.unit) and not mass_substance_pair(a.unit, b.unit):
                    self.dimension_error(e.secondary.span, a.unit, b.unit, "the first unit")
            return a
        if isinstance(e, n.PressureLit):
            return self.pressure_literal(e)
        if isinstance(e, n.DateOf):
            return self.date_of(e)
        if isinstance(e, n.DateLit):
            if e.value.year == 1:
                return self.err("E006", "this is not a calendar date", e.span)
            return DateT()
        if isinstance(e, n.BoolLit):
            return BoolT()
        if isinstance(e, n.Name):
            return self.lookup(e, scope, expected)
        if isinstance(e, n.Call):
            return self.call(e, scope)
        if isinstance(e, n.Attribute):
            part = self.pressure_part(e, scope)
            if part is not None:
                return part
            return self.err(
                "E103",
                f"`{e.obj}.{e.attr}`: fields are reached inside a list condition",
                e.span,
                hint=f"write e.g. `any {e.obj} with ({e.attr} ...)`",
            )
        if isinstance(e, n.Magnitude):
            t = self.expr(e.expr, scope)
            u = self.unit(e.unit, e.span)
            if isinstance(t, QuantT) and u:
                if not t.unit.same_dimension(u):
                    self.dimension_error(e.span, t.unit, u, f"`{e.unit}`")
                return NumberT()
            if isinstance(t, NUMERIC):
                return self.err(
                    "E201",
                    "this is already a plain number; `in UNIT` takes the number out of a quantity",
                    e.expr.span,
                )
            if not isinstance(t, ErrorT) and u:
                return self.err("E201", f"{t.describe()} has no unit", e.expr.span)
            return NumberT() if u else ErrorT()
        if isinstance(e, n.WithUnit):
            t = self.expr(e.expr, scope)
            u = self.unit(e.unit, e.span)
            if isinstance(t, QuantT):
                return self.err(
                    "E306",
                    f"this already has a unit ({t.unit.text}); `as UNIT` gives a plain number one",
                    e.expr.span,
                    hint=f"take its number first: `({'...'} in {t.unit.text})`",
                )
            if not isinstance(t, (*NUMERIC, ErrorT)):
                return self.err("E201", f"{t.describe()} cannot be given a unit", e.expr.span)
            return QuantT(u) if u else ErrorT()
        if isinstance(e, n.Conditional):
            self.boolean(e.cond, scope, "the condition after `if`")
            a = self.expr(e.then, scope)
            b = self.expr(e.otherwise, scope)
            if not same_kind(a, b):
                return self.err(
                    "E205",
                    f"the two branches differ: {a.describe()} and {b.describe()}",
                    e.span,
                )
            return a if not isinstance(a, ErrorT) else b
        if isinstance(e, n.FirstAvailable):
            ts = [self.expr(o, scope) for o in e.options]
            for o, t in zip(e.options[1:], ts[1:], strict=True):
                if not same_kind(ts[0], t):
                    self.err(
                        "E205",
                        f"every option must be the same kind of value: {ts[0].describe()}, "
                        f"but this is {t.describe()}",
                        o.span,
                    )
            return ts[0]
        if isinstance(e, n.Quantified):
            return self.quantified(e, scope)
        if isinstance(e, n.Not):
            self.boolean(e.operand, scope, "the operand of `not`")
            return BoolT()
        if isinstance(e, (n.And, n.Or)):
            # a run of the same operator, walked along its left spine without recursion:
            # a rule may chain hundreds of alternatives
            word = "and" if isinstance(e, n.And) else "or"
            spine = [e]
            while type(spine[-1].left) is type(e):
                spine.append(spine[-1].left)  # type: ignore[arg-type]
            self.boolean(spine[-1].left, scope, f"each side of `{word}`")
            for node in reversed(spine):
                self.boolean(node.right, scope, f"each side of `{word}`")
                if node is not e:
                    self.record(node, BoolT())
            return BoolT()
        if isinstance(e, n.Unless):
            self.boolean(e.rule, scope, "the rule before `unless`")
            self.boolean(e.exception, scope, "the exception after `unless`")
            return BoolT()
        if isinstance(e, n.Implies):
            return self.implies(e, scope)
        if isinstance(e, n.Compare):
            if self.pressure_compare(e, scope):
                return BoolT()
            if self.bare_division(e):
                self.expr(e.left, scope)
                self.expr(e.right, scope)
                return BoolT()
            self.compare(e.op, e.left, e.right, e.span, scope)
            self.number_threshold_warning(e, getattr(self, "current_criterion", None))
            return BoolT()
        if isinstance(e, n.CompareRef):
            self.reference_range(e.left, scope, f"{e.limit}")
            return BoolT()
        if isinstance(e, n.InNormalRange):
            self.reference_range(e.subject, scope, "the normal range")
            return BoolT()
        if isinstance(e, n.Between):
            self.compare(">=", e.subject, e.low, e.span, scope)
            self.compare("<=", e.subject, e.high, e.span, scope, check_subject=False)
            lo, hi = self.r.types.get(id(e.low)), self.r.types.get(id(e.high))
            if (
                isinstance(e.low, (n.QuantityLit, n.NumberLit))
                and isinstance(e.high, (n.QuantityLit, n.NumberLit))
                and isinstance(lo, (QuantT, NumberT))
                and isinstance(hi, (QuantT, NumberT))
                and same_kind(lo, hi)
                and self.magnitude(e.low, lo) > self.magnitude(e.high, hi)
            ):
                self.err("E402", "the range is empty: the low end is above the high end", e.span)
            return BoolT()
        if isinstance(e, n.Member):
            t = self.expr(e.subject, scope)
            if isinstance(t, (EnumT, ScaleT)):
                for m in e.members:
                    if m not in t.positions:
                        self.err(
                            "E102",
                            f"`{m}` is not one of {', '.join(t.members)}",
                            e.span,
                            hint=_did_you_mean(m, t.members),
                        )
            elif not isinstance(t, ErrorT):
                self.err(
                    "E202",
                    f"`in {{...}}` needs a category, but this is {t.describe()}",
                    e.subject.span,
                )
            return BoolT()
        if isinstance(e, n.IsKnown):
            self.expr(e.subject, scope)
            return BoolT()
        if isinstance(e, n.Window):
            self.date_operand(e.subject, scope)
            self.date_operand(e.anchor, scope)
            self.duration(e.duration)  # forms.py: a duration, whole months if calendar
            return BoolT()
        if isinstance(e, n.DateBound):
            return self.date_bound(e, scope)
        if isinstance(e, n.WindowBetween):
            return self.window_between(e, scope)
        if isinstance(e, n.Period):
            return self.period(e, scope)
        if isinstance(e, n.Order):
            self.date_operand(e.subject, scope)
            self.date_operand(e.anchor, scope)
            return BoolT()
        if isinstance(e, n.Arith):
            return self.arith(e, scope)
        if isinstance(e, n.Neg):
            t = self.expr(e.operand, scope)
            if not isinstance(t, (*NUMERIC, QuantT, ErrorT)):
                return self.err("E201", f"cannot negate {t.describe()}", e.span)
            return NumberT() if isinstance(t, IntT) else t
        raise AssertionError(type(e))

    def magnitude(self, e: n.Expr, t: Type) -> Fraction:
        """Exact value of a literal in base units (for range sanity checks)."""
        if isinstance(e, n.QuantityLit) and isinstance(t, QuantT):
            return e.value * t.unit.factor
        assert isinstance(e, n.NumberLit)
        return e.value

    def date_operand(self, e: n.Expr, scope: dict) -> None:
        t = self.expr(e, scope)
        if not isinstance(t, (DateT, ErrorT)):
            self.err(
                "E201",
                f"a time window needs dates on both sides, but this is {t.describe()}",
                e.span,
                label="not a date",
            )

    def call(self, e: n.Call, scope: dict) -> Type:
        if e.func in MATH:
            return self.math_call(e, scope)  # type: ignore[attr-defined,no-any-return]
        if e.func in BUILTINS:
            params, result, _ = BUILTINS[e.func]
        elif e.func in self.r.defines and self.r.defines[e.func].params is not None:
            d = self.r.defines[e.func]
            self.refs_out.add(e.func)
            params = tuple(self.type_of(p.type) for p in d.params or ())
            result = self.define_type(d)
        elif e.func in self.r.defines:
            for a in e.args:
                self.expr(a, scope)
            return self.err("E104", f"`{e.func}` is a value, not a function", e.span)
        else:
            for a in e.args:
                self.expr(a, scope)
            return self.err(
                "E101",
                f"unknown function `{e.func}`",
                e.span,
                hint=_did_you_mean(
                    e.func,
                    [*BUILTINS, *MATH, *(k for k, d in self.r.defines.items() if d.params)],
                ),
            )
        if len(e.args) != len(params):
            for a in e.args:
                self.expr(a, scope)
            return self.err(
                "E104",
                f"`{e.func}` takes {len(params)} value(s), {len(e.args)} given",
                e.span,
            )
        for a, p in zip(e.args, params, strict=True):
            t = self.expr(a, scope, expected=p)
            if not same_kind(p, t):
                if isinstance(p, QuantT) and isinstance(t, QuantT):
                    self.dimension_error(a.span, p.unit, t.unit, "the parameter")
                else:
                    self.err(
                        "E201",
                        f"`{e.func}` expects {p.describe()} here, not {t.describe()}",
                        a.span,
                    )
        return result

    def quantified(self, e: n.Quantified, scope: dict) -> Type:
        lst = self.lookup(n.Name(name=e.list_name, span=e.list_span), scope, None)
        inner = dict(scope)
        if isinstance(lst, ListT):
            for fname, ftype in lst.fields:
                inner[fname] = (Ref("field", fname), ftype)
        elif not isinstance(lst, ErrorT):
            self.err(
                "E203",
                f"`{e.list_name}` is {lst.describe()}, not a list",
                e.list_span,
                hint="`any/all/no/majority of LIST with (...)` needs a fact declared "
                "as `list of {...}`",
            )
        if e.quantifier == "at_least" and e.count is not None and e.count < 1:
            self.err("E401", "`at least` needs a count of 1 or more", e.span)
        self.boolean(e.body, inner, "the condition in `with (...)`")
        return BoolT()

    def reference_range(self, e: n.Expr, scope: dict, what: str) -> None:
        t = self.expr(e, scope)
        if isinstance(e, n.Name) and e.name in self.r.facts:
            if not self.r.facts[e.name].has_reference_range:
                self.err(
                    "E204",
                    f"`{e.name}` has no reference range, so {what} is not defined for it",
                    e.span,
                    hint="add `reference range reported` (the lab's range comes with each value) "
                    + (
                        "to the fact (a plain number has no default range)"
                        if isinstance(t, NumberT)
                        else "or `reference range LOW to HIGH` to the fact"
                    ),
                )
        elif not isinstance(t, ErrorT):
            self.err(
                "E204",
                f"{what} needs a lab fact with a reference range",
                e.span,
            )
