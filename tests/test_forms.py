"""The forms protocols write (issue 10): blood pressure, windows, implication, conditionals.

Each form gets a small criteria file and patients at and around every boundary, with the
exact status asserted; every case is evaluated by the compiled code and by the reference
interpreter, which must agree.
"""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import pytest

from critlang.backends.python import compile_protocol
from critlang.data.records import read_record
from critlang.formatter import format_source
from critlang.frontend import analyse_text
from critlang.interpreter import Interpreter
from critlang.render import markdown
from critlang.source import SourceFile

AS_OF = dt.date(2024, 9, 1)  # after every date the window tests record (a date fact is past)
ANCHOR = dt.date(2024, 5, 1)


def statuses(src: str, facts: dict[str, Any], anchors: dict[str, str] | None = None) -> tuple:
    """Statuses of every criterion, compiled; the interpreter must give the same."""
    a = analyse_text(src, "forms.crit")
    assert a.result is not None and a.ok, [d.message for d in a.diagnostics]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # generated code compiles without any warning
        compiled = compile_protocol(a.result)
    record = read_record(a.result, {"facts": facts, "anchors": anchors or {}}, AS_OF)
    assert not record.problems, record.problems
    verdict, got = compiled.evaluate(compiled.normalise(record))
    ref_verdict, ref, _ = Interpreter(a.result).run(record)
    assert (verdict, got) == (ref_verdict, ref)
    return got


def codes(src: str) -> list[str]:
    return [d.code for d in analyse_text(src, "forms.crit").diagnostics]


def day(offset: int, base: dt.date = ANCHOR) -> str:
    return (base + dt.timedelta(days=offset)).isoformat()


# ---------------------------------------------------------------- blood pressure

BP = """fact bp: blood pressure
inclusion criteria
I1 "BP < 140/90 mmHg"
  rule bp < 140/90 mmHg
I2 "BP <= 140/90"
  rule bp <= 140/90
exclusion criteria
E1 "BP > 160/100 mmHg"
  rule bp > 160/100 mmHg
E2 "BP >= 160/100"
  rule bp >= 160/100 mm[Hg]
"""


def bp(systolic: Any, diastolic: Any) -> dict[str, Any]:
    return {"bp": {"systolic": systolic, "diastolic": diastolic, "unit": "mm[Hg]"}}


@pytest.mark.parametrize(
    ("systolic", "diastolic", "expected"),
    [
        (139, 89, (True, True, False, False)),
        (140, 89, (False, True, False, False)),  # systolic on the limit: not below
        (139, 90, (False, True, False, False)),
        (140, 90, (False, True, False, False)),
        (141, 80, (False, False, False, False)),
        (160, 100, (False, False, False, True)),  # both on the limit: at least, not above
        (161, 80, (False, False, True, True)),  # either above excludes
        (120, 101, (False, False, True, True)),
        (120, 100, (False, False, False, True)),
        (None, 80, (None, None, None, None)),  # a missing part decides nothing alone ...
        (150, None, (False, False, None, None)),  # ... unless the other part decides
        (170, None, (False, False, True, True)),
        (None, 95, (False, False, None, None)),
    ],
)
def test_blood_pressure_both_below_either_above(
    systolic: Any, diastolic: Any, expected: tuple
) -> None:
    assert statuses(BP, bp(systolic, diastolic)) == expected


def test_blood_pressure_pair_on_the_left_and_equality() -> None:
    src = """fact bp: blood pressure
inclusion criteria
I1 "a"
  rule 140/90 > bp
I2 "b"
  rule bp = 120/80
I3 "c"
  rule bp != 120/80
"""
    assert statuses(src, bp(139, 89)) == (True, False, True)
    assert statuses(src, bp(120, 80)) == (True, True, False)
    assert statuses(src, bp(120, 81)) == (True, False, True)


def test_blood_pressure_in_record_of_several_readings_uses_the_newest() -> None:
    facts = {
        "bp": [
            {"systolic": 170, "diastolic": 95, "unit": "mm[Hg]", "date": "2024-05-01"},
            {"systolic": 130, "diastolic": 85, "unit": "mm[Hg]", "date": "2024-05-20"},
        ]
    }
    assert statuses(BP, facts) == (True, True, False, False)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"systolic": 120, "diastolic": 80}, "unit"),
        ({"unit": "mm[Hg]"}, "systolic"),
        ({"systolic": "high", "diastolic": 80, "unit": "mm[Hg]"}, "not a number"),
        ({"systolic": 120, "diastolic": 80, "unit": "kg"}, "not a pressure"),
        (120, "object"),
    ],
)
def test_unusable_blood_pressure_is_unknown_with_a_reason(entry: Any, message: str) -> None:
    a = analyse_text(BP, "bp.crit")
    assert a.result is not None
    record = read_record(a.result, {"facts": {"bp": entry}}, AS_OF)
    assert record.facts["bp"] is None
    assert any(message in p.message for p in record.problems), record.problems


def test_division_of_written_numbers_is_an_error_with_a_hint() -> None:
    src = 'fact bp: number\ninclusion criteria\nI1 "BP < 140/90"\n  rule bp < 140/90\n'
    a = analyse_text(src, "x.crit")
    (d,) = [d for d in a.diagnostics if d.is_error]
    assert d.code == "E601" and "blood pressure" in d.hint and "140/90" in d.message
    for rule in ("ratio < 5 / 10", "5 / 10 > ratio", "ratio < 1 / 2"):
        src = f'fact ratio: number\ninclusion criteria\nI1 "x"\n  rule {rule}\n'
        assert "E601" in codes(src), rule
    # a division inside a formula, or of a fact, is arithmetic as written
    ok = 'fact a: number\nfact b: number\ninclusion criteria\nI1 "x"\n  rule a / b < 0.5\n'
    assert codes(ok) == ["W002"]
    # a division in parentheses is written as arithmetic (the generated-programs property
    # test wrote `n < (1.5 / 1.5)`)
    src = 'fact ratio: number\ninclusion criteria\nI1 "x"\n  rule ratio < (1 / 3)\n'
    assert "E601" not in codes(src)


def test_blood_pressure_misuse_is_reported() -> None:
    head = "fact bp: blood pressure\nfact sbp: quantity mg/dL\ninclusion criteria\n"
    assert "E602" in codes(head + 'I1 "x"\n  rule bp < 140\n')
    assert "E602" in codes(head + 'I1 "x"\n  rule bp < 90/140\n')  # diastolic first
    assert "E103" in codes(head + 'I1 "x"\n  rule bp.mean < 3 mg/dL\n')
    assert "E601" in codes(head + 'I1 "x"\n  rule sbp < 140/90\n')


def test_number_fact_against_a_threshold_the_protocol_writes_with_a_unit() -> None:
    src = (
        'fact creat: number\ninclusion criteria\nI1 "Creatinine < 2.0 mg/dL"\n  rule creat < 2.0\n'
    )
    found = [d for d in analyse_text(src, "x.crit").diagnostics if d.code == "W601"]
    assert len(found) == 1 and "2.0 mg/dL" in found[0].message
    plain = 'fact inr: number\ninclusion criteria\nI1 "INR < 1.5"\n  rule inr < 1.5\n'
    assert "W601" not in codes(plain)


# ---------------------------------------------------------------- windows

WINDOWS = """fact d: date
anchor randomisation
inclusion criteria
I1 "at least 12 weeks before randomisation"
  rule d at least 12 weeks before randomisation
I2 "no later than randomisation"
  rule d no later than randomisation
I3 "on or before randomisation"
  rule d on or before randomisation
I4 "no earlier than randomisation"
  rule d no earlier than randomisation
I5 "on or after"
  rule d on or after randomisation
I6 "between 2 and 6 weeks before randomisation"
  rule d between 2 and 6 weeks before randomisation
I7 "at least 4 weeks after randomisation"
  rule d at least 4 weeks after randomisation
I8 "between 1 and 3 months after randomisation"
  rule d between 1 month and 3 months after randomisation
"""


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        # I1 day -84 is "at least 12 weeks before" (the edge day counts); -83 is not
        (-85, (True, True, True, False, False, False, False, False)),
        (-84, (True, True, True, False, False, False, False, False)),
        (-83, (False, True, True, False, False, False, False, False)),
        # I6: from day -42 to day -14, both included
        (-43, (False, True, True, False, False, False, False, False)),
        (-42, (False, True, True, False, False, True, False, False)),
        (-14, (False, True, True, False, False, True, False, False)),
        (-13, (False, True, True, False, False, False, False, False)),
        # the anchor day itself is both "on or before" and "on or after"
        (0, (False, True, True, True, True, False, False, False)),
        (1, (False, False, False, True, True, False, False, False)),
        # I7: day +28 counts; I8: 2024-06-01 .. 2024-08-01 (calendar months)
        (27, (False, False, False, True, True, False, False, False)),
        (28, (False, False, False, True, True, False, True, False)),
        (30, (False, False, False, True, True, False, True, False)),
        (31, (False, False, False, True, True, False, True, True)),
        (92, (False, False, False, True, True, False, True, True)),
        (93, (False, False, False, True, True, False, True, False)),
    ],
)
def test_window_boundaries(offset: int, expected: tuple) -> None:
    got = statuses(WINDOWS, {"d": day(offset)}, {"randomisation": ANCHOR.isoformat()})
    assert got == expected


def test_windows_unknown_when_a_date_is_missing() -> None:
    got = statuses(WINDOWS, {}, {"randomisation": ANCHOR.isoformat()})
    assert got == (None,) * 8
    assert statuses(WINDOWS, {"d": day(0)}) == (None,) * 8


def test_at_least_and_not_less_than_differ_only_after_the_anchor() -> None:
    src = """fact d: date
anchor randomisation
inclusion criteria
I1 "a"
  rule d at least 12 weeks before randomisation
I2 "b"
  rule not d less than 12 weeks before randomisation
"""
    anchors = {"randomisation": ANCHOR.isoformat()}
    for offset in (-200, -85, -84, -83, -1, 0):
        a, b = statuses(src, {"d": day(offset)}, anchors)
        assert a == b, offset
    assert statuses(src, {"d": day(1)}, anchors) == (False, True)


VALUE_DATE = """fact hemoglobin: quantity g/dL
fact transfusion: date
exclusion criteria
E1 "Transfusion within 14 days before the blood count was drawn"
  rule transfusion within 14 days before date of hemoglobin
"""


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(-15, False), (-14, True), (-1, True), (0, True), (1, False)],
)
def test_window_counted_from_a_values_own_date(offset: int, expected: bool) -> None:
    drawn = dt.date(2024, 5, 20)
    facts = {
        "hemoglobin": {"value": 10, "unit": "g/dL", "date": drawn.isoformat()},
        "transfusion": day(offset, drawn),
    }
    assert statuses(VALUE_DATE, facts) == (expected,)


def test_value_date_unknown_when_the_value_is_undated_or_missing() -> None:
    assert statuses(
        VALUE_DATE, {"hemoglobin": {"value": 10, "unit": "g/dL"}, "transfusion": day(0)}
    ) == (None,)
    assert statuses(VALUE_DATE, {"transfusion": day(0)}) == (None,)


def test_date_of_needs_a_fact_with_its_own_date() -> None:
    head = "fact d: date\nfact l: list of {x: date}\nanchor a\ninclusion criteria\n"
    for target in ("a", "d", "l", "nothing"):
        assert "E604" in codes(head + f'I1 "x"\n  rule d before date of {target}\n'), target


PERIODS = """fact therapies: list of {start: date, end: date}
anchor randomisation
exclusion criteria
E1 "Therapy ongoing at randomisation"
  rule any therapies with (start to end ongoing at randomisation)
E2 "Therapy in the 4 weeks before randomisation"
  rule any therapies with (start to end overlaps 4 weeks before randomisation)
"""


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (-60, -29, (False, False)),  # ended the day before the window opens
        (-60, -28, (False, True)),  # ended on the window's first day
        (-60, -1, (False, True)),
        (-60, 0, (True, True)),  # ended on the anchor day: still ongoing that day
        (0, 10, (True, True)),  # started on the anchor day
        (1, 10, (False, False)),  # started after the anchor
        (-60, None, (None, None)),  # end unknown: may still be running
        (None, -40, (False, False)),  # ended before the window, start unknown
        (5, None, (False, False)),  # starts after the anchor: decided without the end
    ],
)
def test_period_ongoing_and_overlapping(start: Any, end: Any, expected: tuple) -> None:
    item = {
        "start": None if start is None else day(start),
        "end": None if end is None else day(end),
    }
    got = statuses(PERIODS, {"therapies": [item]}, {"randomisation": ANCHOR.isoformat()})
    assert got == expected


def test_window_forms_are_checked() -> None:
    head = "fact d: date\nfact n: number\nanchor a\ninclusion criteria\n"
    assert "E402" in codes(head + 'I1 "x"\n  rule d between 6 and 2 weeks before a\n')
    assert "E603" in codes(head + 'I1 "x"\n  rule d between n and 2 weeks before a\n')
    assert "E307" in codes(head + 'I1 "x"\n  rule d at least 12 kg before a\n')
    assert "E201" in codes(head + 'I1 "x"\n  rule n no later than a\n')
    assert "E305" in codes(head + 'I1 "x"\n  rule d between 2 weeks and 3 months before a\n')


# ---------------------------------------------------------------- logic

LOGIC = """fact diabetic: boolean
fact hba1c: quantity %
inclusion criteria
I1 "If diabetic, HbA1c < 8.0 %"
  rule if diabetic then hba1c < 8.0 %
I2 "same, written with implies"
  rule diabetic implies hba1c < 8.0 %
"""


@pytest.mark.parametrize(
    ("diabetic", "hba1c", "expected"),
    [
        (False, None, True),  # not diabetic: met whatever the HbA1c
        (False, 9, True),
        (True, 7.9, True),
        (True, 8.0, False),
        (True, None, None),
        (None, 7.0, True),  # the consequence holds: met either way
        (None, 9.0, None),
        (None, None, None),
    ],
)
def test_implication_three_valued(diabetic: Any, hba1c: Any, expected: Any) -> None:
    facts: dict[str, Any] = {"diabetic": diabetic}
    if hba1c is not None:
        facts["hba1c"] = {"value": hba1c, "unit": "%"}
    assert statuses(LOGIC, facts) == (expected, expected)


CONDITIONAL = """fact platelets: quantity x10^9/L
fact cycle: integer 1..12
inclusion criteria
I1 "Platelets >= 100 x10^9/L on cycle 1, >= 75 x10^9/L after"
  rule platelets >= (100 x10^9/L if cycle = 1 else 75 x10^9/L)
exclusion criteria
E1 "Platelets < 100 x10^9/L (cycle 1) or < 75 x10^9/L"
  rule platelets < (100 x10^9/L if cycle = 1 else 75 x10^9/L)
"""


@pytest.mark.parametrize(
    ("platelets", "cycle", "expected"),
    [
        (120, None, (True, False)),  # both thresholds agree: decided without the cycle
        (100, None, (True, False)),
        (99, None, (None, None)),  # between the thresholds: depends on the cycle
        (75, None, (None, None)),
        (74, None, (False, True)),  # below both: decided
        (99, 1, (False, True)),
        (99, 2, (True, False)),
        (None, 1, (None, None)),
    ],
)
def test_conditional_decided_when_both_branches_agree(
    platelets: Any, cycle: Any, expected: tuple
) -> None:
    facts: dict[str, Any] = {"cycle": cycle}
    if platelets is not None:
        facts["platelets"] = {"value": platelets, "unit": "x10^9/L"}
    assert statuses(CONDITIONAL, facts) == expected


def test_conditional_inside_a_formula_and_a_function() -> None:
    src = """fact weight: quantity kg
fact creatinine: quantity mg/dL
fact age: quantity years
fact sex: enum {female, male}
define cg(age: quantity years, weight: quantity kg, creatinine: quantity mg/dL,
          sex: enum {female, male}) =
  ((140 - (age in years)) * (weight in kg) / (72 * (creatinine in mg/dL))
   * (0.85 if sex = female else 1) as mL/min)
exclusion criteria
E1 "CrCl < 50 mL/min"
  rule cg(age, weight, creatinine, sex) < 50 mL/min
"""
    base = {
        "weight": {"value": 80, "unit": "kg"},
        "age": {"value": 66, "unit": "years"},
    }
    # 91.4 mL/min as a man, 77.7 as a woman: not excluded either way
    assert statuses(src, {**base, "creatinine": {"value": 0.9, "unit": "mg/dL"}}) == (False,)
    # 54.8 as a man, 46.6 as a woman: depends on sex
    assert statuses(src, {**base, "creatinine": {"value": 1.5, "unit": "mg/dL"}}) == (None,)
    facts = {**base, "creatinine": {"value": 1.5, "unit": "mg/dL"}, "sex": "female"}
    assert statuses(src, facts) == (True,)


# ---------------------------------------------------------------- fmt and render


ALL_FORMS = [BP, WINDOWS, VALUE_DATE, PERIODS, LOGIC, CONDITIONAL]


@pytest.mark.parametrize("src", ALL_FORMS)
def test_fmt_round_trips_every_form(src: str) -> None:
    out, diags = format_source(SourceFile("f.crit", src))
    assert out is not None, diags
    again, _ = format_source(SourceFile("f.crit", out))
    assert again == out
    a, b = analyse_text(src, "f.crit"), analyse_text(out, "f.crit")
    assert a.result is not None and b.result is not None
    assert a.result.protocol == b.result.protocol


def test_render_words() -> None:
    text = "\n".join(
        markdown(analyse_text(src, "f.crit").result)  # type: ignore[arg-type]
        for src in ALL_FORMS
    )
    for words in (
        "systolic and diastolic both",
        "systolic or diastolic",
        "is at least 12 weeks before",
        "(both ends included)",
        "the date of hemoglobin",
        "is ongoing on",
        "overlaps the 4 weeks before",
        "if diabetic, then:",
    ):
        assert words in text, words


# ---------------------------------------------------------------- W201 on exclusions


def w201(rule: str, section: str = "exclusion", header_min: str = "18 years") -> list[str]:
    src = (
        f'protocol "X"\n  title "t"\n  version "1"\n  date 2024-01-01\n  minimum age {header_min}\n'
        "fact age: quantity years\n"
        f'{section} criteria\nC1 "age"\n  rule {rule}\n'
    )
    return [d.message for d in analyse_text(src, "x.crit").diagnostics if d.code == "W201"]


def test_w201_exclusion_leaving_out_the_boundary_age() -> None:
    (message,) = w201("age <= 18 years")
    assert "C1 excludes age <= 18 years" in message and "aged exactly 18 years" in message
    assert w201("age < 18 years") == []  # the header's minimum, said as an exclusion
    assert w201("age < 18 years or age > 90 years") == []


def test_w201_exclusion_the_header_already_covers_is_no_conflict() -> None:
    # header 18 and up; excluding under-12s is redundant, not contradictory, but nothing
    # enforces the header's 18 then
    messages = w201("age < 12 years")
    assert len(messages) == 1 and "not enforced" in messages[0]
    assert w201("age < 21 years") and "stricter" in w201("age < 21 years")[0]


def test_w201_inclusion_unchanged() -> None:
    assert w201("age >= 18 years", "inclusion") == []
    assert "left out" in w201("age > 18 years", "inclusion")[0]


def test_calendar_windows_take_whole_months() -> None:
    head = "fact d: date\nanchor a\ninclusion criteria\n"
    for rule in (
        "d within 1.5 months before a",
        "d at least 0.5 months before a",
        "d between 1 and 2.5 months after a",
    ):
        assert "E307" in codes(head + f'I1 "x"\n  rule {rule}\n'), rule
    assert codes(head + 'I1 "x"\n  rule d within 0.5 years before a\n') == ["W002"]


# ---------------------------------------------------------------- blood pressure from FHIR


def _panel(systolic: Any, diastolic: Any) -> dict[str, Any]:
    def part(code: str, value: Any) -> dict[str, Any]:
        quantity = {"value": value, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
        return {
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "valueQuantity": quantity,
        }

    return {
        "resourceType": "Observation",
        "id": "bp",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-05-20T09:15:00Z",
        "component": [
            part(code, value)
            for code, value in (("8480-6", systolic), ("8462-4", diastolic))
            if value is not None
        ],
    }


@pytest.mark.parametrize(
    ("systolic", "diastolic", "expected"),
    [
        (139, 89, (True, False)),
        (140, 89, (False, False)),
        (150, 101, (False, True)),
        (None, 95, (False, None)),
    ],
)
def test_blood_pressure_panel_from_fhir(
    tmp_path: Any, systolic: Any, diastolic: Any, expected: tuple
) -> None:
    import json

    from critlang.data.fhir import Extractor, Tally, read_fhir

    src = BP.replace(
        "fact bp: blood pressure", 'fact bp: blood pressure\ncodes bp: loinc "85354-9"'
    )
    src = src[: src.index("E2 ")]  # I1, I2, E1
    a = analyse_text(src, "bp.crit")
    assert a.result is not None and a.ok
    path = tmp_path / "b.json"
    patient = {"resourceType": "Patient", "id": "p1"}
    entries = [{"resource": r} for r in (patient, _panel(systolic, diastolic))]
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}))
    (p,) = list(read_fhir([path], Extractor(a.result), AS_OF, Tally()))
    record = read_record(a.result, p.record, AS_OF)
    assert not record.problems and not p.problems, (record.problems, p.problems)
    compiled = compile_protocol(a.result)
    _, got = compiled.evaluate(compiled.normalise(record))
    assert (got[0], got[2]) == expected


def test_blood_pressure_parts() -> None:
    src = """fact bp: blood pressure
exclusion criteria
E1 "Systolic BP > 180 mmHg"
  rule bp.systolic > 180 mmHg
E2 "Diastolic BP >= 110 mm[Hg]"
  rule bp.diastolic >= 110 mm[Hg]
"""
    assert statuses(src, bp(180, 110)) == (False, True)
    assert statuses(src, bp(181, 109)) == (True, False)
    assert statuses(src, bp(None, 109)) == (None, False)


def test_blood_pressure_only_as_a_fact() -> None:
    head = "fact bp: blood pressure\n"
    assert "E602" in codes(head + "fact l: list of {p: blood pressure}\n")
    assert "E602" in codes(head + "define f(p: blood pressure) = p < 140/90\n")


def test_explanations_probe_a_missing_blood_pressure() -> None:
    """Needs probes a blood pressure with (systolic, diastolic) pairs, never a plain value."""
    from critlang.evaluate import Evaluator

    a = analyse_text(BP, "bp.crit")
    assert a.result is not None
    compiled = compile_protocol(a.result)
    record = read_record(a.result, {"facts": {}}, AS_OF)
    result = Evaluator(compiled).evaluate(record)
    assert result.verdict == "undetermined" and result.missing == ["bp"]
