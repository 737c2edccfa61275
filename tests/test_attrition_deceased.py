"""The attrition funnel with deceased and perhaps-deceased patients (breaker6 #6).

A patient who may have died by the screening date (a partial or conflicting date of
death) is never eligible yet: it has not passed the "(deceased)" row, but is not ruled
out either, like an unknown status. So the last row's "passed so far" is the eligible
count, in every output that shows the funnel (text, --attrition CSV, the report's JSON
and HTML) and in the SQL attrition, which must equal the Python one."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from pathlib import Path
from typing import Any

import pytest

from critlang.backends.python import compile_protocol
from critlang.backends.sql import compile_sql
from critlang.backends.sql.compiler import attrition_column
from critlang.backends.sql.engines import DuckDB
from critlang.data.fhir import FhirPatient
from critlang.data.ingest import ingest_records
from critlang.frontend import analyse_text
from critlang.report import html_report, report_data
from critlang.screen import attrition_csv, attrition_text, screen

AS_OF = dt.date(2026, 11, 27)
PROTOCOL = """protocol "D"
  date 2026-01-01
fact consent: boolean
fact hb: quantity g/dL
inclusion criteria
I1 "consent"
  rule consent
I2 "Hb"
  rule hb >= 9 g/dL
exclusion criteria
E1 "very high Hb"
  rule hb > 18 g/dL
"""
# as of 2026-11-27: dead (a day on or before), perhaps (the year or month holds the
# screening date), alive (after it)
DEATHS = [None, "2025", "2026", "2026-11", "2026-12", True, "2027-01-01", "2026-11-27"]
DEATHS += ["2026-11-28", False]
DEAD = {"2025", True, "2026-11-27"}
MAYBE = {"2026", "2026-11"}


def compiled() -> Any:
    a = analyse_text(PROTOCOL)
    assert a.ok and a.result is not None
    return compile_protocol(a.result)


def cohort(seed: int, count: int) -> list[dict[str, Any]]:
    r = random.Random(seed)
    out = []
    for i in range(count):
        facts: dict[str, Any] = {}
        if r.random() < 0.9:
            facts["consent"] = r.random() < 0.9
        if r.random() < 0.9:
            facts["hb"] = {"value": r.choice([8, 9, 12, 18, 19]), "unit": "g/dL"}
            facts["hb"]["date"] = "2026-11-20"
        p: dict[str, Any] = {"id": f"p{i}", "facts": facts}
        death = r.choice(DEATHS)
        if death is not None:
            p["deceased"] = death
        out.append(p)
    return out


def python_screen(records: list[dict[str, Any]]) -> Any:
    patients = [FhirPatient(p["id"], "mem", p, []) for p in records]
    return screen(compiled(), patients, AS_OF)


def lead_rows(s: Any) -> dict[str, tuple[int, int]]:
    rows = list(csv.reader(io.StringIO(attrition_csv(s))))
    return {r[0]: (int(r[6]), int(r[7])) for r in rows[1:] if r[0].startswith("(")}


def test_breaker_cohort_one_of_each() -> None:
    # every patient clears every criterion; only the date of death decides
    fine = {"consent": True, "hb": {"value": 12, "unit": "g/dL", "date": "2026-11-20"}}
    records = [
        {"id": f"d{i}", "facts": fine, **({} if d is None else {"deceased": d})}
        for i, d in enumerate(DEATHS[:9])
    ]
    s = python_screen(records)
    assert s.verdicts() == {"eligible": 4, "ineligible": 3, "undetermined": 2}
    assert (s.deceased, s.maybe_deceased) == (3, 2)
    assert lead_rows(s) == {"(start)": (9, 9), "(deceased)": (4, 6)}
    assert [(r.passed, r.not_ruled_out) for r in s.attrition] == [(4, 6)] * 3
    text = attrition_text(s)
    assert "2 patients may have died by then" in text
    (row,) = [line for line in text.splitlines() if line.startswith("(deceased)")]
    assert row.split()[1:] == ["4", "6"]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_last_row_passed_is_the_eligible_count_in_every_output(seed: int, tmp_path: Path) -> None:
    records = cohort(seed, 60)
    s = python_screen(records)
    dead = sum(1 for p in records if p.get("deceased") in DEAD and p.get("deceased") is not False)
    maybe = sum(1 for p in records if p.get("deceased") in MAYBE)
    assert (s.deceased, s.maybe_deceased) == (dead, maybe) and maybe > 0
    eligible = s.verdicts()["eligible"]
    n = len(records)
    # text and CSV
    assert s.attrition[-1].passed == eligible
    assert lead_rows(s)["(deceased)"] == (n - dead - maybe, n - dead)
    # the report's JSON and HTML
    d = report_data(compiled(), s, ["mem"])
    assert d["attrition"][-1]["passed_so_far"] == eligible
    assert (d["deceased"], d["maybe_deceased"]) == (dead, maybe)
    assert f"{maybe} patients" in html_report(compiled(), s, ["mem"])
    # the SQL attrition equals the Python one
    c = compiled()
    path = tmp_path / "c.duckdb"
    ingest_records(c, [(p["id"], p) for p in records], path, AS_OF)
    engine = DuckDB(path)
    try:
        a = engine.run(compile_sql(c, AS_OF)).attrition
    finally:
        engine.close()
    assert (a["deceased"], a["maybe_deceased"]) == (dead, maybe)
    assert a["v_eligible"] == eligible
    for row in s.attrition:
        got = tuple(a[attrition_column(row.id, j)] for j in range(6))
        assert got == (
            row.met,
            row.not_met,
            row.unknown,
            row.not_applicable,
            row.passed,
            row.not_ruled_out,
        ), row.id


def test_impact_reads_perhaps_deceased_as_screen_does(tmp_path: Path) -> None:
    """`critlang impact` took a patient who may have died (deceasedDateTime "2026" as of
    2026-01-15) as ineligible in both versions, hiding the move that `screen` of each
    version shows (previous: ineligible by E3; current: undetermined)."""
    import json
    import subprocess
    import sys

    from helpers import TRIAL

    def bundle(pid: str, **extra: Any) -> dict[str, Any]:
        patient = {"resourceType": "Patient", "id": pid, "birthDate": "1960-01-01"}
        capecitabine = {
            "resourceType": "MedicationStatement",
            "id": f"m-{pid}",
            "status": "completed",
            "medicationCodeableConcept": {
                "coding": [{"system": "http://www.whocc.no/atc", "code": "L01BC06"}]
            },
            "subject": {"reference": f"Patient/{pid}"},
            "effectivePeriod": {"start": "2023-01-01", "end": "2023-06-01"},
        }
        entries = [patient | {"gender": "male"} | extra, capecitabine]
        return {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in entries],
        }

    (tmp_path / "a.json").write_text(json.dumps(bundle("a")))
    (tmp_path / "c.json").write_text(json.dumps(bundle("c", deceasedDateTime="2026")))
    (tmp_path / "d.json").write_text(json.dumps(bundle("d", deceasedDateTime="2025-05-01")))
    args = ["impact", "--as-of", "2026-01-15", "--format", "json"]
    args += [str(TRIAL / "previous.crit"), str(TRIAL / "current.crit"), str(tmp_path)]
    proc = subprocess.run(
        [sys.executable, "-m", "critlang", *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["patients"] == 3 and data["unchanged"] == 1  # d: deceased, ineligible twice
    assert data["changes"] == [
        {"from": "ineligible", "to": "undetermined", "count": 2, "patients": ["a", "c"]}
    ]


def test_rescreening_a_perhaps_deceased_patient_keeps_the_funnel() -> None:
    """screen_elsewhere sets statuses to unknown after screening (resources in another
    file) and moves the patient's attrition counts: a patient who may have died was
    never "passed so far", so taking its counts back must not go below what it added."""
    from critlang.screen import AttritionRow, PatientRow, Screening, clearing, count_row
    from critlang.screen_elsewhere import _unknown

    c = compiled()
    s = Screening(AS_OF, [x.id for x in c.criteria])
    s.attrition = [AttritionRow(x.id, x.section) for x in c.criteria]
    clears = clearing(c)
    statuses = ("met", "met", "not met")
    row = PatientRow("p", "mem", "undetermined", statuses, [], [], maybe_deceased=True)
    s.patients.append(row)
    count_row(s.attrition, clears, statuses, True, maybe=True)
    assert [(r.passed, r.not_ruled_out) for r in s.attrition] == [(0, 1)] * 3
    _unknown(row, {"hb": [(False, "other.json: Observation/hb")]}, s, c, clears)
    assert row.statuses == ("met", "unknown", "unknown") and row.verdict == "undetermined"
    assert [(r.passed, r.not_ruled_out) for r in s.attrition] == [(0, 1)] * 3
