"""Blood-pressure components (reading8 item 1): a censored component is a bound, parts in
different units of pressure convert, a component with dataAbsentReason or no code never
shifts the other's meaning. Each case is read from FHIR and run by both evaluators (the
compiled code and the interpreter, which must agree), and through `screen` for the
explanation; a quantity fact read from a component is also screened through `ingest`
and DuckDB, which must agree with Python."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from critlang.cli import main
from critlang.data.fhir import Extractor, Tally, read_fhir
from critlang.data.reader import Reader
from helpers import TwoEvaluators, write_fhir
from test_fhir_realworld7 import duckdb_row, said, screen

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
AS_OF = dt.date(2024, 6, 1)

PROTOCOL = """fact bp: blood pressure
codes bp: loinc "85354-9", loinc "55284-4"
inclusion criteria
I1 "controlled: below 140/90"
  rule bp < 140/90 mmHg
I2 "systolic at least 130"
  rule bp.systolic >= 130 mmHg
exclusion criteria
E1 "above 160/100"
  rule bp > 160/100 mmHg
"""


def part(code: str | None, value: Any = None, unit: str = "mm[Hg]", **extra: Any) -> dict:
    """One component; `value` None leaves out valueQuantity; extra: comparator, or
    component elements (dataAbsentReason)."""
    comp: dict[str, Any] = {}
    if code is not None:
        comp["code"] = {"coding": [{"system": LOINC, "code": code}]}
    if value is not None:
        q = {"value": value, "unit": unit, "system": UCUM, "code": unit}
        if "comparator" in extra:
            q["comparator"] = extra.pop("comparator")
        comp["valueQuantity"] = q
    return comp | extra


def panel(*components: dict, code: str = "85354-9") -> dict:
    return {
        "resourceType": "Observation",
        "id": "bp1",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": "2024-05-20",
        "component": list(components),
    }


PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"}
ABSENT = {
    "dataAbsentReason": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                "code": "not-performed",
            }
        ]
    }
}
WORDS = {True: "met", False: "not met", None: "unknown"}


def statuses(tmp_path: Path, obs: dict, protocol: str = PROTOCOL) -> tuple[dict, list[str]]:
    """{criterion: met / not met / unknown} from both evaluators (asserted equal), and
    the problems on `bp`."""
    two = TwoEvaluators(protocol, "bp.crit")
    (path,) = write_fhir(
        tmp_path,
        [("b.json", {"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": PATIENT}, {"resource": obs}]})],
    )  # fmt: skip
    tally = Tally()
    (p,) = list(read_fhir([path], Extractor(two.checked), AS_OF, tally))
    record = Reader(two.checked, p.path, AS_OF).read(p.record)
    _, got = two.statuses(record)
    problems = [x.message for x in [*p.problems, *record.problems] if x.fact == "bp"]
    return {c: WORDS.get(s, s) for c, s in zip(two.ids, got, strict=True)}, problems


# ---------------------------------------------------------------- (a) censored parts


@pytest.mark.parametrize(
    ("systolic", "diastolic", "expected"),
    [
        # "> 170": either part above 160/100 suffices; never below 140/90
        ((">", 170), 80, {"I1": "not met", "I2": "met", "E1": "met"}),
        # "< 130" with 80: surely below 140/90; whether >= 130 is unknown; not above
        (("<", 130), 80, {"I1": "met", "I2": "not met", "E1": "not met"}),
        # "< 150": may be above or below 140: unknown (as a censored plain value)
        (("<", 150), 80, {"I1": "unknown", "I2": "unknown", "E1": "not met"}),
        # ">= 130" meets ">= 130" exactly at its bound
        ((">=", 130), 80, {"I1": "unknown", "I2": "met", "E1": "unknown"}),
        # a censored diastolic "< 60" beside an exact systolic 120
        (120, ("<", 60), {"I1": "met", "I2": "not met", "E1": "not met"}),
        # "> 100" diastolic: above 160/100 whatever the systolic
        (120, (">", 100), {"I1": "not met", "I2": "not met", "E1": "met"}),
    ],
)
def test_a_censored_component_is_a_bound(tmp_path, systolic, diastolic, expected) -> None:
    def one(code: str, v: Any) -> dict:
        if isinstance(v, tuple):
            return part(code, v[1], comparator=v[0])
        return part(code, v)

    got, problems = statuses(tmp_path, panel(one("8480-6", systolic), one("8462-4", diastolic)))
    assert got == expected
    assert problems == []


@pytest.mark.parametrize("form", ["bundle", "ndjson-reversed"])
def test_a_censored_component_is_explained_as_a_bound(tmp_path, form) -> None:
    obs = panel(part("8480-6", 170, comparator=">"), part("8462-4", 80))
    row = screen(tmp_path, form, [PATIENT, obs], PROTOCOL)
    assert row["criteria"] == {"I1": "not met", "I2": "met", "E1": "met"}
    assert not said(row, "bp", "")
    shown = json.dumps(row["explanations"])
    assert ">170/80 mm[Hg]" in shown, shown
    assert "systolic above 170" in shown, shown


def test_a_censored_part_that_is_impossible_is_refused(tmp_path) -> None:
    """ "< 0" allows only negative pressures; a diastolic "> 130" beside a systolic "<= 120"
    is surely above it (swapped): neither is a pressure."""
    got, problems = statuses(tmp_path, panel(part("8480-6", 0, comparator="<"), part("8462-4", 80)))
    assert got == {"I1": "unknown", "I2": "unknown", "E1": "unknown"}
    assert any("negative" in p for p in problems), problems
    obs = panel(part("8480-6", 120, comparator="<="), part("8462-4", 130, comparator=">"))
    got, problems = statuses(tmp_path, obs)
    assert got == {"I1": "unknown", "I2": "unknown", "E1": "unknown"}
    assert any("look swapped" in p for p in problems), problems
    # a diastolic "< 130" beside a systolic 120 may be below it: read
    obs = panel(part("8480-6", 120), part("8462-4", 130, comparator="<"))
    got, problems = statuses(tmp_path, obs)
    assert got == {"I1": "unknown", "I2": "not met", "E1": "unknown"} and problems == []


# ---------------------------------------------------------------- (b) units


@pytest.mark.parametrize(
    ("systolic", "diastolic", "expected"),
    [
        # 21.33 kPa is 159.99 mm[Hg] (UCUM mm[Hg] = 133.322 Pa): below 160, not "units differ"
        ((21.33, "kPa"), (80, "mmHg"), {"I1": "not met", "I2": "met", "E1": "not met"}),
        # 21.34 kPa is 160.06 mm[Hg]: above 160
        ((21.34, "kPa"), (80, "mm[Hg]"), {"I1": "not met", "I2": "met", "E1": "met"}),
        # mmHg beside mm[Hg]: one unit spelt two ways
        ((128, "mmHg"), (84, "mm[Hg]"), {"I1": "met", "I2": "not met", "E1": "not met"}),
        # a censored part in kPa: "> 22 kPa" is above 165 mm[Hg]
        ((">", 22, "kPa"), (80, "mm[Hg]"), {"I1": "not met", "I2": "met", "E1": "met"}),
    ],
)
def test_parts_in_different_units_of_pressure_convert(
    tmp_path, systolic, diastolic, expected
) -> None:
    def one(code: str, v: tuple) -> dict:
        if len(v) == 3:
            return part(code, v[1], v[2], comparator=v[0])
        return part(code, v[0], v[1])

    got, problems = statuses(tmp_path, panel(one("8480-6", systolic), one("8462-4", diastolic)))
    assert got == expected
    assert problems == []


def test_a_part_in_another_dimension_is_a_conflict_said(tmp_path) -> None:
    """Only a truly different dimension is refused: a diastolic in mm (a length)."""
    got, problems = statuses(tmp_path, panel(part("8480-6", 170), part("8462-4", 80, "mm")))
    assert got == {"I1": "unknown", "I2": "unknown", "E1": "unknown"}
    assert any("the diastolic unit 'mm' is" in p and "not a pressure" in p for p in problems)


# ---------------------------------------------------------------- (c) absent, no code


@pytest.mark.parametrize("order", ["as written", "reversed"])
def test_an_absent_or_uncoded_component_never_shifts_the_other(tmp_path, order) -> None:
    """A diastolic with dataAbsentReason, and a component with no code whose value (200)
    would decide everything if read as a part: the systolic 150 alone is read, in either
    array order, and both are said."""
    comps = [part(None, 200), part("8480-6", 150), part("8462-4", **ABSENT)]
    if order == "reversed":
        comps.reverse()
    got, problems = statuses(tmp_path, panel(*comps))
    # 150/? : not below 140/90, systolic >= 130, above 160/100 unknown (diastolic unknown)
    assert got == {"I1": "not met", "I2": "met", "E1": "unknown"}
    assert any("no code is neither part" in p for p in problems), problems
    assert any("diastolic has no value (dataAbsentReason 'not-performed')" in p for p in problems)


def test_a_component_with_a_value_and_a_data_absent_reason_is_unknown(tmp_path) -> None:
    obs = panel(part("8480-6", 150), part("8462-4", 120, **ABSENT))
    got, problems = statuses(tmp_path, obs)
    assert got == {"I1": "not met", "I2": "met", "E1": "unknown"}
    assert any("has a value and a dataAbsentReason" in p for p in problems), problems


def test_every_part_absent_is_no_value(tmp_path) -> None:
    obs = panel(part("8480-6", **ABSENT), part("8462-4", **ABSENT), code="55284-4")
    got, problems = statuses(tmp_path, obs)
    assert got == {"I1": "unknown", "I2": "unknown", "E1": "unknown"}
    assert any("no value (dataAbsentReason" in p for p in problems), problems


# ------------------------------------------------ a quantity fact read from a component

SBP = """fact sbp: quantity mm[Hg]
codes sbp: loinc "8480-6"
exclusion criteria
E1 "systolic above 160"
  rule sbp > 160 mmHg
"""


@pytest.mark.parametrize(
    ("value", "unit", "comparator", "expected"),
    [
        (170, "mm[Hg]", ">", "met"),
        (150, "mm[Hg]", "<", "not met"),
        (21.33, "kPa", None, "not met"),
        (21.34, "kPa", None, "met"),
        (21, "kPa", ">", "unknown"),  # > 157.5 mm[Hg]: may be either side of 160
    ],
)
@pytest.mark.parametrize("where", ["component", "observation"])
def test_a_systolic_fact_from_a_component_or_its_own_observation(
    tmp_path, value, unit, comparator, expected, where
) -> None:
    """The same rule for a component and a separate Observation 8480-6, in Python and
    through ingest + DuckDB."""
    q = part("8480-6", value, unit, **({"comparator": comparator} if comparator else {}))
    if where == "component":
        obs = panel(q, part("8462-4", 80))
    else:
        obs = panel() | {"code": q["code"], "valueQuantity": q["valueQuantity"]}
        del obs["component"]
    row = screen(tmp_path, "bundle", [PATIENT, obs], SBP)
    assert row["criteria"]["E1"] == expected, row
    assert duckdb_row(tmp_path, "bundle", [PATIENT, obs], SBP)["E1"] == expected


def test_a_blood_pressure_fact_is_refused_by_ingest_saying_so(tmp_path) -> None:
    """The SQL back end holds no blood-pressure pair: ingest refuses it with the reason,
    never a silently wrong cohort."""
    (tmp_path / "p.crit").write_text(PROTOCOL)
    (path,) = write_fhir(tmp_path, [("b.ndjson", [PATIENT, panel(part("8480-6", 150))])])
    out = tmp_path / "c.duckdb"
    assert main(["ingest", "-o", str(out), str(tmp_path / "p.crit"), str(path)]) == 1
    assert not out.exists()


# ------------------------------------------------ separate systolic / diastolic Observations

SEPARATE = PROTOCOL.replace(
    'codes bp: loinc "85354-9", loinc "55284-4"', 'codes bp: loinc "8480-6", loinc "8462-4"'
)


def single(oid: str, code: str, value: Any, when: str = "2024-05-20T08:00:00Z", **q: Any) -> dict:
    obs = panel(code=code) | {"id": oid, "effectiveDateTime": when}
    del obs["component"]
    return obs | {"valueQuantity": part(code, value, **q)["valueQuantity"]}


def statuses_of(tmp_path: Path, rows: list[dict], protocol: str) -> tuple[dict, list[str]]:
    two = TwoEvaluators(protocol, "bp.crit")
    entries = [{"resource": r} for r in [PATIENT, *rows]]
    (path,) = write_fhir(
        tmp_path, [("b.json", {"resourceType": "Bundle", "type": "collection", "entry": entries})]
    )
    (p,) = list(read_fhir([path], Extractor(two.checked), AS_OF, Tally()))
    record = Reader(two.checked, p.path, AS_OF).read(p.record)
    _, got = two.statuses(record)
    problems = [x.message for x in [*p.problems, *record.problems] if x.fact == "bp"]
    return {c: WORDS.get(s, s) for c, s in zip(two.ids, got, strict=True)}, problems


@pytest.mark.parametrize("order", ["sd", "ds"])
def test_separate_systolic_and_diastolic_of_one_instant_are_one_pair(tmp_path, order) -> None:
    """8480-6 and 8462-4 as two Observations at one instant are read as one pressure
    (a censored systolic too), in either order; at different instants each is a part
    alone, the newest deciding."""
    rows = [single("s", "8480-6", 170, comparator=">"), single("d", "8462-4", 80)]
    if order == "ds":
        rows.reverse()
    got, problems = statuses_of(tmp_path, rows, SEPARATE)
    assert got == {"I1": "not met", "I2": "met", "E1": "met"} and problems == []
    rows = [single("s", "8480-6", 150), single("d", "8462-4", 85)]
    got, _ = statuses_of(tmp_path, rows, SEPARATE)
    assert got == {"I1": "not met", "I2": "met", "E1": "not met"}
    # the diastolic an hour later: the newest value is diastolic 85 alone
    rows = [single("s", "8480-6", 150), single("d", "8462-4", 85, "2024-05-20T09:00:00Z")]
    got, _ = statuses_of(tmp_path, rows, SEPARATE)
    assert got == {"I1": "unknown", "I2": "unknown", "E1": "unknown"}


def test_an_observation_with_a_value_and_a_data_absent_reason_is_unusable(tmp_path) -> None:
    """R4 obs-6: dataAbsentReason only without a value; both: unusable, said (never the
    value, never 'no value' that would let an older one decide)."""
    obs = single("s", "8480-6", 170) | ABSENT
    older = single("o", "8480-6", 120, "2024-05-01")
    row = screen(tmp_path, "bundle", [PATIENT, obs, older], SBP)
    assert row["criteria"]["E1"] == "unknown"
    assert said(row, "sbp", "has a value and a dataAbsentReason 'not-performed' (R4 obs-6)")
