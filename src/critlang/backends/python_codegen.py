"""Python back end, part 2 of 3: the code generator, checked AST -> Python source of
one `evaluate(f)` function, with a map from generated lines to criteria lines.

`_Codegen` holds the state, values and the module; conditions are written by the
methods it inherits from `_Conditions` (backends/python_conditions.py).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .. import nodes as n
from ..checker import CheckResult, Ref
from ..functions import MATH, ORDERING
from ..typesys import NumberT, QuantT, ScaleT, Type
from ..units import Unit, conversion_factor, parse_unit
from .python_conditions import _Conditions
from .runtime_math import EXPORT_NAME

if TYPE_CHECKING:
    from .python import Criterion


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


class _Codegen(_Conditions):
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
        # operand node -> the loop variable holding one of its possibilities
        # (_Conditions.over_alternatives)
        self.bound: dict[int, str] = {}

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
        if key in self.bound:  # one possibility, bound by over_alternatives
            return False
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
        if self.bound and id(e) in self.bound:
            return self.bound[id(e)]
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
        if e.func in MATH:
            # min / max: operands in the first one's unit (as `+`); the others take
            # plain numbers. runtime_math handles unknown, Range and Alt operands.
            target = self.carrier(e.args[0]) if e.func in ORDERING else None
            args = [self.value(a, target) for a in e.args]
            out = self.tmp()
            rounded = id(e) in self.rounded
            self.w(f"{out} = {EXPORT_NAME[e.func]}({rounded}, {', '.join(args)})")
            return out
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
