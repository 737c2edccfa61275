"""The reference interpreter: walks the AST with pint quantities and exact fractions.

Slow on purpose-free grounds: it shares nothing with the compiler but the checked AST
and the record reader, does its own unit handling through pint, its own calendar
arithmetic and its own three-valued logic. Tests demand that it and the compiled
evaluator agree on every patient: it is the differential oracle. It also records, for
each criterion, the sub-clause that decided it, which explanations show.
"""

from __future__ import annotations

import datetime as dt
import math
from fractions import Fraction
from typing import Any

from . import interpreter_math
from . import nodes as n
from .backends.runtime import ELIGIBLE, INELIGIBLE, NA, UNDETERMINED
from .checker import CheckResult, Ref
from .data.records import Bound, Observation, Ongoing, PartialDate, Record
from .data.signs import never_negative, number_never_negative
from .data.values import float_holds
from .frozen_classes import replace
from .functions import MATH
from .future_events import only_future, past_date_fields
from .interpreter_compare import CompareForms
from .interpreter_values import (
    combinations,
    exact_sig,
    kleene,
    one,
    options,
    possible,
)
from .intervals import Iv, as_iv
from .intervals import arith as iv_arith
from .intervals import compare as iv_compare
from .typesys import ListT, QuantT, ScaleT, mm_hg
from .units import _registry, parse_unit, pint_base_unit


def _completed_years(a: dt.date, b: dt.date) -> int:
    years = b.year - a.year
    if (b.month, b.day) < (a.month, a.day):
        years -= 1
    return years


class Interpreter(CompareForms):
    def __init__(self, checked: CheckResult) -> None:
        self.c = checked
        self.ureg = _registry()
        self._units: dict[tuple[tuple[str, int], ...], Any] = {}
        self.roots = n.arithmetic_roots(checked.protocol)
        # id(condition node) -> values seen, for clause coverage (`critlang test --coverage`)
        self.trace: dict[int, set[bool | None]] | None = None
        self._memo_record: Record | None = None  # the record _memo holds values for
        self._memo: dict[str, Any] = {}  # definition name -> value
        # operand node -> the one possibility being followed (over_choices)
        self.fixed: dict[int, Any] = {}

    # ------------------------------------------------------------------ quantities
    def base_unit(self, dims: tuple[tuple[str, int], ...]) -> Any:
        if dims not in self._units:
            expr = " * ".join(f"{pint_base_unit(d)} ** {e}" for d, e in dims) or "dimensionless"
            self._units[dims] = self.ureg.parse_units(expr)
        return self._units[dims]

    def quantity(self, value: Fraction, unit_text: str) -> Any:
        u = parse_unit(unit_text)
        return self.ureg.Quantity(value * u.factor, self.base_unit(u.dims))

    def from_obs(self, obs: Observation, nonnegative: bool = False) -> Any:
        """A recorded quantity in its unit's base unit; a censored one as an interval,
        from 0 when the quantity is never negative (data/signs.py)."""
        assert obs.unit is not None
        base = self.base_unit(obs.unit.dims)
        if isinstance(obs.value, Fraction) and not float_holds(obs.value):
            # more digits than a float holds: the open interval between the neighbouring
            # floats of its value in the base unit, decided only where every value of
            # it decides (the compiled code reads it the same way: python_normalise.inexact)
            iv = inexact(obs.value * obs.unit.factor, obs.comparator)
            iv = iv.map(lambda x: self.ureg.Quantity(x, base))
        else:
            q = self.ureg.Quantity(obs.value * obs.unit.factor, base)
            iv = censored(q, obs.comparator)
        if nonnegative and isinstance(iv, Iv) and iv.lo is None:
            return Iv(iv.hi * 0, iv.hi, False, iv.hi_open)
        return iv

    def same_dims(self, a: Any, b: Any) -> bool:
        return a.dimensionality == b.dimensionality

    def molar_quantity(self, name: str | None) -> Any:
        if name is None or name not in self.c.facts:
            return None
        m = self.c.facts[name].molar_mass
        return (
            None
            if m is None
            else self.ureg.Quantity(m, self.base_unit((("[mass]", 1), ("[substance]", -1))))
        )

    def align(self, left: Any, right: Any, subject: str | None) -> Any:
        """Right in left's dimension, through the subject's molar mass when needed."""
        if isinstance(left, Iv):
            left = left.any_end()
        if isinstance(right, Iv):
            return right.map(lambda v: self.align(left, v, subject))
        if not hasattr(left, "dimensionality") or not hasattr(right, "dimensionality"):
            return right
        if self.same_dims(left, right):
            return right
        m = self.molar_quantity(subject)
        assert m is not None
        return right * m if self.same_dims(left, right * m) else right / m

    # ------------------------------------------------------------------ evaluation
    def run(self, record: Record) -> tuple[str, tuple[Any, ...], dict[str, n.Expr | None]]:
        """(verdict, statuses, deciding sub-clause per criterion) for one record.

        Conflicting candidates (record.alternatives): every combination is evaluated and
        each criterion keeps the status all of them give, else unknown. A deceased
        patient (record.deceased) is never eligible; a perhaps-deceased one not yet.
        """
        worlds: list[Record] = [record]
        for name in sorted(record.alternatives):
            worlds = [
                replace(w, facts={**w.facts, name: obs}, alternatives={})
                for w in worlds
                for obs in record.alternatives[name]
            ]
        runs = [self.run_one(w) for w in worlds]
        verdict, statuses, deciders = runs[0]
        if len(runs) > 1:
            statuses = tuple(
                column[0] if all(x is column[0] for x in column) else None
                for column in zip(*(r[1] for r in runs), strict=True)
            )
            verdict = self.verdict(statuses)
        if record.deceased is True:
            verdict = INELIGIBLE
        elif record.deceased is None and verdict == ELIGIBLE:
            verdict = UNDETERMINED
        return verdict, statuses, deciders

    def verdict(self, statuses: tuple[Any, ...]) -> str:
        kinds = [k for k, _ in self.c.protocol.criteria]
        bad = any(
            (s is False if k == "inclusion" else s is True)
            for k, s in zip(kinds, statuses, strict=True)
        )
        return INELIGIBLE if bad else UNDETERMINED if any(s is None for s in statuses) else ELIGIBLE

    def run_one(self, record: Record) -> tuple[str, tuple[Any, ...], dict[str, n.Expr | None]]:
        self.record = record
        statuses: list[Any] = []
        deciders: dict[str, n.Expr | None] = {}
        for kind, c in self.c.protocol.criteria:
            status, decider = self.criterion(kind, c)
            statuses.append(status)
            deciders[c.id] = decider
        kinds = [k for k, _ in self.c.protocol.criteria]
        bad = any(
            (s is False if k == "inclusion" else s is True)
            for k, s in zip(kinds, statuses, strict=True)
        )
        verdict = (
            INELIGIBLE if bad else UNDETERMINED if any(s is None for s in statuses) else ELIGIBLE
        )
        return verdict, tuple(statuses), deciders

    def criterion(self, kind: str, c: n.Criterion) -> tuple[Any, n.Expr | None]:
        env: dict[str, Any] = {}
        assert c.rule is not None
        if c.applies is None:
            return self.cond(c.rule, env)
        a, adec = self.cond(c.applies, env)
        if a is False:
            return NA, adec
        r, rdec = self.cond(c.rule, env)
        harmless = kind == "inclusion"
        if a is True or r is harmless:
            return r, rdec
        return None, adec if a is None else rdec

    def fact(self, name: str) -> Any:
        if name == "arm" and name not in self.record.facts:
            return None
        obs = self.record.facts.get(name)
        if obs is None:
            return None
        t = self.c.facts[name].type if name in self.c.facts else None
        if isinstance(t, QuantT):
            # recorded in another dimension (umol/L for a mg/dL fact): via the molar mass
            declared = self.ureg.Quantity(1, self.base_unit(t.unit.dims))
            floor = never_negative(t.unit, self.c.bindings.get(name, ()))
            return self.align(declared, self.from_obs(obs, floor), name)
        if isinstance(t, ListT):
            return obs.value
        if isinstance(obs.value, Fraction) and not float_holds(obs.value):
            iv = inexact(obs.value, obs.comparator)
        elif obs.comparator is not None:  # a censored plain number
            iv = censored(obs.value, obs.comparator)
        else:
            return plain(obs.value, self.record.anchors.get("enrollment"))
        if iv.lo is None and number_never_negative(self.c, name):  # data/signs.py
            return Iv(Fraction(0), iv.hi, False, iv.hi_open)
        return iv

    def ref(self, e: n.Name) -> Ref:
        return self.c.refs[id(e)]

    def value(self, e: n.Expr, env: dict[str, Any]) -> Any:
        if self.fixed and id(e) in self.fixed:
            return self.fixed[id(e)]
        if isinstance(e, n.NumberLit):
            return e.value
        if isinstance(e, n.QuantityLit):
            return self.quantity(e.value, e.unit)
        if isinstance(e, n.DualQuantityLit):
            return self.value(e.primary, env)
        if isinstance(e, n.DateLit):
            return e.value
        if isinstance(e, n.BoolLit):
            return e.value
        if isinstance(e, n.DateOf):
            obs = self.record.facts.get(e.fact)
            return None if obs is None else obs.date
        if isinstance(e, n.Attribute):  # a blood pressure's systolic or diastolic part
            obs = self.record.facts.get(e.obj)
            if obs is None:
                return None
            part = obs.value[0 if e.attr == "systolic" else 1]
            if isinstance(part, Bound):  # a censored part: from 0 (data/signs.py)
                bound = Observation(part.value, obs.unit, comparator=part.comparator)
                return self.from_obs(bound, True)
            return None if part is None else self.from_obs(Observation(part, obs.unit))
        if isinstance(e, n.Name):
            r = self.ref(e)
            if r.kind == "member":
                return r.name
            if r.kind in ("param", "field"):
                v = env[r.name]
                if isinstance(v, Observation):
                    t = self.c.types.get(id(e))
                    return self.from_obs(v, isinstance(t, QuantT) and never_negative(t.unit))
                return plain(v, self.record.anchors.get("enrollment"))
            if r.kind in ("fact", "arm"):
                return self.fact(r.name)
            if r.kind == "anchor":
                return self.record.anchors.get(r.name)
            if r.kind == "define":
                # each definition once per record: `define d1 = d0 + d0` chains share
                # their parts as a DAG instead of growing exponentially
                if self._memo_record is not self.record:
                    self._memo_record, self._memo = self.record, {}
                if r.name not in self._memo:
                    self._memo[r.name] = self.value(self.c.defines[r.name].body, {})
                return self._memo[r.name]
            if r.kind == "assume":
                return self.value(self.c.assumed[r.name].value, {})
            raise AssertionError(r)
        if isinstance(e, n.Call):
            args = [self.value(a, env) for a in e.args]
            if e.func in MATH:
                return self.math(e, args)
            if e.func == "elapsed_years":
                start, end = one(args[0]), one(args[1])
                if start is None or end is None:
                    return None
                if isinstance(start, Iv) or isinstance(end, Iv):
                    born, then = as_iv(start), as_iv(end)
                    # completed years grow with the end and shrink with the start; a side
                    # with no bound (an ongoing end has no latest day) stays unbounded
                    least = most = None
                    if born.hi is not None and then.lo is not None:
                        least = _completed_years(born.hi, then.lo)
                    if born.lo is not None and then.hi is not None:
                        most = _completed_years(born.lo, then.hi)
                    if least is None and most is None:
                        return None
                    if least != most:
                        years = lambda k: None if k is None else self.quantity(Fraction(k), "years")  # noqa: E731
                        return Iv(years(least), years(most))
                    return self.quantity(Fraction(least), "years")
                return self.quantity(Fraction(_completed_years(start, end)), "years")
            d = self.c.defines[e.func]
            assert d.params is not None
            combos = combinations(*args, keep_unknown=True)
            if combos is None:
                return None
            results = []
            for combo in combos:  # each combination of the arguments' possibilities
                inner = {p.name: a for p, a in zip(d.params, combo, strict=True)}
                results.append(self.value(d.body, inner))
            return possible(*results)
        if isinstance(e, n.Magnitude):
            q = self.value(e.expr, env)
            if q is None:
                return None
            u = parse_unit(e.unit)
            return possible(*(self.magnitude(x, u) for x in options(q)))
        if isinstance(e, n.WithUnit):
            x = self.value(e.expr, env)
            if x is None:
                return None
            return possible(*(self.with_unit(v, e.unit) for v in options(x)))
        if isinstance(e, n.Arith):
            combos = combinations(self.value(e.left, env), self.value(e.right, env))
            if combos is None:
                return None
            return possible(*(self.arith(e, a, b) for a, b in combos))
        if isinstance(e, n.Neg):
            x = self.value(e.operand, env)
            if x is None:
                return None
            return possible(*(self.negated(v) for v in options(x)))
        if isinstance(e, n.Conditional):
            c, _ = self.cond(e.cond, env)
            if c is None:  # both branches are possible
                return possible(self.value(e.then, env), self.value(e.otherwise, env))
            return self.value(e.then if c else e.otherwise, env)
        if isinstance(e, n.FirstAvailable):
            for option in e.options:
                v = self.value(option, env)
                if v is not None:
                    return v
            return None
        v, _ = self.cond(e, env)
        return v

    def math(self, e: n.Call, args: list[Any]) -> Any:
        """A built-in function (interpreter_math): unknown when an argument or any
        combination of their possibilities is; a formula's end rounded (`rounded`)."""
        combos = combinations(*args)
        if combos is None:
            return None
        results = []
        for combo in combos:
            r = interpreter_math.call(e.func, combo)
            if r is None:
                return None
            results.append(self.rounded(r, e))
        return possible(*results)

    def magnitude(self, q: Any, u: Any) -> Any:
        if isinstance(q, Iv):
            return q.map(lambda v: self.magnitude(v, u))
        assert q.dimensionality == self.base_unit(u.dims).dimensionality, u.text
        return Fraction(q.to_base_units().magnitude) / u.factor

    def with_unit(self, x: Any, unit: str) -> Any:
        if isinstance(x, Iv):
            return x.map(lambda v: self.quantity(Fraction(v), unit))
        return self.quantity(Fraction(x), unit)

    def negated(self, x: Any) -> Any:
        return x.map(lambda v: -v, increasing=False) if isinstance(x, Iv) else -x

    def arith(self, e: n.Arith, a: Any, b: Any) -> Any:
        if isinstance(a, Iv) or isinstance(b, Iv):
            r = iv_arith(e.op, a, b)
            return None if r is None else self.rounded(r, e)
        if e.op == "/" and (b == 0 if not hasattr(b, "magnitude") else b.magnitude == 0):
            return None
        if e.op == "+":
            r = a + b
        elif e.op == "-":
            r = a - b
        elif e.op == "*":
            r = a * b
        else:
            r = a / b
        return self.rounded(r, e)

    def plain(self, e: n.Expr, env: dict[str, Any]) -> Any:
        """A value where one is needed: several possibilities are unknown."""
        return one(self.value(e, env))

    def rounded(self, r: Any, e: n.Arith | n.Call) -> Any:
        if id(e) not in self.roots:
            return r
        if isinstance(r, Iv):  # each bound rounded; a rounded bound may be reached,
            # but never an open zero: no value other than 0 rounds to 0
            ends = r.map(lambda v: self.rounded(v, e))
            zero = lambda v: v is not None and getattr(v, "magnitude", v) == 0  # noqa: E731
            return Iv(ends.lo, ends.hi, r.lo_open and zero(ends.lo), r.hi_open and zero(ends.hi))
        t = self.c.types.get(id(e))
        if isinstance(t, QuantT):
            base = Fraction(r.to_base_units().magnitude)
            in_carrier = exact_sig(base / t.unit.factor)
            return self.ureg.Quantity(in_carrier * t.unit.factor, self.base_unit(t.unit.dims))
        return exact_sig(Fraction(r))

    # ------------------------------------------------------------------ conditions
    def cond(self, e: n.Expr, env: dict[str, Any]) -> tuple[bool | None, n.Expr | None]:
        """(Kleene value, the sub-expression that decided it); recorded when tracing."""
        value, decider = self._cond(e, env)
        if self.trace is not None:
            self.trace.setdefault(id(e), set()).add(value)
        return value, decider

    def _cond(self, e: n.Expr, env: dict[str, Any]) -> tuple[bool | None, n.Expr | None]:
        if isinstance(e, n.Not):
            v, d = self.cond(e.operand, env)
            return (None if v is None else not v), d
        if isinstance(e, n.Unless):
            a, ad = self.cond(e.rule, env)
            b0, bd = self.cond(e.exception, env)
            return kleene(False, (a, ad), (None if b0 is None else not b0, bd))
        if isinstance(e, (n.And, n.Or)):
            # a run of the same operator, folded along its left spine (no recursion: a rule
            # may chain hundreds of alternatives); every node's value is traced as before
            stop = isinstance(e, n.Or)
            spine = [e]
            while type(spine[-1].left) is type(e):
                spine.append(spine[-1].left)  # type: ignore[arg-type]
            acc = self.cond(spine[-1].left, env)
            for node in reversed(spine):
                acc = kleene(stop, acc, self.cond(node.right, env))
                if node is not e and self.trace is not None:
                    self.trace.setdefault(id(node), set()).add(acc[0])
            return acc
        if isinstance(e, n.Implies):
            a, ad = self.cond(e.premise, env)
            if a is False:
                return True, ad
            b, bd = self.cond(e.conclusion, env)
            if b is True:
                return True, bd
            if a is None:
                return None, ad
            return (None if b is None else False), bd
        if isinstance(e, n.Compare):
            return self.compare(e, env), e
        if n.compared(e):
            return self.over_choices(e, env), e
        if isinstance(e, n.IsKnown):
            return self.value(e.subject, env) is not None, e
        if isinstance(e, n.Quantified):
            return self.quantified(e, env), e
        v = self.value(e, env)
        return one(v), e

    def subject_name(self, e: n.Expr) -> str | None:
        if isinstance(e, n.Name) and self.c.refs.get(id(e), Ref("", "")).kind == "fact":
            return e.name
        return None

    def compare(self, e: n.Compare, env: dict[str, Any]) -> bool | None:
        if isinstance(e.left, n.PressureLit) or isinstance(e.right, n.PressureLit):
            return self.pressure(e, env)
        combos = combinations(self.value(e.left, env), self.value(e.right, env))
        if combos is None:
            return None
        t = self.c.types.get(id(e.left))
        results = set()
        for a, b in combos:  # decided when every possibility gives the same answer
            if isinstance(t, ScaleT):
                a, b = t.positions[a], t.positions[b]
            b = self.align(a, b, self.subject_name(e.left))
            if isinstance(a, Iv) or isinstance(b, Iv):
                results.add(iv_compare(e.op, a, b))
            else:
                results.add(self.op(e.op, a, b))
        return results.pop() if len(results) == 1 else None

    def pressure(self, e: n.Compare, env: dict[str, Any]) -> bool | None:
        """BP against a written pair: `<`, `<=`, `=` need both parts, `>`, `>=`, `!=` either."""
        flip = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}
        op, subject, pair = e.op, e.left, e.right
        if isinstance(subject, n.PressureLit):
            op, subject, pair = flip.get(op, op), pair, subject
        assert isinstance(pair, n.PressureLit) and isinstance(subject, n.Name)
        obs = self.record.facts.get(subject.name)
        if obs is None:
            return None
        parts = []
        for value, limit in zip(obs.value, (pair.systolic, pair.diastolic), strict=True):
            # both sides in mm[Hg]: the pair is written in mmHg or mm[Hg] (PRESSURE_PAIR)
            if isinstance(value, Bound):  # censored: the interval from 0 it stands for
                iv = censored(value.value * obs.unit.factor / mm_hg().factor, value.comparator)
                if iv.lo is None:
                    iv = Iv(Fraction(0), iv.hi, False, iv.hi_open)
                parts.append(iv_compare(op, iv, limit))
                continue
            exact = None if value is None else value * obs.unit.factor / mm_hg().factor
            parts.append(None if exact is None else self.op(op, exact, limit))
        want_all = n.PRESSURE_COMBINE[op] == "all"
        if want_all:
            if False in parts:
                return False
            return None if None in parts else True
        if True in parts:
            return True
        return None if None in parts else False

    def quantified(self, e: n.Quantified, env: dict[str, Any]) -> bool | None:
        items = self.fact(e.list_name)
        if items is None:
            return None
        yes = unknown = no = 0
        for item in items:
            inner = dict(env)
            inner.update(item)
            v, _ = self.cond(e.body, inner)
            if v is None:
                unknown += 1
            elif v:
                yes += 1
            else:
                no += 1
        total = len(items)
        q = e.quantifier
        if q in ("any", "no", "at_least"):
            k = (e.count or 0) if q == "at_least" else 1
            r = True if yes >= k else (False if yes + unknown < k else None)
            if r is False and self.only_future(e, env):
                r = None  # only an event after the evaluation date could meet it
            return (None if r is None else not r) if q == "no" else r
        if q == "all":
            return False if no else (None if unknown else True)
        if q == "majority":
            if 2 * yes > total:
                return True
            return False if 2 * (yes + unknown) <= total else None
        raise AssertionError(q)

    def only_future(self, e: n.Quantified, env: dict[str, Any]) -> bool:
        """Could only an item dated after the evaluation date meet e's body
        (future_events.py)? The body over two hypothetical items, untraced."""
        dates = past_date_fields(self.c, e)
        as_of = self.record.anchors.get("enrollment")
        if not dates or as_of is None:
            return False
        t = self.c.facts[e.list_name].type
        assert isinstance(t, ListT)
        saved, self.trace = self.trace, None
        try:
            results = []
            for past in (True, False):
                inner = dict(env)
                inner.update({name: None for name, _ in t.fields})
                if past:
                    inner.update({name: Iv(None, as_of) for name in dates})
                results.append(self.cond(e.body, inner)[0])
        finally:
            self.trace = saved
        return only_future(*results)


def censored(value: Any, comparator: str | None) -> Any:
    """A recorded value with a FHIR Quantity.comparator: the interval it stands for."""
    if comparator is None:
        return value
    if comparator in ("<", "<="):
        return Iv(None, value, hi_open=comparator == "<")
    return Iv(value, None, lo_open=comparator == ">")


def inexact(value: Fraction, comparator: str | None) -> Iv:
    """A recorded decimal a float cannot hold: the open interval between the floats
    around it (exact Fractions), its open side only for a censored bound."""
    f = float(value)
    lo = Fraction(math.nextafter(f, -math.inf))
    hi = Fraction(math.nextafter(f, math.inf))
    if comparator in ("<", "<="):
        return Iv(None, hi, hi_open=True)
    if comparator in (">", ">="):
        return Iv(lo, None, lo_open=True)
    return Iv(lo, hi, lo_open=True, hi_open=True)


def plain(value: Any, as_of: dt.date | None) -> Any:
    """A partial date or an ongoing end as an interval of dates; other values as they are."""
    if isinstance(value, Fraction) and not float_holds(value):
        return inexact(value, None)
    if isinstance(value, PartialDate):
        return Iv(value.first, value.last)
    if isinstance(value, Ongoing):
        return Iv(value.since, None, ongoing=True)
    return value
