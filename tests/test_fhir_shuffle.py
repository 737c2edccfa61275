"""Property: the order of a bundle's entries or of NDJSON lines never changes any verdict
or any output byte (the attrition table and the per-patient table)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from critlang.backends.python import compile_protocol
from critlang.data.fhir import Extractor, Tally, read_fhir
from critlang.frontend import analyse_file
from critlang.screen import attrition_text, patients_csv, patients_jsonl, screen
from helpers import TRIAL

AS_OF = dt.date(2026, 11, 27)
CHECKED = analyse_file(TRIAL / "current.crit").result
assert CHECKED is not None
COMPILED = compile_protocol(CHECKED)
EXTRACTOR = Extractor(CHECKED)
LOINC, SNOMED, ATC = "http://loinc.org", "http://snomed.info/sct", "http://www.whocc.no/atc"
UCUM = "http://unitsofmeasure.org"
LABS = [("718-7", "g/dL", (4, 16)), ("6690-2", "10*9/L", (1, 9)), ("777-3", "10*9/L", (40, 300))]
PATIENTS = ("p1", "p2", "p3")
# instants around the screening date, several on one day and some identical
WHEN = st.sampled_from(
    [
        "2026-11-20",
        "2026-11-20T08:00:00Z",
        "2026-11-20T08:00:00+01:00",
        "2026-11-20T17:30:00-05:00",
        "2026-11-21T00:15:00+02:00",
        "2026-10-01T09:00:00Z",
        "2026-11-26T23:59:59Z",
    ]
)


@st.composite
def lab(draw: st.DrawFn, n: int) -> dict[str, Any]:
    code, unit, (low, high) = draw(st.sampled_from(LABS))
    r: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"o{n}",
        "status": draw(st.sampled_from(["final", "amended", "preliminary", "cancelled"])),
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{draw(st.sampled_from(PATIENTS))}"},
        "effectiveDateTime": draw(WHEN),
        "valueQuantity": {"value": draw(st.integers(low, high)), "system": UCUM, "code": unit},
    }
    if draw(st.booleans()):
        r["valueQuantity"]["comparator"] = draw(st.sampled_from(["<", ">"]))
    return r


@st.composite
def condition(draw: st.DrawFn, n: int) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": f"c{n}",
        "code": {
            "coding": [{"system": SNOMED, "code": draw(st.sampled_from(["19943007", "389026000"]))}]
        },
        "subject": {"reference": f"Patient/{draw(st.sampled_from(PATIENTS))}"},
        "clinicalStatus": {"coding": [{"code": draw(st.sampled_from(["active", "resolved"]))}]},
        "verificationStatus": {
            "coding": [{"code": draw(st.sampled_from(["confirmed", "provisional", "refuted"]))}]
        },
    }


# Medication resources the therapies name (fhir_refs.Medications): some ids drawn twice,
# with the same code or another (a conflict), one never given ("Medication/med9")
MEDICATION_IDS = ("med1", "med2")
MEDICATION_REFERENCES = (
    "Medication/med1",
    "Medication/med2/_history/1",
    "https://ehr.example.org/fhir/Medication/med1",
    "Medication/med9",
)
MEDICATION_CODES = ("L01BC06", "H01CB02")  # capecitabine; octreotide, another kind


@st.composite
def therapy(draw: st.DrawFn, n: int) -> dict[str, Any]:
    r: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": f"m{n}",
        "status": "completed",
        "medicationCodeableConcept": {"coding": [{"system": ATC, "code": "L01BC06"}]},
        "subject": {"reference": f"Patient/{draw(st.sampled_from(PATIENTS))}"},
        "effectivePeriod": {"start": draw(WHEN), "end": draw(WHEN)},
    }
    if draw(st.booleans()):
        del r["medicationCodeableConcept"]
        r["medicationReference"] = {"reference": draw(st.sampled_from(MEDICATION_REFERENCES))}
    return r


@st.composite
def medication(draw: st.DrawFn) -> dict[str, Any]:
    code = draw(st.sampled_from(MEDICATION_CODES))
    return {
        "resourceType": "Medication",
        "id": draw(st.sampled_from(MEDICATION_IDS)),
        "code": {"coding": [{"system": ATC, "code": code}]},
    }


@st.composite
def cohort(draw: st.DrawFn) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": pid, "birthDate": "1960-01-01", "gender": "female"}
        for pid in PATIENTS
    ]
    for n in range(draw(st.integers(0, 14))):
        out.append(draw(st.one_of(lab(n), condition(n), therapy(n))))
    out.extend(draw(st.lists(medication(), max_size=4)))
    out.append({"resourceType": "Observation", "id": "orphan", "status": "final"})
    return out


def outputs(paths: list[Path]) -> tuple[str, ...]:
    tally = Tally()
    result = screen(COMPILED, read_fhir(paths, EXTRACTOR, AS_OF, tally), AS_OF, tally=tally)
    return attrition_text(result), patients_csv(result), patients_jsonl(result)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(cohort(), st.randoms(use_true_random=False))
def test_shuffling_never_changes_output(
    tmp_path_factory: Any, resources: list[dict[str, Any]], rnd: Any
) -> None:
    tmp = tmp_path_factory.mktemp("shuffle")
    shuffled = resources[:]
    rnd.shuffle(shuffled)
    results = []
    folder = tmp / "bundle"
    nd = tmp / "ndjson"
    folder.mkdir()
    nd.mkdir()
    for items in (resources, shuffled):  # the same paths: only the order differs
        bundle = {"resourceType": "Bundle", "type": "collection"}
        bundle["entry"] = [{"resource": r} for r in items]
        (folder / "cohort.json").write_text(json.dumps(bundle))
        # the same resources as NDJSON, over two files
        cut = len(items) // 2
        (nd / "1.ndjson").write_text("".join(json.dumps(r) + "\n" for r in items[:cut]))
        (nd / "2.ndjson").write_text("".join(json.dumps(r) + "\n" for r in items[cut:]))
        bundled = outputs([folder / "cohort.json"])
        lined = outputs([nd / "1.ndjson", nd / "2.ndjson"])
        results.append((bundled, lined))
    (bundled_a, lined_a), (bundled_b, lined_b) = results
    assert bundled_a == bundled_b
    # NDJSON: the same verdicts and tables; only the file names in the path column differ
    assert lined_a[0] == lined_b[0]
    assert [line.split(",")[2:] for line in lined_a[1].splitlines()] == [
        line.split(",")[2:] for line in lined_b[1].splitlines()
    ]
    assert "read 1 files (1 usable, 0 unusable)" in bundled_a[0]
