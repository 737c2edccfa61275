"""Malformed input never raises: junk patient records and junk FHIR resources."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from critlang.backends.python import compile_protocol
from critlang.data.fhir import Extractor
from critlang.data.fhir_input import Tally, groups_from_bytes
from critlang.data.records import RecordError, read_record
from critlang.evaluate import Evaluator
from critlang.frontend import analyse_file
from helpers import TRIAL

CHECKED = analyse_file(TRIAL / "current.crit").result
assert CHECKED is not None
EVALUATOR = Evaluator(compile_protocol(CHECKED))
EXTRACTOR = Extractor(CHECKED)
AS_OF = dt.date(2026, 11, 27)

ATOMS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "1e400",
            "nan",
            "inf",
            "-0",
            "9999-12-31",
            "0001-01-01",
            "2026-02-30",
            "G2",
            "II",
            "x10^9/L",
            "mmol/L",
            "K/uL",
            "",
            "abc",
            "10*3/uL",
            "{1.73_m2}",
            "http://loinc.org",
            "718-7",
            "777-3",
            "active",
            "entered-in-error",
            "Patient/p",
            "urn:uuid:p",
        ]
    ),
)
KEYS = st.sampled_from(
    [
        "value",
        "unit",
        "date",
        "reference_range",
        "low",
        "high",
        "kind",
        "end",
        "start",
        "krenning",
        "source",
        "code",
        "system",
        "coding",
        "resourceType",
        "status",
        "subject",
        "reference",
        "valueQuantity",
        "effectiveDateTime",
        "clinicalStatus",
        "id",
    ]
)
JUNK = st.recursive(
    ATOMS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=10,
)


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.dictionaries(st.sampled_from(sorted(CHECKED.record_types)), JUNK, max_size=10),
    st.dictionaries(st.sampled_from(["prrt_start", "enrollment"]), JUNK, max_size=2),
)
def test_junk_patient_records(facts: dict[str, Any], anchors: dict[str, Any]) -> None:
    try:
        record = read_record(CHECKED, {"facts": facts, "anchors": anchors}, AS_OF)
    except RecordError:
        return
    result = EVALUATOR.evaluate(record)
    json.dumps(result.to_dict())
    assert result.verdict in {"eligible", "ineligible", "undetermined"}


CODES = st.fixed_dictionaries(
    {
        "system": st.sampled_from(
            ["http://loinc.org", "http://snomed.info/sct", "http://www.whocc.no/atc"]
        ),
        "code": st.sampled_from(["718-7", "777-3", "19943007", "1558-6", "L01BC06", "5902-2"]),
    }
)
CONCEPT = st.one_of(JUNK, st.fixed_dictionaries({"coding": st.lists(CODES, max_size=2)}))
OBSERVATION = st.fixed_dictionaries(
    {
        "resourceType": st.sampled_from(
            [
                "Observation",
                "Condition",
                "MedicationRequest",
                "MedicationStatement",
                "MedicationAdministration",
                "Procedure",
            ]
        ),
        "code": CONCEPT,
    },
    optional={
        name: JUNK
        for name in (
            "status",
            "valueQuantity",
            "effectiveDateTime",
            "clinicalStatus",
            "referenceRange",
            "subject",
            "effectivePeriod",
            "performedPeriod",
            "performedDateTime",
            "dispenseRequest",
            "authoredOn",
            "verificationStatus",
            "valueInteger",
            "valueBoolean",
            "issued",
        )
    }
    | {"medicationCodeableConcept": CONCEPT},
)


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.one_of(OBSERVATION, JUNK), max_size=6))
def test_junk_fhir_resources(resources: list[Any]) -> None:
    entries = [{"resourceType": "Patient", "id": "p"}]
    for r in resources:
        if isinstance(r, dict):
            entries.append({**r, "subject": {"reference": "Patient/p"}})
        else:
            entries.append(r)
    bundle = {"resourceType": "Bundle", "entry": [{"resource": r} for r in entries]}
    tally = Tally()
    try:
        data = json.dumps(bundle, allow_nan=False).encode()
    except ValueError:  # NaN and Infinity are not JSON (RFC 8259): the file is unusable
        data = json.dumps(bundle).encode()
        assert list(groups_from_bytes(data, "junk.json", tally)) == []
        assert tally.unusable_files[0][1].startswith("not JSON")
        return
    groups = list(groups_from_bytes(data, "junk.json", tally))
    assert tally.reconciles() and len(groups) == 1
    native = EXTRACTOR.patient(groups[0], AS_OF).record
    record = read_record(CHECKED, native, AS_OF)
    EVALUATOR.evaluate(record)
