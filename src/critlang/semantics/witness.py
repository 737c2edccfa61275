"""Witness patients: solved within plausible ranges, written as records, re-checked.

A witness is solved for a goal over the shared Space, preferring (in this order) facts
recorded rather than unknown, so a witness leaves unknown only what its point needs;
values near the thresholds the protocols compare each fact with (or typical values);
reference ranges at the table's normal limits. Plausible ranges are hard limits: when a
goal can only be met outside them, the witness says so. Every witness record carries the
evaluation date it was solved for (`as_of`) and is re-evaluated by the compiled
evaluator (evaluate.py, arms included) before anyone sees it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import z3

from ..backends.python import Compiled
from ..checker import CheckResult
from ..data.records import read_record
from ..evaluate import Evaluator
from ..typesys import BoolT, DateT, EnumT, IntT, ListT, NumberT, QuantT, ScaleT
from .encode import Space
from .plausible import Plausible, lookup

TIMEOUT_MS = 10_000


@dataclass
class Witness:
    record: dict[str, Any]
    verdicts: tuple[str, ...]  # as re-evaluated, one per protocol version checked
    missing: list[str] = field(default_factory=list)  # facts left unknown that decide it
    implausible: list[str] = field(default_factory=list)  # facts outside plausible ranges


class Solver:
    """Solves goals over a Space and writes models as patient records."""

    def __init__(self, space: Space, checked: list[CheckResult]) -> None:
        self.space = space
        self.checked = checked  # newest last: its declarations name the facts
        self.ranges: dict[str, Plausible] = {}
        for name, t in space.types.items():
            for c in reversed(checked):
                if name in c.facts or name == "arm":
                    p = lookup(c, name, t, space.thresholds.get(name))
                    if p is not None:
                        self.ranges[name] = p
                    break

    # ------------------------------------------------------------------ solving
    def _solver(self) -> z3.Solver:
        """One incremental solver: the Space's constraints, plausible ranges behind one
        switch, preferences behind one switch each (added as the Space grows)."""
        if not hasattr(self, "_s"):
            self._s = z3.Solver()
            self._s.set("timeout", TIMEOUT_MS)
            self._n_constraints = 0
            self._seen: set[tuple[Any, ...]] = set()
            self._switch = z3.Bool("|plausible|")
            self._known_prefs: list[Any] = []
            self._value_prefs: list[Any] = []
        s = self._s
        s.add(*self.space.constraints[self._n_constraints :])
        self._n_constraints = len(self.space.constraints)
        new = {k: v for k, v in self.space.vars.items() if k not in self._seen}
        if new:
            self._seen.update(new)
            s.add(*[z3.Implies(self._switch, c) for c in self.plausible(new)])
            for kind, prefs, out in (
                ("known", self.prefer_known(new), self._known_prefs),
                ("value", self.prefer_values(new), self._value_prefs),
            ):
                for p in prefs:
                    lit = z3.Bool(f"|prefer-{kind}:{len(out)}|")
                    s.add(z3.Implies(lit, p))
                    out.append(lit)
        return s

    def check(self, *goal: Any, timeout_ms: int = TIMEOUT_MS) -> str:
        s = self._solver()
        s.push()
        try:
            s.add(*goal)
            r = s.check()
        finally:
            s.pop()
        return "sat" if r == z3.sat else "unsat" if r == z3.unsat else "unknown"

    def solve(self, *goal: Any) -> tuple[str, z3.ModelRef | None, bool]:
        """(status, model, plausible): a model of the goal, plausible when possible."""
        s = self._solver()
        s.push()
        try:
            s.add(*goal)
            fixed = [self._switch]
            plausible = True
            if s.check(*fixed) != z3.sat:
                plausible, fixed = False, []
                r = s.check()
                if r != z3.sat:
                    return ("unsat" if r == z3.unsat else "unknown"), None, False
            fixed += self.short_lists(s, fixed)
            for prefs in (self._known_prefs, self._value_prefs):
                active = list(prefs)
                for round_ in range(60):
                    if s.check(*fixed, *active) == z3.sat:
                        break
                    core = [x.get_id() for x in s.unsat_core()]
                    # drop one preference of the conflict at a time (few missing facts),
                    # the whole conflict once that has taken long (literals compared by
                    # their z3 ids: printing them is slow)
                    core = [i for i in core if i != self._switch.get_id()]
                    drop = set(core[-1:]) if round_ < 40 else set(core)
                    kept = [a for a in active if a.get_id() not in drop]
                    if len(kept) == len(active):
                        active = []
                        break
                    active = kept
                else:
                    active = []
                fixed += active  # keep what held before the next round of preferences
            if s.check(*fixed) != z3.sat:
                return "unknown", None, False
            return "sat", s.model(), plausible
        finally:
            s.pop()

    def short_lists(self, s: z3.Solver, fixed: list[Any]) -> list[Any]:
        """Each list as short as the goal allows (list by list, the fewest items first):
        a witness shows only the items its point needs, however many slots there are."""
        out: list[Any] = []
        names = sorted({k[1] for k in self.space.vars if k[0] == "list"})
        for name in names:
            for i in range(self.space.slot_count(name)):
                present = self.space.vars.get(("list", name, i))
                if present is None:
                    break
                if s.check(*fixed, *out, z3.Not(present)) == z3.sat:
                    out.append(z3.Not(present))
                    break
        return out

    def plausible(self, vars: dict[tuple[Any, ...], Any]) -> list[Any]:
        today = self.space.today
        out = []
        for key, var in vars.items():
            kind = key[0]
            if kind == "anchor":
                out += [var >= today, var <= today + 365]  # planned dates lie ahead
            elif kind == "edge":
                out += [var >= today - 5 * 365, var <= today + 2 * 365]
            elif kind == "age":
                out += [var >= 18, var <= 90]
            elif kind == "fact" and isinstance(self.space.types.get(key[1]), DateT):
                out += [var >= today - 3 * 365, var <= today]  # recorded events are past
            elif kind == "item" and self._item_type(key, DateT):
                out += [var >= today - 3 * 365, var <= today]
            elif kind == "fact" and key[1] in self.ranges:
                p, k = self.ranges[key[1]], self.factor(key[1])
                out += [var >= _real(p.low * k), var <= _real(p.high * k)]
            elif kind == "limit" and key[1] in self.ranges:
                p, k = self.ranges[key[1]], self.factor(key[1])
                out += [var >= _real(p.low * k), var <= _real(p.high * k)]
                low, high = (
                    self.space.vars.get(("limit", key[1], "LLN")),
                    self.space.vars.get(("limit", key[1], "ULN")),
                )
                if low is not None and high is not None:
                    out.append(low < high)
            elif kind == "item" and self._item_type(key, (QuantT, NumberT)):
                out.append(var >= 0)
            elif kind == "observed":  # an observation's date: recent, not in the future
                out += [var >= today - 27, var <= today]
            elif kind == "part":  # blood pressure in mm[Hg] (same sources as the table)
                low, high = (60, 260) if key[2] == "systolic" else (30, 160)
                out += [var >= low, var <= high]
        return out

    def factor(self, name: str) -> Fraction:
        """Variables hold quantities in base units: the fact's unit's factor."""
        t = self.space.types.get(name)
        return t.unit.factor if isinstance(t, QuantT) else Fraction(1)

    def _item_type(self, key: tuple[Any, ...], kinds: Any) -> bool:
        t = self.space.types.get(key[1])
        return isinstance(t, ListT) and isinstance(t.field(key[3]), kinds)

    def prefer_known(self, vars: dict[tuple[Any, ...], Any]) -> list[Any]:
        """Short lists (only the items the point needs), then facts recorded."""
        ordered = sorted(vars.items(), key=_order)
        return [z3.Not(v) for k, v in ordered if k[0] == "list"] + [
            v for k, v in ordered if k[0] == "known"
        ]

    def prefer_values(self, vars: dict[tuple[Any, ...], Any]) -> list[Any]:
        out = []
        for key, var in sorted(vars.items(), key=_order):
            if key[0] == "fact" and key[1] in self.ranges and z3.is_real(var):
                p, k = self.ranges[key[1]], self.factor(key[1])
                near = [
                    z3.And(var >= _real((t - abs(t) / 10) * k), var <= _real((t + abs(t) / 10) * k))
                    for t in sorted(self.space.thresholds.get(key[1], ()))
                    if p.low <= t <= p.high
                ]
                out.append(z3.Or(*near) if near else var == _real(p.typical * k))
            elif key[0] == "limit" and key[1] in self.ranges:
                p, k = self.ranges[key[1]], self.factor(key[1])
                if p.normal is not None:
                    out.append(var == _real(p.normal[0 if key[2] == "LLN" else 1] * k))
            elif key[0] == "age":
                out.append(z3.And(var >= 40, var <= 70))
            elif key[0] == "part":
                typical = 125 if key[2] == "systolic" else 78
                near = [
                    z3.And(var >= t - 5, var <= t + 5)
                    for t in sorted(self.space.thresholds.get(f"{key[1]}.{key[2]}", ()))
                ]
                out.append(z3.Or(*near) if near else var == typical)
        return out

    # ------------------------------------------------------------------ records
    def record(self, model: z3.ModelRef, rid: str = "witness") -> tuple[dict[str, Any], list[str]]:
        """A patient record from a model (values in the declared units), and the facts
        outside their plausible range."""
        facts: dict[str, Any] = {}
        anchors: dict[str, str] = {}
        implausible: list[str] = []
        day = self.space.as_of.isoformat()

        def known(key: str) -> bool:
            flag = self.space.vars.get(("known", key))
            return flag is None or z3.is_true(model.eval(flag, model_completion=True))

        for key, var in sorted(self.space.vars.items(), key=_order):
            kind = key[0]
            if kind == "fact" and known(key[1]):
                name = key[1]
                facts[name] = self._value(name, var, model, day)
                p = self.ranges.get(name)
                x = _rational(model.eval(var, True)) / self.factor(name)
                if p is not None and not p.low <= x <= p.high:
                    implausible.append(name)
            elif kind == "anchor" and known("@" + key[1]):
                anchors[key[1]] = _date(model, var)
            elif kind == "part" and known(key[1]):
                t = self.space.types[key[1]]
                entry = facts.setdefault(key[1], {"unit": t.unit.text, "date": day})  # type: ignore[attr-defined]
                if known(f"{key[1]}.{key[2]}"):
                    entry[key[2]] = _number(_rational(model.eval(var, True)))
        for name, t in sorted(self.space.types.items()):
            if not isinstance(t, ListT) or ("list", name, 0) not in self.space.vars:
                continue
            if not known(name):
                continue
            items = []
            for i in range(self.space.slot_count(name)):
                present = self.space.vars.get(("list", name, i))
                if present is None or not z3.is_true(model.eval(present, True)):
                    break
                item = {}
                for fname, ft in t.fields:
                    var = self.space.vars.get(("item", name, i, fname))
                    if var is not None and known(f"{name}[{i}].{fname}"):
                        item[fname] = self._field(f"{name}.{fname}", ft, var, model)
                items.append(item)
            facts[name] = items
        for (_, fact), var in [(k, v) for k, v in self.space.vars.items() if k[0] == "observed"]:
            t = self.space.types.get(fact)
            if fact not in facts and known(fact) and isinstance(t, (QuantT, NumberT)):
                # only its date is read: a typical value, dated
                p = self.ranges.get(fact)
                value = _number(p.typical if p is not None else Fraction(1))
                facts[fact] = {"value": value, "date": day}
                if isinstance(t, QuantT):
                    facts[fact]["unit"] = t.unit.text
            entry = facts.get(fact)
            if isinstance(entry, dict):
                if known(f"{fact}@date"):
                    entry["date"] = _date(model, var)
                else:
                    entry.pop("date", None)
        for key, (birth, end) in sorted(self.space.ages.items(), key=lambda kv: str(kv[0])):
            if birth in facts or known(birth):
                years = model.eval(self.space.vars[key], True).as_long()
                end_day = dt.date.fromordinal(model.eval(end, True).as_long())
                facts[birth] = _years_before(end_day, years).isoformat()
        for (_, name, which), var in [
            (k, v) for k, v in self.space.vars.items() if k[0] == "limit"
        ]:
            entry = facts.get(name)
            t = self.space.types.get(name)
            suffix = "#low" if which == "LLN" else "#high"
            if isinstance(entry, dict) and isinstance(t, QuantT) and known(name + suffix):
                rr = entry.setdefault("reference_range", {"unit": t.unit.text})
                rr["low" if which == "LLN" else "high"] = _number(
                    _rational(model.eval(var, model_completion=True)) / t.unit.factor
                )
        ordered = {k: facts[k] for k in sorted(facts)}
        record = {
            "id": rid,
            "as_of": day,
            "facts": ordered,
            "anchors": dict(sorted(anchors.items())),
        }
        return record, sorted(implausible)

    def _value(self, name: str, var: Any, model: z3.ModelRef, day: str) -> Any:
        t = self.space.types[name]
        v = model.eval(var, model_completion=True)
        if isinstance(t, QuantT):
            value = _rational(v) / t.unit.factor
            return {"value": _number(value), "unit": t.unit.text, "date": day}
        if isinstance(t, NumberT):
            return {"value": _number(_rational(v)), "date": day}
        return self._field(name, t, var, model)

    def _field(self, key: str, t: Any, var: Any, model: z3.ModelRef) -> Any:
        v = model.eval(var, model_completion=True)
        if isinstance(t, BoolT):
            return z3.is_true(v)
        if isinstance(t, DateT):
            return _date(model, var)
        if isinstance(t, IntT):
            return v.as_long()
        if isinstance(t, (EnumT, ScaleT)):
            names = self.space.members[key]
            return names[v.as_long()]
        if isinstance(t, QuantT):
            return {"value": _number(_rational(v) / t.unit.factor), "unit": t.unit.text}
        if isinstance(t, NumberT):
            return _number(_rational(v))
        raise AssertionError(t)


def evaluate_record(
    checked: CheckResult, compiled: Compiled, record: dict[str, Any], as_of: dt.date
) -> tuple[str, list[str]]:
    """(verdict, missing facts) as `critlang eval` gives them (arms included)."""
    r = read_record(checked, record, as_of)
    e = Evaluator(compiled, explain=False).evaluate(r)
    missing = set(e.missing)
    if e.verdict == "undetermined":  # also the list items' unknown fields
        open_ = {x.id for x in e.criteria if x.status == "unknown"}
        for crit in compiled.criteria:
            if crit.id not in open_:
                continue
            for dep in crit.facts:
                obs = r.facts.get(dep)
                if obs is not None and isinstance(checked.record_types.get(dep), ListT):
                    for i, item in enumerate(obs.value):
                        missing.update(f"{dep}[{i + 1}].{k}" for k, v in item.items() if v is None)
    return e.verdict, sorted(missing)


def _order(kv: tuple[tuple[Any, ...], Any]) -> str:
    return ":".join(map(str, kv[0]))


def _real(x: Fraction) -> Any:
    return z3.RealVal(f"{x.numerator}/{x.denominator}")


def _rational(v: Any) -> Fraction:
    if z3.is_int_value(v):
        return Fraction(v.as_long())
    if z3.is_rational_value(v):
        return Fraction(v.numerator_as_long(), v.denominator_as_long())
    if z3.is_algebraic_value(v):
        return Fraction(v.approx(12).as_decimal(12).rstrip("?"))
    return Fraction(0)  # an unconstrained value (model completion)


def _number(x: Fraction) -> int | float | str:
    """A JSON number that the record reader reads back exactly where possible."""
    if x.denominator == 1:
        return x.numerator
    d = x.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1:  # a terminating decimal: written exactly
        text = f"{float(x)!r}"
        if Fraction(text) == x:
            return float(x)
    return f"{float(x):.9g}"


def _date(model: z3.ModelRef, var: Any) -> str:
    return dt.date.fromordinal(model.eval(var, model_completion=True).as_long()).isoformat()


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)
