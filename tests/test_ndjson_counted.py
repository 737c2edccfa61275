"""NDJSON lines that no binding can use are only counted (fhir_ndjson.Stub): the counts,
the diagnostics, the versions rule and the facts must be those of reading every line
as a resource, in memory and in buckets on disk, whatever the line order."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from critlang.data import fhir_input, fhir_ndjson
from critlang.data.fhir import Extractor, FhirPatient, Tally, read_fhir
from critlang.data.fhir_input import read_groups
from critlang.frontend import analyse_file
from helpers import TRIAL, write_fhir

AS_OF = dt.date(2026, 11, 27)
CHECKED = analyse_file(TRIAL / "current.crit").result
assert CHECKED is not None
EXTRACTOR = Extractor(CHECKED)
LOINC = "http://loinc.org"
UNBOUND = "8302-2"  # body height: no binding of the trial reads it


def patient(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": "1960-05-01", "gender": "female"}


def obs(oid: str, code: str, subject: str | None = "Patient/p1", **extra: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": "2026-11-20T10:00:00Z",
        "valueQuantity": {"value": 11, "system": "http://unitsofmeasure.org", "code": "g/dL"},
    }
    if subject is not None:
        r["subject"] = {"reference": subject}
    return r | extra


def read(
    tmp_path: Path, files: list[tuple[str, Any]], on_disk: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[FhirPatient], Tally]:
    with monkeypatch.context() as m:
        if on_disk:  # many buckets, every line and stub written out and read back
            m.setattr(fhir_input, "BUCKET_BYTES", 64)
            m.setattr(fhir_ndjson, "STUB_SPILL", 1)
        tally = Tally()
        patients = list(read_fhir(write_fhir(tmp_path, files), EXTRACTOR, AS_OF, tally))
    assert tally.reconciles(), tally
    return patients, tally


def seen(patients: list[FhirPatient], tally: Tally) -> Any:
    """Everything a reader reports, as comparable values."""
    return (
        sorted((p.id, json.dumps(p.record, sort_keys=True, default=str)) for p in patients),
        sorted((p.id, str(x)) for p in patients for x in p.problems),
        tally.to_dict(),
        sorted(tally.entry_problems),
        tally.examples,
        tally.not_used_examples,
    )


@pytest.mark.parametrize("on_disk", [False, True])
def test_counted_lines_are_counted_and_reported_like_resources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_disk: bool
) -> None:
    lines = [
        obs("hb", "718-7"),
        obs("h1", UNBOUND),
        obs("h2", UNBOUND, "Patient/ghost"),  # no such patient
        obs("h3", UNBOUND, None),  # no subject
        obs("h4", UNBOUND, "Group/g"),
        obs("h5", UNBOUND, status=5),  # malformed: reported, though unbound
    ]
    files = [("Patient.ndjson", [patient("p1")]), ("Observation.ndjson", lines)]
    patients, tally = read(tmp_path, files, on_disk, monkeypatch)
    (p,) = patients
    assert [v["value"] for v in p.record["facts"]["hemoglobin"]] == [11]
    assert (tally.resources, tally.assigned, tally.patients) == (7, 4, 1)
    obs_file = tmp_path / "Observation.ndjson"
    assert tally.unassigned == {
        "its subject is a patient that is not in the data": 1,
        "it names no patient (no subject)": 1,
        "its subject is a Group, not a Patient": 1,
    }
    assert tally.examples["its subject is a patient that is not in the data"] == [
        f"{obs_file} line 3: Observation/h2"
    ]
    assert tally.examples["it names no patient (no subject)"] == [
        f"{obs_file} line 4: Observation/h3"
    ]
    assert tally.entry_problems == [
        f"{obs_file} line 6: Observation/h5 is malformed "
        "(Expected `str | null`, got `int` - at `$.status`)"
    ]


@pytest.mark.parametrize("on_disk", [False, True])
@pytest.mark.parametrize("bound_first", [True, False])
def test_a_counted_line_sharing_an_id_is_resolved_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_disk: bool, bound_first: bool
) -> None:
    """One Observation id twice, once with a bound code and once without: two states of
    one resource that cannot be ordered (no meta), so neither is used, whichever line
    comes first; the unbound one is not dropped because its code is not bound."""
    two = [obs("x", "718-7"), obs("x", UNBOUND)]
    if not bound_first:
        two.reverse()
    files = [("Patient.ndjson", [patient("p1")]), ("Observation.ndjson", two)]
    (p,), tally = read(tmp_path, files, on_disk, monkeypatch)
    assert "hemoglobin" not in p.record["facts"]
    assert p.record["unread"]["hemoglobin"] == [
        {"source": "Observation/x", "date": "2026-11-20T10:00:00Z"}
    ]
    (why,) = [x.message for x in p.problems if x.fact == "hemoglobin"]
    assert why.startswith("Observation/x cannot be used: ")
    assert (tally.resources, tally.assigned) == (3, 3)


@pytest.mark.parametrize("on_disk", [False, True])
def test_identical_counted_lines_are_one_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_disk: bool
) -> None:
    files = [
        ("Patient.ndjson", [patient("p1")]),
        ("Observation.ndjson", [obs("h1", UNBOUND), obs("hb", "718-7")]),
        ("More.ndjson", [obs("h1", UNBOUND)]),
    ]
    (p,), tally = read(tmp_path, files, on_disk, monkeypatch)
    assert sum(tally.not_used.values()) == 1
    assert tally.not_used_examples[next(iter(tally.not_used))] == [
        f"{tmp_path / 'Observation.ndjson'} line 1: Observation/h1"  # the smallest is kept
    ]
    assert (tally.resources, tally.assigned) == (4, 3)
    assert [v["value"] for v in p.record["facts"]["hemoglobin"]] == [11]


def test_counted_lines_of_a_patient_not_in_the_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [
        ("Patient.ndjson", [patient("p1")]),
        ("Observation.ndjson", [obs(f"o{i}", UNBOUND, "Patient/ghost") for i in range(5)]),
    ]
    for on_disk in (False, True):
        _, tally = read(tmp_path, files, on_disk, monkeypatch)
        assert tally.unassigned == {"its subject is a patient that is not in the data": 5}
        assert tally.examples["its subject is a patient that is not in the data"] == [
            f"{tmp_path / 'Observation.ndjson'} line {n}: Observation/o{n - 1}" for n in (1, 2, 3)
        ]


def test_in_memory_and_on_disk_agree_in_any_line_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [obs(f"u{i}", UNBOUND, f"Patient/p{i % 3}") for i in range(12)]
    lines += [obs(f"b{i}", "718-7", f"Patient/p{i % 3}") for i in range(3)]
    lines += [obs("u1", UNBOUND, "Patient/p1", status="amended"), obs("z", UNBOUND, "Patient/q")]
    pats = [patient(f"p{i}") for i in range(3)]
    outcomes = set()
    for order in (lines, lines[::-1], lines[5:] + lines[:5]):
        for on_disk in (False, True):
            files = [("Observation.ndjson", order), ("Patient.ndjson", pats)]
            patients, tally = read(tmp_path, files, on_disk, monkeypatch)
            got = seen(patients, tally)
            outcomes.add(json.dumps(got[:3], sort_keys=True, default=str))
    assert len(outcomes) == 1


def test_panels_without_bound_components_are_not_kept(tmp_path: Path) -> None:
    """A panel is kept only when a component has a bound code or the components do not
    decode (then the resource is reported malformed, as before)."""
    bp = obs("bp", "85354-9")
    bp["component"] = [{"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}}]
    bp.pop("valueQuantity")
    bad = dict(bp, id="bad", component=[{"code": 5}])
    hit = dict(bp, id="hit", component=[{"code": {"coding": [{"system": LOINC, "code": "718-7"}]}}])
    paths = write_fhir(
        tmp_path,
        [("Patient.ndjson", [patient("p1")]), ("Observation.ndjson", [bp, bad, hit])],
    )
    tally = Tally()
    (group,) = read_groups(paths, tally, EXTRACTOR.codes)
    assert sorted(r.id for r in group.resources) == ["bad", "hit"]
    assert (tally.resources, tally.assigned) == (4, 4)
    (p,) = read_fhir(paths, EXTRACTOR, AS_OF, Tally())
    assert [x.message for x in p.problems if x.fact == "resource"] == [
        "Observation/bad is malformed (Expected `object | null`, got `int` - at `$[0].code`)"
    ]
