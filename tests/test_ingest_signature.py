"""A cohort is screened only by a protocol that reads its facts the same way
(data/ingest.protocol_signature): else refused, naming the facts (docs/scale.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from critlang.cli import main

HEAD = """protocol "T"
  title "signature"
  version "1"
  date 2024-01-01
  sex all
  healthy volunteers no

fact hba1c: quantity %
  label "HbA1c"
  convert mmol/mol to % as 0.09148 x + 2.152 source "IFCC-NGSP master equation"
fact hemoglobin: quantity g/dL
  measured within 28 days before enrollment
fact cirrhosis: boolean
  history current
codes hba1c: loinc "4548-4", loinc "59261-8"
codes hemoglobin: loinc "718-7"
codes cirrhosis: snomed "19943007"

exclusion criteria
E1 "hba1c"
  rule hba1c >= 8 %
E2 "anaemia"
  rule hemoglobin < 8 g/dL
E3 "cirrhosis"
  rule cirrhosis
"""


@pytest.mark.parametrize(
    ("old", "new", "fact"),
    [
        ("0.09148 x + 2.152", "0.1 x + 2.15", "hba1c"),  # another `convert` equation
        ("within 28 days", "within 90 days", "hemoglobin"),  # another look-back window
        ("history current", "history ever", "cirrhosis"),
    ],
)
def test_a_changed_reading_rule_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, fact: str
) -> None:
    ingested, other = tmp_path / "a.crit", tmp_path / "b.crit"
    ingested.write_text(HEAD)
    other.write_text(HEAD.replace(old, new))
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"}
    data = tmp_path / "p.json"
    data.write_text(json.dumps(patient))
    cohort = tmp_path / "c.duckdb"
    assert (
        main(["ingest", "--as-of", "2024-06-01", str(ingested), str(data), "-o", str(cohort)]) == 0
    )
    assert main(["screen", str(ingested), str(cohort)]) == 0
    capsys.readouterr()
    assert main(["screen", str(other), str(cohort)]) == 2
    err = capsys.readouterr().err
    assert "ingested for facts declared differently" in err and f"({fact};" in err
    # the source's wording and the label are not reading rules
    other.write_text(HEAD.replace("master equation", "equation").replace('"HbA1c"', '"A1c"'))
    assert main(["screen", str(other), str(cohort)]) == 0
