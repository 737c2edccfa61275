"""Back-end details: Cockcroft-Gault, records, three-valued logic, code safety, CLI eval."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from critlang.backends.python import compile_protocol
from critlang.backends.runtime import EXPORTS, NA, add_months
from critlang.data.records import read_record
from critlang.evaluate import Evaluator, run_compiled
from critlang.frontend import analyse_file, analyse_text
from critlang.interpreter import Interpreter
from helpers import TRIAL

AS_OF = dt.date(2026, 11, 27)
CURRENT = analyse_file(TRIAL / "current.crit").result
assert CURRENT is not None
COMPILED = compile_protocol(CURRENT)


def crcl_between(low: str, high: str, facts: dict) -> tuple[object, object]:
    """E7's creatinine clearance bracketed by a probe protocol, compiled and interpreted."""
    text = (TRIAL / "current.crit").read_text()
    probe = text + f'\nE99 "probe"\n  rule creatinine_clearance between {low} and {high}\n'
    checked = analyse_text(probe, str(TRIAL / "probe.crit")).result
    assert checked is not None and checked.ok
    compiled = compile_protocol(checked)
    record = read_record(checked, {"facts": facts}, AS_OF)
    _, statuses = run_compiled(compiled, compiled.normalise(record))
    _, ref, _ = Interpreter(checked).run(record)
    return statuses[-1], ref[-1]


def born(years: int) -> str:
    return dt.date(AS_OF.year - years, 1, 1).isoformat()


@pytest.mark.parametrize(
    ("sex", "age", "kg", "creatinine", "unit", "expected"),
    [
        ("male", 65, 70, "1.4", "mg/dL", "52.1"),  # published worked example
        ("female", 45, 60, "0.9", "mg/dL", "74.8"),  # published worked example
        ("male", 65, 70, "123.76", "umol/L", "52.1"),  # 1.4 mg/dL in SI units
        ("female", 45, 60, "79.56", "umol/L", "74.8"),  # 0.9 mg/dL in SI units
    ],
)
def test_cockcroft_gault(sex, age, kg, creatinine, unit, expected) -> None:
    facts = {
        "sex": sex,
        "birth_date": born(age),
        "weight": {"value": kg, "unit": "kg", "date": "2026-11-20"},
        "serum_creatinine": {"value": creatinine, "unit": unit, "date": "2026-11-20"},
    }
    x = float(expected)
    inside = crcl_between(f"{x - 0.05:.3f} mL/min", f"{x + 0.05:.3f} mL/min", facts)
    assert inside == (True, True)
    below = crcl_between("0 mL/min", f"{x - 0.06:.3f} mL/min", facts)
    assert below == (False, False)


def test_calendar_months_clamp() -> None:
    d = dt.date(2024, 3, 31).toordinal()
    assert dt.date.fromordinal(add_months(d, -1)) == dt.date(2024, 2, 29)
    assert dt.date.fromordinal(add_months(d, -12)) == dt.date(2023, 3, 31)
    assert dt.date.fromordinal(add_months(d, 11)) == dt.date(2025, 2, 28)


def record(facts: dict, anchors: dict | None = None):
    return read_record(CURRENT, {"facts": facts, "anchors": anchors or {}}, AS_OF)


def test_unknown_is_not_false() -> None:
    """An exclusion with one unknown disjunct and the others false is unknown, not 'not met'."""
    rec = record({"wbc": {"value": 6, "unit": "x10^9/L", "date": "2026-11-20"}})
    _, statuses = run_compiled(COMPILED, COMPILED.normalise(rec))
    e8 = [c.id for c in COMPILED.criteria].index("E8")
    assert statuses[e8] is None


def test_one_true_disjunct_decides_despite_unknowns() -> None:
    rec = record({"wbc": {"value": 1.5, "unit": "x10^9/L", "date": "2026-11-20"}})
    verdict, statuses = run_compiled(COMPILED, COMPILED.normalise(rec))
    e8 = [c.id for c in COMPILED.criteria].index("E8")
    assert statuses[e8] is True and verdict == "ineligible"


def test_not_applicable_for_other_arm() -> None:
    rec = record({"arm": "arm_1"})
    _, statuses = run_compiled(COMPILED, COMPILED.normalise(rec))
    assert statuses[[c.id for c in COMPILED.criteria].index("I6")] is NA


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"value": "abc", "unit": "g/dL", "date": "2026-11-20"}, "not a number"),
        ({"value": 7.9, "unit": "mL/min", "date": "2026-11-20"}, "is a clearance"),
        ({"value": 7.9, "unit": "g/dLL", "date": "2026-11-20"}, "not a unit"),
        ({"value": 7.9, "date": "2026-11-20"}, "has no unit"),
        ({"value": 7.9, "unit": "g/dL", "date": "20/11/2026"}, "not a date"),
        ({"value": 7.9, "unit": "g/dL"}, "no date"),
        ({"unit": "g/dL"}, "no `value`"),
    ],
)
def test_malformed_lab_is_unknown_with_diagnostic(entry: dict, fragment: str) -> None:
    rec = record({"hemoglobin": entry})
    assert rec.facts["hemoglobin"] is None
    assert any(fragment in p.message for p in rec.problems if p.fact == "hemoglobin")


def test_stale_lab_is_unknown_and_explained() -> None:
    rec = record({"hemoglobin": {"value": 7.0, "unit": "g/dL", "date": "2026-10-01"}})
    assert rec.facts["hemoglobin"] is None
    assert rec.why_unknown["hemoglobin"].startswith("too old")
    ev = Evaluator(COMPILED).evaluate(rec)
    e8 = next(c for c in ev.criteria if c.id == "E8")
    assert e8.status == "unknown" and any("too old" in m for m in e8.missing)


def test_newest_value_in_window_is_used() -> None:
    rec = record(
        {
            "hemoglobin": [
                {"value": 7.0, "unit": "g/dL", "date": "2026-11-01"},
                {"value": 9.0, "unit": "g/dL", "date": "2026-11-25"},
                {"value": 6.0, "unit": "g/dL", "date": "2026-12-01"},  # after enrollment
            ]
        }
    )
    obs = rec.facts["hemoglobin"]
    assert obs is not None and obs.date == dt.date(2026, 11, 25)


def test_explanation_names_values_and_deciding_clause() -> None:
    rec = record(
        {
            "platelets": {
                "value": 60,
                "unit": "x10^3/mm3",
                "date": "2026-11-20",
                "source": "lab A",
            },
            "wbc": {"value": 5, "unit": "x10^9/L", "date": "2026-11-20"},
        }
    )
    ev = Evaluator(COMPILED).evaluate(rec)
    e8 = next(c for c in ev.criteria if c.id == "E8")
    assert e8.status == "met"
    assert e8.decided_by == "platelets < 75 x10^9/L (75 x10^3/mm3)"
    assert e8.values["platelets"] == "60 x10^3/mm3 on 2026-11-20 (lab A) = 60 x10^9/L"


def test_generated_code_reaches_only_runtime_exports() -> None:
    assert COMPILED.generated is not None  # `evaluate` wraps it to weigh conflicts
    g = COMPILED.generated.__globals__
    assert g["__builtins__"] == {}
    allowed = set(EXPORTS) | {"evaluate", "__builtins__"}
    extra = {k for k in g if k not in allowed}
    assert all(k.startswith(("K", "fn")) for k in extra), extra


def test_criteria_text_never_becomes_code(tmp_path: Path) -> None:
    hostile = (
        "fact x: enum {a, b}\nfact y: boolean\ninclusion criteria\n"
        "I1 \"\\\"); __import__('os').system('echo pwned') #\"\n  rule x = a and y\n"
        "  note \"'''\\n import os\"\n"
    )
    checked = analyse_text(hostile, "hostile.crit").result
    assert checked is not None and checked.ok
    compiled = compile_protocol(checked)
    assert "__import__" not in compiled.source_code and "pwned" not in compiled.source_code
    rec = read_record(checked, {"facts": {"x": "a", "y": True}}, AS_OF)
    assert run_compiled(compiled, compiled.normalise(rec)) == ("eligible", (True,))


def test_line_map_points_into_criteria_file() -> None:
    lines = COMPILED.source_code.splitlines()
    gen = next(i + 1 for i, line in enumerate(lines) if line.endswith("< 75.0"))  # platelets
    text = (TRIAL / "current.crit").read_text().splitlines()
    crit_line = COMPILED.criteria_line(gen)
    assert crit_line is not None and "platelets <" in text[crit_line - 1]


def run_cli(*args: str) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "critlang", *args], capture_output=True, text=True, check=False
    )
    assert "Traceback" not in proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


EX = TRIAL / "examples"


def test_cli_eval_text_and_json() -> None:
    code, out, _ = run_cli(
        "eval",
        "--as-of",
        "2026-11-27",
        str(TRIAL / "current.crit"),
        str(EX / "ineligible_diabetes.json"),
    )
    assert code == 0
    assert out.startswith("ineligible_diabetes: INELIGIBLE")
    assert "E11 exclusion met (excludes)" in out
    code, out, _ = run_cli(
        "eval", "--format", "json", "--as-of", "2026-11-27", str(TRIAL / "current.crit"), str(EX)
    )
    assert code == 0
    data = json.loads(out)
    assert len(data) == len(list(EX.glob("*.json")))
    by_id = {d["patient"]: d for d in data}
    assert by_id["eligible_arm1"]["verdict"] == "eligible"


def test_cli_eval_arm_option() -> None:
    args = [
        "eval",
        "--as-of",
        "2026-11-27",
        str(TRIAL / "current.crit"),
        str(EX / "arm_unknown.json"),
    ]
    assert "UNDETERMINED" in run_cli(*args)[1]
    assert "ELIGIBLE" in run_cli(*args, "--arm", "arm_1")[1].splitlines()[0]
    assert run_cli(*args, "--arm", "arm_9")[0] == 2


def test_cli_eval_exit_codes(tmp_path: Path) -> None:
    bad_protocol = tmp_path / "bad.crit"
    bad_protocol.write_text('fact x: boolean\ninclusion criteria\nI1 "t"\n  rule y\n')
    patient = EX / "eligible_arm1.json"
    assert run_cli("eval", str(bad_protocol), str(patient))[0] == 1
    not_json = tmp_path / "p.json"
    not_json.write_text("{ nope")
    code, _, err = run_cli("eval", str(TRIAL / "current.crit"), str(not_json))
    assert code == 2 and "unusable patient record" in err
    not_object = tmp_path / "q.json"
    not_object.write_text("[1, 2]")
    assert run_cli("eval", str(TRIAL / "current.crit"), str(not_object))[0] == 2
    assert (
        run_cli("eval", "--as-of", "yesterday", str(TRIAL / "current.crit"), str(patient))[0] == 2
    )


@pytest.mark.parametrize(
    ("facts", "anchors"),
    [
        ({"platelets": {"value": "1e400", "unit": "x10^9/L", "date": "2026-11-20"}}, {}),
        ({"platelets": {"value": 1e308, "unit": "/mm3", "date": "2026-11-20"}}, {}),
        ({"weight": {"value": "1e-400", "unit": "kg", "date": "2026-11-20"}}, {}),
        ({"last_menstruation": "9999-12-31", "sex": "female"}, {"prrt_start": "9999-12-31"}),
        (
            {
                "prior_therapies": [{"kind": "somatostatin_analogue", "end": "0001-01-01"}],
                "arm": "arm_2",
                "birth_date": "0001-01-01",
            },
            {"prrt_start": "0001-01-05"},
        ),
    ],
)
def test_extreme_values_never_crash_and_evaluators_agree(facts: dict, anchors: dict) -> None:
    rec = read_record(CURRENT, {"facts": facts, "anchors": anchors}, AS_OF)
    verdict, statuses = run_compiled(COMPILED, COMPILED.normalise(rec))
    assert (verdict, statuses) == Interpreter(CURRENT).run(rec)[:2]
    Evaluator(COMPILED).evaluate(rec)  # explanations too
    for name, value in facts.items():
        if isinstance(value, dict) and "e" in str(value["value"]):
            assert rec.facts[name] is None
            assert any("plausible range" in p.message for p in rec.problems)
