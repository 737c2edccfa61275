"""Compile a checked protocol to Python source, then to one `evaluate(f)` function.

Like Jinja2's code generator: the AST is written out as Python statements, `compile()`d
and run in a namespace holding only `runtime.EXPORTS` and constants made here, with a
map from generated lines back to criteria lines. Every unit conversion is folded into
a constant at this point, so evaluating a patient is float, int and string work only.

Nothing from the criteria file is pasted into the code: names become generated local
names (`v12`), strings appear only as `repr()` literals used as dictionary keys or
category values, and sets are constants built here and passed in the namespace.

The compiled `evaluate(f)` takes a dict of normalised values (see `normalise`):
facts by name, anchors as "@name" (day numbers), reference limits as "name#low" and
"name#high", and returns (verdict, statuses) with statuses True / False / None / NA
in protocol order.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .. import nodes as n
from ..checker import CheckResult, Ref
from ..data.records import Observation, Ongoing, PartialDate, Record, fact_types
from ..typesys import DateT, IntT, ListT, NumberT, PressureT, QuantT, ScaleT, Type
from ..units import TIME, Unit, conversion_factor, parse_unit
from . import runtime

FILENAME_PREFIX = "<critlang "


@dataclass
class Criterion:
    id: str
    section: str  # "inclusion" / "exclusion"
    node: n.Criterion
    facts: frozenset[str]  # facts (and anchors, as "@name") the criterion depends on


@dataclass
class Compiled:
    checked: CheckResult
    source_code: str
    evaluate: Callable[[dict[str, Any]], tuple[str, tuple[Any, ...]]]
    criteria: list[Criterion]
    line_map: dict[int, int]  # generated line -> criteria file line
    normalisers: dict[str, Callable[[Observation | None], Any]] = field(default_factory=dict)
    ranged: tuple[str, ...] = ()
    dated: tuple[str, ...] = ()  # facts whose value's own date a rule reads (`date of x`)
    generated: Callable[[dict[str, Any]], tuple[str, tuple[Any, ...]]] | None = None  # raw

    def criteria_line(self, generated_line: int) -> int | None:
        """The criteria-file line a generated line came from (for runtime faults)."""
        best = None
        for g, c in sorted(self.line_map.items()):
            if g <= generated_line:
                best = c
        return best

    def normalise(self, record: Record) -> dict[str, Any]:
        """A record's exact observations as the plain values `evaluate` reads.

        Conflicting candidate values (record.alternatives) travel under the key "#" with
        the deceased flag, as (per fact: the candidates' keys and values, deceased); the
        wrapper made by `compile_protocol` evaluates each combination of candidates.
        """
        f: dict[str, Any] = {}
        for name, conv in self.normalisers.items():
            f[name] = conv(record.facts.get(name))
        for name in self.dated:
            obs = record.facts.get(name)
            day = obs.date if obs is not None else None
            f[name + "@date"] = day.toordinal() if day is not None else None
        for name in self.ranged:
            obs = record.facts.get(name)
            low, high = _range_limits(obs, self.checked, name)
            f[name + "#low"] = low
            f[name + "#high"] = high
        for name, day in record.anchors.items():
            f["@" + name] = day.toordinal() if day else None
        if record.alternatives or record.deceased is not False:
            alternatives = []
            for name, candidates in sorted(record.alternatives.items()):
                if name not in self.normalisers:
                    continue
                options = []
                for obs in candidates:
                    keys = {name: self.normalisers[name](obs)}
                    if name in self.dated:
                        keys[name + "@date"] = obs.date.toordinal() if obs.date else None
                    if name in self.ranged:
                        low, high = _range_limits(obs, self.checked, name)
                        keys[name + "#low"], keys[name + "#high"] = low, high
                    options.append(keys)
                alternatives.append(options)
            f["#"] = (alternatives, record.deceased)
        return f


def _range_limits(obs: Observation | None, checked: CheckResult, name: str) -> tuple[Any, Any]:
    info = checked.facts[name]
    t = info.type
    if not isinstance(t, QuantT):
        return None, None
    low = high = None
    unit = None
    if obs is not None and (obs.low is not None or obs.high is not None):
        low, high, unit = obs.low, obs.high, obs.unit
    else:
        default = info.node.option("refrange")
        if default is not None and default.quantity and default.high:
            low, high = default.quantity.value, default.high.value
            unit = parse_unit(default.quantity.unit)
            hu = parse_unit(default.high.unit)
            high = high * (conversion_factor(hu, unit, info.molar_mass) or 1)
    if unit is None:
        return None, None
    k = conversion_factor(unit, t.unit, info.molar_mass)
    if k is None:
        return None, None
    return (
        None if low is None else float(low * k),
        None if high is None else float(high * k),
    )


def censored(bound: float, comparator: str) -> runtime.Range:
    """A censored value (FHIR Quantity.comparator, a modifier element) as the Range of
    values it stands for; the other side is unbounded (nothing is assumed about it)."""
    inf = float("inf")
    if comparator in ("<", "<="):
        return runtime.Range(-inf, bound, False, comparator == "<")
    return runtime.Range(bound, inf, comparator == ">", False)


def _quantity_normaliser(t: QuantT, molar: Fraction | None) -> Callable[[Any], Any]:
    cache: dict[Unit, float | Fraction] = {}

    def conv(obs: Observation | None) -> Any:
        if obs is None:
            return None
        assert obs.unit is not None
        k = cache.get(obs.unit)
        if k is None:
            factor = conversion_factor(obs.unit, t.unit, molar)
            assert factor is not None  # the loader refused other units
            k = cache[obs.unit] = factor
        if obs.comparator is not None:  # the bound converts like a value (k > 0)
            return censored(float(obs.value * k), obs.comparator)
        return float(obs.value * k)  # exact product, rounded once

    return conv


def _day(v: Any) -> Any:
    """A date as a day number; a partial date or an ongoing end as a runtime.Range."""
    if v is None:
        return None
    if isinstance(v, PartialDate):
        return runtime.Range(v.first.toordinal(), v.last.toordinal())
    if isinstance(v, Ongoing):
        return runtime.Range(v.since.toordinal(), float("inf"), ongoing=True)
    return v.toordinal()


def _number(obs: Observation) -> Any:
    if obs.comparator is not None:
        return censored(float(obs.value), obs.comparator)
    return float(obs.value)


def _scalar_normaliser(t: Type, molar: Fraction | None = None) -> Callable[[Any], Any]:
    if isinstance(t, QuantT):
        qconv = _quantity_normaliser(t, molar)
        return lambda v: qconv(v) if isinstance(v, Observation) else None
    if isinstance(t, NumberT):
        return lambda v: None if v is None else float(v)
    if isinstance(t, ScaleT):
        index = {m: i for i, m in enumerate(t.members)}
        return lambda v: None if v is None else index[v]
    if isinstance(t, DateT):
        return _day
    if isinstance(t, IntT):
        return lambda v: None if v is None else int(v)
    return lambda v: v  # bool, category string


def _pressure_normaliser(t: PressureT) -> Callable[[Observation | None], Any]:
    """(systolic, diastolic) as floats in mm[Hg], each None when not recorded."""

    def conv(obs: Observation | None) -> tuple[float | None, float | None] | None:
        if obs is None:
            return None
        assert obs.unit is not None
        k = conversion_factor(obs.unit, t.unit)
        assert k is not None  # the reader refused other units
        return tuple(None if v is None else float(v * k) for v in obs.value)  # type: ignore[return-value]

    return conv


def _normaliser(t: Type, molar: Fraction | None) -> Callable[[Observation | None], Any]:
    if isinstance(t, QuantT):
        return _quantity_normaliser(t, molar)
    if isinstance(t, PressureT):
        return _pressure_normaliser(t)
    if isinstance(t, ListT):
        fields = [(name, _scalar_normaliser(ft)) for name, ft in t.fields]

        def conv_list(obs: Observation | None) -> list[dict[str, Any]] | None:
            if obs is None:
                return None
            return [{name: c(item.get(name)) for name, c in fields} for item in obs.value]

        return conv_list
    if isinstance(t, NumberT):
        return lambda obs: None if obs is None else _number(obs)
    inner = _scalar_normaliser(t)
    return lambda obs: None if obs is None else inner(obs.value)


class _Getter:
    """operator.itemgetter over fixed keys, hashable so it can be a compiled constant."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self.get = operator.itemgetter(*keys)

    def __hash__(self) -> int:
        return hash(self.keys)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Getter) and other.keys == self.keys


class _Writer:
    """Lines of Python with their criteria-file line (0: none)."""

    def __init__(self, level: int = 0) -> None:
        self.lines: list[tuple[str, int]] = []
        self.level = level
        self.source_line = 0

    def __call__(self, text: str) -> None:
        self.lines.append(("    " * self.level + text, self.source_line))

    @contextmanager
    def indent(self) -> Iterator[None]:
        self.level += 1
        try:
            yield
        finally:
            self.level -= 1


class _Codegen:
    def __init__(self, checked: CheckResult) -> None:
        self.c = checked
        self.w = _Writer()
        self.counter = 0
        self.consts: dict[str, Any] = {}
        self.const_ids: dict[tuple[str, Any], str] = {}
        self.env: dict[tuple[str, str], str] = {}  # (ref kind, name) -> python expr
        self.fn_names: dict[str, str] = {}
        self.in_function = False
        # evaluate() computes facts, definitions and window edges once, up front
        self.prologue = _Writer(level=1)
        self.hoisted: dict[tuple[str, ...], str] = {}
        self.fn_prologue = _Writer(level=1)  # the same for the function being written
        self.fn_hoisted: dict[tuple[str, ...], str] = {}
        self.loads: dict[str, str] = {}  # record key -> local name, read at the top
        self.loop_depth = 0
        self.rounded = n.arithmetic_roots(checked.protocol)
        self.alt_memo: dict[int, bool] = {}

    # ------------------------------------------------------------------ helpers
    def tmp(self, prefix: str = "v") -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def const(self, value: Any) -> str:
        """A constant as Python source: numbers and strings as literals, sets by name."""
        if isinstance(value, bool) or value is None:
            return repr(value)
        if isinstance(value, (int, float)):
            return repr(value)
        if isinstance(value, str):
            return repr(value)  # a quoted literal, never code
        key = (type(value).__name__, value)
        if key not in self.const_ids:
            name = f"K{len(self.const_ids)}"
            self.const_ids[key] = name
            # a getter goes in as the bare itemgetter: no Python frame per patient
            self.consts[name] = value.get if isinstance(value, _Getter) else value
        return self.const_ids[key]

    def type(self, e: n.Expr) -> Type:
        return self.c.types[id(e)]

    def ref(self, e: n.Name) -> Ref:
        return self.c.refs[id(e)]

    def at(self, node: n.Node) -> None:
        if node.span.line:
            self.w.source_line = node.span.line

    def once(self, key: tuple[str, ...], node: n.Node, make: Callable[[], str]) -> str:
        """Code computed once per patient at the top of evaluate() (not in functions).

        Each hoisted item is written as its own block at the function's top level and
        appended to the prologue when complete, so whatever it needs (hoisted while it
        was being written) stands before it.
        """
        # in a function (a definition with parameters) the same, at the function's top
        prologue, hoisted = (
            (self.fn_prologue, self.fn_hoisted)
            if self.in_function
            else (self.prologue, self.hoisted)
        )
        if key not in hoisted:
            saved = self.w
            self.w = _Writer(level=1)
            self.at(node)
            try:
                result = make()
            finally:
                block, self.w = self.w, saved
            prologue.lines.extend(block.lines)
            hoisted[key] = result
        return hoisted[key]

    # ------------------------------------------------------------------ values
    def carrier(self, e: n.Expr) -> Unit | None:
        t = self.type(e)
        return t.unit if isinstance(t, QuantT) else None

    def factor(self, src: Unit | None, dst: Unit | None, molar: Fraction | None = None) -> Fraction:
        if src is None or dst is None:
            return Fraction(1)
        k = conversion_factor(src, dst, molar)
        assert k is not None, (src, dst)  # the checker proved the dimensions
        return k

    def scaled(self, expr: str, k: Fraction, alt: bool = False) -> str:
        """`expr` times a conversion factor, as code (None stays None)."""
        if k == 1:
            return expr
        if not expr.isidentifier():  # a literal: fold the factor in now
            return self.const(float(expr) * float(k))
        out = self.tmp()
        if alt:
            self.w(f"{out} = alt_map({expr}, {self.const(float(k))})")
        else:
            self.w(f"{out} = None if {expr} is None else {expr} * {self.const(float(k))}")
        return out

    def alt(self, e: n.Expr) -> bool:
        """May e's value be several possibilities (runtime.Alt)? Only below a conditional."""
        key = id(e)
        if key not in self.alt_memo:
            self.alt_memo[key] = False  # a definition cannot refer to itself (E105)
            self.alt_memo[key] = self._alt(e)
        return self.alt_memo[key]

    def _alt(self, e: n.Expr) -> bool:
        if isinstance(e, n.Conditional):
            return True
        if isinstance(e, n.Name):
            r = self.c.refs.get(id(e))
            return r is not None and r.kind == "define" and self.alt(self.c.defines[r.name].body)
        if isinstance(e, n.Call):
            if any(self.alt(a) for a in e.args):
                return True
            d = self.c.defines.get(e.func)
            return d is not None and self.alt(d.body)
        if isinstance(e, (n.Arith, n.Neg, n.Magnitude, n.WithUnit, n.FirstAvailable)):
            return any(self.alt(x) for x in e.children() if isinstance(x, n.Expr))
        return False

    def plain(self, e: n.Expr, target: Unit | None = None, molar: Fraction | None = None) -> str:
        """A value where one possibility is needed: several possibilities are unknown."""
        code = self.value(e, target, molar)
        if not self.alt(e):
            return code
        out = self.tmp()
        self.w(f"{out} = decided({code})")
        return out

    def literal_in(self, lit: n.QuantityLit, dst: Unit, molar: Fraction | None = None) -> str:
        k = self.factor(parse_unit(lit.unit), dst, molar)
        return self.const(float(lit.value * k))

    def value(self, e: n.Expr, target: Unit | None = None, molar: Fraction | None = None) -> str:
        """Code for e's value (a variable name or a literal), in `target` if given."""
        if isinstance(e, n.DualQuantityLit):
            e = e.primary
        if isinstance(e, n.QuantityLit):
            unit = target or parse_unit(e.unit)
            return self.literal_in(e, unit, molar)
        code = self._value(e)
        if target is not None:
            return self.scaled(code, self.factor(self.carrier(e), target, molar), self.alt(e))
        return code

    def _value(self, e: n.Expr) -> str:
        self.at(e)
        if isinstance(e, n.NumberLit):
            return self.const(float(e.value))
        if isinstance(e, n.DateLit):
            return self.const(e.value.toordinal())
        if isinstance(e, n.BoolLit):
            return self.const(e.value)
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
            if not inner.isidentifier():  # a literal: fold the sign in now
                return self.const(-float(inner))
            out = self.tmp()
            if self.alt(e.operand):
                self.w(f"{out} = alt_map({inner}, -1.0)")
            else:
                self.w(f"{out} = None if {inner} is None else -{inner}")
            return out
        if isinstance(e, n.Conditional):
            # Both branches are computed (values are pure): the code stays flat however
            # deep conditionals nest. With the condition unknown the value is both
            # possibilities (runtime.choice), and a comparison over them is decided when
            # they agree.
            out = self.tmp()
            cond = self.cond(e.cond)
            target = self.carrier(e)
            then = self.value(e.then, target)
            otherwise = self.value(e.otherwise, target)
            self.w(
                f"{out} = {then} if {cond} is True else "
                f"({otherwise} if {cond} is False else choice({then}, {otherwise}))"
            )
            return out
        if isinstance(e, n.FirstAvailable):
            # one `if` per option at the same level: flat however many options
            out = self.tmp()
            target = self.carrier(e.options[0])
            self.w(f"{out} = {self.value(e.options[0])}")
            for option in e.options[1:]:
                self.w(f"if {out} is None:")
                with self.w.indent():
                    self.w(f"{out} = {self.value(option, target)}")
            return out
        if isinstance(e, n.DateOf):
            return self.load(e.fact + "@date", e)
        if isinstance(e, n.Attribute):  # a blood pressure's part (the checker allows no other)
            whole = self.load(e.obj, e)
            index = 0 if e.attr == "systolic" else 1
            out = self.tmp()
            self.w(f"{out} = None if {whole} is None else {whole}[{index}]")
            return out
        # a condition used as a value (e.g. `x = (a > b)`)
        return self.cond(e)

    def name(self, e: n.Name) -> str:
        r = self.ref(e)
        if r.kind == "member":
            t = self.type(e)
            if isinstance(t, ScaleT):
                return self.const(t.positions[r.name])
            return self.const(r.name)
        if r.kind == "assume":
            value = self.c.assumed[r.name].value
            return self.value(value)
        key = (r.kind, r.name)
        if r.kind == "field":
            out = self.tmp()
            self.w(f"{out} = {self.env[key]}")  # a list item's field, None when unknown
            return out
        if key in self.env:
            return self.env[key]
        if r.kind == "define":
            body = self.c.defines[r.name].body
            return self.once(("define", r.name), body, lambda: self.value(body))
        if r.kind in ("fact", "arm"):
            return self.load(r.name, e)
        if r.kind == "anchor":
            return self.load("@" + r.name, e)
        raise AssertionError(r)

    def load(self, key: str, node: n.Node) -> str:
        """A record value. In evaluate() every one is read once, all together, up front
        (one itemgetter call: C-speed lookups); in functions, where it is used."""
        if self.in_function:
            out = self.tmp()
            self.w(f"{out} = f[{key!r}]")
            return out
        if key not in self.loads:
            self.loads[key] = self.tmp()
        return self.loads[key]

    def call(self, e: n.Call) -> str:
        if e.func == "elapsed_years":
            a, b = (self.plain(x) for x in e.args)
            out = self.tmp()
            self.w(f"{out} = elapsed_years({a}, {b})")
            return out
        d = self.c.defines[e.func]
        assert d.params is not None
        args = []
        for arg, p in zip(e.args, d.params, strict=True):
            pt = self.param_type(p)
            target = pt.unit if isinstance(pt, QuantT) else None
            args.append(self.value(arg, target))
        out = self.tmp()
        if any(self.alt(a) for a in e.args):
            # each combination of the arguments' possibilities (runtime.alt_call)
            self.w(f"{out} = alt_call({self.fn_names[d.name]}, f, {', '.join(args)})")
        else:
            self.w(f"{out} = {self.fn_names[d.name]}(f, {', '.join(args)})")
        return out

    def arith(self, e: n.Arith) -> str:
        a = self.value(e.left)
        lu = self.carrier(e.left)
        b = self.value(e.right, lu) if e.op in "+-" else self.value(e.right)
        out = self.tmp()
        if self.alt(e):
            rounded = id(e) in self.rounded
            self.w(f"{out} = alt_op({e.op!r}, {a}, {b}, {rounded})")
            return out
        guard = self.unknown(a, b)
        if e.op == "/":
            guard += f" or {b} == 0"  # division by zero is unknown, not a crash
        result = f"{a} {e.op} {b}"
        if id(e) in self.rounded:  # a formula's final value: see runtime.sig
            result = f"sig({result})"
        self.w(f"{out} = None if {guard} else {result}")
        return out

    # ------------------------------------------------------------------ conditions
    def cond(self, e: n.Expr) -> str:
        """Code for a three-valued condition: a variable holding True, False or None."""
        self.at(e)
        if isinstance(e, n.BoolLit):
            return self.const(e.value)
        if isinstance(e, (n.Name, n.Call, n.FirstAvailable, n.Conditional)):
            if self.alt(e):
                return self.plain(e)
            return self._value(e)
        out = self.tmp("t")
        if isinstance(e, n.Not):
            a = self.cond(e.operand)
            self.w(f"{out} = None if {a} is None else not {a}")
        elif isinstance(e, (n.And, n.Or)) and all(map(self.cheap, terms := _chain(e))):
            self.flat_junction(isinstance(e, n.Or), terms, out)
        elif isinstance(e, (n.And, n.Or)):
            self.chain_junction(isinstance(e, n.Or), _chain(e), out)
        elif isinstance(e, n.Unless):
            self.junction(e, out)
        elif isinstance(e, n.Implies):
            a = self.cond(e.premise)
            self.w(f"if {a} is False:")
            with self.w.indent():
                self.w(f"{out} = True")
            self.w("else:")
            with self.w.indent():
                b = self.cond(e.conclusion)
                unknown = self.unknown(a, b)
                self.w(f"{out} = True if {b} is True else (None if {unknown} else False)")
        elif isinstance(e, n.Compare):
            self.compare(e.op, e.left, e.right, out)
        elif isinstance(e, n.Between):
            a = self.plain(e.subject)
            target = self.carrier(e.subject)
            lo = self.plain(e.low, target, self.molar(e.subject))
            hi = self.plain(e.high, target, self.molar(e.subject))
            plain = f"{lo} <= {a} <= {hi}"
            test = self.ranged(plain, f"r_between({a}, {lo}, {hi})", a, lo, hi)
            self.w(f"{out} = None if {self.unknown(a, lo, hi)} else {test}")
        elif isinstance(e, n.Member):
            a = self.plain(e.subject)
            t = self.type(e.subject)
            members: frozenset[Any]
            if isinstance(t, ScaleT):
                members = frozenset(t.positions[m] for m in e.members)
            else:
                members = frozenset(e.members)
            op = "not in" if e.negated else "in"
            self.w(f"{out} = None if {a} is None else {a} {op} {self.const(members)}")
        elif isinstance(e, n.IsKnown):
            a = self.value(e.subject)
            self.w(f"{out} = {a} is not None")
        elif isinstance(e, n.CompareRef):
            assert isinstance(e.left, n.Name)
            a = self.plain(e.left)
            limit = self.load(e.left.name + ("#high" if e.limit == "ULN" else "#low"), e)
            op = "==" if e.op == "=" else e.op
            k = self.const(float(e.factor.value))
            self.w(f"{out} = None if {self.unknown(a, limit)} else {a} {op} {k} * {limit}")
        elif isinstance(e, n.InNormalRange):
            assert isinstance(e.subject, n.Name)
            a = self.value(e.subject)
            lo = self.load(e.subject.name + "#low", e)
            hi = self.load(e.subject.name + "#high", e)
            plain = f"({lo} is None or {lo} <= {a}) and ({hi} is None or {a} <= {hi})"
            test = self.ranged(plain, f"r_in_range({a}, {lo}, {hi})", a)
            self.w(f"{out} = None if {a} is None or ({lo} is None and {hi} is None) else {test}")
        elif isinstance(e, n.Window):
            self.window(e, out)
        elif isinstance(e, n.DateBound):
            self.date_bound(e, out)
        elif isinstance(e, n.WindowBetween):
            self.window_between(e, out)
        elif isinstance(e, n.Period):
            self.period(e, out)
        elif isinstance(e, n.Order):
            d, a = self.plain(e.subject), self.plain(e.anchor)
            op = "<" if e.direction == "before" else ">"
            self.w(f"{out} = None if {self.unknown(d, a)} else {d} {op} {a}")
        elif isinstance(e, n.Quantified):
            self.quantified(e, out)
        else:
            raise AssertionError(type(e))
        return out

    def ranged(self, plain: str, call: str, *codes: str) -> str:
        """`plain` for plain values, `call` (a runtime function) when one of the codes
        holds a Range (an interval-valued fact: runtime.Range); chained comparisons on
        a Range would not be three-valued, so they never see one."""
        names = [c for c in dict.fromkeys(codes) if c.isidentifier() and not c.startswith("K")]
        if not names:
            return plain
        check = " or ".join(f"{c}.__class__ is Range" for c in names)
        return f"({call} if {check} else {plain})"

    def unknown(self, *codes: str) -> str:
        """`a is None or b is None` over the non-literal operands."""
        names = [c for c in codes if c.isidentifier() and not c.startswith("K")]
        names = [c for c in names if c not in ("True", "False", "None")]
        return " or ".join(f"{c} is None" for c in dict.fromkeys(names)) or "False"

    def molar(self, e: n.Expr) -> Fraction | None:
        if isinstance(e, n.Name) and self.c.refs.get(id(e), Ref("", "")).kind == "fact":
            return self.c.facts[e.name].molar_mass
        return None

    def compare(self, op: str, left: n.Expr, right: n.Expr, out: str) -> None:
        lt, rt = self.type(left), self.type(right)
        flip = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}
        if isinstance(rt, (ScaleT, PressureT)) and not isinstance(lt, type(rt)):
            left, right = right, left
            op = flip.get(op, op)
        elif isinstance(left, n.PressureLit):
            left, right, op = right, left, flip.get(op, op)
        if isinstance(right, n.PressureLit):
            self.pressure_compare(op, left, right, out)
            return
        a = self.value(left)
        b = self.value(right, self.carrier(left), self.molar(left))
        pyop = {"=": "==", "!=": "!="}.get(op, op)
        if self.alt(left) or self.alt(right):
            self.w(f"{out} = decided(alt_op({pyop!r}, {a}, {b}))")
            return
        self.w(f"{out} = None if {self.unknown(a, b)} else {a} {pyop} {b}")

    def pressure_compare(self, op: str, left: n.Expr, pair: n.PressureLit, out: str) -> None:
        """Systolic and diastolic each compared; `<`, `<=`, `=` need both, `>`, `>=`, `!=`
        either (nodes.PRESSURE_COMBINE): "BP < 140/90" both below, "BP > 160/100" either
        above."""
        bp = self.value(left)
        k = 1  # the pair's unit is `mmHg` or `mm[Hg]` (the PRESSURE_PAIR terminal): the fact's
        pyop = {"=": "==", "!=": "!="}.get(op, op)
        parts = []
        for index, limit in enumerate((pair.systolic, pair.diastolic)):
            part = self.tmp("t")
            value = f"{bp}[{index}]"
            self.w(
                f"{part} = None if {bp} is None or {value} is None else "
                f"{value} {pyop} {self.const(float(limit * k))}"
            )
            parts.append(part)
        s, d = parts
        stop = n.PRESSURE_COMBINE[op] == "any"  # the value that decides alone
        self.w(
            f"{out} = {stop} if {s} is {stop} or {d} is {stop} else "
            f"(None if {s} is None or {d} is None else {not stop})"
        )

    def cheap(self, e: n.Expr) -> bool:
        """Cheap to evaluate eagerly: no list loops, calls or formulas inside."""
        for x in e.walk():
            if isinstance(x, (n.Quantified, n.Call, n.Arith, n.FirstAvailable)):
                return False
            if isinstance(x, n.Name) and self.ref(x).kind == "define":
                return False
        return True

    def flat_junction(self, is_or: bool, terms: list[n.Expr], out: str) -> None:
        """A chain of cheap conditions: every term, then one Kleene combination."""
        codes = [self.cond(t) for t in terms]
        stop = "True" if is_or else "False"
        decided = " or ".join(f"{c} is {stop}" for c in codes)
        unknown = " or ".join(f"{c} is None" for c in codes)
        self.w(f"{out} = {stop} if {decided} else (None if {unknown} else {not is_or})")

    def junction(self, e: n.And | n.Or | n.Unless, out: str) -> None:
        """Kleene and/or with short-circuit: the deciding value stops evaluation."""
        if isinstance(e, n.Or):
            stop, left, right, negate_right = True, e.left, e.right, False
        elif isinstance(e, n.And):
            stop, left, right, negate_right = False, e.left, e.right, False
        else:  # rule unless exception == rule and not exception
            stop, left, right, negate_right = False, e.rule, e.exception, True
        a = self.cond(left)
        self.w(f"if {a} is {stop}:")
        with self.w.indent():
            self.w(f"{out} = {stop}")
        self.w("else:")
        with self.w.indent():
            b = self.cond(right)
            if negate_right:
                nb = self.tmp("t")
                self.w(f"{nb} = None if {b} is None else not {b}")
                b = nb
            self.w(f"if {b} is {stop}:")
            with self.w.indent():
                self.w(f"{out} = {stop}")
            self.w(f"elif {a} is None or {b} is None:")
            with self.w.indent():
                self.w(f"{out} = None")
            self.w("else:")
            with self.w.indent():
                self.w(f"{out} = {not stop}")

    def edge(self, node: n.Expr, anchor: n.Expr, duration: n.QuantityLit, sign: int) -> str:
        """The day number `anchor + sign * duration` (None when the anchor is unknown).

        Weeks and days are fixed lengths; months and years are calendar steps (add_months).
        """
        unit = parse_unit(duration.unit)
        amount = duration.value * unit.factor

        def make_edge() -> str:
            a = self.plain(anchor)
            edge = self.tmp()
            if unit.dims == (("[calendar]", 1),) and amount.denominator == 1:
                shift = f"add_months({a}, {sign * int(amount)})"
            else:
                days = amount * (Fraction(30436875, 1000000) if unit.dims != TIME else 1)
                days = days / 86400 if unit.dims == TIME else days
                shift = f"{a} + {self.const(float(sign * days))}"
            self.w(f"{edge} = None if {self.unknown(a)} else {shift}")
            return edge

        hoistable = isinstance(anchor, n.Name) and self.ref(anchor).kind in ("anchor", "fact")
        if hoistable and self.loop_depth:
            # inside a list condition the edge depends on the anchor only: computed once
            assert isinstance(anchor, n.Name)
            key = ("edge", anchor.name, str(sign * amount), str(unit.dims))
            return self.once(key, node, make_edge)
        return make_edge()

    def window(self, e: n.Window, out: str) -> None:
        d = self.plain(e.subject)
        a = self.plain(e.anchor)
        sign = -1 if e.direction == "before" else 1
        edge = self.edge(e, e.anchor, e.duration, sign)
        if e.direction == "before":
            test = {
                "within": f"{edge} <= {d} <= {a}",
                "more": f"{d} < {edge}",
                "less": f"{edge} < {d} <= {a}",
            }[e.kind]
        else:
            test = {
                "within": f"{a} <= {d} <= {edge}",
                "more": f"{d} > {edge}",
                "less": f"{a} <= {d} < {edge}",
            }[e.kind]
        before = e.direction == "before"
        test = self.ranged(test, f"r_window({e.kind!r}, {before}, {d}, {a}, {edge})", d, a)
        self.w(f"{out} = None if {self.unknown(d, a)} else {test}")

    def date_bound(self, e: n.DateBound, out: str) -> None:
        """`S at least D before A`: S <= A - D; `no later than A`: S <= A; and mirrors."""
        d = self.plain(e.subject)
        if e.duration is not None:
            edge = self.edge(e, e.anchor, e.duration, -1 if e.direction == "before" else 1)
        else:
            edge = self.plain(e.anchor)
        # a date known only as an interval leaves these forms unknown (interpreter.date_form)
        test = self.ranged(f"{d} {e.op} {edge}", "None", d, edge)
        self.w(f"{out} = None if {self.unknown(d, edge)} else {test}")

    def window_between(self, e: n.WindowBetween, out: str) -> None:
        """`S between D1 and D2 before A`: A - D2 <= S <= A - D1 (after: A + D1 .. A + D2)."""
        ends = e.durations()
        assert ends is not None  # the checker requires written durations
        d = self.plain(e.subject)
        sign = -1 if e.direction == "before" else 1
        near = self.edge(e, e.anchor, ends[0], sign)
        far = self.edge(e, e.anchor, ends[1], sign)
        low, high = (far, near) if sign < 0 else (near, far)
        test = self.ranged(f"{low} <= {d} <= {high}", "None", d, low, high)
        self.w(f"{out} = None if {self.unknown(d, low, high)} else {test}")

    def period(self, e: n.Period, out: str) -> None:
        """START..END against a window [LOW, HIGH]: START <= HIGH and END >= LOW (Kleene)."""
        start, end = self.plain(e.start), self.plain(e.end)
        a = self.plain(e.anchor)
        low = high = a
        if e.duration is not None:
            sign = -1 if e.direction == "before" else 1
            shifted = self.edge(e, e.anchor, e.duration, sign)
            low, high = (shifted, a) if sign < 0 else (a, shifted)
        first, second = self.tmp("t"), self.tmp("t")
        self.w(f"{first} = None if {self.unknown(start, high)} else {start} <= {high}")
        self.w(f"{second} = None if {self.unknown(end, low)} else {end} >= {low}")
        test = (
            f"False if {first} is False or {second} is False else "
            f"(None if {first} is None or {second} is None else True)"
        )
        self.w(f"{out} = {self.ranged(test, 'None', start, end, a)}")
        # an end before the start is no period (swapped dates): unknown, never decided
        exact = " and ".join(f"{c}.__class__ is not Range" for c in (start, end))
        self.w(f"if not ({self.unknown(start, end)}) and {exact} and {end} < {start}:")
        with self.w.indent():
            self.w(f"{out} = None")

    def chain_junction(self, is_or: bool, terms: list[n.Expr], out: str) -> None:
        """Kleene and/or over a run of terms, short-circuit, one `if` per term at one level
        (flat however long the run)."""
        stop = is_or
        first = self.cond(terms[0])
        self.w(f"{out} = {first}")
        for term in terms[1:]:
            self.w(f"if {out} is not {stop}:")
            with self.w.indent():
                b = self.cond(term)
                self.w(
                    f"{out} = {stop} if {b} is {stop} else "
                    f"(None if {out} is None or {b} is None else {not stop})"
                )

    def quantified(self, e: n.Quantified, out: str) -> None:
        items = self.list_key(e)
        t = self.type_of_list(e)
        yes, unknown = self.tmp("c"), self.tmp("c")
        self.w(f"if {items} is None:")
        with self.w.indent():
            self.w(f"{out} = None")
        self.w("else:")
        with self.w.indent():
            self.w(f"{yes} = 0")
            self.w(f"{unknown} = 0")
            el = self.tmp("el")
            self.w(f"for {el} in {items}:")
            saved = dict(self.env)
            self.loop_depth += 1
            with self.w.indent():
                for fname, _ in t.fields:
                    self.env[("field", fname)] = f"{el}[{fname!r}]"
                b = self.cond(e.body)
                unknown_test, true_test = self.fuse_last(b)
                self.w(f"if {unknown_test}:")
                with self.w.indent():
                    self.w(f"{unknown} += 1")
                self.w(f"elif {true_test}:")
                with self.w.indent():
                    self.w(f"{yes} += 1")
                    if e.quantifier in ("any", "no"):
                        self.w("break")
                if e.quantifier == "all":
                    self.w("else:")
                    with self.w.indent():
                        self.w(f"{yes} = -1")
                        self.w("break")
            self.env = saved
            self.loop_depth -= 1
            total = f"len({items})"
            q = e.quantifier
            if q == "any":
                expr = f"True if {yes} else (None if {unknown} else False)"
            elif q == "no":
                expr = f"False if {yes} else (None if {unknown} else True)"
            elif q == "all":
                expr = f"False if {yes} < 0 else (None if {unknown} else True)"
            elif q == "majority":
                expr = (
                    f"True if 2 * {yes} > {total} else "
                    f"(False if 2 * ({yes} + {unknown}) <= {total} else None)"
                )
            else:
                k = e.count
                expr = f"True if {yes} >= {k} else (False if {yes} + {unknown} < {k} else None)"
            self.w(f"{out} = {expr}")

    def fuse_last(self, var: str) -> tuple[str, str]:
        """Tests for "unknown" and "true" of a condition just computed into `var`.

        When its last line is `var = None if GUARD else TEST` (one comparison), the line
        is taken back and GUARD / TEST are tested directly: one statement less per list
        item, in the loops that run most often.
        """
        text, _ = self.w.lines[-1]
        prefix = "    " * self.w.level + f"{var} = None if "
        # only a membership test is fused: a comparison may meet a Range and be None,
        # which `elif TEST:` would count as "no"
        if text.startswith(prefix) and text.count(" else ") == 1 and _MEMBERSHIP.search(text):
            guard, test = text[len(prefix) :].split(" else ")
            self.w.lines.pop()
            return guard, test
        return f"{var} is None", var

    def list_key(self, e: n.Quantified) -> str:
        return self.load(e.list_name, e)

    def type_of_list(self, e: n.Quantified) -> ListT:
        t = self.c.facts[e.list_name].type
        assert isinstance(t, ListT)
        return t

    # ------------------------------------------------------------------ the module
    def function(self, d: n.Define) -> None:
        assert d.params is not None
        name = self.fn_names[d.name]
        params = []
        saved_env = self.env
        self.env = {}
        for p in d.params:
            local = self.tmp("p")
            params.append(local)
            self.env[("param", p.name)] = local
        self.at(d)
        self.w(f"def {name}(f, {', '.join(params)}):")
        self.in_function = True
        self.fn_prologue, self.fn_hoisted = _Writer(level=1), {}
        outer, self.w = self.w, _Writer(level=1)
        self.at(d)
        result = self.value(d.body)
        self.w(f"return {result}")
        body, self.w = self.w, outer
        self.w.lines += self.fn_prologue.lines + body.lines
        self.in_function = False
        self.env = saved_env
        self.w("")

    def param_type(self, p: n.Param) -> Type:
        if isinstance(p.type, n.QuantityTypeExpr):
            return QuantT(parse_unit(p.type.unit))
        return NumberT()

    def module(self, criteria: list[Criterion]) -> str:
        for d in self.c.defines.values():
            if d.params is not None:
                self.fn_names[d.name] = f"fn{len(self.fn_names)}"
        for d in self.c.defines.values():
            if d.params is not None:
                self.function(d)
        self.w.source_line = 0
        head = list(self.w.lines)
        self.w = _Writer()
        with self.w.indent():
            statuses = [self.criterion(crit) for crit in criteria]
            self.verdict(criteria, statuses)
        reads: list[tuple[str, int]] = []
        if len(self.loads) == 1:
            ((key, var),) = self.loads.items()
            reads.append((f"    {var} = f[{key!r}]", 0))
        elif self.loads:
            # the keys travel as a constant object, not as source text
            getter = self.const(_Getter(tuple(self.loads)))
            reads.append((f"    {', '.join(self.loads.values())} = {getter}(f)", 0))
        lines = [*head, ("def evaluate(f):", 0), *reads, *self.prologue.lines, *self.w.lines]
        self.line_map = {i + 1: src for i, (_, src) in enumerate(lines) if src}
        return "\n".join(text for text, _ in lines) + "\n"

    def criterion(self, crit: Criterion) -> str:
        c = crit.node
        s = self.tmp("s")
        self.at(c)
        rule = c.rule
        assert rule is not None
        if c.applies is None:
            return self.cond(rule)
        a = self.cond(c.applies)
        self.w(f"if {a} is False:")
        with self.w.indent():
            self.w(f"{s} = NA")
        self.w("else:")
        with self.w.indent():
            r = self.cond(rule)
            # applies unknown: still decided when the rule passes either way
            harmless = "True" if crit.section == "inclusion" else "False"
            self.w(f"{s} = {r} if {a} is True or {r} is {harmless} else None")
        return s

    def verdict(self, criteria: list[Criterion], statuses: list[str]) -> None:
        bad = [
            f"{s} is False" if c.section == "inclusion" else f"{s} is True"
            for c, s in zip(criteria, statuses, strict=True)
        ]
        open_ = [f"{s} is None" for s in statuses]
        self.w.source_line = 0
        self.w(f"if {' or '.join(bad) or 'False'}:")
        with self.w.indent():
            self.w("v = INELIGIBLE")
        self.w(f"elif {' or '.join(open_) or 'False'}:")
        with self.w.indent():
            self.w("v = UNDETERMINED")
        self.w("else:")
        with self.w.indent():
            self.w("v = ELIGIBLE")
        self.w(f"return v, ({', '.join(statuses)}{',' if len(statuses) == 1 else ''})")


_MEMBERSHIP = re.compile(r" else \w+ (not )?in K\d+$")


def _chain(e: n.And | n.Or) -> list[n.Expr]:
    """The operands of a run of the same operator: a or b or c -> [a, b, c]."""
    kind = type(e)
    out: list[n.Expr] = []
    stack: list[n.Expr] = [e]  # explicit: a run may be hundreds of terms long
    while stack:
        node = stack.pop()
        if type(node) is kind:
            stack += [node.right, node.left]  # type: ignore[attr-defined]
        else:
            out.append(node)
    return out


def _dependencies(checked: CheckResult, crit: n.Criterion) -> frozenset[str]:
    """Facts and anchors ("@name") a criterion reads, through definitions too."""
    out: set[str] = set()
    seen: set[str] = set()

    def visit(node: n.Node) -> None:
        for x in node.walk():
            if isinstance(x, n.Name):
                r = checked.refs.get(id(x))
                if r is None:
                    continue
                if r.kind in ("fact", "arm"):
                    out.add(r.name)
                elif r.kind == "anchor":
                    out.add("@" + r.name)
                elif r.kind == "define" and r.name not in seen:
                    seen.add(r.name)
                    visit(checked.defines[r.name].body)
            elif isinstance(x, n.Call) and x.func in checked.defines:
                if x.func not in seen:
                    seen.add(x.func)
                    visit(checked.defines[x.func].body)
            elif isinstance(x, n.Quantified):
                out.add(x.list_name)
            elif isinstance(x, (n.DateOf, n.Attribute)):
                out.add(x.fact if isinstance(x, n.DateOf) else x.obj)

    visit(crit)
    return frozenset(out)


class TooComplex(Exception):
    """The generated code exceeds a limit of Python's compiler.

    `line` is the criteria-file line the failing generated line came from (or None).
    """

    def __init__(self, line: int | None, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


def compile_protocol(checked: CheckResult) -> Compiled:
    """Compile a protocol that checked without errors."""
    assert checked.ok, "compile only checked protocols"
    criteria = [
        Criterion(c.id, kind, c, _dependencies(checked, c)) for kind, c in checked.protocol.criteria
    ]
    gen = _Codegen(checked)
    source = gen.module(criteria)
    filename = f"{FILENAME_PREFIX}{checked.source.path}>"
    try:
        code = compile(source, filename, "exec")
    except (SyntaxError, RecursionError, MemoryError) as exc:
        # Python's own limits (100 levels of indentation, 20 nested loops): the front
        # end turns this into E903 at check time, so a clean check always compiles
        line = gen_line = getattr(exc, "lineno", None)
        if gen_line is not None:
            line = max((c for g, c in gen.line_map.items() if g <= gen_line), default=None)
        raise TooComplex(line, f"{type(exc).__name__}: {getattr(exc, 'msg', exc)}") from exc
    namespace: dict[str, Any] = {"__builtins__": {}}
    namespace.update(runtime.EXPORTS)
    namespace.update(gen.consts)
    exec(code, namespace)
    sections = tuple(c.section for c in criteria)
    types = fact_types(checked)
    normalisers = {
        name: _normaliser(t, checked.facts[name].molar_mass if name in checked.facts else None)
        for name, t in types.items()
    }
    ranged = tuple(name for name, info in checked.facts.items() if info.has_reference_range)
    dated = tuple(sorted({x.fact for x in checked.protocol.walk() if isinstance(x, n.DateOf)}))
    return Compiled(
        checked,
        source,
        _with_candidates(namespace["evaluate"], sections),
        criteria,
        gen.line_map,
        normalisers,
        ranged,
        dated,
        namespace["evaluate"],
    )


MAX_WORLDS = 64  # combinations of conflicting candidates weighed; the reader caps them


def verdict_of(sections: tuple[str, ...], statuses: tuple[Any, ...]) -> str:
    """The protocol verdict from per-criterion statuses (as the generated code decides)."""
    bad = any(
        (s is False if kind == "inclusion" else s is True)
        for kind, s in zip(sections, statuses, strict=True)
    )
    if bad:
        return runtime.INELIGIBLE
    return runtime.UNDETERMINED if any(s is None for s in statuses) else runtime.ELIGIBLE


def combine(results: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """Per criterion: the status every candidate world agrees on, else unknown."""
    return tuple(s[0] if all(x is s[0] for x in s) else None for s in zip(*results, strict=True))


def deceased_verdict(verdict: str, deceased: bool | None) -> str:
    """A deceased patient is never eligible (FHIR Patient.deceased[x], a modifier: the
    record says so); one that may be deceased (a partial date of death) is not eligible
    yet."""
    if deceased is True:
        return runtime.INELIGIBLE
    if deceased is None and verdict == runtime.ELIGIBLE:
        return runtime.UNDETERMINED
    return verdict


def _with_candidates(
    raw: Callable[[dict[str, Any]], tuple[str, tuple[Any, ...]]], sections: tuple[str, ...]
) -> Callable[[dict[str, Any]], tuple[str, tuple[Any, ...]]]:
    """`evaluate` that weighs conflicting values: one run per combination of candidates,
    each criterion keeping the status they all agree on (else unknown). A record without
    conflicts (the common case) costs one dictionary lookup more."""

    def evaluate(f: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
        extra = f.get("#")
        if extra is None:
            return raw(f)
        alternatives, deceased = extra
        if alternatives:
            results = []
            for world in itertools.product(*alternatives):
                g = dict(f)
                for keys in world:
                    g.update(keys)
                results.append(raw(g)[1])
            statuses = combine(results)
            verdict = verdict_of(sections, statuses)
        else:
            verdict, statuses = raw(f)
        return deceased_verdict(verdict, deceased), statuses

    return evaluate
