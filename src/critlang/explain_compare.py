"""Explanations, part 2: comparisons (quantities in the unit of the threshold that
decides, scales, categories, blood pressure pairs, x ULN, the normal range), values
known only as an interval, and a measured value against its computed alternative.

`Comparisons` is a part of `explain.Explainer` (it reads the walker's state and helpers).
"""

from __future__ import annotations

from typing import Any

from . import nodes as n
from .backends.python_normalise import limit_key
from .backends.runtime import Alt, r_in_range
from .explain_words import (
    MARK,
    OPS,
    Clause,
    Unsupported,
    Val,
    apply,
    distinct,
    is_range,
    merge,
    num,
    span_words,
    why_interval,
)
from .typesys import BoolT, QuantT, ScaleT
from .units import Unit, conversion_factor, parse_unit


class Comparisons:
    def pressure(self, e: n.Compare) -> Clause:
        """A blood pressure against a written pair (nodes.PRESSURE_COMBINE): `<` needs
        both parts, `>` either."""
        flip = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}
        op, subject, pair = e.op, e.left, e.right
        if isinstance(subject, n.PressureLit):
            op, subject, pair = flip.get(op, op), pair, subject
        if not isinstance(pair, n.PressureLit) or not isinstance(subject, n.Name):
            raise Unsupported(e)
        v = self.fact_val(subject.name)
        limit = pair.raw or f"{num(pair.systolic)}/{num(pair.diastolic)} {pair.unit}".strip()
        want_all = n.PRESSURE_COMBINE[op] == "all"
        rule = "both parts must hold" if want_all else "either part suffices"
        if v.value is None:
            return Clause(None, f"{v.shown} {OPS[op]} {limit}")
        parts: list[bool | None] = []
        words = []
        for name, value, bound in zip(
            ("systolic", "diastolic"), v.value, (pair.systolic, pair.diastolic), strict=True
        ):
            ok = None if value is None else apply(op, value, float(bound))
            parts.append(ok)
            # enough digits that the value shown never contradicts its mark (159.99 is
            # not "160 ✗" against >= 160)
            if value is None:
                shown = "unknown"
            elif is_range(value):  # a censored part: the interval it stands for
                shown = span_words(value)
            else:
                shown = distinct(value, float(bound))[0]
            words.append(f"{name} {shown} {MARK[ok]}")
        if want_all:
            val = False if False in parts else (None if None in parts else True)
        else:
            val = True if True in parts else (None if None in parts else False)
        return Clause(val, f"{v.shown} {OPS[op]} {limit} ({rule}: {', '.join(words)})")

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
        notes = merge(a.derived, b.derived)
        numeric = isinstance(a.value, float) or is_range(a.value)
        if isinstance(lt, (ScaleT, BoolT)) or not numeric:
            shown_a = a.shown
            if isinstance(lt, ScaleT) and isinstance(a.value, int):
                shown_a = f"{self.label_of(left)} {lt.members[a.value]}"
            text = f"{shown_a} {OPS[op]} {b.shown}"
            if a.value is None or b.value is None:
                return Clause(None, text, notes=notes)
            value = apply(op, a.value, b.value)
            if op in ("=", "!=") and not isinstance(lt, BoolT):
                # "Sex female: is not male" rather than "Sex female = male"
                verb = "is" if value == (op == "=") else "is not"
                text = f"{shown_a}: {verb} {b.shown}"
            return Clause(value, text, notes=notes)
        # a quantity: shown in the unit of the threshold that decides
        if a.value is None or b.value is None:
            return Clause(None, self.quantity_text(left, right, a, b, op, env), notes=notes)
        value = apply(op, a.value, b.value)
        if isinstance(a.value, Alt) or isinstance(b.value, Alt):
            # a conditional whose condition is unknown: each possibility (runtime.alt_op)
            says = {
                True: "holds for every possibility",
                False: "fails for every possibility",
                None: "holds for some possibilities only",
            }[value]
            text = f"{a.shown} {OPS[op]} {b.shown}: {says}"
        elif is_range(a.value) or is_range(b.value):
            text = self.interval_text(left, right, a, b, op, value)
        else:
            text = self.quantity_text(left, right, a, b, op, env)
        notes += self.disagreement(left, right, op, value, env)
        return Clause(value, text, notes=notes)

    def interval_text(
        self, left: n.Expr, right: n.Expr, a: Val, b: Val, op: str, value: bool | None
    ) -> str:
        """A comparison over a value known only as an interval: the value as recorded,
        the threshold, and why the interval decides, both in the threshold's unit."""
        carrier = self.carrier(left)
        unit, also = self.deciding_unit(right)
        k, words = 1.0, carrier.text if carrier is not None else ""
        if unit is not None and carrier is not None and not _same(unit, carrier):
            factor = conversion_factor(carrier, unit, self.molar(left))
            if factor is not None:
                k, words = float(factor), unit.text
        av = a.value * k
        bv = b.value * k
        written = isinstance(right, (n.QuantityLit, n.DualQuantityLit, n.NumberLit)) or (
            isinstance(right, n.Name) and self.ref(right).kind == "assume"
        )  # a threshold shown as written, in the unit that decides
        shown_b = b.shown if written else f"{b.shown} = {span_words(bv, words)}"
        why = why_interval(op, av, bv, value, words)
        return f"{a.shown} {OPS[op]} {shown_b}{also}: {why}"

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
            return f"{a.shown} {OPS[op]} {b.shown}"
        shown_a = a.shown
        if unit is not None and not _same(unit, carrier):
            k = conversion_factor(carrier, unit, self.molar(left))
            if k is not None:
                av, bv = distinct(a.value * float(k), b.value * float(k))
                shown_a = f"{a.shown} = {av} {unit.text}"
                literal = isinstance(right, (n.QuantityLit, n.DualQuantityLit))
                shown_b = b.shown if literal else f"{bv} {unit.text}{self.assumed(right)}"
                return f"{shown_a} {OPS[op]} {shown_b}{also}"
        av, bv = distinct(a.value, b.value)
        shown_b = b.shown
        if num(b.value) not in b.shown.replace(" ", ""):
            shown_b = f"{b.shown} = {bv} {carrier.text}"
        if av not in shown_a.replace("(", " ").split():  # recorded in another unit
            shown_a = f"{shown_a} = {av} {carrier.text}"
        return f"{shown_a} {OPS[op]} {shown_b}{also}"

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
            if apply(op, v.value, b.value) != value:
                out.append(
                    f"the measured and computed values disagree: {vals[used].shown} decides "
                    f"({'meets' if value else 'does not meet'} {OPS[op]} {b.shown}), but "
                    f"{v.shown} would {'not ' if value else ''}meet it"
                )
                out += [d for d in v.derived if d not in out]
        return out

    def limits(self, name: str, converted: bool = False) -> tuple[Any, Any, str]:
        """(low, high) in the fact's unit and the range in words: as reported, and with
        `converted` also in the fact's unit when it was reported in another."""
        lo, hi = self.f.get(name + "#low"), self.f.get(name + "#high")
        obs = self.record.facts.get(name)
        info = self.c.facts[name]
        unit = info.type.unit.text if isinstance(info.type, QuantT) else ""
        if obs is not None and obs.range_unknown:
            # the reader's own reason: low above high, no unit, not surely this patient's
            # (realfhir7 F10: low > high was "none surely this patient's")
            why = obs.range_why or "none can be used"
            return None, None, f"reference range reported, not used: {why}"
        if obs is not None and (obs.low is not None or obs.high is not None):
            origin = "reported with the value"
        elif info.node.option("refrange") is not None:
            origin = "the protocol's default"
        elif not isinstance(info.type, QuantT):
            # reference ranges are read for quantity facts only (data/reader_quantity.py)
            origin = "not read: reference ranges are read only for a quantity fact"
        else:
            origin = "not reported"
        if (lo is None) != (hi is None):
            origin += "; no lower limit" if lo is None else "; no upper limit"
        if origin.startswith("reported") and obs is not None and obs.unit is not None:
            # as the laboratory reported it, in the unit of the value shown beside it
            # ("22 umol/L ... reference range 3-21 umol/L"), not converted into the
            # fact's unit at 7 digits (author7 F12); the comparison itself is exact
            low = float(obs.low) if obs.low is not None and lo is not None else None
            high = float(obs.high) if obs.high is not None and hi is not None else None
            words = range_words(low, high, obs.unit.text)
            if converted and unit and not _same(obs.unit, self.c.facts[name].type.unit):
                words += f" = {range_words(lo, hi, unit)}"
            return lo, hi, f"reference range {words} ({origin})"
        # a limit converted from another unit keeps its digits (40.026 U/L, not 40.03)
        return lo, hi, f"reference range {range_words(lo, hi, unit)} ({origin})"

    def compare_ref(self, e: n.CompareRef, env: dict[str, Val]) -> Clause:
        assert isinstance(e.left, n.Name)
        a = self.value(e.left, env)
        lo, hi, words = self.limits(e.left.name, converted=True)
        limit = hi if e.limit == "ULN" else lo
        unit = self.carrier(e.left)
        u = f" {unit.text}" if unit is not None else ""
        factor = float(e.factor.value)
        if limit is None:
            text = f"{a.shown} {OPS[e.op]} {e.factor.text} × {e.limit} ({e.limit} unknown: {words})"
            return Clause(None, text)
        # the product the evaluators compare: exact, rounded once (limit_products)
        bound = self.f.get(limit_key(e.left.name, e.limit, e.factor.value), factor * limit)
        shown_a, shown_bound = a.shown, num(bound)
        if isinstance(a.value, float):
            # enough digits that the value and the bound never look equal when they are
            # not, and the value in the range's unit when it was recorded in another
            av, shown_bound = distinct(a.value, bound)
            if av not in shown_a.replace("(", " ").split():
                shown_a = f"{shown_a} = {av}{u}"
        text = (
            f"{shown_a} {OPS[e.op]} {e.factor.text} × {e.limit} = {e.factor.text} × "
            f"{num(limit, 12)}{u} = {shown_bound}{u}"
        )
        notes = [f"{e.factor.text} × {e.limit} from the {words}"]
        if a.value is None:
            return Clause(None, text, notes=notes)
        op = "==" if e.op == "=" else e.op
        value = apply(op, a.value, bound)
        if is_range(a.value):
            text += f": {why_interval(op, a.value, bound, value, unit.text if unit else '')}"
        return Clause(value, text, notes=notes)

    def in_range(self, e: n.InNormalRange, env: dict[str, Val]) -> Clause:
        assert isinstance(e.subject, n.Name)
        a = self.value(e.subject, env)
        lo, hi, words = self.limits(e.subject.name)
        text = f"{a.shown} within the normal range ({words})"
        if a.value is None or (lo is None and hi is None):
            return Clause(None, text)
        if is_range(a.value):  # as the compiled code: runtime.r_in_range, three-valued
            ok = r_in_range(a.value, lo, hi)
            inside = "in the range" if ok else ("outside it" if ok is False else "open")
            return Clause(
                ok,
                f"{text}: every value {span_words(a.value)} is {inside}"
                if ok is not None
                else f"{text}: a value {span_words(a.value)} may or may not be in the range",
            )
        ok = (lo is None or lo <= a.value) and (hi is None or a.value <= hi)
        return Clause(ok, text)


def range_words(lo: Any, hi: Any, unit: str) -> str:
    """A reference range said unambiguously: "70-100 mg/dL", "up to 40 U/L" (no lower
    limit: FHIR referenceRange.low "if omitted ... meaningless", e.g. <= 2.3), "at least
    3.5 g/dL", "with no limits"; never "-40 U/L", which reads as minus 40."""
    u = f" {unit}" if unit else ""
    if lo is not None and hi is not None:
        return f"{num(lo, 12)}-{num(hi, 12)}{u}"
    if hi is not None:
        return f"up to {num(hi, 12)}{u}"
    if lo is not None:
        return f"at least {num(lo, 12)}{u}"
    return "with no limits"


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


def _same(a: Unit, b: Unit) -> bool:
    """One unit under two spellings (mmHg, mm[Hg]): nothing to convert."""
    return a.factor == b.factor and a.dims == b.dims
