"""Protocol rules as three-valued z3 formulas.

Every fact may be unknown: a fact is a pair (value, known flag), a list fact has a known
flag, items present or not, and each item's fields their own known flags. A condition is
a pair of z3 booleans (t, f): "definitely met", "definitely not met"; neither is unknown.
The pairs follow the compiled evaluator (backends/python.py) operator by operator:
Kleene and/or/not/unless, a comparison unknown when an operand is, `first available`
taking the first known option, a conditional unknown when its condition is, list
quantifiers counting met / unknown / not met items. verdict.py builds the criterion
statuses (with "not applicable") and the verdict, arms included, on top.

What is exact and what is abstracted (an abstraction only adds behaviours, so "no
patient differs" stays a proof; a difference found through one is a candidate that the
caller turns into a record and re-checks with the compiled evaluator):
- exact: comparisons, ranges, categories, grades, yes/no facts, linear arithmetic, unit
  conversions (exact rationals in base units), fixed-length windows, calendar windows
  (a variable date is tied to its year, month and day, and the edge computed as
  runtime.add_months does), ages (completed years), reference-range limits;
- bounded: lists hold at most LIST_BOUND items;
- abstracted: a product or quotient of two unknown values (Cockcroft-Gault) is an
  uninterpreted function of its operands (equal inputs, equal outputs; the same formula
  means the same in both versions). A formula's final rounding to 12
  significant digits (runtime.sig) is not modelled: witnesses are re-checked.

Definitions are encoded once per name (a DAG, not a tree: `define d1 = d0 + d0` twenty
levels deep stays linear), functions once per distinct argument tuple.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import z3

from .. import nodes as n
from ..backends.runtime import add_months
from ..checker import ENROLLMENT, CheckResult, Ref
from ..data.records import fact_types
from ..typesys import (
    BoolT,
    DateT,
    EnumT,
    IntT,
    ListT,
    NumberT,
    PressureT,
    QuantT,
    ScaleT,
    Type,
)
from ..units import CALENDAR, conversion_factor, parse_unit

LIST_BOUND = 3
YEAR_RANGE = 120  # dates are kept within this many years of the enrollment date

TRUE = z3.BoolVal(True)
FALSE = z3.BoolVal(False)


@dataclass(frozen=True)
class TV:
    """A three-valued condition: t (definitely met), f (definitely not met)."""

    t: Any
    f: Any

    @property
    def unknown(self) -> Any:
        return z3.And(z3.Not(self.t), z3.Not(self.f))

    def negate(self) -> TV:
        return TV(self.f, self.t)


@dataclass(frozen=True)
class Val:
    """A value and whether it is known (None in the compiled code when not).

    A conditional whose condition is unknown has several possible values (runtime.Alt):
    `alts` lists them as (guard, value), a guard saying the possibility is open; `v` is
    then the first open one. `k` is "every possibility known" (runtime.choice)."""

    v: Any
    k: Any
    alts: tuple[tuple[Any, Any], ...] = ()

    def options(self) -> tuple[tuple[Any, Any], ...]:
        return self.alts or ((TRUE, self.v),)


MAX_ALTERNATIVES = 16  # beyond this a rule is reported as not modelled


def several(k: Any, alts: list[tuple[Any, Any]]) -> Val:
    """A value from its possibilities (one possibility: a plain value)."""
    if len(alts) == 1 and z3.is_true(z3.simplify(alts[0][0])):
        return Val(alts[0][1], k)
    if len(alts) > MAX_ALTERNATIVES:
        raise Unsupported(f"more than {MAX_ALTERNATIVES} possible values of a conditional")
    first = alts[-1][1]
    for g, v in reversed(alts[:-1]):
        first = z3.If(g, v, first)
    return Val(first, k, tuple(alts))


def plain(x: Val) -> Val:
    """One value where one is needed (runtime.decided): possibilities that differ are
    unknown."""
    if not x.alts:
        return x
    agree = [
        z3.Implies(z3.And(g1, g2), v1 == v2)
        for i, (g1, v1) in enumerate(x.alts)
        for g2, v2 in x.alts[i + 1 :]
    ]
    return Val(x.v, z3.And(x.k, *agree))


def tv_of(x: Val) -> TV:
    x = plain(x)
    return TV(z3.And(x.k, x.v), z3.And(x.k, z3.Not(x.v)))


def val_of(c: TV) -> Val:
    return Val(c.t, z3.Or(c.t, c.f))


def kleene_and(a: TV, b: TV) -> TV:
    return TV(z3.And(a.t, b.t), z3.Or(a.f, b.f))


def kleene_or(a: TV, b: TV) -> TV:
    return TV(z3.Or(a.t, b.t), z3.And(a.f, b.f))


class Unsupported(Exception):
    """A form the encoding does not model; the caller abstracts the rule and says so."""


@dataclass
class Space:
    """The shared variables of every encoded version, with what each one stands for."""

    as_of: dt.date
    types: dict[str, Type] = field(default_factory=dict)  # fact -> kind (newest version)
    vars: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)  # enum/scale fact -> names
    constraints: list[Any] = field(default_factory=list)
    abstracted: set[str] = field(default_factory=set)  # what was abstracted, for the report
    # rules the encoding could not model: (criterion or rule text, why)
    unsupported: list[tuple[str, str]] = field(default_factory=list)
    # age variable key -> (birth-date fact, the end date's value)
    ages: dict[tuple[Any, ...], tuple[str, Any]] = field(default_factory=dict)
    bounded: bool = False  # a list condition was encoded
    # fact -> thresholds (in the fact's unit) the protocols compare it with
    thresholds: dict[str, set[Fraction]] = field(default_factory=dict)
    default_ranges: set[str] = field(default_factory=set)  # facts with a default ref. range

    @property
    def today(self) -> int:
        return self.as_of.toordinal()

    def known(self, key: str) -> Any:
        """The known flag of a fact, a list, an anchor ("@name") or a limit ("x#low")."""
        if key == "@" + ENROLLMENT:
            return TRUE
        if key not in self._known_cache:
            v = z3.Bool(f"|known:{key}|")
            self.vars[("known", key)] = v
            self._known_cache[key] = v
        return self._known_cache[key]

    def __post_init__(self) -> None:
        self._known_cache: dict[str, Any] = {}


class Encoder:
    """Encodes one checked protocol into a shared Space."""

    def __init__(self, checked: CheckResult, space: Space, arm: int | None = None) -> None:
        self.c = checked
        self.s = space
        self.arm = arm  # evaluate as randomised to this arm (index), None: as recorded
        self.defines: dict[str, Val] = {}
        # id(node) -> the node encoded in its place (lint: a clause taken out)
        self.replace: dict[int, n.Expr] = {}
        self.memo: dict[int, TV] = {}  # id(condition) -> its encoding, outside lists
        self.calls: dict[tuple[Any, ...], Val] = {}
        for name, t in fact_types(checked).items():
            space.types.setdefault(name, t)
            if isinstance(t, (EnumT, ScaleT)):
                known = space.members.setdefault(name, [])
                have = set(known)  # linear in the members (enums may be large)
                known += [m for m in t.members if m not in have and not have.add(m)]
        for name, info in checked.facts.items():
            if info.node.option("refrange") is not None:
                space.default_ranges.add(name)

    def for_arm(self, arm: int) -> Encoder:
        return Encoder(self.c, self.s, arm)

    # ------------------------------------------------------------------ variables
    def var(self, key: tuple[Any, ...], make: Any) -> Any:
        if key not in self.s.vars:
            self.s.vars[key] = make()
        return self.s.vars[key]

    def label(self, key: tuple[Any, ...]) -> str:
        return "|" + ":".join(map(str, key)) + "|"

    def date_var(self, key: tuple[Any, ...]) -> Any:
        def make() -> Any:
            v = z3.Int(self.label(key))
            # within the calendar (0001-01-01 .. 9999-12-31): a witness is a real date
            low = max(1, self.s.today - 366 * YEAR_RANGE)
            high = min(dt.date.max.toordinal(), self.s.today + 366 * 5)
            self.s.constraints += [v >= low, v <= high]
            return v

        return self.var(key, make)

    def scalar_var(self, key: tuple[Any, ...], t: Type, members_of: str) -> Any:
        label = self.label(key)
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
            names = self.s.members.setdefault(members_of, list(t.members))
            have = set(names)
            names += [m for m in t.members if m not in have and not have.add(m)]

            def make_enum() -> Any:
                v = z3.Int(label)
                self.s.constraints += [v >= 0, v < len(names)]
                return v

            return self.var(key, make_enum)
        raise Unsupported(f"a value of kind {t.describe()}")

    def fact(self, name: str) -> Val:
        if name == "arm" and self.arm is not None:
            return Val(z3.IntVal(self.arm), TRUE)
        t = self.s.types[name]
        if isinstance(t, ListT):
            raise Unsupported(f"the list {name} used as a value")
        if isinstance(t, PressureT):
            raise Unsupported(f"the blood pressure {name} used as one value")
        return Val(self.scalar_var(("fact", name), t, name), self.s.known(name))

    def slots(self, name: str) -> list[tuple[Any, dict[str, Val]]]:
        """The list's item slots: (present, fields); item i+1 only after item i."""
        t = self.s.types[name]
        assert isinstance(t, ListT)
        self.s.bounded = True
        out = []
        for i in range(LIST_BOUND):

            def make_present(i: int = i) -> Any:
                p = z3.Bool(f"|{name}[{i}]|")
                if i:
                    self.s.constraints.append(z3.Implies(p, self.s.vars[("list", name, i - 1)]))
                return p

            present = self.var(("list", name, i), make_present)
            fields = {
                fname: Val(
                    self.scalar_var(("item", name, i, fname), ft, f"{name}.{fname}"),
                    self.s.known(f"{name}[{i}].{fname}"),
                )
                for fname, ft in t.fields
            }
            out.append((present, fields))
        return out

    # ------------------------------------------------------------------ values
    def member_index(self, fact_key: str, member: str) -> int:
        names = self.s.members.setdefault(fact_key, [])
        if member not in names:
            names.append(member)
        return names.index(member)

    def value(self, e: n.Expr, env: dict[str, Any]) -> Val:
        if isinstance(e, n.DualQuantityLit):
            e = e.primary
        if isinstance(e, n.NumberLit):
            return Val(z3.RealVal(str(e.value)), TRUE)
        if isinstance(e, n.QuantityLit):
            u = parse_unit(e.unit)
            return Val(z3.RealVal(str(e.value * u.factor)), TRUE)
        if isinstance(e, n.DateLit):
            return Val(z3.IntVal(e.value.toordinal()), TRUE)
        if isinstance(e, n.BoolLit):
            return Val(z3.BoolVal(e.value), TRUE)
        if isinstance(e, n.Name):
            return self.name(e, env)
        if isinstance(e, n.Call):
            return self.call(e, env)
        if isinstance(e, n.Magnitude):
            inner = self.value(e.expr, env)
            k = z3.RealVal(str(parse_unit(e.unit).factor))
            return several(inner.k, [(g, v / k) for g, v in inner.options()])
        if isinstance(e, n.WithUnit):
            inner = self.value(e.expr, env)
            k = z3.RealVal(str(parse_unit(e.unit).factor))
            return several(inner.k, [(g, v * k) for g, v in inner.options()])
        if isinstance(e, n.Arith):
            return self.arith(e, env)
        if isinstance(e, n.Neg):
            inner = self.value(e.operand, env)
            return several(inner.k, [(g, -v) for g, v in inner.options()])
        if isinstance(e, n.Conditional):
            # condition unknown: both branches are possible (runtime.choice), and the
            # value is known only when both are
            c = self.cond(e.cond, env)
            a, b = self.value(e.then, env), self.value(e.otherwise, env)
            alts = [(z3.And(z3.Not(c.f), g), v) for g, v in a.options()]
            alts += [(z3.And(z3.Not(c.t), g), v) for g, v in b.options()]
            k = z3.If(c.t, a.k, z3.If(c.f, b.k, z3.And(a.k, b.k)))
            return several(k, alts)
        if isinstance(e, n.FirstAvailable):
            options = [self.value(o, env) for o in e.options]
            alts, before = [], []
            for o in options:
                chosen = z3.And(o.k, *[z3.Not(x) for x in before])
                alts += [(z3.And(chosen, g), v) for g, v in o.options()]
                before.append(o.k)
            return several(z3.Or(*[o.k for o in options]), alts)
        if isinstance(e, n.DateOf):
            return self.observed(e.fact)
        if isinstance(e, n.Attribute):
            systolic, diastolic = self.pressure(e.obj)
            return systolic if e.attr == "systolic" else diastolic
        # a condition used as a value
        return val_of(self.cond(e, env))

    def name(self, e: n.Name, env: dict[str, Any]) -> Val:
        r = self.c.refs[id(e)]
        if r.kind in ("param", "field"):
            return env[r.name]
        if r.kind in ("fact", "arm"):
            return self.fact(r.name)
        if r.kind == "anchor":
            if r.name == ENROLLMENT:
                return Val(z3.IntVal(self.s.today), TRUE)
            return Val(self.date_var(("anchor", r.name)), self.s.known("@" + r.name))
        if r.kind == "define":
            if r.name not in self.defines:
                self.defines[r.name] = self.value(self.c.defines[r.name].body, {})
            return self.defines[r.name]
        if r.kind == "assume":
            return self.value(self.c.assumed[r.name].value, {})
        raise Unsupported(f"the name {e.name} ({r.kind}) as a value")

    def call(self, e: n.Call, env: dict[str, Any]) -> Val:
        if e.func == "elapsed_years":
            return self.age(e, env)
        d = self.c.defines[e.func]
        assert d.params is not None
        args: dict[str, Any] = {}
        for a, p in zip(e.args, d.params, strict=True):
            args[p.name] = self.value(a, env)
            if args[p.name].alts:
                raise Unsupported(f"a call of {e.func} with an argument of several values")
            if isinstance(a, n.Name) and self.c.refs[id(a)].kind in ("fact", "arm"):
                args["__key__" + p.name] = a.name  # whose categories a parameter has
        key = (
            e.func,
            *(
                (x.v.get_id(), x.k.get_id()) if isinstance(x, Val) else x
                for x in (args[k] for k in sorted(args))
            ),
        )
        if key not in self.calls:
            self.calls[key] = self.value(d.body, args)
        return self.calls[key]

    def age(self, e: n.Call, env: dict[str, Any]) -> Val:
        """Completed years as a whole number, in months (the calendar base)."""
        birth, end = plain(self.value(e.args[0], env)), plain(self.value(e.args[1], env))
        key = ("age", birth.v.get_id(), end.v.get_id())
        years = self.var(key, lambda: z3.Int(f"|age:{len(self.s.vars)}|"))
        first = e.args[0]
        if isinstance(first, n.Name) and self.c.refs.get(id(first), Ref("", "")).kind == "fact":
            self.s.ages[key] = (first.name, end.v)
        self.s.constraints += [years >= 0, years <= YEAR_RANGE]
        return Val(z3.ToReal(years) * 12, z3.And(birth.k, end.k))

    def arith(self, e: n.Arith, env: dict[str, Any]) -> Val:
        a, b = self.value(e.left, env), self.value(e.right, env)
        if a.alts or b.alts:  # every combination of the possibilities (runtime.alt_op)
            alts, k = [], z3.And(a.k, b.k)
            for ga, va in a.options():
                for gb, vb in b.options():
                    r = self.arith_one(e, Val(va, TRUE), Val(vb, TRUE))
                    alts.append((z3.And(ga, gb), r.v))
                    k = z3.And(k, z3.Implies(z3.And(ga, gb), r.k))
            return several(k, alts)
        return self.arith_one(e, a, b)

    def arith_one(self, e: n.Arith, a: Val, b: Val) -> Val:
        k = z3.And(a.k, b.k)
        if e.op == "+":
            return Val(a.v + b.v, k)
        if e.op == "-":
            return Val(a.v - b.v, k)
        constant_a = z3.is_rational_value(z3.simplify(a.v))
        constant_b = z3.is_rational_value(z3.simplify(b.v))
        if e.op == "*" and (constant_a or constant_b):
            return Val(a.v * b.v, k)
        if e.op == "/" and constant_b:
            zero = z3.is_true(z3.simplify(b.v == 0))
            return Val(a.v / b.v, FALSE if zero else k)
        # a product or quotient of two unknown values: a function of its operands
        self.s.abstracted.add("non-linear formula")
        fn = z3.Function(f"|{e.op}|", z3.RealSort(), z3.RealSort(), z3.RealSort())
        out = fn(
            z3.ToReal(a.v) if z3.is_int(a.v) else a.v, z3.ToReal(b.v) if z3.is_int(b.v) else b.v
        )
        if e.op == "/":
            k = z3.And(k, b.v != 0)  # division by zero is unknown, as in the compiled code
        return Val(out, k)

    # ------------------------------------------------------------------ conditions
    def cond(self, e: n.Expr, env: dict[str, Any]) -> TV:
        if self.replace and id(e) in self.replace:
            return self.cond(self.replace[id(e)], env)
        if env:  # inside a list condition or a function: per item, per call
            return self._cond(e, env)
        key = id(e)
        if key not in self.memo:
            self.memo[key] = self._cond(e, env)
        return self.memo[key]

    def _cond(self, e: n.Expr, env: dict[str, Any]) -> TV:
        if isinstance(e, n.Not):
            return self.cond(e.operand, env).negate()
        if isinstance(e, n.And):
            return kleene_and(self.cond(e.left, env), self.cond(e.right, env))
        if isinstance(e, n.Or):
            return kleene_or(self.cond(e.left, env), self.cond(e.right, env))
        if isinstance(e, n.Unless):
            return kleene_and(self.cond(e.rule, env), self.cond(e.exception, env).negate())
        if isinstance(e, n.Implies):  # Kleene: not premise or conclusion
            a, b = self.cond(e.premise, env), self.cond(e.conclusion, env)
            return TV(z3.Or(a.f, b.t), z3.And(a.t, b.f))
        if isinstance(e, n.Compare):
            return self.compare(e.op, e.left, e.right, env)
        if isinstance(e, n.DateBound):
            d = plain(self.value(e.subject, env))
            if e.duration is not None:
                edge = self.edge(e.anchor, e.duration, -1 if e.direction == "before" else 1, env)
            else:
                edge = plain(self.value(e.anchor, env))
            return self.decided(_op(e.op, d.v, edge.v), d.k, edge.k)
        if isinstance(e, n.WindowBetween):
            ends = e.durations()
            if ends is None:
                raise Unsupported("a window between values that are not written durations")
            d = plain(self.value(e.subject, env))
            sign = -1 if e.direction == "before" else 1
            near = self.edge(e.anchor, ends[0], sign, env)
            far = self.edge(e.anchor, ends[1], sign, env)
            low, high = (far, near) if sign < 0 else (near, far)
            return self.decided(z3.And(low.v <= d.v, d.v <= high.v), d.k, low.k, high.k)
        if isinstance(e, n.Period):
            start = plain(self.value(e.start, env))
            end = plain(self.value(e.end, env))
            a = plain(self.value(e.anchor, env))
            low = high = a
            if e.duration is not None:
                sign = -1 if e.direction == "before" else 1
                shifted = self.edge(e.anchor, e.duration, sign, env)
                low, high = (shifted, a) if sign < 0 else (a, shifted)
            first = self.decided(start.v <= high.v, start.k, high.k)
            second = self.decided(end.v >= low.v, end.k, low.k)
            both = kleene_and(first, second)
            # an end before the start is no period (swapped dates): unknown
            ok = z3.Not(z3.And(start.k, end.k, end.v < start.v))
            return TV(z3.And(ok, both.t), z3.And(ok, both.f))
        if isinstance(e, n.Between):
            x = plain(self.value(e.subject, env))
            lo = plain(self.aligned(e.subject, e.low, env))
            hi = plain(self.aligned(e.subject, e.high, env))
            self.note_threshold(e.subject, e.low)
            self.note_threshold(e.subject, e.high)
            return self.decided(z3.And(lo.v <= x.v, x.v <= hi.v), x.k, lo.k, hi.k)
        if isinstance(e, n.Member):
            key, x = self.category(e.subject, env)
            test = z3.Or(*[x.v == self.member_index(key, m) for m in e.members])
            return self.decided(z3.Not(test) if e.negated else test, x.k)
        if isinstance(e, n.IsKnown):
            x = self.value(e.subject, env)
            return TV(x.k, z3.Not(x.k))
        if isinstance(e, n.CompareRef):
            assert isinstance(e.left, n.Name)
            x = plain(self.value(e.left, env))
            limit = self.limit(e.left.name, e.limit)
            return self.decided(
                _op(e.op, x.v, z3.RealVal(str(e.factor.value)) * limit.v), x.k, limit.k
            )
        if isinstance(e, n.InNormalRange):
            assert isinstance(e.subject, n.Name)
            x = self.value(e.subject, env)
            lo, hi = self.limit(e.subject.name, "LLN"), self.limit(e.subject.name, "ULN")
            inside = z3.And(z3.Or(z3.Not(lo.k), lo.v <= x.v), z3.Or(z3.Not(hi.k), x.v <= hi.v))
            return self.decided(inside, x.k, z3.Or(lo.k, hi.k))
        if isinstance(e, n.Window):
            return self.window(e, env)
        if isinstance(e, n.Order):
            d, a = plain(self.value(e.subject, env)), plain(self.value(e.anchor, env))
            return self.decided(d.v < a.v if e.direction == "before" else d.v > a.v, d.k, a.k)
        if isinstance(e, n.Quantified):
            return self.quantified(e, env)
        if isinstance(e, n.BoolLit):
            return TV(z3.BoolVal(e.value), z3.BoolVal(not e.value))
        if isinstance(e, (n.Name, n.Call, n.Conditional, n.FirstAvailable, n.Attribute)):
            return tv_of(self.value(e, env))
        raise Unsupported(f"the form {type(e).__name__}")

    def decided(self, test: Any, *known: Any) -> TV:
        """A test that is unknown when any operand is (the compiled `None if ...`)."""
        k = z3.And(*known) if known else TRUE
        return TV(z3.And(k, test), z3.And(k, z3.Not(test)))

    def limit(self, name: str, which: str) -> Val:
        suffix = "#low" if which == "LLN" else "#high"
        low = self.var(("limit", name, "LLN"), lambda: z3.Real(f"|{name}#low|"))
        high = self.var(("limit", name, "ULN"), lambda: z3.Real(f"|{name}#high|"))
        klo, khi = self.s.known(name + "#low"), self.s.known(name + "#high")
        self.s.constraints += [z3.Implies(z3.And(klo, khi), low <= high)]
        if name in self.s.default_ranges:  # the default range stands in when none is reported
            self.s.constraints += [klo, khi]
        return Val(self.s.vars[("limit", name, which)], self.s.known(name + suffix))

    def category(self, e: n.Expr, env: dict[str, Any]) -> tuple[str, Val]:
        """(members key, value) of a category- or grade-valued expression."""
        r = self.c.refs.get(id(e)) if isinstance(e, n.Name) else None
        if r is not None and r.kind in ("fact", "arm"):
            return r.name, self.fact(r.name)
        if r is not None and r.kind == "field":
            return env["__list__"] + "." + r.name, env[r.name]
        if r is not None and r.kind == "param" and "__key__" + r.name in env:
            return env["__key__" + r.name], env[r.name]
        raise Unsupported("a category that is not a fact, a list field or a fact argument")

    def is_member(self, e: n.Expr) -> bool:
        if not isinstance(e, n.Name):
            return False
        r = self.c.refs.get(id(e))
        return r is not None and r.kind == "member"

    def compare(self, op: str, left: n.Expr, right: n.Expr, env: dict[str, Any]) -> TV:
        lt = self.c.types.get(id(left))
        rt = self.c.types.get(id(right))
        if self.is_member(left) and not self.is_member(right):
            left, right = right, left
            op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
            lt, rt = rt, lt
        if isinstance(lt, (EnumT, ScaleT)) and self.is_member(right):
            key, x = self.category(left, env)
            assert isinstance(right, n.Name)
            idx = self.member_index(key, right.name)
            if isinstance(lt, ScaleT):
                idx = _scale_index(self.s, key, right.name, idx)
            return self.decided(_op(op, x.v, idx), x.k)
        if isinstance(left, n.PressureLit) and not isinstance(right, n.PressureLit):
            left, right = right, left
            op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
        if isinstance(right, n.PressureLit):
            return self.pressure_compare(op, left, right)
        a = self.value(left, env)
        b = self.aligned(left, right, env)
        self.note_threshold(left, right)
        if a.alts or b.alts:
            # every combination (runtime.alt_op), decided when all agree
            k = z3.And(a.k, b.k)
            pairs = [
                (z3.And(ga, gb), _op(op, va, vb))
                for ga, va in a.options()
                for gb, vb in b.options()
            ]
            every = z3.And(*[z3.Implies(g, r) for g, r in pairs])
            none = z3.And(*[z3.Implies(g, z3.Not(r)) for g, r in pairs])
            return TV(z3.And(k, every), z3.And(k, none))
        return self.decided(_op(op, a.v, b.v), a.k, b.k)

    def pressure_compare(self, op: str, left: n.Expr, pair: n.PressureLit) -> TV:
        """Systolic and diastolic each compared; `<`, `<=`, `=` need both, `>`, `>=`,
        `!=` either (nodes.PRESSURE_COMBINE): "BP < 140/90" both below."""
        if not isinstance(left, n.Name):
            raise Unsupported("a blood pressure pair compared with something not a fact")
        parts = []
        limits = (pair.systolic, pair.diastolic)
        for name, part, limit in zip(
            ("systolic", "diastolic"), self.pressure(left.name), limits, strict=True
        ):
            self.s.thresholds.setdefault(f"{left.name}.{name}", set()).add(limit)
            parts.append(self.decided(_op(op, part.v, z3.RealVal(str(limit))), part.k))
        s, d = parts
        if n.PRESSURE_COMBINE[op] == "any":
            return kleene_or(s, d)
        return kleene_and(s, d)

    def pressure(self, name: str) -> tuple[Val, Val]:
        """A blood pressure fact's (systolic, diastolic) in its unit (mm[Hg]); each part
        known only when the whole is recorded and the part is."""
        whole = self.s.known(name)
        out = []
        for part in ("systolic", "diastolic"):
            v = self.var(("part", name, part), lambda part=part: z3.Real(f"|{name}.{part}|"))
            out.append(Val(v, z3.And(whole, self.s.known(f"{name}.{part}"))))
        return out[0], out[1]

    def observed(self, fact: str) -> Val:
        """`date of FACT`: the observation's date, known when the fact is and is dated."""
        v = self.date_var(("observed", fact))
        return Val(v, z3.And(self.s.known(fact), self.s.known(f"{fact}@date")))

    def edge(self, anchor: n.Expr, duration: n.QuantityLit, sign: int, env: dict[str, Any]) -> Val:
        """The day number anchor + sign * duration: months and years as calendar steps
        (runtime.add_months), weeks and days as fixed lengths."""
        a = plain(self.value(anchor, env))
        unit = parse_unit(duration.unit)
        amount = duration.value * unit.factor
        if unit.dims == CALENDAR and amount.denominator == 1:
            months = sign * int(amount)
            day = z3.simplify(a.v)
            if z3.is_int_value(day):
                return Val(z3.IntVal(add_months(day.as_long(), months)), a.k)
            return Val(self.shifted(a.v, months), a.k)
        days = amount / 86400 if unit.dims != CALENDAR else amount * Fraction(30436875, 10**6)
        return Val(a.v + z3.RealVal(str(sign * days)), a.k)

    def aligned(self, subject: n.Expr, other: n.Expr, env: dict[str, Any]) -> Val:
        """`other` in the subject's dimension (through the subject's molar mass)."""
        b = self.value(other, env)
        fact = _subject_fact(self.c, subject)
        st, ot = self.c.types.get(id(subject)), self.c.types.get(id(other))
        if isinstance(st, QuantT) and isinstance(ot, QuantT) and fact is not None:
            molar = self.c.facts[fact].molar_mass
            if ot.unit.dims != st.unit.dims and molar is not None:
                k = conversion_factor(ot.unit, st.unit, molar)
                if k is None:
                    raise Unsupported(f"no conversion from {ot.unit.text} to {st.unit.text}")
                return Val(b.v * z3.RealVal(str(k * st.unit.factor / ot.unit.factor)), b.k)
        return b

    def note_threshold(self, subject: n.Expr, other: n.Expr) -> None:
        """Remember literal thresholds per fact (witnesses prefer values near them)."""
        fact = _subject_fact(self.c, subject)
        if fact is None:
            r = self.c.refs.get(id(subject)) if isinstance(subject, n.Name) else None
            if r is None or r.kind != "field":
                return
            fact = r.name  # a list field: keyed by the field's name
        lit = other.primary if isinstance(other, n.DualQuantityLit) else other
        if isinstance(lit, n.Name) and self.c.refs.get(id(lit), Ref("", "")).kind == "assume":
            lit = self.c.assumed[lit.name].value
            lit = lit.primary if isinstance(lit, n.DualQuantityLit) else lit
        t = self.s.types.get(fact)
        if isinstance(lit, n.QuantityLit) and isinstance(t, QuantT):
            k = conversion_factor(parse_unit(lit.unit), t.unit, self.c.facts[fact].molar_mass)
            if k is not None:
                self.s.thresholds.setdefault(fact, set()).add(lit.value * k)
        elif isinstance(lit, n.NumberLit):
            self.s.thresholds.setdefault(fact, set()).add(lit.value)

    def window(self, e: n.Window, env: dict[str, Any]) -> TV:
        d, a = plain(self.value(e.subject, env)), plain(self.value(e.anchor, env))
        unit = parse_unit(e.duration.unit)
        amount = e.duration.value * unit.factor
        sign = -1 if e.direction == "before" else 1
        if unit.dims == CALENDAR and amount.denominator == 1:
            months = sign * int(amount)
            anchor = z3.simplify(a.v)
            if z3.is_int_value(anchor):
                edge: Any = z3.IntVal(add_months(anchor.as_long(), months))
            else:
                edge = self.shifted(a.v, months)
        else:
            days = amount / 86400 if unit.dims != CALENDAR else amount * Fraction(30436875, 10**6)
            edge = a.v + z3.RealVal(str(sign * days))
        dv, av = d.v, a.v
        if e.direction == "before":
            test = {
                "within": z3.And(edge <= dv, dv <= av),
                "more": dv < edge,
                "less": z3.And(edge < dv, dv <= av),
            }[e.kind]
        else:
            test = {
                "within": z3.And(av <= dv, dv <= edge),
                "more": dv > edge,
                "less": z3.And(av <= dv, dv < edge),
            }[e.kind]
        return self.decided(test, d.k, a.k)

    def calendar(self, day: Any) -> tuple[Any, Any, Any]:
        """(year, month, day of month) of a day number, exactly (proleptic Gregorian, as
        `datetime.date.toordinal`): the day number is tied to its calendar date."""
        key = ("calendar", day.get_id())
        if key not in self.s.vars:
            label = len(self.s.vars)
            y, m, d = z3.Ints(f"|y:{label}| |m:{label}| |d:{label}|")
            self.s.vars[key] = (y, m, d)
            self.s.constraints += [
                m >= 1,
                m <= 12,
                d >= 1,
                d <= _days_in_month(y, m),
                day == _ordinal(y, m, d),
            ]
        return self.s.vars[key]

    def shifted(self, day: Any, months: int) -> Any:
        """`add_months(day, months)` exactly: the same day of the month `months` later,
        clamped to the month's last day (runtime.add_months)."""
        key = ("edge", day.get_id(), months)
        if key not in self.s.vars:
            y, m, d = self.calendar(day)
            t = m - 1 + months
            y2, m2 = y + t / 12, t % 12 + 1  # floor division and modulo by a constant
            last = _days_in_month(y2, m2)
            self.s.vars[key] = _ordinal(y2, m2, z3.If(d > last, last, d))
        return self.s.vars[key]

    def quantified(self, e: n.Quantified, env: dict[str, Any]) -> TV:
        known = self.s.known(e.list_name)
        yes, unk, no, present = [], [], [], []
        for is_present, fields in self.slots(e.list_name):
            inner = dict(env)
            inner.update(fields)
            inner["__list__"] = e.list_name
            body = self.cond(e.body, inner)
            yes.append(z3.And(is_present, body.t))
            no.append(z3.And(is_present, body.f))
            unk.append(z3.And(is_present, body.unknown))
            present.append(is_present)

        def count(xs: list[Any]) -> Any:
            return z3.Sum(*[z3.If(x, 1, 0) for x in xs])

        q = e.quantifier
        if q == "any":
            t, f = z3.Or(*yes), z3.And(z3.Not(z3.Or(*yes)), z3.Not(z3.Or(*unk)))
        elif q == "no":
            t, f = z3.And(z3.Not(z3.Or(*yes)), z3.Not(z3.Or(*unk))), z3.Or(*yes)
        elif q == "all":
            t, f = z3.And(z3.Not(z3.Or(*no)), z3.Not(z3.Or(*unk))), z3.Or(*no)
        elif q == "majority":
            y, u, total = count(yes), count(unk), count(present)
            t, f = 2 * y > total, 2 * (y + u) <= total
        else:
            y, u, c = count(yes), count(unk), e.count or 0
            t, f = y >= c, y + u < c
        return TV(z3.And(known, t), z3.And(known, f))


_BEFORE_MONTH = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


def _leap(y: Any) -> Any:
    return z3.And(y % 4 == 0, z3.Or(y % 100 != 0, y % 400 == 0))


def _days_in_month(y: Any, m: Any) -> Any:
    return z3.If(
        m == 2,
        z3.If(_leap(y), 29, 28),
        z3.If(z3.Or(m == 4, m == 6, m == 9, m == 11), 30, 31),
    )


def _ordinal(y: Any, m: Any, d: Any) -> Any:
    """`datetime.date(y, m, d).toordinal()` as linear integer arithmetic (division by
    constants only): days before the year, before the month, then the day."""
    p = y - 1
    before_year = 365 * p + p / 4 - p / 100 + p / 400
    before_month = z3.IntVal(0)
    for month in range(12, 0, -1):
        before_month = z3.If(m == month, _BEFORE_MONTH[month - 1], before_month)
    leap_day = z3.If(z3.And(m > 2, _leap(y)), 1, 0)
    return before_year + before_month + leap_day + d


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
