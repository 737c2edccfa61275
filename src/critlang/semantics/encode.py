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
- bounded: a list has a fixed number of item slots (lists.py: how many, and when a
  proof over them still holds for lists of any length);
- abstracted: a product or quotient of two unknown values (Cockcroft-Gault) is an
  uninterpreted function of its operands (equal inputs, equal outputs; the same formula
  means the same in both versions); so are pow, sqrt, cbrt, ln, exp and log10
  (encode_functions.py; min and max are exact). A formula's final rounding to 12
  significant digits (runtime.sig) is not modelled: witnesses are re-checked.

The Encoder's comparisons are in encode_compare.py, its dates and windows in
encode_time.py, the three-valued pairs and their operators in logic.py.

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
from ..checker import ENROLLMENT, CheckResult, Ref
from ..data.records import fact_types
from ..functions import MATH
from ..time_edges import edge_side
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
from ..units import parse_unit
from .encode_compare import ComparisonEncoding
from .encode_functions import FunctionEncoding
from .encode_time import TimeEncoding
from .lists import LIST_BOUND, inexact, need, touched
from .logic import (
    FALSE,
    MAX_ALTERNATIVES,
    TRUE,
    TV,
    Unsupported,
    Val,
    kleene_and,
    kleene_or,
    plain,
    relation,
    several,
    tv_of,
    val_of,
)

__all__ = ["FALSE", "LIST_BOUND", "MAX_ALTERNATIVES", "TRUE", "TV", "Encoder", "Space"]
__all__ += ["Unsupported", "Val"]

YEAR_RANGE = 120  # dates are kept within this many years of the enrollment date


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
    slots: dict[str, int] = field(default_factory=dict)  # list -> item slots (lists.plan)
    # list -> items its encoded conditions need (lists.need); lists under `majority of`
    needs: dict[str, int] = field(default_factory=dict)
    majority: set[str] = field(default_factory=set)
    # fact -> thresholds (in the fact's unit) the protocols compare it with
    thresholds: dict[str, set[Fraction]] = field(default_factory=dict)
    default_ranges: set[str] = field(default_factory=set)  # facts with a default ref. range
    # a month or year step was measured from the evaluation date itself: months differ
    # in length, so what is proven holds for that evaluation date (reports say so)
    calendar_on_today: bool = False

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

    def slot_count(self, name: str) -> int:
        return self.slots.get(name, LIST_BOUND)

    def list_bound(self, *formulas: Any) -> int | None:
        """None when a proof of these formulas holds for lists of any length, else
        the length it holds up to (the fewest slots of a list it cannot vouch for)."""
        loose = inexact(self.slots, self.needs, self.majority)
        if not loose:
            return None
        slot_vars = {
            v.get_id(): key[1]
            for key, v in self.vars.items()
            if key[0] == "list" and key[1] in loose
        }
        hit = touched(list(formulas), slot_vars)
        return min((loose[x] for x in hit), default=None)

    def lists_note(self) -> str:
        """What the encoding proves about lists, in words (empty without lists)."""
        if not self.bounded:
            return ""
        loose = inexact(self.slots, self.needs, self.majority)
        if not loose:
            return "lists of any length (each list condition needs only a few items)"
        names = ", ".join(
            f"{x} up to {k} items" + (" (`majority of`)" if x in self.majority else "")
            for x, k in loose.items()
        )
        return f"lists bounded: {names}"


class Encoder(ComparisonEncoding, TimeEncoding, FunctionEncoding):
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
        self.fixed: dict[int, Val] = {}  # operand -> one possibility (over_alternatives)
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
        for i in range(self.s.slot_count(name)):

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
        if self.fixed and id(e) in self.fixed:
            return self.fixed[id(e)]
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
        if e.func in MATH:
            return self.math(e, env)  # encode_functions.py
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
        if n.compared(e):
            lifted = self.over_alternatives(e, env)
            if lifted is not None:
                return lifted
        if isinstance(e, n.DateBound):
            d = plain(self.value(e.subject, env))
            if e.duration is not None:
                sign = -1 if e.direction == "before" else 1
                edge = self.edge(e.anchor, e.duration, sign, env, edge_side(e))
            else:
                edge = plain(self.value(e.anchor, env))
            return self.decided(relation(e.op, d.v, edge.v), d.k, edge.k)
        if isinstance(e, n.WindowBetween):
            ends = e.durations()
            if ends is None:
                raise Unsupported("a window between values that are not written durations")
            d = plain(self.value(e.subject, env))
            sign = -1 if e.direction == "before" else 1
            near = self.edge(e.anchor, ends[0], sign, env, "hi")
            far = self.edge(e.anchor, ends[1], sign, env, "lo")
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
                relation(e.op, x.v, z3.RealVal(str(e.factor.value)) * limit.v), x.k, limit.k
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

    def over_alternatives(self, e: n.Expr, env: dict[str, Any]) -> TV | None:
        """A comparison form (nodes.compared) over values with several possibilities:
        the form per combination, met when every open combination meets it, not met
        when every one fails it (runtime.agreed); None when no operand has several."""
        operands = n.compared(e)
        vals = [self.value(x, env) for x in operands]
        if not any(v.alts for v in vals):
            return None
        combos: list[tuple[Any, tuple[Val, ...]]] = [(TRUE, ())]
        for v in vals:
            combos = [(z3.And(g, h), (*c, Val(x, v.k))) for g, c in combos for h, x in v.options()]
            if len(combos) > MAX_ALTERNATIVES:
                raise Unsupported(f"more than {MAX_ALTERNATIVES} possible values of a conditional")
        every, none = [], []
        saved = self.fixed
        try:
            for guard, combo in combos:
                self.fixed = {**saved, **{id(x): c for x, c in zip(operands, combo, strict=True)}}
                tv = self._cond(e, env)
                every.append(z3.Implies(guard, tv.t))
                none.append(z3.Implies(guard, tv.f))
        finally:
            self.fixed = saved
        return TV(z3.And(*every), z3.And(*none))

    def decided(self, test: Any, *known: Any) -> TV:
        """A test that is unknown when any operand is (the compiled `None if ...`)."""
        k = z3.And(*known) if known else TRUE
        return TV(z3.And(k, test), z3.And(k, z3.Not(test)))

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
        self.s.needs[e.list_name] = self.s.needs.get(e.list_name, 0) + need(e)
        if q == "majority":
            self.s.majority.add(e.list_name)
        later = self.only_future(e, env)  # the items' absence decides nothing (no / any)
        if q == "any":
            t = z3.Or(*yes)
            f = z3.And(z3.Not(z3.Or(*yes)), z3.Not(z3.Or(*unk)), z3.Not(later))
        elif q == "no":
            t = z3.And(z3.Not(z3.Or(*yes)), z3.Not(z3.Or(*unk)), z3.Not(later))
            f = z3.Or(*yes)
        elif q == "all":
            t, f = z3.And(z3.Not(z3.Or(*no)), z3.Not(z3.Or(*unk))), z3.Or(*no)
        elif q == "majority":
            y, u, total = count(yes), count(unk), count(present)
            t, f = 2 * y > total, 2 * (y + u) <= total
        else:
            y, u, c = count(yes), count(unk), e.count or 0
            t, f = y >= c, z3.And(y + u < c, z3.Not(later))
        return TV(z3.And(known, t), z3.And(known, f))
