"""FHIR R4 modifier elements, coded statuses, choice types and time elements, one kind a
test (breaker 5: F3-F8, F10, F11, F13, F14, F16-F18).

Each test screens a small Bundle through the CLI and asserts the verdict's criteria and
the diagnostics, with the Bundle's entries (and a CodeableConcept's codings) in both
orders: order never decides (R4 datatypes.html#CodeableConcept)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from critlang.cli import main
from critlang.data.values import parse_when

PROTOCOL = """protocol "TEST-R5"
  title "resources"
  version "1"
  date 2024-01-01
  sex all
  minimum age 18 years
  healthy volunteers no

fact birth_date: date
fact hemoglobin: quantity g/dL
  measured within 28 days before enrollment
fact cirrhosis: boolean
  history current
fact brain_metastases: boolean
  history ever
fact prior_therapies: list of {kind: enum {capecitabine, other}, start: date, end: date}

codes birth_date: fhir "Patient.birthDate"
codes hemoglobin: loinc "718-7"
codes cirrhosis: snomed "19943007"
codes brain_metastases: snomed "94225005"
codes prior_therapies.capecitabine: atc "L01BC06"
codes prior_therapies.other: atc "L01XX99"

define age = elapsed_years(birth_date, enrollment)

inclusion criteria
I1 "adult"
  rule age >= 18 years
exclusion criteria
E1 "anaemia"
  rule hemoglobin < 8.0 g/dL
E3 "cirrhosis"
  rule cirrhosis
E4 "brain mets"
  rule brain_metastases
E5 "capecitabine within 12 months"
  rule any prior_therapies with (kind = capecitabine and end within 12 months before enrollment)
"""
AS_OF = "2024-06-01"
SNOMED, ATC, LOINC = "http://snomed.info/sct", "http://www.whocc.no/atc", "http://loinc.org"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
UCUM = "http://unitsofmeasure.org"
ORDERS = [1, -1]  # entry (and coding) order: as written, reversed


def patient() -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"}


def condition(code: str = "19943007", rid: str = "c1", **extra: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "resourceType": "Condition",
        "id": rid,
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SNOMED, "code": code}]},
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
    }
    r.update(extra)
    return r


def hb(value: Any, when: str = "2024-05-20T10:00:00Z", rid: str = "o1", **extra: Any) -> dict:
    r: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": LOINC, "code": "718-7"}]},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "g/dL", "system": UCUM, "code": "g/dL"},
    }
    r.update(extra)
    return r


def therapy(kind: str = "MedicationStatement", codes: tuple[str, ...] = ("L01BC06",), **extra: Any):
    r: dict[str, Any] = {
        "resourceType": kind,
        "id": "m1",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"coding": [{"system": ATC, "code": c} for c in codes]},
    }
    if kind == "MedicationRequest":
        r |= {"intent": "order", "authoredOn": "2024-01-01", "status": "active"}
    else:
        r["effectivePeriod"] = {"start": "2024-01-01", "end": "2024-03-01"}
    r.update(extra)
    return r


def codings(system: str, *codes: str, order: int = 1) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": c} for c in codes][::order]}


def run(tmp_path: Path, *resources: dict, order: int = 1, extra: tuple[str, ...] = ()) -> dict:
    """Screens one patient's Bundle (entries in `order`); its --patients row."""
    protocol = tmp_path / "p.crit"
    protocol.write_text(PROTOCOL)
    data = tmp_path / "b.json"
    entries = [{"resource": r} for r in (patient(), *resources)][::order]
    data.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}))
    out = tmp_path / "out.jsonl"
    argv = ["screen", "--as-of", AS_OF, str(protocol), str(data), "--patients", str(out), *extra]
    assert main(argv) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    return row


def said(row: dict, fact: str, text: str) -> bool:
    return any(p.startswith(f"{fact}:") and text in p for p in row["problems"])


# ------------------------------------------------------------ F3, F10, F11: coded statuses


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(
    ("element", "system", "codes"),
    [
        ("verificationStatus", VERIFICATION, ("confirmed", "refuted")),
        ("clinicalStatus", CLINICAL, ("active", "resolved")),
        ("clinicalStatus", None, ("active", "inactive")),  # no system: read as the bound one
    ],
)
def test_status_codings_that_disagree_are_unknown_in_either_order(
    tmp_path: Path, order: int, element: str, system: str | None, codes: tuple[str, ...]
) -> None:
    """[confirmed, refuted] was met and [refuted, confirmed] unknown: the first coding won."""
    status = {"coding": [{"system": system, "code": c} for c in codes][::order]}
    row = run(tmp_path, condition(**{element: status}), order=order)
    assert row["criteria"]["E3"] == "unknown"
    assert said(row, "cirrhosis", f"{element} codings disagree ({', '.join(sorted(codes))})")


@pytest.mark.parametrize("order", ORDERS)
def test_another_systems_coding_beside_the_bound_one_is_ignored(tmp_path: Path, order) -> None:
    """Codings are one concept: the condition-clinical code decides, another system's
    code is an alternative spelling (safe to ignore only when the bound one is there)."""
    status = {
        "coding": [
            {"system": "http://example.org/local", "code": "act"},
            {"system": CLINICAL, "code": "resolved"},
        ][::order]
    }
    row = run(tmp_path, condition(clinicalStatus=status), order=order)
    assert row["criteria"]["E3"] == "not met" and not said(row, "cirrhosis", "")
    only_other = {"coding": [{"system": "http://example.org/local", "code": "resolved"}]}
    row = run(tmp_path, condition(clinicalStatus=only_other), order=order)
    assert row["criteria"]["E3"] == "unknown"
    assert said(row, "cirrhosis", f"clinicalStatus has no code of {CLINICAL}")


@pytest.mark.parametrize(
    ("element", "text"),
    [("verificationStatus", "unconfirmed"), ("clinicalStatus", "inactive"), ("clinicalStatus", "")],
)
def test_text_only_status_is_unknown_never_the_default(
    tmp_path: Path, element: str, text: str
) -> None:
    """{"text": "inactive"} was read as no status, i.e. active and confirmed: met."""
    row = run(tmp_path, condition(**{element: {"text": text} if text else {}}))
    assert row["criteria"]["E3"] == "unknown"
    assert said(row, "cirrhosis", f"{element} gives")


@pytest.mark.parametrize("order", ORDERS)
def test_an_unreadable_condition_keeps_a_resolved_one_from_saying_no(tmp_path, order) -> None:
    resolved = condition(rid="c2", clinicalStatus=codings(CLINICAL, "resolved"))
    unreadable = condition(clinicalStatus={"text": "active"})
    row = run(tmp_path, resolved, unreadable, order=order)
    assert row["criteria"]["E3"] == "unknown"
    assert row["criteria"] == run(tmp_path, unreadable, resolved, order=order)["criteria"]
    control = run(tmp_path, resolved, order=order)
    assert control["criteria"]["E3"] == "not met"


# ------------------------------------------------------------ F4, F13, F14: time elements


@pytest.mark.parametrize(
    ("onset", "verdict", "message"),
    [
        ({"onsetPeriod": {"start": "2025-01-01", "end": "2025-02-01"}}, "unknown", "after the"),
        ({"onsetAge": {"value": 60, "system": UCUM, "code": "a"}}, "unknown", "at age 60 a"),
        ({"onsetRange": {"low": {"value": 60, "system": UCUM, "code": "a"}}}, "unknown", "60 a"),
        ({"onsetDateTime": "2025-01-01"}, "unknown", "after the screening date"),
        ({"onsetDateTime": "2024"}, "unknown", "perhaps after the screening date"),
        ({"onsetString": "2030"}, "unknown", "onsetString '2030' is text"),
        ({"onsetDateTime": "2024-02-30"}, "unknown", "is not a date (no such day)"),
        ({"onsetAge": {"value": 30, "system": UCUM, "code": "a"}}, "met", None),
        ({"onsetPeriod": {"start": "2010-01-01"}}, "met", None),
        ({"onsetAge": {"value": 30, "code": "kg"}}, "unknown", "not in a UCUM unit of time"),
    ],
)
def test_every_onset_choice_is_read_or_refused(
    tmp_path: Path, onset: dict, verdict: str, message: str | None
) -> None:
    """onsetPeriod/onsetAge/onsetRange in the future were used (met): only onsetDateTime
    was checked, and as text."""
    row = run(tmp_path, condition(**onset))
    assert row["criteria"]["E3"] == verdict
    if message is None:
        assert not said(row, "cirrhosis", "")
    else:
        assert said(row, "cirrhosis", message)


@pytest.mark.parametrize(
    ("abatement", "verdict", "message"),
    [
        ({"abatementDateTime": "2024-05-32"}, "unknown", "'2024-05-32' is not a date"),
        ({"abatementDateTime": "2023-13-45"}, "unknown", "is not a date"),
        ({"abatementDateTime": "yesterday"}, "unknown", "is not a date"),
        ({"abatementDateTime": "2024-05-01T10:00:00"}, "unknown", "is not a date"),
        ({"abatementDateTime": "2024-05-01T10:00:00+02:00"}, "not met", None),
        ({"abatementDateTime": "2024-07-01"}, "met", None),
        ({"abatementAge": {"value": 40, "system": UCUM, "code": "a"}}, "not met", None),
        ({"abatementAge": {"value": 54, "system": UCUM, "code": "a"}}, "unknown", "perhaps"),
        ({"abatementPeriod": {"start": "2030-01-01"}}, "met", None),
        ({"abatementBoolean": True, "meta": {"lastUpdated": "2020-01-01"}}, "not met", None),
        ({"abatementBoolean": True, "recordedDate": "2020-01-01"}, "unknown", "abated at a time"),
        ({"abatementBoolean": True}, "unknown", "abated at a time not given"),
        ({"abatementBoolean": False}, "met", None),
        ({"abatementString": "in 2030"}, "unknown", "abated at a time not given"),
    ],
)
@pytest.mark.parametrize("status", [None, "resolved"])
def test_every_abatement_choice_is_read_or_refused(
    tmp_path: Path, abatement: dict, verdict: str, message: str | None, status: str | None
) -> None:
    """abatementDateTime "2024-05-32" was compared as text: "not current", no word. With
    no clinicalStatus or a resolved one the abatement's date decides (active beside an
    abatement contradicts R4 con-4: tests/test_fhir_condition_time.py)."""
    c = condition(**abatement)
    if status is None:
        del c["clinicalStatus"]
    else:
        c["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": status}]}
        if abatement == {"abatementBoolean": False}:
            verdict = "not met"  # not abated: the status decides
    row = run(tmp_path, c)
    assert row["criteria"]["E3"] == verdict
    assert said(row, "cirrhosis", message) if message else not said(row, "cirrhosis", "")


@pytest.mark.parametrize(
    ("performed", "verdict", "message"),
    [
        ({"performedAge": {"value": 70, "system": UCUM, "code": "a"}}, "unknown", "at age 70"),
        ({"performedRange": {"low": {"value": 70, "code": "a"}}}, "unknown", "after the"),
        ({"performedString": "last year"}, "unknown", "is text"),
        ({"performedDateTime": "2024-06-31"}, "unknown", "is not a date"),
        ({"performedPeriod": {"start": "2025-01-01"}}, "unknown", "after the screening"),
        ({"performedAge": {"value": 40, "system": UCUM, "code": "a"}}, "met", None),
    ],
)
def test_every_performed_choice_is_read_or_refused(
    tmp_path: Path, performed: dict, verdict: str, message: str | None
) -> None:
    """performedAge 70 a (in 2040) was used as a procedure done by 2024."""
    proc = {
        "resourceType": "Procedure",
        "id": "pr1",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SNOMED, "code": "19943007"}]},
        **performed,
    }
    row = run(tmp_path, proc)
    assert row["criteria"]["E3"] == verdict
    assert said(row, "cirrhosis", message) if message else not said(row, "cirrhosis", "")


@pytest.mark.parametrize(
    ("dates", "message"),
    [
        ({"effectivePeriod": {"start": "2024-01-01", "end": "2024-02-30"}}, "is not a date"),
        ({"effectivePeriod": {"start": "2024-01-01T08:00", "end": "2024-03-01"}}, "not a date"),
        ({"effectivePeriod": {"start": "2024-07-01", "end": "2024-08-01"}}, "after the"),
    ],
)
def test_therapy_effective_dates_read_or_refused(tmp_path: Path, dates: dict, message) -> None:
    row = run(tmp_path, therapy(**dates))
    assert row["criteria"]["E5"] == "unknown"
    assert said(row, "prior_therapies", message)


# ------------------------------------------------------------ F5, F17: modifiers, focus

MODIFIER = [{"url": "http://example.org/negated", "valueBoolean": True}]


@pytest.mark.parametrize("order", ORDERS)
def test_modifier_extension_makes_the_resource_unknown(tmp_path: Path, order: int) -> None:
    """A modifierExtension may negate a resource (R4 extensibility.html): it was ignored."""
    row = run(tmp_path, condition(modifierExtension=MODIFIER), order=order)
    assert row["criteria"]["E3"] == "unknown"
    assert said(row, "cirrhosis", "has a modifierExtension (http://example.org/negated)")
    # a newer Observation with one keeps the older value from deciding
    row = run(tmp_path, hb(12.0, "2024-05-10"), hb(7.0, rid="o2", modifierExtension=MODIFIER))
    assert row["criteria"]["E1"] == "unknown"
    assert said(row, "hemoglobin", "may be the newest")
    row = run(tmp_path, therapy(modifierExtension=MODIFIER), order=order)
    assert row["criteria"]["E5"] == "unknown"
    assert said(row, "prior_therapies", "modifierExtension")


@pytest.mark.parametrize("order", ORDERS)
def test_observation_focus_is_not_the_patients_value(tmp_path: Path, order: int) -> None:
    """A fetus's haemoglobin (Observation.focus) decided the mother's E1."""
    focus = {"focus": [{"reference": "Patient/fetus1", "display": "fetus"}]}
    row = run(tmp_path, hb(7.0, **focus), order=order)
    assert row["criteria"]["E1"] == "unknown"
    assert said(row, "hemoglobin", "has a focus (Observation.focus)")
    # not the patient's: it hides nothing, the patient's own older value decides
    row = run(tmp_path, hb(12.0, "2024-05-10", rid="own"), hb(7.0, **focus), order=order)
    assert row["criteria"]["E1"] == "not met"


# ------------------------------------------------------------ F6: requests and statuses


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"doNotPerform": True}, "doNotPerform true"),
        ({"intent": "plan"}, "intent 'plan'"),
        ({"intent": "proposal"}, "intent 'proposal'"),
        ({"intent": "option"}, "intent 'option'"),
    ],
)
def test_a_request_that_is_not_an_order_to_give_is_not_a_therapy(
    tmp_path: Path, extra: dict, message: str
) -> None:
    row = run(tmp_path, therapy("MedicationRequest", **extra))
    assert row["criteria"]["E5"] != "met"
    assert said(row, "prior_therapies", f"{message}: ")
    for intent in ("order", "original-order", "instance-order"):
        control = run(tmp_path, therapy("MedicationRequest", intent=intent))
        assert control["criteria"]["E5"] == "met"


@pytest.mark.parametrize(
    ("kind", "status", "verdict", "message"),
    [
        ("MedicationStatement", "not-taken", "unknown", "has status 'not-taken'"),
        ("MedicationStatement", "intended", "unknown", "has status 'intended'"),
        ("MedicationStatement", "entered-in-error", "unknown", "has status 'entered-in-error'"),
        ("MedicationStatement", "taken", "unknown", "not a code of its R4 value set"),
        ("MedicationRequest", "draft", "unknown", "has status 'draft'"),
        ("MedicationRequest", None, "unknown", "has no status"),
        ("MedicationRequest", "active", "met", None),  # ongoing: no end recorded
        ("MedicationStatement", "completed", "met", None),
    ],
)
def test_therapy_statuses_by_their_value_sets(
    tmp_path: Path, kind: str, status: str | None, verdict: str, message: str | None
) -> None:
    row = run(tmp_path, therapy(kind, status=status))
    assert row["criteria"]["E5"] == verdict
    if message:
        assert said(row, "prior_therapies", message)


# ------------------------------------------------------------ F7: one concept, two meanings


@pytest.mark.parametrize("order", ORDERS)
def test_one_therapy_coded_as_two_kinds_is_one_item_of_unknown_kind(tmp_path, order) -> None:
    """Two ATC codings of one MedicationStatement became two therapies."""
    codes = ("L01BC06", "L01XX99")[::order]
    row = run(tmp_path, therapy(codes=codes), order=order)
    assert row["criteria"]["E5"] == "unknown"
    assert said(row, "prior_therapies", "its codings name different kinds")
    assert said(row, "prior_therapies", "the data show 1 item(s)")
    same = run(tmp_path, therapy(codes=("L01BC06", "L01BC06")[::order]), order=order)
    assert same["criteria"]["E5"] == "met"


@pytest.mark.parametrize("order", ORDERS)
def test_one_condition_coded_as_two_facts_sets_neither(tmp_path: Path, order: int) -> None:
    """One Condition coded cirrhosis and brain metastasis set both facts to yes."""
    both = condition(code={"coding": []})
    both["code"] = codings(SNOMED, "19943007", "94225005", order=order)
    row = run(tmp_path, both, order=order)
    assert row["criteria"]["E3"] == row["criteria"]["E4"] == "unknown"
    assert said(row, "cirrhosis", "its codings name different things")
    assert said(row, "brain_metastases", "its codings name different things")


# ------------------------------------------------------------ F16, F18: malformed values


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"valueString": "12 g/dL"}, "value[x] is given 2 times (valueQuantity, valueString)"),
        ({"effectivePeriod": {"start": "2020-01-01"}}, "effective[x] is given 2 times"),
    ],
)
def test_a_choice_element_given_twice_is_malformed(tmp_path: Path, extra: dict, message) -> None:
    row = run(tmp_path, hb(7.0, **extra))
    assert row["criteria"]["E1"] == "unknown"
    assert said(row, "hemoglobin", message)


def test_a_decimal_written_as_a_json_string_is_malformed(tmp_path: Path) -> None:
    row = run(tmp_path, hb("5.0"))
    assert row["criteria"]["E1"] == "unknown"
    assert said(row, "hemoglobin", "valueQuantity.value '5.0' is not a number")


# ------------------------------------------------------------ F8: dateTime precision


@pytest.mark.parametrize("order", ORDERS)
def test_many_fraction_digits_are_a_valid_newer_value(tmp_path: Path, order: int) -> None:
    """`.1234567891Z` (10 digits) was refused and the older 7.0 g/dL decided E1."""
    older = hb(7.0, "2024-05-21T10:00:00Z", rid="a")
    newer = hb(12.0, "2024-05-21T11:00:00.1234567891Z", rid="b")
    row = run(tmp_path, older, newer, order=order)
    assert row["criteria"]["E1"] == "not met" and not said(row, "hemoglobin", "")


def test_fraction_digits_are_cut_never_rounded_across_a_second() -> None:
    w = parse_when("2024-12-31T23:59:59.99999999999Z")
    assert w.instant == dt.datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("bad", ["2024-05-21T11:00:00", "2024-05-21T11:00Z+", "2024-05-32"])
def test_an_unusable_newer_date_leaves_the_fact_unknown(tmp_path: Path, order, bad) -> None:
    """A newer value with a time but no offset (invalid in R4) was dropped and the older
    value decided: the newest value is unknown, so the fact is."""
    older = hb(7.0, "2024-05-10T10:00:00Z", rid="a")
    newer = hb(12.0, bad, rid="b")
    row = run(tmp_path, older, newer, order=order)
    assert row["criteria"]["E1"] == "unknown"
    assert said(row, "hemoglobin", "is not a date")
    assert said(row, "hemoglobin", "could not be used and may be the newest")


def test_an_unusable_older_value_does_not_hide_a_newer_one(tmp_path: Path) -> None:
    row = run(tmp_path, hb(7.0, "2024-05-21T10:00:00Z", rid="a"), hb("x", "2024-05-10", rid="b"))
    assert row["criteria"]["E1"] == "met"
    assert not said(row, "hemoglobin", "may be the newest")
    # a value with no value (dataAbsentReason) hides nothing either
    absent = hb(None, "2024-05-25", rid="c", dataAbsentReason={"text": "haemolysed"})
    del absent["valueQuantity"]
    row = run(tmp_path, hb(7.0, "2024-05-21T10:00:00Z", rid="a"), absent)
    assert row["criteria"]["E1"] == "met"


def test_an_unusable_value_earlier_the_same_day_hides_nothing(tmp_path: Path) -> None:
    """Its time is readable (08:00Z, a text value): older than the 17:00Z value, which
    decides; at 18:00Z it may be the newest."""
    text = hb(None, "2024-05-21T08:00:00Z", rid="t", valueString="see report")
    del text["valueQuantity"]
    row = run(tmp_path, hb(7.0, "2024-05-21T17:00:00Z", rid="a"), text)
    assert row["criteria"]["E1"] == "met"
    text["effectiveDateTime"] = "2024-05-21T18:00:00Z"
    row = run(tmp_path, hb(7.0, "2024-05-21T17:00:00Z", rid="a"), text)
    assert row["criteria"]["E1"] == "unknown"
    assert said(row, "hemoglobin", "Observation/t could not be used and may be the newest")


WHOLE_LIST = """protocol "T"
  title "a list bound as a whole"
  version "1"
  date 2024-01-01
fact sglt2: list of {start: date, end: date}
codes sglt2: atc "A10BK01", atc "A10BK03"
exclusion criteria
E1 "an SGLT2 inhibitor within 8 weeks"
  rule any sglt2 with (start to end overlaps 8 weeks before enrollment)
"""


@pytest.mark.parametrize("kind", ["MedicationStatement", "MedicationAdministration"])
@pytest.mark.parametrize(("end", "status"), [("2024-05-01", "met"), ("2024-01-15", "not met")])
def test_a_therapy_list_bound_as_a_whole_reads_its_items(
    tmp_path: Path, kind: str, end: str, status: str
) -> None:
    """A list without `kind` takes its codes on the list itself: each resource is an
    item with its dates, and no diagnostic says it cannot be read (author7 F16)."""
    protocol = tmp_path / "p.crit"
    protocol.write_text(WHOLE_LIST)
    med = therapy(kind, ("A10BK03",), effectivePeriod={"start": "2023-03-01", "end": end})
    data = tmp_path / "b.json"
    entries = [{"resource": r} for r in (patient(), med)]
    data.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}))
    out = tmp_path / "out.jsonl"
    argv = ["screen", "--as-of", AS_OF, str(protocol), str(data), "--patients", str(out)]
    # an ended therapy rules nothing out while others may be unrecorded (feasibility
    # mode reads the list as complete)
    assert main([*argv, "--absent-means-no", "medications"]) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["criteria"]["E1"] == status, row
    assert not any("cannot give a value" in p for p in row["problems"]), row["problems"]
