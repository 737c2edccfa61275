"""Explanations a coordinator can verify: each criterion's clauses with the values used.

Walks the checked AST over the same normalised values the compiled evaluator reads
(`Compiled.normalise`: facts in their declared units, dates as day numbers), with the
same three-valued rules, and says for each clause what it compared: the value as
recorded (date, source) and converted into the unit of the threshold that decided, the
threshold by value (marked when it is an assumption), derived values (age, a formula
such as Cockcroft-Gault, 2 x ULN, the reference range) with their inputs, lists
summarised by their rule. Met: the clauses that made it true. Not met: every clause
that failed. Unknown: the clauses still open.

No pint here (explanations must be cheap to start): units convert through
`units.conversion_factor`, exact fractions. The walker's value for the whole rule is
held against the compiled status; where they differ (a form this walker does not know
yet) only the compiled status is shown, never a made-up reason.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from . import nodes as n
from .backends.python import Compiled
from .backends.runtime import NA, Range, add_months, elapsed_years, sig
from .checker import Ref
from .data.records import Observation, Record
from .typesys import BoolT, QuantT, ScaleT, Type
from .units import TIME, Unit, conversion_factor, parse_unit

_OPS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "=": "=", "!=": "≠"}
_NEG = {"<": "not below", "<=": "above", ">": "not above", ">=": "below", "=": "not", "!=": ""}
MARK = {True: "✓", False: "✗", None: "?"}


class _Unsupported(Exception):
    """A node form this walker does not know: the explanation falls back."""


@dataclass
class Clause:
    value: bool | None
    text: str
    children: list[Clause] = field(default_factory=list)
    kind: str = "leaf"  # leaf / and / or / not / unless / list
    notes: list[str] = field(default_factory=list)
    source: str = ""  # the clause as written in the rule
    flip: bool = False  # a `no ... with` list: the items that matter are the true ones
    item: int = 0  # a list item's clause: its number, from 1


@dataclass
class Val:
    """A value with how to show it: `shown` in words, `derived` lines for its inputs."""

    value: Any
    shown: str
    derived: list[str] = field(default_factory=list)


def _num(x: float | Fraction, digits: int = 4) -> str:
    x = float(x)
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.{digits}g}"


def _range_text(r: Range) -> str:
    """A value known as an interval (a censored value, a formula over one), in words:
    "at most 7.2", "more than 0 and at most 7.2", "between 25 and 26"."""
    low = None if r.lo == -math.inf else f"{'more than' if r.lo_open else 'at least'} {_num(r.lo)}"
    high = None if r.hi == math.inf else f"{'less than' if r.hi_open else 'at most'} {_num(r.hi)}"
    if low and high and not (r.lo_open or r.hi_open):
        return f"between {_num(r.lo)} and {_num(r.hi)}"
    return " and ".join(x for x in (low, high) if x) or "unknown"


def _distinct(a: float, b: float) -> tuple[str, str]:
    """Two numbers shown with enough digits that unequal ones never look equal."""
    for digits in range(4, 13):
        sa, sb = _num(a, digits), _num(b, digits)
        if a == b or sa != sb:
            return sa, sb
    return repr(a), repr(b)


class Explainer:
    def __init__(self, compiled: Compiled) -> None:
        self.compiled = compiled
        self.c = compiled.checked
        self.roots = n.arithmetic_roots(self.c.protocol)
        self.src = self.c.source.text

    # ------------------------------------------------------------------ words
    def label(self, name: str) -> str:
        info = self.c.facts.get(name)
        if info is not None:
            label = info.node.option("label")
            if label is not None and label.text:
                return label.text.split(";")[0].split(" (")[0]
        if name == "enrollment":
            return "enrollment"
        anchor = self.c.anchors.get(name)
        if anchor is not None and anchor.label:
            return anchor.label
        return name.replace("_", " ")

    def source(self, node: n.Node) -> str:
        return " ".join(self.src[node.span.start : node.span.end].split())

    def type(self, e: n.Expr) -> Type | None:
        return self.c.types.get(id(e))

    def carrier(self, e: n.Expr) -> Unit | None:
        t = self.type(e)
        return t.unit if isinstance(t, QuantT) else None

    def ref(self, e: n.Name) -> Ref:
        return self.c.refs[id(e)]

    def molar(self, e: n.Expr) -> Fraction | None:
        if isinstance(e, n.Name) and self.c.refs.get(id(e), Ref("", "")).kind == "fact":
            return self.c.facts[e.name].molar_mass
        return None

    # ------------------------------------------------------------------ entry
    def explain(
        self, crit: n.Criterion, status: Any, f: dict[str, Any], record: Record
    ) -> Clause | None:
        """The criterion's clause tree, or None when the walker cannot follow it."""
        self.f, self.record = f, record
        self._defined: dict[str, Val] = {}  # a definition's value, computed once per patient
        try:
            a = None
            if crit.applies is not None:
                a = self.cond(crit.applies, {})
                if a.value is False:
                    return Clause(NA, a.text, [a], "applies", source=a.source)  # type: ignore[arg-type]
            assert crit.rule is not None
            rule = self.cond(crit.rule, {})
        except (_Unsupported, KeyError, TypeError, ValueError, ZeroDivisionError, OverflowError):
            return None
        if a is not None and a.value is None and status is None:
            rule = Clause(None, f"{a.text} and {rule.text}", [a, rule], "and")  # open either way
        if rule.value is not status:
            return None  # disagrees with the compiled evaluator: show no reasons
        return rule

    # ------------------------------------------------------------------ values
    def fact_val(self, name: str) -> Val:
        obs = self.record.facts.get(name)
        v = self.f.get(name)
        if obs is None or v is None:
            why = self.record.why_unknown.get(name, "not in the record")
            return Val(None, f"{self.label(name)} unknown ({why})")
        return Val(v, f"{self.label(name)} {self.obs_text(obs)}")

    def obs_text(self, obs: Observation) -> str:
        text = obs.shown()
        if isinstance(obs.value, bool):
            return text
        return text

    def value(
        self,
        e: n.Expr,
        env: dict[str, Val],
        target: Unit | None = None,
        molar: Fraction | None = None,
    ) -> Val:
        """e's value in its carrier unit (or `target`), as the compiled code computes it."""
        if isinstance(e, n.DualQuantityLit):
            e = e.primary
        if isinstance(e, n.QuantityLit):
            unit = target or parse_unit(e.unit)
            k = conversion_factor(parse_unit(e.unit), unit, molar)
            if k is None:
                raise _Unsupported(e)
            return Val(float(e.value * k), e.raw or e.text)
        v = self._value(e, env)
        if target is not None and v.value is not None:
            src = self.carrier(e)
            if src is not None and src != target:
                k = conversion_factor(src, target, molar or self.molar(e))
                if k is None:
                    raise _Unsupported(e)
                v = Val(v.value * float(k), v.shown, v.derived)
        return v

    def _value(self, e: n.Expr, env: dict[str, Val]) -> Val:
        if isinstance(e, n.NumberLit):
            return Val(float(e.value), self.source(e))
        if isinstance(e, n.DateLit):
            return Val(e.value.toordinal(), e.value.isoformat())
        if isinstance(e, n.BoolLit):
            return Val(e.value, "yes" if e.value else "no")
        if isinstance(e, n.Name):
            return self.name(e, env)
        if isinstance(e, n.Call):
            return self.call(e, env)
        if isinstance(e, n.Magnitude):
            inner = self.value(e.expr, env, parse_unit(e.unit))
            return Val(inner.value, inner.shown, inner.derived)
        if isinstance(e, n.WithUnit):
            return self.value(e.expr, env)
        if isinstance(e, n.Arith):
            a = self.value(e.left, env)
            b = self.value(e.right, env, self.carrier(e.left) if e.op in "+-" else None)
            shown = f"({a.shown} {'×' if e.op == '*' else e.op} {b.shown})"
            derived = _merge(a.derived, b.derived)
            if a.value is None or b.value is None or (e.op == "/" and b.value == 0):
                return Val(None, shown, derived)
            r = {
                "+": lambda: a.value + b.value,
                "-": lambda: a.value - b.value,
                "*": lambda: a.value * b.value,
                "/": lambda: a.value / b.value,
            }[e.op]()
            if id(e) in self.roots:
                r = sig(r)
            return Val(r, shown, derived)
        if isinstance(e, n.Neg):
            x = self.value(e.operand, env)
            return Val(None if x.value is None else -x.value, f"-{x.shown}", x.derived)
        if isinstance(e, n.Conditional):
            c = self.cond(e.cond, env)
            if c.value is None:
                return Val(None, f"unknown ({c.text})")
            branch = e.then if c.value else e.otherwise
            v = self.value(branch, env, self.carrier(e))
            return Val(v.value, v.shown, v.derived)
        if isinstance(e, n.FirstAvailable):
            target = self.carrier(e.options[0])
            for option in e.options:
                v = self.value(option, env, target)
                if v.value is not None:
                    return v
            return Val(None, "none of the alternatives is known")
        c = self.cond(e, env)
        return Val(c.value, c.text)

    def name(self, e: n.Name, env: dict[str, Val]) -> Val:
        r = self.ref(e)
        if r.kind == "member":
            t = self.type(e)
            if isinstance(t, ScaleT):
                return Val(t.members.index(r.name), r.name)
            return Val(r.name, r.name.replace("_", " "))
        if r.kind in ("param", "field"):
            return env[r.name]
        if r.kind in ("fact", "arm"):
            if r.kind == "arm" or r.name == "arm":
                v = self.f.get("arm")
                return Val(v, f"arm {v if v is not None else 'unknown'}")
            return self.fact_val(r.name)
        if r.kind == "anchor":
            day = self.f.get("@" + r.name)
            when = dt.date.fromordinal(day).isoformat() if day else "unknown"
            return Val(day, f"{self.label(r.name)} {when}")
        if r.kind == "assume":
            value = self.c.assumed[r.name].value
            v = self.value(value, env, self.carrier(e))
            return Val(v.value, f"{v.shown} (assumed: {r.name})")
        if r.kind == "define":
            return self.defined(r.name, env)
        raise _Unsupported(r)

    def defined(self, name: str, env: dict[str, Val]) -> Val:
        # Memoised: a definition used twice by another (d2 = d1 + d1) would otherwise be walked
        # an exponential number of times (test_security: forty self-doubling definitions).
        cached = self._defined.get(name)
        if cached is None:
            cached = self._defined[name] = self._define(name)
        return cached

    def _define(self, name: str) -> Val:
        body = self.c.defines[name].body
        inner = self.value(body, {})
        t = self.type(body)
        unit = f" {t.unit.text}" if isinstance(t, QuantT) and t.unit.text else ""
        words = name.replace("_", " ")
        if inner.value is None:
            return Val(None, f"{words} unknown", inner.derived)
        shown = f"{words} {self.fmt(inner.value, t)}{unit}"
        line = f"{words} = {self.fmt(inner.value, t)}{unit}, from {inner.shown}"
        return Val(inner.value, shown, _merge(inner.derived, [line]))

    def fmt(self, x: Any, t: Type | None) -> str:
        if isinstance(t, ScaleT) and isinstance(x, int):
            return t.members[x]
        if isinstance(x, bool):
            return "yes" if x else "no"
        if isinstance(x, (int, float)):
            return _num(x)
        if isinstance(x, Range):
            return _range_text(x)
        return str(x)

    def call(self, e: n.Call, env: dict[str, Val]) -> Val:
        if e.func == "elapsed_years":
            a, b = (self.value(x, env) for x in e.args)
            years = elapsed_years(a.value, b.value)
            shown = f"completed years from {a.shown} to {b.shown}"
            return Val(years, shown, _merge(a.derived, b.derived))
        d = self.c.defines.get(e.func)
        if d is None or d.params is None:
            raise _Unsupported(e)
        inner: dict[str, Val] = {}
        args = []
        derived: list[str] = []
        for arg, p in zip(e.args, d.params, strict=True):
            unit = parse_unit(p.type.unit) if isinstance(p.type, n.QuantityTypeExpr) else None
            v = self.value(arg, env, unit)
            derived = _merge(derived, v.derived)
            if v.value is None:
                shown = f"{p.name} unknown"
            elif isinstance(v.value, (int, float, Range)) and not isinstance(v.value, bool):
                shown = self.fmt(v.value, None) + (f" {unit.text}" if unit is not None else "")
            else:
                shown = str(v.value)
            inner[p.name] = Val(v.value, shown)
            args.append(f"{p.name} {shown}")
        body = self.value(d.body, inner)
        words = e.func.replace("_", "-" if "gault" in e.func else " ")
        t = self.type(e)
        unit_text = f" {t.unit.text}" if isinstance(t, QuantT) and t.unit.text else ""
        if body.value is None:
            return Val(None, f"{words} unknown (needs {', '.join(args)})", derived)
        result = f"{self.fmt(body.value, None)}{unit_text}"
        line = f"{words} = {body.shown} = {result} ({'; '.join(args)})"
        return Val(body.value, f"{words} {result}", _merge(derived, [line]))

    # ------------------------------------------------------------------ conditions
    def cond(self, e: n.Expr, env: dict[str, Val]) -> Clause:
        c = self._cond(e, env)
        c.source = c.source or self.source(e)
        return c

    def _cond(self, e: n.Expr, env: dict[str, Val]) -> Clause:
        if isinstance(e, n.BoolLit):
            return Clause(e.value, "always" if e.value else "never")
        if isinstance(e, n.Not):
            inner = self.cond(e.operand, env)
            v = None if inner.value is None else not inner.value
            return Clause(v, f"not ({inner.text})", [inner], "not")
        if isinstance(e, (n.And, n.Or)):
            terms = [self.cond(t, env) for t in _chain(e)]
            values = [t.value for t in terms]
            stop = isinstance(e, n.Or)
            v = stop if stop in values else (None if None in values else not stop)
            kind = "or" if stop else "and"
            return Clause(v, f" {kind} ".join(t.text for t in terms), terms, kind)
        if isinstance(e, n.Unless):
            rule = self.cond(e.rule, env)
            exc = self.cond(e.exception, env)
            nexc = None if exc.value is None else not exc.value
            if rule.value is False or nexc is False:
                v: bool | None = False
            elif rule.value is None or nexc is None:
                v = None
            else:
                v = True
            return Clause(v, f"{rule.text} unless {exc.text}", [rule, exc], "unless")
        if isinstance(e, n.Implies):
            p, c = self.cond(e.premise, env), self.cond(e.conclusion, env)
            if p.value is False or c.value is True:
                v = True
            elif p.value is None or c.value is None:
                v = None
            else:
                v = False
            return Clause(v, f"if {p.text} then {c.text}", [p, c], "implies")
        if isinstance(e, n.Compare) and (
            isinstance(e.left, n.PressureLit) or isinstance(e.right, n.PressureLit)
        ):
            return self.pressure(e)
        if isinstance(e, n.Compare):
            return self.compare(e, env)
        if isinstance(e, n.CompareRef):
            return self.compare_ref(e, env)
        if isinstance(e, n.InNormalRange):
            return self.in_range(e, env)
        if isinstance(e, n.Between):
            a = self.value(e.subject, env)
            m = self.molar(e.subject)
            lo = self.value(e.low, env, self.carrier(e.subject), m)
            hi = self.value(e.high, env, self.carrier(e.subject), m)
            text = f"{a.shown} between {lo.shown} and {hi.shown}"
            if None in (a.value, lo.value, hi.value):
                return Clause(None, text, notes=a.derived)
            return Clause(lo.value <= a.value <= hi.value, text, notes=a.derived)
        if isinstance(e, n.Member):
            a = self.value(e.subject, env)
            t = self.type(e.subject)
            members = [m.replace("_", " ") for m in e.members]
            verb = "none of" if e.negated else "one of"
            shown = a.shown
            if isinstance(t, ScaleT) and isinstance(a.value, int):
                shown = f"{self.label_of(e.subject)} {t.members[a.value]}"
            text = f"{shown}: {verb} {', '.join(members)}"
            if a.value is None:
                return Clause(None, text, notes=a.derived)
            value = t.members[a.value] if isinstance(t, ScaleT) else a.value
            return Clause((value in e.members) != e.negated, text, notes=a.derived)
        if isinstance(e, n.IsKnown):
            a = self.value(e.subject, env)
            return Clause(a.value is not None, f"{a.shown} is known")
        if isinstance(e, n.Window):
            return self.window(e, env)
        if isinstance(e, n.Order):
            d, a = self.value(e.subject, env), self.value(e.anchor, env)
            text = f"{d.shown} {e.direction} {a.shown}"
            if d.value is None or a.value is None:
                return Clause(None, text)
            return Clause(d.value < a.value if e.direction == "before" else d.value > a.value, text)
        if isinstance(e, n.Quantified):
            return self.quantified(e, env)
        if isinstance(e, (n.Name, n.Call, n.FirstAvailable, n.Conditional)):
            v = self.value(e, env)
            if v.value is None or isinstance(v.value, bool):
                shown = v.shown
                return Clause(v.value, shown, notes=v.derived)
        raise _Unsupported(e)

    def pressure(self, e: n.Compare) -> Clause:
        """A blood pressure against a written pair (nodes.PRESSURE_COMBINE): `<` needs
        both parts, `>` either."""
        flip = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}
        op, subject, pair = e.op, e.left, e.right
        if isinstance(subject, n.PressureLit):
            op, subject, pair = flip.get(op, op), pair, subject
        if not isinstance(pair, n.PressureLit) or not isinstance(subject, n.Name):
            raise _Unsupported(e)
        v = self.fact_val(subject.name)
        limit = pair.raw or f"{_num(pair.systolic)}/{_num(pair.diastolic)} {pair.unit}".strip()
        want_all = n.PRESSURE_COMBINE[op] == "all"
        rule = "both parts must hold" if want_all else "either part suffices"
        if v.value is None:
            return Clause(None, f"{v.shown} {_OPS[op]} {limit}")
        parts: list[bool | None] = []
        words = []
        for name, value, bound in zip(
            ("systolic", "diastolic"), v.value, (pair.systolic, pair.diastolic), strict=True
        ):
            ok = None if value is None else _apply(op, value, float(bound))
            parts.append(ok)
            words.append(f"{name} {'unknown' if value is None else _num(value)} {MARK[ok]}")
        if want_all:
            val = False if False in parts else (None if None in parts else True)
        else:
            val = True if True in parts else (None if None in parts else False)
        return Clause(val, f"{v.shown} {_OPS[op]} {limit} ({rule}: {', '.join(words)})")

    def label_of(self, e: n.Expr) -> str:
        if isinstance(e, n.Name):
            return self.label(e.name)
        return self.source(e)

    def compare(self, e: n.Compare, env: dict[str, Val]) -> Clause:
        left, right, op = e.left, e.right, e.op
        lt, rt = self.type(left), self.type(right)
        if isinstance(rt, ScaleT) and not isinstance(lt, ScaleT):
            left, right = right, left
            op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
        a = self.value(left, {**env})
        b = self.value(right, env, self.carrier(left), self.molar(left))
        notes = _merge(a.derived, b.derived)
        if isinstance(lt, (ScaleT, BoolT)) or not isinstance(a.value, float):
            shown_a = a.shown
            if isinstance(lt, ScaleT) and isinstance(a.value, int):
                shown_a = f"{self.label_of(left)} {lt.members[a.value]}"
            text = f"{shown_a} {_OPS[op]} {b.shown}"
            if a.value is None or b.value is None:
                return Clause(None, text, notes=notes)
            value = _apply(op, a.value, b.value)
            if op in ("=", "!=") and not isinstance(lt, BoolT):
                # "Sex female: is not male" rather than "Sex female = male"
                verb = "is" if value == (op == "=") else "is not"
                text = f"{shown_a}: {verb} {b.shown}"
            return Clause(value, text, notes=notes)
        # a quantity: shown in the unit of the threshold that decides
        text = self.quantity_text(left, right, a, b, op, env)
        if a.value is None or b.value is None:
            return Clause(None, text, notes=notes)
        value = _apply(op, a.value, b.value)
        notes += self.disagreement(left, right, op, value, env)
        return Clause(value, text, notes=notes)

    def deciding_unit(self, right: n.Expr) -> tuple[Unit | None, str]:
        """The unit a threshold was written in (the first of a dual), and its words."""
        if isinstance(right, n.DualQuantityLit):
            raw = right.secondary.raw or right.secondary.text
            return parse_unit(right.primary.unit), f"; the protocol also writes {raw}"
        if isinstance(right, n.QuantityLit):
            return parse_unit(right.unit), ""
        if isinstance(right, n.Name) and self.ref(right).kind == "assume":
            lit = self.c.assumed[right.name].value
            if isinstance(lit, (n.QuantityLit, n.DualQuantityLit)):
                return self.deciding_unit(lit)
        return None, ""

    def quantity_text(
        self, left: n.Expr, right: n.Expr, a: Val, b: Val, op: str, env: dict[str, Val]
    ) -> str:
        carrier = self.carrier(left)
        unit, also = self.deciding_unit(right)
        if a.value is None or b.value is None or carrier is None:
            return f"{a.shown} {_OPS[op]} {b.shown}"
        shown_a = a.shown
        if unit is not None and unit != carrier:
            k = conversion_factor(carrier, unit, self.molar(left))
            if k is not None:
                av, bv = _distinct(a.value * float(k), b.value * float(k))
                shown_a = f"{a.shown} = {av} {unit.text}"
                literal = isinstance(right, (n.QuantityLit, n.DualQuantityLit))
                shown_b = b.shown if literal else f"{bv} {unit.text}{self.assumed(right)}"
                return f"{shown_a} {_OPS[op]} {shown_b}{also}"
        av, bv = _distinct(a.value, b.value)
        shown_b = b.shown
        if _num(b.value) not in b.shown.replace(" ", ""):
            shown_b = f"{b.shown} = {bv} {carrier.text}"
        if av not in shown_a:
            shown_a = f"{shown_a} = {av} {carrier.text}"
        return f"{shown_a} {_OPS[op]} {shown_b}{also}"

    def assumed(self, right: n.Expr) -> str:
        if isinstance(right, n.Name) and self.ref(right).kind == "assume":
            return f" (assumed: {right.name})"
        return ""

    def disagreement(
        self, left: n.Expr, right: n.Expr, op: str, value: bool, env: dict[str, Val]
    ) -> list[str]:
        """A measured value decides, but a computed alternative would decide otherwise."""
        options = _alternatives(self.c, left)
        if len(options) < 2:
            return []
        target = self.carrier(left)
        vals = [self.value(o, env, target) for o in options]
        used = next((i for i, v in enumerate(vals) if v.value is not None), None)
        if used is None:
            return []
        b = self.value(right, env, target, self.molar(left))
        out = []
        for i, v in enumerate(vals):
            if i == used or v.value is None or b.value is None:
                continue
            if _apply(op, v.value, b.value) != value:
                out.append(
                    f"the measured and computed values disagree: {vals[used].shown} decides "
                    f"({'meets' if value else 'does not meet'} {_OPS[op]} {b.shown}), but "
                    f"{v.shown} would {'not ' if value else ''}meet it"
                )
                out += [d for d in v.derived if d not in out]
        return out

    def limits(self, name: str) -> tuple[Any, Any, str]:
        lo, hi = self.f.get(name + "#low"), self.f.get(name + "#high")
        obs = self.record.facts.get(name)
        info = self.c.facts[name]
        unit = info.type.unit.text if isinstance(info.type, QuantT) else ""
        if obs is not None and (obs.low is not None or obs.high is not None):
            origin = "reported with the value"
        elif info.node.option("refrange") is not None:
            origin = "the protocol's default"
        else:
            origin = "not reported"
        lo_t = "" if lo is None else _num(lo)
        hi_t = "" if hi is None else _num(hi)
        return lo, hi, f"reference range {lo_t}-{hi_t} {unit} ({origin})"

    def compare_ref(self, e: n.CompareRef, env: dict[str, Val]) -> Clause:
        assert isinstance(e.left, n.Name)
        a = self.value(e.left, env)
        lo, hi, words = self.limits(e.left.name)
        limit = hi if e.limit == "ULN" else lo
        unit = self.carrier(e.left)
        u = f" {unit.text}" if unit is not None else ""
        factor = float(e.factor.value)
        if limit is None:
            text = (
                f"{a.shown} {_OPS[e.op]} {e.factor.text} × {e.limit} ({e.limit} unknown: {words})"
            )
            return Clause(None, text)
        bound = factor * limit
        text = (
            f"{a.shown} {_OPS[e.op]} {e.factor.text} × {e.limit} = {e.factor.text} × "
            f"{_num(limit)}{u} = {_num(bound)}{u}"
        )
        notes = [f"{e.factor.text} × {e.limit} from the {words}"]
        if a.value is None:
            return Clause(None, text, notes=notes)
        op = "==" if e.op == "=" else e.op
        return Clause(_apply(op, a.value, bound), text, notes=notes)

    def in_range(self, e: n.InNormalRange, env: dict[str, Val]) -> Clause:
        assert isinstance(e.subject, n.Name)
        a = self.value(e.subject, env)
        lo, hi, words = self.limits(e.subject.name)
        text = f"{a.shown} within the normal range ({words})"
        if a.value is None or (lo is None and hi is None):
            return Clause(None, text)
        ok = (lo is None or lo <= a.value) and (hi is None or a.value <= hi)
        return Clause(ok, text)

    def window(self, e: n.Window, env: dict[str, Val]) -> Clause:
        d, a = self.value(e.subject, env), self.value(e.anchor, env)
        kind = {"within": "within", "more": "more than", "less": "less than"}[e.kind]
        span = e.duration.raw or e.duration.text
        text = f"{d.shown} {kind} {span} {e.direction} {a.shown}"
        if d.value is None or a.value is None:
            return Clause(None, text)
        unit = parse_unit(e.duration.unit)
        amount = e.duration.value * unit.factor
        sign = -1 if e.direction == "before" else 1
        if unit.dims == (("[calendar]", 1),) and amount.denominator == 1:
            edge: float = add_months(a.value, sign * int(amount))
        else:
            days = amount * (Fraction(30436875, 1000000) if unit.dims != TIME else 1)
            days = days / 86400 if unit.dims == TIME else days
            edge = a.value + float(sign * days)
        x, y = d.value, a.value
        if e.direction == "before":
            ok = {"within": edge <= x <= y, "more": x < edge, "less": edge < x <= y}[e.kind]
        else:
            ok = {"within": y <= x <= edge, "more": x > edge, "less": y <= x < edge}[e.kind]
        gap = x - y
        rel = f"{abs(int(gap))} days {'before' if gap < 0 else 'after'}" if gap else "same day"
        return Clause(ok, f"{text} ({rel})")

    def quantified(self, e: n.Quantified, env: dict[str, Val]) -> Clause:
        items = self.f.get(e.list_name)
        what = self.label(e.list_name)
        rule = self.source(e.body)
        if items is None:
            why = self.record.why_unknown.get(e.list_name, "not in the record")
            return Clause(None, f"{what} unknown ({why})", kind="list")
        t = self.c.record_types[e.list_name]
        fields = dict(getattr(t, "fields", ()))
        yes = unknown = 0
        rows: list[Clause] = []
        raw = self.record.facts[e.list_name]
        raw_items = raw.value if raw is not None else []
        for i, item in enumerate(items):
            inner = dict(env)
            for k, v in item.items():
                shown = self.field_text(k, v, fields.get(k), raw_items, i)
                inner[k] = Val(v, shown)
            c = self.cond(e.body, inner)
            c.item = i + 1
            rows.append(c)
            if c.value is None:
                unknown += 1
            elif c.value:
                yes += 1
        total = len(items)
        q = e.quantifier
        need = {
            "any": "at least one",
            "all": "all",
            "no": "none",
            "majority": "more than half",
            "at_least": f"at least {e.count}",
        }[q]
        if q == "any":
            v = True if yes else (None if unknown else False)
        elif q == "no":
            v = False if yes else (None if unknown else True)
        elif q == "all":
            v = False if yes + unknown < total else (None if unknown else True)
        elif q == "majority":
            v = True if 2 * yes > total else (False if 2 * (yes + unknown) <= total else None)
        else:
            k = e.count or 0
            v = True if yes >= k else (False if yes + unknown < k else None)
        words = e.list_name.replace("_", " ")
        if not total:
            summary = f"no {words} recorded ({what}); the rule asks for {need} with {rule}"
        else:
            summary = f"{yes} of {total} {words} with {rule}"
            if unknown:
                summary += f" ({unknown} unknown)"
            summary += f"; the rule asks for {need}"
        return Clause(v, summary, rows, "list", flip=q == "no")

    def field_text(self, name: str, v: Any, t: Type | None, raw: list[Any], i: int) -> str:
        if v is None:
            return f"{name} unknown"
        if isinstance(t, ScaleT) and isinstance(v, int):
            return f"{name} {t.members[v]}"
        if isinstance(v, bool):
            return f"{name} {'yes' if v else 'no'}"
        if isinstance(v, int) and t is not None and t.__class__.__name__ == "DateT":
            return f"{name} {dt.date.fromordinal(v).isoformat()}"
        if isinstance(v, float):
            src = raw[i].get(name) if i < len(raw) and isinstance(raw[i], dict) else None
            if isinstance(src, Observation):
                return f"{name} {src.shown()}"
            return f"{name} {_num(v)}"
        return f"{name} {str(v).replace('_', ' ')}"


def _apply(op: str, a: Any, b: Any) -> bool:
    return {
        "<": a < b,
        "<=": a <= b,
        ">": a > b,
        ">=": a >= b,
        "=": a == b,
        "==": a == b,
        "!=": a != b,
    }[op]


def _chain(e: n.And | n.Or) -> list[n.Expr]:
    kind = type(e)
    out: list[n.Expr] = []
    for side in (e.left, e.right):
        out += _chain(side) if type(side) is kind else [side]  # type: ignore[arg-type]
    return out


def _alternatives(checked: Any, e: n.Expr) -> tuple[n.Expr, ...]:
    """The options of a `first available` behind e (directly or through a definition)."""
    seen = 0
    while isinstance(e, n.Name) and seen < 50:
        r = checked.refs.get(id(e))
        if r is None or r.kind != "define":
            return ()
        e = checked.defines[r.name].body
        seen += 1
    if isinstance(e, n.FirstAvailable):
        return e.options
    return ()


# ---------------------------------------------------------------------- as lines


def deciding_sources(clause: Clause, status: Any) -> list[str]:
    """The deciding clauses as written in the rule (the same choice as `reasons`)."""
    want = status if status in (True, False) else None
    out: list[str] = []
    _sources(clause, want, out)
    return list(dict.fromkeys(out))


def _sources(c: Clause, want: bool | None, out: list[str]) -> None:
    if c.kind == "applies":
        _sources(c.children[0], False, out)
    elif c.kind in ("and", "or"):
        picked = [t for t in c.children if t.value is want] or c.children
        for t in picked:
            _sources(t, want, out)
    elif c.kind == "implies":
        for t in c.children:
            _sources(t, t.value, out)
    elif c.kind == "unless":
        rule, exc = c.children
        if c.value is False and exc.value is True:
            out.append(f"unless {exc.source}")
        else:
            _sources(rule, want, out)
    else:
        out.append(c.source)


def reasons(clause: Clause, status: Any) -> list[str]:
    """The clauses that decided, as indented lines: all that made it true (met), all
    that failed (not met), the open ones (unknown)."""
    out: list[str] = []
    _lines(clause, status if status in (True, False) else None, 0, out)
    return out


def _lines(c: Clause, want: bool | None, depth: int, out: list[str]) -> None:
    pad = "  " * depth
    if c.kind == "applies":
        out.append(f"{pad}not applicable: the criterion applies only when")
        _lines(c.children[0], False, depth + 1, out)
        return
    if c.kind in ("and", "or"):
        picked = [t for t in c.children if t.value is want]
        if not picked:
            picked = c.children
        if len(picked) == 1:
            _lines(picked[0], want, depth, out)
            return
        join = {
            ("and", True): "all of these hold",
            ("and", False): "these fail",
            ("or", True): "these hold",
            ("or", False): "none of these holds",
        }.get((c.kind, c.value), "still open")
        out.append(f"{pad}{join}:")
        for t in picked:
            _lines(t, want, depth + 1, out)
        return
    if c.kind == "not":
        inner = c.children[0]
        inner_want = None if want is None else not want
        if inner.kind == "leaf" or inner.kind == "list":
            out.append(f"{pad}{MARK[c.value]} not: {inner.text}")
            out += [f"{pad}    {x}" for x in inner.notes]
            item_want = (
                None if inner_want is None else (not inner_want if inner.flip else inner_want)
            )
            for row in inner.children if inner.kind == "list" else []:
                if row.value is item_want:
                    _item_lines(row, item_want, depth, out)
            return
        out.append(f"{pad}not:")
        _lines(inner, inner_want, depth + 1, out)
        return
    if c.kind == "implies":
        premise, conclusion = c.children
        if c.value is True and premise.value is False:
            out.append(f"{pad}✓ the condition does not hold, so nothing is required:")
            _lines(premise, False, depth + 1, out)
            return
        out.append(f"{pad}{MARK[premise.value]} if:")
        _lines(premise, premise.value, depth + 1, out)
        out.append(f"{pad}{MARK[conclusion.value]} then:")
        _lines(conclusion, conclusion.value, depth + 1, out)
        return
    if c.kind == "unless":
        rule, exc = c.children
        if c.value is True:
            _lines(rule, True, depth, out)
            out.append(f"{pad}{MARK[exc.value]} unless (exception does not apply): {exc.text}")
            return
        if c.value is False and exc.value is True:
            if rule.value is not False:
                _lines(rule, rule.value, depth, out)
            else:
                _lines(rule, False, depth, out)
            out.append(f"{pad}✓ unless (the exception applies): {exc.text}")
            return
        _lines(rule, want, depth, out)
        out.append(f"{pad}{MARK[exc.value]} unless: {exc.text}")
        return
    out.append(f"{pad}{MARK[c.value]} {c.text}")
    for x in c.notes:
        out.append(f"{pad}    {x}")
    if c.kind == "list":
        item_want = None if want is None else (not want if c.flip else want)
        shown = [r for r in c.children if r.value is item_want or item_want is None]
        for r in shown[:10]:
            _item_lines(r, item_want, depth, out)
        if len(shown) > 10:
            out.append(f"{pad}    ... and {len(shown) - 10} more")


def _item_lines(row: Clause, want: bool | None, depth: int, out: list[str]) -> None:
    """One list item: a single clause on one line, a compound one clause by clause."""
    pad = "  " * depth
    if row.kind == "leaf":
        out.append(f"{pad}    {MARK[row.value]} item {row.item}: {row.text}")
        return
    out.append(f"{pad}    {MARK[row.value]} item {row.item}:")
    _lines(row, want, depth + 3, out)


def _merge(*lists: list[str]) -> list[str]:
    """The lines of `lists` in order, each once (a shared input is explained once)."""
    return list(dict.fromkeys(line for lines in lists for line in lines))
