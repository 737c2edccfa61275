"""What the SQL path says and names (sqltest7 findings 2, 6, 7, 8, 9): list items with
fields the protocol does not declare are used in both engines and named as ignored;
the printed query names its columns by criterion id; a cohort read as of one date
says so in words true of native records; `bench_scale.py --help` is help."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from critlang.backends.python import compile_protocol
from critlang.backends.sql import compile_sql
from critlang.backends.sql.engines import DuckDB
from critlang.cli import main
from critlang.frontend import analyse_file
from helpers import ROOT

LISTS = """protocol "F1"
  title "Extra list field"
  version "1"
  date 2026-01-01
  sex all
  healthy volunteers no

fact lesions: list of {grade: integer 0..4}
  label "Lesions"

inclusion criteria
IN-1 "At least one lesion of grade 2 or more"
  rule any lesions with (grade >= 2)
I2 "No lesion of grade 4"
  rule no lesions with (grade = 4)
"""

RECORDS = {
    "p1": [{"grade": 3, "site": "bone"}],  # an undeclared field: ignored, item used
    "p2": [{"grade": 3}],
    "p3": ["grade 3", {"grade": 1}],  # not an object: an item with no known field
    "p4": [{"grade": 4, "site": "liver", "size": 2}],
}
EXPECTED = {
    "p1": ("eligible", "met", "met"),
    "p2": ("eligible", "met", "met"),
    "p3": ("undetermined", "unknown", "unknown"),
    "p4": ("ineligible", "met", "not met"),
}


def _rows(csv_text: str) -> dict[str, tuple[str, ...]]:
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("patient,path,verdict,IN-1,I2,")
    return {r.split(",")[0]: tuple(r.split(",")[2:5]) for r in lines[1:]}


def test_undeclared_list_fields_are_ignored_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crit = tmp_path / "f1.crit"
    crit.write_text(LISTS)
    data = tmp_path / "data"
    data.mkdir()
    for pid, items in RECORDS.items():
        (data / f"{pid}.json").write_text(json.dumps({"id": pid, "facts": {"lesions": items}}))
    py, sql, cohort = tmp_path / "py.csv", tmp_path / "sql.csv", tmp_path / "c.duckdb"
    day = ["--as-of", "2026-06-15"]
    assert main(["screen", *day, str(crit), str(data), "--patients", str(py)]) == 0
    assert main(["ingest", *day, str(crit), str(data), "-o", str(cohort)]) == 0
    assert main(["screen", str(crit), str(cohort), "--patients", str(sql)]) == 0
    assert _rows(py.read_text()) == EXPECTED
    assert _rows(sql.read_text()) == EXPECTED
    capsys.readouterr()
    # the words: the item is named, the fields are ignored, the fact is not "unknown"
    assert main(["eval", *day, str(crit), str(data / "p1.json")]) == 0
    out = capsys.readouterr().out
    assert "ELIGIBLE" in out
    assert "lesions[1]: fields this protocol does not declare, ignored: ['site']" in out
    assert "treated as unknown" not in out


def test_printed_query_names_columns_by_criterion_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crit = tmp_path / "f1.crit"
    crit.write_text(LISTS)
    quote = {"postgres": '"', "duckdb": '"', "spark": "`"}
    for dialect, q in quote.items():
        assert main(["sql", "--dialect", dialect, "--as-of", "2026-06-15", str(crit)]) == 0
        text = capsys.readouterr().out
        assert f"AS {q}IN-1{q}," in text and f"AS {q}I2{q}," in text
        assert "AS c1," not in text.split("FROM (")[0]  # the outer select: the output
        args = ["sql", "--dialect", dialect, "--attrition", "--as-of", "2026-06-15", str(crit)]
        assert main(args) == 0
        text = capsys.readouterr().out
        for word in ("met", "not met", "unknown", "not applicable", "passed so far"):
            assert f"AS {q}IN-1 {word}{q}" in text
        assert f"AS {q}I2 not ruled out{q}" in text and "a1_0" not in text


def test_other_date_refusal_speaks_of_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crit = tmp_path / "f1.crit"
    crit.write_text(LISTS)
    rec = tmp_path / "p1.json"
    rec.write_text(json.dumps({"id": "p1", "facts": {"lesions": RECORDS["p2"]}}))
    cohort = tmp_path / "c.duckdb"
    assert main(["ingest", "--as-of", "2026-06-15", str(crit), str(rec), "-o", str(cohort)]) == 0
    capsys.readouterr()
    assert main(["screen", "--as-of", "2026-06-16", str(crit), str(cohort)]) == 2
    err = capsys.readouterr().err
    assert "the cohort's records were read as of 2026-06-15" in err
    assert "--as-of 2026-06-15 or ingest it again --as-of 2026-06-16" in err
    assert "FHIR" not in err


def test_bench_scale_help_starts_nothing(tmp_path: Path) -> None:
    script = ROOT / "bench" / "bench_scale.py"
    done = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("usage: bench_scale.py")
    assert "../shared/data/synthea-r4" in done.stdout
    assert list(tmp_path.iterdir()) == []
    bare = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert bare.returncode == 2 and "required" in bare.stderr


CONFLICTS = """protocol "C"
  title "conflicts"
  version "1"
  date 2026-01-01
  sex all
  healthy volunteers no

fact hemoglobin: quantity g/dL
  label "Hb"

exclusion criteria
E1 "anaemia"
  rule hemoglobin < 8 g/dL
"""


def test_sql_screen_weighs_conflicting_values_as_python(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two values at one instant that both decide alike: Python decides, and so does SQL
    (one row per combination of candidates, backends/sql/worlds.py), in both query
    forms, with no note. Before, SQL left the criterion unknown (finding 5); a pair that
    decides differently stays unknown in both."""
    crit = tmp_path / "c.crit"
    crit.write_text(CONFLICTS)
    data = tmp_path / "data"
    data.mkdir()
    same = [
        {"value": 7, "unit": "g/dL", "date": "2026-06-01"},
        {"value": 7.5, "unit": "g/dL", "date": "2026-06-01"},
    ]
    (data / "p1.json").write_text(json.dumps({"id": "p1", "facts": {"hemoglobin": same}}))
    one = {"value": 12, "unit": "g/dL", "date": "2026-06-01"}
    (data / "p2.json").write_text(json.dumps({"id": "p2", "facts": {"hemoglobin": one}}))
    split = [
        {"value": 7, "unit": "g/dL", "date": "2026-06-01"},
        {"value": 9, "unit": "g/dL", "date": "2026-06-01"},
    ]
    (data / "p3.json").write_text(json.dumps({"id": "p3", "facts": {"hemoglobin": split}}))
    cohort, py, sql = tmp_path / "c.duckdb", tmp_path / "py.csv", tmp_path / "sql.csv"
    day = ["--as-of", "2026-06-15"]
    assert main(["screen", *day, str(crit), str(data), "--patients", str(py)]) == 0
    assert main(["ingest", *day, str(crit), str(data), "-o", str(cohort)]) == 0
    capsys.readouterr()
    assert main(["screen", str(crit), str(cohort), "--patients", str(sql)]) == 0
    err = capsys.readouterr().err
    assert "conflicting" not in err
    assert "p1,{},ineligible,met".format(data / "p1.json") in py.read_text()
    assert "p3,{},undetermined,unknown".format(data / "p3.json") in py.read_text()

    def statuses(text: str) -> list[list[str]]:  # id, path, verdict, E1 (not the problems)
        return [row.split(",")[:4] for row in text.splitlines()]

    assert statuses(sql.read_text()) == statuses(py.read_text())
    # the facts form (what PostgreSQL, Spark and `critlang sql` run) gives the same
    checked = analyse_file(crit).result
    assert checked is not None
    query = compile_sql(compile_protocol(checked), dt.date(2026, 6, 15))
    assert query.form == "facts"
    engine = DuckDB(cohort)
    try:
        rows = engine.run(query).patients
    finally:
        engine.close()
    assert [r[1:4] for r in rows] == [
        ("p1", "ineligible", "met"),
        ("p2", "eligible", "not met"),
        ("p3", "undetermined", "unknown"),
    ]
