"""Every example patient of the trial: expected verdict and per-criterion results."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from critlang.backends.python import compile_protocol
from critlang.backends.runtime import NA
from critlang.data.records import SCHEMA_PATH, load_record
from critlang.evaluate import Evaluator
from critlang.frontend import analyse_file
from critlang.interpreter import Interpreter
from helpers import TRIAL

EXAMPLES = sorted((TRIAL / "examples").glob("*.json"))
WORDS = {True: "met", False: "not met", None: "unknown"}


@pytest.fixture(scope="module")
def current():
    a = analyse_file(TRIAL / "current.crit")
    assert a.result is not None
    return a.result, Evaluator(compile_protocol(a.result))


def test_example_families_present() -> None:
    names = {p.stem for p in EXAMPLES}
    assert len(names) >= 30
    for must in (
        "eligible_arm1",
        "ineligible_liver_bilirubin",
        "ineligible_renal_cockcroft_gault",
        "ineligible_blood_platelets",
        "ineligible_diabetes",
        "ineligible_tace_recent",
        "ki67_exactly_20",
        "platelets_exactly_75",
        "wbc_2000_per_mm3",
        "hb_5_0_mmol",
        "hb_8_1_g_dl",
        "renal_boundary_crcl_50",
        "incomplete_no_labs",
        "malformed_values",
    ):
        assert must in names


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example(path: Path, current) -> None:
    checked, evaluator = current
    data = json.loads(path.read_text())
    record = load_record(checked, path, dt.date.fromisoformat(data["as_of"]))
    result = evaluator.evaluate(record)
    expect = data["expect"]
    assert result.verdict == expect["verdict"]
    statuses = result.statuses()
    for cid, status in expect["criteria"].items():
        assert statuses[cid] == status, cid
    # the oracle agrees on every criterion (when the arm is known)
    if result.per_arm:
        return
    verdict, raw, _ = Interpreter(checked).run(record)
    assert verdict == result.verdict
    words = ["not applicable" if s is NA else WORDS[s] for s in raw]
    assert words == [c.status for c in result.criteria]


def test_unknown_verdict_names_missing_facts(current) -> None:
    checked, evaluator = current
    path = TRIAL / "examples" / "incomplete_no_labs.json"
    record = load_record(checked, path, dt.date(2026, 11, 27))
    result = evaluator.evaluate(record)
    assert result.verdict == "undetermined"
    for fact in ("hemoglobin", "platelets", "serum_creatinine", "weight", "pet_lesions"):
        assert fact in result.missing
    assert "birth_date" not in result.missing


def test_malformed_values_give_diagnostics_not_verdicts(current) -> None:
    checked, _evaluator = current
    record = load_record(
        checked, TRIAL / "examples" / "malformed_values.json", dt.date(2026, 11, 27)
    )
    problems = {p.fact: p.message for p in record.problems}
    assert "not a number" in problems["hemoglobin"]
    assert "count per volume" in problems["platelets"]
    assert "too old" in record.why_unknown["wbc"]
    assert record.facts["hemoglobin"] is None and record.facts["platelets"] is None
    assert record.facts["albumin"] is not None  # the rest of the record is still used


def test_arm_unknown_reports_each_arm(current) -> None:
    checked, evaluator = current
    record = load_record(checked, TRIAL / "examples" / "arm_unknown.json", dt.date(2026, 11, 27))
    result = evaluator.evaluate(record)
    assert {a: e.verdict for a, e in result.per_arm.items()} == {
        "arm_1": "eligible",
        "arm_2": "ineligible",
    }
    assert evaluator.evaluate(record, arm="arm_1").verdict == "eligible"


def test_examples_follow_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA_PATH.read_text())
    for path in EXAMPLES:
        jsonschema.validate(json.loads(path.read_text()), schema)
