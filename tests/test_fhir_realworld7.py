"""Real-world and adversarial FHIR R4 input (realfhir7, breaker7): each case screened
from a Bundle and from NDJSON, and where the SQL engine reads it, through `ingest` and
DuckDB; the verdict, the criterion's status and the diagnostic are asserted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import fhir_cases
from critlang.cli import main
from fhir_cases import FORMS, said

PROTOCOL = """protocol "TEST-RW7"
  title "real-world FHIR"
  version "1"
  date 2024-01-01
  sex all
  minimum age 18 years
  healthy volunteers no

fact birth_date: date
fact hemoglobin: quantity g/dL
  measured within 90 days before enrollment

codes birth_date: fhir "Patient.birthDate"
codes hemoglobin: loinc "718-7"

define age = elapsed_years(birth_date, enrollment)

inclusion criteria
I1 "adult"
  rule age >= 18 years
I2 "haemoglobin"
  rule hemoglobin >= 9 g/dL
"""
AS_OF = "2024-06-01"
LOINC = "http://loinc.org"


def patient(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"} | extra


def hb(value: float = 12, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "hb1",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": LOINC, "code": "718-7"}]},
        "effectiveDateTime": "2024-05-20",
        "valueQuantity": {
            "value": value,
            "unit": "g/dL",
            "system": "http://unitsofmeasure.org",
            "code": "g/dL",
        },
    } | extra


def screen(tmp_path: Path, form: str, rows: list[Any], protocol: str = PROTOCOL, flags=()) -> dict:
    return fhir_cases.screen(tmp_path, form, rows, protocol, flags, AS_OF)


def duckdb_row(
    tmp_path: Path, form: str, rows: list[Any], protocol: str = PROTOCOL, flags=()
) -> dict:
    return fhir_cases.duckdb_row(tmp_path, form, rows, protocol, flags, AS_OF)


# ------------------------------------------------------------ breaker7 F1: deceased[x]

DECEASED = {
    "both, true": '"deceasedBoolean": true, "deceasedDateTime": "2024-05-01"',
    "both, false": '"deceasedBoolean": false, "deceasedDateTime": "2024-05-01"',
    "boolean as text": '"deceasedBoolean": "true"',
    "date as number": '"deceasedDateTime": 20240501',
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", sorted(DECEASED))
def test_a_deceased_given_twice_or_of_the_wrong_type_is_never_alive(tmp_path, form, case):
    """deceased[x] twice (two choice types) or of the wrong JSON type made the Patient
    malformed, and its deceased[x] was then dropped: "alive", eligible, no word
    (R4 Patient.deceased[x] is a modifier element; formats.html#choice)."""
    text = (
        '{"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01", ' + DECEASED[case] + "}"
    )
    row = screen(tmp_path, form, [text, hb()])
    assert row["verdict"] == "undetermined"
    assert said(row, "deceased", "gives deceased[x] but is malformed")
    assert said(row, "deceased", "perhaps deceased, so not eligible")
    assert duckdb_row(tmp_path, form, [text, hb()])["verdict"] == "undetermined"
    # control: a well-formed deceasedBoolean false is alive
    control = screen(tmp_path, form, [patient(deceasedBoolean=False), hb()])
    assert control["verdict"] == "eligible"


# ------------------------------------------------------------ breaker7 F7: status unknown


@pytest.mark.parametrize("status", ["unknown", "registered"])
def test_a_native_value_with_status_unknown_hides_the_older_one_as_from_fhir(tmp_path, status):
    """A newer native value with status "unknown" was dropped and the older one decided
    (eligible), while the same data from FHIR gave unknown; one rule for both."""
    record = {
        "id": "n34",
        "facts": {
            "birth_date": "1970-01-01",
            "hemoglobin": [
                {"value": 8, "unit": "g/dL", "date": "2024-05-21", "status": status},
                {"value": 12, "unit": "g/dL", "date": "2024-05-20"},
            ],
        },
    }
    (tmp_path / "p.crit").write_text(PROTOCOL)
    (tmp_path / "n.json").write_text(json.dumps(record))
    out = tmp_path / "out.jsonl"
    crit, data = str(tmp_path / "p.crit"), str(tmp_path / "n.json")
    assert main(["screen", "--as-of", AS_OF, crit, data, "--patients", str(out)]) == 0
    native = json.loads(out.read_text())
    fhir = screen(
        tmp_path,
        "bundle",
        [patient(), hb(12), hb(8, id="hb2", status=status, effectiveDateTime="2024-05-21")],
    )
    expected = "unknown" if status == "unknown" else "met"
    assert native["criteria"]["I2"] == fhir["criteria"]["I2"] == expected
    if status == "unknown":
        assert said(native, "hemoglobin", "could not be used and may be the newest")


# ------------------------------------------------------------ therapies (realfhir7 F3, F4, F6, F14)

THERAPY_PROTOCOL = """protocol "TEST-RW7-T"
  title "real-world therapies"
  version "1"
  date 2024-01-01
  sex all
  minimum age 18 years
  healthy volunteers no

fact therapies: list of {kind: enum {nystatin, cisplatin}, start: date, end: date}

codes therapies.nystatin: snomed "324689003"
codes therapies.cisplatin: rxnorm "1736854"

exclusion criteria
E1 "nystatin ongoing"
  rule any therapies with (kind = nystatin and start to end ongoing at enrollment)
E2 "cisplatin within 4 weeks"
  rule any therapies with (kind = cisplatin and start to end overlaps 4 weeks before enrollment)
E3 "nystatin ever"
  rule any therapies with (kind = nystatin)
"""


def order(code: str, system: str, status: str = "completed", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": f"mr{code}",
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"coding": [{"system": system, "code": code}]},
        "authoredOn": "2024-01-15",
    } | extra


VALIDITY = {"validityPeriod": {"start": "2024-01-15", "end": "2025-01-15"}}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("status", ["completed", "stopped", "on-hold", "active"])
def test_a_prescription_validity_period_is_not_the_time_the_drug_is_taken(tmp_path, form, status):
    """A completed nystatin order (R4 example medrx0304, validity to a year later) was
    "ongoing at enrollment" four months later: validityPeriod.end was read as the end of
    taking (R4 MedicationRequest.dispenseRequest.validityPeriod: stale dating)."""
    r = order("324689003", "http://snomed.info/sct", status, dispenseRequest=VALIDITY)
    row = screen(tmp_path, form, [patient(), r], THERAPY_PROTOCOL)
    assert row["criteria"]["E3"] == "met"
    # active: actionable, so ongoing; any other status: the end of taking is unknown
    assert row["criteria"]["E1"] == ("met" if status == "active" else "unknown")
    assert "2025-01-15" not in " ".join(row["explanations"]["E1"]["explanation"])


OVERLAP = """fact therapies: list of {kind: enum {cisplatin, other}, start: date, end: date}
exclusion criteria
E1 "chemotherapy within 4 weeks"
  rule any therapies with (start to end overlaps 4 weeks before enrollment)
E2 "none within 4 weeks"
  rule no therapies with (start to end overlaps 4 weeks before enrollment)
"""


def _engines(tmp_path: Path, items: list[dict[str, Any]]) -> dict[str, Any]:
    """E1/E2 on one native patient: compiled, reference interpreter, DuckDB; the compiled
    evaluation (explanations, needs)."""
    import datetime as dt

    from critlang.backends.python import compile_protocol
    from critlang.backends.sql import compile_sql
    from critlang.backends.sql.engines import DuckDB
    from critlang.data.ingest import ingest_records
    from critlang.data.records import read_record
    from critlang.evaluate import Evaluator, run_compiled
    from critlang.frontend import analyse_text
    from critlang.interpreter import Interpreter

    as_of = dt.date(1994, 1, 19)
    a = analyse_text(OVERLAP)
    assert a.result is not None and a.ok
    compiled = compile_protocol(a.result)
    data = {"id": "p", "facts": {"therapies": items}}
    record = read_record(a.result, data, as_of, "p")
    out: dict[str, Any] = {"compiled": run_compiled(compiled, compiled.normalise(record))}
    verdict, statuses, _ = Interpreter(a.result).run(record)
    out["interpreter"] = (verdict, statuses)
    pytest.importorskip("duckdb")
    path = tmp_path / "o.duckdb"
    ingest_records(compiled, [("p", data)], path, as_of)
    engine = DuckDB(path)
    try:
        (row,) = engine.run(compile_sql(compiled, as_of)).patients
    finally:
        engine.close()
    out["sql"] = tuple(row[2:-1])
    out["evaluation"] = Evaluator(compiled).evaluate(record)
    return out


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("1994-01-05", "met"),  # starts inside the window: any end is >= its start
        ("1993-12-22", "met"),  # on the window's first day (1994-01-19 - 28 days)
        ("1993-12-21", "unknown"),  # the day before: the end decides
        ("1994-01-19", "met"),  # on the screening date
    ],
)
def test_a_start_inside_an_overlaps_window_decides_whatever_the_end(tmp_path, start, expected):
    """A Synthea cisplatin order 14 days before screening, with no end, was undetermined
    for "chemotherapy within 4 weeks" (START <= A and END >= A - D, and an end is never
    before its start: R4 Period per-1); `needs` listed its end (realfhir7 F3)."""
    got = _engines(tmp_path, [{"kind": "cisplatin", "start": start}])
    e = got["evaluation"]
    e1 = next(c for c in e.criteria if c.id == "E1")
    e2 = next(c for c in e.criteria if c.id == "E2")
    assert e1.status == expected
    assert e2.status == {"met": "not met", "not met": "met", "unknown": "unknown"}[expected]
    compiled = got["compiled"]
    assert compiled == got["interpreter"]
    assert (e.verdict, e1.status, e2.status) == got["sql"]
    if expected == "met":
        assert e.missing == []
        assert "an end is never before its start" in " ".join(e1.explanation)
    if expected == "unknown":
        assert any("end" in m for m in e1.missing)


# ------------------------------------------------------------ reference ranges

RANGE_PROTOCOL = """protocol "TEST-RW7-R"
  title "reference ranges"
  version "1"
  date 2024-01-01
  sex all
  minimum age 18 years
  healthy volunteers no

fact birth_date: date
fact sex: enum {female, male}
fact alt: quantity U/L
  reference range reported
  measured within 90 days before enrollment

codes birth_date: fhir "Patient.birthDate"
codes sex: fhir "Patient.gender"
codes alt: loinc "1742-6"

exclusion criteria
E1 "ALT > 3 x ULN"
  rule alt > 3 x ULN
"""


def alt(value: float, unit: str, *ranges: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "alt1",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": LOINC, "code": "1742-6"}]},
        "effectiveDateTime": "2024-05-20",
        "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": unit},
        "referenceRange": list(ranges),
    }


def limit(value: float, unit: str | None = "U/L") -> dict[str, Any]:
    q: dict[str, Any] = {"value": value}
    if unit is not None:
        q |= {"system": "http://unitsofmeasure.org", "code": unit}
    return q


MEANING = "http://terminology.hl7.org/CodeSystem/referencerange-meaning"
RANGES = {
    # (range, E1, a diagnostic that must be said, or None)
    "normal": ({"high": limit(40)}, "met", None),
    "type normal": (
        {"high": limit(40), "type": {"coding": [{"system": MEANING, "code": "normal"}]}},
        "met",
        None,
    ),
    "type as text": (
        {"high": limit(40), "type": {"text": "therapeutic"}},
        "unknown",
        "type 'therapeutic' is no referencerange-meaning code",
    ),
    "type of another system": (
        {
            "high": limit(40),
            "type": {"coding": [{"system": "http://snomed.info/sct", "code": "1"}]},
        },
        "unknown",
        "may not be this patient's",
    ),
    "appliesTo as text": (
        {"high": limit(40), "appliesTo": [{"text": "non-black/african-american"}]},
        "unknown",
        "applies to non-black/african-american, which critlang cannot tell",
    ),
    "appliesTo female": (
        {
            "high": limit(40),
            "appliesTo": [{"coding": [{"system": "http://snomed.info/sct", "code": "248152002"}]}],
        },
        "met",
        None,
    ),
    "age unchecked": (
        {
            "high": limit(40),
            "age": {"low": {"value": 18, "system": "http://unitsofmeasure.org", "code": "a"}},
        },
        "met",  # born 1970: 54 on the value's date, so the age is checked
        None,
    ),
    "no unit": ({"high": limit(40, None)}, "unknown", "has no unit"),
    "units differ": ({"low": limit(5, None), "high": limit(40)}, "unknown", "different units"),
    "low above high": ({"low": limit(50), "high": limit(40)}, "unknown", "low is above high"),
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", sorted(RANGES))
def test_a_reference_range_is_used_only_when_surely_this_patients(tmp_path, form, case):
    """A range for "non-black/african-american" (text) or of type "therapeutic" (text) was
    applied as the normal range; a limit with no unit took the value's unit (40 beside
    U/L read as 40 U/L, beside ukat/L as 40 ukat/L); low > high was explained as "none
    surely this patient's" (realfhir7 F5, F10; breaker7 F8, F10)."""
    rr, expected, message = RANGES[case]
    person = patient(gender="female")
    row = screen(tmp_path, form, [person, alt(130, "U/L", rr)], RANGE_PROTOCOL)
    assert row["criteria"]["E1"] == expected
    if message is None:
        assert not said(row, "alt", "")
    else:
        assert said(row, "alt", message)
        # the explanation gives the reader's own reason, not a generic one
        text = " ".join(row["explanations"]["E1"]["explanation"])
        assert "reference range reported, not used" in text and message in text
        assert "none surely this patient's" not in text


@pytest.mark.parametrize("form", FORMS)
def test_a_unitless_limit_is_never_read_in_the_values_unit(tmp_path, form):
    """ALT 2.2 ukat/L (132 U/L) with a unitless high of 40 was "not met" (ULN 40 ukat/L)."""
    row = screen(
        tmp_path, form, [patient(), alt(2.2, "ukat/L", {"high": limit(40, None)})], RANGE_PROTOCOL
    )
    assert row["criteria"]["E1"] == "unknown"
    assert said(
        row,
        "alt",
        "has no unit (a limit without unit or code is unitless), but the value is in ukat/L",
    )
    # with its unit, 2.2 ukat/L = 132 U/L > 3 x 40 U/L: met
    row = screen(
        tmp_path, form, [patient(), alt(2.2, "ukat/L", {"high": limit(40)})], RANGE_PROTOCOL
    )
    assert row["criteria"]["E1"] == "met"


NDC_PROTOCOL = """fact therapies: list of {kind: enum {busulfan}, start: date, end: date}
codes therapies.busulfan: SYSTEM "CODE"
inclusion criteria
I1 "no busulfan ever"
  rule no therapies with (kind = busulfan)
"""
NDC = "http://hl7.org/fhir/sid/ndc"


def myleran(status: str = "active") -> dict[str, Any]:
    """The R4 example busulfan order medrx0306: a contained Medication coded only in NDC."""
    return {
        "resourceType": "MedicationRequest",
        "id": "medrx0306",
        "contained": [
            {
                "resourceType": "Medication",
                "id": "med0304",
                "code": {
                    "coding": [
                        {"system": NDC, "code": "76388-713-25", "display": "Myleran 2mg tablet"}
                    ]
                },
            }
        ],
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationReference": {"reference": "#med0304"},
        "authoredOn": "2024-01-15",
    }


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("concept", [False, True])
def test_ndc_is_a_code_system_and_an_unbindable_therapy_keeps_the_list_open(
    tmp_path, form, concept
):
    """`ndc` was error E001; an active busulfan order coded only in NDC left "no busulfan
    ever" met under --absent-means-no medications, with no word (realfhir7 F6)."""
    flags = ("--absent-means-no", "medications")
    order = myleran()
    if concept:  # the same drug as medicationCodeableConcept
        order.pop("contained")
        order.pop("medicationReference")
        order["medicationCodeableConcept"] = {"coding": [{"system": NDC, "code": "76388-713-25"}]}
    bound = NDC_PROTOCOL.replace("SYSTEM", "ndc").replace("CODE", "76388-713-25")
    row = screen(tmp_path, form, [patient(), order], bound, flags)
    assert row["criteria"]["I1"] == "not met" and row["verdict"] == "ineligible"
    # bound only in RxNorm: the NDC-coded order may be busulfan: unknown, said
    rxnorm = NDC_PROTOCOL.replace("SYSTEM", "rxnorm").replace("CODE", "1828")
    row = screen(tmp_path, form, [patient(), order], rxnorm, flags)
    assert row["criteria"]["I1"] == "unknown" and row["verdict"] == "undetermined"
    assert said(
        row, "medications", "coded only in code systems in which this protocol binds no therapy"
    )
    # one that says it was not given hides nothing: the list is complete
    cancelled = dict(order, status="cancelled")
    row = screen(tmp_path, form, [patient(), cancelled], rxnorm, flags)
    assert row["criteria"]["I1"] == "met"
    # an RxNorm-coded other drug is surely not busulfan: the list is complete
    other = dict(
        order,
        medicationCodeableConcept={
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "161"}]
        },
    )
    other.pop("contained", None)
    other.pop("medicationReference", None)
    row = screen(tmp_path, form, [patient(), other], rxnorm, flags)
    assert row["criteria"]["I1"] == "met"


BP_PROTOCOL = """fact bp: blood pressure
codes bp: loinc "85354-9"
exclusion criteria
E1 "bp above 160/100"
  rule bp > 160/100 mmHg
"""


@pytest.mark.parametrize("form", FORMS)
def test_a_censored_blood_pressure_part_is_said_not_dropped(tmp_path, form):
    """A systolic component ">170" was dropped in silence ("?/80"; breaker7 F13), then
    only said to be censored: it is read as the bound it is (reading8), so ">170/80"
    meets `bp > 160/100` (either part suffices), as exactly 170/80 does."""
    ucum = "http://unitsofmeasure.org"

    def part(code: str, value: float, comparator: str | None = None) -> dict[str, Any]:
        q = {"value": value, "unit": "mm[Hg]", "system": ucum, "code": "mm[Hg]"}
        if comparator:
            q["comparator"] = comparator
        return {"code": {"coding": [{"system": LOINC, "code": code}]}, "valueQuantity": q}

    panel = {
        "resourceType": "Observation",
        "id": "b",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "effectiveDateTime": "2024-05-20",
        "component": [part("8480-6", 170, ">"), part("8462-4", 80)],
    }
    row = screen(tmp_path, form, [patient(), panel], BP_PROTOCOL)
    assert row["criteria"]["E1"] == "met" and not said(row, "bp", "")
    panel["component"] = [part("8480-6", 150, ">"), part("8462-4", 80)]
    row = screen(tmp_path, form, [patient(), panel], BP_PROTOCOL)
    assert row["criteria"]["E1"] == "unknown" and not said(row, "bp", "")
    panel["component"] = [part("8480-6", 170), part("8462-4", 80)]
    row = screen(tmp_path, form, [patient(), panel], BP_PROTOCOL)
    assert row["criteria"]["E1"] == "met" and not said(row, "bp", "")


# ------------------------------------------------------------ breaker8 F2: whole reasons


@pytest.mark.parametrize("form", FORMS)
def test_the_reason_a_newer_stray_value_is_not_used_is_said_whole(tmp_path, form) -> None:
    newer = hb(7, id="hb2", effectiveDateTime="2024-05-30", subject={"reference": "Group/g1"})
    row = screen(tmp_path, form, [patient(), hb(), newer])
    assert row["criteria"]["I2"] == "unknown"
    assert said(
        row,
        "hemoglobin",
        "Observation/hb2, which names no patient of the data (its subject is a Group, not a "
        "Patient) could not be used and may be the newest",
    ), row["problems"]


# ------------------------------------------------ breaker8 F1: absolute subject references


def _bundle_with_urls(tmp_path: Path, patient_url: str, subject: str) -> dict:
    entries = [
        {"fullUrl": patient_url, "resource": patient()},
        {"fullUrl": "urn:uuid:hb1", "resource": hb(12)},
        {
            "fullUrl": "urn:uuid:hb2",
            "resource": hb(
                7, id="hb2", effectiveDateTime="2024-05-30", subject={"reference": subject}
            ),
        },
    ]
    (tmp_path / "p.crit").write_text(PROTOCOL)
    data = tmp_path / "b.json"
    data.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}))
    out = tmp_path / "out.jsonl"
    argv = ["screen", "--as-of", AS_OF, str(tmp_path / "p.crit"), str(data), "--patients", str(out)]
    assert main(argv) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    return row


def test_an_absolute_reference_may_name_a_patient_of_no_known_server(tmp_path) -> None:
    # the Patient's entry is urn:uuid (no server): http://x.org/fhir/Patient/p1 may be it
    # or another server's p1, so the newer 7 g/dL may be this patient's: unknown, said
    row = _bundle_with_urls(tmp_path, "urn:uuid:p1", "http://x.org/fhir/Patient/p1")
    assert row["criteria"]["I2"] == "unknown"
    assert said(row, "hemoglobin", "naming a Patient id of this Bundle whose server is not known")
    # on that very server it is this patient's
    row = _bundle_with_urls(
        tmp_path, "http://x.org/fhir/Patient/p1", "http://x.org/fhir/Patient/p1/_history/3"
    )
    assert row["criteria"]["I2"] == "not met"


def test_an_absolute_reference_to_another_server_is_not_this_patient(tmp_path) -> None:
    row = _bundle_with_urls(
        tmp_path, "http://a.org/fhir/Patient/p1", "http://b.org/fhir/Patient/p1"
    )
    assert row["criteria"]["I2"] == "met"  # b.org's patient p1 is someone else


@pytest.mark.parametrize(
    "subject",
    [
        "http://A.ORG/fhir/Patient/p1",
        "HTTP://a.org/fhir/Patient/p1",
        "http://a.org:80/fhir/Patient/p1",
        "http://a.org/fhir/Patient/p1/_history/2",
    ],
)
def test_one_server_spelt_two_ways_is_one_server(tmp_path, subject) -> None:
    # RFC 3986 6.2.2.1 (scheme and host are case-insensitive), 6.2.3 (default port)
    row = _bundle_with_urls(tmp_path, "http://a.org/fhir/Patient/p1", subject)
    assert row["criteria"]["I2"] == "not met"  # the newer 7 g/dL is this patient's


def test_a_path_differing_in_case_is_another_server(tmp_path) -> None:
    row = _bundle_with_urls(
        tmp_path, "http://a.org/fhir/Patient/p1", "http://a.org/FHIR/Patient/p1"
    )
    assert row["criteria"]["I2"] == "met"  # the path is case-sensitive: someone else's
