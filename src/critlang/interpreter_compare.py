"""The reference interpreter's comparison forms over one value per operand, and the
rule that lifts them over values with several possibilities (`(X if C else Y)` with C
unknown): decided when every combination gives the same answer (docs/language.md).

Part of the reference interpreter (interpreter.py): `CompareForms` is a base of
`Interpreter` and reads its helpers (`value`, `plain`, `align`, `quantity`, ...).
"""

from __future__ import annotations

from typing import Any

from . import nodes as n
from .interpreter_time import TimeForms
from .interpreter_values import Choices, combinations, one
from .intervals import Iv, both
from .intervals import compare as iv_compare
from .typesys import QuantT


class CompareForms(TimeForms):
    """Comparison forms of the reference interpreter (a base of interpreter.Interpreter)."""

    c: Any  # CheckResult
    record: Any  # the Record being evaluated
    ureg: Any
    fixed: dict[int, Any]
    value: Any  # Interpreter.value
    align: Any  # Interpreter.align
    subject_name: Any  # Interpreter.subject_name

    def over_choices(self, e: n.Expr, env: dict[str, Any]) -> bool | None:
        """A comparison form (nodes.compared) over values that may have several
        possibilities (a conditional whose condition is unknown): decided when every
        combination gives the same answer, as `compare` does (docs/language.md)."""
        operands = n.compared(e)
        values = [self.value(x, env) for x in operands]
        if not any(isinstance(v, Choices) for v in values):
            return self.form(e, env)
        combos = combinations(*values, keep_unknown=True)
        if combos is None:
            return None
        results = set()
        saved = self.fixed
        try:
            for combo in combos:
                self.fixed = {**saved, **{id(x): v for x, v in zip(operands, combo, strict=True)}}
                results.add(self.form(e, env))
        finally:
            self.fixed = saved
        return results.pop() if len(results) == 1 else None

    def form(self, e: n.Expr, env: dict[str, Any]) -> bool | None:
        """A comparison form over one value per operand (intervals decided as docs say)."""
        if isinstance(e, n.Between):
            x = self.plain(e.subject, env)
            lo, hi = self.plain(e.low, env), self.plain(e.high, env)
            if x is None or lo is None or hi is None:
                return None
            subject = self.subject_name(e.subject)
            lo, hi = self.align(x, lo, subject), self.align(x, hi, subject)
            if isinstance(x, Iv) or isinstance(lo, Iv) or isinstance(hi, Iv):
                return both(iv_compare("<=", lo, x), iv_compare("<=", x, hi))
            return bool(lo <= x <= hi)
        if isinstance(e, n.Member):
            x = self.plain(e.subject, env)
            if x is None:
                return None
            return (x in e.members) != e.negated
        if isinstance(e, n.CompareRef):
            assert isinstance(e.left, n.Name)
            x = self.value(e.left, env)
            low, high = self.limits(e.left.name)
            limit = high if e.limit == "ULN" else low
            x = one(x)
            if x is None or limit is None:
                return None
            if isinstance(x, Iv):
                return iv_compare(e.op, x, limit * e.factor.value)
            return self.op(e.op, x, limit * e.factor.value)
        if isinstance(e, n.InNormalRange):
            assert isinstance(e.subject, n.Name)
            x = self.plain(e.subject, env)
            low, high = self.limits(e.subject.name)
            if x is None or (low is None and high is None):
                return None
            if isinstance(x, Iv):
                return both(
                    True if low is None else iv_compare("<=", low, x),
                    True if high is None else iv_compare("<=", x, high),
                )
            return (low is None or low <= x) and (high is None or x <= high)
        if isinstance(e, n.Window):
            return self.window(e, env)
        if isinstance(e, (n.DateBound, n.WindowBetween, n.Period)):
            return self.date_form(e, env)
        if isinstance(e, n.Order):
            d, a = self.plain(e.subject, env), self.plain(e.anchor, env)
            if d is None or a is None:
                return None
            if isinstance(d, Iv) or isinstance(a, Iv):
                return iv_compare("<" if e.direction == "before" else ">", d, a)
            return d < a if e.direction == "before" else d > a
        raise AssertionError(type(e))

    def op(self, op: str, a: Any, b: Any) -> bool:
        if op == "<":
            return bool(a < b)
        if op == "<=":
            return bool(a <= b)
        if op == ">":
            return bool(a > b)
        if op == ">=":
            return bool(a >= b)
        if op == "=":
            return bool(a == b)
        return bool(a != b)

    def limits(self, name: str) -> tuple[Any, Any]:
        """The reference range of a fact, in the fact's declared dimension."""
        obs = self.record.facts.get(name)
        info = self.c.facts[name]
        if not isinstance(info.type, QuantT):  # a plain number (the INR): its own range
            return (None, None) if obs is None or obs.range_unknown else (obs.low, obs.high)
        declared = self.ureg.Quantity(1, self.base_unit(info.type.unit.dims))
        lo = hi = None
        if obs is not None and obs.range_unknown:  # reported, none surely the patient's
            return None, None
        if obs is not None and (obs.low is not None or obs.high is not None):
            unit_text = obs.unit.text if obs.unit else ""
            lo = None if obs.low is None else self.quantity(obs.low, unit_text)
            hi = None if obs.high is None else self.quantity(obs.high, unit_text)
        else:
            default = info.node.option("refrange")
            if default is not None and default.quantity and default.high:
                lo = self.quantity(default.quantity.value, default.quantity.unit)
                hi = self.quantity(default.high.value, default.high.unit)
        return (
            None if lo is None else self.align(declared, lo, name),
            None if hi is None else self.align(declared, hi, name),
        )
