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


PERIOD = """anchor randomisation "Randomisation"
fact therapies: list of {start: date, end: date}
exclusion criteria
E1 "Systemic therapy within 4 weeks before randomisation"
  rule any therapies with (start to end overlaps 4 weeks before randomisation)
E2 "Systemic therapy ongoing at randomisation"
  rule any therapies with (start to end ongoing at randomisation)
"""


def _period_statuses(start: str, end: str) -> tuple:
    import warnings

    from critlang.backends.python import compile_protocol
    from critlang.interpreter import Interpreter

    a = analyse_text(PERIOD, "period.crit")
    assert a.result is not None and a.ok, [d.message for d in a.diagnostics]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled = compile_protocol(a.result)
    facts = {"therapies": [{"start": start, "end": end}]}
    record = read_record(
        a.result, {"facts": facts, "anchors": {"randomisation": "2024-05-27"}}, AS_OF
    )
    verdict, got = compiled.evaluate(compiled.normalise(record))
    ref_verdict, ref, _ = Interpreter(a.result).run(record)
    assert (verdict, got) == (ref_verdict, ref)
    return got


def test_period_ending_before_it_starts_is_unknown_not_a_pass() -> None:
    # 2024-05-17 to 2024-04-17: start and end swapped. Read literally the therapy "ends"
    # before the window and the exclusion was not met; really it ran through the window.
    assert _period_statuses("2024-05-17", "2024-04-17") == (None, None)
    assert _period_statuses("2024-06-10", "2024-05-20") == (None, None)
    # a real period still decides, including a one-day period
    assert _period_statuses("2024-04-17", "2024-05-17") == (True, False)
    assert _period_statuses("2024-04-29", "2024-04-29") == (True, False)
    assert _period_statuses("2024-04-28", "2024-04-28") == (False, False)


@pytest.mark.parametrize(
    "rule",
    [
        "d not less than 12 weeks before enrollment",
        "d not more than 12 weeks before enrollment",
    ],
)
def test_not_inside_a_window_says_where_not_goes(rule: str) -> None:
    # "not less than 12 weeks before" is how protocols write it; the parser said only
    # "expected `in`", which sends the author nowhere
    src = f'fact d: date\ninclusion criteria\nI1 "x"\n  rule {rule}\n'
    diags = analyse_text(src, "w.crit").diagnostics
    assert [d.code for d in diags][:1] == ["E001"]
    assert "not (d " in (diags[0].hint or ""), diags[0].hint
