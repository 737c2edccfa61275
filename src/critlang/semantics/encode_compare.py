"""Comparisons in z3 (part of semantics/encode.py's Encoder): a fact against a threshold
in the fact's unit (through its molar mass), categories and grades, blood-pressure pairs,
reference-range limits; the thresholds met are kept for witnesses (witness.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import z3

from .. import nodes as n
from ..checker import CheckResult, Ref
from ..typesys import EnumT, QuantT, ScaleT
from ..units import conversion_factor, parse_unit
from .logic import TV, Unsupported, Val, kleene_and, kleene_or, relation

if TYPE_CHECKING:
    from .encode import Space


class ComparisonEncoding:
    """Mixin of the Encoder: what compares. It uses the Encoder's `c` (the checked
    protocol), `s` (the Space) and its value and variable makers."""

    c: CheckResult
    s: Space
    value: Any
    decided: Any
    var: Any
    fact: Any
    date_var: Any
    member_index: Any

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
            return self.decided(relation(op, x.v, idx), x.k)
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
                (z3.And(ga, gb), relation(op, va, vb))
                for ga, va in a.options()
                for gb, vb in b.options()
            ]
            every = z3.And(*[z3.Implies(g, r) for g, r in pairs])
            none = z3.And(*[z3.Implies(g, z3.Not(r)) for g, r in pairs])
            return TV(z3.And(k, every), z3.And(k, none))
        return self.decided(relation(op, a.v, b.v), a.k, b.k)

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
            parts.append(self.decided(relation(op, part.v, z3.RealVal(str(limit))), part.k))
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
