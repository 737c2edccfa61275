"""Seeded synthetic patients for the SQL differential tests, from a protocol's own data
dictionary: values at and around every threshold it compares a fact with (in the
declared and in other units), missing facts, several dated values per lab (some outside
the look-back window, some undated, ties on one day), reference ranges, list items with
missing fields, dates at the edges of every window, arms recorded or not, anchors."""

from __future__ import annotations

import copy
import datetime as dt
import random
from fractions import Fraction
from typing import Any

from critlang import nodes as n
from critlang.checker import CheckResult
from critlang.typesys import (
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
from critlang.units import conversion_factor, parse_unit

AS_OF = dt.date(2026, 11, 27)
OTHER_UNITS = {
    "g/dL": ["g/dL", "g/L", "mg/dL", "mmol/L"],
    "mg/dL": ["mg/dL", "umol/L", "mg/L", "mmol/L"],
    "x10^9/L": ["x10^9/L", "/mm3", "x10^3/uL", "10*9/L"],
    "kg": ["kg", "g"],
    "mL/min": ["mL/min", "L/h"],
    "s": ["s", "min"],
}
OFFSETS = [0, 1, 13, 14, 27, 28, 29, 30, 60, 364, 365, 366, 400, 730, 731, 3650, 6574, 6575]


def thresholds(checked: CheckResult) -> dict[str, list[Fraction]]:
    """Per fact, every literal it is compared with, in the fact's declared unit."""
    out: dict[str, list[Fraction]] = {}
    for node in checked.protocol.walk():
        pairs: list[tuple[n.Expr, n.Expr]] = []
        if isinstance(node, n.Compare):
            pairs.append((node.left, node.right))
        elif isinstance(node, n.Between):
            pairs += [(node.subject, node.low), (node.subject, node.high)]
        for subject, lit in pairs:
            if isinstance(lit, n.Name) and lit.name in checked.assumed:
                lit = checked.assumed[lit.name].value
            if isinstance(lit, n.DualQuantityLit):
                lit = lit.primary
            if not (isinstance(subject, n.Name) and subject.name in checked.facts):
                continue
            info = checked.facts[subject.name]
            if isinstance(lit, n.QuantityLit) and isinstance(info.type, QuantT):
                k = conversion_factor(parse_unit(lit.unit), info.type.unit, info.molar_mass)
                if k is not None:
                    out.setdefault(subject.name, []).append(lit.value * k)
            elif isinstance(lit, n.NumberLit):
                out.setdefault(subject.name, []).append(lit.value)
    return out


class Generator:
    def __init__(self, checked: CheckResult, seed: int, base: dict[str, Any]) -> None:
        self.c = checked
        self.rng = random.Random(seed)
        self.near = thresholds(checked)
        self.base = base

    def date(self) -> str:
        r = self.rng
        days = r.choice(OFFSETS) + r.choice([0, 0, 1, -1])
        sign = r.choice([-1, -1, -1, 1])
        return (AS_OF + dt.timedelta(days=sign * days)).isoformat()

    def recent(self) -> str:
        return (AS_OF - dt.timedelta(days=self.rng.randint(0, 27))).isoformat()

    def quantity(self, t: QuantT, near: list[Fraction], molar: Fraction | None) -> dict[str, Any]:
        r = self.rng
        unit = r.choice(OTHER_UNITS.get(t.unit.text, [t.unit.text]))
        k = conversion_factor(t.unit, parse_unit(unit), molar)
        if k is None:
            unit, k = t.unit.text, Fraction(1)
        if near and r.random() < 0.6:
            base = r.choice(near)
            delta = r.choice([0, 0, 0, Fraction(1, 10), -Fraction(1, 10), 1, -1])
            value = (base + delta) * k if unit == t.unit.text else base * k
        else:
            value = Fraction(r.randint(0, 4000), 10) * k
        text = str(value) if value.denominator == 1 else f"{float(value):.6g}"
        entry: dict[str, Any] = {
            "value": text if unit == t.unit.text else float(text),
            "unit": unit,
        }
        if r.random() < 0.4:
            half = value / 2 + r.choice([0, 0, Fraction(1, 10), -Fraction(1, 10)])
            entry["reference_range"] = {
                "low": f"{float(half / 4):.6g}",
                "high": f"{float(half):.6g}",
                "unit": unit,
            }
        roll = r.random()
        if roll < 0.2:
            entry["date"] = self.date()
        elif roll < 0.95:
            entry["date"] = self.recent()
        return entry

    def scalar(self, t: Type, near: list[Fraction], molar: Fraction | None) -> Any:
        r = self.rng
        if isinstance(t, QuantT):
            return self.quantity(t, near, molar)
        if isinstance(t, NumberT):
            pool = [*near, *(v + d for v in near for d in (Fraction(1, 10), -Fraction(1, 10)))]
            v = r.choice(pool) if pool and r.random() < 0.5 else Fraction(r.randint(0, 40), 10)
            entry: dict[str, Any] = {"value": f"{float(v):.6g}"}
            if r.random() < 0.9:
                entry["date"] = self.recent() if r.random() < 0.8 else self.date()
            return entry
        if isinstance(t, IntT):
            return r.randint(t.low, t.high)
        if isinstance(t, (EnumT, ScaleT)):
            return r.choice(t.members)
        if isinstance(t, BoolT):
            return r.random() < 0.5
        if isinstance(t, DateT):
            return self.date()
        if isinstance(t, PressureT):  # one part may be missing (docs/patients.md)
            parts = {"systolic": r.randint(80, 200), "diastolic": r.randint(40, 120)}
            if r.random() < 0.1:
                del parts[r.choice(["systolic", "diastolic"])]
            return {**parts, "unit": r.choice(["mm[Hg]", "mmHg"]), "date": self.recent()}
        raise AssertionError(t)

    def value(self, name: str, t: Type) -> Any:
        r = self.rng
        if r.random() < 0.1:
            return None  # missing
        info = self.c.facts.get(name)
        molar = info.molar_mass if info else None
        near = self.near.get(name, [])
        if isinstance(t, ListT):
            items = []
            for _ in range(r.choice([0, 1, 1, 2, 3, 4])):
                item: dict[str, Any] = {}
                for fname, ftype in t.fields:
                    if r.random() < 0.12:
                        item[fname] = None
                    elif isinstance(ftype, QuantT):
                        item[fname] = self.quantity(ftype, [], None)
                    elif isinstance(ftype, NumberT):
                        item[fname] = r.randint(0, 40) / 10
                    else:
                        item[fname] = self.scalar(ftype, [], None)
                s, e = item.get("start"), item.get("end")
                if isinstance(s, str) and isinstance(e, str) and s > e:
                    # a period ends after it starts (an inverted one is impossible data,
                    # refused by the reader: tests/test_values.py covers that)
                    item["start"], item["end"] = e, s
                items.append(item)
            return items
        if isinstance(t, (QuantT, NumberT)) and r.random() < 0.3:
            # a lab history: several values, newest inside or outside the window, ties
            entries = [self.scalar(t, near, molar) for _ in range(r.randint(2, 4))]
            if r.random() < 0.3 and all("date" in e for e in entries):
                entries[1]["date"] = entries[0]["date"]
            return entries
        return self.scalar(t, near, molar)

    def patient(self, i: int) -> dict[str, Any]:
        r = self.rng
        facts: dict[str, Any] = {}
        mutated = r.random() < 0.5
        changed = set(r.sample(sorted(self.c.facts), r.randint(0, 3)))
        for name, t in self.c.record_types.items():
            if name == "arm":
                continue
            if mutated and name not in changed and name in self.base:
                facts[name] = self.base[name]
                continue
            facts[name] = self.value(name, t)
        h = self.c.protocol.header
        if h is not None and h.arms and r.random() < 0.75:
            facts["arm"] = r.choice([a.name for a in h.arms])
        anchors = {a: self.date() for a in self.c.anchors if a != "enrollment" and r.random() < 0.6}
        return {"id": f"P{i:05d}", "facts": facts, "anchors": anchors}


def generate(checked: CheckResult, count: int, seed: int, base: dict[str, Any]) -> list[dict]:
    g = Generator(checked, seed, base)
    return [g.patient(i) for i in range(count)]


def with_intervals(patient: dict[str, Any], checked: CheckResult, seed: int) -> dict[str, Any]:
    """A copy of a patient with values known only as intervals and conflicts: censored
    lab values (a comparator), partial dates ("1968", "2007-11"), ongoing ends of list
    items, and two values of one fact on the same day (docs/patients.md)."""
    r = random.Random(seed)
    p = copy.deepcopy(patient)
    facts = p.setdefault("facts", {})
    for name, t in checked.record_types.items():
        v = facts.get(name)
        if v is None:
            continue
        if isinstance(t, (QuantT, NumberT)):
            entries = v if isinstance(v, list) else [v]
            for e in entries:
                if isinstance(e, dict) and "value" in e and r.random() < 0.25:
                    e["comparator"] = r.choice(["<", "<=", ">", ">="])
            if isinstance(v, dict) and "value" in v and "date" in v and r.random() < 0.15:
                other = {k: x for k, x in v.items() if k != "comparator"}
                try:
                    other["value"] = str(float(v["value"]) * r.choice([0.5, 1.01, 1.5, 2]))
                except (TypeError, ValueError):
                    continue
                facts[name] = [v, other]  # same date: a conflict
        elif isinstance(t, DateT) and isinstance(v, str) and r.random() < 0.3:
            facts[name] = v[: r.choice([4, 7])]
        elif isinstance(t, ListT) and isinstance(v, list):
            fields = dict(t.fields)
            for item in v:
                if not isinstance(item, dict):
                    continue
                for k, ft in fields.items():
                    x = item.get(k)
                    if isinstance(ft, DateT) and isinstance(x, str) and r.random() < 0.2:
                        ongoing = k == "end" and r.random() < 0.5
                        item[k] = "ongoing" if ongoing else x[: r.choice([4, 7])]
    return p
