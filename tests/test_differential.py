"""Compiled evaluator vs reference interpreter: identical results on generated patients.

Patients are generated from each protocol's own data dictionary, with values at and
around every threshold the protocol compares a fact with, in the declared and in
other units, with missing facts, stale labs and dates at the edges of time windows;
and with the value kinds that are not plain numbers: censored values, times with
offsets, several values of one fact (same day, same instant), statuses, partial dates,
ongoing therapies, a fact given twice, deceased patients.
"""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohort import thresholds
from critlang.backends.python import compile_protocol
from critlang.checker import CheckResult
from critlang.data.records import read_record
from critlang.data.values import Duplicate
from critlang.evaluate import run_compiled
from critlang.frontend import analyse_file
from critlang.interpreter import Interpreter
from critlang.typesys import BoolT, DateT, EnumT, IntT, ListT, NumberT, QuantT, ScaleT, Type
from critlang.ucum import read_unit
from critlang.units import conversion_factor
from helpers import TRIAL

AS_OF = dt.date(2026, 11, 27)
ALT_UNITS = {
    "g/dL": ["g/dL", "g/L", "mg/dL", "mmol/L"],
    "mg/dL": ["mg/dL", "umol/L", "mg/L", "mmol/L"],
    # clinical spellings and UCUM codes of the one unit system (docs/language.md, Units)
    "x10^9/L": ["x10^9/L", "/mm3", "x10^3/uL", "10*9/L", "K/uL", "cells/uL", "{cells}/uL"],
    "kg": ["kg", "g", "[lb_av]", "lb", "[oz_av]"],
    "mL/min": ["mL/min", "L/h", "mL/s"],
    "%": ["%"],
    "s": ["s", "min"],
}


def dates(draw: Any) -> str:
    offsets = [0, 1, 13, 14, 27, 28, 29, 30, 60, 364, 365, 366, 400, 730, 3650, 20000, 25000]
    days = draw(st.sampled_from(offsets)) + draw(st.sampled_from([0, 0, 1, -1]))
    sign = draw(st.sampled_from([-1, -1, -1, 1]))
    return (AS_OF + dt.timedelta(days=sign * days)).isoformat()


def decimal(x: Fraction) -> str:
    return f"{float(x):.6g}"


@st.composite
def quantity(draw: Any, t: QuantT, near: list[Fraction], molar: Fraction | None) -> Any:
    unit = draw(st.sampled_from(ALT_UNITS.get(t.unit.text, [t.unit.text])))
    u = read_unit(unit, t.unit)  # as the record reader reads it (K/uL for a count)
    k = conversion_factor(t.unit, u, molar)
    if k is None:
        unit, u, k = t.unit.text, t.unit, Fraction(1)
    if near and draw(st.booleans()):
        base = draw(st.sampled_from(near))
        delta = draw(st.sampled_from([0, 0, 0, Fraction(1, 10), -Fraction(1, 10), 1, -1]))
        value = (base + delta) * k if unit == t.unit.text else base * k
    else:
        value = Fraction(draw(st.integers(0, 4000)), 10) * k
    # in the declared unit the exact threshold is written as is; other units get 6 digits
    text = str(value) if value.denominator == 1 else decimal(value)
    entry: dict[str, Any] = {"value": text if unit == t.unit.text else float(text), "unit": unit}
    if draw(st.booleans()):  # a reference range, its upper limit at or near half the value
        half = value / 2 + draw(st.sampled_from([0, 0, Fraction(1, 10), -Fraction(1, 10)]))
        entry["reference_range"] = {"low": decimal(half / 4), "high": decimal(half), "unit": unit}
    if draw(st.integers(0, 4)) == 0:
        entry["date"] = dates(draw)  # often outside the look-back window
    else:
        entry["date"] = (AS_OF - dt.timedelta(days=draw(st.integers(0, 27)))).isoformat()
    if draw(st.integers(0, 3)) == 0:  # a time with an offset: ordered by instant
        entry["date"] += draw(st.sampled_from(TIMES))
    if draw(st.integers(0, 5)) == 0:  # censored (FHIR Quantity.comparator)
        entry["comparator"] = draw(st.sampled_from(["<", "<=", ">", ">="]))
    if draw(st.integers(0, 7)) == 0:
        entry["status"] = draw(st.sampled_from(["final", "preliminary", "cancelled"]))
    return entry


TIMES = ["T08:00:00Z", "T23:30:00-05:00", "T01:00+02:00", "T09:00:00+01:00", "T12:00Z"]


@st.composite
def history(draw: Any, t: QuantT, near: list[Fraction], molar: Fraction | None) -> Any:
    """One value, or several (same day, same instant, other days): conflicts and order."""
    first = draw(quantity(t, near, molar))
    if draw(st.integers(0, 3)):
        return first
    more = [draw(quantity(t, near, molar)) for _ in range(draw(st.integers(1, 2)))]
    for entry in more:
        if draw(st.booleans()):
            entry["date"] = first["date"]  # the same day or instant as the first
    return [first, *more]


def partial(draw: Any, day: str) -> str:
    """A date, sometimes cut to its year or month (a FHIR partial date)."""
    return draw(st.sampled_from([day, day, day, day[:4], day[:7]]))


def fact_value(draw: Any, name: str, t: Type, near: list[Fraction], molar: Fraction | None) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return None  # missing
    if isinstance(t, QuantT):
        return draw(history(t, near, molar))
    if isinstance(t, NumberT):
        pool = [*near, *(v + d for v in near for d in (Fraction(1, 10), -Fraction(1, 10)))]
        if pool and draw(st.booleans()):
            v = draw(st.sampled_from(pool))
        else:
            v = Fraction(draw(st.integers(0, 40)), 10)
        entry = {"value": decimal(v), "date": AS_OF.isoformat()}
        if draw(st.integers(0, 4)) == 0:
            entry["comparator"] = draw(st.sampled_from(["<", "<=", ">", ">="]))
        return entry
    if isinstance(t, IntT):
        return draw(st.integers(t.low, t.high))
    if isinstance(t, (EnumT, ScaleT)):
        return draw(st.sampled_from(t.members))
    if isinstance(t, BoolT):
        return draw(st.booleans())
    if isinstance(t, DateT):
        return partial(draw, dates(draw))
    if isinstance(t, ListT):
        items = []
        for _ in range(draw(st.integers(0, 4))):
            item = {}
            for fname, ftype in t.fields:
                missing = draw(st.integers(0, 7)) == 0
                item[fname] = None if missing else fact_value(draw, fname, ftype, [], None)
                if fname == "end" and draw(st.integers(0, 5)) == 0:
                    item[fname] = "ongoing"
            items.append(item)
        return items
    raise AssertionError(t)


BASE = json.loads((TRIAL / "examples" / "eligible_arm1.json").read_text())["facts"]


@st.composite
def patients(draw: Any, checked: CheckResult, near: dict[str, list[Fraction]]) -> dict[str, Any]:
    """Half start from an eligible patient and change a few facts; half are random."""
    facts: dict[str, Any] = {}
    mutated = draw(st.booleans())
    changed = set(draw(st.lists(st.sampled_from(sorted(checked.facts)), max_size=3)))
    for name, info in checked.facts.items():
        if mutated and name not in changed and name in BASE:
            facts[name] = BASE[name]
            continue
        facts[name] = fact_value(draw, name, info.type, near.get(name, []), info.molar_mass)
    h = checked.protocol.header
    if h is not None and h.arms and draw(st.integers(0, 3)):
        facts["arm"] = draw(st.sampled_from([a.name for a in h.arms]))
    anchors = {a: dates(draw) for a in checked.anchors if a != "enrollment" and draw(st.booleans())}
    if draw(st.integers(0, 9)) == 0:  # the same fact twice (a duplicate JSON key)
        name = draw(st.sampled_from(sorted(checked.facts)))
        info = checked.facts[name]
        other = fact_value(draw, name, info.type, near.get(name, []), info.molar_mass)
        facts[name] = Duplicate((facts[name], other))
    record: dict[str, Any] = {"id": "generated", "facts": facts, "anchors": anchors}
    if draw(st.integers(0, 19)) == 0:
        record["deceased"] = draw(st.sampled_from([True, "2026", "2026-11-30", "2020-01-01"]))
    return record


@pytest.mark.parametrize("name", ["current.crit", "previous.crit"])
def test_compiled_equals_interpreter(name: str) -> None:
    checked = analyse_file(TRIAL / name).result
    assert checked is not None
    compiled = compile_protocol(checked)
    interpreter = Interpreter(checked)
    near = thresholds(checked)
    seen = {"verdicts": set(), "count": 0}

    @settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(patients(checked, near))
    def agree(data: dict[str, Any]) -> None:
        record = read_record(checked, data, AS_OF)
        verdict, statuses = run_compiled(compiled, compiled.normalise(record))
        ref_verdict, ref_statuses, _ = interpreter.run(record)
        assert (verdict, statuses) == (ref_verdict, ref_statuses)
        seen["verdicts"].add(verdict)
        seen["count"] += 1

    agree()
    assert seen["count"] >= 1000
    assert seen["verdicts"] == {"eligible", "ineligible", "undetermined"}
