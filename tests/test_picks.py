"""Which value decides, for every kind of fact, in both input forms (breaker 6: #1, #4,
#5, #12, #15).

- #1: an undated value of a fact with a look-back window was dropped and an older dated
  value decided; it is a candidate that cannot be ordered (docs/patients.md, "Time").
- #15: a newer blood pressure that could not be used (partial date, no offset, no such
  day, a unit that is not a pressure) was dropped and the older one decided; blood
  pressures now go through the one reading path and pick of every fact.
- #4: with several Observation.referenceRange entries the first in the array was used;
  the range is chosen by type, appliesTo and age (R4 Observation.referenceRange), never
  by order, and is unknown when it cannot be told.
- #5: decimals with more digits than a float holds were rounded onto a threshold.
- #12: a range with only a high limit was shown as "-40 U/L".

Native records are evaluated by both Python evaluators (asserted equal); FHIR inputs are
screened through the CLI as a Bundle and as NDJSON, with entries in both orders.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from critlang.cli import main
from critlang.data.records import load_record, read_record
from critlang.evaluate import run_compiled
from helpers import STATUS_WORDS, TwoEvaluators

PROTOCOL = """protocol "TEST-PICKS"
  title "picks"
  version "1"
  date 2026-01-01
  sex all
  minimum age 18 years
  healthy volunteers no

fact birth_date: date
fact sex: enum {female, male}
fact platelets: quantity x10^9/L
  measured within 28 days before enrollment
fact alt: quantity U/L
  reference range reported
fact glucose: quantity mg/dL
  reference range 70 mg/dL to 100 mg/dL
fact bp: blood pressure
fact inr: number

codes birth_date: fhir "Patient.birthDate"
codes sex: fhir "Patient.gender"
codes platelets: loinc "777-3"
codes alt: loinc "1742-6"
codes glucose: loinc "2345-7"
codes bp: loinc "85354-9"
codes inr: loinc "6301-6"

inclusion criteria
I1 "platelets"
  rule platelets >= 100 x10^9/L
I2 "glucose normal"
  rule glucose within normal range
exclusion criteria
E1 "hypertension"
  rule bp >= 140/90 mmHg
E2 "alt"
  rule alt > 3 x ULN
E3 "inr"
  rule inr > 1.5
"""
AS_OF = dt.date(2026, 11, 27)
BOTH = TwoEvaluators(PROTOCOL, "picks.crit")
CHECKED, COMPILED, INTERPRETER = BOTH.checked, BOTH.compiled, BOTH.interpreter
EVALUATOR = BOTH.evaluator
IDS = BOTH.ids
WORDS = STATUS_WORDS
LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"
ORDERS = [1, -1]


# ---------------------------------------------------------------------- native records
def native(facts: dict[str, Any]) -> tuple[dict[str, str], list[str], Any]:
    """Per criterion the status both evaluators give (asserted equal), the record's
    problems, and the record."""
    data = {"facts": {"birth_date": "1970-01-01", "sex": "female", **facts}}
    record = read_record(CHECKED, data, AS_OF)
    _verdict, compiled = BOTH.statuses(record)
    out = {i: WORDS[s] for i, s in zip(IDS, compiled, strict=True)}
    return out, [f"{p.fact}: {p.message}" for p in record.problems], record


def explained(facts: dict[str, Any], criterion: str) -> str:
    data = {"facts": {"birth_date": "1970-01-01", "sex": "female", **facts}}
    result = EVALUATOR.evaluate(read_record(CHECKED, data, AS_OF))
    (c,) = [c for c in result.criteria if c.id == criterion]
    return "\n".join(c.explanation)


def plt(value: Any, date: str | None = "2026-11-20", **more: Any) -> dict[str, Any]:
    entry = {"value": value, "unit": "10*9/L", **more}
    if date is not None:
        entry["date"] = date
    return entry


def bp(s: Any, d: Any, date: str | None, unit: str = "mm[Hg]", **more: Any) -> dict:
    entry = {"systolic": s, "diastolic": d, "unit": unit, **more}
    if date is not None:
        entry["date"] = date
    return entry


def said(problems: list[str], fact: str, text: str) -> bool:
    return any(p.startswith(f"{fact}:") and text in p for p in problems)


# ---------------------------------------------------------------------- FHIR inputs
def patient(gender: str | None = "female", birth: str = "1970-01-01") -> dict[str, Any]:
    r: dict[str, Any] = {"resourceType": "Patient", "id": "p1", "birthDate": birth}
    if gender:
        r["gender"] = gender
    return r


def obs(code: str, rid: str, when: str | None = "2026-11-20T10:00:00Z", **extra: Any) -> dict:
    r: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": LOINC, "code": code}]},
    }
    if when is not None:
        r["effectiveDateTime"] = when
    r.update(extra)
    return r


def quantity(value: Any, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def fhir_plt(value: Any, rid: str, when: str | None = "2026-11-20T10:00:00Z", **extra: Any):
    return obs("777-3", rid, when, valueQuantity=quantity(value, "10*9/L"), **extra)


def panel(s: float, d: float, rid: str, when: str | None, unit: str = "mm[Hg]") -> dict:
    parts = [("8480-6", s), ("8462-4", d)]
    component = [
        {"code": {"coding": [{"system": LOINC, "code": c}]}, "valueQuantity": quantity(v, unit)}
        for c, v in parts
    ]
    return obs("85354-9", rid, when, component=component)


def screen(
    tmp_path: Path,
    *resources: dict,
    order: int = 1,
    form: str = "bundle",
    who: dict | None = None,
    digits: bool = False,
) -> dict[str, Any]:
    """Screens one patient's resources (a Bundle or NDJSON, entries in `order`); its
    --patients row. `digits`: the number 12345.678 is written 99.99999999999999999."""
    protocol = tmp_path / "p.crit"
    protocol.write_text(PROTOCOL)
    every = [who or patient(), *resources][::order]
    if form == "bundle":
        data = tmp_path / "b.json"
        bundle = {"resourceType": "Bundle", "type": "collection"}
        text = json.dumps(bundle | {"entry": [{"resource": r} for r in every]})
    else:
        data = tmp_path / "r.ndjson"
        text = "".join(json.dumps(r) + "\n" for r in every)
    if digits:
        assert "12345.678" in text
        text = text.replace("12345.678", "99.99999999999999999")
    data.write_text(text)
    out = tmp_path / "out.jsonl"
    argv = ["screen", "--as-of", AS_OF.isoformat(), str(protocol), str(data)]
    assert main([*argv, "--patients", str(out)]) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    return row


def row_said(row: dict, fact: str, text: str) -> bool:
    return any(p.startswith(f"{fact}:") and text in p for p in row["problems"])


FORMS = [(form, order) for form in ("bundle", "ndjson") for order in ORDERS]


# ---------------------------------------------------------------------- #1 undated values
def test_an_undated_value_of_a_windowed_fact_is_weighed_not_dropped() -> None:
    """Platelets 200 on 2026-11-20 and an undated 90: the 90 may be the newest value
    inside the window (or older, or outside it); it was dropped and the 200 decided."""
    for entries in ([plt(200), plt(90, None)], [plt(90, None), plt(200)]):
        status, problems, record = native({"platelets": entries})
        assert status["I1"] == "unknown"
        assert len(record.alternatives["platelets"]) == 2
        assert said(problems, "platelets", "an undated value cannot be ordered against the dated")
        assert said(problems, "platelets", "nor placed in the look-back window")
    # every candidate decides alike: decided (whichever is the newest, it is >= 100)
    status, _, _ = native({"platelets": [plt(200), plt(150, None)]})
    assert status["I1"] == "met"
    # undated alone: it may lie outside the window, so nothing is known
    status, problems, _ = native({"platelets": [plt(150, None)]})
    assert status["I1"] == "unknown" and said(problems, "platelets", "no date given")
    # too old, and an undated value that cannot be placed: unknown, and said
    _, _, record = native({"platelets": [plt(150, "2026-01-01"), plt(150, None)]})
    assert record.facts["platelets"] is None
    assert "cannot be placed in the window" in record.why_unknown["platelets"]


@pytest.mark.parametrize(("form", "order"), FORMS)
@pytest.mark.parametrize(
    "undated",
    [
        {},  # no effective[x] at all
        {"issued": "2026-11-26T10:00:00Z"},  # issued is never the date (R4 Observation.issued)
        {"effectiveTiming": {"event": ["2026-11-26T10:00:00Z"]}},  # not read: undated
    ],
)
def test_fhir_undated_observation_keeps_an_older_one_from_deciding(
    tmp_path: Path, form: str, order: int, undated: dict
) -> None:
    row = screen(
        tmp_path, fhir_plt(200, "a"), fhir_plt(90, "b", None, **undated), order=order, form=form
    )
    assert row["criteria"]["I1"] == "unknown"
    assert row_said(row, "platelets", "an undated value cannot be ordered against the dated")


# ---------------------------------------------------------------------- #15 blood pressure
@pytest.mark.parametrize(
    ("newer", "message"),
    [
        (bp(150, 95, "2026-11"), "is not precise to the day"),
        (bp(150, 95, "2026"), "is not precise to the day"),
        (bp(150, 95, "2026-11-25T10:00:00"), "is not a date"),
        (bp(150, 95, "2026-11-31"), "no such day"),
        (bp(150, 95, "2026-11-25", unit="mg"), "not a pressure"),
        (bp("150/95", 95, "2026-11-25"), "is not a number"),
    ],
)
def test_an_unusable_newer_blood_pressure_leaves_it_unknown(newer: dict, message: str) -> None:
    """The older 120/80 decided `bp >= 140/90` while a newer reading could not be read."""
    for entries in ([bp(120, 80, "2026-11-20"), newer], [newer, bp(120, 80, "2026-11-20")]):
        status, problems, _ = native({"bp": entries})
        assert status["E1"] == "unknown"
        assert said(problems, "bp", message)
        assert said(problems, "bp", "could not be used and may be the newest")


def test_blood_pressure_shares_every_rule_of_the_pick() -> None:
    older = bp(120, 80, "2026-11-20")
    # surely older than the usable one (all of 2025): hides nothing
    status, problems, _ = native({"bp": [older, bp(150, 95, "2025")]})
    assert status["E1"] == "not met" and not said(problems, "bp", "may be the newest")
    # a retracted status is not a result and hides nothing (FHIR Observation.status)
    retracted = bp(150, 95, "2026-11-25", status="entered-in-error")
    status, problems, _ = native({"bp": [older, retracted]})
    assert status["E1"] == "not met" and said(problems, "bp", "is not a result")
    # preliminary: used and marked, as for any fact
    _, _, record = native({"bp": bp(150, 95, "2026-11-25", status="preliminary")})
    assert record.facts["bp"].shown().endswith("[preliminary]")
    # an undated reading beside a dated one is a conflict, as for any fact
    status, problems, _ = native({"bp": [older, bp(150, 95, None)]})
    assert status["E1"] == "unknown" and said(problems, "bp", "undated value")


@pytest.mark.parametrize(("form", "order"), FORMS)
@pytest.mark.parametrize(
    ("when", "unit"),
    [("2026-11", "mm[Hg]"), ("2026-11-25T10:00:00", "mm[Hg]"), ("2026-11-25", "mg")],
)
def test_fhir_unusable_newer_panel_leaves_blood_pressure_unknown(
    tmp_path: Path, form: str, order: int, when: str, unit: str
) -> None:
    older = panel(120, 80, "a", "2026-11-20T10:00:00Z")
    newer = panel(150, 95, "b", when, unit)
    row = screen(tmp_path, older, newer, order=order, form=form)
    assert row["criteria"]["E1"] == "unknown"
    assert row_said(row, "bp", "could not be used and may be the newest")
    # the usable newer panel decides as before
    row = screen(tmp_path, older, panel(150, 95, "b", "2026-11-25T10:00:00Z"), form=form)
    assert row["criteria"]["E1"] == "met"


# ---------------------------------------------------------------------- #4 reference ranges
def rng(high: float, **more: Any) -> dict[str, Any]:
    return {"high": {"value": high, "unit": "U/L", "system": UCUM, "code": "U/L"}, **more}


SNOMED = "http://snomed.info/sct"
MEANING = "http://terminology.hl7.org/CodeSystem/referencerange-meaning"
FEMALE = {"coding": [{"system": SNOMED, "code": "248152002"}]}
MALE = {"coding": [{"system": SNOMED, "code": "248153007"}]}


def years(low: int | None = None, high: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if low is not None:
        out["low"] = {"value": low, "unit": "a", "system": UCUM, "code": "a"}
    if high is not None:
        out["high"] = {"value": high, "unit": "a", "system": UCUM, "code": "a"}
    return out


def meaning(code: str) -> dict[str, Any]:
    return {"coding": [{"system": MEANING, "code": code}]}


def alt(*ranges: dict[str, Any]) -> dict[str, Any]:
    """ALT 150 U/L on 2026-11-20: `> 3 x ULN` is met with a ULN of 40, not with 60."""
    return obs("1742-6", "alt", valueQuantity=quantity(150, "U/L"), referenceRange=list(ranges))


CHOSEN = [
    # (ranges, patient's gender, E2 with the range that is this patient's)
    ([rng(40, appliesTo=[MALE]), rng(60, appliesTo=[FEMALE])], "female", "not met"),
    ([rng(40, appliesTo=[MALE]), rng(60, appliesTo=[FEMALE])], "male", "met"),
    ([rng(40, age=years(0, 17)), rng(60, age=years(18))], "female", "not met"),
    ([rng(60, type=meaning("normal")), rng(40, type=meaning("treatment"))], "female", "not met"),
    # an AND of populations (R4 appliesTo): female and something critlang cannot tell
    ([rng(60, appliesTo=[FEMALE]), rng(40, appliesTo=[MALE, {"text": "x"}])], "female", "not met"),
]


@pytest.mark.parametrize(("form", "order"), FORMS)
@pytest.mark.parametrize(("ranges", "gender", "expected"), CHOSEN)
def test_the_patients_reference_range_is_chosen_never_the_first(
    tmp_path: Path, form: str, order: int, ranges: list, gender: str, expected: str
) -> None:
    row = screen(tmp_path, alt(*ranges[::order]), who=patient(gender), form=form)
    assert row["criteria"]["E2"] == expected
    assert not row_said(row, "alt", "reference")


UNDECIDED = [
    ([rng(40), rng(60)], "female", "2 reference ranges may apply to this patient and differ"),
    ([rng(40, appliesTo=[MALE]), rng(60, appliesTo=[FEMALE])], None, "the sex is not known"),
    ([rng(40, appliesTo=[{"text": "smokers"}]), rng(60)], "female", "which critlang cannot tell"),
    ([rng(40, appliesTo=[MALE])], "female", "no reported reference range applies"),
    ([rng(40, type=meaning("treatment"))], "female", "type treatment, not the normal range"),
]


@pytest.mark.parametrize(("form", "order"), FORMS)
@pytest.mark.parametrize(("ranges", "gender", "message"), UNDECIDED)
def test_a_reference_range_that_cannot_be_told_is_unknown(
    tmp_path: Path, form: str, order: int, ranges: list, gender: str | None, message: str
) -> None:
    row = screen(tmp_path, alt(*ranges[::order]), who=patient(gender), form=form)
    assert row["criteria"]["E2"] == "unknown"
    assert row_said(row, "alt", message)
    assert "ULN unknown" in " ".join(row["explanations"]["E2"]["explanation"])


def test_native_reference_ranges_follow_the_same_rule() -> None:
    male = {"low": 7, "high": 40, "unit": "U/L", "applies_to": ["male"]}
    female = {"low": 7, "high": 60, "unit": "U/L", "applies_to": ["female"]}
    value = {"value": 150, "unit": "U/L", "date": "2026-11-20"}
    for ranges in ([male, female], [female, male]):
        status, problems, _ = native({"alt": value | {"reference_range": ranges}})
        assert status["E2"] == "not met" and not said(problems, "alt", "reference")
    status, _, _ = native({"alt": value | {"reference_range": [male, female]}, "sex": "male"})
    assert status["E2"] == "met"
    adult = {"high": 60, "unit": "U/L", "age": {"low": {"value": 18, "unit": "a"}}}
    child = {"high": 40, "unit": "U/L", "age": {"high": {"value": 17, "unit": "a"}}}
    status, _, _ = native({"alt": value | {"reference_range": [child, adult]}})
    assert status["E2"] == "not met"
    both = [{"high": 40, "unit": "U/L"}, {"high": 60, "unit": "U/L"}]
    status, problems, _ = native({"alt": value | {"reference_range": both}})
    assert status["E2"] == "unknown" and said(problems, "alt", "may apply to this patient")
    # ranges that agree decide (one limit, however many times it is reported)
    same = [{"high": 60, "unit": "U/L"}, {"high": 0.06, "unit": "U/mL"}]
    status, _, _ = native({"alt": value | {"reference_range": same}})
    assert status["E2"] == "not met"


@pytest.mark.parametrize(
    ("rr", "message"),
    [
        ({"low": 10, "high": 0, "unit": "U/L"}, "is not a range of values"),
        ({"high": 0, "unit": "U/L"}, "is not a range of values"),
        ({"low": 50, "high": 40, "unit": "U/L"}, "low is above high"),
    ],
)
def test_a_reference_range_that_is_no_range_is_not_used(rr: dict, message: str) -> None:
    """AST 20 U/L against a reported "10-0 U/L" was "> 3 x ULN = 0": the patient was
    excluded for liver disease. Not a range (R4 referenceRange low <= high): unknown."""
    value = {"value": 20, "unit": "U/L", "date": "2026-11-20", "reference_range": rr}
    status, problems, _ = native({"alt": value})
    assert status["E2"] == "unknown" and said(problems, "alt", message)


def test_an_undecided_reported_range_never_falls_back_to_the_protocols_default() -> None:
    """glucose 105 mg/dL: the default 70-100 would say "outside"; the record's ranges
    (100 or 110, which one is unknown) do not say, so `within normal range` is unknown."""
    ranges = [{"low": 70, "high": 100, "unit": "mg/dL"}, {"low": 70, "high": 110, "unit": "mg/dL"}]
    value = {"value": 105, "unit": "mg/dL", "date": "2026-11-20", "reference_range": ranges}
    status, problems, _ = native({"glucose": value})
    assert status["I2"] == "unknown" and said(problems, "glucose", "may apply")
    text = explained({"glucose": value}, "I2")
    assert "reference range reported, not used: 2 reference ranges may apply" in text


# ---------------------------------------------------------------------- #12 one-sided ranges
def test_a_one_sided_range_is_said_unambiguously() -> None:
    high_only = {"value": 60, "unit": "mg/dL", "date": "2026-11-20",
                 "reference_range": {"high": 110, "unit": "mg/dL"}}  # fmt: skip
    text = explained({"glucose": high_only}, "I2")
    assert "reference range up to 110 mg/dL (reported with the value; no lower limit)" in text
    assert "-110" not in text
    # FHIR referenceRange.low omitted: "meaningless" (R4), so 60 is within it; the
    # protocol's default 70-100 is not mixed in
    status, _, _ = native({"glucose": high_only})
    assert status["I2"] == "met"
    low_only = high_only | {"reference_range": {"low": 70, "unit": "mg/dL"}}
    assert "at least 70 mg/dL (reported with the value; no upper limit)" in explained(
        {"glucose": low_only}, "I2"
    )
    status, _, _ = native({"glucose": low_only})
    assert status["I2"] == "not met"
    uln = {"value": 150, "unit": "U/L", "date": "2026-11-20",
           "reference_range": {"high": 40, "unit": "U/L"}}  # fmt: skip
    assert "from the reference range up to 40 U/L" in explained({"alt": uln}, "E2")


# ---------------------------------------------------------------------- #5 precision
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("99.99999999999999999", "unknown"),  # below 100; its float is 100
        ("100.00000000000000001", "unknown"),  # above 100; its float is 100
        ("99.9999999999999", "not met"),  # 15 digits: a float holds it
        ("150.000000000000000001", "met"),  # far from the threshold: decided
        ("100", "met"),
    ],
)
def test_a_decimal_a_float_cannot_hold_never_decides_by_its_rounding(value, expected) -> None:
    status, _, _ = native({"platelets": plt(value)})
    assert status["I1"] == expected


def test_precise_decimals_in_every_form(tmp_path: Path) -> None:
    path = tmp_path / "r.json"  # a JSON number, not a string: read exactly too
    path.write_text(
        '{"facts": {"platelets": {"value": 99.99999999999999999, "unit": "10*9/L", '
        '"date": "2026-11-20"}, "inr": 1.50000000000000000001}}'
    )
    record = load_record(CHECKED, path, AS_OF)
    _, statuses = run_compiled(COMPILED, COMPILED.normalise(record))
    _, ref, _ = INTERPRETER.run(record)
    assert statuses == ref
    assert WORDS[statuses[IDS.index("I1")]] == "unknown"
    assert WORDS[statuses[IDS.index("E3")]] == "unknown"
    # the explanation shows the value recorded, every digit, and why it is open
    text = explained({"platelets": plt("99.99999999999999999")}, "I1")
    assert "99.99999999999999999 10*9/L" in text and "more digits than a float holds" in text
    assert "Platelets 100 " not in text
    # a blood pressure is compared as two floats: such a part is refused, with a reason
    status, problems, _ = native({"bp": bp("139.99999999999999999", 80, "2026-11-20")})
    assert status["E1"] == "unknown" and said(problems, "bp", "more digits than")


@pytest.mark.parametrize(("form", "order"), FORMS)
def test_fhir_value_quantity_keeps_every_digit(tmp_path: Path, form: str, order: int) -> None:
    """The JSON number 99.99999999999999999 (R4 decimal: precision is significant)."""
    row = screen(tmp_path, fhir_plt(12345.678, "a"), order=order, form=form, digits=True)
    assert row["criteria"]["I1"] == "unknown"
    shown = " ".join(row["explanations"]["I1"]["explanation"])
    assert "99.99999999999999999 10*9/L" in shown
