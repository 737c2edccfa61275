"""A resource's identity is (server base, type, id) where its base is known (R4 Resource.id:
ids are unique per server; bundle.html "Resolving references in Bundles": a relative
reference is resolved against the base of its entry's RESTful fullUrl, and "If no
resolution is possible, then the reference has no defined meaning").

Cases from the HL7 R4 example `bundle-references.json` and the real-file pass realfhir7
(findings 1, 7, 8, 9, 11, 12, 15): every test asserts the value read or the verdict, in
both entry orders where order could matter, in a Bundle and in NDJSON.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from critlang.backends.python import compile_protocol
from critlang.data.fhir import Extractor, FhirPatient, Tally, read_fhir
from critlang.data.fhir_bundles import CONFLICT, MAYBE_UNKNOWN_SERVER, NOT_IN_BUNDLE, NOT_IN_FILE
from critlang.data.fhir_input import LONE
from critlang.data.fhir_refs import DISPLAY_ONLY
from critlang.frontend import analyse_text
from critlang.screen import reading_lines
from critlang.screen_jobs import screen_files
from helpers import HB_CIRRHOSIS_CAPECITABINE, write_fhir

PROTOCOL = (
    """protocol "T"
  title "servers"
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
E2 "capecitabine ever"
  rule any prior_therapies with (kind = capecitabine)
"""
)
AS_OF = dt.date(2024, 6, 1)
CHECKED = analyse_text(PROTOCOL, "t.crit").result
assert CHECKED is not None and CHECKED.ok
COMPILED = compile_protocol(CHECKED)
LOINC, SNOMED, ATC = "http://loinc.org", "http://snomed.info/sct", "http://www.whocc.no/atc"
A, B = "http://example.org/fhir", "http://example.org/fhir-2"  # bundle-references.json


def patient(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": "1970-01-01"}


def hb(value: float, subject: dict[str, Any] | str, rid: str = "14") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "718-7"}]},
        "subject": {"reference": subject} if isinstance(subject, str) else subject,
        "effectiveDateTime": "2024-05-20T08:00:00Z",
        "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "g/dL"},
    }


def cirrhosis(subject: dict[str, Any] | str, rid: str = "c1") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": rid,
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"coding": [{"system": SNOMED, "code": "19943007"}]},
        "subject": {"reference": subject} if isinstance(subject, str) else subject,
        "onsetDateTime": "2020-01-01",
    }


def medication(mid: str, code: str | None = "L01BC06") -> dict[str, Any]:
    m: dict[str, Any] = {"resourceType": "Medication", "id": mid}
    if code:
        m["code"] = {"coding": [{"system": ATC, "code": code}]}
    return m


def request(rid: str, medication_ref: str, subject: str = "Patient/23") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "completed",
        "intent": "order",
        "medicationReference": {"reference": medication_ref},
        "subject": {"reference": subject},
        "authoredOn": "2024-03-01",
    }


def bundle(*entries: tuple[str | None, dict[str, Any]], kind: str = "collection") -> dict[str, Any]:
    out = []
    for url, r in entries:
        out.append({"resource": r} | ({"fullUrl": url} if url else {}))
    return {"resourceType": "Bundle", "type": kind, "entry": out}


def orders(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The Bundle as given and with its entries reversed: order never decides."""
    return [data, {**data, "entry": data["entry"][::-1]}]


def read(
    tmp_path: Path, *files: tuple[str, Any], absent: tuple[str, ...] = ()
) -> tuple[dict[tuple[str, str | None], FhirPatient], Tally]:
    paths = write_fhir(tmp_path, files)
    tally = Tally()
    patients = list(read_fhir(paths, Extractor(CHECKED, absent), AS_OF, tally))
    assert tally.reconciles(), tally
    return {(p.id, p.base): p for p in patients}, tally


def hbs(p: FhirPatient) -> list[float]:
    return sorted(e["value"] for e in p.record["facts"].get("hemoglobin", []))


def screen_rows(
    tmp_path: Path, files: list[tuple[str, Any]], absent: tuple[str, ...] = ()
) -> dict[tuple[str, str], Any]:
    paths = write_fhir(tmp_path, files)
    result = screen_files(COMPILED, paths, Extractor(CHECKED, absent), AS_OF, Tally())
    return {(row.id, Path(row.path).name): row for row in result.patients}


# ------------------------------------------------- F1: relative references, another server


def test_a_relative_reference_from_another_servers_entry_names_no_patient_here(
    tmp_path: Path,
) -> None:
    """bundle-references.json entry 7: `Patient/23` in the entry
    http://example.org/fhir-2/Observation/14 names fhir-2's patient 23, not fhir's: its
    haemoglobin of 7 g/dL is unassigned and cannot make fhir's patient 23 ineligible. The
    same Observation on fhir's own server, or in an entry with no RESTful fullUrl, is 23's."""
    data = bundle(
        (f"{A}/Patient/23", patient("23")), (f"{B}/Observation/14", hb(7.0, "Patient/23"))
    )
    for d in orders(data):
        got, tally = read(tmp_path, ("b.json", d))
        assert hbs(got["23", A]) == []
        assert tally.unassigned == {NOT_IN_FILE: 1}
        rows = screen_rows(tmp_path, [("b.json", d)])
        assert rows["23", "b.json"].statuses == ("unknown", "unknown", "unknown")
    for url in (f"{A}/Observation/14", "urn:uuid:6b1c0d2e-0000-4000-8000-000000000014", None):
        same = bundle((f"{A}/Patient/23", patient("23")), (url, hb(7.0, "Patient/23")))
        for d in orders(same):
            got, tally = read(tmp_path, ("b.json", d))
            assert hbs(got["23", A]) == [7.0], url
            rows = screen_rows(tmp_path, [("b.json", d)])
            assert rows["23", "b.json"].verdict == "ineligible"


def test_a_patient_of_no_known_server_is_matched_by_id(tmp_path: Path) -> None:
    """A Patient entry without a RESTful fullUrl has no known server: a relative
    `Patient/23` from any entry may name it (read by type/id, docs/fhir.md); an absolute
    URL names only the entry with that fullUrl (bundle.html), but may be a
    Patient of that id of no known server."""
    data = bundle(
        ("urn:uuid:6b1c0d2e-0000-4000-8000-000000000023", patient("23")),
        (f"{B}/Observation/14", hb(9.0, "Patient/23")),
        (f"{B}/Observation/15", hb(10.0, f"{B}/Patient/23", "15")),
    )
    for d in orders(data):
        got, tally = read(tmp_path, ("b.json", d))
        assert hbs(got["23", None]) == [9.0]
        # ... and may be this one (it is a stray: its value hides the older ones)
        assert tally.unassigned == {MAYBE_UNKNOWN_SERVER: 1}


def test_ndjson_is_one_export_relative_references_name_its_patients(tmp_path: Path) -> None:
    """NDJSON has no fullUrl: an export is one server, `Patient/23` is its 23."""
    for lines in ([patient("23"), hb(7.0, "Patient/23")], [hb(7.0, "Patient/23"), patient("23")]):
        got, tally = read(tmp_path, ("export.ndjson", lines))
        assert hbs(got["23", None]) == [7.0]
        assert tally.unassigned == {}


def test_a_relative_medication_reference_is_read_against_its_entrys_server(
    tmp_path: Path,
) -> None:
    """`Medication/m1` from fhir-2's entry is not fhir's m1 (capecitabine): the therapy's
    kind is unknown, said, never capecitabine; from fhir's own entry it is capecitabine."""
    for server, kinds in ((B, []), (A, ["capecitabine"])):
        data = bundle(
            (f"{A}/Patient/23", patient("23")),
            (f"{A}/Medication/m1", medication("m1")),
            # its subject absolute: it is fhir's patient 23's from either server
            (f"{server}/MedicationRequest/r1", request("r1", "Medication/m1", f"{A}/Patient/23")),
        )
        for d in orders(data):
            got, _ = read(tmp_path, ("b.json", d))
            items = got["23", A].record["facts"].get("prior_therapies", [])
            assert [i["kind"] for i in items if i.get("kind")] == kinds
            said = [x.message for x in got["23", A].problems if x.fact == "medications"]
            assert said == (
                []
                if kinds
                else [
                    "1 medication resource(s) name a Medication that is not in the data "
                    "(MedicationRequest/r1): not read"
                ]
            )


# ------------------------------------------------- F7: one id on two servers, two resources


def test_one_id_on_two_servers_is_two_resources_not_a_conflict(tmp_path: Path) -> None:
    """bundle-references.json entries 6 and 7: http://example.org/fhir/Observation/14 and
    http://example.org/fhir-2/Observation/14 are two resources (bdl-7 asks that fullUrls
    be unique, and they are): each is read for the patient it names, none is "given more
    than once"."""
    data = bundle(
        (f"{A}/Patient/1", patient("1")),
        (f"{B}/Patient/1", patient("1")),
        (f"{A}/Observation/14", hb(9.0, "Patient/1")),
        (f"{B}/Observation/14", hb(10.0, "Patient/1")),
    )
    for d in orders(data):
        got, tally = read(tmp_path, ("b.json", d))
        assert hbs(got["1", A]) == [9.0] and hbs(got["1", B]) == [10.0]
        assert not tally.not_used and not tally.entry_problems
        assert not [x for p in got.values() for x in p.problems if "bdl-7" in x.message]


@pytest.mark.parametrize("other", [None, "urn:uuid:6b1c0d2e-0000-4000-8000-000000000014"])
def test_one_id_with_and_without_a_server_is_still_one_resource(
    tmp_path: Path, other: str | None
) -> None:
    """An entry of no known server may be a copy of either: the id is not split, and two
    contents with no version are the bdl-7 conflict (unusable, unknown), as before."""
    data = bundle(
        (f"{A}/Patient/1", patient("1")),
        (f"{A}/Observation/14", hb(9.0, "Patient/1")),
        (other, hb(10.0, "Patient/1")),
    )
    for d in orders(data):
        got, _ = read(tmp_path, ("b.json", d))
        said = [x.message for x in got["1", A].problems if x.fact == "hemoglobin"]
        assert len(said) == 2 and all(CONFLICT in m for m in said)
        assert hbs(got["1", A]) == []


def test_ndjson_one_id_twice_is_still_a_conflict(tmp_path: Path) -> None:
    lines = [patient("1"), hb(9.0, "Patient/1"), hb(10.0, "Patient/1")]
    for order in (lines, lines[::-1]):
        got, _ = read(tmp_path, ("export.ndjson", order))
        said = [x.message for x in got["1", None].problems if x.fact == "hemoglobin"]
        assert len(said) == 2 and all(CONFLICT in m for m in said)


# ------------------------------------- F9 and F8: other files and Bundles, by identity


@pytest.mark.parametrize(
    ("reference", "url"),
    [
        (f"{B}/Patient/1", None),  # absolute, on fhir-2
        ("Patient/1", f"{B}/Condition/c1"),  # relative from a fhir-2 entry
    ],
)
@pytest.mark.parametrize("patient_url", [f"{A}/Patient/1", f"{B}/Patient/1", None])
def test_the_cross_file_check_matches_the_server(
    tmp_path: Path, reference: str, url: str | None, patient_url: str | None
) -> None:
    """A cirrhosis naming fhir-2's patient 1 in another file makes E1 unknown for a
    patient 1 of fhir-2 or of no known server, never for fhir's patient 1 (F9: ids like
    `1` and `example` are everywhere in a multi-source folder)."""
    own = ("p.json", bundle((patient_url, patient("1")), (None, hb(9.0, "Patient/1"))))
    other = ("c.json", bundle((url, cirrhosis(reference)), kind="searchset"))
    for files in ([own, other], [other, own]):
        row = screen_rows(tmp_path, files, ("conditions", "medications"))["1", "p.json"]
        said = [p for p in row.problems if "other files" in p]
        if patient_url == f"{A}/Patient/1":
            assert row.verdict == "eligible" and said == []
        else:
            assert row.verdict == "undetermined" and row.statuses[1] == "unknown"
            assert said == [
                "cirrhosis: 1 resource(s) in other files name this patient and were not read "
                "(a Bundle or JSON file is read on its own, R4 bundle.html#references), so "
                f"cirrhosis is unknown: {tmp_path / 'c.json'}: Condition/c1"
            ]


def test_ndjson_resources_naming_a_bundle_patient_match_any_server(tmp_path: Path) -> None:
    """NDJSON carries no server: its `Patient/1` may be any Bundle's patient 1."""
    own = ("p.json", bundle((f"{A}/Patient/1", patient("1")), (None, hb(9.0, "Patient/1"))))
    other = ("Condition.ndjson", [cirrhosis("Patient/1")])
    row = screen_rows(tmp_path, [own, other], ("conditions", "medications"))["1", "p.json"]
    assert row.verdict == "undetermined" and row.statuses[1] == "unknown"


def test_a_nested_bundle_of_the_same_file_is_said_so(tmp_path: Path) -> None:
    """bundle-response-simplesummary.json: a batch-response whose entry 2 is a searchset
    of the patient's Conditions. A nested Bundle is read on its own, so its cirrhosis is
    unknown for the patient of entry 1 (conservative), said as "another Bundle of this
    file", and counted as "not in its Bundle", never "not in the data"."""
    search = bundle((f"{A}/Condition/c1", cirrhosis("Patient/example")), kind="searchset")
    search["id"] = "s1"
    data = bundle(
        (f"{A}/Patient/example", patient("example")),
        (None, hb(9.0, "Patient/example")),
        (None, search),
        kind="batch-response",
    )
    for d in orders(data):
        _, tally = read(tmp_path, ("b.json", d))
        assert tally.unassigned == {NOT_IN_BUNDLE: 1}
        row = screen_rows(tmp_path, [("b.json", d)], ("conditions",))["example", "b.json"]
        assert row.verdict == "undetermined" and row.statuses == ("met", "unknown", "unknown")
        entry = 3 if d is data else 1
        assert [p for p in row.problems if "resource(s) in" in p] == [
            "cirrhosis: 1 resource(s) in another Bundle of this file name this patient and "
            "were not read (a Bundle or JSON file is read on its own, R4 "
            "bundle.html#references), so cirrhosis is unknown: "
            f"this file, entry {entry} (Bundle/s1): Condition/c1"
        ]


def test_ingest_matches_the_server_too(tmp_path: Path) -> None:
    """ingest refuses what screen would make unknown, by the same identity."""
    from critlang.cli import main

    (tmp_path / "t.crit").write_text(PROTOCOL)
    other = ("c.json", bundle((None, cirrhosis(f"{B}/Patient/1")), kind="searchset"))
    args = ["ingest", "--as-of", "2024-06-01", str(tmp_path / "t.crit")]
    for n, (url, code) in enumerate(((f"{A}/Patient/1", 0), (f"{B}/Patient/1", 2))):
        own = (f"p{n}.json", bundle((url, patient("1")), (None, hb(9.0, "Patient/1"))))
        paths = [str(p) for p in write_fhir(tmp_path, [own, other])]
        assert main([*args, *paths, "-o", str(tmp_path / f"{n}.duckdb")]) == code


# ------------------------------------------------------- F11: a display-only subject


@pytest.mark.parametrize("layout", ["bundle", "ndjson"])
def test_a_display_only_subject_is_said_so_and_may_be_anyones(tmp_path: Path, layout: str) -> None:
    """`"subject": {"display": "Sonoma oyster farm"}` (R4 Reference.display: "Text
    alternative for the resource") names no resource: unassigned as display-only (not
    "empty"), and its cirrhosis keeps --absent-means-no conditions from reading "no"."""
    resources = [patient("p1"), cirrhosis({"display": "Sonoma oyster farm"})]
    for order in (resources, resources[::-1]):
        if layout == "bundle":
            files: list[tuple[str, Any]] = [("b.json", bundle(*[(None, r) for r in order]))]
        else:
            files = [("export.ndjson", order)]
        got, tally = read(tmp_path, *files, absent=("conditions",))
        assert tally.unassigned == {DISPLAY_ONLY: 1}
        (example,) = tally.examples[DISPLAY_ONLY]
        assert example.endswith("Condition/c1 (display 'Sonoma oyster farm')")
        assert "cirrhosis" not in got["p1", None].record["facts"]
        row = screen_rows(tmp_path, files, ("conditions",))["p1", Path(files[0][0]).name]
        assert row.statuses[1] == "unknown"


# ------------------------------------------------------- F12: a contained Medication


@pytest.mark.parametrize("layout", ["bundle", "ndjson"])
def test_a_contained_medication_is_named_as_contained(tmp_path: Path, layout: str) -> None:
    """medicationrequest0336.json: `#med0336` is a Medication inside the request, with no
    code; the diagnostic says so, never `Medication/med0336` (no such resource; an export
    may even hold a top-level Medication of that id)."""
    r = request("medrx0336", "#med0336")
    r["contained"] = [medication("med0336", None)]
    top = medication("med0336")  # a top-level one of the same id: not the contained one
    resources = [patient("23"), r, top]
    for order in (resources, resources[::-1]):
        if layout == "bundle":
            files: list[tuple[str, Any]] = [("b.json", bundle(*[(None, x) for x in order]))]
        else:
            files = [("export.ndjson", order)]
        got, _ = read(tmp_path, *files)
        p = got["23", None]
        items = p.record["facts"].get("prior_therapies", [])
        assert [i["kind"] for i in items if i.get("kind")] == []
        assert [x.message for x in p.problems if x.fact == "medications"] == [
            "1 medication resource(s) name a Medication that has no code (Medication.code) "
            "(contained in the resource as #med0336) (MedicationRequest/medrx0336): not read"
        ]


# ------------------------------------------------------- F15: one resource a file


def test_a_folder_of_one_resource_files_says_how_to_give_them(tmp_path: Path) -> None:
    """How the R4 spec and IGs publish examples: one resource a JSON file. Each file is read
    on its own (a file carries no server, and one folder often mixes sources, where
    `Patient/example` is not one patient), so the Observation file is unusable, saying
    what it holds and how to give such files; the patient's criterion is unknown ("other
    files"), never decided without it. The same resources as NDJSON lines are one export:
    read together."""
    files: list[tuple[str, Any]] = [
        ("patient-example-p1.json", patient("p1")),
        ("observation-example-hb.json", hb(7.0, "Patient/p1")),
    ]
    paths = write_fhir(tmp_path, files)
    tally = Tally()
    result = screen_files(COMPILED, paths, Extractor(CHECKED), AS_OF, tally)
    assert tally.unusable_files == [(str(paths[1]), f"one Observation naming Patient/p1: {LONE}")]
    assert reading_lines(tally)[1] == (
        "  unusable: 1 JSON files of single resources and no Patient: each is read on its "
        'own; give them as NDJSON lines (docs/fhir.md, "One resource a file")'
    )
    (row,) = result.patients
    assert row.statuses[0] == "unknown" and row.verdict == "undetermined"
    assert any("other files name this patient" in p for p in row.problems)
    ndjson = [("all.ndjson", [patient("p1"), hb(7.0, "Patient/p1")])]
    (tmp_path / "n").mkdir()
    got, tally = read(tmp_path / "n", *ndjson)
    assert hbs(got["p1", None]) == [7.0] and tally.unusable_files == []


def test_ingest_refuses_a_nested_bundle_naming_the_outer_patient(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """screen makes the nested Bundle's cirrhosis unknown for the outer patient; ingest,
    which cannot store that unknown, refuses (exit 2) instead of storing the patient
    without it (it used to look only at other files)."""
    from critlang.cli import main

    (tmp_path / "t.crit").write_text(PROTOCOL)
    search = bundle((None, cirrhosis("Patient/example")), kind="searchset")
    data = bundle((None, patient("example")), (None, search), kind="batch-response")
    (path,) = write_fhir(tmp_path, [("b.json", data)])
    args = ["ingest", "--as-of", "2024-06-01", str(tmp_path / "t.crit"), str(path)]
    assert main([*args, "-o", str(tmp_path / "a.duckdb")]) == 2
    assert not (tmp_path / "a.duckdb").exists()
    assert (
        f"{path} entry 2 (a Bundle): Condition/c1 names Patient/example, read from {path}"
        in capsys.readouterr().err
    )
    alone = bundle((None, patient("example")), (None, cirrhosis("Patient/example")))
    (path,) = write_fhir(tmp_path, [("c.json", alone)])
    args[-1] = str(path)
    assert main([*args, "-o", str(tmp_path / "c.duckdb")]) == 0
