"""Bundle types, versions, deletions, duplicate ids, nested Bundles and resources that
name no patient (docs/fhir.md, "Bundle types, versions, duplicates"; fhir_bundles.py).

FHIR R4 sources: bundle.html (Bundle.type, Bundle.entry.request/response/search, bdl-7),
http.html#history (versions, DELETE), http.html#trules, references.html.
Every case runs the entries in file order and reversed, asserts the value read (or its
absence with a diagnostic) and the reading counts, which must reconcile.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from critlang.backends.python import compile_protocol
from critlang.data.fhir import Extractor, FhirPatient, Tally, read_fhir
from critlang.frontend import analyse_text
from critlang.screen import attrition_text, reading_details, reading_lines, screen
from helpers import HB_CIRRHOSIS_CAPECITABINE, write_fhir

PROTOCOL = (
    """protocol "T"
  title "bundles"
  version "1"
  date 2024-01-01
  sex all
  minimum age 18 years
  healthy volunteers no

"""
    + HB_CIRRHOSIS_CAPECITABINE
    + """
exclusion criteria
E1 "anaemia"
  rule hemoglobin < 8.0 g/dL
E2 "cirrhosis"
  rule cirrhosis
"""
)
AS_OF = dt.date(2024, 6, 1)
CHECKED = analyse_text(PROTOCOL, "t.crit").result
assert CHECKED is not None
COMPILED = compile_protocol(CHECKED)
LOINC, SNOMED = "http://loinc.org", "http://snomed.info/sct"
BASE = "http://example.org/fhir"


def patient(pid: str = "p1", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": "1970-01-01"} | extra


def hb(value: float, rid: str = "o1", subject: Any = "Patient/p1", **extra: Any) -> dict:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "718-7"}]},
        "subject": subject if isinstance(subject, dict) else {"reference": subject},
        "effectiveDateTime": "2024-05-20T08:00:00Z",
        "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "g/dL"},
    } | extra


def cirrhosis(rid: str = "c1", subject: Any = "Patient/p1", **extra: Any) -> dict:
    return {
        "resourceType": "Condition",
        "id": rid,
        "code": {"coding": [{"system": SNOMED, "code": "19943007"}]},
        "subject": subject if isinstance(subject, dict) else {"reference": subject},
        "onsetDateTime": "2020-01-01",
    } | extra


def entry(r: dict[str, Any], **parts: Any) -> dict[str, Any]:
    return {"fullUrl": f"{BASE}/{r['resourceType']}/{r['id']}", "resource": r} | parts


def delete(kind: str, rid: str, **parts: Any) -> dict[str, Any]:
    return {
        "fullUrl": f"{BASE}/{kind}/{rid}",
        "request": {"method": "DELETE", "url": f"{kind}/{rid}"},
    } | parts


def bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def read(
    tmp_path: Path, files: dict[str, Any], absent: tuple[str, ...] = ()
) -> tuple[dict[str, FhirPatient], Tally]:
    paths = write_fhir(tmp_path, files.items())
    tally = Tally()
    out = {
        f"{p.id}@{Path(p.path).name}": p
        for p in read_fhir(paths, Extractor(CHECKED, absent), AS_OF, tally)
    }
    assert tally.reconciles(), tally.to_dict()
    return out, tally


def both_orders(tmp_path: Path, b: dict[str, Any], **kw: Any) -> list[tuple[dict, Tally]]:
    """The same Bundle in file order and reversed: both must read the same."""
    out = []
    for i, entries in enumerate((b["entry"], b["entry"][::-1])):
        d = tmp_path / str(i)
        d.mkdir(parents=True)
        out.append(read(d, {"b.json": b | {"entry": entries}}, **kw))
    (p0, t0), (p1, t1) = out

    def said(message: str) -> str:
        # messages name an entry's place in the file, which reversing moves, and the file
        message = message.replace(f"{tmp_path}/0/", "").replace(f"{tmp_path}/1/", "")
        return re.sub(r"entry \d+", "entry N", message)

    def seen(found: dict[str, FhirPatient]) -> dict[str, Any]:
        return {
            k: (v.record, sorted(said(x.message) for x in v.problems)) for k, v in found.items()
        }

    assert seen(p0) == seen(p1)
    assert t0.to_dict() == t1.to_dict()
    return out


def facts(p: FhirPatient) -> dict[str, Any]:
    return p.record["facts"]


def messages(p: FhirPatient, fact: str) -> list[str]:
    return [x.message for x in p.problems if x.fact == fact]


# ------------------------------------------------------------------ history (F1, F2)


def test_history_delete_newest_the_resource_is_not_used(tmp_path: Path) -> None:
    b = bundle(
        "history",
        entry(patient()),
        delete("Condition", "c1", response={"status": "204", "etag": 'W/"2"'}),
        entry(cirrhosis(meta={"versionId": "1"}), request={"method": "POST", "url": "Condition"}),
    )
    for found, tally in both_orders(tmp_path, b):
        p = found["p1@b.json"]
        assert "cirrhosis" not in facts(p) and messages(p, "cirrhosis") == []
        assert tally.not_used == {
            "its resource is deleted (its newest entry is a DELETE, R4 http.html#history)": 1
        }
        assert (tally.resources, tally.assigned, tally.not_resources) == (2, 1, 1)
    # feasibility mode: a deleted resource is absent, so "no" is right
    found, _ = both_orders(tmp_path / "a", b, absent=("conditions",))[0]
    assert facts(found["p1@b.json"])["cirrhosis"] is False


def test_history_delete_without_a_version_makes_the_resource_unusable(tmp_path: Path) -> None:
    b = bundle(
        "history",
        entry(patient()),
        delete("Condition", "c1", response={"status": "204"}),  # no etag, no lastModified
        entry(cirrhosis(meta={"versionId": "1"})),
    )
    for found, tally in both_orders(tmp_path, b, absent=("conditions",)):
        p = found["p1@b.json"]
        assert "cirrhosis" not in facts(p)  # unknown, even with --absent-means-no
        (msg,) = messages(p, "cirrhosis")
        assert msg.startswith("Condition/c1 cannot be used: its versions cannot be ordered")
        assert tally.assigned == 2 and not tally.not_used


@pytest.mark.parametrize("by", ["versionId", "lastUpdated", "etag"])
def test_history_newest_version_decides(tmp_path: Path, by: str) -> None:
    def version(n: int, value: float) -> dict[str, Any]:
        if by == "versionId":
            return entry(hb(value, meta={"versionId": str(n)}))
        if by == "lastUpdated":
            return entry(hb(value, meta={"lastUpdated": f"2024-05-2{n}T10:00:00+02:00"}))
        return entry(hb(value), response={"status": "200", "etag": f'W/"{n}"'})

    # newest first, as servers return a history; then reversed
    b = bundle("history", entry(patient()), version(2, 12.0), version(1, 7.0))
    for found, tally in both_orders(tmp_path, b):
        (value,) = facts(found["p1@b.json"])["hemoglobin"]
        assert (value["value"], value["unit"]) == (12.0, "g/dL")
        assert sum(tally.not_used.values()) == 1 and tally.assigned == 2


def test_history_newest_version_entered_in_error_or_refuted_retracts(tmp_path: Path) -> None:
    b = bundle(
        "history",
        entry(patient()),
        entry(hb(7.0, status="entered-in-error", meta={"versionId": "2"})),
        entry(hb(7.0, meta={"versionId": "1"})),
        entry(
            cirrhosis(
                meta={"versionId": "2"},
                verificationStatus={"coding": [{"code": "refuted"}]},
            )
        ),
        entry(cirrhosis(meta={"versionId": "1"})),
    )
    for found, _ in both_orders(tmp_path, b):
        p = found["p1@b.json"]
        assert "hemoglobin" not in facts(p) and "cirrhosis" not in facts(p)


def test_versions_whose_time_and_number_disagree_are_unusable(tmp_path: Path) -> None:
    b = bundle(
        "history",
        entry(patient()),
        entry(hb(12.0, meta={"versionId": "2", "lastUpdated": "2024-05-20T10:00:00Z"})),
        entry(hb(7.0, meta={"versionId": "1", "lastUpdated": "2024-05-21T10:00:00Z"})),
    )
    for found, _ in both_orders(tmp_path, b):
        p = found["p1@b.json"]
        assert "hemoglobin" not in facts(p)
        assert "versions cannot be ordered" in messages(p, "hemoglobin")[0]


def test_history_patient_versions_one_patient(tmp_path: Path) -> None:
    b = bundle(
        "history",
        entry(patient(gender="male", meta={"versionId": "1"})),
        entry(patient(gender="female", meta={"versionId": "2"})),
        entry(hb(7.0)),
    )
    for found, tally in both_orders(tmp_path, b):
        assert list(found) == ["p1@b.json"] and tally.patients == 1
        assert found["p1@b.json"].problems == []  # not "appears more than once"


def test_transaction_that_deletes_and_writes_one_resource_is_a_conflict(tmp_path: Path) -> None:
    b = bundle(
        "transaction",
        entry(patient(), request={"method": "PUT", "url": "Patient/p1"}),
        delete("Observation", "o1"),
        entry(hb(7.0), request={"method": "PUT", "url": "Observation/o1"}),
    )
    for found, _ in both_orders(tmp_path, b):
        p = found["p1@b.json"]
        assert "hemoglobin" not in facts(p)
        assert "both deletes and writes" in messages(p, "hemoglobin")[0]


def test_batch_response_failed_entry_not_used(tmp_path: Path) -> None:
    b = bundle(
        "batch-response",
        entry(patient(), response={"status": "200 OK"}),
        entry(hb(7.0), response={"status": "404 Not Found"}),
    )
    for found, tally in both_orders(tmp_path, b):
        assert "hemoglobin" not in facts(found["p1@b.json"])
        assert tally.not_used == {
            "its transaction or batch entry failed (response.status not 2xx)": 1
        }


def test_searchset_include_read_outcome_reported(tmp_path: Path) -> None:
    outcome = {"resourceType": "OperationOutcome", "id": "oo", "issue": []}
    b = bundle(
        "searchset",
        entry(hb(7.0), search={"mode": "match"}),
        entry(patient(), search={"mode": "include"}),
        entry(outcome, search={"mode": "outcome"}),
    )
    for found, tally in both_orders(tmp_path, b):
        (value,) = facts(found["p1@b.json"])["hemoglobin"]
        assert (value["value"], value["unit"]) == (7.0, "g/dL")
        assert any("OperationOutcome" in x for x in tally.entry_problems)
        assert tally.unassigned == {"not patient data (OperationOutcome)": 1}


# ------------------------------------------------------------ duplicate ids (F15)


def test_one_id_twice_with_different_values_is_a_conflict(tmp_path: Path) -> None:
    b = bundle("collection", entry(patient()), entry(hb(12.0)), entry(hb(7.0)))
    for found, tally in both_orders(tmp_path, b):
        p = found["p1@b.json"]
        assert "hemoglobin" not in facts(p)
        # each copy unusable, each with its diagnostic (its date may be the newest)
        said = messages(p, "hemoglobin")
        assert len(said) == 2 and all(
            m.startswith("Observation/o1 cannot be used: its id is given more than once")
            and "bdl-7" in m
            and "one of 2 entries" in m
            for m in said
        ), said
        assert (tally.resources, tally.assigned, sum(tally.not_used.values())) == (3, 3, 0)
        assert sum("Observation/o1 cannot be used" in x for x in reading_details(tally)) == 2


def test_identical_copies_are_one_resource(tmp_path: Path) -> None:
    b = bundle("collection", entry(patient()), entry(hb(7.0)), entry(hb(7.0)))
    for found, tally in both_orders(tmp_path, b):
        (value,) = facts(found["p1@b.json"])["hemoglobin"]
        assert (value["value"], value["unit"]) == (7.0, "g/dL")
        assert tally.not_used == {"an identical copy of another entry of the same resource": 1}


def test_one_id_twice_in_ndjson_is_a_conflict(tmp_path: Path) -> None:
    for lines in ([patient(), hb(12.0), hb(7.0)], [hb(7.0), hb(12.0), patient()]):
        found, tally = read(tmp_path, {"x.ndjson": lines})
        p = found["p1@x.ndjson"]
        assert "hemoglobin" not in facts(p) and len(messages(p, "hemoglobin")) == 2
        assert "line 2, one of 2 entries" in " ".join(messages(p, "hemoglobin"))
        assert (tally.assigned, sum(tally.not_used.values())) == (3, 0)


# ------------------------------------------------------------ nested Bundles (F19)


def test_a_bundle_in_a_bundle_is_read(tmp_path: Path) -> None:
    inner = bundle("collection", entry(patient("p9")), entry(hb(7.0, "o9", "Patient/p9")))
    inner["id"] = "inner1"
    b = bundle("collection", entry(patient()), entry(hb(12.0)), entry(inner))
    for found, tally in both_orders(tmp_path, b):
        assert sorted(found) == ["p1@b.json", "p9@b.json"]
        (value,) = facts(found["p9@b.json"])["hemoglobin"]
        assert (value["value"], value["unit"]) == (7.0, "g/dL")
        assert "read from the Bundle at entry" in found["p9@b.json"].problems[0].message
        assert (tally.resources, tally.assigned, tally.patients) == (4, 4, 2)
        assert tally.nested_bundles == 1 and not tally.unassigned
        assert "  1 Bundles inside Bundles, read as Bundles of their own" in reading_lines(tally)


def test_a_bundle_line_in_ndjson_is_read(tmp_path: Path) -> None:
    inner = bundle("collection", entry(patient("p9")), entry(hb(7.0, "o9", "Patient/p9")))
    found, tally = read(tmp_path, {"x.ndjson": [patient(), inner]})
    assert sorted(found) == ["p1@x.ndjson", "p9@x.ndjson"]
    assert (tally.resources, tally.assigned, tally.patients, tally.nested_bundles) == (3, 3, 2, 1)


# ------------------------------------------- resources that name no patient (F12, F24)

IDENTIFIER = {"identifier": {"system": "http://hosp.example/mrn", "value": "42"}}


@pytest.mark.parametrize(
    "subject",
    [IDENTIFIER, {"display": "Jane"}, {"reference": "Patient?identifier=mrn|42"}, None],
)
def test_unassigned_bound_resource_blocks_absent_means_no(tmp_path: Path, subject: Any) -> None:
    c = cirrhosis()
    if subject is None:
        del c["subject"]
    else:
        c["subject"] = subject
    b = bundle("collection", entry(patient()), entry(patient("p2")), entry(c))
    for found, tally in both_orders(tmp_path, b, absent=("conditions",)):
        for pid in ("p1", "p2"):
            p = found[f"{pid}@b.json"]
            assert "cirrhosis" not in facts(p)  # unknown, not "no"
            (msg,) = messages(p, "cirrhosis")
            assert "may be this patient's" in msg and "Condition/c1" in msg
        assert sum(tally.unassigned.values()) == 1


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2024-05-25T08:00:00Z", "unknown"),  # newer than the value used: may be the newest
        (None, "unknown"),  # undated: may be the newest
        ("2024-05-10T08:00:00Z", "not met"),  # older than the value used: cannot change it
    ],
)
def test_an_observation_that_names_no_patient_may_be_the_newest_value(
    tmp_path: Path, when: str | None, expected: str
) -> None:
    """A stray lab (identifier-only subject) may be p1's: when it may be newer than p1's
    own value, the fact is unknown ('may be the newest'), never decided by the older one."""
    stray = hb(7.0, "o2", IDENTIFIER)
    if when is None:
        del stray["effectiveDateTime"]
    else:
        stray["effectiveDateTime"] = when
    b = bundle("collection", entry(patient()), entry(hb(9.0)), entry(stray))
    for found, tally in both_orders(tmp_path, b):
        result = screen(COMPILED, [found["p1@b.json"]], AS_OF, tally=tally)
        (row,) = result.patients
        assert dict(zip(result.criteria, row.statuses, strict=True))["E1"] == expected
        if expected == "unknown":
            assert any("names no patient of the data" in p for p in row.problems), row.problems


def test_unassigned_resource_of_a_patient_not_in_the_data_does_not_block(tmp_path: Path) -> None:
    b = bundle("collection", entry(patient()), entry(cirrhosis(subject="Patient/other")))
    for found, _ in both_orders(tmp_path, b, absent=("conditions",)):
        assert facts(found["p1@b.json"])["cirrhosis"] is False


def test_unassigned_bound_resource_makes_a_resolved_no_unknown(tmp_path: Path) -> None:
    resolved = cirrhosis("c0", clinicalStatus={"coding": [{"code": "resolved"}]})
    b = bundle(
        "collection", entry(patient()), entry(resolved), entry(cirrhosis(subject=IDENTIFIER))
    )
    for found, _ in both_orders(tmp_path, b):
        p = found["p1@b.json"]
        assert "cirrhosis" not in facts(p) and messages(p, "cirrhosis")


def test_unassigned_in_ndjson_blocks_every_patient_and_names_file_and_line(tmp_path: Path) -> None:
    found, tally = read(
        tmp_path,
        {
            "a.ndjson": [patient(), patient("p2")],
            "b.ndjson": [hb(7.0, subject="Patient/gone"), cirrhosis(subject=IDENTIFIER)],
        },
        absent=("conditions",),
    )
    for pid in ("p1", "p2"):
        p = found[f"{pid}@a.ndjson"]
        assert "cirrhosis" not in facts(p)
        assert "b.ndjson line 2: Condition/c1" in messages(p, "cirrhosis")[0]
    details = reading_details(tally)
    # F24: the file and line, never the patient key it names
    assert any(
        "(its subject is a patient that is not in the data)" in d
        and d.endswith("b.ndjson line 1: Observation/o1")
        for d in details
    ), details
    assert (tally.resources, tally.assigned, sum(tally.unassigned.values())) == (4, 2, 2)


@pytest.mark.parametrize("order", [1, -1])
def test_screen_verdicts_and_reading_line(tmp_path: Path, order: int) -> None:
    # F1 and F2 as a user meets them: the deleted cirrhosis and the superseded anaemic
    # value decide nothing; the reading line says what was not used
    entries = [
        entry(patient()),
        entry(hb(12.0, meta={"versionId": "2"})),
        entry(hb(7.0, meta={"versionId": "1"})),
        delete("Condition", "c1", response={"status": "204", "etag": 'W/"2"'}),
        entry(cirrhosis(meta={"versionId": "1"})),
    ][::order]
    (tmp_path / "b.json").write_text(json.dumps(bundle("history", *entries)))
    tally = Tally()
    patients = read_fhir([tmp_path / "b.json"], Extractor(CHECKED), AS_OF, tally)
    result = screen(COMPILED, list(patients), AS_OF, tally=tally)
    (row,) = result.patients
    assert row.verdict == "undetermined"  # E2 cirrhosis unknown, E1 not met
    assert dict(zip(result.criteria, row.statuses, strict=True)) == {
        "E1": "not met",
        "E2": "unknown",
    }
    assert attrition_text(result).splitlines()[0] == (
        "read 1 files (1 usable, 0 unusable), 4 FHIR resources (2 assigned to patients, "
        "0 unassigned, 2 not used), 1 patients"
    )


def test_a_delete_entry_carrying_a_resource_still_deletes(tmp_path: Path) -> None:
    b = bundle(
        "history",
        entry(patient()),
        entry(cirrhosis(), request={"method": "DELETE", "url": "Condition/c1"})
        | {"response": {"status": "204", "etag": 'W/"2"'}},
        entry(cirrhosis(meta={"versionId": "1"})),
    )
    for found, tally in both_orders(tmp_path, b):
        assert "cirrhosis" not in facts(found["p1@b.json"])
        assert sum(tally.not_used.values()) == 2 and tally.assigned == 1


def test_unassigned_therapy_keeps_a_complete_list_open(tmp_path: Path) -> None:
    therapy = {
        "resourceType": "MedicationStatement",
        "id": "m1",
        "status": "completed",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.whocc.no/atc", "code": "L01BC06"}]
        },
        "subject": IDENTIFIER,
        "effectivePeriod": {"start": "2024-01-01", "end": "2024-02-01"},
    }
    b = bundle("collection", entry(patient()), entry(therapy))
    for found, _ in both_orders(tmp_path, b, absent=("medications",)):
        p = found["p1@b.json"]
        assert "prior_therapies" not in facts(p)  # not [] (complete and empty)
        assert "may be this patient's" in messages(p, "prior_therapies")[0]
    found, _ = read(tmp_path, {"c.json": bundle("collection", entry(patient()))}, ("medications",))
    assert facts(found["p1@c.json"])["prior_therapies"] == []  # control: nothing unassigned


def _member_twice(text: str, name: str, first: Any, second: Any, where: str) -> str:
    """`text` (JSON) with `"name": first` written before `"name": second` in the object
    that `where` (the member just before, as JSON text) begins."""
    pair = f'"{name}": {json.dumps(first)}, "{name}": {json.dumps(second)}, '
    assert where in text
    return text.replace(where, pair + where, 1)


@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize(
    ("name", "first", "second", "where"),
    [
        ("entry", [{"resource": hb(7.0, "o9")}], None, '"resourceType": "Bundle"'),
        ("type", "batch-response", "collection", '"resourceType": "Bundle"'),
        ("resource", hb(7.0, "o9"), hb(12.0, "o9"), '"fullUrl": "urn:uuid:x"'),
        ("response", {"status": "201"}, {"status": "400"}, '"fullUrl": "urn:uuid:x"'),
        (
            "request",
            {"method": "PUT", "url": "Observation/o9"},
            {"method": "DELETE", "url": "Observation/o9"},
            '"fullUrl": "urn:uuid:x"',
        ),
    ],
)
def test_a_bundle_or_entry_member_given_twice_makes_the_file_unusable(
    tmp_path: Path, name: str, first: Any, second: Any, where: str, swap: bool
) -> None:
    """JSON readers keep the last copy: which entries a Bundle holds, its type, an
    entry's resource, request or response would be decided by key order (breaker7 F3).
    Either order: the file is unusable, naming the key (RFC 8259 section 4)."""
    if swap:
        first, second = second, first
    if name == "entry":  # the whole entry array given twice: the real one and another
        b = bundle("collection", entry(patient()), entry(hb(12.0)))
        text = json.dumps(b).replace(
            '"entry": ', f'"entry": {json.dumps(first or [])}, "entry": ', 1
        )
        if swap:
            text = json.dumps(b).replace(
                '"type": "collection", ', '"type": "collection", "entry": [], ', 1
            )
    else:
        b = bundle(
            "collection", entry(patient()), {"fullUrl": "urn:uuid:x", "resource": hb(9.0, "o9")}
        )
        text = _member_twice(json.dumps(b), name, first, second, where)
    (tmp_path / "b.json").write_text(text)
    tally = Tally()
    found = list(read_fhir([tmp_path / "b.json"], Extractor(CHECKED), AS_OF, tally))
    assert found == []
    ((_, why),) = tally.unusable_files
    assert why.startswith(f"duplicate JSON keys '{name}' in the Bundle or its entries")
