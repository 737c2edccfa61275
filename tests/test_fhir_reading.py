"""FHIR R4 reading rules (docs/fhir.md): identity, status, time, components, cohort input.

Each test builds its own small inputs (or reads tests/fixtures/fhir/) and asserts the
values and counts the rules give.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from critlang.backends.python import compile_protocol
from critlang.data import fhir_input
from critlang.data.fhir import Extractor, FhirPatient, Tally, read_fhir
from critlang.frontend import analyse_file
from critlang.screen import attrition_text, patients_jsonl, screen
from helpers import ROOT, TRIAL, write_fhir

AS_OF = dt.date(2026, 11, 27)
CHECKED = analyse_file(TRIAL / "current.crit").result
assert CHECKED is not None
COMPILED = compile_protocol(CHECKED)
EXTRACTOR = Extractor(CHECKED)
FIXTURES = ROOT / "tests" / "fixtures" / "fhir"
LOINC, SNOMED = "http://loinc.org", "http://snomed.info/sct"


def patient(pid: str, **extra: Any) -> dict[str, Any]:
    base = {"resourceType": "Patient", "id": pid, "birthDate": "1960-05-01", "gender": "female"}
    return base | extra


def hb(value: Any, when: str, subject: str = "Patient/p1", **extra: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"hb-{when}-{value}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "718-7"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "g/dL"},
    }
    r.update(extra)
    return r


def wbc(**value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "wbc",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "6690-2"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-11-20T08:00:00Z",
        **value,
    }


def platelet(value: float) -> dict[str, Any]:
    r = wbc(valueQuantity={"value": value, "code": "10*9/L", "system": "http://unitsofmeasure.org"})
    r["id"], r["code"] = "plt", {"coding": [{"system": LOINC, "code": "777-3"}]}
    return r


def cirrhosis(cid: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "code": {"coding": [{"system": SNOMED, "code": "19943007"}]},
        "subject": {"reference": "Patient/p1"},
        **extra,
    }


def status(code: str) -> dict[str, Any]:
    return {"coding": [{"code": code}]}


def bundle(*resources: dict[str, Any], kind: str = "collection") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [{"resource": r} for r in resources],
    }


def read(
    tmp_path: Path, *files: tuple[str, Any], extractor: Extractor = EXTRACTOR
) -> tuple[list[FhirPatient], Tally]:
    paths = write_fhir(tmp_path, files)
    tally = Tally()
    patients = list(read_fhir(paths, extractor, AS_OF, tally))
    assert tally.reconciles(), tally
    return patients, tally


def one(tmp_path: Path, data: Any) -> FhirPatient:
    (p,), _ = read(tmp_path, ("b.json", data))
    return p


def messages(p: FhirPatient, fact: str) -> list[str]:
    return [x.message for x in p.problems if x.fact == fact]


# ---------------------------------------------------------------------- identity


def test_transaction_bundle_two_patients_by_urn_uuid_only(tmp_path: Path) -> None:
    """Patients without ids, referenced only by their urn:uuid fullUrl: 2 patients, not 4."""
    patients, tally = read(
        tmp_path, ("t.json", json.loads((FIXTURES / "transaction.json").read_text()))
    )
    assert [p.id for p in patients] == [
        "0b2c5a4e-1d7e-4f4a-9a57-3c2f0b3a9e01",
        "7f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f",
    ]
    values = [[e["value"] for e in p.record["facts"]["hemoglobin"]] for p in patients]
    assert values == [[11.2], [9.4]]
    assert (tally.resources, tally.assigned, tally.patients) == (4, 4, 2)


def test_versioned_and_absolute_references(tmp_path: Path) -> None:
    base = "http://ehr.example.org/fhir"
    data = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"fullUrl": f"{base}/Patient/p1", "resource": patient("p1")},
            {
                "fullUrl": f"{base}/Observation/a",
                "resource": hb(10, "2026-11-20", "Patient/p1/_history/2"),
            },
            {
                "fullUrl": f"{base}/Observation/b",
                "resource": hb(11, "2026-11-21", f"{base}/Patient/p1/_history/3"),
            },
            {  # another server's Patient/p1 is not this bundle's p1
                "fullUrl": f"{base}/Observation/c",
                "resource": hb(12, "2026-11-22", "http://other.example.org/fhir/Patient/p1"),
            },
        ],
    }
    patients, tally = read(tmp_path, ("b.json", data))
    (p,) = patients
    assert sorted(e["value"] for e in p.record["facts"]["hemoglobin"]) == [10, 11]
    assert tally.unassigned == {"its subject is a patient that is not in the data": 1}


def test_observation_about_another_patient_is_not_this_patients(tmp_path: Path) -> None:
    """An Observation about Patient/B inside A's bundle is not A's, and creates no patient."""
    data = bundle(
        patient("A"), hb(6.0, "2026-11-20", "Patient/B"), hb(13, "2026-11-19", "Patient/A")
    )
    patients, tally = read(tmp_path, ("b.json", data))
    assert [p.id for p in patients] == ["A"]
    assert [e["value"] for e in patients[0].record["facts"]["hemoglobin"]] == [13]
    assert tally.unassigned == {"its subject is a patient that is not in the data": 1}
    assert tally.examples["its subject is a patient that is not in the data"] == [
        f"{tmp_path / 'b.json'}: Observation/hb-2026-11-20-6.0"
    ]


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        ({"reference": "Group/g1"}, "its subject is a Group, not a Patient"),
        (
            {"reference": "Patient?identifier=http://x|123"},
            "its subject is a conditional reference (not resolved)",
        ),
        (
            {"reference": "#p"},
            "its subject is a contained resource, not a patient of the cohort",
        ),
        (
            {"identifier": {"system": "http://x", "value": "1"}},
            "its subject is an identifier-only reference (no Patient resource)",
        ),
        (None, "it names no patient (no subject)"),
    ],
)
def test_subjects_that_name_no_patient_of_the_data(
    tmp_path: Path, subject: Any, reason: str
) -> None:
    obs = hb(6.0, "2026-11-20")
    if subject is None:
        del obs["subject"]
    else:
        obs["subject"] = subject
    patients, tally = read(tmp_path, ("b.json", bundle(patient("p1"), obs)))
    assert [p.id for p in patients] == ["p1"]
    assert "hemoglobin" not in patients[0].record["facts"]  # never "the bundle's patient"
    assert tally.unassigned == {reason: 1}
    assert (tally.resources, tally.assigned) == (2, 1)


def test_non_patient_resources_are_counted_not_assigned(tmp_path: Path) -> None:
    org = {"resourceType": "Organization", "id": "o"}
    _, tally = read(tmp_path, ("b.json", bundle(patient("p1"), org)))
    assert tally.unassigned == {"not patient data (Organization)": 1}


def test_ndjson_grouped_across_files_streamed_in_buckets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pats = [patient("a"), patient("b", birthDate="1990-01-01")]
    labs = [
        hb(11, "2026-11-20T10:00:00Z", "Patient/a"),
        hb(13, "2026-11-20T10:00:00Z", "Patient/b"),
        hb(7, "2026-11-21T10:00:00Z", "Patient/zz"),  # no such patient
    ]
    files = (("Patient.ndjson", pats), ("Observation.ndjson", labs))
    in_memory, t1 = read(tmp_path, *files)
    monkeypatch.setattr(fhir_input, "BUCKET_BYTES", 64)  # many buckets on disk
    bucketed, t2 = read(tmp_path, *files)
    for patients, tally in ((in_memory, t1), (bucketed, t2)):
        by_id = {p.id: p for p in patients}
        assert set(by_id) == {"a", "b"}
        assert [e["value"] for e in by_id["b"].record["facts"]["hemoglobin"]] == [13]
        assert by_id["a"].path == str(tmp_path / "Patient.ndjson")
        assert (tally.files, tally.resources, tally.assigned, tally.patients) == (2, 5, 4, 2)
        assert tally.unassigned == {"its subject is a patient that is not in the data": 1}
    assert sorted(p.record["id"] for p in bucketed) == ["a", "b"]


def test_duplicate_patient_resources_disagreeing(tmp_path: Path) -> None:
    data = bundle(patient("p1"), patient("p1", birthDate="1961-01-01"))
    p = one(tmp_path, data)
    assert "birth_date" not in p.record["facts"]
    assert messages(p, "birth_date") == [
        "the Patient resources disagree: ['1960-05-01', '1961-01-01']"
    ]
    assert messages(p, "patient") == ["Patient/p1 appears more than once in this file"]


# ---------------------------------------------------------------------- status


@pytest.mark.parametrize("code", ["registered", "cancelled", "entered-in-error", "unknown"])
def test_observation_statuses_not_used(tmp_path: Path, code: str) -> None:
    p = one(tmp_path, bundle(patient("p1"), hb(5.0, "2026-11-20", status=code)))
    assert "hemoglobin" not in p.record["facts"]
    assert messages(p, "hemoglobin") == [
        f"Observation/hb-2026-11-20-5.0 has status {code!r}; not used"
    ]


def test_observation_preliminary_used_and_marked(tmp_path: Path) -> None:
    p = one(tmp_path, bundle(patient("p1"), hb(5.0, "2026-11-20", status="preliminary")))
    (entry,) = p.record["facts"]["hemoglobin"]
    assert (entry["value"], entry["status"]) == (5.0, "preliminary")
    amended = one(tmp_path, bundle(patient("p1"), hb(5.0, "2026-11-20", status="amended")))
    assert "status" not in amended.record["facts"]["hemoglobin"][0]


def test_conditions_verification_clinical_status_and_abatement(tmp_path: Path) -> None:
    def fact(*conditions: dict[str, Any]) -> tuple[Any, list[str]]:
        p = one(tmp_path, bundle(patient("p1"), *conditions))
        return p.record["facts"].get("cirrhosis", "absent"), messages(p, "cirrhosis")

    assert fact(cirrhosis("c", clinicalStatus=status("active"))) == (True, [])
    provisional = cirrhosis(
        "c", clinicalStatus=status("active"), verificationStatus=status("provisional")
    )
    assert fact(provisional) == (
        "absent",
        ["only a provisional/unconfirmed diagnosis (Condition/c)"],
    )
    assert fact(cirrhosis("c", verificationStatus=status("refuted"))) == ("absent", [])
    assert fact(cirrhosis("c", clinicalStatus=status("resolved"))) == (False, [])
    # abatement[x] on or before the screening date: not current, whatever clinicalStatus says
    assert fact(cirrhosis("c", abatementDateTime="2025-01-01")) == (False, [])
    # abatementString: abated at a time not given; before the screening date only when the
    # version saying so was written by then (meta.lastUpdated), else unknown with a
    # diagnostic; recordedDate (the record's creation) places nothing (realfhir7 F2)
    updated = cirrhosis(
        "c", abatementString="in childhood", meta={"lastUpdated": "2020-01-01T00:00:00Z"}
    )
    assert fact(updated) == (False, [])
    value, said = fact(cirrhosis("c", abatementString="in childhood", recordedDate="2020-01-01"))
    assert value == "absent" and "abated at a time not given" in said[0]
    value, said = fact(cirrhosis("c", abatementString="in childhood"))
    assert value == "absent" and "abated at a time not given" in said[0]
    assert fact(cirrhosis("c", abatementDateTime="2027-01-01")) == (True, [])
    # one confirmed current condition outweighs a resolved one, in either order
    both = (cirrhosis("a", clinicalStatus=status("resolved")), cirrhosis("b"))
    assert fact(*both) == fact(*reversed(both)) == (True, [])
    # a provisional current and a confirmed resolved one: unknown, not no
    mixed = (cirrhosis("a", clinicalStatus=status("resolved")), provisional)
    assert fact(*mixed)[0] == "absent"
    bad = fact(cirrhosis("c", clinicalStatus=status("dormant")))
    assert bad == ("absent", ["Condition/c: unknown clinicalStatus 'dormant'"])


def test_deceased_patient_is_ineligible(tmp_path: Path) -> None:
    labs = (hb(13, "2026-11-20"),)
    alive = one(tmp_path, bundle(patient("p1", deceasedDateTime="2027-02-01"), *labs))
    assert alive.record["deceased"] == "2027-02-01"
    dead = one(tmp_path, bundle(patient("p1", deceasedBoolean=True), *labs))
    assert dead.record["deceased"] is True
    result = screen(COMPILED, [alive, dead], AS_OF)
    assert [p.verdict for p in result.patients] == ["undetermined", "ineligible"]
    assert result.patients[1].problems[0] == (
        "patient: deceased (Patient.deceasedBoolean): never eligible"
    )
    assert result.deceased == 1
    assert "1 deceased patients are ineligible whatever the criteria" in attrition_text(result)
    assert result.attrition[0].not_ruled_out == 1  # the dead one is ruled out from the start


# ---------------------------------------------------------------------- time and values


def test_dates_keep_time_and_offset_period_end_issued_not_used(tmp_path: Path) -> None:
    data = bundle(
        patient("p1"),
        hb(10, "2026-11-20T23:30:00-05:00"),
        hb(11, None, effectiveDateTime=None, effectiveInstant="2026-11-21T08:00:00.000Z"),
        hb(
            12,
            None,
            effectiveDateTime=None,
            effectivePeriod={"start": "2026-11-18T08:00:00Z", "end": "2026-11-19T08:00:00Z"},
        ),
        hb(13, None, effectiveDateTime=None, issued="2026-11-22T09:00:00Z"),
    )
    p = one(tmp_path, data)
    got = {e["value"]: e.get("date") for e in p.record["facts"]["hemoglobin"]}
    assert got == {
        10: "2026-11-20T23:30:00-05:00",
        11: "2026-11-21T08:00:00.000Z",
        12: "2026-11-19T08:00:00Z",  # a period counts at its end
        13: None,  # issued is when it was reported, not when it was measured
    }


@pytest.mark.parametrize("order", [1, -1])
def test_same_day_values_at_different_times_either_file_order(tmp_path: Path, order: int) -> None:
    labs = [hb(7.5, "2026-11-20T08:00:00+00:00"), hb(12.5, "2026-11-20T17:00:00+00:00")]
    others = (
        wbc(valueQuantity={"value": 5, "code": "10*9/L", "system": "http://unitsofmeasure.org"}),
        platelet(200),
    )
    p = one(tmp_path, bundle(patient("p1"), *labs[::order], *others))
    assert [e["value"] for e in p.record["facts"]["hemoglobin"]] == [7.5, 12.5]
    result = screen(COMPILED, [p], AS_OF)
    assert result.patients[0].statuses[COMPILED_IDS.index("E8")] == "not met"


COMPILED_IDS = [c.id for c in COMPILED.criteria]


@pytest.mark.parametrize(
    ("value", "entry"),
    [
        (
            {"valueQuantity": {"value": 1.5, "comparator": "<", "unit": "10*9/L"}},
            {"value": 1.5, "comparator": "<", "unit": "10*9/L"},
        ),
        (
            {"valueQuantity": {"value": 4, "comparator": ">", "unit": "10*9/L"}},
            {"value": 4, "comparator": ">", "unit": "10*9/L"},
        ),
        ({"valueString": "<0.5 10*9/L"}, {"value": "0.5", "comparator": "<", "unit": "10*9/L"}),
        ({"valueString": ">= 3 10*9/L"}, {"value": "3", "comparator": ">=", "unit": "10*9/L"}),
    ],
)
def test_censored_values_are_passed_with_their_comparator(
    tmp_path: Path, value: dict[str, Any], entry: dict[str, Any]
) -> None:
    p = one(tmp_path, bundle(patient("p1"), wbc(**value)))
    (got,) = p.record["facts"]["wbc"]
    assert {k: got[k] for k in entry} == entry


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"valueString": "positive"},
            "Observation/wbc: valueString 'positive' is text, not a value critlang reads "
            "(only a comparator, a number and a unit, like '<0.5 mg/dL')",
        ),
        (
            {"valueString": "120/80"},
            "Observation/wbc: valueString '120/80' is text, not a value critlang reads "
            "(only a comparator, a number and a unit, like '<0.5 mg/dL')",
        ),
        (
            {"valueQuantity": {"value": 2, "comparator": "~", "unit": "10*9/L"}},
            "Observation/wbc: comparator '~' is not one of <, <=, >=, >",
        ),
        (
            {"dataAbsentReason": {"coding": [{"code": "not-performed"}]}},
            "Observation/wbc: no value (dataAbsentReason 'not-performed')",
        ),
    ],
)
def test_unreadable_values_have_their_own_wording(
    tmp_path: Path, value: dict[str, Any], message: str
) -> None:
    p = one(tmp_path, bundle(patient("p1"), wbc(**value)))
    assert "wbc" not in p.record["facts"]
    assert messages(p, "wbc") == [message]


BP_PROTOCOL = """protocol "BP reading"
  title "components"
  version "1"
  date 2026-01-01
fact systolic: quantity mm[Hg]
fact diastolic: quantity mm[Hg]
fact heart_rate: number
codes systolic: loinc "8480-6"
codes diastolic: loinc "8462-4"
codes heart_rate: loinc "8867-4"
inclusion criteria
I1 "Systolic below 140"
  rule systolic < 140 mm[Hg] and diastolic < 90 mm[Hg] and heart_rate < 100
"""


def test_blood_pressure_panel_components_are_read_like_values(tmp_path: Path) -> None:
    protocol = tmp_path / "bp.crit"
    protocol.write_text(BP_PROTOCOL)
    checked = analyse_file(protocol).result
    assert checked is not None
    panel = {
        "resourceType": "Observation",
        "id": "bp",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-11-20T09:15:00+01:00",
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {
                    "value": 128,
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": {
                    "value": 84,
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
        ],
    }
    (p,), _ = read(tmp_path, ("b.json", bundle(patient("p1"), panel)), extractor=Extractor(checked))
    facts = p.record["facts"]
    assert facts["systolic"] == [
        {
            "source": "Observation/bp component 8480-6",
            "date": "2026-11-20T09:15:00+01:00",
            "value": 128,
            "unit": "mm[Hg]",
        }
    ]
    assert facts["diastolic"][0]["value"] == 84 and "heart_rate" not in facts


# ---------------------------------------------------------------------- cohort input


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "the file is empty"),
        (b"  \n", "the file is empty"),
        (b"{ not json", "not JSON"),
        (b'{"resourceType": "\xff\xfe"}', "not UTF-8 text"),
        (b"[" * 5000 + b"]" * 5000, "not readable: JSON nested too deeply"),
        (b"{" + b'"a":{' * 5000 + b"}" * 5001, "not readable: JSON nested too deeply"),
        (b'"just a string"', "not FHIR: the file holds a JSON str"),
        (b'{"hello": "world"}', "not FHIR: the JSON object has no resourceType"),
        (b'{"resourceType": "Bundle", "entry": {"resource": {}}}', "Bundle.entry is not a list"),
        (b'{"resourceType": "Bundle", "entry": 5}', "Bundle.entry is not a list"),
        (b'{"resourceType": "Bundle", "entry": []}', "an empty Bundle"),
        (b'{"resourceType": "Bundle"}', "an empty Bundle"),
    ],
)
def test_unusable_files_are_reported_never_patients(
    tmp_path: Path, content: bytes, why: str
) -> None:
    patients, tally = read(tmp_path, ("f.json", content))
    assert patients == []
    ((path, got),) = tally.unusable_files
    assert path == str(tmp_path / "f.json") and got.startswith(why), got


def test_top_level_array_of_resources_is_read(tmp_path: Path) -> None:
    (p,), tally = read(tmp_path, ("a.json", [patient("p1"), hb(9, "2026-11-20")]))
    assert p.record["facts"]["hemoglobin"][0]["value"] == 9
    assert (tally.resources, tally.assigned) == (2, 2)


def test_malformed_resource_costs_only_itself(tmp_path: Path) -> None:
    bad_code = hb(3, "2026-11-21")
    bad_code["code"]["coding"][0]["code"] = ["718-7"]  # Coding.code is a string (R4 code)
    overflow = hb(4, "2026-11-22")
    overflow["code"]["coding"] = [{"system": LOINC, "code": "718-7"}]
    raw = json.dumps(bundle(patient("p1"), bad_code, overflow, hb(9, "2026-11-20")))
    raw = raw.replace('"value": 4,', '"value": 1e400,')
    (p,), tally = read(tmp_path, ("b.json", raw))
    assert [e["value"] for e in p.record["facts"]["hemoglobin"]] == [9]
    assert tally.entry_problems == [
        f"{tmp_path / 'b.json'}: Observation/hb-2026-11-21-3 is malformed (Expected `str | "
        "null`, got `array` - at `$.code.coding[0].code`)",
        f"{tmp_path / 'b.json'}: Observation/hb-2026-11-22-4 is malformed (`valueQuantity` "
        "holds a number out of range)",
    ]
    # a number no JSON decoder holds exactly (1e400): that value is unusable, with why
    assert messages(p, "hemoglobin") == [
        "Observation/hb-2026-11-22-4 is malformed (`valueQuantity` holds a number out of range)"
    ]


def test_ndjson_bad_lines_are_reported(tmp_path: Path) -> None:
    content = (
        json.dumps(patient("p1")).encode()
        + b"\n{broken\n"
        + b'{"resourceType": "Observation", "id": "\xff"}\n'
        + b"[1, 2]\n\n"
        + json.dumps(hb(9, "2026-11-20")).encode()
        + b"\n"
    )
    (p,), tally = read(tmp_path, ("x.ndjson", content))
    assert p.record["facts"]["hemoglobin"][0]["value"] == 9
    where = str(tmp_path / "x.ndjson")
    assert tally.entry_problems == [
        f"{where} line 2: not JSON (JSON is malformed: object keys must be strings (byte 1))",
        f"{where} line 3: not UTF-8 text (Invalid UTF-8 encoded string)",
        f"{where} line 4: not a FHIR resource (no resourceType)",
    ]
    assert (tally.not_resources, tally.resources, tally.patients) == (3, 2, 1)


def test_native_records_and_fhir_mixed(tmp_path: Path) -> None:
    native = json.loads(
        (
            TRIAL / "examples" / sorted(x.name for x in (TRIAL / "examples").glob("*.json"))[0]
        ).read_text()
    )
    patients, tally = read(
        tmp_path, ("a-native.json", native), ("b-fhir.json", bundle(patient("p1")))
    )
    assert [p.record is native or p.record == native for p in patients] == [True, False]
    assert (tally.native_records, tally.patients, tally.files) == (1, 2, 2)


def test_feasibility_mode_absence_means_no(tmp_path: Path) -> None:
    extractor = Extractor(CHECKED, ["conditions", "medications"])
    (p,), _ = read(tmp_path, ("b.json", bundle(patient("p1"))), extractor=extractor)
    assert p.record["facts"]["cirrhosis"] is False and p.record["facts"]["ascites"] is False
    assert "prior_therapies" not in p.record["facts"]  # some kinds have no codes
    assert any("prior_therapies: absence is not taken as 'no'" in w for w in extractor.warnings)
    result = screen(COMPILED, [p], AS_OF, extractor=extractor)
    assert "absent conditions count as no (--absent-means-no conditions): " in attrition_text(
        result
    )
    (default,) = read(tmp_path, ("b.json", bundle(patient("p1"))))[0]
    assert "cirrhosis" not in default.record["facts"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "critlang", "screen", "--as-of", "2026-11-27", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_counts_and_nothing_usable(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(bundle(patient("p1"), hb(9, "2026-11-20"))))
    (tmp_path / "b.json").write_text("{ nope")
    proc = _cli(str(TRIAL / "current.crit"), str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == (
        "read 2 files (1 usable, 1 unusable), 2 FHIR resources (2 assigned to patients, "
        "0 unassigned), 1 patients"
    )
    assert f"critlang: {tmp_path / 'b.json'}: unusable: not JSON" in proc.stderr
    (tmp_path / "a.json").unlink()
    proc = _cli(str(TRIAL / "current.crit"), str(tmp_path))
    assert proc.returncode == 2 and "no usable patient was read" in proc.stderr
    assert "Traceback" not in proc.stderr
    bad = _cli("--absent-means-no", "labs", str(TRIAL / "current.crit"), str(tmp_path))
    assert bad.returncode == 2 and "--absent-means-no takes conditions and/or medications" in (
        bad.stderr
    )


def test_screen_output_is_unchanged_by_patients_jsonl_order(tmp_path: Path) -> None:
    data = bundle(patient("p1"), hb(9, "2026-11-20"))
    p = one(tmp_path, data)
    assert patients_jsonl(screen(COMPILED, [p], AS_OF)) == patients_jsonl(
        screen(COMPILED, [one(tmp_path, data)], AS_OF)
    )


def test_history_ever_or_current(tmp_path: Path) -> None:
    """The trial's brain_metastases is `history ever`; cirrhosis is `history current`."""
    brain = cirrhosis("b", clinicalStatus=status("resolved"))
    brain["code"] = {"coding": [{"system": SNOMED, "code": "94225005"}]}
    resolved = cirrhosis("c", clinicalStatus=status("resolved"))
    facts = one(tmp_path, bundle(patient("p1"), brain, resolved)).record["facts"]
    assert (facts["brain_metastases"], facts["cirrhosis"]) == (True, False)
    brain["verificationStatus"] = status("differential")
    p = one(tmp_path, bundle(patient("p1"), brain))
    assert "brain_metastases" not in p.record["facts"]  # unconfirmed: unknown, never yes
    assert messages(p, "brain_metastases") == [
        "only a provisional/unconfirmed diagnosis (Condition/b)"
    ]


def test_history_only_on_yes_no_facts(tmp_path: Path) -> None:
    protocol = tmp_path / "h.crit"
    protocol.write_text(
        BP_PROTOCOL.replace("fact heart_rate: number", "fact heart_rate: number\n  history ever")
    )
    analysis = analyse_file(protocol)
    assert [(d.code, d.message) for d in analysis.diagnostics if d.is_error] == [
        ("E201", "only a yes/no fact has a `history ever` or `current`")
    ]
    formatted = subprocess.run(
        [sys.executable, "-m", "critlang", "fmt", "--check", str(TRIAL / "current.crit")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert formatted.returncode == 0, formatted.stdout


BP_END_TO_END = """protocol "BP end to end"
  title "components"
  version "1"
  date 2026-01-01
fact systolic: quantity mm[Hg]
fact diastolic: quantity mm[Hg]
codes systolic: loinc "8480-6"
codes diastolic: loinc "8462-4"
inclusion criteria
I1 "Blood pressure below 140/90 mmHg"
  rule systolic < 140 mm[Hg] and diastolic < 90 mm[Hg]
"""


@pytest.mark.parametrize(
    ("systolic", "diastolic", "verdict"),
    [(128, 84, "eligible"), (150, 84, "ineligible"), (128, 95, "ineligible")],
)
def test_blood_pressure_panel_end_to_end(
    tmp_path: Path, systolic: int, diastolic: int, verdict: str
) -> None:
    protocol = tmp_path / "bp.crit"
    protocol.write_text(BP_END_TO_END)
    checked = analyse_file(protocol).result
    assert checked is not None and not [d for d in checked.diagnostics if d.is_error]

    def part(code: str, value: int) -> dict[str, Any]:
        return {
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "valueQuantity": {
                "value": value,
                "system": "http://unitsofmeasure.org",
                "code": "mm[Hg]",
            },
        }

    panel = {
        "resourceType": "Observation",
        "id": "bp",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-11-20T09:15:00+01:00",
        "component": [part("8480-6", systolic), part("8462-4", diastolic)],
    }
    (p,), _ = read(tmp_path, ("b.json", bundle(patient("p1"), panel)), extractor=Extractor(checked))
    result = screen(compile_protocol(checked), [p], AS_OF)
    assert [r.verdict for r in result.patients] == [verdict]


def test_medication_references_resolved_in_the_bundle(tmp_path: Path) -> None:
    atc = {"coding": [{"system": "http://www.whocc.no/atc", "code": "L01BC06"}]}

    def request(rid: str, reference: str, **extra: Any) -> dict[str, Any]:
        return {
            "resourceType": "MedicationRequest",
            "id": rid,
            "status": "completed",
            "intent": "order",
            "medicationReference": {"reference": reference},
            "subject": {"reference": "Patient/p1"},
            "authoredOn": "2026-03-01",
            **extra,
        }

    contained = request(
        "c", "#med", contained=[{"resourceType": "Medication", "id": "med", "code": atc}]
    )
    data = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:p", "resource": patient("p1")},
            {"fullUrl": "urn:uuid:m", "resource": {"resourceType": "Medication", "code": atc}},
            {"resource": request("a", "urn:uuid:m")},
            {"resource": contained},
        ],
    }
    extractor = Extractor(CHECKED, ["medications"])
    (p,), _ = read(tmp_path, ("b.json", data), extractor=extractor)
    kinds = [(i["kind"], i["start"], i["end"]) for i in found(p.record["facts"]["prior_therapies"])]
    assert kinds == [("capecitabine", "2026-03-01", None)] * 2
    # a Medication that is not in the data: reported, and never read as "no therapy"
    data["entry"][2]["resource"] = request("a", "Medication/elsewhere")
    data["entry"].pop(3)
    (p,), _ = read(tmp_path, ("b.json", data), extractor=extractor)
    assert "prior_therapies" not in p.record["facts"]
    assert messages(p, "medications") == [
        "1 medication resource(s) name a Medication that is not in the data "
        "(MedicationRequest/a): not read"
    ]


def found(items: list) -> list:
    """The items the data show, without the open-world item (data/fhir_absent.open_lists)."""
    assert items[-1] == {} or all(v is None for v in items[-1].values()), items[-1]
    return items[:-1]
