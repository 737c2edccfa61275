"""Explanations a coordinator can verify, and "needs" decided by the compiled evaluator."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from critlang.backends.python import compile_protocol
from critlang.data.records import read_record
from critlang.evaluate import CriterionResult, Evaluation, Evaluator
from critlang.frontend import analyse_file
from critlang.needs import Needs, Slot, _get, _set
from helpers import TRIAL

AS_OF = dt.date(2026, 11, 27)
CURRENT = analyse_file(TRIAL / "current.crit").result
assert CURRENT is not None
COMPILED = compile_protocol(CURRENT)
EVALUATOR = Evaluator(COMPILED)
BASE: dict[str, Any] = json.loads((TRIAL / "examples" / "eligible_arm1.json").read_text())["facts"]


def evaluate(**changes: Any) -> Evaluation:
    facts = {**BASE, **changes}
    facts = {k: v for k, v in facts.items() if v is not None}
    return EVALUATOR.evaluate(read_record(CURRENT, {"id": "p", "facts": facts}, AS_OF))


def crit(ev: Evaluation, cid: str) -> CriterionResult:
    return next(c for c in ev.criteria if c.id == cid)


def lab(value: float, unit: str, **extra: Any) -> dict[str, Any]:
    return {"value": value, "unit": unit, "date": "2026-11-20", **extra}


def test_not_met_exclusion_lists_every_failed_clause() -> None:
    e6 = crit(evaluate(), "E6")
    assert e6.status == "not met"
    assert e6.explanation == [
        "none of these holds:",
        "  ✗ Total bilirubin 0.8 mg/dL on 2026-11-20 > 3 mg/dL (assumed: bilirubin_limit)",
        "  ✗ International normalised ratio 1.1 on 2026-11-20 > 1.5",
        "  ✗ Serum albumin 4 g/dL on 2026-11-20 < 3.0 g/dL",
        "  ✓ unless (the exception applies): Prothrombin time 12 s on 2026-11-20 within the "
        "normal range (reference range 11-13.5 s (reported with the value))",
        "  ✗ Liver cirrhosis no",
        "  ✗ Ascites no",
    ]


def test_ki67_below_cutoff_is_not_said_to_decide_by_ki67_above() -> None:
    e1 = crit(evaluate(), "E1")
    assert e1.status == "not met"
    assert "  ✗ Ki-67 proliferation index 8 % > 20 %" in e1.explanation
    assert "  ✗ WHO tumour grade G2: is not G3" in e1.explanation


def test_met_criterion_with_unless() -> None:
    e9 = crit(evaluate(brain_metastases=True, brain_metastases_treated_and_stable=False), "E9")
    assert e9.status == "met"
    assert e9.explanation == [
        "✓ Known brain metastases yes",
        "✗ unless (exception does not apply): Brain metastases treated and stabilised no",
    ]
    e9 = crit(evaluate(brain_metastases=True, brain_metastases_treated_and_stable=True), "E9")
    assert e9.status == "not met"
    assert e9.explanation[-1] == (
        "✓ unless (the exception applies): Brain metastases treated and stabilised yes"
    )


def test_dual_unit_threshold_shows_the_value_in_the_deciding_unit() -> None:
    e8 = crit(evaluate(hemoglobin=lab(8.0, "g/dL")), "E8")
    assert e8.status == "met"
    # 8.0 g/dL is 4.965 mmol/L, below the deciding 5.0 mmol/L (not "8 < 8.0")
    assert e8.explanation == [
        "✓ Haemoglobin 8 g/dL on 2026-11-20 = 4.965 mmol/L < 5.0 mmol/L; the protocol also "
        "writes 8.0 g/dL"
    ]
    assert e8.decided_by == "hemoglobin < 5.0 mmol/L (8.0 g/dL)"


def test_derived_values_are_shown_with_their_inputs() -> None:
    e7 = crit(evaluate(), "E7")
    assert e7.explanation[0] == "✗ creatinine clearance 91.36 mL/min < 50 mL/min"
    assert (
        "    age = 66 years, from completed years from Date of birth 1960-03-15 to enrollment "
        "2026-11-27" in e7.explanation
    )
    cg = next(x for x in e7.explanation if x.lstrip().startswith("cockcroft-gault ="))
    assert "(140 - 66 years) × 80 kg" in cg and "(72 × 0.9 mg/dL)" in cg
    assert cg.endswith(
        "= 91.36 mL/min (age 66 years; weight 80 kg; creatinine 0.9 mg/dL; sex male)"
    )
    e11 = crit(evaluate(fasting_glucose=lab(250, "mg/dL", reference_range=_range(70, 100))), "E11")
    assert e11.status == "met"
    assert e11.explanation == [
        "✓ Fasting blood glucose 250 mg/dL on 2026-11-20 > 2 × ULN = 2 × 100 mg/dL = 200 mg/dL",
        "    2 × ULN from the reference range 70-100 mg/dL (reported with the value)",
    ]


def _range(low: float, high: float) -> dict[str, Any]:
    return {"low": low, "high": high, "unit": "mg/dL"}


def test_list_rule_is_summarised() -> None:
    lesions = [{"krenning": 3}, {"krenning": 1}, {"krenning": 2}, {"krenning": 0}]
    i4 = crit(evaluate(pet_lesions=lesions), "I4")
    assert i4.status == "not met"
    assert i4.explanation[0] == (
        "✗ 2 of 4 pet lesions with krenning >= krenning_threshold; the rule asks for more than half"
    )
    assert "    ✗ item 2: krenning 1 ≥ 2 (assumed: krenning_threshold)" in i4.explanation


def test_measured_and_computed_clearance_disagree() -> None:
    e7 = crit(evaluate(measured_clearance=lab(55, "mL/min")), "E7")
    assert e7.status == "not met"
    assert e7.explanation == [
        "✗ creatinine clearance 55 mL/min < 50 mL/min",
        "    creatinine clearance = 55 mL/min, from Measured creatinine clearance or "
        "plasma-clearance GFR (not gamma-camera based) 55 mL/min on 2026-11-20",
    ]  # Cockcroft-Gault gives 91 mL/min: both agree, nothing more to say
    heavy_creatinine = lab(2.0, "mg/dL")
    e7 = crit(
        evaluate(measured_clearance=lab(55, "mL/min"), serum_creatinine=heavy_creatinine), "E7"
    )
    line = next(x for x in e7.explanation if "disagree" in x)
    assert (
        "55 mL/min on 2026-11-20 decides (does not meet < 50 mL/min), but cockcroft-gault" in line
    )
    assert line.endswith("but cockcroft-gault 41.11 mL/min would meet it")


def test_woman_e13_is_explained_by_her_own_clauses() -> None:
    ev = evaluate(
        sex="female",
        last_menstruation="2026-05-20",
        surgically_sterile=False,
        effective_nonhormonal_contraception=False,
    )
    e13 = crit(ev, "E13")
    assert e13.status == "met"
    text = "\n".join(e13.explanation)
    assert "✓ Sex female: is female" in text
    assert "less than 2 years after Date of last menstruation 2026-05-20" in text
    assert "male" not in text.replace("female", "")  # nothing about the male clause


def test_needs_for_a_male_patient_leaves_out_menstruation() -> None:
    ev = evaluate(
        surgically_sterile=None,
        partner_of_childbearing_potential=None,
        effective_nonhormonal_contraception=None,
    )
    assert ev.verdict == "undetermined"
    assert "last_menstruation" not in ev.missing
    # a measured clearance would replace the computed one in E7: it could change it too
    assert ev.missing == [
        "effective_nonhormonal_contraception",
        "measured_clearance",
        "partner_of_childbearing_potential",
        "surgically_sterile",
    ]
    assert crit(ev, "E13").missing == [
        "effective_nonhormonal_contraception (not in the record)",
        "partner_of_childbearing_potential (not in the record)",
        "surgically_sterile (not in the record)",
    ]


def test_needs_for_a_therapy_without_end_date() -> None:
    therapy = {"kind": "capecitabine", "start": "2025-01-01"}
    ev = evaluate(prior_therapies=[{"kind": "tace", "end": "2020-01-01"}, therapy])
    assert ev.verdict == "undetermined"
    assert ev.missing == ["measured_clearance", "prior_therapies[2].end"]
    e3 = crit(ev, "E3")
    assert e3.missing == ["prior_therapies[2].end (not in the record)"]


def test_needs_says_why_a_recorded_item_was_not_used() -> None:
    """An item the record gives but the reader refused is not "not in the record"
    (author7 F15): the reason is the reader's."""
    therapy = {"kind": "capecitabine", "start": "2027-01-01", "end": "2027-02-01"}
    ev = evaluate(prior_therapies=[{"kind": "tace", "end": "2020-01-01"}, therapy])
    assert crit(ev, "E3").missing == [
        "prior_therapies[2].end (not used: start (2027-01-01) after the evaluation date "
        "(2026-11-27): impossible for something recorded as having happened)"
    ]


def test_needs_names_a_censored_a_partial_and_a_conflicting_value() -> None:
    """A value known only as an interval, or in conflict, is what holds the verdict: it is
    named (a precise or agreed value may decide), never only the other unknowns."""
    ev = evaluate(wbc=lab("3", "x10^9/L", comparator="<"))
    assert ev.verdict == "undetermined" and "wbc" in ev.missing
    assert crit(ev, "E8").missing == [
        "wbc (known only as < 3 x10^9/L on 2026-11-20: a precise value may decide)"
    ]
    ev = evaluate(hemoglobin=[lab(13.5, "g/dL", date="2026-11-20T10:00:00Z"),
                              lab(7, "g/dL", date="2026-11-20T10:00:00Z")])  # fmt: skip
    assert "hemoglobin" in ev.missing
    assert crit(ev, "E8").missing[0].startswith("hemoglobin (conflicting values: 13.5 g/dL")
    therapy = {"kind": "capecitabine", "start": "2025-01-01", "end": "2025-11"}
    ev = evaluate(prior_therapies=[therapy])
    assert "prior_therapies[1].end" in ev.missing
    assert crit(ev, "E3").missing == [
        "prior_therapies[1].end (known only as 2025-11 (day not recorded): "
        "a precise value may decide)"
    ]


def test_undetermined_always_names_something() -> None:
    for name in BASE:
        ev = evaluate(**{name: None})
        if ev.verdict == "undetermined":
            assert ev.missing, name


# ---------------------------------------------------------------------- property

NEEDS = Needs(COMPILED)
DROPPABLE = sorted(k for k in BASE if k not in ("birth_date",))


@st.composite
def undetermined_patients(draw: st.DrawFn) -> dict[str, Any]:
    facts = dict(BASE)
    for name in draw(st.lists(st.sampled_from(DROPPABLE), min_size=1, max_size=6, unique=True)):
        del facts[name]
    if draw(st.booleans()):
        facts["sex"] = "female"
        facts["last_menstruation"] = draw(st.sampled_from(["2026-05-20", "2020-01-01"]))
    if draw(st.booleans()):
        end = draw(st.sampled_from([None, "2026-11-01", "2024-01-01"]))
        item: dict[str, Any] = {"kind": draw(st.sampled_from(["capecitabine", "tace", "other"]))}
        if end:
            item["end"] = end
        facts["prior_therapies"] = [item]
    return facts


@settings(max_examples=60, deadline=None)
@given(undetermined_patients(), st.data())
def test_needs_is_exactly_what_can_change_the_verdict(facts: dict, data: st.DataObject) -> None:
    record = read_record(CURRENT, {"id": "p", "facts": facts}, AS_OF)
    f = COMPILED.normalise(record)
    verdict, _ = COMPILED.evaluate(f)
    if verdict != "undetermined":
        return
    needed = NEEDS.find(f)
    assert needed
    # outside "needs": no value of any other unknown input changes the verdict
    for crit_ in COMPILED.criteria:
        for slot in NEEDS.slots(f, crit_.facts):
            if slot in needed:
                continue
            for value in NEEDS.prober.probes(slot, f):
                assert COMPILED.evaluate(_set(f, slot, value))[0] == verdict, (slot, value)
    # inside: at least one, set (with the others of its criterion) changes the verdict
    assert any(_changes_verdict(f, s, needed) for s in needed)


def _changes_verdict(f: dict, slot: Slot, needed: list[Slot]) -> bool:
    assert _get(f, slot) is None
    for v in NEEDS.prober.probes(slot, f):
        if COMPILED.evaluate(_set(f, slot, v))[0] != "undetermined":
            return True
    return False


def test_eval_text_shows_explanations_and_needs() -> None:
    path = TRIAL / "examples" / "ineligible_hb_8_0_g_dl.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "critlang",
            "eval",
            "--as-of",
            "2026-11-27",
            str(TRIAL / "current.crit"),
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "      ✓ Haemoglobin 8 g/dL on 2026-11-20 = 4.965 mmol/L < 5.0 mmol/L" in proc.stdout
    assert "decided by" not in proc.stdout


def test_explanations_do_not_load_pint_or_the_interpreter() -> None:
    code = (
        "import io, contextlib, sys\n"
        "from critlang.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main(['eval', '--details', '--as-of', '2026-11-27', {str(TRIAL / 'current.crit')!r},"
        f" {str(TRIAL / 'examples' / 'incomplete_no_labs.json')!r}])\n"
        "print(sorted(m for m in ('pint', 'z3', 'critlang.interpreter') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_needs_names_a_missing_reference_range() -> None:
    ev = evaluate(fasting_glucose=lab(250, "mg/dL"))  # no reference range reported
    assert ev.verdict == "undetermined"
    assert "fasting_glucose.reference_range.high" in ev.missing
    e11 = crit(ev, "E11")
    assert e11.missing == ["fasting_glucose.reference_range.high (not reported with the value)"]


def test_blood_pressure_pair_and_implication_are_explained() -> None:
    from critlang.frontend import analyse_text

    text = (
        'protocol "X"\nfact bp: blood pressure\nfact diabetic: boolean\nfact hba1c: quantity %\n'
        'inclusion criteria\nI1 "bp"\n  rule bp < 140/90 mmHg\n'
        'I2 "dm"\n  rule if diabetic then hba1c < 8.0 %\n'
    )
    checked = analyse_text(text, "x.crit").result
    assert checked is not None and checked.ok
    ev = Evaluator(compile_protocol(checked))
    bp = {"systolic": 150, "diastolic": 85, "unit": "mm[Hg]", "date": "2026-11-20"}
    facts = {"bp": bp, "diabetic": True, "hba1c": {"value": 7.5, "unit": "%"}}
    e = ev.evaluate(read_record(checked, {"facts": facts}, AS_OF))
    i1, i2 = e.criteria
    assert i1.status == "not met" and i1.explanation == [
        "✗ bp 150/85 mm[Hg] on 2026-11-20 < 140/90 mmHg (both parts must hold: systolic 150 ✗, "
        "diastolic 85 ✓)"
    ]
    assert i2.status == "met"
    assert i2.explanation == ["✓ if:", "  ✓ diabetic yes", "✓ then:", "  ✓ hba1c 7.5 % < 8.0 %"]
    e = ev.evaluate(read_record(checked, {"facts": {"diabetic": False}}, AS_OF))
    assert e.criteria[1].explanation == [
        "✓ the condition does not hold, so nothing is required:",
        "  ✗ diabetic no",
    ]
