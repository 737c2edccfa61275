"""Findings of a fresh user of the language (issue 10), each pinned by a test."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from critlang.data.records import read_record
from critlang.frontend import analyse_text

AS_OF = dt.date(2024, 5, 27)

BP = """fact bp: blood pressure
inclusion criteria
I1 "BP < 140/90 mmHg"
  rule 140/90 > bp
"""


@pytest.mark.parametrize(
    ("systolic", "diastolic", "message"),
    [
        (-120, 80, "negative"),  # a sign slip: read as -120 it passed `bp < 140/90`
        (120, -80, "negative"),
        (80, 120, "diastolic above the systolic"),  # swapped parts decide nothing
    ],
)
def test_impossible_blood_pressure_is_unknown_with_a_reason(
    systolic: Any, diastolic: Any, message: str
) -> None:
    a = analyse_text(BP, "bp.crit")
    assert a.result is not None and a.ok
    entry = {"systolic": systolic, "diastolic": diastolic, "unit": "mm[Hg]"}
    record = read_record(a.result, {"facts": {"bp": entry}}, AS_OF)
    assert record.facts["bp"] is None
    assert any(message in p.message for p in record.problems), record.problems


def test_possible_blood_pressures_are_still_read() -> None:
    a = analyse_text(BP, "bp.crit")
    assert a.result is not None
    for entry in (
        {"systolic": 120, "diastolic": 120, "unit": "mm[Hg]"},
        {"systolic": 90, "diastolic": 0, "unit": "mm[Hg]"},
        {"systolic": 120, "unit": "mm[Hg]"},
    ):
        record = read_record(a.result, {"facts": {"bp": entry}}, AS_OF)
        assert record.facts["bp"] is not None and not record.problems, record.problems
