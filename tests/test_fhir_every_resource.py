"""Every FHIR resource bound to a fact counts (breaker8 F7, F8, F16, F17, F18): a yes/no
fact from Conditions and Observations together, what `history current` means for an
Observation, Conditions coded in systems the protocol binds nothing in, contained
resources, reversed Periods. Each case from a Bundle and from NDJSON, and through
`ingest` and the DuckDB engine; each fails on the code before these fixes."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_cases import FORMS, duckdb_row, said, screen

PROTOCOL = """protocol "B8"
  title "breaker8 reading"
  version "1"
  date 2024-01-01
  sex all
  healthy volunteers no

fact platelets: quantity x10^9/L
  measured within 28 days before enrollment
fact hba1c: quantity %
  measured within 90 days before enrollment
fact diabetes: boolean
fact pregnant: boolean
fact pregnant_w: boolean
  measured within 30 days before enrollment

codes platelets: loinc "777-3"
codes hba1c: loinc "4548-4"
codes diabetes: snomed "44054006", icd10 "E11.9"
codes pregnant: loinc "2106-3", snomed "77386006"
codes pregnant_w: loinc "2106-3", snomed "77386006"

inclusion criteria
I1 "platelets"
  rule platelets >= 100 x10^9/L
I2 "hba1c"
  rule hba1c between 7 % and 9 %

exclusion criteria
E1 "diabetes"
  rule diabetes
E2 "pregnant"
  rule pregnant
E3 "pregnant (30 days)"
  rule pregnant_w
"""
LOINC, SNOMED = "http://loinc.org", "http://snomed.info/sct"
PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1980-01-01"}
SUBJECT = {"reference": "Patient/p1"}
AMN = ("--absent-means-no", "conditions")


def coded(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def obs(rid: str, code: str, when: str | None = "2024-05-20", **value: Any) -> dict[str, Any]:
    out = {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "subject": SUBJECT,
        "code": coded(LOINC, code),
        **value,
    }
    if when is not None:
        out["effectiveDateTime"] = when
    return out


def plt(rid: str, value: float, **extra: Any) -> dict[str, Any]:
    q = {"value": value, "system": "http://unitsofmeasure.org", "code": "10*9/L"}
    return obs(rid, "777-3", valueQuantity=q, **extra)


def condition(rid: str, code: dict[str, Any], clinical: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": rid,
        "subject": SUBJECT,
        "code": code,
        "clinicalStatus": coded(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", clinical
        ),
        "verificationStatus": coded(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"
        ),
        "onsetDateTime": "2023-09-01",
    }


PREGNANT = coded(SNOMED, "77386006")


def both(tmp_path, form: str, rows: list[Any], flags=()) -> tuple[dict, dict]:
    row = screen(tmp_path, form, [PATIENT, *rows], PROTOCOL, flags)
    return row, duckdb_row(tmp_path, form, [PATIENT, *rows], PROTOCOL, flags)


# --------------------------------------------------------------------------- F17, F18
YES_NO = {
    # rows, E2 (pregnant, no window), E3 (pregnant_w, 30 days), a diagnostic of pregnant_w
    "resolved Condition, positive test 12 days before": (
        [condition("c1", PREGNANT, "resolved"), obs("o1", "2106-3", valueBoolean=True)],
        "unknown",
        "unknown",
        "they disagree",
    ),
    "active Condition, negative test 12 days before": (
        [condition("c1", PREGNANT), obs("o1", "2106-3", valueBoolean=False)],
        "met",
        "unknown",
        "they disagree",
    ),
    "active Condition, positive test": (
        [condition("c1", PREGNANT), obs("o1", "2106-3", valueBoolean=True)],
        "met",
        "met",
        None,
    ),
    "a positive test of 2010 only": (
        [obs("o1", "2106-3", "2010-01-01", valueBoolean=True)],
        "unknown",
        "unknown",
        "is not current",
    ),
    "a positive test on the screening day": (
        [obs("o1", "2106-3", "2024-06-01", valueBoolean=True)],
        "met",
        "met",
        None,
    ),
    "a negative test 12 days before, no Condition": (
        [obs("o1", "2106-3", valueBoolean=False)],
        "unknown",
        "not met",
        None,
    ),
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", sorted(YES_NO))
def test_a_yes_no_fact_counts_conditions_and_observations(tmp_path, form, case) -> None:
    rows, e2, e3, diagnostic = YES_NO[case]
    row, sql = both(tmp_path, form, rows)
    assert (row["criteria"]["E2"], row["criteria"]["E3"]) == (e2, e3), row["problems"]
    assert (sql["E2"], sql["E3"]) == (e2, e3)
    if diagnostic is not None:
        assert said(row, "pregnant_w", diagnostic) or said(row, "pregnant", diagnostic)


@pytest.mark.parametrize("form", FORMS)
def test_an_old_positive_test_keeps_absence_from_no(tmp_path, form) -> None:
    row, sql = both(tmp_path, form, [obs("o1", "2106-3", "2010-01-01", valueBoolean=True)], AMN)
    assert row["criteria"]["E2"] == sql["E2"] == "unknown"
    assert said(row, "pregnant", "it keeps pregnant from no")
    # an old negative one hides nothing: absence is no
    row, sql = both(tmp_path, form, [obs("o1", "2106-3", "2010-01-01", valueBoolean=False)], AMN)
    assert row["criteria"]["E2"] == sql["E2"] == "not met"


# --------------------------------------------------------------------------- F7
UNTOLD = {
    "ICD-10-CM by its OID": (coded("urn:oid:2.16.840.1.113883.6.90", "E11.9"), "met", None),
    "SNOMED by its OID": (coded("urn:oid:2.16.840.1.113883.6.96", "44054006"), "met", None),
    "a local code": (
        coded("http://hospital.example.org/codes", "DM2"),
        "unknown",
        "coded only in code systems in which this protocol binds no yes/no fact",
    ),
    "text only": ({"text": "Type 2 diabetes"}, "unknown", "text 'Type 2 diabetes'"),
    "another SNOMED code": (coded(SNOMED, "38341003"), "not met", None),
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", sorted(UNTOLD))
def test_a_condition_of_an_unbound_system_is_not_no(tmp_path, form, case) -> None:
    code, status, diagnostic = UNTOLD[case]
    row, sql = both(tmp_path, form, [condition("c1", code)], AMN)
    assert row["criteria"]["E1"] == sql["E1"] == status, row["problems"]
    if diagnostic is not None:
        assert said(row, "diabetes", diagnostic), row["problems"]
    # refuted, it hides nothing
    refuted = condition("c1", code)
    refuted["verificationStatus"] = coded(
        "http://terminology.hl7.org/CodeSystem/condition-ver-status", "refuted"
    )
    row = screen(tmp_path, form, [PATIENT, refuted], PROTOCOL, AMN)
    assert row["criteria"]["E1"] == "not met"


# --------------------------------------------------------------------------- F8
def report(*contained: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "id": "dr1",
        "status": "final",
        "subject": SUBJECT,
        "code": coded(LOINC, "58410-2"),
        "effectiveDateTime": "2024-05-28",
        "contained": list(contained),
        "result": [{"reference": f"#{c['id']}"} for c in contained],
        **extra,
    }


CONTAINED = {
    "newer platelets in a DiagnosticReport": (
        [plt("old", 200), report(plt("o1", 50, when="2024-05-28"))],
        "not met",
        None,
    ),
    "without a subject of its own": (
        [plt("old", 200), report({**plt("o1", 50, when="2024-05-28"), "subject": None})],
        "not met",
        None,
    ),
    "naming another patient": (
        [
            plt("old", 200),
            report({**plt("o1", 50, when="2024-05-28"), "subject": {"reference": "Patient/x"}}),
        ],
        "unknown",
        "whose it is cannot be told",
    ),
    "in an entered-in-error report": (
        [plt("old", 200), report(plt("o1", 50, when="2024-05-28"), status="entered-in-error")],
        "unknown",
        "has status 'entered-in-error'",
    ),
    "in a panel Observation": (
        [
            plt("old", 200),
            {
                **obs("cbc", "58410-2", "2024-05-28"),
                "contained": [plt("o1", 50, when="2024-05-28")],
                "hasMember": [{"reference": "#o1"}],
            },
        ],
        "not met",
        None,
    ),
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", sorted(CONTAINED))
def test_contained_results_are_read(tmp_path, form, case) -> None:
    rows, status, diagnostic = CONTAINED[case]
    rows = [{k: v for k, v in r.items() if v is not None} for r in rows]
    for r in rows:
        for c in r.get("contained", ()):
            if c.get("subject") is None:
                c.pop("subject", None)
    row, sql = both(tmp_path, form, rows)
    assert row["criteria"]["I1"] == sql["I1"] == status, row["problems"]
    if diagnostic is not None:
        assert said(row, "platelets", diagnostic), row["problems"]
    if status == "not met":
        shown = row["explanations"]["I1"]["explanation"][0]
        assert "(Observation #o1 contained in" in shown, shown


@pytest.mark.parametrize("form", FORMS)
def test_a_condition_contained_in_an_encounter_counts(tmp_path, form) -> None:
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "subject": SUBJECT,
        "contained": [condition("c1", coded(SNOMED, "44054006"))],
        "diagnosis": [{"condition": {"reference": "#c1"}}],
    }
    row, sql = both(tmp_path, form, [encounter], AMN)
    assert row["criteria"]["E1"] == sql["E1"] == "met"


# --------------------------------------------------------------------------- F16
@pytest.mark.parametrize("form", FORMS)
def test_a_period_ending_before_it_starts_dates_nothing(tmp_path, form) -> None:
    def a1c(rid: str, value: float, **when: Any) -> dict[str, Any]:
        q = {"value": value, "system": "http://unitsofmeasure.org", "code": "%"}
        return obs(rid, "4548-4", None, valueQuantity=q, **when)

    reversed_ = {"start": "2024-05-20", "end": "2024-03-01"}
    rows = [a1c("a1", 8, effectiveDateTime="2024-04-01"), a1c("a2", 12, effectivePeriod=reversed_)]
    row, sql = both(tmp_path, form, rows)
    assert row["criteria"]["I2"] == sql["I2"] == "unknown"
    assert said(row, "hba1c", "effectivePeriod ends (2024-03-01) before it starts (2024-05-20)")
    assert said(row, "hba1c", "may be the newest")
    # a same-day period whose end time is before its start time, likewise
    same_day = {"start": "2024-05-20T10:00:00Z", "end": "2024-05-20T09:00:00Z"}
    rows = [a1c("a1", 8, effectiveDateTime="2024-04-01"), a1c("a2", 12, effectivePeriod=same_day)]
    assert screen(tmp_path, form, [PATIENT, *rows], PROTOCOL)["criteria"]["I2"] == "unknown"
    # in order, the period is read at its end
    ordered = {"start": "2024-03-01", "end": "2024-05-20"}
    rows = [a1c("a1", 8, effectiveDateTime="2024-04-01"), a1c("a2", 12, effectivePeriod=ordered)]
    assert screen(tmp_path, form, [PATIENT, *rows], PROTOCOL)["criteria"]["I2"] == "not met"


@pytest.mark.parametrize("form", FORMS)
def test_a_reversed_onset_period_keeps_a_condition_from_no(tmp_path, form) -> None:
    c = condition("c1", coded(SNOMED, "44054006"))
    del c["onsetDateTime"]
    c["onsetPeriod"] = {"start": "2023-09-01", "end": "2023-01-01"}
    row, sql = both(tmp_path, form, [c], AMN)
    assert row["criteria"]["E1"] == sql["E1"] == "unknown"
    assert said(row, "diabetes", "onsetPeriod ends (2023-01-01) before it starts")
