"""FHIR R4 ingestion: small bundles made here (not copies of the shared data)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from critlang.backends.python import compile_protocol
from critlang.data.fhir import Extractor, Tally, data_files, read_fhir
from critlang.data.records import Ongoing, read_record
from critlang.frontend import analyse_file, analyse_text
from critlang.screen import attrition_csv, attrition_text, patients_csv, patients_jsonl, screen
from helpers import SHARED, TRIAL

AS_OF = dt.date(2026, 11, 27)
CHECKED = analyse_file(TRIAL / "current.crit").result
assert CHECKED is not None
EXTRACTOR = Extractor(CHECKED)
LOINC, SNOMED, ATC = "http://loinc.org", "http://snomed.info/sct", "http://www.whocc.no/atc"


def obs(code: str, value: Any, unit: str, date: str, status: str = "final", **extra: Any) -> dict:
    r = {
        "resourceType": "Observation",
        "id": f"obs-{code}-{date}",
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": "urn:uuid:p1"},
        "effectiveDateTime": f"{date}T10:00:00+00:00",
        "valueQuantity": {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }
    r.update(extra)
    return r


def bundle(*resources: dict, kind: str = "collection", patient: dict | None = None) -> dict:
    p = patient or {
        "resourceType": "Patient",
        "id": "p1",
        "birthDate": "1960-05-01",
        "gender": "female",
    }
    return {
        "resourceType": "Bundle",
        "type": kind,
        # fullUrls as Synthea writes them: urn:uuid:<id> (resources refer to urn:uuid:p1)
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in (p, *resources)],
    }


def extract(tmp_path: Path, data: dict) -> Any:
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data))
    (patient,) = list(read_fhir([path], EXTRACTOR, AS_OF))
    record = read_record(CHECKED, patient.record, AS_OF, str(path))
    record.problems = [*patient.problems, *record.problems]
    return record


def test_patient_demographics(tmp_path: Path) -> None:
    r = extract(tmp_path, bundle())
    assert r.id == "p1"
    assert r.facts["birth_date"].value == dt.date(1960, 5, 1)
    assert r.facts["sex"].value == "female"


@pytest.mark.parametrize("kind", ["collection", "transaction", "searchset", "batch"])
def test_bundle_types_and_units(tmp_path: Path, kind: str) -> None:
    r = extract(
        tmp_path,
        bundle(
            obs("718-7", 7.9, "g/dL", "2026-11-20"),
            obs("777-3", 60, "10*3/uL", "2026-11-20"),
            obs("14682-9", 88.4, "umol/L", "2026-11-21"),  # creatinine in SI units
            obs("6690-2", 2.1, "10*9/L", "2026-11-20"),
            kind=kind,
        ),
    )
    assert r.facts["hemoglobin"].value == 7.9 or float(r.facts["hemoglobin"].value) == 7.9
    assert r.facts["platelets"].unit.text == "10*3/uL"
    compiled = compile_protocol(CHECKED)
    f = compiled.normalise(r)
    assert f["platelets"] == 60.0  # 10*3/uL is exactly x10^9/L
    assert f["serum_creatinine"] == pytest.approx(0.99998, rel=1e-4)  # 88.4 umol/L in mg/dL
    assert f["hemoglobin"] == 7.9


def test_newest_in_window_and_stale(tmp_path: Path) -> None:
    r = extract(
        tmp_path,
        bundle(
            obs("718-7", 12.0, "g/dL", "2026-11-01"),
            obs("718-7", 9.0, "g/dL", "2026-11-25"),
            obs("718-7", 6.0, "g/dL", "2026-12-05"),  # after the as-of date
            obs("777-3", 200, "10*3/uL", "2026-06-01"),  # older than 28 days
            obs("777-3", 190, "10*3/uL", "2026-05-01"),
        ),
    )
    assert float(r.facts["hemoglobin"].value) == 9.0
    assert r.facts["platelets"] is None
    assert r.why_unknown["platelets"].startswith("too old: the newest value is from 2026-06-01")


def test_reference_range_gives_uln(tmp_path: Path) -> None:
    glucose = obs(
        "1558-6",
        250,
        "mg/dL",
        "2026-11-20",
        referenceRange=[
            {"low": {"value": 70, "unit": "mg/dL"}, "high": {"value": 100, "unit": "mg/dL"}}
        ],
    )
    r = extract(tmp_path, bundle(glucose))
    assert r.facts["fasting_glucose"].high == 100
    compiled = compile_protocol(CHECKED)
    f = compiled.normalise(r)
    assert f["fasting_glucose#high"] == 100.0
    _, statuses = compiled.evaluate(f)
    assert statuses[[c.id for c in compiled.criteria].index("E11")] is True


def test_entered_in_error_and_cancelled_ignored(tmp_path: Path) -> None:
    r = extract(
        tmp_path,
        bundle(
            obs("718-7", 5.0, "g/dL", "2026-11-25", status="entered-in-error"),
            obs("718-7", 5.5, "g/dL", "2026-11-24", status="cancelled"),
            obs("718-7", 12.5, "g/dL", "2026-11-20"),
        ),
    )
    assert float(r.facts["hemoglobin"].value) == 12.5


def condition(code: str, clinical: str | None, verification: str = "confirmed") -> dict:
    r: dict[str, Any] = {
        "resourceType": "Condition",
        "id": f"c-{code}-{clinical}",
        "code": {"coding": [{"system": SNOMED, "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "verificationStatus": {"coding": [{"code": verification}]},
    }
    if clinical:
        r["clinicalStatus"] = {"coding": [{"code": clinical}]}
    return r


def test_conditions(tmp_path: Path) -> None:
    r = extract(
        tmp_path,
        bundle(
            condition("19943007", "active"),  # cirrhosis
            condition("389026000", "resolved"),  # ascites, resolved
            condition("94225005", "active", verification="refuted"),  # brain metastases, refuted
        ),
    )
    assert r.facts["cirrhosis"].value is True
    assert r.facts["ascites"].value is False
    assert r.facts["brain_metastases"] is None  # refuted: not evidence either way
    assert r.facts["pregnant"] is None  # no condition recorded: unknown, not "no"


_IDS = itertools.count(1)


def medication(kind: str, code: str, **dates: Any) -> dict:
    r = {
        "resourceType": kind,
        # one id per resource (R4 Resource.id, bdl-7): one id given twice with different
        # contents is a conflict (tests/test_fhir_bundles.py)
        "id": f"m-{kind}-{code}-{next(_IDS)}",
        "status": dates.pop("status", "completed"),
        "medicationCodeableConcept": {"coding": [{"system": ATC, "code": code}]},
        "subject": {"reference": "urn:uuid:p1"},
    }
    if kind == "MedicationRequest":  # MedicationRequest.intent is 1..1 (a modifier)
        r["intent"] = "order"
    r.update(dates)
    return r


def test_medications_become_prior_therapies(tmp_path: Path) -> None:
    r = extract(
        tmp_path,
        bundle(
            medication(
                "MedicationRequest",
                "L01BC06",
                authoredOn="2026-03-01",
                dispenseRequest={"validityPeriod": {"end": "2026-08-01"}},
            ),
            medication(
                "MedicationStatement",
                "H01CB02",
                effectivePeriod={"start": "2026-01-01", "end": "2026-11-10"},
            ),
            medication(
                "MedicationAdministration", "L01AX03", effectiveDateTime="2025-02-02T08:00:00Z"
            ),
            medication("MedicationRequest", "L01AX03", authoredOn="2026-10-01", status="cancelled"),
        ),
    )
    items = sorted(
        (i["kind"], i["start"], i["end"]) for i in found(r.facts["prior_therapies"].value)
    )
    assert items == [
        # dispenseRequest.validityPeriod.end is when it may be filled, not the end of
        # taking (R4 MedicationRequest.dispenseRequest.validityPeriod; realfhir7 F4)
        ("capecitabine", dt.date(2026, 3, 1), None),
        ("somatostatin_analogue", dt.date(2026, 1, 1), dt.date(2026, 11, 10)),
        ("temozolomide", dt.date(2025, 2, 2), dt.date(2025, 2, 2)),
    ]


def test_active_therapies_without_an_end_are_ongoing(tmp_path: Path) -> None:
    """medication-statement-status / medicationrequest-status "active" and event-status
    "in-progress" with no end recorded: the exposure goes on (end "ongoing"), never an
    unknown end; completed or on-hold with no end stays unknown."""
    r = extract(
        tmp_path,
        bundle(
            medication(
                "MedicationStatement",
                "H01CB02",
                status="active",
                effectivePeriod={"start": "2026-01-01"},
            ),
            medication("MedicationRequest", "L01BC06", status="active", authoredOn="2026-03-01"),
            medication(
                "MedicationAdministration",
                "L01AX03",
                status="in-progress",
                effectivePeriod={"start": "2026-11-01"},
            ),
            medication(
                "MedicationStatement",
                "H01CB03",
                status="on-hold",
                effectivePeriod={"start": "2026-02-01"},
            ),
            medication("MedicationRequest", "L01AX03", status="completed", authoredOn="2026-04-01"),
            medication("MedicationStatement", "H01CB03", status="active"),  # no dates: taken now
        ),
    )
    items = found(r.facts["prior_therapies"].value)
    undated = [i for i in items if i["start"] is None]
    assert len(undated) == 1 and isinstance(undated[0]["end"], Ongoing)
    ends = {i["start"].isoformat(): i["end"] for i in items if i["start"] is not None}
    assert isinstance(ends.pop("2026-01-01"), Ongoing)
    assert isinstance(ends.pop("2026-03-01"), Ongoing)
    assert isinstance(ends.pop("2026-11-01"), Ongoing)
    assert ends == {"2026-02-01": None, "2026-04-01": None}  # on-hold, completed: unknown


def test_procedure_and_ndjson_several_patients(tmp_path: Path) -> None:
    lines = [
        {"resourceType": "Patient", "id": "a", "birthDate": "1950-01-01", "gender": "male"},
        {"resourceType": "Patient", "id": "b", "birthDate": "1990-01-01", "gender": "female"},
        obs("718-7", 11, "g/dL", "2026-11-20") | {"subject": {"reference": "Patient/a"}},
        obs("718-7", 13, "g/dL", "2026-11-20") | {"subject": {"reference": "Patient/b"}},
        {
            "resourceType": "Procedure",
            "id": "proc",
            "status": "completed",
            "code": {"coding": [{"system": SNOMED, "code": "19943007"}]},
            "subject": {"reference": "Patient/b"},
            "performedDateTime": "2020-01-01",
        },
    ]
    path = tmp_path / "cohort.ndjson"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + "{broken\n")
    tally = Tally()
    patients = {p.id: p for p in read_fhir([path], EXTRACTOR, AS_OF, tally)}
    assert set(patients) == {"a", "b"}
    rb = read_record(CHECKED, patients["b"].record, AS_OF)
    assert float(rb.facts["hemoglobin"].value) == 13 and rb.facts["cirrhosis"].value is True
    assert tally.not_resources == 1 and "line 6: not JSON" in tally.entry_problems[0]
    assert (tally.resources, tally.assigned, tally.patients) == (5, 5, 2)


@pytest.mark.parametrize(
    ("resource", "fragment"),
    [
        (obs("718-7", None, "g/dL", "2026-11-20"), "valueQuantity has no value"),
        (
            {**obs("718-7", 1, "g/dL", "2026-11-20"), "valueQuantity": "7"},
            "is malformed (Expected `object | null`, got `str`)",
        ),
        ({**obs("718-7", 1, "g/dL", "2026-11-20"), "valueQuantity": None}, "no valueQuantity"),
        (
            obs("718-7", 7.9, "K/uL", "2026-11-20"),
            "a lab system's spelling of 10*3/uL, read only for a count per volume",
        ),
        (obs("718-7", "abc", "g/dL", "2026-11-20"), "not a number"),
    ],
)
def test_malformed_resources_give_diagnostics(
    tmp_path: Path, resource: dict, fragment: str
) -> None:
    r = extract(tmp_path, bundle(resource, obs("777-3", 100, "10*3/uL", "2026-11-20")))
    assert r.facts["hemoglobin"] is None
    assert any(fragment in p.message for p in r.problems), [p.message for p in r.problems]
    assert r.facts["platelets"] is not None  # the rest of the bundle still counts


def test_not_json_is_a_diagnostic_not_a_crash(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    tally = Tally()
    assert list(read_fhir([bad], EXTRACTOR, AS_OF, tally)) == []
    assert tally.unusable_files == [(str(bad), tally.unusable_files[0][1])]
    assert tally.unusable_files[0][1].startswith("not JSON")


def test_screen_outputs(tmp_path: Path) -> None:
    (tmp_path / "one.json").write_text(
        json.dumps(bundle(obs("777-3", 50, "10*3/uL", "2026-11-20")))
    )
    other = {"resourceType": "Patient", "id": "p2", "birthDate": "2015-01-01", "gender": "male"}
    (tmp_path / "two.json").write_text(json.dumps(bundle(patient=other)))
    files, problems = data_files([str(tmp_path)])
    assert not problems and len(files) == 2
    result = screen(compile_protocol(CHECKED), read_fhir(files, EXTRACTOR, AS_OF), AS_OF)
    assert result.verdicts() == {"eligible": 0, "ineligible": 2, "undetermined": 0}
    rows = {r.id: r for r in result.attrition}
    assert (rows["I5"].met, rows["I5"].not_met) == (1, 1)  # p2 is 11
    assert rows["E8"].met == 1  # platelets 50
    assert rows["E17"].passed == 0 and rows["I4"].not_ruled_out == 2
    csv_text = patients_csv(result)
    assert csv_text.splitlines()[0].startswith("patient,path,verdict,I1,")
    assert len(patients_jsonl(result).splitlines()) == 2
    assert attrition_csv(result).splitlines()[1] == "(start),,,,,,2,2"
    assert attrition_csv(result).splitlines()[2].startswith("I1,inclusion,0,0,2,0,0,2")


SYNTHEA = SHARED / "data" / "synthea-r4"
needs_synthea = pytest.mark.skipif(
    not SYNTHEA.exists(), reason=f"{SYNTHEA} is absent (the shared data is not beside the project)"
)


@needs_synthea
def test_shared_bundle_values_match_the_bundle() -> None:
    """A hand-picked Synthea patient: extracted values equal the bundle's own."""
    path = SYNTHEA / "Ali_Harris_eed1d00b-7665-4da3-88b7-c37cfb2ed245.json"
    data = json.loads(path.read_text())
    latest: dict[str, tuple[str, float, str]] = {}
    for e in data["entry"]:
        r = e["resource"]
        if r["resourceType"] != "Observation":
            continue
        code = r["code"]["coding"][0]["code"]
        if code in ("718-7", "29463-7", "38483-4"):
            when = r["effectiveDateTime"]
            if code not in latest or when > latest[code][0]:
                latest[code] = (when, r["valueQuantity"]["value"], r["valueQuantity"]["code"])
    as_of = dt.date.fromisoformat(max(w for w, _, _ in latest.values())[:10])
    (patient,) = list(read_fhir([path], EXTRACTOR, as_of))
    record = read_record(CHECKED, patient.record, as_of, str(path))
    for fact, code in (
        ("hemoglobin", "718-7"),
        ("weight", "29463-7"),
        ("serum_creatinine", "38483-4"),
    ):
        when, value, unit = latest[code]
        obs_ = record.facts[fact]
        assert obs_ is not None, record.why_unknown.get(fact)
        assert (obs_.date.isoformat(), float(obs_.value), obs_.unit.text) == (
            when[:10],
            value,
            unit,
        )
    assert record.facts["birth_date"].value.isoformat() == patient.record["facts"]["birth_date"]


@needs_synthea
def test_screen_all_shared_bundles_without_traceback() -> None:
    files, problems = data_files([str(SYNTHEA)])
    assert not problems and len(files) == 390
    tally = Tally()
    as_of = dt.date(2021, 3, 31)
    result = screen(compile_protocol(CHECKED), read_fhir(files, EXTRACTOR, as_of, tally), as_of)
    assert len(result.patients) == 390
    # the counts reconcile: files = patients + unusable files; resources all accounted for
    assert tally.files == tally.patients + len(tally.unusable_files) == 390
    assert tally.reconciles() and tally.resources == tally.assigned
    v = result.verdicts()
    assert v["eligible"] == 0 and v["undetermined"] > 0  # no Ki-67, PET or INR in Synthea
    assert all(p.missing for p in result.patients if p.verdict == "undetermined")


def test_cli_screen(tmp_path: Path) -> None:
    import subprocess
    import sys

    data = tmp_path / "data"
    data.mkdir()
    (data / "one.json").write_text(json.dumps(bundle(obs("777-3", 50, "10*3/uL", "2026-11-20"))))
    out_csv, attr = tmp_path / "patients.csv", tmp_path / "attrition.csv"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "critlang",
            "screen",
            "--as-of",
            "2026-11-27",
            str(TRIAL / "current.crit"),
            str(data),
            "--patients",
            str(out_csv),
            "--attrition",
            str(attr),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "1 patients screened as of 2026-11-27" in proc.stdout
    assert out_csv.read_text().count("\n") == 2 and attr.read_text().startswith("criterion,")
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "critlang",
            "screen",
            str(TRIAL / "current.crit"),
            str(tmp_path / "nope"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


@needs_synthea
def test_docs_figures_are_the_screen_output() -> None:
    """docs/fhir.md shows the table `screen` prints for the shared data, byte for byte."""
    from critlang.screen import attrition_text
    from helpers import ROOT

    text = (ROOT / "docs" / "fhir.md").read_text()
    shown = text.split("```\nread 391 files", 1)[1].split("```", 1)[0]
    skipped: list[tuple[str, str]] = []  # the folder's NOTICE, counted as screen counts it
    files, _ = data_files([str(SYNTHEA)], skipped)
    tally = Tally()
    tally.files += len(skipped)
    tally.unusable_files += skipped
    as_of = dt.date(2021, 3, 31)
    patients = read_fhir(files, EXTRACTOR, as_of, tally)
    result = screen(compile_protocol(CHECKED), patients, as_of, tally=tally, extractor=EXTRACTOR)
    assert "read 391 files" + shown == attrition_text(result) + "\n"


def test_one_id_in_two_files_is_two_patients_and_said(tmp_path: Path) -> None:
    """Never merged (their data may disagree), never dropped, and each row says so."""
    (tmp_path / "a.json").write_text(json.dumps(bundle(obs("718-7", 12, "g/dL", "2026-11-20"))))
    other = {"resourceType": "Patient", "id": "p1", "birthDate": "1990-05-05", "gender": "male"}
    (tmp_path / "b.json").write_text(json.dumps(bundle(patient=other)))
    (tmp_path / "c.json").write_text(
        json.dumps(bundle(patient={"resourceType": "Patient", "id": "p2", "gender": "male"}))
    )
    files, _ = data_files([str(tmp_path)])
    tally = Tally()
    result = screen(
        compile_protocol(CHECKED), read_fhir(files, EXTRACTOR, AS_OF, tally), AS_OF, tally=tally
    )
    assert [p.id for p in result.patients] == ["p1", "p1", "p2"]
    assert result.shared_ids == 2
    flagged = [p for p in result.patients if any("also names a patient" in x for x in p.problems)]
    assert [Path(p.path).name for p in flagged] == ["a.json", "b.json"]
    assert "2 patients share their id" in attrition_text(result)


def test_screen_rows_carry_the_explanations_eval_gives(tmp_path: Path) -> None:
    """screen --patients x.jsonl: each criterion explained as `critlang eval` explains it."""
    from critlang.evaluate import Evaluator

    (tmp_path / "a.json").write_text(json.dumps(bundle(obs("718-7", 7, "g/dL", "2026-11-20"))))
    files, _ = data_files([str(tmp_path)])
    patients = list(read_fhir(files, EXTRACTOR, AS_OF))
    compiled = compile_protocol(CHECKED)
    (row,) = screen(compiled, patients, AS_OF, explain=True).patients
    assert row.explanations is not None
    e8 = row.explanations["E8"]
    assert e8["decided_by"].startswith("hemoglobin < 5.0 mmol/L")
    assert any("7 g/dL" in line or "4.34" in line for line in e8["explanation"]), e8
    record = read_record(CHECKED, patients[0].record, AS_OF, patients[0].path)
    expected = {c.id: c.explanation for c in Evaluator(compiled).evaluate(record).criteria}
    assert {k: v.get("explanation", []) for k, v in row.explanations.items()} == expected
    assert "explanations" in json.loads(
        patients_jsonl(screen(compiled, patients, AS_OF, explain=True))
    )
    assert screen(compiled, patients, AS_OF).patients[0].explanations is None  # opt-in


def test_patient_resources_that_disagree_on_death_never_depend_on_order(tmp_path: Path) -> None:
    """Two Patient resources of one patient with different deceased[x]: "perhaps deceased"
    (undetermined at best, said), whichever is read first; never the last one read."""
    p = {"resourceType": "Patient", "id": "d8", "birthDate": "1960-01-01", "gender": "male"}
    (tmp_path / "1.ndjson").write_text(json.dumps(p | {"deceasedDateTime": "2022-01-01"}) + "\n")
    (tmp_path / "2.ndjson").write_text(json.dumps(p | {"deceasedDateTime": "2020-01-01"}) + "\n")
    as_of = dt.date(2021, 3, 31)
    compiled = compile_protocol(CHECKED)
    outs = []
    for order in (["1.ndjson", "2.ndjson"], ["2.ndjson", "1.ndjson"]):
        files = [tmp_path / f for f in order]
        result = screen(compiled, read_fhir(files, EXTRACTOR, as_of), as_of)
        (row,) = result.patients
        assert row.verdict == "undetermined" and result.deceased == 0
        assert any("disagree" in x for x in row.problems)
        outs.append(patients_jsonl(result))
    assert outs[0] == outs[1]


def test_a_therapy_started_after_the_screening_date_is_not_used(tmp_path: Path) -> None:
    """As for Condition.onset[x] and Procedure.performed[x]: it had not happened then."""
    r = extract(
        tmp_path,
        bundle(
            medication(
                "MedicationStatement",
                "L01BC06",
                status="active",
                effectivePeriod={"start": "2026-12-20"},
            ),
            medication(
                "MedicationStatement",
                "H01CB02",
                status="completed",
                effectivePeriod={"start": "2026-01-01", "end": "2026-02-01"},
            ),
        ),
    )
    kinds = [i["kind"] for i in found(r.facts["prior_therapies"].value)]
    assert kinds == ["somatostatin_analogue"]
    assert any("started 2026-12-20, after the screening date" in p.message for p in r.problems)


def found(items: list) -> list:
    """The items the data show, without the open-world item (data/fhir_absent.open_lists)."""
    assert items[-1] == {} or all(v is None for v in items[-1].values()), items[-1]
    return items[:-1]


def test_a_list_read_from_fhir_is_open_unless_absence_means_no(tmp_path: Path) -> None:
    """One coded therapy does not prove there were no others: `no ... with` stays
    unknown, `any ... with` is decided by the therapy found; with --absent-means-no
    medications (every kind bound) the list is complete."""
    text = (
        "fact birth_date: date\n"
        "fact prior_therapies: list of {kind: enum {capecitabine, yttrium_90}, start: date,"
        " end: date}\n"
        'codes birth_date: fhir "Patient.birthDate"\n'
        'codes prior_therapies.capecitabine: atc "L01BC06"\n'
        "exclusion criteria\n"
        'E1 "Y-90"\n  rule any prior_therapies with (kind = yttrium_90)\n'
        'E2 "capecitabine"\n  rule any prior_therapies with (kind = capecitabine)\n'
    )
    checked = analyse_text(text).result
    assert checked is not None and checked.ok
    cape = medication(
        "MedicationStatement",
        "L01BC06",
        effectivePeriod={"start": "2026-06-01", "end": "2026-07-01"},
    )
    (tmp_path / "b.json").write_text(json.dumps(bundle(cape)))
    files, _ = data_files([str(tmp_path)])
    compiled = compile_protocol(checked)
    (row,) = screen(compiled, read_fhir(files, Extractor(checked), AS_OF), AS_OF).patients
    assert row.statuses == ("unknown", "met")  # Y-90 cannot be seen: never "not met"
    assert any("others they do not record may exist" in p for p in row.problems)


def test_a_patient_id_is_never_a_spreadsheet_formula(tmp_path: Path) -> None:
    p = {"resourceType": "Patient", "id": "=1+2", "birthDate": "1960-01-01", "gender": "male"}
    (tmp_path / "a.json").write_text(json.dumps(bundle(patient=p)))
    files, _ = data_files([str(tmp_path)])
    result = screen(compile_protocol(CHECKED), read_fhir(files, EXTRACTOR, AS_OF), AS_OF)
    assert patients_csv(result).splitlines()[1].startswith("'=1+2,")
    assert json.loads(patients_jsonl(result))["patient"] == "=1+2"  # JSON keeps it as is
