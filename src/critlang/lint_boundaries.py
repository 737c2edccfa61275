"""Lint's boundary analysis (part of lint.py's linter): an inclusion and an exclusion
that compare one fact with thresholds facing each other, such that a value between them
(or exactly at one) is neither clearly in nor out, found with exact thresholds in the
fact's declared unit and shown with a witness patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import z3

from . import nodes as n
from .typesys import NumberT, QuantT
from .units import conversion_factor, parse_unit

if TYPE_CHECKING:
    from .checker import CheckResult


@dataclass
class _Atom:
    """`fact OP threshold` at the top of a criterion, in the fact's unit."""

    cid: str
    section: str
    fact: str
    op: str
    value: Fraction  # in the fact's declared unit
    text: str  # the threshold as the author wrote it
    step: Fraction  # one unit of the last digit written
    node: n.Compare


class BoundaryChecks:
    """Mixin of the linter. It uses the linter's `checked`, `add`, `statuses_of` and
    `witness`."""

    checked: CheckResult
    add: Any
    statuses_of: Any
    witness: Any

    # ------------------------------------------------------------------ boundaries
    def atoms(self) -> list[_Atom]:
        out = []
        for kind, c in self.checked.protocol.criteria:
            if c.rule is None or c.applies is not None:
                continue
            parts = _split(c.rule, n.And if kind == "inclusion" else n.Or)
            for e in parts:
                a = self.atom(c.id, kind, e)
                if a is not None:
                    out.append(a)
        return out

    def atom(self, cid: str, kind: str, e: n.Expr) -> _Atom | None:
        if not isinstance(e, n.Compare) or e.op not in ("<", "<=", ">", ">="):
            return None
        left, right, op = e.left, e.right, e.op
        if not isinstance(left, n.Name):
            return None
        ref = self.checked.refs.get(id(left))
        if ref is None or ref.kind not in ("fact", "define"):
            return None
        lit = right.primary if isinstance(right, n.DualQuantityLit) else right
        if isinstance(lit, n.Name):
            r2 = self.checked.refs.get(id(lit))
            if r2 is not None and r2.kind == "assume":
                lit = self.checked.assumed[lit.name].value
                lit = lit.primary if isinstance(lit, n.DualQuantityLit) else lit
        t = self.checked.types.get(id(left))
        if isinstance(lit, n.QuantityLit) and isinstance(t, QuantT):
            info = self.checked.facts.get(left.name)
            k = conversion_factor(parse_unit(lit.unit), t.unit, info.molar_mass if info else None)
            if k is None:
                return None
            value, text, digits = lit.value * k, lit.text, lit.number_text
            step = _step(digits) * k
        elif isinstance(lit, n.NumberLit) and isinstance(t, NumberT):
            value, text, step = lit.value, lit.text, _step(lit.text)
        else:
            return None
        return _Atom(cid, kind, left.name, op, value, text, step, e)

    def boundaries(self) -> None:
        atoms = self.atoms()
        inc = [a for a in atoms if a.section == "inclusion"]
        exc = [a for a in atoms if a.section == "exclusion"]
        for i in inc:
            for e in exc:
                if i.fact == e.fact:
                    self.facing(i, e)

    def facing(self, i: _Atom, e: _Atom) -> None:
        """An inclusion's allowed side against an exclusion's excluded side."""
        up_i, up_e = i.op in ("<", "<="), e.op in ("<", "<=")
        if up_i == up_e:
            return  # both bound the same side: no boundary between them
        a, b = i.value, e.value
        step = max(i.step, e.step)
        unit = self._unit(i.fact)
        # the inclusion allows [.., a] (upper) and the exclusion excludes [b, ..], or mirrored
        lo_gap = (b - a) if up_i else (a - b)  # > 0: a band neither side claims
        strict_i, strict_e = i.op in ("<", ">"), e.op in ("<", ">")
        where = f"{i.cid} requires {_fmt(i)}, {e.cid} excludes {_fmt(e)}"
        if a == b:
            if strict_i != strict_e:
                return  # complementary: one boundary, said twice (L111 reports a restatement)
            x = a
            if strict_i:  # both strict: the boundary value fails one and escapes the other
                self.add(
                    "L122",
                    [i.cid, e.cid],
                    f"near-miss boundary on {i.fact}: {where}; a patient at exactly "
                    f"{_num(x)} {unit} fails {i.cid} but escapes {e.cid}: which side does "
                    f"{_num(x)} {unit} belong to?",
                    i.node,
                    **self.boundary_witness(i, e, x, "gap"),
                )
            else:  # both inclusive: the boundary value is in and out
                self.add(
                    "L121",
                    [i.cid, e.cid],
                    f"overlapping boundaries on {i.fact}: {where}; a patient at exactly "
                    f"{_num(x)} {unit} is both included by {i.cid} and excluded by {e.cid}",
                    i.node,
                    **self.boundary_witness(i, e, x, "overlap"),
                )
            return
        if abs(a - b) > step:
            return  # far apart: a deliberate narrowing or a deliberate gap
        if lo_gap < 0:  # the exclusion reaches into the inclusion's range
            x = (a + b) / 2
            self.add(
                "L121",
                [i.cid, e.cid],
                f"overlapping boundaries on {i.fact}: {where}; a patient at {_num(x)} {unit} "
                f"is both included by {i.cid} and excluded by {e.cid} (did both mean one "
                "boundary?)",
                i.node,
                **self.boundary_witness(i, e, x, "overlap"),
            )
        else:
            x = (a + b) / 2
            self.add(
                "L122",
                [i.cid, e.cid],
                f"near-miss boundaries on {i.fact}: {where}; a patient at {_num(x)} {unit} "
                f"fails {i.cid} but escapes {e.cid} (did both mean one boundary?)",
                i.node,
                **self.boundary_witness(i, e, x, "gap"),
            )

    def _unit(self, fact: str) -> str:
        t = self.space.types.get(fact)
        return t.unit.text if isinstance(t, QuantT) else ""

    def boundary_witness(self, i: _Atom, e: _Atom, x: Fraction, what: str) -> dict[str, Any]:
        si, se = self.p.statuses[i.cid], self.p.statuses[e.cid]
        var = self.space.vars.get(("fact", i.fact))
        if var is None:
            return {}
        t = self.space.types.get(i.fact)
        base = x * (t.unit.factor if isinstance(t, QuantT) else 1)
        at = z3.And(
            self.space.known(i.fact), var == z3.RealVal(f"{base.numerator}/{base.denominator}")
        )
        if what == "overlap":
            goal = z3.And(at, si.met, se.met)
            want = ("met", "met")
        else:
            goal = z3.And(at, si.not_met, se.not_met)
            want = ("not met", "not met")

        def shows(verdict: str, sts: dict[str, str]) -> str:
            got = (sts.get(i.cid), sts.get(e.cid))
            if got != want:
                return ""
            return f"{i.cid} {got[0]}, {e.cid} {got[1]} (verdict {verdict})"

        record, text = self.witness(goal, shows)
        return {"witness": record, "shows": text, "proof": "exact thresholds in the fact's unit"}


def _split(e: n.Expr, kind: type) -> list[n.Expr]:
    if isinstance(e, kind):
        return _split(e.left, kind) + _split(e.right, kind)  # type: ignore[attr-defined]
    return [e]


def _step(number_text: str) -> Fraction:
    """One unit of the last digit written: '190' -> 1, '8.0' -> 1/10."""
    text = number_text.strip().split()[0] if number_text.strip() else "0"
    decimals = len(text.split(".")[1]) if "." in text else 0
    return Fraction(1, 10**decimals)


def _num(x: Fraction) -> str:
    if x.denominator == 1:
        return str(x.numerator)
    return f"{float(x):.6g}"


def _fmt(a: _Atom) -> str:
    return f"{a.fact} {a.op} {a.text}"


# ---------------------------------------------------------------------- entry points
