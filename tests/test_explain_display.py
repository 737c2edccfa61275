"""What an explanation shows never misleads: whole labels, and converted values with enough
digits that the value shown never contradicts its mark (author6 findings 15 and 17)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from critlang.backends.python import compile_protocol
from critlang.data.records import read_record
from critlang.evaluate import CriterionResult, Evaluator
from critlang.frontend import analyse_text

AS_OF = dt.date(2026, 11, 27)
HEAD = 'protocol "X"\n  title "t"\n  version "1"\n  date 2024-01-01\n'


def explain(text: str, facts: dict[str, Any]) -> dict[str, CriterionResult]:
    a = analyse_text(HEAD + text, "x.crit")
    assert a.ok and a.result is not None, [d.message for d in a.diagnostics]
    record = read_record(a.result, {"id": "p", "facts": facts}, AS_OF)
    assert not record.problems, record.problems
    ev = Evaluator(compile_protocol(a.result)).evaluate(record)
    return {c.id: c for c in ev.criteria}


LABEL = "History of (non-infectious) pneumonitis that required steroids, or current pneumonitis"


def test_labels_are_shown_whole() -> None:
    text = (
        f'fact pneumonitis: boolean\n  label "{LABEL}"\n'
        'fact recist: boolean\n  label "Measurable disease per RECIST 1.1 (investigator)"\n'
        'fact therapies: list of {end: date}\n  label "Prior therapies; `end` is the last dose"\n'
        'exclusion criteria\nE1 "x"\n  rule pneumonitis\ninclusion criteria\nI1 "y"\n'
        '  rule recist\nI2 "z"\n  rule no therapies with (end within 4 weeks before enrollment)\n'
    )
    got = explain(text, {"pneumonitis": False, "recist": True, "therapies": []})
    assert got["E1"].explanation == [f"✗ {LABEL} no"]
    assert got["I1"].explanation == ["✓ Measurable disease per RECIST 1.1 (investigator) yes"]
    assert "Prior therapies; `end` is the last dose" in got["I2"].explanation[0]


BP = 'fact bp: blood pressure\nexclusion criteria\nE1 "x"\n  rule {rule}\n'


def bp(rule: str, systolic: float, diastolic: float, unit: str) -> list[str]:
    value = {"systolic": systolic, "diastolic": diastolic, "unit": unit, "date": "2026-11-20"}
    got = explain(BP.format(rule=rule), {"bp": value})
    return got["E1"].explanation


def test_blood_pressure_part_just_below_the_threshold_is_not_shown_as_it() -> None:
    # 21.33 kPa is 159.9917 mm[Hg]: "systolic 160 ✗" against >= 160 contradicted itself
    (line,) = bp("bp >= 160/100 mmHg", 21.33, 10, "kPa")
    assert "systolic 159.99 ✗" in line and "diastolic 75.01 ✗" in line
    (line,) = bp("bp >= 160/100 mmHg", 160, 90, "mm[Hg]")
    assert "systolic 160 ✓" in line and "diastolic 90 ✗" in line


def test_blood_pressure_part_alone_shows_the_converted_value() -> None:
    (line,) = bp("bp.systolic >= 160 mm[Hg]", 21.33, 10, "kPa")
    assert line == "✗ systolic of bp 21.33/10 kPa on 2026-11-20 = 159.99 mm[Hg] ≥ 160 mm[Hg]"
    (line,) = bp("bp.systolic >= 160 mm[Hg]", 150, 90, "mm[Hg]")
    assert line.startswith("✗ systolic 150 mm[Hg] (bp 150/90")


def test_x_uln_shows_the_value_in_the_range_unit_and_a_bound_that_differs() -> None:
    text = 'fact ast: quantity U/L\n  reference range reported\nexclusion criteria\nE1 "x"\n'
    text += "  rule ast > 3 x ULN\n"
    value = {
        "value": 2.0009,
        "unit": "ukat/L",
        "date": "2026-11-20",
        "reference_range": {"low": 0.1, "high": 0.6671, "unit": "ukat/L"},
    }
    (line, note) = explain(text, {"ast": value})["E1"].explanation
    # 120.054 U/L against 120.078 U/L: "120.1" for the bound alone hid how close it was,
    # and the limit converted from 0.6671 ukat/L keeps its digits (40.026, not 40.03)
    assert line == (
        "✗ ast 2.0009 ukat/L on 2026-11-20 = 120.05 U/L > 3 × ULN = 3 × 40.026 U/L = 120.08 U/L"
    )
    assert "reference range 0.1-0.6671 ukat/L = 6-40.026 U/L (reported with the value)" in note


def test_a_normal_range_is_shown_as_reported_beside_the_value() -> None:
    """Value and range in the unit the laboratory used (author7 F12: the range had been
    converted into the fact's mg/dL at 7 digits beside a value in umol/L)."""
    text = "fact bili: quantity mg/dL\n"
    text += '  molar mass 584.66 g/mol source "PubChem CID 5280352"\n  reference range reported\n'
    text += 'inclusion criteria\nI1 "x"\n  rule bili within normal range\n'
    value = {
        "value": 22,
        "unit": "umol/L",
        "date": "2026-11-20",
        "reference_range": {"low": 3, "high": 21, "unit": "umol/L"},
    }
    (line,) = explain(text, {"bili": value})["I1"].explanation
    assert line == (
        "✗ bili 22 umol/L on 2026-11-20 within the normal range "
        "(reference range 3-21 umol/L (reported with the value))"
    )


def test_render_shows_labels_whole() -> None:
    from critlang.render import markdown

    text = (
        'fact therapies: list of {end: date}\n  label "Prior therapies; the last dose"\n'
        'inclusion criteria\nI1 "x"\n  rule no therapies with (end within 4 weeks before '
        "enrollment)\n"
    )
    a = analyse_text(HEAD + text, "x.crit")
    assert a.result is not None
    assert "none of Prior therapies; the last dose with:" in markdown(a.result)
