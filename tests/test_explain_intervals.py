"""Explanations of criteria decided on values known only as an interval (a censored lab
value, FHIR Quantity.comparator; a partial birth date and the age interval it gives; an
ongoing therapy's end; a partial date in a list item) and on conflicting values (each
candidate weighed as the compiled evaluator weighs it): exact text, issue 12 item 1."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from critlang.backends.python import compile_protocol
from critlang.data.records import read_record
from critlang.evaluate import CriterionResult, Evaluator
from critlang.frontend import analyse_file
from helpers import ROOT
from test_explain import crit, evaluate, lab

AS_OF = dt.date(2026, 11, 27)


def other(protocol: str, example: str, cid: str, **changes: Any) -> CriterionResult:
    """Criterion `cid` for an example patient of another protocol, with facts changed."""
    checked = analyse_file(ROOT / "protocols" / protocol / "current.crit").result
    assert checked is not None
    patient = json.loads((ROOT / "protocols" / protocol / "examples" / example).read_text())
    patient["facts"].update(changes)
    e = Evaluator(compile_protocol(checked)).evaluate(read_record(checked, patient, AS_OF, "p"))
    return next(c for c in e.criteria if c.id == cid)


def test_censored_value_decides_with_the_reason_in_the_threshold_unit() -> None:
    e8 = crit(evaluate(wbc=lab(1500, "/mm3", comparator="<", source="Observation/abc")), "E8")
    assert e8.status == "met"
    assert e8.explanation == [
        "✓ White blood cell count < 1500 /mm3 on 2026-11-20 (Observation/abc) < 2 x10^9/L; "
        "the protocol also writes 2000/mm3: every value below 1.5 x10^9/L is below 2 x10^9/L"
    ]
    assert e8.decided_by == "wbc < 2 x10^9/L (2000/mm3)"


def test_censored_value_that_decides_nothing_says_so_and_is_needed() -> None:
    e8 = crit(evaluate(wbc=lab(3, "x10^9/L", comparator="<", source="Observation/abc")), "E8")
    assert e8.status == "unknown"
    assert e8.explanation == [
        "? White blood cell count < 3 x10^9/L on 2026-11-20 (Observation/abc) < 2 x10^9/L; "
        "the protocol also writes 2000/mm3: a value below 3 x10^9/L may or may not be below "
        "2 x10^9/L"
    ]
    assert e8.missing == [
        "wbc (known only as < 3 x10^9/L on 2026-11-20 (Observation/abc): a precise value may "
        "decide)"
    ]


def test_censored_value_not_met() -> None:
    e8 = crit(evaluate(wbc=lab(2, "x10^9/L", comparator=">=")), "E8")
    assert e8.status == "not met"
    assert (
        "  ✗ White blood cell count >= 2 x10^9/L on 2026-11-20 < 2 x10^9/L; the protocol also "
        "writes 2000/mm3: no value at least 2 x10^9/L is below 2 x10^9/L" in e8.explanation
    )


def test_age_from_a_partial_birth_date_is_an_interval_with_its_source() -> None:
    i5 = crit(evaluate(birth_date="1968"), "I5")
    assert i5.status == "met"
    assert i5.explanation == [
        "✓ age 57-58 years ≥ 18 years: every value 57-58 years is at least 18 years",
        "    age = 57-58 years, from completed years from Date of birth 1968 (day not "
        "recorded) to enrollment 2026-11-27",
    ]
    e7 = crit(evaluate(birth_date="1968"), "E7")
    assert e7.explanation[0] == (
        "✗ creatinine clearance 101.2-102.5 mL/min < 50 mL/min: no value 101.2-102.5 mL/min "
        "is below 50 mL/min"
    )
    cg = next(x for x in e7.explanation if x.lstrip().startswith("cockcroft-gault ="))
    assert "(140 - (57-58 years))" in cg and "= 101.2-102.5 mL/min (age 57-58 years;" in cg
    i5 = crit(evaluate(birth_date="2008-11"), "I5")
    assert i5.status == "unknown"
    assert i5.explanation[0] == (
        "? age 17-18 years ≥ 18 years: a value 17-18 years may or may not be at least 18 years"
    )


def test_ongoing_therapy_end_in_a_window() -> None:
    therapy = {"kind": "capecitabine", "start": "2025-01-01", "end": "ongoing"}
    e3 = crit(evaluate(prior_therapies=[therapy]), "E3")
    assert e3.status == "met"
    assert e3.explanation == [
        "✓ 1 of 1 prior therapies with kind in {capecitabine, temozolomide} and end within 12 "
        "months before enrollment; the rule asks for at least one",
        "    ✓ item 1:",
        "      all of these hold:",
        "        ✓ kind capecitabine: one of capecitabine, temozolomide",
        "        ✓ end ongoing within 12 months before enrollment 2026-11-27 (window 2025-11-27 "
        "to 2026-11-27; an exposure not ended by the evaluation date counts as ending on "
        "2026-11-27 at the latest: every possible date is in it)",
    ]


def test_partial_end_date_of_a_list_item() -> None:
    for end, status, says in [
        ("2024", "not met", "no possible date is in it"),
        ("2025", "unknown", "some possible dates are in it, others not"),
    ]:
        therapy = {"kind": "capecitabine", "start": "2024-01-01", "end": end}
        e3 = crit(evaluate(prior_therapies=[therapy]), "E3")
        assert e3.status == status
        assert e3.explanation[-1].lstrip() == (
            f"{'✗' if status == 'not met' else '?'} end {end} (day not recorded) within "
            f"12 months before enrollment 2026-11-27 (window 2025-11-27 to 2026-11-27; known "
            f"only as between {end}-01-01 and {end}-12-31: {says})"
        )
    assert e3.missing == [
        "prior_therapies[1].end (known only as 2025 (day not recorded): a precise value may decide)"
    ]


def test_conflicting_values_that_agree_show_each_candidate() -> None:
    platelets = [
        {"value": 20, "unit": "x10^9/L", "date": "2026-11-25", "source": "Observation/p1"},
        {"value": 25000, "unit": "/mm3", "date": "2026-11-25", "source": "Observation/p2"},
    ]
    i3 = other("nct05471050", "eligible_baseline.json", "I3", platelets=platelets)
    assert i3.status == "met"
    assert i3.explanation == [
        "conflicting values of Platelet count, each weighed: all 2 give met",
        "  with Platelet count 20 x10^9/L on 2026-11-25 (Observation/p1): met",
        "    ✓ Platelet count 20 x10^9/L on 2026-11-25 (Observation/p1) < 30 x10^9/L",
        "  with Platelet count 25000 /mm3 on 2026-11-25 (Observation/p2): met",
        "    ✓ Platelet count 25000 /mm3 on 2026-11-25 (Observation/p2) = 25 x10^9/L < 30 x10^9/L",
    ]
    assert i3.decided_by == "platelets < 30 x10^9/L"


def test_conflicting_values_that_disagree_name_them() -> None:
    hb = [lab(8.0, "g/dL", source="Observation/a"), lab(9.0, "g/dL", source="Observation/b")]
    e8 = crit(evaluate(hemoglobin=hb), "E8")
    assert e8.status == "unknown"
    assert e8.explanation[:3] == [
        "conflicting values of Haemoglobin disagree (8 g/dL on 2026-11-20 (Observation/a) "
        "gives met; 9 g/dL on 2026-11-20 (Observation/b) gives not met), so this is unknown",
        "  with Haemoglobin 8 g/dL on 2026-11-20 (Observation/a): met",
        "    ✓ Haemoglobin 8 g/dL on 2026-11-20 (Observation/a) = 4.965 mmol/L < 5.0 mmol/L; "
        "the protocol also writes 8.0 g/dL",
    ]
    assert "  with Haemoglobin 9 g/dL on 2026-11-20 (Observation/b): not met" in e8.explanation
    assert e8.missing == [
        "hemoglobin (conflicting values: 8 g/dL on 2026-11-20 (Observation/a); 9 g/dL on "
        "2026-11-20 (Observation/b))"
    ]


def test_date_forms_periods_and_parts_are_explained() -> None:
    i1 = other("nct00995904", "asthma_11_months.json", "I1")
    assert i1.explanation == [
        "✗ Date of the documented diagnosis of mild-to-moderate persistent asthma (NIH EPR-3 "
        "2007) 2025-12-27 at least 1 years before enrollment 2026-11-27 (on or before "
        "2025-11-27; 335 days before)"
    ]
    for year, status, mark, says in [
        ("2025", "unknown", "?", "some possible dates are on or before it, others not"),
        ("2024", "met", "✓", "every possible date is on or before it"),
    ]:
        i1 = other("nct00995904", "eligible_baseline.json", "I1", asthma_diagnosed=year)
        assert i1.status == status
        assert i1.explanation[0 if status == "unknown" else 1].lstrip() == (
            f"{mark} Date of the documented diagnosis of mild-to-moderate persistent asthma "
            f"(NIH EPR-3 2007) {year} (day not recorded) at least 1 years before enrollment "
            f"2026-11-27 (on or before 2025-11-27; known only as between {year}-01-01 and "
            f"{year}-12-31: {says})"
        )
    e3 = other("nct00995904", "oral_steroids_2_months_ago.json", "E3")
    assert e3.explanation == [
        "✗ 0 of 1 systemic corticosteroids with start to end overlaps 30 days before "
        "enrollment; the rule asks for at least one",
        "    ✗ item 1: start 2026-09-10 to end 2026-09-17 overlaps 30 days before enrollment "
        "2026-11-27 (window 2026-10-28 to 2026-11-27: the period lies outside it)",
    ]
    i2 = other("nct01206062", "sbp_129.json", "I2")
    assert i2.explanation == [
        "✗ systolic 129 mm[Hg] (Seated office blood pressure (mean of the screening readings) "
        "129/80 mmHg on 2026-11-20) ≥ 130 mmHg"
    ]


def test_threshold_from_a_conditional_with_an_unknown_condition() -> None:
    # sbp_ceiling depends on the number of medications, unknown here: every possible
    # ceiling is weighed (runtime.Alt), and 200 mmHg is above each of them
    bp = {"systolic": 200, "diastolic": 80, "unit": "mmHg", "date": "2026-11-20"}
    i2 = other("nct01206062", "sbp_145_medications_unknown.json", "I2", bp=bp)
    assert i2.status == "not met"
    line = next(x for x in i2.explanation if "sbp ceiling" in x)
    assert line == (
        "✗ systolic 200 mm[Hg] (Seated office blood pressure (mean of the screening readings) "
        "200/80 mmHg on 2026-11-20) "
        "≤ sbp ceiling 180 or 170 or 160 or 150 mm[Hg]: fails for every possibility"
    )


def test_fhir_comparator_and_partial_birth_date_screened_with_explanations(tmp_path) -> None:
    """From FHIR: valueQuantity.comparator (a modifier element) and a Patient.birthDate
    known to the year, through `screen --patients x.jsonl` explanations."""
    from critlang.data.fhir import data_files, read_fhir
    from critlang.screen import screen
    from test_fhir import CHECKED, EXTRACTOR, bundle, obs

    wbc = obs("6690-2", 1.5, "10*9/L", "2026-11-20")
    wbc["valueQuantity"]["comparator"] = "<"
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1968", "gender": "male"}
    (tmp_path / "a.json").write_text(json.dumps(bundle(wbc, patient=patient)))
    files, _ = data_files([str(tmp_path)])
    patients = list(read_fhir(files, EXTRACTOR, AS_OF))
    (row,) = screen(compile_protocol(CHECKED), patients, AS_OF, explain=True).patients
    assert row.explanations is not None
    assert row.explanations["E8"]["explanation"] == [
        "✓ White blood cell count < 1.5 10*9/L on 2026-11-20T10:00:00+00:00 "
        "(Observation/obs-6690-2-2026-11-20) < 2 x10^9/L; the protocol also writes 2000/mm3: "
        "every value below 1.5 x10^9/L is below 2 x10^9/L"
    ]
    assert row.explanations["I5"]["explanation"][0] == (
        "✓ age 57-58 years ≥ 18 years: every value 57-58 years is at least 18 years"
    )


def test_censored_value_converted_into_the_deciding_unit() -> None:
    # the threshold decides in mmol/L (5.0 mmol/L, also written 8.0 g/dL): the interval is
    # shown there, with enough digits that 4.996 is not shown as 5
    e8 = crit(evaluate(hemoglobin=lab(80.5, "g/L", comparator="<=")), "E8")
    assert e8.status == "met"
    assert e8.explanation == [
        "✓ Haemoglobin <= 80.5 g/L on 2026-11-20 < 5.0 mmol/L; the protocol also writes "
        "8.0 g/dL: every value at most 4.996 mmol/L is below 5 mmol/L"
    ]


def test_an_interval_from_zero_without_upper_limit_is_said_at_least_zero() -> None:
    """A censored ">= 0" of a quantity never negative is [0, inf): "at least 0", never
    "at most inf" (a crash that emptied E6's explanation for a seed-549973 patient)."""
    import math

    from critlang.backends.runtime import Range
    from critlang.explain_words import span_words

    assert span_words(Range(0.0, math.inf), "mg/dL") == "at least 0 mg/dL"
    assert span_words(Range(0.0, 1.5, False, True), "mg/dL") == "below 1.5 mg/dL"
