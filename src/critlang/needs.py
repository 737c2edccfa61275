"""What an undetermined verdict needs: the unknown facts whose value could still change it.

Decided with the compiled evaluator, not by reading the rule: each unknown fact (or an
unknown field of a list item, or a missing reference range) is set to probe values and
the protocol re-evaluated. A fact is needed when, for some values of the other unknown
facts of the same criterion (each left unknown or set to a probe), two of its own values
give that criterion different statuses. So a male patient does not need the date of his
last menstruation (`sex = female and ...` is already false), while a Cockcroft-Gault
clearance needs weight and creatinine together even though neither alone decides it.

Probe values come from the facts' types: every category, every boolean, every integer of
a small range, for quantities and numbers each constant of the generated code (the
thresholds, already in the fact's unit) with its neighbours plus a ladder of magnitudes,
for dates offsets around every known date of the record. A search too wide to run (more
than `_MAX_JOINT` combinations) counts the fact as needed: "needs" may then name a fact
that turns out not to matter, never leave out one that does.
"""

from __future__ import annotations

import datetime as dt
import itertools
from fractions import Fraction
from typing import Any

from . import nodes as n
from .backends.python import Compiled
from .backends.runtime import Range
from .frozen_classes import frozen
from .typesys import BoolT, DateT, EnumT, IntT, ListT, NumberT, PressureT, QuantT, ScaleT, Type

_MAX_JOINT = 4096
_FAULT = object()  # the generated code raised on a probe value
_LADDER = (0.0, 0.001, 0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)
_LADDER += (1e3, 1e4, 1e5, 1e6, 1e9)
_DAY_OFFSETS = (0, 1, 2, 7, 14, 27, 28, 29, 31, 60, 90, 120, 182, 300, 364, 365, 366, 367)
_DAY_OFFSETS += (400, 730, 731, 800, 1095, 1826, 3653, 7305, 36525)


@frozen
class Slot:
    """One unknown input of the compiled evaluator: a fact, an anchor ("@name"), a
    reference limit ("name#high"), or a field of a list item (`index` 0-based)."""

    key: str
    index: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        if "#" in self.key:  # named as in a patient record: reference_range.{low, high}
            name, _, side = self.key.partition("#")
            return f"{name}.reference_range.{side}"
        if self.index is None:
            return self.key
        return f"{self.key}[{self.index + 1}].{self.field}"  # 1-based, as shown to people


class Prober:
    """Probe values per type, built once per compiled protocol."""

    def __init__(self, compiled: Compiled) -> None:
        self.compiled = compiled
        self.types: dict[str, Type] = dict(compiled.checked.record_types)
        self.constants = sorted(x for x in _constants(compiled) if x >= 0)
        self.numbers = sorted(set(self.constants) | set(_LADDER) | {-x for x in _LADDER})
        self._numbers: dict[bool, list[float]] = {}

    def number_probes(self, integer: bool = False) -> list[float]:
        cached = self._numbers.get(integer)
        if cached is None:
            cached = self._numbers[integer] = self._number_probes(integer)
        return cached

    def _number_probes(self, integer: bool) -> list[float]:
        out: set[float] = set()
        for x in self.numbers:
            out.update((x, x * (1 + 1e-9) + 1e-9, x * (1 - 1e-9) - 1e-9))
        if integer:
            return sorted({float(round(x)) for x in out})
        return sorted(out)

    def date_probes(self, f: dict[str, Any]) -> list[int]:
        days = {v for k, v in f.items() if k.startswith("@") and isinstance(v, int)}
        for k, v in f.items():
            if isinstance(self.types.get(k), DateT) and isinstance(v, int):
                days.add(v)
        out: set[int] = set()
        for d in days:
            out.update(d + s * o for o in _DAY_OFFSETS for s in (1, -1))
        top = dt.date.max.toordinal()  # probes stay inside the calendar (years 1-9999)
        return sorted(x for x in out if 0 < x <= top)

    def scalar(self, t: Type, f: dict[str, Any], reduced: bool) -> list[Any]:
        if isinstance(t, BoolT):
            return [True, False]
        if isinstance(t, ScaleT):
            return list(range(len(t.members)))
        if isinstance(t, EnumT):
            return list(t.members)
        if isinstance(t, IntT):
            if t.high - t.low <= 50:
                return list(range(t.low, t.high + 1))
            return [int(x) for x in self.number_probes(True) if t.low <= x <= t.high]
        if isinstance(t, DateT):
            days = self.date_probes(f)
            return days[:: max(1, len(days) // 12)] if reduced else days
        if isinstance(t, PressureT):
            # the runtime value is a (systolic, diastolic) pair, either part possibly
            # unknown (backends/python.py _pressure_normaliser): probe pairs, not booleans
            # each threshold of the code, a step either side (pairs grow as the square)
            values = sorted({v for x in (0.0, *self.constants) for v in (x, x + 1, max(x - 1, 0))})
            if reduced:
                values = values[:: max(1, len(values) // 6)]
            part = [None, *values]
            return [(a, b) for a in part for b in part if (a, b) != (None, None)]
        if isinstance(t, (QuantT, NumberT)):
            values = self.number_probes()
            if reduced:
                values = [x for x in self.numbers if x >= 0]
                return values[:: max(1, len(values) // 10)]
            return values
        return [True, False]

    def probes(self, slot: Slot, f: dict[str, Any], reduced: bool = False) -> list[Any]:
        if slot.key.startswith("@"):
            days = self.date_probes(f)
            return days[:: max(1, len(days) // 12)] if reduced else days
        if "#" in slot.key:  # a reference limit, in the fact's unit
            return self.scalar(NumberT(), f, reduced)
        t = self.types.get(slot.key)
        if isinstance(t, ListT):
            fields = dict(t.fields)
            if slot.field is not None:
                return self.scalar(fields[slot.field], f, reduced)
            return self.lists(t, f)
        if t is None:
            return [True, False]
        if isinstance(t, PressureT) and isinstance(f.get(slot.key), tuple):
            known = f[slot.key]  # probe only the missing part of a recorded pair
            pairs = {
                tuple(k if k is not None else p for k, p in zip(known, pair, strict=True))
                for pair in self.scalar(t, f, reduced)
            }
            return sorted(pairs, key=lambda p: tuple(-1.0 if x is None else x for x in p))
        return self.scalar(t, f, reduced)

    def lists(self, t: ListT, f: dict[str, Any]) -> list[Any]:
        """A missing list: empty, or one item of probe values (at most _MAX_JOINT)."""
        choices = [[(name, v) for v in self.scalar(ft, f, True)] for name, ft in t.fields]
        out: list[Any] = [[]]
        for combo in itertools.islice(itertools.product(*choices), _MAX_JOINT):
            out.append([dict(combo)])
        return out


def _constants(compiled: Compiled) -> set[float]:
    """Every number the generated code compares with (thresholds in the fact's unit)."""
    import ast  # only for an undetermined patient

    out: set[float] = set()
    try:
        tree = ast.parse(compiled.source_code)
    except (SyntaxError, RecursionError, ValueError):
        return out
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            out.add(float(node.value))
    return {x for x in out if abs(x) < 1e12}


def _get(f: dict[str, Any], slot: Slot) -> Any:
    v = f.get(slot.key)
    if slot.index is None:
        return v
    return v[slot.index].get(slot.field)


def _set(f: dict[str, Any], slot: Slot, value: Any) -> dict[str, Any]:
    """A copy of f with one slot set (lists copied on the way down)."""
    g = dict(f)
    if slot.index is None:
        g[slot.key] = value
        if "#" in slot.key:  # a reference limit: its `k x ULN` products too (limit_key)
            for key in [k for k in g if k.startswith(slot.key + "*")]:
                k = Fraction(key.partition("*")[2])
                g[key] = None if value is None else float(k * Fraction(value))
        if "#" in f:  # its conflicting candidates no longer apply (_without_probed_conflicts)
            g["#probed"] = frozenset(f.get("#probed", ())) | {slot.key}
        return g
    items = list(g[slot.key])
    item = dict(items[slot.index])
    item[slot.field] = value  # type: ignore[index]
    items[slot.index] = item
    g[slot.key] = items
    return g


class Needs:
    def __init__(self, compiled: Compiled) -> None:
        self.compiled = compiled
        self.prober = Prober(compiled)
        self.ranged = set(compiled.ranged)
        self.non_monotone = [_non_monotone(compiled, c.node) for c in compiled.criteria]
        self.inputs = [
            sorted(
                {
                    *c.facts,
                    *(f"{k}#{s}" for k in c.facts if k in self.ranged for s in ("low", "high")),
                }
            )
            for c in compiled.criteria
        ]
        self.memo: dict[tuple[Any, ...], list[Slot]] = {}
        refs = compiled.checked.refs
        self.sides = [_limit_sides(c.node, refs) for c in compiled.criteria]

    def slots(
        self, f: dict[str, Any], deps: frozenset[str], index: int | None = None
    ) -> list[Slot]:
        """The unknown inputs a criterion reads (criterion `index`: only the reference
        limits it compares with, `x ULN` the upper one; author8 F3)."""
        sides = self.sides[index] if index is not None else None
        out: list[Slot] = []
        conflicted = _conflicted(f)
        for dep in sorted(deps):
            v = f.get(dep)
            # unknown, a pair with a part missing or censored, known only as an interval (a
            # censored value, a partial date: a precise value may decide), or in conflict
            # (`is`, never `in`: a Range's == is three-valued)
            partial = isinstance(v, tuple) and any(x is None or isinstance(x, Range) for x in v)
            if v is None or partial or isinstance(v, Range) or dep in conflicted:
                out.append(Slot(dep))
            elif isinstance(v, list):
                for i, item in enumerate(v):
                    out += [
                        Slot(dep, i, k)
                        for k, x in item.items()
                        if x is None or isinstance(x, Range)
                    ]
            # a reference range not reported: `> 2 x ULN` needs it as much as the value
            for side in ("high", "low"):
                if dep not in self.ranged or f.get(f"{dep}#{side}") is not None:
                    continue
                if sides is None or side in sides.get(dep, ("high", "low")):
                    out.append(Slot(f"{dep}#{side}"))
        return out

    def status(self, f: dict[str, Any], index: int) -> Any:
        # a slot's probe replaces its conflicting candidates too (python.normalise "#")
        extra = f.get("#")
        if extra is not None and extra[0]:
            f = _without_probed_conflicts(f)
        try:
            return self.compiled.status(f, index)
        except (ArithmeticError, ValueError, OverflowError, TypeError):
            return _FAULT  # a probe outside what the formulas take: not a way to decide

    def find(self, f: dict[str, Any]) -> list[Slot]:
        """The slots whose value could change the verdict.

        An unknown criterion's unknown inputs, where some values change its status. A
        decided criterion's too when its rule is not monotone in knowledge (`first
        available`, `is known`: a measured clearance, once known, replaces the computed
        one), where some value makes it exclude the patient.
        """
        _, statuses = self.compiled.evaluate(f)
        needed: dict[Slot, None] = {}
        for index, status in enumerate(statuses):
            if status is not None and not self.non_monotone[index]:
                continue
            needed.update(dict.fromkeys(self.for_criterion(f, index)))
        return sorted(needed, key=lambda s: (s.key, s.index or 0, s.field or ""))

    def for_criterion(self, f: dict[str, Any], index: int) -> list[Slot]:
        """Criterion `index`'s unknown inputs whose value could change its status."""
        # a criterion's answer depends on its own inputs only: cohorts repeat them (and
        # on the conflicting candidates, which travel under "#")
        key = (index, repr(f.get("#")), *(_frozen(f.get(k)) for k in self.inputs[index]))
        found = self.memo.get(key)
        if found is None:
            slots = self.slots(f, self.compiled.criteria[index].facts, index)
            found = [s for s in slots if self.matters(f, index, s, slots)]
            if len(self.memo) < 100_000:
                self.memo[key] = found
        return found

    def changed(self, index: int, base: Any, new: Any) -> bool:
        """A status change that can move an undetermined verdict."""
        if new is _FAULT:
            return False
        if base is None:
            return new != base
        # a decided criterion matters only when it would now exclude the patient
        return new is (self.compiled.criteria[index].section == "exclusion")

    def matters(self, f: dict[str, Any], index: int, slot: Slot, slots: list[Slot]) -> bool:
        """Some values of the criterion's other unknowns under which this slot decides.

        The joint search (reduced probes, the others set or unknown) runs before the
        slot's full probes alone: a rule needing all its inputs (Cockcroft-Gault: weight
        and creatinine) is found needed in a few runs. The answer does not depend on the
        order; only its cost does."""
        base = self.status(f, index)
        others = [s for s in slots if s != slot]
        if others and self._jointly(f, index, slot, others, base):
            return True
        for v in self.prober.probes(slot, f):  # alone, the others left unknown
            if self.changed(index, base, self.status(_set(f, slot, v), index)):
                return True
        return False

    def _jointly(
        self, f: dict[str, Any], index: int, slot: Slot, others: list[Slot], base: Any
    ) -> bool:
        choices = [[None, *self.prober.probes(s, f, reduced=True)] for s in others]
        own_reduced = [None, *self.prober.probes(slot, f, reduced=True)]
        size = len(own_reduced)
        for c in choices:
            size *= len(c)
        if size > _MAX_JOINT:
            return True  # too wide to search: say it may be needed
        for combo in itertools.product(*choices):
            g = f
            for s, v in zip(others, combo, strict=True):
                if v is not None:
                    g = _set(g, s, v)
            if self._decides(g, index, slot, own_reduced, base):
                return True
        return False

    def _decides(
        self, g: dict[str, Any], index: int, slot: Slot, values: list[Any], base: Any
    ) -> bool:
        """Two of the slot's values give different statuses, one of them a change that
        matters; stops at the first such pair (the answer is the whole set's)."""
        seen: set[Any] = set()
        changing = False
        for v in values:
            x = self.status(_set(g, slot, v), index)
            if x is _FAULT or x in seen:
                continue
            seen.add(x)
            changing = changing or base is None or self.changed(index, base, x)
            if len(seen) > 1 and changing:
                return True
        return False


def _limit_sides(crit: n.Criterion, refs: Any) -> dict[str, tuple[str, ...]] | None:
    """The reference limits a criterion compares each fact with: `x ULN` the upper one,
    `x LLN` the lower one, `within normal range` both. None (both, for every fact) when a
    limit is taken of anything but a fact named directly."""
    out: dict[str, set[str]] = {}
    for x in crit.walk():
        if isinstance(x, n.CompareRef):
            subject, sides = x.left, {"high" if x.limit == "ULN" else "low"}
        elif isinstance(x, n.InNormalRange):
            subject, sides = x.subject, {"high", "low"}
        else:
            continue
        ref = refs.get(id(subject)) if isinstance(subject, n.Name) else None
        if ref is None or ref.kind != "fact":
            return None
        out.setdefault(ref.name, set()).update(sides)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def _conflicted(f: dict[str, Any]) -> set[str]:
    """Facts with conflicting candidate values (python.normalise puts them under "#")."""
    extra = f.get("#")
    if extra is None:
        return set()
    return {k for options in extra[0] for keys in options for k in keys if "@" not in k}


def _without_probed_conflicts(f: dict[str, Any]) -> dict[str, Any]:
    """f where the facts set by a probe (marked in "#probed") weigh no candidates."""
    probed = f.get("#probed")
    if not probed:
        return f
    alternatives, deceased = f["#"]
    kept = [opts for opts in alternatives if not any(k in probed for keys in opts for k in keys)]
    g = dict(f)
    g["#"] = (kept, deceased)
    return g


def _frozen(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(tuple(sorted(item.items())) for item in v)
    return v


def _non_monotone(compiled: Compiled, crit: n.Criterion) -> bool:
    """Does the rule (through definitions) hold a form where learning a value can flip a
    decided status: `first available` or `is known`?"""
    checked = compiled.checked
    seen: set[str] = set()
    stack: list[n.Node] = [crit]
    while stack:
        for x in stack.pop().walk():
            if isinstance(x, (n.FirstAvailable, n.IsKnown)):
                return True
            name = None
            if isinstance(x, n.Name):
                r = checked.refs.get(id(x))
                name = r.name if r is not None and r.kind == "define" else None
            elif isinstance(x, n.Call) and x.func in checked.defines:
                name = x.func
            if name is not None and name not in seen:
                seen.add(name)
                stack.append(checked.defines[name].body)
    return False
