"""FHIR R4 statuses against the screening date (breaker 6: #2, #3, #7, #8, #11, #16).

- Patient.modifierExtension: every fact read from the Patient is unknown, as for any
  other resource (R4 extensibility.html#modifierExtension).
- Condition: clinicalStatus describes the record, abatement[x] the condition; with an
  abatement its date decides against the screening date, and active beside one is a
  contradiction (R4 con-4).
- A therapy resource that says it did not happen is set aside: it keeps no list from
  being read as complete under `--absent-means-no medications`; one that may hide an
  exposure (status unknown, a modifierExtension) does.
- active / in-progress therapies are ongoing; a recorded end before the screening date
  contradicts the status.

Each case is screened from a Bundle and from NDJSON, with the entries in both orders;
the verdict, the criterion's status and the diagnostic text are asserted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from critlang.cli import main

PROTOCOL = """protocol "TEST-I9-STATUS"
  title "statuses and time"
  version "1"
  date 2024-01-01
  sex all
  minimum age 18 years
  healthy volunteers no

fact birth_date: date
fact sex: enum {female, male}
fact cirrhosis: boolean
  history current
fact brain_metastases: boolean
  history ever
fact prior_therapies: list of {kind: enum {capecitabine, other}, start: date, end: date}

codes birth_date: fhir "Patient.birthDate"
codes sex: fhir "Patient.gender"
codes cirrhosis: snomed "19943007"
codes brain_metastases: snomed "94225005"
codes prior_therapies.capecitabine: atc "L01BC06"
codes prior_therapies.other: atc "L01XX99"

define age = elapsed_years(birth_date, enrollment)

inclusion criteria
I1 "adult"
  rule age >= 18 years
I2 "female"
  rule sex = female
exclusion criteria
E3 "cirrhosis"
  rule cirrhosis
E4 "brain metastases, ever"
  rule brain_metastases
E5 "capecitabine within 28 days"
  rule any prior_therapies with (kind = capecitabine and end within 28 days before enrollment)
E6 "capecitabine ever"
  rule any prior_therapies with (kind = capecitabine)
"""
AS_OF = "2024-06-01"
SNOMED, ATC = "http://snomed.info/sct", "http://www.whocc.no/atc"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
UCUM = "http://unitsofmeasure.org"
MODIFIER = [{"url": "http://example.org/not-this-patient", "valueBoolean": True}]
FORMS = ["bundle", "bundle-reversed", "ndjson", "ndjson-reversed"]
TWO = ["bundle", "ndjson-reversed"]  # for the larger tables: both formats, both orders
COMPLETE = ("--absent-means-no", "conditions,medications")


def patient(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "birthDate": "1970-01-01",
        "gender": "female",
    } | extra


def condition(code: str = "19943007", status: str | None = "active", **extra: Any) -> dict:
    r: dict[str, Any] = {
        "resourceType": "Condition",
        "id": f"c{code}",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SNOMED, "code": code}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
        "onsetDateTime": "2015-01-01",
    }
    if status is not None:
        r["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": status}]}
    return r | extra


def therapy(kind: str = "MedicationStatement", status: str = "completed", **extra: Any) -> dict:
    r: dict[str, Any] = {"resourceType": kind, "id": "m1", "status": status}
    r["subject"] = {"reference": "Patient/p1"}
    concept = {"coding": [{"system": ATC, "code": "L01BC06"}]}
    r["code" if kind == "Procedure" else "medicationCodeableConcept"] = concept
    if kind == "MedicationRequest":
        r |= {"intent": "order", "authoredOn": "2024-01-01"}
    return r | extra


def screen(tmp_path: Path, form: str, *resources: dict, flags: tuple[str, ...] = ()) -> dict:
    """Screens one patient's resources as a Bundle or NDJSON (in `form`'s order) as of
    AS_OF; its --patients row."""
    protocol = tmp_path / "p.crit"
    protocol.write_text(PROTOCOL)
    rows = [patient() if r is None else r for r in resources]
    if not any(r["resourceType"] == "Patient" for r in rows):
        rows.insert(0, patient())
    if form.endswith("reversed"):
        rows.reverse()
    if form.startswith("bundle"):
        data = tmp_path / "b.json"
        bundle = {"resourceType": "Bundle", "type": "collection"}
        data.write_text(json.dumps(bundle | {"entry": [{"resource": r} for r in rows]}))
    else:
        data = tmp_path / "b.ndjson"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    argv = ["screen", "--as-of", AS_OF, *flags, str(protocol), str(data), "--patients", str(out)]
    assert main(argv) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    return row


def said(row: dict, fact: str, text: str) -> bool:
    return any(p.startswith(f"{fact}:") and text in p for p in row["problems"])


def explained(row: dict, crit: str) -> str:
    return " ".join(row["explanations"][crit]["explanation"])


# ------------------------------------------------------------ #2 Patient.modifierExtension


@pytest.mark.parametrize("form", FORMS)
def test_a_patient_with_a_modifier_extension_gives_no_demographics(tmp_path, form) -> None:
    """A Patient with a modifierExtension gave its birth date: eligible, no word."""
    row = screen(tmp_path, form, patient(modifierExtension=MODIFIER))
    assert row["criteria"]["I1"] == row["criteria"]["I2"] == "unknown"
    assert row["verdict"] == "undetermined"
    why = "Patient/p1 has a modifierExtension (http://example.org/not-this-patient) critlang"
    assert said(row, "birth_date", why) and said(row, "sex", why)
    control = screen(tmp_path, form, patient())
    assert control["criteria"]["I1"] == control["criteria"]["I2"] == "met"
    assert not control["problems"] or not said(control, "birth_date", "")


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("deceased", [{"deceasedBoolean": False}, {"deceasedBoolean": True}])
def test_a_patient_with_a_modifier_extension_is_perhaps_deceased(tmp_path, form, deceased):
    """Its deceased[x], whatever it says, cannot be read: never eligible, never ruled out
    as dead either."""
    row = screen(tmp_path, form, patient(modifierExtension=MODIFIER, **deceased))
    assert row["verdict"] == "undetermined"
    assert any(
        "gives deceased[x] but has a modifierExtension" in p and "perhaps deceased" in p
        for p in row["problems"]
    )


@pytest.mark.parametrize("form", FORMS)
def test_an_age_is_not_placed_from_a_patient_that_cannot_be_read(tmp_path, form) -> None:
    """onsetAge is placed from the birth date: a Patient with a modifierExtension gives none."""
    onset = {"onsetDateTime": None, "onsetAge": {"value": 40, "system": UCUM, "code": "a"}}
    c = {k: v for k, v in condition(**onset).items() if v is not None}
    row = screen(tmp_path, form, patient(modifierExtension=MODIFIER), c)
    assert row["criteria"]["E3"] == "unknown"
    assert said(row, "cirrhosis", "needs the patient's birth date")
    assert screen(tmp_path, form, c)["criteria"]["E3"] == "met"


# ------------------------------------------------------------ #3 con-4: active and abated

ABATEMENTS = [
    {"abatementDateTime": "2020-01-01"},
    {"abatementDateTime": "2030-01-01"},
    {"abatementPeriod": {"start": "2020-01-01"}},
    {"abatementAge": {"value": 50, "system": UCUM, "code": "a"}},
    {"abatementString": "last year", "meta": {"lastUpdated": "2020-01-01T00:00:00Z"}},
    {"abatementBoolean": True, "meta": {"lastUpdated": "2020-01-01T00:00:00Z"}},
]


@pytest.mark.parametrize("form", TWO)
@pytest.mark.parametrize("status", ["active", "recurrence", "relapse"])
@pytest.mark.parametrize("abatement", ABATEMENTS)
def test_an_active_condition_with_an_abatement_contradicts_con_4(
    tmp_path: Path, form: str, status: str, abatement: dict
) -> None:
    """clinicalStatus active with an abatement in the past was read as "not current", in
    silence: a patient whose chart says active cirrhosis was eligible."""
    row = screen(tmp_path, form, condition(status=status, **abatement), flags=COMPLETE)
    assert row["criteria"]["E3"] == "unknown"
    assert row["verdict"] == "undetermined"
    assert said(row, "cirrhosis", f"clinicalStatus {status!r} with abatement")
    assert said(row, "cirrhosis", "R4 con-4")
    # `history ever`: whether it is current does not matter, it was there: yes
    ever = screen(tmp_path, form, condition("94225005", status=status, **abatement))
    assert ever["criteria"]["E4"] == "met"


@pytest.mark.parametrize("form", FORMS)
def test_abatement_boolean_false_agrees_with_an_active_status(tmp_path, form) -> None:
    row = screen(tmp_path, form, condition(abatementBoolean=False))
    assert row["criteria"]["E3"] == "met" and not said(row, "cirrhosis", "")


# ------------------------------------------------------------ #7, #8: retrospective screening

# (abatement, E3 as of 2024-06-01 for resolved/inactive/remission and for no status)
DATED = [
    ({"abatementDateTime": "2024-05-31"}, "not met"),
    ({"abatementDateTime": "2024-06-01"}, "not met"),  # on the screening date: abated
    ({"abatementDateTime": "2024-06-02"}, "met"),  # the day after: still there
    ({"abatementDateTime": "2024-06-01T23:30:00-05:00"}, "not met"),  # its own calendar day
    ({"abatementDateTime": "2024-06"}, "unknown"),  # perhaps either
    ({"abatementDateTime": "2024-05"}, "not met"),
    ({"abatementDateTime": "2024-07"}, "met"),
    ({"abatementPeriod": {"start": "2024-06-02", "end": "2024-07-01"}}, "met"),
    ({"abatementPeriod": {"start": "2024-05-01", "end": "2024-05-31"}}, "not met"),
    ({"abatementAge": {"value": 53, "system": UCUM, "code": "a"}}, "not met"),  # in 2023
    ({"abatementAge": {"value": 54, "system": UCUM, "code": "a"}}, "unknown"),  # some day of 2024
    ({"abatementAge": {"value": 55, "system": UCUM, "code": "a"}}, "met"),  # in 2025
    ({"abatementRange": {"low": {"value": 60, "system": UCUM, "code": "a"}}}, "met"),
]


@pytest.mark.parametrize("form", TWO)
@pytest.mark.parametrize("status", ["resolved", "inactive", "remission", None])
@pytest.mark.parametrize(("abatement", "expected"), DATED)
def test_the_abatement_date_decides_against_the_screening_date(
    tmp_path: Path, form: str, status: str | None, abatement: dict, expected: str
) -> None:
    """resolved with an abatement after the screening date was "not current": the status
    describes the record when it was written, the abatement when the condition ended."""
    row = screen(tmp_path, form, condition(status=status, **abatement), flags=COMPLETE)
    assert row["criteria"]["E3"] == expected
    if expected == "unknown":
        assert said(row, "cirrhosis", "perhaps after the screening date 2024-06-01")
        assert row["verdict"] == "undetermined"
    else:
        assert not said(row, "cirrhosis", "")
        assert row["verdict"] == ("ineligible" if expected == "met" else "eligible")


# (abatement without a date, E3): abated by the screening date only when the version of
# the record that says so was written by then (meta.lastUpdated); recordedDate, when the
# record was created, places nothing (realfhir7 F2: R4 example f201 "around April 9, 2013")
UPDATED = "2024-06-01T10:00:00Z"
UNDATED = [
    ({"abatementString": "last year", "meta": {"lastUpdated": UPDATED}}, "not met"),
    ({"abatementString": "last year", "meta": {"lastUpdated": "2024-06-02T00:00:00Z"}}, "unknown"),
    ({"abatementString": "last year", "meta": {"lastUpdated": "2024-06"}}, "unknown"),
    ({"abatementString": "last year", "recordedDate": "2024-06-01"}, "unknown"),
    ({"abatementString": "around April 9", "recordedDate": "2020-01-01"}, "unknown"),
    ({"abatementString": "last year"}, "unknown"),
    ({"abatementBoolean": True, "meta": {"lastUpdated": "2024-05-31T00:00:00Z"}}, "not met"),
    ({"abatementBoolean": True, "recordedDate": "2024-05-31"}, "unknown"),
    ({"abatementBoolean": True, "meta": {"lastUpdated": "2024-06-02T00:00:00Z"}}, "unknown"),
    ({"abatementBoolean": True}, "unknown"),
]


@pytest.mark.parametrize("form", TWO)
@pytest.mark.parametrize("status", ["resolved", "inactive", "remission", None])
@pytest.mark.parametrize(("abatement", "expected"), UNDATED)
def test_an_abatement_without_a_date_follows_the_last_update_whatever_the_status(
    tmp_path: Path, form: str, status: str | None, abatement: dict, expected: str
) -> None:
    """resolved with abatementString and no recordedDate was "not current", no word; with a
    recordedDate before the screening date it was "not current" although the record was
    created while the condition was ongoing (realfhir7 F2)."""
    row = screen(tmp_path, form, condition(status=status, **abatement), flags=COMPLETE)
    assert row["criteria"]["E3"] == expected
    if expected == "unknown":
        assert said(row, "cirrhosis", "abated at a time not given")


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        *[("resolved", "not met"), ("inactive", "not met"), ("remission", "not met")],
        *[("active", "met"), ("recurrence", "met"), ("relapse", "met"), (None, "met")],
    ],
)
def test_without_an_abatement_the_status_decides(tmp_path, form, status, expected) -> None:
    """No abatement: the record's status is read as the status on the screening date (an
    assumption, docs/fhir.md)."""
    row = screen(tmp_path, form, condition(status=status), flags=COMPLETE)
    assert row["criteria"]["E3"] == expected and not said(row, "cirrhosis", "")


# ------------------------------------------------------------ #11: set aside, not hidden

SET_ASIDE = [
    ("MedicationStatement", {"status": "not-taken"}, "has status 'not-taken': not taken"),
    ("MedicationStatement", {"status": "intended"}, "has status 'intended': not taken"),
    ("MedicationRequest", {"doNotPerform": True}, "has doNotPerform true"),
    ("MedicationRequest", {"intent": "proposal"}, "has intent 'proposal'"),
    ("MedicationRequest", {"intent": "plan"}, "has intent 'plan'"),
    ("MedicationRequest", {"intent": "option"}, "has intent 'option'"),
    ("MedicationRequest", {"status": "cancelled"}, "has status 'cancelled': not ordered"),
    ("MedicationRequest", {"status": "draft"}, "has status 'draft'"),
    ("MedicationAdministration", {"status": "not-done"}, "has status 'not-done': not given"),
    ("MedicationAdministration", {"status": "entered-in-error"}, "'entered-in-error'"),
    ("Procedure", {"status": "not-done"}, "has status 'not-done': not performed"),
    ("Procedure", {"status": "preparation"}, "has status 'preparation'"),
]
PERIOD = {"effectivePeriod": {"start": "2024-05-01", "end": "2024-05-20"}}


def _dated(kind: str) -> dict[str, Any]:
    if kind == "Procedure":
        return {"performedPeriod": PERIOD["effectivePeriod"]}
    return {} if kind == "MedicationRequest" else PERIOD


@pytest.mark.parametrize("form", TWO)
@pytest.mark.parametrize(("kind", "extra", "message"), SET_ASIDE)
def test_a_therapy_said_not_to_have_happened_does_not_block_a_complete_list(
    tmp_path: Path, form: str, kind: str, extra: dict, message: str
) -> None:
    """A MedicationStatement not-taken made the list "unknown (not in the record)" under
    --absent-means-no medications, while no statement at all gave "no"."""
    r = therapy(kind, **(_dated(kind) | extra))
    row = screen(tmp_path, form, r, flags=COMPLETE)
    assert row["criteria"]["E5"] == row["criteria"]["E6"] == "not met"
    assert row["verdict"] == "eligible"
    assert said(row, "prior_therapies", message) and said(row, "prior_therapies", "not used")
    # without the option the list stays open, and the explanation says why it is unknown
    row = screen(tmp_path, form, r)
    assert row["criteria"]["E6"] == "unknown"
    assert "not in the record" not in explained(row, "E6")
    assert "not used" in explained(row, "E6")


HIDDEN = [
    ("MedicationStatement", {"status": "unknown"}, "whether it was taken is not known"),
    ("MedicationAdministration", {"status": "unknown"}, "whether it was given is not known"),
    ("MedicationRequest", {"status": "unknown"}, "whether it was ordered is not known"),
    ("Procedure", {"status": "unknown"}, "whether it was performed is not known"),
    ("MedicationStatement", {"modifierExtension": MODIFIER}, "has a modifierExtension"),
    ("MedicationStatement", {"status": "taken"}, "not a code of its R4 value set"),
    # medication-statement-status / medicationrequest-status entered-in-error: "the
    # patient may have taken some of the medication" (realfhir7 F14)
    ("MedicationStatement", {"status": "entered-in-error"}, "may have taken some"),
    ("MedicationRequest", {"status": "entered-in-error"}, "may have taken some"),
]


@pytest.mark.parametrize("form", TWO)
@pytest.mark.parametrize(("kind", "extra", "message"), HIDDEN)
def test_a_therapy_that_may_hide_an_exposure_keeps_the_list_open(
    tmp_path: Path, form: str, kind: str, extra: dict, message: str
) -> None:
    """Status unknown or a modifierExtension: it may have been given, or not. Neither
    "no" (the list is not complete) nor "yes" (it may not have happened)."""
    row = screen(tmp_path, form, therapy(kind, **(_dated(kind) | extra)), flags=COMPLETE)
    assert row["criteria"]["E5"] == row["criteria"]["E6"] == "unknown"
    assert row["verdict"] == "undetermined"
    assert said(row, "prior_therapies", message)


@pytest.mark.parametrize("form", FORMS)
def test_a_procedure_of_unknown_status_keeps_a_yes_no_fact_from_no(tmp_path, form) -> None:
    """Procedure status unknown beside a resolved Condition: the fact was "no"."""
    proc = {
        "resourceType": "Procedure",
        "id": "pr1",
        "status": "unknown",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SNOMED, "code": "19943007"}]},
        "performedDateTime": "2024-01-01",
    }
    resolved = condition(status="resolved")
    row = screen(tmp_path, form, resolved, proc, flags=COMPLETE)
    assert row["criteria"]["E3"] == "unknown"
    assert said(row, "cirrhosis", "Procedure/pr1 has status 'unknown'")
    row = screen(tmp_path, form, resolved, proc | {"status": "not-done"}, flags=COMPLETE)
    assert row["criteria"]["E3"] == "not met"


# ------------------------------------------------------------ #16: ongoing exposures


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("kind", "status", "dates"),
    [
        ("MedicationStatement", "active", {"effectiveDateTime": "2024-01-01"}),
        ("MedicationStatement", "active", {"effectivePeriod": {"start": "2024-01-01"}}),
        ("MedicationAdministration", "in-progress", {"effectiveDateTime": "2024-01-01T10:00:00Z"}),
        ("Procedure", "in-progress", {"performedDateTime": "2024-01-01"}),
        ("Procedure", "in-progress", {"performedPeriod": {"start": "2024-01-01"}}),
        ("MedicationRequest", "active", {}),
    ],
)
def test_a_therapy_still_going_on_has_no_end(tmp_path, form, kind, status, dates) -> None:
    """An active MedicationStatement with effectiveDateTime 179 days ago was read as a
    therapy that ended then: eligible, while the patient is still taking it."""
    row = screen(tmp_path, form, therapy(kind, status, **dates), flags=COMPLETE)
    assert row["criteria"]["E5"] == "met" and row["verdict"] == "ineligible"
    assert "ongoing" in explained(row, "E5")
    assert not said(row, "prior_therapies", "")
    # completed: the dateTime is when it was taken, 152 days before: not within 28 days
    if kind != "MedicationRequest" and "Period" not in next(iter(dates), ""):
        done = screen(tmp_path, form, therapy(kind, "completed", **dates), flags=COMPLETE)
        assert done["criteria"]["E5"] == "not met"


@pytest.mark.parametrize("form", TWO)
@pytest.mark.parametrize(
    ("end", "expected"),
    [("2024-05-31", "unknown"), ("2024-06-01", "unknown"), ("2024-06-02", "met")],
)
@pytest.mark.parametrize("kind", ["MedicationStatement", "MedicationRequest", "Procedure"])
def test_a_therapy_still_going_on_with_an_end_already_past_contradicts_itself(
    tmp_path: Path, form: str, end: str, expected: str, kind: str
) -> None:
    """active with effectivePeriod.end in the past was read as ended, in silence."""
    if kind == "MedicationRequest":
        # validityPeriod.end is when it may be filled, not an end of taking: an active
        # order that can no longer be filled has an unknown end (realfhir7 F4)
        r = therapy(kind, "active", dispenseRequest={"validityPeriod": {"end": end}})
        element = "dispenseRequest.validityPeriod.end"
        row = screen(tmp_path, form, r, flags=COMPLETE)
        assert row["criteria"]["E5"] == expected
        stale = f"the prescription could be filled only until {end} ({element})"
        assert said(row, "prior_therapies", stale) == (expected == "unknown")
        assert row["criteria"]["E6"] == "met"
        return
    elif kind == "Procedure":
        r = therapy(kind, "in-progress", performedPeriod={"start": "2024-01-01", "end": end})
        element = "performedPeriod.end"
    else:
        r = therapy(kind, "active", effectivePeriod={"start": "2024-01-01", "end": end})
        element = "effectivePeriod.end"
    row = screen(tmp_path, form, r, flags=COMPLETE)
    assert row["criteria"]["E5"] == expected
    contradiction = f"says it goes on, but {element} {end} is on or before the screening date"
    assert said(row, "prior_therapies", contradiction) == (expected == "unknown")
    assert row["criteria"]["E6"] == "met"  # it was given, whenever it ended


# ------------------------------------------------------------ #2: the same gap elsewhere


@pytest.mark.parametrize("order", [1, -1])
@pytest.mark.parametrize("which", ["Patient", "Condition"])
def test_a_bundle_entry_with_a_modifier_extension_is_not_read(tmp_path, order, which) -> None:
    """Bundle.entry is a BackboneElement: a modifierExtension on it may change what the
    entry means, so its resource is not read (R4 extensibility.html#modifierExtension)."""
    protocol = tmp_path / "p.crit"
    protocol.write_text(PROTOCOL)
    entries = [{"resource": patient()}, {"resource": condition()}]
    for e in entries:
        if e["resource"]["resourceType"] == which:
            e["modifierExtension"] = MODIFIER
    data = tmp_path / "b.json"
    data.write_text(
        json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries[::order]})
    )
    out = tmp_path / "out.jsonl"
    argv = ["screen", "--as-of", AS_OF, *COMPLETE, str(protocol), str(data), "--patients", str(out)]
    assert main(argv) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    why = "cannot be used: its Bundle entry has a modifierExtension (http://example.org/not-this"
    if which == "Patient":
        assert row["criteria"]["I1"] == row["criteria"]["I2"] == "unknown"
        assert said(row, "birth_date", why) and said(row, "sex", why)
        assert row["criteria"]["E3"] == "met"
    else:
        assert row["criteria"]["E3"] == "unknown"  # never "no" under --absent-means-no
        assert said(row, "cirrhosis", why)
        assert row["criteria"]["I1"] == "met"


@pytest.mark.parametrize("form", FORMS)
def test_a_dispense_request_with_a_modifier_extension_leaves_the_end_unknown(tmp_path, form):
    dispense = {"modifierExtension": MODIFIER, "validityPeriod": {"end": "2024-02-01"}}
    r = therapy("MedicationRequest", "completed", dispenseRequest=dispense)
    row = screen(tmp_path, form, r, flags=COMPLETE)
    assert row["criteria"]["E5"] == "unknown" and row["criteria"]["E6"] == "met"
    assert said(row, "prior_therapies", "dispenseRequest has a modifierExtension")
    del dispense["modifierExtension"]
    r = therapy("MedicationRequest", "completed", dispenseRequest=dispense)
    row = screen(tmp_path, form, r, flags=COMPLETE)
    # validityPeriod.end (2024-02-01) is when it may be filled, never the end of taking:
    # a completed order's end stays unknown (realfhir7 F4), with no modifier diagnostic
    assert row["criteria"]["E5"] == "unknown"
    assert not said(row, "prior_therapies", "modifierExtension")


@pytest.mark.parametrize("form", FORMS)
def test_a_patient_link_with_a_modifier_extension_is_said(tmp_path, form) -> None:
    link = {"other": {"reference": "Patient/p2"}, "type": "seealso", "modifierExtension": MODIFIER}
    row = screen(tmp_path, form, patient(link=[link]))
    assert any(
        p.startswith("patient:") and "Patient.link to Patient/p2 with a modifierExtension" in p
        for p in row["problems"]
    )
