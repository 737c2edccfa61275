"""Protocol rules as z3 formulas, for proving what an amendment changes.

Two versions are encoded over one set of variables, so the solver can ask whether any
patient passes a criterion (or the whole protocol) under one version and not the other.
The encoding is of complete records (every fact recorded), the population an amendment
is judged on; `first available` and `is known` get a "recorded" flag per fact.

What is exact, what is abstracted (sound: an abstraction only adds behaviours, so
"no patient differs" stays a proof; a found difference is a candidate that the caller
turns into a record and re-checks with the compiled evaluators):
- exact: comparisons, ranges, categories, grades, yes/no facts, and/or/not/unless,
  linear arithmetic, unit conversions (exact rationals in base units), fixed-length
  windows, calendar windows from the enrollment date (computed exactly), ages
  (completed years as an integer), reference-range limits;
- bounded: lists hold at most LIST_BOUND items, so a proof over list conditions covers
  lists up to that length;
- abstracted: non-linear formulas (products or quotients of two facts, e.g.
  Cockcroft-Gault) become one free value per formula (the same formula in both versions
  gets the same value), and calendar windows from a date fact or another anchor become a
  free date within the window's possible lengths (28 to 31 days a month).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import z3

from . import nodes as n
from .backends.runtime import add_months
from .checker import ENROLLMENT, CheckResult, Ref
from .data.records import fact_types
from .typesys import BoolT, DateT, EnumT, IntT, ListT, NumberT, QuantT, ScaleT, Type
from .units import CALENDAR, conversion_factor, parse_unit

LIST_BOUND = 3
YEAR_RANGE = 120  # dates are kept within this many years of the enrollment date


@dataclass
class Space:
    """The shared variables of both versions, with what each one stands for."""

    as_of: dt.date
    types: dict[str, Type] = field(default_factory=dict)  # fact -> kind (newest version)
    vars: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)  # enum/scale fact -> names
    constraints: list[Any] = field(default_factory=list)
    abstracted: set[str] = field(default_factory=set)  # what was abstracted, for the report
    ages: dict[tuple[Any, ...], str] = field(default_factory=dict)  # age var -> birth-date fact
    bounded: bool = False  # a list condition was encoded

    @property
    def today(self) -> int:
        return self.as_of.toordinal()


class Encoder:
    """Encodes one checked protocol into a shared Space."""

    def __init__(self, checked: CheckResult, space: Space) -> None:
        self.c = checked
        self.s = space
        for name, t in fact_types(checked).items():
            space.types.setdefault(name, t)
            if isinstance(t, (EnumT, ScaleT)):
                known = space.members.setdefault(name, [])
                have = set(known)
                known += [m for m in t.members if m not in have and not have.add(m)]

    # ------------------------------------------------------------------ variables
    def var(self, key: tuple[Any, ...], make: Any) -> Any:
        if key not in self.s.vars:
            self.s.vars[key] = make()
        return self.s.vars[key]

    def date_var(self, key: tuple[Any, ...]) -> Any:
        def make() -> Any:
            v = z3.Int("|" + ":".join(map(str, key)) + "|")
            # within the calendar (0001-01-01 .. 9999-12-31): a witness is a real date
            low = max(1, self.s.today - 366 * YEAR_RANGE)
            high = min(dt.date.max.toordinal(), self.s.today + 366 * 5)
            self.s.constraints += [v >= low, v <= high]
            return v

        return self.var(key, make)

    def scalar_var(self, key: tuple[Any, ...], t: Type, members_of: str | None = None) -> Any:
        label = "|" + ":".join(map(str, key)) + "|"
        if isinstance(t, (QuantT, NumberT)):
            return self.var(key, lambda: z3.Real(label))
        if isinstance(t, BoolT):
            return self.var(key, lambda: z3.Bool(label))
        if isinstance(t, DateT):
            return self.date_var(key)
        if isinstance(t, IntT):

            def make_int() -> Any:
                v = z3.Int(label)
                self.s.constraints += [v >= t.low, v <= t.high]
                return v

            return self.var(key, make_int)
        if isinstance(t, (EnumT, ScaleT)):
            names = self.s.members.setdefault(members_of or key[-1], list(t.members))
            have = set(names)
            names += [m for m in t.members if m not in have and not have.add(m)]

            def make_enum() -> Any:
                v = z3.Int(label)
                self.s.constraints += [v >= 0, v < len(names)]
                return v

            return self.var(key, make_enum)
        raise AssertionError(t)

    def fact(self, name: str) -> Any:
        t = self.s.types[name]
        if isinstance(t, ListT):
            self.s.bounded = True
            slots = []
            for i in range(LIST_BOUND):
                label = f"|{name}[{i}]|"
                present = self.var(("list", name, i, "present"), lambda label=label: z3.Bool(label))
                fields = {
                    fname: self.scalar_var(("list", name, i, fname), ft, f"{name}.{fname}")
                    for fname, ft in t.fields
                }
                slots.append((present, fields))
            return slots
        return self.scalar_var(("fact", name), t, name)

    def known(self, name: str) -> Any:
        return self.var(("known", name), lambda: z3.Bool(f"|known:{name}|"))

    # ------------------------------------------------------------------ values
    def member_index(self, fact_key: str, member: str) -> int:
        names = self.s.members.setdefault(fact_key, [])
        if member not in names:
            names.append(member)
        return names.index(member)

    def value(self, e: n.Expr, env: dict[str, Any]) -> Any:
        if isinstance(e, n.DualQuantityLit):
            e = e.primary
        if isinstance(e, n.NumberLit):
            return z3.RealVal(str(e.value))
        if isinstance(e, n.QuantityLit):
            u = parse_unit(e.unit)
            return z3.RealVal(str(e.value * u.factor))
        if isinstance(e, n.DateLit):
            return z3.IntVal(e.value.toordinal())
        if isinstance(e, n.BoolLit):
            return z3.BoolVal(e.value)
        if isinstance(e, n.Name):
            r = self.c.refs[id(e)]
            if r.kind in ("param", "field"):
                return env[r.name]
            if r.kind in ("fact", "arm"):
                return self.fact_value(r.name)
            if r.kind == "anchor":
                if r.name == ENROLLMENT:
                    return z3.IntVal(self.s.today)
                return self.date_var(("anchor", r.name))
            if r.kind == "define":
                return self.value(self.c.defines[r.name].body, {})
            if r.kind == "assume":
                return self.value(self.c.assumed[r.name].value, {})
            if r.kind == "member":
                raise AssertionError("members are encoded by their comparison")
        if isinstance(e, n.Call):
            if e.func == "elapsed_years":
                return self.age(e)
            d = self.c.defines[e.func]
            assert d.params is not None
            args: dict[str, Any] = {}
            for a, p in zip(e.args, d.params, strict=True):
                args[p.name] = self.value(a, env)
                if isinstance(a, n.Name) and self.c.refs[id(a)].kind in ("fact", "arm"):
                    args["__key__" + p.name] = a.name  # whose categories a parameter has
            return self.value(d.body, args)
        if isinstance(e, n.Magnitude):
            inner = self.value(e.expr, env)
            return inner / z3.RealVal(str(parse_unit(e.unit).factor))
        if isinstance(e, n.WithUnit):
            inner = self.value(e.expr, env)
            return inner * z3.RealVal(str(parse_unit(e.unit).factor))
        if isinstance(e, n.Arith):
            return self.arith(e, env)
        if isinstance(e, n.Neg):
            return -self.value(e.operand, env)
        if isinstance(e, n.Conditional):
            return z3.If(
                self.cond(e.cond, env), self.value(e.then, env), self.value(e.otherwise, env)
            )
        if isinstance(e, n.FirstAvailable):
            options = [self.value(o, env) for o in e.options]
            out = options[-1]
            for option, expr_ in zip(reversed(e.options[:-1]), reversed(options[:-1]), strict=True):
                out = z3.If(self.is_known(option), expr_, out)
            return out
        raise AssertionError(type(e))

    def fact_value(self, name: str) -> Any:
        return self.fact(name)  # quantities are kept in base units

    def is_known(self, e: n.Expr) -> Any:
        if isinstance(e, n.Name) and self.c.refs.get(id(e), Ref("", "")).kind == "fact":
            return self.known(e.name)
        return z3.BoolVal(True)

    def age(self, e: n.Call) -> Any:
        """Completed years, as a whole number of years, in months (the calendar base)."""
        key = ("age", repr(e.args))
        years = self.var(key, lambda: z3.Int(f"|age:{len(self.s.vars)}|"))
        first = e.args[0]
        if isinstance(first, n.Name) and self.c.refs.get(id(first), Ref("", "")).kind == "fact":
            self.s.ages[key] = first.name
        self.s.constraints += [years >= 0, years <= YEAR_RANGE]
        return z3.ToReal(years) * 12

    def arith(self, e: n.Arith, env: dict[str, Any]) -> Any:
        a, b = self.value(e.left, env), self.value(e.right, env)
        if e.op == "+":
            return a + b
        if e.op == "-":
            return a - b
        constant_a = z3.is_rational_value(z3.simplify(a))
        constant_b = z3.is_rational_value(z3.simplify(b))
        if e.op == "*" and (constant_a or constant_b):
            return a * b
        if e.op == "/" and constant_b:
            return a / b
        # a product or quotient of two facts: one free value per formula
        key = ("formula", repr(e))
        self.s.abstracted.add("non-linear formula")
        return self.var(key, lambda: z3.Real(f"|formula:{len(self.s.vars)}|"))

    # ------------------------------------------------------------------ conditions
    def cond(self, e: n.Expr, env: dict[str, Any]) -> Any:
        if isinstance(e, n.Not):
            return z3.Not(self.cond(e.operand, env))
        if isinstance(e, n.And):
            return z3.And(self.cond(e.left, env), self.cond(e.right, env))
        if isinstance(e, n.Or):
            return z3.Or(self.cond(e.left, env), self.cond(e.right, env))
        if isinstance(e, n.Unless):
            return z3.And(self.cond(e.rule, env), z3.Not(self.cond(e.exception, env)))
        if isinstance(e, n.Compare):
            return self.compare(e.op, e.left, e.right, env)
        if isinstance(e, n.Between):
            return z3.And(
                self.compare(">=", e.subject, e.low, env),
                self.compare("<=", e.subject, e.high, env),
            )
        if isinstance(e, n.Member):
            key, v = self.category(e.subject, env)
            test = z3.Or(*[v == self.member_index(key, m) for m in e.members])
            return z3.Not(test) if e.negated else test
        if isinstance(e, n.IsKnown):
            return self.is_known(e.subject)
        if isinstance(e, n.CompareRef):
            assert isinstance(e.left, n.Name)
            x = self.value(e.left, env)
            limit = self.limit(e.left.name, e.limit)
            return _op(e.op, x, z3.RealVal(str(e.factor.value)) * limit)
        if isinstance(e, n.InNormalRange):
            assert isinstance(e.subject, n.Name)
            x = self.value(e.subject, env)
            return z3.And(
                self.limit(e.subject.name, "LLN") <= x, x <= self.limit(e.subject.name, "ULN")
            )
        if isinstance(e, n.Window):
            return self.window(e, env)
        if isinstance(e, n.Order):
            d, a = self.value(e.subject, env), self.value(e.anchor, env)
            return d < a if e.direction == "before" else d > a
        if isinstance(e, n.Quantified):
            return self.quantified(e, env)
        if isinstance(e, n.Name):
            return self.value(e, env)
        if isinstance(e, n.BoolLit):
            return z3.BoolVal(e.value)
        return self.value(e, env)

    def limit(self, name: str, which: str) -> Any:
        key = ("limit", name, which)
        low = self.var(("limit", name, "LLN"), lambda: z3.Real(f"|{name}#low|"))
        high = self.var(("limit", name, "ULN"), lambda: z3.Real(f"|{name}#high|"))
        self.s.constraints += [low >= 0, low <= high]
        return self.s.vars[key]

    def category(self, e: n.Expr, env: dict[str, Any]) -> tuple[str, Any]:
        """(members key, variable) of a category- or grade-valued expression."""
        r = self.c.refs.get(id(e)) if isinstance(e, n.Name) else None
        if r is not None and r.kind in ("fact", "arm"):
            return r.name, self.fact_value(r.name)
        if r is not None and r.kind == "field":
            return env["__list__"] + "." + r.name, env[r.name]
        if r is not None and r.kind == "param" and "__key__" + r.name in env:
            return env["__key__" + r.name], env[r.name]
        raise AssertionError("categories come from facts or list fields")

    def compare(self, op: str, left: n.Expr, right: n.Expr, env: dict[str, Any]) -> Any:
        lt = self.c.types.get(id(left))
        if isinstance(lt, (EnumT, ScaleT)) and isinstance(right, n.Name):
            key, v = self.category(left, env)
            rr = self.c.refs.get(id(right))
            if rr is not None and rr.kind == "member":
                idx = self.member_index(key, right.name)
                if isinstance(lt, ScaleT):
                    return _op(op, v, _scale_index(self.s, key, right.name, idx))
                return _op(op, v, idx)
        a, b = self.value(left, env), self.value(right, env)
        fact = _subject_fact(self.c, left)
        if isinstance(lt, QuantT) and fact is not None:
            rt = self.c.types.get(id(right))
            molar = self.c.facts[fact].molar_mass
            if isinstance(rt, QuantT) and rt.unit.dims != lt.unit.dims and molar is not None:
                # threshold in the other dimension: through the molar mass, exactly
                k = conversion_factor(rt.unit, lt.unit, molar)
                assert k is not None
                b = b * z3.RealVal(str(k * lt.unit.factor / rt.unit.factor))
        return _op(op, a, b)

    def window(self, e: n.Window, env: dict[str, Any]) -> Any:
        d, a = self.value(e.subject, env), self.value(e.anchor, env)
        unit = parse_unit(e.duration.unit)
        amount = e.duration.value * unit.factor
        sign = -1 if e.direction == "before" else 1
        if unit.dims == CALENDAR and amount.denominator == 1:
            months = sign * int(amount)
            if z3.is_int_value(z3.simplify(a)):
                edge = z3.IntVal(add_months(z3.simplify(a).as_long(), months))
            else:
                key = ("edge", str(a), months)
                self.s.abstracted.add("calendar window from a variable date")

                def make() -> Any:
                    v = z3.Int(f"|edge:{len(self.s.vars)}|")
                    lo, hi = (
                        (31 * months, 28 * months) if months < 0 else (28 * months, 31 * months)
                    )
                    self.s.constraints += [v >= a + lo, v <= a + hi]
                    return v

                edge = self.var(key, make)
        else:
            days = amount / 86400 if unit.dims != CALENDAR else amount * Fraction(30436875, 10**6)
            edge = a + z3.RealVal(str(sign * days))
        if e.direction == "before":
            return {
                "within": z3.And(edge <= d, d <= a),
                "more": d < edge,
                "less": z3.And(edge < d, d <= a),
            }[e.kind]
        return {
            "within": z3.And(a <= d, d <= edge),
            "more": d > edge,
            "less": z3.And(a <= d, d < edge),
        }[e.kind]

    def quantified(self, e: n.Quantified, env: dict[str, Any]) -> Any:
        slots = self.fact(e.list_name)
        hits, present = [], []
        for is_present, fields in slots:
            inner = dict(env)
            inner.update(fields)
            inner["__list__"] = e.list_name
            body = self.cond(e.body, inner)
            hits.append(z3.And(is_present, body))
            present.append(is_present)
        count = z3.Sum(*[z3.If(h, 1, 0) for h in hits])
        total = z3.Sum(*[z3.If(p, 1, 0) for p in present])
        q = e.quantifier
        if q == "any":
            return z3.Or(*hits)
        if q == "no":
            return z3.Not(z3.Or(*hits))
        if q == "all":
            return z3.And(*[z3.Implies(p, h) for p, h in zip(present, hits, strict=True)])
        if q == "majority":
            return 2 * count > total
        return count >= (e.count or 0)

    # ------------------------------------------------------------------ criteria
    def passes(self, c: n.Criterion, section: str) -> Any:
        """The patient clears this criterion (an inclusion met, an exclusion not met)."""
        assert c.rule is not None
        rule = self.cond(c.rule, {})
        applies = self.cond(c.applies, {}) if c.applies is not None else z3.BoolVal(True)
        if section == "inclusion":
            return z3.Implies(applies, rule)
        return z3.Not(z3.And(applies, rule))

    def eligible(self) -> Any:
        return z3.And(*[self.passes(c, kind) for kind, c in self.c.protocol.criteria])


def _op(op: str, a: Any, b: Any) -> Any:
    return {
        "<": lambda: a < b,
        "<=": lambda: a <= b,
        ">": lambda: a > b,
        ">=": lambda: a >= b,
        "=": lambda: a == b,
        "!=": lambda: a != b,
    }[op]()


def _scale_index(space: Space, key: str, member: str, idx: int) -> int:
    """Grades compare by their position in the scale (the newest version's order)."""
    t = space.types.get(key)
    if isinstance(t, ScaleT) and member in t.positions:
        return t.positions[member]
    return idx


def _subject_fact(checked: CheckResult, e: n.Expr) -> str | None:
    if isinstance(e, n.Name) and checked.refs.get(id(e), Ref("", "")).kind == "fact":
        return e.name
    return None
