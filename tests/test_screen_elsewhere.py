"""Resources naming a patient of another file (screen_elsewhere.py): a Bundle is read on
its own, so they are not read, and every criterion they could change is unknown."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from critlang.backends.python import compile_protocol
from critlang.data.fhir import Extractor, Tally
from critlang.frontend import analyse_text
from critlang.screen import AttritionRow, clearing, count_row
from critlang.screen_jobs import screen_files
from helpers import HB_CIRRHOSIS_CAPECITABINE, write_fhir

PROTOCOL = (
    """protocol "T"
  title "elsewhere"
  version "1"
  date 2024-01-01
  sex all
  healthy volunteers no

"""
    + HB_CIRRHOSIS_CAPECITABINE
    + """
inclusion criteria
I1 "haemoglobin"
  rule hemoglobin >= 8.0 g/dL

exclusion criteria
E1 "cirrhosis"
  rule cirrhosis
E2 "recent capecitabine"
  rule any prior_therapies with (kind = capecitabine and end within 28 days before enrollment)
"""
)
AS_OF = dt.date(2024, 6, 1)
CHECKED = analyse_text(PROTOCOL, "t.crit").result
assert CHECKED is not None and CHECKED.ok
COMPILED = compile_protocol(CHECKED)
LOINC, SNOMED = "http://loinc.org", "http://snomed.info/sct"


def patient(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": "1970-01-01"}


def hb(value: float, pid: str, rid: str, when: str = "2024-05-20T08:00:00Z") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "718-7"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "g/dL"},
    }


def cirrhosis(pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": f"c-{pid}",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"coding": [{"system": SNOMED, "code": "19943007"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "onsetDateTime": "2020-01-01",
    }


def bundle(*resources: dict[str, Any], kind: str = "collection") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": [{"resource": r} for r in resources]}


def run(tmp_path: Path, files: list[tuple[str, Any]], absent: tuple[str, ...] = ()) -> Any:
    paths = sorted(write_fhir(tmp_path, files))
    tally = Tally()
    result = screen_files(COMPILED, paths, Extractor(CHECKED, absent), AS_OF, tally)
    # the attrition still adds up from the rows, as if every row had been screened so
    expected = [AttritionRow(r.id, r.section) for r in result.attrition]
    for row in result.patients:
        count_row(expected, clearing(COMPILED), row.statuses, not row.deceased)
    assert expected == result.attrition
    return {row.id: row for row in result.patients}


@pytest.mark.parametrize("layout", ["bundle", "ndjson"])
def test_a_condition_in_another_file_makes_its_criterion_unknown(
    tmp_path: Path, layout: str
) -> None:
    """sp1's active cirrhosis is in a per-type search export: sp1 is not eligible
    (undetermined), never eligible with its cirrhosis unread. sp2, named by nothing
    elsewhere, is decided as before."""
    own = (
        "p.json",
        bundle(patient("sp1"), hb(9.0, "sp1", "o1"), patient("sp2"), hb(9.0, "sp2", "o2")),
    )
    if layout == "bundle":
        other = ("conditions.json", bundle(cirrhosis("sp1"), kind="searchset"))
    else:
        other = ("Condition.ndjson", [cirrhosis("sp1")])
    rows = run(tmp_path, [own, other], absent=("conditions", "medications"))
    assert rows["sp2"].verdict == "eligible"
    sp1 = rows["sp1"]
    assert sp1.verdict == "undetermined"
    assert sp1.statuses == ("met", "unknown", "not met")
    assert "cirrhosis" in sp1.missing
    (said,) = [p for p in sp1.problems if "other files" in p]
    assert said.startswith("cirrhosis: 1 resource(s) in other files name this patient")
    assert "Condition/c-sp1" in said


def test_a_newer_lab_elsewhere_unknown_an_ineligible_verdict_may_stay(tmp_path: Path) -> None:
    """A criterion the unread resource cannot reach keeps its status: sp1 excluded by its
    own cirrhosis stays ineligible though its haemoglobin becomes unknown."""
    own = ("p.json", bundle(patient("sp1"), hb(9.0, "sp1", "o1"), cirrhosis("sp1")))
    other = ("labs.json", bundle(hb(7.0, "sp1", "o9", "2024-05-30T08:00:00Z"), kind="searchset"))
    rows = run(tmp_path, [own, other], absent=("conditions", "medications"))
    assert rows["sp1"].statuses == ("unknown", "met", "not met")
    assert rows["sp1"].verdict == "ineligible"


def test_a_patient_named_nowhere_else_is_untouched(tmp_path: Path) -> None:
    own = ("p.json", bundle(patient("sp1"), hb(9.0, "sp1", "o1")))
    other = ("labs.json", bundle(hb(7.0, "nobody", "o9"), kind="searchset"))
    rows = run(tmp_path, [own, other], absent=("conditions", "medications"))
    assert rows["sp1"].verdict == "eligible"
    assert not [p for p in rows["sp1"].problems if "other files" in p]


def test_the_same_rows_and_attrition_on_several_processes(tmp_path: Path) -> None:
    """With --jobs the files are read by workers: the rule applies after the merge."""
    from critlang.screen_jobs import can_fork

    if not can_fork():
        pytest.skip("this platform cannot fork")
    files: list[tuple[str, Any]] = [
        (f"p{i:02}.json", bundle(patient(f"sp{i}"), hb(9.0, f"sp{i}", f"o{i}"))) for i in range(40)
    ]
    files.append(("z.json", bundle(cirrhosis("sp3"), cirrhosis("sp31"), kind="searchset")))
    paths = sorted(write_fhir(tmp_path, files))
    out = []
    for jobs in (1, 2):
        extractor = Extractor(CHECKED, ("conditions", "medications"))
        result = screen_files(COMPILED, paths, extractor, AS_OF, Tally(), jobs)
        out.append(
            ([(r.id, r.verdict, r.statuses, r.problems) for r in result.patients], result.attrition)
        )
    assert out[0] == out[1]
    rows = {r[0]: r for r in out[0][0]}
    assert rows["sp3"][1] == rows["sp31"][1] == "undetermined"
    assert rows["sp4"][1] == "eligible"


def test_ingest_refuses_resources_naming_a_patient_of_another_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cohort table cannot say "unknown because of another file": refused, saying what."""
    from critlang.cli import main

    (tmp_path / "t.crit").write_text(PROTOCOL)
    own = ("p.json", bundle(patient("sp1"), hb(9.0, "sp1", "o1")))
    other = ("conditions.json", bundle(cirrhosis("sp1"), kind="searchset"))
    nobody = ("x.json", bundle(cirrhosis("nobody"), kind="searchset"))
    paths = [str(p) for p in write_fhir(tmp_path, [own, other, nobody])]
    args = ["ingest", "--as-of", "2024-06-01", str(tmp_path / "t.crit")]
    code = main([*args, paths[0], paths[1], "-o", str(tmp_path / "a.duckdb")])
    err = capsys.readouterr().err
    assert code == 2 and "name a patient read from another file" in err
    assert "Condition/c-sp1 names Patient/sp1" in err and not (tmp_path / "a.duckdb").exists()
    assert main([*args, paths[0], paths[2], "-o", str(tmp_path / "b.duckdb")]) == 0
