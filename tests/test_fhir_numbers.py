"""`number` facts read from FHIR (reading8 item 2): a score's referenceRange whatever
value[x] carries it (valueInteger, a valueQuantity in unit 1, {score} or none, a
censored valueString), and the sign rule of a number (data/signs.py: the declared
`plausible` range decides). Each case runs in both evaluators (which must agree), through
`screen` and through `ingest` + DuckDB (which must agree)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from critlang.data.fhir import Extractor, Tally, read_fhir
from critlang.data.reader import Reader
from helpers import TwoEvaluators, write_fhir
from test_fhir_realworld7 import duckdb_row, screen

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
PROTOCOL = """fact gcs: number
  reference range reported
fact ecog: number
  plausible 0..5
fact delta: number
codes gcs: loinc "9269-2"
codes ecog: loinc "89247-1"
codes delta: loinc "39156-5"
inclusion criteria
I1 "GCS at most 1.5 x ULN"
  rule gcs <= 1.5 x ULN
I2 "ECOG not negative"
  rule ecog >= 0
I3 "delta not negative"
  rule delta >= 0
I4 "ECOG below 2"
  rule ecog < 2
"""
PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"}
AS_OF = dt.date(2024, 6, 1)
WORDS = {True: "met", False: "not met", None: "unknown"}


def obs(code: str, **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"o{code}",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": "2024-05-20",
    } | value


def run(tmp_path: Path, *resources: dict) -> tuple[dict, list[str]]:
    two = TwoEvaluators(PROTOCOL, "n.crit")
    entries = [{"resource": r} for r in (PATIENT, *resources)]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    (path,) = write_fhir(tmp_path, [("b.json", bundle)])
    (p,) = list(read_fhir([path], Extractor(two.checked), AS_OF, Tally()))
    record = Reader(two.checked, p.path, AS_OF).read(p.record)
    _, got = two.statuses(record)
    statuses = {c: WORDS[s] for c, s in zip(two.ids, got, strict=True)}
    row = screen(tmp_path, "bundle", [PATIENT, *resources], PROTOCOL)
    assert row["criteria"] == statuses
    sql = duckdb_row(tmp_path, "bundle", [PATIENT, *resources], PROTOCOL)
    assert {c: sql[c] for c in statuses} == statuses
    return statuses, row["problems"]


def limits(low: Any, high: Any, unit: str | None = None) -> list[dict]:
    def q(v: Any) -> dict:
        return {"value": v} | ({"unit": unit, "system": UCUM, "code": unit} if unit else {})

    return [{"low": q(low), "high": q(high)}]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # GCS 14 against a range up to 15 (1.5 x 15 = 22.5) and up to 9 (13.5)
        ({"valueInteger": 14, "referenceRange": limits(3, 15)}, "met"),
        ({"valueInteger": 14, "referenceRange": limits(3, 9)}, "not met"),
        # exactly on 1.5 x ULN: 1.5 x 8 = 12
        ({"valueInteger": 12, "referenceRange": limits(3, 8)}, "met"),
        ({"valueInteger": 13, "referenceRange": limits(3, 8)}, "not met"),
        # a unitless valueQuantity: unit 1, {score}, none, each with its range
        (
            {
                "valueQuantity": {
                    "value": 14,
                    "unit": "{score}",
                    "system": UCUM,
                    "code": "{score}",
                },
                "referenceRange": limits(3, 9, "{score}"),
            },
            "not met",
        ),
        (
            {
                "valueQuantity": {"value": 12, "system": UCUM, "code": "1"},
                "referenceRange": limits(3, 8, "1"),
            },
            "met",
        ),
        ({"valueQuantity": {"value": 12}, "referenceRange": limits(3, 8)}, "met"),
        # a censored valueString "<12" is below 1.5 x 8 = 12 whatever it is
        ({"valueString": "<12", "referenceRange": limits(3, 8)}, "met"),
        # a range in seconds is not this number's: the limits are unknown
        ({"valueInteger": 12, "referenceRange": limits(3, 8, "s")}, "unknown"),
        # no range reported: a number has no default range
        ({"valueInteger": 12}, "unknown"),
    ],
)
def test_a_scores_reference_range_is_read_from_any_value(tmp_path, value, expected) -> None:
    got, problems = run(tmp_path, obs("9269-2", **value))
    assert got["I1"] == expected, problems
    if value.get("referenceRange") == limits(3, 8, "s"):
        assert any("is not a plain number like the value" in p for p in problems), problems


@pytest.mark.parametrize(
    ("value", "ecog", "why"),
    [
        # a negative score outside the declared plausible 0..5: unknown, said
        ({"valueInteger": -1}, {"I2": "unknown", "I4": "unknown"}, "outside the plausible"),
        # censored "< 2" of a fact declared 0..5: from 0 to 2, so surely >= 0
        ({"valueString": "<2"}, {"I2": "met", "I4": "met"}, None),
        ({"valueQuantity": {"value": 2, "comparator": "<"}}, {"I2": "met", "I4": "met"}, None),
        ({"valueInteger": 0}, {"I2": "met", "I4": "met"}, None),
    ],
)
def test_a_number_is_never_negative_when_its_plausible_range_says_so(
    tmp_path, value, ecog, why
) -> None:
    got, problems = run(tmp_path, obs("89247-1", **value))
    assert {k: got[k] for k in ecog} == ecog
    if why:
        assert any(p.startswith("ecog:") and why in p for p in problems), problems


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"valueQuantity": {"value": -3}}, "not met"),  # no range: read as recorded
        ({"valueString": "<2"}, "unknown"),  # unbounded below: may be negative
        ({"valueQuantity": {"value": 0.5, "comparator": ">"}}, "met"),
    ],
)
def test_a_number_with_no_declared_range_has_no_sign_rule(tmp_path, value, expected) -> None:
    got, problems = run(tmp_path, obs("39156-5", **value))
    assert got["I3"] == expected
    assert not [p for p in problems if p.startswith("delta:")]
