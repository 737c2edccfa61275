"""Identity rules of FHIR input (docs/fhir.md, Files and identity): FHIR ids (R4
datatypes.html#id) and Medication resources named by `medicationReference` across an
NDJSON export and inside a Bundle (R4 MedicationRequest.medication[x]).

Every case asserts the value read and the Tally: resources = assigned + Medication
resources + unassigned, and the reading line of `screen` that shows them.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from critlang.backends.python import compile_protocol
from critlang.data import fhir_input
from critlang.data.fhir import Extractor, FhirPatient, Tally, read_fhir
from critlang.frontend import analyse_file
from critlang.screen import attrition_text, screen
from helpers import TRIAL, write_fhir

AS_OF = dt.date(2026, 11, 27)
CHECKED = analyse_file(TRIAL / "current.crit").result
assert CHECKED is not None
COMPILED = compile_protocol(CHECKED)
EXTRACTOR = Extractor(CHECKED)
COMPLETE = Extractor(CHECKED, ["medications"])  # --absent-means-no medications
LOINC, ATC = "http://loinc.org", "http://www.whocc.no/atc"
CAPECITABINE, TEMOZOLOMIDE = "L01BC06", "L01AX03"
NOT_IN_DATA = "its subject is a patient that is not in the data"


def patient(pid: Any, **extra: Any) -> dict[str, Any]:
    base = {"resourceType": "Patient", "birthDate": "1960-05-01", "gender": "female"}
    return base | ({"id": pid} if pid is not None else {}) | extra


def hb(value: float, subject: str, rid: str | None = None) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid or f"hb{value}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "718-7"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": "2026-11-20T08:00:00Z",
        "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "g/dL"},
    }


def medication(mid: str | None, *codes: str) -> dict[str, Any]:
    m: dict[str, Any] = {"resourceType": "Medication"}
    if mid is not None:
        m["id"] = mid
    if codes:
        m["code"] = {"coding": [{"system": ATC, "code": c} for c in codes]}
    return m


def request(rid: str, medication_ref: str, subject: str = "Patient/p1") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "completed",
        "intent": "order",
        "medicationReference": {"reference": medication_ref},
        "subject": {"reference": subject},
        "authoredOn": "2026-03-01",
    }


def bundle(*resources: dict[str, Any], urls: dict[int, str] | None = None) -> dict[str, Any]:
    entries = []
    for i, r in enumerate(resources):
        e: dict[str, Any] = {"resource": r}
        if urls and i in urls:
            e["fullUrl"] = urls[i]
        entries.append(e)
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def read(
    tmp_path: Path, *files: tuple[str, Any], extractor: Extractor = EXTRACTOR
) -> tuple[list[FhirPatient], Tally]:
    paths = write_fhir(tmp_path, files)
    tally = Tally()
    patients = list(read_fhir(paths, extractor, AS_OF, tally))
    assert tally.reconciles(), tally
    return patients, tally


def counts(t: Tally) -> tuple[int, int, int, int, int, int]:
    return (t.files, t.resources, t.assigned, t.medications, sum(t.unassigned.values()), t.patients)


def kinds(p: FhirPatient) -> list[tuple[str, str | None]]:
    """The therapies read, without the open-world item (fhir_absent.open_lists)."""
    items = p.record["facts"].get("prior_therapies", [])
    return [(i["kind"], i["start"]) for i in items if i.get("kind") is not None]


def messages(p: FhirPatient, fact: str) -> list[str]:
    return [x.message for x in p.problems if x.fact == fact]


# ------------------------------------------------------------ NDJSON medication references


NDJSON_REFERENCES = [
    "Medication/abc",
    "Medication/abc/_history/2",
    "https://ehr.example.org/fhir/Medication/abc",
    "https://ehr.example.org/fhir/Medication/abc/_history/7",
]


@pytest.mark.parametrize("reference", NDJSON_REFERENCES)
@pytest.mark.parametrize("medications_first", [True, False])
@pytest.mark.parametrize("bucket_bytes", [None, 64])
def test_ndjson_medication_reference_resolved_across_files(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reference: str,
    medications_first: bool,
    bucket_bytes: int | None,
) -> None:
    if bucket_bytes is not None:
        monkeypatch.setattr(fhir_input, "BUCKET_BYTES", bucket_bytes)  # buckets on disk
    files = [
        ("Patient.ndjson", [patient("p1")]),
        ("MedicationRequest.ndjson", [request("r1", reference)]),
    ]
    meds = ("Medication.ndjson", [medication("abc", CAPECITABINE), medication("other", "X")])
    files.insert(0 if medications_first else 2, meds)
    (p,), tally = read(tmp_path, *files, extractor=COMPLETE)
    assert kinds(p) == [("capecitabine", "2026-03-01")]
    assert messages(p, "medications") == []
    # 2 Medication resources: neither assigned nor unassigned, and no patient
    assert counts(tally) == (3, 4, 2, 2, 0, 1)
    line = attrition_text(screen(COMPILED, [p], AS_OF, tally=tally)).splitlines()[0]
    assert line == (
        "read 3 files (3 usable, 0 unusable), 4 FHIR resources (2 assigned to patients, "
        "2 Medication resources, 0 unassigned), 1 patients"
    )


@pytest.mark.parametrize("bucket_bytes", [None, 64])
def test_ndjson_medications_disagreeing_on_code_are_a_conflict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bucket_bytes: int | None
) -> None:
    if bucket_bytes is not None:
        monkeypatch.setattr(fhir_input, "BUCKET_BYTES", bucket_bytes)
    for order in ((CAPECITABINE, TEMOZOLOMIDE), (TEMOZOLOMIDE, CAPECITABINE)):
        (p,), tally = read(
            tmp_path,
            ("Patient.ndjson", [patient("p1")]),
            ("MedicationRequest.ndjson", [request("r1", "Medication/abc")]),
            ("Medication.ndjson", [medication("abc", order[0])]),
            ("Medication2.ndjson", [medication("abc", order[1])]),
            extractor=COMPLETE,
        )
        # never the first or the last copy: unknown, with the reason, and the list is not
        # read as complete even under --absent-means-no medications
        assert "prior_therapies" not in p.record["facts"]
        assert messages(p, "medications") == [
            "1 medication resource(s) name a Medication that the data give with 2 different "
            "codes (Medication/abc) (MedicationRequest/r1): not read"
        ]
        assert counts(tally) == (4, 4, 2, 2, 0, 1)


def test_ndjson_medication_copies_that_agree_are_one(tmp_path: Path) -> None:
    """Two copies of one Medication listing the same codings in another order agree."""
    (p,), tally = read(
        tmp_path,
        ("Patient.ndjson", [patient("p1")]),
        ("MedicationRequest.ndjson", [request("r1", "Medication/abc")]),
        (
            "Medication.ndjson",
            [medication("abc", CAPECITABINE, "X1"), medication("abc", "X1", CAPECITABINE)],
        ),
    )
    assert kinds(p) == [("capecitabine", "2026-03-01")]
    assert counts(tally) == (3, 4, 2, 2, 0, 1)


ABSENT = "that is not in the data"
NO_CODE = "that has no code (Medication.code) (Medication/abc)"
SUBSTANCE = "that is a Substance, not a Medication (Substance/abc)"


@pytest.mark.parametrize(
    ("reference", "meds", "why"),
    [
        ("Medication/missing", [medication("abc", CAPECITABINE)], ABSENT),
        ("urn:uuid:abc", [medication("abc", CAPECITABINE)], ABSENT),  # a urn outside a Bundle
        ("Medication/abc", [medication("abc")], NO_CODE),
        ("Substance/abc", [medication("abc", CAPECITABINE)], SUBSTANCE),
        ("medication/abc", [medication("abc", CAPECITABINE)], ABSENT),
        ("Medication/ABC", [medication("abc", CAPECITABINE)], ABSENT),  # ids are case-sensitive
    ],
)
def test_ndjson_medication_references_that_give_no_code(
    tmp_path: Path, reference: str, meds: list[dict[str, Any]], why: str
) -> None:
    (p,), tally = read(
        tmp_path,
        ("Patient.ndjson", [patient("p1")]),
        ("MedicationRequest.ndjson", [request("r1", reference)]),
        ("Medication.ndjson", meds),
        extractor=COMPLETE,
    )
    assert "prior_therapies" not in p.record["facts"]
    assert messages(p, "medications") == [
        f"1 medication resource(s) name a Medication {why} (MedicationRequest/r1): not read"
    ]
    assert counts(tally) == (3, 3, 2, 1, 0, 1)


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ({"status": "entered-in-error"}, "that is entered-in-error (Medication.status)"),
        ({"status": "bogus"}, "whose status 'bogus' is not a medication-status code"),
        (
            {"modifierExtension": [{"url": "http://example.org/x", "valueBoolean": True}]},
            "that has a modifierExtension critlang cannot read",
        ),
        ({"status": "inactive"}, None),  # a formulary state: the code is still the drug
        ({"status": "active"}, None),
    ],
)
@pytest.mark.parametrize("layout", ["bundle", "ndjson"])
def test_medication_status_and_modifier_extension_are_checked(
    tmp_path: Path, extra: dict[str, Any], why: str | None, layout: str
) -> None:
    """Medication.status is a modifier element (R4 medication.html) and a Medication's
    own modifierExtension may change what it is: a MedicationRequest naming such a
    Medication has no code, said, never the Medication's code read as if valid."""
    med = medication("abc", CAPECITABINE) | extra
    if layout == "bundle":
        files = [("b.json", bundle(patient("p1"), med, request("r1", "Medication/abc")))]
    else:
        files = [
            ("Patient.ndjson", [patient("p1")]),
            ("MedicationRequest.ndjson", [request("r1", "Medication/abc")]),
            ("Medication.ndjson", [med]),
        ]
    (p,), _ = read(tmp_path, *files, extractor=COMPLETE)
    if why is None:
        assert kinds(p) == [("capecitabine", "2026-03-01")]
        assert messages(p, "medications") == []
    else:
        assert kinds(p) == []
        assert messages(p, "medications") == [
            f"1 medication resource(s) name a Medication {why} (Medication/abc) "
            "(MedicationRequest/r1): not read"
        ]


def test_bundle_medications_are_counted_and_conflicts_refused(tmp_path: Path) -> None:
    """In a Bundle too: Medication entries are Medication resources (not unassigned), and
    two entries naming one Medication with different codes give no code."""
    data = bundle(
        patient("p1"),
        medication("abc", CAPECITABINE),
        medication("ok", TEMOZOLOMIDE),
        request("r1", "Medication/ok"),
        request("r2", "Medication/abc/_history/1"),
    )
    (p,), tally = read(tmp_path, ("b.json", data), extractor=COMPLETE)
    assert kinds(p) == [("capecitabine", "2026-03-01"), ("temozolomide", "2026-03-01")]
    assert counts(tally) == (1, 5, 3, 2, 0, 1)
    data["entry"].append({"resource": medication("abc", TEMOZOLOMIDE)})
    (p,), tally = read(tmp_path, ("b.json", data), extractor=COMPLETE)
    assert kinds(p) == [("temozolomide", "2026-03-01")]
    assert messages(p, "medications") == [
        "1 medication resource(s) name a Medication that the data give with 2 different "
        "codes (Medication/abc) (MedicationRequest/r2): not read"
    ]
    assert counts(tally) == (1, 6, 3, 3, 0, 1)
    # and two contained Medications with one local id: no code either
    contained = request("r3", "#m")
    contained["contained"] = [medication("m", CAPECITABINE), medication("m", TEMOZOLOMIDE)]
    (p,), _ = read(tmp_path, ("b.json", bundle(patient("p1"), contained)))
    assert kinds(p) == []
    assert messages(p, "medications") == [
        "1 medication resource(s) name a Medication that the data give with 2 different "
        "codes (contained in the resource as #m) (MedicationRequest/r3): not read"
    ]


def test_bundle_medication_by_fullurl_and_restful_base(tmp_path: Path) -> None:
    base = "https://ehr.example.org/fhir"
    data = bundle(
        patient("p1"),
        medication("abc", CAPECITABINE),
        medication("abc", TEMOZOLOMIDE),  # another server's abc: its own fullUrl
        request("r1", "Medication/abc"),
        request("r2", "urn:uuid:m3"),
        medication(None, CAPECITABINE),
        urls={1: f"{base}/Medication/abc", 2: "https://other.example.org/Medication/abc",
              3: f"{base}/MedicationRequest/r1", 5: "urn:uuid:m3"},
    )  # fmt: skip
    (p,), tally = read(tmp_path, ("b.json", data))
    # r1's relative reference is read against its own entry's base (bundle.html#references)
    assert kinds(p) == [("capecitabine", "2026-03-01")] * 2
    assert counts(tally) == (1, 6, 3, 3, 0, 1)


def test_ingest_reads_ndjson_medications_as_screen_does(tmp_path: Path) -> None:
    from critlang.cli import main

    data = tmp_path / "export"
    data.mkdir()
    lines = {
        "Patient.ndjson": [patient("p1"), patient("p2")],
        "MedicationRequest.ndjson": [
            request("r1", "Medication/abc"),
            request("r2", "Medication/clash", "Patient/p2"),
        ],
        "Medication.ndjson": [
            medication("abc", CAPECITABINE),
            medication("clash", CAPECITABINE),
            medication("clash", TEMOZOLOMIDE),
        ],
    }
    for name, resources in lines.items():
        (data / name).write_text("".join(json.dumps(r) + "\n" for r in resources))
    protocol = str(TRIAL / "current.crit")
    cohort = tmp_path / "c.duckdb"
    assert main(["ingest", protocol, str(data), "-o", str(cohort), "--as-of", "2026-11-27"]) == 0
    via_sql, via_python = tmp_path / "sql.csv", tmp_path / "py.csv"
    assert main(["screen", protocol, str(cohort), "--patients", str(via_sql)]) == 0
    main(["screen", protocol, str(data), "--as-of", "2026-11-27", "--patients", str(via_python)])
    rows = [r.split(",") for r in via_python.read_text().splitlines()]
    assert [r[0] for r in rows[1:]] == ["p1", "p2"]
    # the same verdicts, statuses and problem counts through both paths (the SQL engine
    # does not work out the "missing" column)
    sql_rows = [r.split(",") for r in via_sql.read_text().splitlines()]
    assert [r[2:-2] + r[-1:] for r in rows] == [r[2:-2] + r[-1:] for r in sql_rows]
    # what ingest stored: p1's therapy by the Medication's code, p2's conflict said
    import duckdb

    with duckdb.connect(str(cohort), read_only=True) as db:
        stored = db.sql(
            "select p.id, f.field, f.text, f.problem from critlang_facts f "
            "join critlang_patients p using (pid) "
            "where f.fact = 'medications' or f.field = 'kind' order by all"
        ).fetchall()
    assert stored == [
        ("p1", "kind", "capecitabine", None),
        ("p2", None, None, "1 medication resource(s) name a Medication that the data give "
         "with 2 different codes (Medication/clash) (MedicationRequest/r2): not read"),
    ]  # fmt: skip


# ---------------------------------------------------------------------- FHIR ids


INVALID = ["a_b", "x" * 65, "p 1", "é", "y" * 5000]


@pytest.mark.parametrize("pid", INVALID)
def test_invalid_patient_id_is_read_as_written_with_a_diagnostic(tmp_path: Path, pid: str) -> None:
    base = "https://ehr.example.org/fhir"
    refs = [f"Patient/{pid}", f"Patient/{pid}/_history/2", f"{base}/Patient/{pid}"]
    labs = [hb(9 + i, ref, f"o{i}") for i, ref in enumerate(refs)]
    # in a Bundle, an absolute URL to a server is not this bundle's patient: 2 forms
    for files, n in (
        ([("Patient.ndjson", [patient(pid)]), ("Observation.ndjson", labs)], 3),
        ([("b.json", bundle(patient(pid), *labs[:2]))], 2),
    ):
        (p,), tally = read(tmp_path, *files)
        assert p.id == pid
        assert [e["value"] for e in p.record["facts"]["hemoglobin"]] == [9, 10, 11][:n]
        (message,) = messages(p, "patient")
        shown = repr(pid) if len(pid) <= 80 else repr(pid[:64]) + "..."
        assert message.startswith(f"Patient.id {shown} is not a valid FHIR id (R4 datatypes")
        assert len(message) < 300
        assert (tally.assigned, sum(tally.unassigned.values()), tally.patients) == (n + 1, 0, 1)


def test_ids_are_case_and_space_sensitive_never_merged(tmp_path: Path) -> None:
    """`a`, `A` and `a ` are three patients, each with its own value (FHIR ids are
    case-sensitive; a look-alike id is never folded into another)."""
    pats = [patient("a"), patient("A"), patient("a ")]
    labs = [hb(9, "Patient/a"), hb(10, "Patient/A"), hb(11, "Patient/a "), hb(12, "Patient/a\n")]
    for files in (
        [("Patient.ndjson", pats), ("Observation.ndjson", labs)],
        [("b.json", bundle(*pats, *labs))],
    ):
        patients, tally = read(tmp_path, *files)
        got = {p.id: [e["value"] for e in p.record["facts"]["hemoglobin"]] for p in patients}
        assert got == {"A": [10], "a": [9], "a ": [11]}
        assert [messages(p, "patient") != [] for p in patients] == [False, False, True]
        # "Patient/a\n" is no one's: not patient a
        assert counts(tally)[1:] == (7, 6, 0, 1, 3)
        assert sum(tally.unassigned.values()) == 1


def test_patient_with_empty_or_no_id(tmp_path: Path) -> None:
    # NDJSON: a Patient with no id can be named by nothing; counted, never a patient
    patients, tally = read(
        tmp_path,
        ("Patient.ndjson", [patient(""), patient(None), patient("p1")]),
        ("Observation.ndjson", [hb(9, "Patient/"), hb(10, "Patient/p1")]),
    )
    assert [p.id for p in patients] == ["p1"]
    assert tally.unassigned == {
        "a Patient with no id": 2,
        "its subject reference 'Patient/' is not of the form Patient/[id]": 1,
    }
    assert counts(tally) == (2, 5, 2, 0, 3, 1)
    # Bundle: named by its fullUrl (a transaction's urn:uuid), an empty id said
    urn = "urn:uuid:0b2c5a4e-1d7e-4f4a-9a57-3c2f0b3a9e01"
    data = bundle(patient(""), hb(9, urn), patient(None), urls={0: urn})
    (p,), tally = read(tmp_path, ("b.json", data))
    assert p.id == urn.rsplit(":", 1)[1]
    assert [e["value"] for e in p.record["facts"]["hemoglobin"]] == [9]
    assert messages(p, "patient") == [f"Patient.id is empty: named {urn}"]
    assert tally.unassigned == {"a Patient with no id": 1}
    assert counts(tally) == (1, 3, 2, 0, 1, 1)
    # a Bundle whose only Patient has neither: unusable, said, never "bundle-0"
    patients, tally = read(tmp_path, ("b.json", bundle(patient(None), hb(9, "Patient/x"))))
    assert patients == []
    assert tally.unusable_files == [
        (str(tmp_path / "b.json"), "no Patient resource with an id or a fullUrl")
    ]


def test_one_fullurl_claimed_by_two_patients_names_neither(tmp_path: Path) -> None:
    urn = "urn:uuid:7f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f"
    for pats in ((patient("a"), patient("b")), (patient("b"), patient("a"))):
        data = bundle(*pats, hb(9, urn), hb(10, "Patient/b"), urls={0: urn, 1: urn})
        patients, tally = read(tmp_path, ("b.json", data))
        got = {p.id: p.record["facts"].get("hemoglobin") for p in patients}
        assert list(got) == ["a", "b"] and got["a"] is None
        assert [e["value"] for e in got["b"]] == [10]
        assert tally.unassigned == {"its subject names two different Patient entries": 1}


def test_relative_reference_is_exactly_type_and_id(tmp_path: Path) -> None:
    """`x/Patient/p1` is not a literal reference (relative ones are `[type]/[id]`, R4
    references.html); neither is a search URL."""
    labs = [hb(9, "x/Patient/p1", "o1"), hb(10, "https://s/fhir/Patient?name=p1", "o2")]
    patients, tally = read(
        tmp_path, ("Patient.ndjson", [patient("p1")]), ("Observation.ndjson", labs)
    )
    assert "hemoglobin" not in patients[0].record["facts"]
    assert tally.unassigned == {
        "its subject reference 'x/Patient/p1' is not of the form Patient/[id]": 1,
        "its subject is a conditional reference (not resolved)": 1,
    }


def test_ndjson_medication_resolution_never_depends_on_file_or_line_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same export, its lines shuffled and spread over files in other orders, in
    memory and in buckets on disk: the same output, byte for byte (paths aside)."""
    from critlang.screen import patients_jsonl

    resources = [
        patient("p1"),
        patient("p2"),
        request("r1", "Medication/abc"),
        request("r2", "Medication/clash/_history/3", "Patient/p2"),
        request("r3", "https://ehr.example.org/fhir/Medication/oct", "Patient/p2"),
        medication("abc", CAPECITABINE),
        medication("clash", CAPECITABINE),
        medication("clash", "H01CB02"),
        medication("oct", "H01CB02"),
        medication("abc", CAPECITABINE),
    ]

    def outputs(items: list[dict[str, Any]], cut: int) -> tuple[str, str, str]:
        folder = tmp_path / "export"
        folder.mkdir(exist_ok=True)
        for name, part in (("1.ndjson", items[:cut]), ("2.ndjson", items[cut:])):
            (folder / name).write_text("".join(json.dumps(r) + "\n" for r in part))
        tally = Tally()
        paths = [folder / "1.ndjson", folder / "2.ndjson"]
        patients = list(read_fhir(paths, EXTRACTOR, AS_OF, tally))
        records = json.dumps([(p.id, p.record) for p in patients])
        result = screen(COMPILED, patients, AS_OF, tally=tally)
        # the path of a patient is the file of its Patient line: the only thing that moves
        text = patients_jsonl(result).replace("/1.ndjson", "/N").replace("/2.ndjson", "/N")
        return attrition_text(result), text, records

    import random

    first = outputs(resources, 5)
    assert first[0].splitlines()[0] == (
        "read 2 files (2 usable, 0 unusable), 10 FHIR resources (5 assigned to patients, "
        "5 Medication resources, 0 unassigned), 2 patients"
    )
    assert "2 different codes (Medication/clash)" in first[1]
    assert json.loads(first[2]) == [
        ["p1", p1 := {"id": "p1", "facts": {
            "birth_date": "1960-05-01", "sex": "female",
            "prior_therapies": [{"kind": "capecitabine", "start": "2026-03-01", "end": None}, {}],
        }}],
        ["p2", {"id": "p2", "facts": p1["facts"] | {"prior_therapies": [
            {"kind": "somatostatin_analogue", "start": "2026-03-01", "end": None}, {}
        ]}}],
    ]  # fmt: skip
    for seed in range(8):
        items = resources[:]
        random.Random(seed).shuffle(items)
        assert outputs(items, 1 + seed % (len(items) - 1)) == first, seed
    # buckets on disk: patients come by bucket, then id (fhir_input), whatever the order
    monkeypatch.setattr(fhir_input, "BUCKET_BYTES", 64)
    bucketed = outputs(resources, 5)
    assert json.loads(bucketed[2]) == json.loads(first[2])[::-1]
    for seed in range(8):
        items = resources[:]
        random.Random(seed).shuffle(items)
        assert outputs(items, 1 + seed % (len(items) - 1)) == bucketed, seed


def test_one_id_on_two_servers_is_two_patients(tmp_path: Path) -> None:
    """Patient/1 of server a and Patient/1 of server b in one Bundle are two patients
    (a RESTful fullUrl is [base]/[type]/[id]); a relative reference is read against its
    own entry's base, and one with no base names neither."""
    a, b = "https://a.example.org/fhir", "https://b.example.org/fhir"
    data = bundle(
        patient("1", birthDate="1950-01-01"),
        patient("1", birthDate="1990-01-01"),
        hb(9, "Patient/1", "x"),
        hb(10, "Patient/1", "y"),
        hb(11, f"{b}/Patient/1/_history/4", "z"),
        hb(12, "Patient/1", "w"),  # no fullUrl: which server?
        urls={0: f"{a}/Patient/1", 1: f"{b}/Patient/1", 2: f"{a}/Observation/x",
              3: f"{b}/Observation/y"},
    )  # fmt: skip
    for order in (data["entry"], data["entry"][::-1]):
        patients, tally = read(tmp_path, ("b.json", {**data, "entry": order}))
        got = [
            (
                p.id,
                p.record["facts"]["birth_date"],
                [e["value"] for e in p.record["facts"]["hemoglobin"]],
            )
            for p in patients
        ]
        assert got == [("1", "1950-01-01", [9]), ("1", "1990-01-01", [10, 11])]
        assert [messages(p, "patient") for p in patients] == [
            [f"Patient/1 is in this file from 2 servers: {a}/Patient/1 screened apart"],
            [f"Patient/1 is in this file from 2 servers: {b}/Patient/1 screened apart"],
        ]
        assert tally.unassigned == {"its subject names two different Patient entries": 1}
        assert counts(tally) == (1, 6, 5, 0, 1, 2)


def test_patient_link_and_active_are_said_never_merged(tmp_path: Path) -> None:
    """Patient.active and Patient.link are modifier elements (R4 Patient): a record out
    of use, or a person with other records, is screened apart and says so."""
    old = patient(
        "old", active=False, link=[{"other": {"reference": "Patient/new"}, "type": "replaced-by"}]
    )
    new = patient("new", link=[{"other": {"reference": "Patient/old"}, "type": "replaces"}])
    odd = patient("odd", link=[{"other": {"reference": "Patient/new"}, "type": "twin"}])
    for files in (
        [("Patient.ndjson", [old, new, odd, new]), ("Observation.ndjson", [hb(9, "Patient/old")])],
        [("b.json", bundle(old, new, odd, new, hb(9, "Patient/old")))],
    ):
        patients, tally = read(tmp_path, *files)
        got = {p.id: messages(p, "patient") for p in patients}
        assert got == {
            "new": [
                "Patient/new appears more than once in "
                + ("the data" if len(files) == 2 else "this file"),
                "Patient/new: this record replaces (has absorbed) Patient/old (Patient.link "
                "replaces); screened apart, not merged",
            ],
            "odd": [
                "Patient/odd has a Patient.link of unknown type 'twin' to Patient/new; "
                "screened apart, not merged"
            ],
            "old": [
                "Patient/old has active false: the record is not in active use (R4 "
                "Patient.active, a modifier element); screened as given",
                "Patient/old: this record must no longer be used: it was replaced by "
                "Patient/new (Patient.link replaced-by); screened apart, not merged",
            ],
        }
        by_id = {p.id: p for p in patients}
        assert [e["value"] for e in by_id["old"].record["facts"]["hemoglobin"]] == [9]
        assert counts(tally)[1:] == (5, 5, 0, 0, 3)


@pytest.mark.parametrize(
    ("status", "item"), [("completed", True), ("in-progress", True), ("cancelled", False)]
)
@pytest.mark.parametrize("layout", ["bundle", "ndjson"])
def test_a_medication_dispense_is_a_therapy_of_unknown_dates(
    tmp_path: Path, status: str, item: bool, layout: str
) -> None:
    """R4 MedicationDispense: the drug was handed over, when it was taken is not said. It
    was ignored, so `--absent-means-no medications` read the therapy list as empty."""
    dispense = {
        "resourceType": "MedicationDispense",
        "id": "d1",
        "status": status,
        "medicationCodeableConcept": {"coding": [{"system": ATC, "code": CAPECITABINE}]},
        "subject": {"reference": "Patient/p1"},
        "whenHandedOver": "2026-11-10",
    }
    if layout == "bundle":
        files = [("b.json", bundle(patient("p1"), dispense))]
    else:
        files = [("Patient.ndjson", [patient("p1")]), ("MedicationDispense.ndjson", [dispense])]
    (p,), _ = read(tmp_path, *files, extractor=COMPLETE)
    therapies = p.record["facts"].get("prior_therapies")
    if item:
        assert {"kind": "capecitabine"} in therapies  # start and end unknown
        assert messages(p, "prior_therapies")[0] == (
            "MedicationDispense/d1: dispensed (MedicationDispense), dates of use not recorded"
        )
    else:
        assert not therapies  # no item: the dispense did not happen
        assert "not dispensed" in messages(p, "prior_therapies")[0]


def test_duckdb_lists_the_problems_python_lists(tmp_path: Path) -> None:
    """Every reading problem, in the same order, through ingest + DuckDB as through the
    Python engine: a value refused by the full read (no unit), a preliminary value used
    (breaker7 F12: the cohort had kept only the list reader's problems)."""
    from critlang.cli import main

    def hb(rid: str, value: dict, day: str, status: str = "final") -> dict:
        return {
            "resourceType": "Observation",
            "id": rid,
            "status": status,
            "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
            "effectiveDateTime": day,
            **value,
        }

    entries = [
        patient("p1"),
        hb("h1", {"valueInteger": 8}, "2026-11-10"),
        hb("h2", {"valueQuantity": {"value": 12, "unit": "g/dL"}}, "2026-11-20", "preliminary"),
    ]
    data = tmp_path / "b.json"
    data.write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": r} for r in entries],
            }
        )
    )
    protocol = str(TRIAL / "current.crit")
    cohort = tmp_path / "c.duckdb"
    assert main(["ingest", protocol, str(data), "-o", str(cohort), "--as-of", "2026-11-27"]) == 0
    via_sql, via_python = tmp_path / "sql.jsonl", tmp_path / "py.jsonl"
    assert main(["screen", protocol, str(cohort), "--patients", str(via_sql)]) == 0
    main(["screen", protocol, str(data), "--as-of", "2026-11-27", "--patients", str(via_python)])
    (py,) = [json.loads(line) for line in via_python.read_text().splitlines()]
    (db,) = [json.loads(line) for line in via_sql.read_text().splitlines()]
    assert any("has no unit" in p for p in py["problems"])
    assert any("preliminary value used" in p for p in py["problems"])
    assert db["problems"] == py["problems"]
    assert (db["verdict"], db["criteria"]) == (py["verdict"], py["criteria"])
