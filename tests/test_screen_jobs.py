"""`screen --jobs N` (screen_jobs.py): the same output, byte for byte, for any N: the
attrition table, the reading line and problems on standard error, the per-patient CSV
and JSON Lines tables, with unusable files, unassigned resources, ids shared across
files and NDJSON mixed in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from critlang import cli, screen_jobs
from helpers import SHARED, TRIAL

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def _obs(rid: str, patient: str, code: str, value: float, unit: str, when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "system": UCUM, "code": unit},
    }


def _bundle(pid: str, i: int) -> dict[str, Any]:
    entries = [
        {
            "resourceType": "Patient",
            "id": pid,
            "birthDate": f"19{40 + i}-0{1 + i % 9}-1{i % 9}",
            "gender": "female" if i % 2 else "male",
        },
        _obs(f"h{i}", pid, "718-7", 8 + i % 7, "g/dL", "2026-11-20"),
        _obs(f"p{i}", pid, "777-3", 60 + 10 * i, "10*9/L", f"2026-11-2{i % 7}"),
    ]
    if i % 4 == 0:  # about another patient: unassigned
        entries.append(_obs(f"x{i}", "nobody", "718-7", 12, "g/dL", "2026-11-20"))
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in entries],
    }


def _cohort(folder: Path) -> list[Path]:
    files = []
    for i in range(14):
        pid = "shared" if i in (3, 9) else f"pt{i}"  # one id in two files: flagged after merging
        f = folder / f"b{i:02d}.json"
        f.write_text(json.dumps(_bundle(pid, i)))
        files.append(f)
    bad = folder / "b99.json"
    bad.write_text("{not json")
    files.append(bad)
    nd = folder / "Observation.ndjson"
    nd.write_text(json.dumps(_obs("n1", "nd1", "718-7", 13, "g/dL", "2026-11-21")) + "\n")
    (folder / "Patient.ndjson").write_text(
        json.dumps({"resourceType": "Patient", "id": "nd1", "birthDate": "1950-02-03"}) + "\n"
    )
    return [*files, nd, folder / "Patient.ndjson"]


def _run(
    capsys: pytest.CaptureFixture[str], tmp: Path, files: list[Path], jobs: int
) -> tuple[int, str, str, bytes, bytes, bytes]:
    out = tmp / f"jobs{jobs}"
    out.mkdir()
    argv = ["screen", "--as-of", "2026-11-27", "--jobs", str(jobs), str(TRIAL / "current.crit")]
    argv += [str(f) for f in files]
    argv += ["--patients", str(out / "p.csv"), "--attrition", str(out / "a.csv")]
    code = cli.main(argv)
    printed = capsys.readouterr()
    cli.main([*argv[:-4], "--patients", str(out / "p.jsonl")])
    capsys.readouterr()
    tables = [(out / x).read_bytes() for x in ("p.csv", "a.csv", "p.jsonl")]
    return code, printed.out, printed.err, *tables


def test_any_number_of_jobs_gives_the_same_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(screen_jobs, "MIN_FILES_PER_JOB", 2)  # several runs from 14 files
    files = _cohort(tmp_path)
    one = _run(capsys, tmp_path, files, 1)
    assert one[0] == 0
    assert "read 17 files (16 usable, 1 unusable)" in one[1], one[1]
    assert "shared" in one[3].decode() and "also names a patient" in one[5].decode()
    assert len(screen_jobs.file_runs([Path(f"{i}") for i in range(14)], 3)) > 2
    for jobs in (2, 3):
        assert _run(capsys, tmp_path, files, jobs) == one, jobs


SYNTHEA = SHARED / "data" / "synthea-r4"


@pytest.mark.skipif(not SYNTHEA.exists(), reason=f"{SYNTHEA} is absent (shared data)")
def test_synthea_two_jobs_equal_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(SYNTHEA.glob("*.json"))[:40]  # 40 bundles: two runs of 16 or more
    assert len(screen_jobs.file_runs(files, 2)) >= 2
    assert _run(capsys, tmp_path, files, 2) == _run(capsys, tmp_path, files, 1)


def test_ingest_writes_the_same_cohort_for_any_number_of_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import duckdb

    monkeypatch.setattr(screen_jobs, "MIN_FILES_PER_JOB", 2)
    files = _cohort(tmp_path)
    tables = []
    for jobs in (1, 3):
        target = tmp_path / f"c{jobs}.duckdb"
        argv = ["ingest", "--as-of", "2026-11-27", "--jobs", str(jobs), str(TRIAL / "current.crit")]
        assert cli.main([*argv, *map(str, files), "-o", str(target)]) == 0
        printed = capsys.readouterr()
        con = duckdb.connect(str(target), read_only=True)
        try:
            rows = [
                con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
                for t in ("critlang_patients", "critlang_facts")
            ]
        finally:
            con.close()
        tables.append((printed.out.replace(target.name, "C"), printed.err, rows))
    assert "15 patients read" in tables[0][0], tables[0][0]
    assert tables[0] == tables[1]
