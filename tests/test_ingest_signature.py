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
    assert "ingested for facts or anchors declared differently" in err and f"({fact};" in err
    # the source's wording and the label are not reading rules
    other.write_text(HEAD.replace("master equation", "equation").replace('"HbA1c"', '"A1c"'))
    assert main(["screen", str(other), str(cohort)]) == 0


ANCHORED = (
    HEAD.replace("exclusion criteria", 'anchor surgery "Planned surgery"\n\nexclusion criteria')
    + """E4 "cirrhosis at surgery"
  rule cirrhosis and surgery after 2024-01-01
"""
)


def test_a_new_anchor_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Anchor dates are read at ingest for the anchors then declared: a protocol with
    another anchor is refused, the anchor named, as a changed fact is (sqltest7 #3)."""
    ingested, other = tmp_path / "a.crit", tmp_path / "b.crit"
    ingested.write_text(HEAD)
    other.write_text(ANCHORED)
    record = {"id": "p1", "facts": {}, "anchors": {"surgery": "2024-05-01"}}
    data = tmp_path / "p1.json"
    data.write_text(json.dumps(record))
    cohort = tmp_path / "c.duckdb"
    args = ["ingest", "--as-of", "2024-06-01", str(ingested), str(data), "-o", str(cohort)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["screen", str(other), str(cohort)]) == 2
    err = capsys.readouterr().err
    assert "declared differently (anchor surgery;" in err
    # and the other way round: a cohort read for an anchor the protocol no longer has
    again = tmp_path / "c2.duckdb"
    assert main(["ingest", "--as-of", "2024-06-01", str(other), str(data), "-o", str(again)]) == 0
    capsys.readouterr()
    assert main(["screen", str(ingested), str(again)]) == 2
    assert "(anchor surgery;" in capsys.readouterr().err
    assert main(["screen", str(other), str(again)]) == 0


def test_a_failed_ingest_leaves_the_cohort_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No usable patient: exit 2 and the existing file untouched, byte for byte; a
    cohort without patients screens with exit 2, as the Python screen (sqltest7 #4)."""
    crit = tmp_path / "a.crit"
    crit.write_text(HEAD)
    good = tmp_path / "p.json"
    good.write_text(json.dumps({"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"}))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    cohort = tmp_path / "c.duckdb"
    assert main(["ingest", "--as-of", "2024-06-01", str(crit), str(good), "-o", str(cohort)]) == 0
    before = cohort.read_bytes()
    capsys.readouterr()
    assert main(["ingest", "--as-of", "2024-06-01", str(crit), str(bad), "-o", str(cohort)]) == 2
    err = capsys.readouterr().err
    assert "no usable patient was read" in err and "left as it was" in err
    assert cohort.read_bytes() == before
    left = sorted(p.name for p in tmp_path.iterdir())  # no staged file is left behind
    assert left == ["a.crit", "bad.json", "c.duckdb", "p.json"]
    assert main(["screen", str(crit), str(cohort)]) == 0
    # nothing is written where there was nothing
    fresh = tmp_path / "new.duckdb"
    assert main(["ingest", "--as-of", "2024-06-01", str(crit), str(bad), "-o", str(fresh)]) == 2
    assert not fresh.exists()
    # a cohort file with no patient (an older critlang wrote such files): exit 2
    from critlang.backends.python import compile_protocol
    from critlang.data.ingest import CohortWriter
    from critlang.frontend import analyse_file

    checked = analyse_file(crit).result
    assert checked is not None
    empty = tmp_path / "empty.duckdb"
    writer = CohortWriter(empty, compile_protocol(checked), None)
    writer.count = -1  # force the write of a file without patients (as before the fix)
    writer.close()
    capsys.readouterr()
    assert main(["screen", "--as-of", "2024-06-01", str(crit), str(empty)]) == 2
    out, err = capsys.readouterr()
    assert "holds no patient" in err and "eligible 0, ineligible 0, undetermined 0" in out
