"""Keys of a native value entry the reader does not read are said (breaker8 F15): a near
miss of a key it reads (`comparatr`) or a `comparator` on a blood pressure makes the entry
unusable (it may change what the value means); any other key is ignored, said."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from critlang.data.records import read_record
from helpers import STATUS_WORDS, TwoEvaluators

BOTH = TwoEvaluators(
    """\
fact bp: blood pressure
fact hba1c: quantity %
exclusion criteria
E1 "BP at least 160/95"
  rule bp >= 160/95 mmHg
E2 "HbA1c above 9 %"
  rule hba1c > 9 %
""",
    "keys.crit",
)
AS_OF = dt.date(2024, 6, 1)
BP = {"systolic": 170, "diastolic": 100, "unit": "mm[Hg]", "date": "2024-05-20"}
A1C = {"value": 10, "unit": "%", "date": "2024-05-20"}


@pytest.mark.parametrize(
    ("facts", "crit", "expected", "words"),
    [
        ({"bp": BP}, "E1", "met", None),
        ({"bp": BP | {"comparator": "<"}}, "E1", "unknown", "a blood pressure is read only"),
        ({"hba1c": A1C}, "E2", "met", None),
        ({"hba1c": A1C | {"comparatr": "<"}}, "E2", "unknown", "did you mean 'comparator'"),
        ({"hba1c": A1C | {"dat": "2024-05-21"}}, "E2", "unknown", "did you mean 'date'"),
        ({"hba1c": A1C | {"flag": "H"}}, "E2", "met", "ignored: 'flag'"),
    ],
)
def test_unread_keys_are_said(facts: dict[str, Any], crit: str, expected: str, words) -> None:
    record = read_record(BOTH.checked, {"facts": facts}, AS_OF)
    assert STATUS_WORDS[BOTH.status(record, crit)] == expected
    said = [p.message for p in record.problems]
    if words is None:
        assert said == []
    else:
        assert any(words in m for m in said), said
