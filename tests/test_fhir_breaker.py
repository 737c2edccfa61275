"""Regression tests from a fresh user's attempts to break FHIR reading (issue 9).

Each test names the input a clinical-informatics user tried, and asserts what the FHIR R4
element means; the small protocol below uses the shared lab bindings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from critlang.cli import main
from helpers import TRIAL

PROTOCOL = f"""protocol "TEST-B9"
  title "breaker"
  version "1"
  date 2024-01-01
  sex all
  minimum age 18 years
  healthy volunteers no

import "{(TRIAL.parent / "lib" / "common-labs.crit").as_posix()}"

fact birth_date: date
fact wbc: quantity x10^9/L
  measured within 28 days before enrollment
fact serum_creatinine: quantity mg/dL
  molar mass 113.12 g/mol source "PubChem CID 588"
  measured within 28 days before enrollment
fact cirrhosis: boolean
  history current
fact bp: blood pressure
codes cirrhosis: snomed "19943007"
codes bp: loinc "85354-9"

define age = elapsed_years(birth_date, enrollment)

inclusion criteria
I1 "age"
  rule age >= 18 years
I2 "wbc"
  rule wbc >= 2 x10^9/L
exclusion criteria
E1 "creat"
  rule serum_creatinine > 1.5 mg/dL
E2 "cirrhosis"
  rule cirrhosis
E3 "bp"
  rule bp > 140/90 mm[Hg]
"""
AS_OF = "2024-01-20"
UCUM = "http://unitsofmeasure.org"


def patient(pid: str = "p1", **extra: Any) -> dict:
    return {"resourceType": "Patient", "id": pid, "birthDate": "1970-01-01", **extra}


def obs(
    code: str, date: str | None = "2024-01-10T10:00:00Z", subject: str = "Patient/p1", **extra: Any
) -> dict:
    r: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": subject},
    }
    if date is not None:
        r["effectiveDateTime"] = date
    r.update(extra)
    return r


def wbc(value: float, comparator: str | None = None, **extra: Any) -> dict:
    q: dict[str, Any] = {"value": value, "unit": "10*3/uL", "system": UCUM, "code": "10*3/uL"}
    if comparator:
        q["comparator"] = comparator
    return obs("6690-2", valueQuantity=q, **extra)


def bundle(*resources: dict, kind: str = "collection") -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": [{"resource": r} for r in resources]}


@pytest.fixture
def protocol(tmp_path: Path) -> Path:
    p = tmp_path / "p.crit"
    p.write_text(PROTOCOL)
    return p


def screen(
    tmp_path: Path, protocol: Path, *data: Path, extra: tuple[str, ...] = ()
) -> tuple[int, list[dict]]:
    out = tmp_path / "out.jsonl"
    rc = main(
        ["screen", "--as-of", AS_OF, str(protocol), *map(str, data), "--patients", str(out), *extra]
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return rc, rows


def write(tmp_path: Path, name: str, data: Any) -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


def test_eval_undetermined_blood_pressure_fact_has_no_traceback(
    tmp_path: Path, protocol: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A protocol with a `blood pressure` fact: `eval` of a record without it listed what
    it needs by probing the fact with booleans, and the generated code raised TypeError."""
    rec = write(
        tmp_path, "r.json", {"id": "x", "facts": {"bp": {"systolic": 130, "unit": "mm[Hg]"}}}
    )
    assert main(["eval", "--as-of", AS_OF, str(protocol), str(rec)]) == 0
    out = capsys.readouterr().out
    # systolic 130 alone leaves `bp > 140/90` open: the diastolic could still exclude
    assert "UNDETERMINED" in out and "needs bp" in out
    empty = write(tmp_path, "e.json", {"id": "y", "facts": {}})
    assert main(["eval", "--as-of", AS_OF, str(protocol), str(empty)]) == 0
    assert "needs bp" in capsys.readouterr().out


def test_eval_of_a_fhir_bundle_is_refused_not_read_as_an_empty_record(
    tmp_path: Path, protocol: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`critlang eval PROTOCOL bundle.json` read the Bundle as a native record with no
    facts: "undetermined, needs everything", though the bundle has the values."""
    b = write(tmp_path, "b.json", bundle(patient(), wbc(1.0)))
    assert main(["eval", "--as-of", AS_OF, str(protocol), str(b)]) == 2
    captured = capsys.readouterr()
    assert "FHIR Bundle" in captured.err and "critlang screen" in captured.err
    assert "UNDETERMINED" not in captured.out
