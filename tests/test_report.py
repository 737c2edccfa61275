"""`critlang screen --report`: the self-contained screening page, and `--format json`."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, TRIAL, screenshot

CURRENT = TRIAL / "current.crit"
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def _cohort(tmp: Path) -> Path:
    """Three FHIR bundles: one with platelets 50 (E8 met), one child, one bare adult."""
    lab = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "777-3"}]},
        "subject": {"reference": "urn:uuid:p1"},
        "effectiveDateTime": "2026-11-20T10:00:00+00:00",
        "valueQuantity": {
            "value": 50,
            "unit": "10*3/uL",
            "system": "http://unitsofmeasure.org",
            "code": "10*3/uL",
        },
    }
    people = [
        ({"id": "p1", "birthDate": "1960-05-01", "gender": "female"}, [lab]),
        ({"id": "p2", "birthDate": "2015-01-01", "gender": "male"}, []),
        ({"id": "p3", "birthDate": "1970-01-01", "gender": "male"}, []),
    ]
    folder = tmp / "data"
    folder.mkdir()
    for p, extra in people:
        patient = {"fullUrl": f"urn:uuid:{p['id']}", "resource": {"resourceType": "Patient", **p}}
        entry = [patient, *({"resource": r} for r in extra)]
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": entry}
        (folder / f"{p['id']}.json").write_text(json.dumps(bundle))
    return folder


def screen(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "critlang", "screen", "--as-of", "2026-11-27", *args],
        capture_output=True,
        text=True,
        check=False,
        env=ENV,
    )
    assert "Traceback" not in proc.stderr
    return proc


def test_json_report_counts_coverage_missing_and_provenance(tmp_path: Path) -> None:
    data = _cohort(tmp_path)
    proc = screen("--format", "json", str(CURRENT), str(data))
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["patients"] == 3 and d["deceased"] == 0
    assert d["verdicts"] == {"eligible": 0, "ineligible": 2, "undetermined": 1}
    rows = {r["criterion"]: r for r in d["attrition"]}
    assert rows["E8"]["met"] == 1 and rows["I5"]["not_met"] == 1
    assert rows["I1"]["text"].startswith("Metastatic Pancreatic neuroendocrine tumors")
    cover = {c["fact"]: c["known"] for c in d["coverage"]}
    assert cover["birth_date"] == 3 and cover["platelets"] == 1 and cover["hemoglobin"] == 0
    missing = {m["fact"]: m for m in d["missing"]}
    assert missing["arm"]["patients"] == 1  # only p3 is undetermined
    assert "not known before randomisation" in missing["arm"]["explanation"]
    assert "a date the trial sets, not in EHR data" in missing["@prrt_start"]["explanation"]
    prov = d["provenance"]
    assert prov["protocol_sha256"] == hashlib.sha256(CURRENT.read_bytes()).hexdigest()
    assert prov["protocol_version"] == "2" and prov["screening_date"] == "2026-11-27"
    assert prov["data"] == sorted(str(data / f"p{i}.json") for i in (1, 2, 3))


def test_html_report_is_self_contained_and_deterministic(tmp_path: Path) -> None:
    data = _cohort(tmp_path)
    out1, out2 = tmp_path / "r1.html", tmp_path / "r2.html"
    assert screen("--report", str(out1), str(CURRENT), str(data)).returncode == 0
    assert screen("--report", str(out2), str(CURRENT), str(data)).returncode == 0
    page = out1.read_text(encoding="utf-8")
    assert page == out2.read_text(encoding="utf-8")  # same inputs, same bytes
    assert "<script" not in page and "src=" not in page and "https://" not in page
    assert '<svg role="img" aria-label="attrition funnel"' in page
    assert "E8</b> exclusion<div" in page and "Hb concentration &lt;5.0 mmol/L" in page
    assert "1 of 3 (33.3 %)" in page  # platelets coverage
    assert "ineligible (66.7 %)" in page


def test_report_write_error_in_words(tmp_path: Path) -> None:
    data = _cohort(tmp_path)
    proc = screen("--report", str(tmp_path), str(CURRENT), str(data))
    assert proc.returncode == 2 and "is a folder, not a file" in proc.stderr
    assert "Errno" not in proc.stderr


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed here")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    data = _cohort(tmp_path)
    page, png = tmp_path / "report.html", tmp_path / "report.png"
    assert screen("--report", str(page), str(CURRENT), str(data)).returncode == 0
    screenshot(page, png, tmp_path / "profile")
    assert png.exists() and png.stat().st_size > 20_000  # a page, not a blank image


def test_impact_text_names_criteria_by_their_text_and_share() -> None:
    import datetime as dt

    from critlang.screen import Impact, impact_text

    r = Impact(dt.date(2026, 11, 27), patients=40, unchanged=38)
    r.moves = {("ineligible", "eligible"): ["p1", "p2"]}
    r.because = {"I6": ["p1", "p2"]}
    r.texts = {"I6": "No Somatostatin Analogues (SSA) or other systemic therapy for 4 weeks"}
    out = impact_text(r, "old.crit", "new.crit")
    assert "  ineligible -> eligible: 2 (p1, p2)" in out
    assert "  I6: 2 (5.0 % of the cohort)  No Somatostatin Analogues (SSA)" in out
    assert r.to_dict()["texts"] == {"I6": r.texts["I6"]}
