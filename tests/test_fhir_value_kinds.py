"""Observation values for whole-number and category facts (breaker8 F5): ECOG as
valueInteger (LOINC 89247-1's usual shape) or as a unitless valueQuantity ("{score}") is
read; a stage written as its name in valueString is read; a value that is not one of them
says why. Each case from a Bundle and from NDJSON, and through `ingest` and DuckDB."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_cases import FORMS, duckdb_row, said, screen

PROTOCOL = """protocol "KINDS"
  title "whole numbers and categories from FHIR"
  version "1"
  date 2024-01-01
  sex all
  healthy volunteers no

fact ecog: integer 0..5
fact stage: scale {I < II < III < IV}

codes ecog: loinc "89247-1"
codes stage: loinc "21908-9"

inclusion criteria
I1 "ECOG 0-1"
  rule ecog <= 1
I2 "stage III or more"
  rule stage >= III
"""
LOINC = "http://loinc.org"
PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"}


def obs(rid: str, code: str, **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": "2024-05-20",
        **value,
    }


def ecog(**value: Any) -> dict[str, Any]:
    return obs("e1", "89247-1", **value)


UCUM = "http://unitsofmeasure.org"
ECOG_CASES = {
    # (the value element, I1's status, a diagnostic the patient's row must carry or None)
    "valueInteger 1": ({"valueInteger": 1}, "met", None),
    "valueInteger 3": ({"valueInteger": 3}, "not met", None),
    "valueQuantity {score}": (
        {"valueQuantity": {"value": 1, "system": UCUM, "code": "{score}"}},
        "met",
        None,
    ),
    "valueQuantity no unit": ({"valueQuantity": {"value": 2}}, "not met", None),
    "valueQuantity in mg": (
        {"valueQuantity": {"value": 1, "system": UCUM, "code": "mg"}},
        "unknown",
        "is not a count or a score",
    ),
    "censored": (
        {"valueQuantity": {"value": 2, "comparator": "<", "code": "{score}"}},
        "unknown",
        "is censored",
    ),
    "fraction": ({"valueQuantity": {"value": 1.5}}, "unknown", "not a whole number"),
    "out of range": ({"valueInteger": 7}, "unknown", "not a whole number from 0 to 5"),
    "as text": ({"valueInteger": "1"}, "unknown", "is not a number"),
    "coded answer": (
        {"valueCodeableConcept": {"coding": [{"system": LOINC, "code": "LA9623-5"}]}},
        "unknown",
        "a coded answer, valueCodeableConcept, is not read",
    ),
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", sorted(ECOG_CASES))
def test_a_whole_number_fact_is_read_from_an_observation(tmp_path, form, case) -> None:
    value, status, diagnostic = ECOG_CASES[case]
    row = screen(tmp_path, form, [PATIENT, ecog(**value)], PROTOCOL)
    assert row["criteria"]["I1"] == status
    if diagnostic is None:
        assert not any(p.startswith("ecog:") for p in row["problems"]), row["problems"]
    else:
        assert said(row, "ecog", diagnostic), row["problems"]
    assert duckdb_row(tmp_path, form, [PATIENT, ecog(**value)], PROTOCOL)["I1"] == status


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("text", "status", "diagnostic"),
    [("III", "met", None), ("II", "not met", None), ("3", "unknown", "is not one of I, II")],
)
def test_a_category_written_as_its_name_is_read(tmp_path, form, text, status, diagnostic):
    rows = [PATIENT, obs("s1", "21908-9", valueString=text)]
    row = screen(tmp_path, form, rows, PROTOCOL)
    assert row["criteria"]["I2"] == status
    if diagnostic is not None:
        assert said(row, "stage", diagnostic), row["problems"]
    assert duckdb_row(tmp_path, form, rows, PROTOCOL)["I2"] == status
