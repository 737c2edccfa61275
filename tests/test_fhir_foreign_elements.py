"""Members R4 does not define that would change a resource's meaning (breaker8 F3, F4):
a `deceasedDate` or `deceasedString` on a Patient (R4 has deceasedBoolean | deceasedDateTime)
leaves the patient "perhaps deceased", never alive in silence; STU3 / DSTU2 modifier
elements that R4 replaced by status (MedicationStatement.taken "n",
MedicationAdministration.notGiven, Procedure.notDone) make the resource unusable, so a
drug the record says was not taken never decides a washout. Bundle and NDJSON, and
through `ingest` and DuckDB."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_cases import FORMS, duckdb_row, said, screen

PROTOCOL = """protocol "FOREIGN"
  title "members R4 does not define"
  version "1"
  date 2024-01-01
  sex all
  healthy volunteers no

fact metformin: list of {start: date, end: date}
fact biopsy: list of {start: date, end: date}

codes metformin: rxnorm "860975"
codes biopsy: snomed "86273004"

exclusion criteria
E1 "metformin in the last 30 days"
  rule any metformin with (end within 30 days before enrollment)
E2 "biopsy in the last 30 days"
  rule any biopsy with (end within 30 days before enrollment)
"""
FLAGS = ("--absent-means-no", "medications")
RXNORM, SNOMED = "http://www.nlm.nih.gov/research/umls/rxnorm", "http://snomed.info/sct"


def patient(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"} | extra


def statement(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "id": "ms1",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "860975"}]},
        "effectiveDateTime": "2024-05-25",
    } | extra


def administration(**extra: Any) -> dict[str, Any]:
    return statement(resourceType="MedicationAdministration", id="ma1") | extra


def procedure(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": "pr1",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SNOMED, "code": "86273004"}]},
        "performedDateTime": "2024-05-25",
    } | extra


CASES = {
    # (resource, criterion, status, fact, diagnostic)
    "R4 statement": (statement(), "E1", "met", None, None),
    "STU3 taken n": (statement(taken="n"), "E1", "unknown", "metformin", "'taken' (n)"),
    "STU3 taken y": (statement(taken="y"), "E1", "unknown", "metformin", "'taken' (y)"),
    "DSTU2 wasNotTaken": (
        statement(wasNotTaken=True),
        "E1",
        "unknown",
        "metformin",
        "'wasNotTaken'",
    ),
    "STU3 notGiven": (
        administration(notGiven=True),
        "E1",
        "unknown",
        "metformin",
        "MedicationAdministration.notGiven",
    ),
    "STU3 notDone": (procedure(notDone=True), "E2", "unknown", "biopsy", "Procedure.notDone"),
    "R4 procedure": (procedure(), "E2", "met", None, None),
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_former_modifier_element_makes_the_resource_unusable(tmp_path, form, case) -> None:
    resource, crit, status, fact, diagnostic = CASES[case]
    rows = [patient(), resource]
    row = screen(tmp_path, form, rows, PROTOCOL, FLAGS)
    assert row["criteria"][crit] == status
    if diagnostic is not None:
        assert said(row, fact, diagnostic), row["problems"]
        assert said(row, fact, "is not an R4 element"), row["problems"]
    assert duckdb_row(tmp_path, form, rows, PROTOCOL, FLAGS)[crit] == status


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    "member",
    [{"deceasedDate": "2020-01-01"}, {"deceasedString": "yes"}, {"deceasedInteger": 1}],
)
def test_a_deceased_member_of_no_r4_type_is_never_alive(tmp_path, form, member) -> None:
    rows = [patient(**member)]
    row = screen(tmp_path, form, rows, PROTOCOL, FLAGS)
    assert row["verdict"] != "eligible"
    assert said(row, "deceased", "perhaps deceased"), row["problems"]
    assert said(row, "deceased", f"{next(iter(member))!r} is not an R4 element"), row["problems"]
    assert duckdb_row(tmp_path, form, rows, PROTOCOL, FLAGS)["verdict"] == row["verdict"]


@pytest.mark.parametrize("form", FORMS)
def test_r4_deceased_false_is_alive(tmp_path, form) -> None:
    row = screen(tmp_path, form, [patient(deceasedBoolean=False)], PROTOCOL, FLAGS)
    assert row["verdict"] == "eligible", row["problems"]


def test_a_cohort_ingested_in_feasibility_mode_says_so_when_screened(tmp_path, capsys) -> None:
    # breaker8 F13: the DuckDB path printed no "absent ... count as no" line
    from critlang.cli import main
    from fhir_cases import write

    pytest.importorskip("duckdb")
    (tmp_path / "p.crit").write_text(PROTOCOL)
    data = write(tmp_path, "bundle", [patient()])
    crit, cohort = str(tmp_path / "p.crit"), str(tmp_path / "c.duckdb")
    assert main(["screen", "--as-of", "2024-06-01", *FLAGS, crit, str(data)]) == 0
    python = capsys.readouterr().out
    assert main(["ingest", "--as-of", "2024-06-01", *FLAGS, "-o", cohort, crit, str(data)]) == 0
    capsys.readouterr()
    assert main(["screen", crit, cohort]) == 0
    sql = capsys.readouterr().out
    line = "absent medications count as no (--absent-means-no medications): biopsy, metformin"
    assert line in python and line in sql
