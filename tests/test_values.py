"""Values that are not plain numbers: censored, timed, conflicting, partial, impossible.

Every case runs the small protocol below through both evaluators (compiled and reference
interpreter) and asserts the exact status on both sides of each boundary.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from critlang.backends.runtime import NA
from critlang.data.records import RecordError, load_record, read_record
from critlang.evaluate import run_compiled
from helpers import STATUS_WORDS, TwoEvaluators

AS_OF = dt.date(2026, 11, 27)

PROTOCOL = """\
anchor prrt_start "Planned start of PRRT"
fact wbc: quantity x10^9/L
  measured within 28 days before enrollment
fact platelets: quantity x10^9/L
fact glucose: quantity mg/dL
  reference range 70 mg/dL to 100 mg/dL
fact inr: number
fact ki67: quantity %
fact weight: quantity kg
fact birth_date: date
fact last_menstruation: date
fact sex: enum {female, male}
fact therapies: list of {kind: enum {chemo, other}, start: date, end: date}

codes weight: loinc "29463-7"

define age = elapsed_years(birth_date, enrollment)

inclusion criteria
W1 "wbc"
  rule wbc < 2 x10^9/L
P1 "platelets between"
  rule platelets between 50 x10^9/L and 100 x10^9/L
G1 "glucose"
  rule glucose > 2 x ULN
N1 "inr"
  rule inr <= 1.5
A1 "adult"
  rule age >= 18 years
A2 "age arithmetic"
  rule (age in years) * 2 < 100
T1 "no chemo within 4 weeks before PRRT"
  rule no therapies with (kind = chemo and end within 4 weeks before prrt_start)
M1 "menstruation"
  rule enrollment less than 2 years after last_menstruation
S1 "sex"
  rule sex = female
K1 "ki67"
  rule ki67 < 20 %
X1 "weight"
  rule weight < 150 kg
"""

BOTH = TwoEvaluators(PROTOCOL, "values.crit")
CHECKED, COMPILED, INTERPRETER = BOTH.checked, BOTH.compiled, BOTH.interpreter
EVALUATOR = BOTH.evaluator
IDS = BOTH.ids
WORDS = {**STATUS_WORDS, NA: "n/a"}


def statuses(facts: dict[str, Any], anchors: dict[str, str] | None = None, **kw: Any) -> dict:
    """Per criterion, the status both evaluators give (asserted equal)."""
    data = {"facts": facts, "anchors": anchors or {}, **kw}
    record = read_record(CHECKED, data, AS_OF)
    verdict, compiled = BOTH.statuses(record)
    out = {i: WORDS[s] for i, s in zip(IDS, compiled, strict=True)}
    out["verdict"] = verdict
    return out


def status(criterion: str, facts: dict[str, Any], **kw: Any) -> str:
    return statuses(facts, **kw)[criterion]


def wbc(value: Any, comparator: str | None = None, date: str = "2026-11-20", **more: Any) -> dict:
    entry = {"value": value, "unit": "x10^9/L", "date": date, **more}
    if comparator:
        entry["comparator"] = comparator
    return entry


# ---------------------------------------------------------------------- censored values
@pytest.mark.parametrize(
    ("comparator", "value", "expected"),
    [
        ("<", "1.5", "met"),  # every value below 1.5 is below 2
        ("<", "2", "met"),  # below 2 is below 2
        ("<=", "2", "unknown"),  # 2 itself is not below 2
        ("<", "3", "unknown"),  # 1 or 2.5
        (">", "4", "not met"),
        (">", "1.9", "unknown"),
        (">=", "2", "not met"),
        (">", "2", "not met"),
        ("<=", "1.99", "met"),
    ],
)
def test_censored_on_both_sides_of_a_threshold(comparator, value, expected) -> None:
    assert status("W1", {"wbc": wbc(value, comparator)}) == expected


def test_censored_bound_is_converted_like_a_value() -> None:
    below = {"value": 1500, "unit": "/mm3", "comparator": "<", "date": "2026-11-20"}
    assert status("W1", {"wbc": below}) == "met"  # < 1.5 x10^9/L
    above = {"value": 2500, "unit": "/mm3", "comparator": ">", "date": "2026-11-20"}
    assert status("W1", {"wbc": above}) == "not met"


@pytest.mark.parametrize(
    ("comparator", "value", "expected"),
    [
        ("<", "40", "not met"),
        ("<", "50", "not met"),
        ("<=", "50", "unknown"),
        (">", "100", "not met"),
        (">=", "100", "unknown"),
        (">", "60", "unknown"),
    ],
)
def test_censored_between(comparator, value, expected) -> None:
    platelets = {"value": value, "unit": "x10^9/L", "comparator": comparator}
    assert status("P1", {"platelets": platelets}) == expected


def test_censored_against_uln_and_plain_numbers() -> None:
    high = {"value": 250, "unit": "mg/dL", "comparator": ">"}  # ULN 100: > 250 > 200
    assert status("G1", {"glucose": high}) == "met"
    mid = {"value": 150, "unit": "mg/dL", "comparator": ">"}
    assert status("G1", {"glucose": mid}) == "unknown"
    assert status("N1", {"inr": {"value": "1.2", "comparator": "<"}}) == "met"
    assert status("N1", {"inr": {"value": "1.5", "comparator": ">"}}) == "not met"
    assert status("N1", {"inr": {"value": "1.6", "comparator": "<"}}) == "unknown"


def test_censored_value_shown_as_recorded() -> None:
    record = read_record(CHECKED, {"facts": {"wbc": wbc("1.5", "<")}}, AS_OF)
    result = EVALUATOR.evaluate(record).criteria[IDS.index("W1")]
    assert result.values["wbc"] == "< 1.5 x10^9/L on 2026-11-20"
    converted = {"value": 1500, "unit": "/mm3", "comparator": "<", "date": "2026-11-20"}
    record = read_record(CHECKED, {"facts": {"wbc": converted}}, AS_OF)
    result = EVALUATOR.evaluate(record).criteria[IDS.index("W1")]
    assert result.values["wbc"] == "< 1500 /mm3 on 2026-11-20 = < 1.5 x10^9/L"


def test_bad_comparator_is_a_diagnostic() -> None:
    record = read_record(CHECKED, {"facts": {"wbc": wbc("1.5", "~")}}, AS_OF)
    assert record.facts["wbc"] is None
    assert any("comparator '~'" in p.message for p in record.problems)


# ---------------------------------------------------------------------- time
def test_same_day_values_ordered_by_time_in_both_file_orders() -> None:
    early = wbc("1.0", date="2026-11-20T08:00:00Z")
    late = wbc("3.0", date="2026-11-20T17:30:00Z")
    assert status("W1", {"wbc": [early, late]}) == "not met"  # the 17:30 value is newest
    assert status("W1", {"wbc": [late, early]}) == "not met"


def test_offsets_reorder_two_values() -> None:
    # 23:30-05:00 on the 19th is 04:30Z on the 20th; 01:00+02:00 on the 20th is 23:00Z on
    # the 19th: the first is the newer, although its calendar day is earlier
    a = wbc("1.0", date="2026-11-19T23:30:00-05:00")
    b = wbc("3.0", date="2026-11-20T01:00+02:00")
    assert status("W1", {"wbc": [a, b]}) == "met"
    assert status("W1", {"wbc": [b, a]}) == "met"


def test_window_membership_by_the_values_own_calendar_day() -> None:
    # the window starts on 2026-10-30 (28 days before 2026-11-27)
    inside = wbc("1.0", date="2026-10-30T00:30:00+05:00")  # 2026-10-29 19:30 UTC
    assert status("W1", {"wbc": inside}) == "met"
    outside = wbc("1.0", date="2026-10-29T23:30:00-05:00")  # 2026-10-30 04:30 UTC
    assert status("W1", {"wbc": outside}) == "unknown"


def test_same_instant_conflict_that_agrees_decides() -> None:
    a = wbc("1.0", date="2026-11-20T08:00:00Z")
    b = wbc("1.5", date="2026-11-20T09:00:00+01:00")  # the same instant
    record = read_record(CHECKED, {"facts": {"wbc": [a, b]}}, AS_OF)
    assert record.facts["wbc"] is None and len(record.alternatives["wbc"]) == 2
    assert any("conflicting values" in p.message for p in record.problems)
    assert status("W1", {"wbc": [a, b]}) == "met"  # both below 2
    assert status("W1", {"wbc": [b, a]}) == "met"


def test_conflict_explained_with_every_candidate() -> None:
    a = wbc("1.0", date="2026-11-20T08:00:00Z")
    b = wbc("1.5", date="2026-11-20T08:00:00Z")
    record = read_record(CHECKED, {"facts": {"wbc": [b, a]}}, AS_OF)
    result = EVALUATOR.evaluate(record).criteria[IDS.index("W1")]
    assert result.status == "met"
    assert result.values["wbc"] == (
        "conflicting values: 1 x10^9/L on 2026-11-20T08:00:00Z; 1.5 x10^9/L on 2026-11-20T08:00:00Z"
    )


def test_same_instant_conflict_that_disagrees_is_unknown() -> None:
    a = wbc("1.0", date="2026-11-20T08:00:00Z")
    b = wbc("2.5", date="2026-11-20T08:00:00Z")
    assert status("W1", {"wbc": [a, b]}) == "unknown"
    assert status("W1", {"wbc": [b, a]}) == "unknown"


def test_same_day_date_only_values_conflict() -> None:
    a, b = wbc("1.0", date="2026-11-20"), wbc("2.5", date="2026-11-20")
    assert status("W1", {"wbc": [a, b]}) == "unknown"
    c = wbc("1.2", date="2026-11-21")
    assert status("W1", {"wbc": [a, b, c]}) == "met"  # a newer day decides


def test_date_only_value_against_a_timed_value_of_the_same_day() -> None:
    timed = wbc("1.0", date="2026-11-20T23:00:00Z")
    day = wbc("2.5", date="2026-11-20")
    assert status("W1", {"wbc": [timed, day]}) == "unknown"  # not ordered: a conflict
    next_day = wbc("2.5", date="2026-11-21")
    assert status("W1", {"wbc": [timed, next_day]}) == "not met"  # the 21st is newer


def test_two_undated_values_conflict() -> None:
    a = {"value": 60, "unit": "x10^9/L"}
    b = {"value": 120, "unit": "x10^9/L"}
    assert status("P1", {"platelets": [a, b]}) == "unknown"
    c = {"value": 70, "unit": "x10^9/L"}
    assert status("P1", {"platelets": [a, c]}) == "met"  # both between 50 and 100


def test_duplicate_json_keys_are_a_conflict(tmp_path: Path) -> None:
    path = tmp_path / "dup.json"
    path.write_text('{"facts": {"sex": "female", "sex": "male", "inr": 1.1, "inr": 1.2}}')
    record = load_record(CHECKED, path, AS_OF)
    assert record.facts["sex"] is None and len(record.alternatives["sex"]) == 2
    f = COMPILED.normalise(record)
    _, compiled = run_compiled(COMPILED, f)
    _, ref, _ = INTERPRETER.run(record)
    assert compiled == ref
    assert compiled[IDS.index("S1")] is None  # female or male: unknown
    assert compiled[IDS.index("N1")] is True  # 1.1 and 1.2 are both <= 1.5
    assert any("duplicate JSON key" in p.message for p in record.problems)


def test_duplicate_key_inside_an_entry_is_unusable(tmp_path: Path) -> None:
    path = tmp_path / "dup.json"
    path.write_text('{"facts": {"inr": {"value": 1.1, "value": 3}}}')
    record = load_record(CHECKED, path, AS_OF)
    assert record.facts["inr"] is None and "inr" not in record.alternatives
    assert any("'value' twice" in p.message for p in record.problems)


# ---------------------------------------------------------------------- status
def test_preliminary_is_used_and_marked() -> None:
    entry = wbc("1.0", status="preliminary")
    record = read_record(CHECKED, {"facts": {"wbc": entry}}, AS_OF)
    assert record.facts["wbc"] is not None
    assert record.facts["wbc"].shown().endswith("[preliminary]")
    assert status("W1", {"wbc": entry}) == "met"
    refused = read_record(CHECKED, {"facts": {"wbc": entry}}, AS_OF, refuse_preliminary=True)
    assert refused.facts["wbc"] is None


@pytest.mark.parametrize("word", ["final", "amended", "corrected"])
def test_final_statuses_are_used(word: str) -> None:
    assert status("W1", {"wbc": wbc("1.0", status=word)}) == "met"


@pytest.mark.parametrize("word", ["registered", "cancelled", "entered-in-error", "unknown", "x"])
def test_other_statuses_are_not_results(word: str) -> None:
    record = read_record(CHECKED, {"facts": {"wbc": wbc("1.0", status=word)}}, AS_OF)
    assert record.facts["wbc"] is None
    assert any("is not a result" in p.message for p in record.problems)
    # a status that says there is no result hides nothing: a usable older value is used
    # instead; "unknown" (it may be final) or a code outside the value set may hide the
    # newest value: unknown, as from FHIR (breaker7 F7)
    older = wbc("3.0", date="2026-11-10")
    hides = word in ("unknown", "x")
    got = status("W1", {"wbc": [wbc("1.0", status=word), older]})
    assert got == ("unknown" if hides else "not met")
    assert status("W1", {"wbc": [older, wbc("1.0", status=word)]}) == got  # either order
    # an older value with status unknown hides nothing: the newer one decides
    assert status("W1", {"wbc": [wbc("1.0", status=word, date="2026-11-01"), older]}) == "not met"


# ---------------------------------------------------------------------- partial dates
@pytest.mark.parametrize(
    ("birth", "expected"),
    [
        ("2000", "met"),  # 25 or 26 on 2026-11-27
        ("2008", "unknown"),  # 17 or 18
        ("2009", "not met"),  # 16 or 17
        ("2008-11", "unknown"),  # born 1-30 November 2008: 17 or 18
        ("2008-10", "met"),  # 18 whatever the day
        ("2008-12", "not met"),  # 17 whatever the day
    ],
)
def test_partial_birth_dates(birth: str, expected: str) -> None:
    assert status("A1", {"birth_date": birth}) == expected


def test_age_interval_through_arithmetic() -> None:
    # age 49 or 50: 98 or 100 < 100 -> unknown; age 30-31 -> met; age 50-51 -> not met
    assert status("A2", {"birth_date": "1976-11"}) == "unknown"  # 49 or 50
    assert status("A2", {"birth_date": "1995"}) == "met"
    assert status("A2", {"birth_date": "1975-06"}) == "not met"


def test_partial_last_menstruation() -> None:
    assert status("M1", {"last_menstruation": "2026"}) == "met"
    assert status("M1", {"last_menstruation": "2024"}) == "unknown"
    assert status("M1", {"last_menstruation": "2023"}) == "not met"


# ---------------------------------------------------------------------- impossible values
@pytest.mark.parametrize(
    ("facts", "fact", "words"),
    [
        ({"birth_date": "2027-01-01"}, "birth_date", "after the evaluation date"),
        ({"last_menstruation": "2026-12-01"}, "last_menstruation", "after the evaluation date"),
        ({"platelets": {"value": -5, "unit": "x10^9/L"}}, "platelets", "negative"),
        ({"ki67": {"value": 120, "unit": "%"}}, "ki67", "above 100 %"),
        ({"ki67": {"value": 100, "unit": "%", "comparator": ">"}}, "ki67", "above 100 %"),
        ({"weight": {"value": 7000, "unit": "kg"}}, "weight", "physiological plausibility"),
        ({"inr": "19/2"}, "inr", "not a number"),
        ({"inr": "1_0"}, "inr", "not a number"),
        ({"inr": "120/80"}, "inr", "not a number"),
        ({"inr": "1e99999"}, "inr", "not a number"),
        ({"inr": "NaN"}, "inr", "not a number"),
        ({"inr": " 1.2"}, "inr", "not a number"),
        ({"inr": 10**4300}, "inr", "plausible range"),
        ({"inr": float("inf")}, "inr", "finite"),
    ],
)
def test_impossible_values_are_unknown_with_a_diagnostic(facts, fact, words) -> None:
    record = read_record(CHECKED, {"facts": facts}, AS_OF)
    assert record.facts[fact] is None
    assert any(words in p.message and p.fact == fact for p in record.problems), record.problems


def test_ki67_at_100_is_possible() -> None:
    assert status("K1", {"ki67": {"value": 100, "unit": "%"}}) == "not met"
    assert status("K1", {"ki67": {"value": "19.9", "unit": "%"}}) == "met"


def test_huge_numbers_in_a_file_do_not_crash(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_text('{"facts": {"inr": ' + "9" * 4400 + ', "wbc": {"value": 1e99999}}}')
    record = load_record(CHECKED, path, AS_OF)
    assert record.facts["inr"] is None and record.facts["wbc"] is None
    assert len(record.problems) == 2


def test_deeply_nested_json_is_a_record_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"facts": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(RecordError):
        load_record(CHECKED, path, AS_OF)


# ---------------------------------------------------------------------- ongoing therapies
def therapy(start: str, end: Any) -> dict[str, Any]:
    return {"therapies": [{"kind": "chemo", "start": start, "end": end}]}


@pytest.mark.parametrize(
    ("end", "prrt", "expected"),
    [
        ("ongoing", "2026-12-10", "not met"),  # still on chemo 13 days before PRRT
        ("2027-03-01", "2026-12-10", "not met"),  # planned end after the evaluation date
        ("2026-11-20", "2026-12-10", "not met"),  # ended 20 days before PRRT
        ("2026-11-01", "2026-12-10", "met"),  # ended 39 days before PRRT
        ("ongoing", "2027-06-01", "unknown"),  # may stop before the window opens
    ],
)
def test_ongoing_therapy_never_looks_better_than_a_finished_one(end, prrt, expected) -> None:
    assert status("T1", therapy("2026-06-01", end), anchors={"prrt_start": prrt}) == expected


def test_therapy_ending_before_it_starts_is_impossible() -> None:
    record = read_record(CHECKED, {"facts": therapy("2026-06-01", "2026-05-01")}, AS_OF)
    assert any("after it ends" in p.message for p in record.problems)
    anchors = {"prrt_start": "2026-12-10"}
    assert status("T1", therapy("2026-06-01", "2026-05-01"), anchors=anchors) == "unknown"


# ---------------------------------------------------------------------- deceased
def test_deceased_patient_is_never_eligible() -> None:
    alive = {"sex": "female"}
    assert statuses(alive)["S1"] == "met"
    assert statuses(alive, deceased=True)["verdict"] == "ineligible"
    assert statuses(alive, deceased="2026-01-05")["verdict"] == "ineligible"
    # died after the evaluation date: alive as of then (other criteria decide)
    assert statuses(alive, deceased="2027-02-01") == statuses(alive)
    assert statuses(alive, deceased="2026")["verdict"] == "undetermined"  # perhaps dead
    record = read_record(CHECKED, {"facts": alive, "deceased": "2026-01-05"}, AS_OF)
    assert record.deceased is True
    assert any("died on 2026-01-05" in p.message for p in record.problems)
    assert read_record(CHECKED, {"facts": alive, "deceased": "2027-02-01"}, AS_OF).deceased is False
    assert read_record(CHECKED, {"facts": alive, "deceased": "2026"}, AS_OF).deceased is None


def test_example_record_round_trip(tmp_path: Path) -> None:
    """A record using every new key reads without a problem."""
    data = {
        "facts": {
            "wbc": wbc("1.5", "<", date="2026-11-20T08:00:00+01:00", status="final", source="lab"),
            "birth_date": "1968",
            "therapies": [{"kind": "other", "start": "2025-01", "end": "ongoing"}],
        }
    }
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    record = load_record(CHECKED, path, AS_OF)
    assert record.problems == []
    assert record.facts["wbc"].shown() == "< 1.5 x10^9/L on 2026-11-20T08:00:00+01:00 (lab)"


# ---------------------------------------------------------------------- robustness
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**120), 10**120)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["1.5", "<2", "19/2", "1_0", "2026", "2026-13-01", "ongoing", "final"])
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "value",
                    "unit",
                    "date",
                    "comparator",
                    "status",
                    "reference_range",
                    "low",
                    "high",
                    "kind",
                    "start",
                    "end",
                    "source",
                    "x",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(CHECKED.facts)), JSON, max_size=6), JSON)
def test_malformed_native_records_never_raise(facts: dict[str, Any], deceased: Any) -> None:
    """Issue 14 item 6: any shape of fact value is a per-fact diagnostic, never a crash,
    and the two evaluators still agree."""
    data = {"facts": facts, "deceased": deceased}
    record = read_record(CHECKED, data, AS_OF)
    _verdict, _compiled = BOTH.statuses(record)
    EVALUATOR.evaluate(record)  # explanations too


def test_eval_refuse_preliminary_option(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from critlang.cli import main

    protocol = tmp_path / "values.crit"
    protocol.write_text(PROTOCOL)
    patient = tmp_path / "p.json"
    patient.write_text(json.dumps({"facts": {"wbc": wbc("1.0", status="preliminary")}}))
    args = ["eval", "--details", "--as-of", AS_OF.isoformat(), str(protocol), str(patient)]
    main(args)
    assert "wbc 1 x10^9/L on 2026-11-20 [preliminary] < 2 x10^9/L" in capsys.readouterr().out
    main([*args, "--refuse-preliminary"])
    assert "a preliminary value is not used" in capsys.readouterr().out


def test_an_exposure_begun_after_the_evaluation_date_is_impossible() -> None:
    """A therapy recorded as started after the evaluation date had not happened then:
    a diagnostic and an unknown item, never a therapy "within 4 weeks" of PRRT."""
    anchors = {"prrt_start": "2026-12-10"}
    future = [{"kind": "chemo", "start": "2026-12-01", "end": "ongoing"}]
    assert status("T1", {"therapies": future}, anchors=anchors) == "unknown"
    record = read_record(CHECKED, {"facts": {"therapies": future}}, AS_OF)
    assert any("after the evaluation date" in p.message for p in record.problems)
    past = [{"kind": "chemo", "start": "2026-11-01", "end": "ongoing"}]
    assert status("T1", {"therapies": past}, anchors=anchors) == "not met"  # ongoing: recent


def test_one_value_in_two_units_at_one_instant_is_no_conflict() -> None:
    """8 g/dL and 80 g/L, or 2 x10^9/L and 2000 /mm3, are one value (exact, in base
    units); 8 g/dL and 81 g/L are a conflict."""
    same = [wbc(2, date="2026-11-20"), {"value": 2000, "unit": "/mm3", "date": "2026-11-20"}]
    record = read_record(CHECKED, {"facts": {"wbc": same}}, AS_OF)
    assert not record.alternatives and record.facts["wbc"] is not None
    other = [wbc(2, date="2026-11-20"), {"value": 2100, "unit": "/mm3", "date": "2026-11-20"}]
    record = read_record(CHECKED, {"facts": {"wbc": other}}, AS_OF)
    assert "wbc" in record.alternatives


@pytest.mark.parametrize("day", ["2024-02-30", "2024-06-31", "0000-01-01", "2025-13-01"])
def test_an_impossible_date_outside_the_window_is_reported_not_called_too_old(day: str) -> None:
    """A date outside the look-back window is skipped unread only when it is a real day:
    "2024-02-30" is an impossible record (FHIR R4 dateTime: valid dates), said per fact."""
    record = read_record(CHECKED, {"facts": {"wbc": [wbc("1.5", date=day)]}}, AS_OF)
    assert record.facts["wbc"] is None
    assert any(p.fact == "wbc" and "is not a date" in p.message for p in record.problems)
    assert "too old" not in record.why_unknown.get("wbc", "")
    old = read_record(CHECKED, {"facts": {"wbc": [wbc("1.5", date="2024-02-28")]}}, AS_OF)
    assert not old.problems and "too old" in old.why_unknown["wbc"]
