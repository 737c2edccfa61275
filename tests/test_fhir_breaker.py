"""Regression tests from a fresh user's attempts to break FHIR reading (issue 9).

Each test names the input a clinical-informatics user tried, and asserts what the FHIR R4
element means; the small protocol below uses the shared lab bindings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from critlang.cli import main

PROTOCOL = """protocol "TEST-B9"
  title "breaker"
  version "1"
  date 2024-01-01
  sex all
  minimum age 18 years
  healthy volunteers no

codes birth_date: fhir "Patient.birthDate"
codes wbc: loinc "6690-2"
codes serum_creatinine: loinc "2160-0"

fact birth_date: date
fact wbc: quantity x10^9/L
  measured within 28 days before enrollment
fact serum_creatinine: quantity mg/dL
  molar mass 113.12 g/mol source "PubChem CID 588"
  measured within 28 days before enrollment
fact cirrhosis: boolean
  history current
fact bp: blood pressure
codes cirrhosis: snomed "19943007"
codes bp: loinc "85354-9"

define age = elapsed_years(birth_date, enrollment)

inclusion criteria
I1 "age"
  rule age >= 18 years
I2 "wbc"
  rule wbc >= 2 x10^9/L
exclusion criteria
E1 "creat"
  rule serum_creatinine > 1.5 mg/dL
E2 "cirrhosis"
  rule cirrhosis
E3 "bp"
  rule bp > 140/90 mm[Hg]
"""
AS_OF = "2024-01-20"
UCUM = "http://unitsofmeasure.org"


def patient(pid: str = "p1", **extra: Any) -> dict:
    return {"resourceType": "Patient", "id": pid, "birthDate": "1970-01-01", **extra}


def obs(
    code: str, date: str | None = "2024-01-10T10:00:00Z", subject: str = "Patient/p1", **extra: Any
) -> dict:
    r: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": subject},
    }
    if date is not None:
        r["effectiveDateTime"] = date
    r.update(extra)
    return r


def wbc(value: float, comparator: str | None = None, **extra: Any) -> dict:
    q: dict[str, Any] = {"value": value, "unit": "10*3/uL", "system": UCUM, "code": "10*3/uL"}
    if comparator:
        q["comparator"] = comparator
    return obs("6690-2", valueQuantity=q, **extra)


def bundle(*resources: dict, kind: str = "collection") -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": [{"resource": r} for r in resources]}


@pytest.fixture
def protocol(tmp_path: Path) -> Path:
    p = tmp_path / "p.crit"
    p.write_text(PROTOCOL)
    return p


def screen(
    tmp_path: Path, protocol: Path, *data: Path, extra: tuple[str, ...] = ()
) -> tuple[int, list[dict]]:
    out = tmp_path / "out.jsonl"
    rc = main(
        ["screen", "--as-of", AS_OF, str(protocol), *map(str, data), "--patients", str(out), *extra]
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return rc, rows


def write(tmp_path: Path, name: str, data: Any) -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


def test_eval_undetermined_blood_pressure_fact_has_no_traceback(
    tmp_path: Path, protocol: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A protocol with a `blood pressure` fact: `eval` of a record without it listed what
    it needs by probing the fact with booleans, and the generated code raised TypeError."""
    rec = write(
        tmp_path, "r.json", {"id": "x", "facts": {"bp": {"systolic": 130, "unit": "mm[Hg]"}}}
    )
    assert main(["eval", "--as-of", AS_OF, str(protocol), str(rec)]) == 0
    out = capsys.readouterr().out
    # systolic 130 alone leaves `bp > 140/90` open: the diastolic could still exclude
    assert "UNDETERMINED" in out and "needs bp" in out
    empty = write(tmp_path, "e.json", {"id": "y", "facts": {}})
    assert main(["eval", "--as-of", AS_OF, str(protocol), str(empty)]) == 0
    assert "needs bp" in capsys.readouterr().out


def test_eval_of_a_fhir_bundle_is_refused_not_read_as_an_empty_record(
    tmp_path: Path, protocol: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`critlang eval PROTOCOL bundle.json` read the Bundle as a native record with no
    facts: "undetermined, needs everything", though the bundle has the values."""
    b = write(tmp_path, "b.json", bundle(patient(), wbc(1.0)))
    assert main(["eval", "--as-of", AS_OF, str(protocol), str(b)]) == 2
    captured = capsys.readouterr()
    assert "FHIR Bundle" in captured.err and "critlang screen" in captured.err
    assert "UNDETERMINED" not in captured.out


OBS_DUP_VALUE = (
    '{"resourceType":"Observation","status":"final","code":{"coding":[{"system":'
    '"http://loinc.org","code":"6690-2"}]},"subject":{"reference":"Patient/p1"},'
    '"effectiveDateTime":"2024-01-10","valueQuantity":{"value":1.0,"value":5.0,'
    '"unit":"10*3/uL","system":"http://unitsofmeasure.org","code":"10*3/uL"}}'
)


def _bundle_text(*resources: str) -> str:
    entries = ",".join(f'{{"resource":{r}}}' for r in resources)
    return f'{{"resourceType":"Bundle","type":"collection","entry":[{entries}]}}'


@pytest.mark.parametrize("layout", ["bundle", "ndjson", "array"])
def test_duplicate_json_keys_in_a_used_resource_are_a_conflict(
    tmp_path: Path, protocol: Path, layout: str
) -> None:
    """`"value": 1.0, "value": 5.0`: JSON readers keep the last one in silence, so the
    wbc read 5.0 (met) by file order. Either value could be meant: unknown, with a
    diagnostic naming the key (RFC 8259 section 4; R4 json.html)."""
    pat = json.dumps(patient())
    if layout == "bundle":
        text = _bundle_text(pat, OBS_DUP_VALUE)
        data = write(tmp_path, "b.json", text)
    elif layout == "ndjson":
        data = write(tmp_path, "b.ndjson", f"{pat}\n{OBS_DUP_VALUE}\n")
    else:
        data = write(tmp_path, "b.json", f"[{pat},{OBS_DUP_VALUE}]")
    rc, (row,) = screen(tmp_path, protocol, data)
    assert rc == 0
    assert row["criteria"]["I2"] == "unknown"
    assert any("duplicate JSON keys 'value'" in p for p in row["problems"])


def test_duplicate_status_or_birth_date_is_not_read_by_file_order(
    tmp_path: Path, protocol: Path
) -> None:
    """`"status":"entered-in-error","status":"final"` was used as final; a Patient with
    two birthDates gave the last one's age."""
    obs_text = OBS_DUP_VALUE.replace('"value":1.0,"value":5.0', '"value":1.0').replace(
        '"status":"final"', '"status":"entered-in-error","status":"final"'
    )
    pat = '{"resourceType":"Patient","id":"p1","birthDate":"1970-01-01","birthDate":"2010-01-01"}'
    text = _bundle_text(pat, obs_text)
    rc, (row,) = screen(tmp_path, protocol, write(tmp_path, "b.json", text))
    assert rc == 0 and row["verdict"] == "undetermined"
    assert row["criteria"]["I1"] == "unknown" and row["criteria"]["I2"] == "unknown"
    assert any("'status'" in p for p in row["problems"])
    assert any(p.startswith("birth_date:") and "'birthDate'" in p for p in row["problems"])


def test_no_duplicate_keys_no_change(tmp_path: Path, protocol: Path) -> None:
    """The check marks nothing in clean data: the same bundle without duplicates decides."""
    b = write(tmp_path, "b.json", bundle(patient(), wbc(1.0)))
    rc, (row,) = screen(tmp_path, protocol, b)
    assert rc == 0 and row["criteria"]["I2"] == "not met" and row["problems"] == []


@pytest.mark.parametrize(
    ("text", "duplicated"),
    [
        ('{"resourceType":"Observation","value":1.0,"value":5.0}', "'value'"),
        # spellings the fast re-encoding test cannot match go to the exact check
        ('{"resourceType":"Observation","a":"\\u00e9","b":{"v":2.50,"v":2.50}}', "'v'"),
        ('{"resourceType":"Observation", "x" : [ {"k":1e400,"k":1} ]}', "'k'"),
        ('{"resourceType":"Observation","a":"\\u00e9","b":{"v":2.50}}', None),
        ('{"resourceType":"Observation","b":{"v":1.0E2},"c":[1, 2]}', None),
        ('{"resourceType":"Observation","b":{"v":"x"},"v":"x"}', None),
    ],
)
def test_duplicate_keys_exact_on_every_spelling(text: str, duplicated: str | None) -> None:
    """duplicate_keys finds a member named twice whatever the numbers and escapes look
    like, and marks nothing else (RFC 8259 section 4)."""
    from critlang.data.fhir_decode import Resource
    from critlang.data.fhir_duplicates import duplicate_keys

    r = Resource(resourceType="Observation", raw_=msgspec.Raw(text.encode()))
    duplicate_keys(r)
    if duplicated is None:
        assert r.malformed is None
    else:
        assert r.malformed is not None and duplicated in r.malformed


NEWER_LOW_WBC = (
    '{"resourceType":"Observation","status":"final","code":{"coding":[{"system":'
    '"http://loinc.org","code":"6690-2"}]},SUBJECT,"effectiveDateTime":DATE,'
    '"valueQuantity":{"value":1.0,"unit":"10*3/uL","system":"http://unitsofmeasure.org",'
    '"code":"10*3/uL"}}'
)


@pytest.mark.parametrize(
    ("subject", "date"),
    [
        # the subject twice: the last (a patient not in the data) would be read
        (
            '"subject":{"reference":"Patient/p1"},"subject":{"reference":"Patient/zz"}',
            '"2024-01-15"',
        ),
        # the date twice: the last (older) would be read
        ('"subject":{"reference":"Patient/p1"}', '"2024-01-15","effectiveDateTime":"2023-01-01"'),
    ],
)
def test_a_newer_lab_with_a_key_given_twice_leaves_the_fact_unknown(
    tmp_path: Path, protocol: Path, subject: str, date: str
) -> None:
    """A newer wbc of 1.0 whose subject or date is named twice may be p1's newest value:
    the older 5.0 does not decide (RFC 8259 section 4: never the last key by file order)."""
    newer = NEWER_LOW_WBC.replace("SUBJECT", subject).replace("DATE", date)
    older = json.dumps(wbc(5.0))
    data = write(tmp_path, "b.json", _bundle_text(json.dumps(patient()), older, newer))
    rc, (row,) = screen(tmp_path, protocol, data)
    assert rc == 0 and row["criteria"]["I2"] == "unknown", row


def test_a_condition_whose_subject_is_given_twice_is_not_dropped(
    tmp_path: Path, protocol: Path
) -> None:
    """Read by its last subject (a patient not in the data) it was dropped, and
    `--absent-means-no conditions` read p1's cirrhosis as no."""
    c = json.dumps(condition()).replace(
        '"subject": {"reference": "Patient/p1"}',
        '"subject": {"reference": "Patient/p1"}, "subject": {"reference": "Patient/zz"}',
    )
    assert c.count('"subject"') == 2
    data = write(tmp_path, "b.json", _bundle_text(json.dumps(patient()), c))
    rc, (row,) = screen(tmp_path, protocol, data, extra=("--absent-means-no", "conditions"))
    assert rc == 0 and row["criteria"]["E2"] == "unknown", row


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("unknown", "unknown"),  # "the source system does not know": it may be final
        (None, "unknown"),  # Observation.status is 1..1: malformed
        ("Final", "unknown"),  # not a code of observation-status (codes are case-sensitive)
        ("entered-in-error", "met"),  # retracted: hides nothing, the older value decides
        ("cancelled", "met"),
        ("registered", "met"),  # no result yet
    ],
)
def test_a_newer_result_whose_status_cannot_be_told_leaves_the_fact_unknown(
    tmp_path: Path, protocol: Path, status: str | None, expected: str
) -> None:
    newer = wbc(1.0, effectiveDateTime="2024-01-15T10:00:00Z", id="w2")
    if status is None:
        del newer["status"]
    else:
        newer["status"] = status
    data = write(tmp_path, "b.json", bundle(patient(), wbc(5.0, id="w1"), newer))
    rc, (row,) = screen(tmp_path, protocol, data)
    assert rc == 0 and row["criteria"]["I2"] == expected, row


@pytest.mark.parametrize(
    ("unit", "read"),
    [
        ("s", False),
        ("%", False),
        ("ms", False),
        ("{INR}", True),
        ("INR", True),
        ("1", True),
        (None, True),
    ],
)
def test_a_number_fact_is_not_read_from_a_value_in_another_unit(
    tmp_path: Path, unit: str | None, read: bool
) -> None:
    """A prothrombin time of 13.5 s or a Quick activity of 70 % filed under the INR code is
    no INR of 13.5 or 70: unknown, with a diagnostic (R4 Quantity.code; UCUM {INR} is 1)."""
    text = PROTOCOL.replace(
        "fact wbc: quantity x10^9/L", "fact inr: number\nfact wbc: quantity x10^9/L"
    )
    text = text.replace(
        'codes bp: loinc "85354-9"', 'codes bp: loinc "85354-9"\ncodes inr: loinc "6301-6"'
    )
    text = text.replace("exclusion criteria\n", 'exclusion criteria\nE9 "inr"\n  rule inr > 1.5\n')
    proto = tmp_path / "inr.crit"
    proto.write_text(text)
    q: dict[str, Any] = {"value": 13.5}
    if unit is not None:
        q |= {"unit": unit, "system": UCUM, "code": unit}
    data = write(tmp_path, "b.json", bundle(patient(), obs("6301-6", valueQuantity=q)))
    rc, (row,) = screen(tmp_path, proto, data)
    assert rc == 0
    assert row["criteria"]["E9"] == ("met" if read else "unknown"), row
    if not read:
        assert any("a plain number was expected" in p for p in row["problems"])


def condition(**extra: Any) -> dict:
    system = "http://terminology.hl7.org/CodeSystem/condition-"
    return {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "19943007"}]},
        "clinicalStatus": {"coding": [{"system": system + "clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": system + "ver-status", "code": "confirmed"}]},
        **extra,
    }


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"onsetDateTime": "2025-01-01T00:00:00Z"}, "unknown"),
        ({"recordedDate": "2024-06-01"}, "unknown"),
        ({"onsetDateTime": "2020-01-01", "recordedDate": "2024-06-01"}, "met"),
        ({"onsetDateTime": "2024-01-20"}, "met"),
    ],
)
def test_condition_that_begins_after_the_screening_date_is_not_current(
    tmp_path: Path, protocol: Path, extra: dict, expected: str
) -> None:
    """Screening as of a past date: an active cirrhosis whose onset (else recordedDate) is
    after that date excluded the patient, though it did not exist (or was not known) then
    (Condition.onset[x], Condition.recordedDate)."""
    b = write(tmp_path, "b.json", bundle(patient(), condition(**extra)))
    rc, (row,) = screen(tmp_path, protocol, b)
    assert rc == 0 and row["criteria"]["E2"] == expected
    if expected == "unknown":
        assert any("after the screening date 2024-01-20" in p for p in row["problems"])


def _part(code: str, value: float) -> dict:
    q = {"value": value, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}
    return {"code": {"coding": [{"system": "http://loinc.org", "code": code}]}, "valueQuantity": q}


@pytest.mark.parametrize("order", [(120, 150), (150, 120)])
def test_two_systolic_components_in_one_panel_are_a_conflict(
    tmp_path: Path, protocol: Path, order: tuple[int, int]
) -> None:
    """A BP panel (85354-9) with two systolic components, 120 and 150, and diastolic 80:
    `bp > 140/90` was met or not met by the components' order in the file."""
    parts = [_part("8480-6", order[0]), _part("8480-6", order[1]), _part("8462-4", 80)]
    b = write(tmp_path, "b.json", bundle(patient(), obs("85354-9", component=parts)))
    rc, (row,) = screen(tmp_path, protocol, b)
    assert rc == 0 and row["criteria"]["E3"] == "unknown"
    assert any("two systolic components disagree" in p for p in row["problems"])


@pytest.mark.parametrize(
    ("performed", "expected"), [("2025-01-01", "unknown"), ("2020-01-01", "met")]
)
def test_procedure_performed_after_the_screening_date_is_not_used(
    tmp_path: Path, protocol: Path, performed: str, expected: str
) -> None:
    """A Procedure bound to a yes/no fact, performed after the screening date, made the
    fact yes as of that date (Procedure.performed[x])."""
    proc = {
        "resourceType": "Procedure",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "19943007"}]},
        "performedDateTime": performed,
    }
    rc, (row,) = screen(tmp_path, protocol, write(tmp_path, "b.json", bundle(patient(), proc)))
    assert rc == 0 and row["criteria"]["E2"] == expected


@pytest.mark.parametrize("unit", ["109/L", "103/uL", "10.3/uL", "1012/L"])
def test_a_unit_that_lost_its_exponent_mark_is_refused_not_read_literally(
    tmp_path: Path, protocol: Path, unit: str
) -> None:
    """A count of 1.5 "109/L" (10⁹/L printed without its superscript) read as UCUM says
    would be 1.5e-9 x10^9/L, meeting `wbc < 2`; it is ambiguous: unknown, said so."""
    q = {"value": 1.5, "unit": unit}
    data = write(tmp_path, "b.json", bundle(patient(), obs("6690-2", valueQuantity=q)))
    _, (row,) = screen(tmp_path, protocol, data)
    assert row["criteria"]["I2"] == "unknown", row
    assert any("wbc:" in p and "begins with the number" in p for p in row["problems"]), row
    q = {"value": 1.5, "unit": "10*9/L", "system": UCUM, "code": "10*9/L"}
    data = write(tmp_path, "c.json", bundle(patient(), obs("6690-2", valueQuantity=q)))
    _, (row,) = screen(tmp_path, protocol, data)
    assert row["criteria"]["I2"] == "not met" and not row["problems"], row
