"""What an undetermined verdict asks for (author8 F11, F3): the anchor date a look-back
window is measured from, not the lab values it blocks; only the reference limit a rule
compares with (`x ULN`: the upper one); a range said to come with a value that is not
used, never "not reported"."""

from __future__ import annotations

import datetime as dt

from critlang.data.records import read_record
from critlang.evaluate import Evaluator
from helpers import TwoEvaluators

BOTH = TwoEvaluators(
    """\
anchor first_dose "First dose"
fact ast: quantity U/L
  reference range reported
  measured within 10 days before first_dose
fact glucose: quantity mg/dL
  reference range reported
inclusion criteria
I1 "AST <= 2.5 x ULN"
  rule ast <= 2.5 x ULN
I2 "glucose within the normal range"
  rule glucose within normal range
""",
    "asked.crit",
)
AS_OF = dt.date(2026, 3, 1)
AST = {"value": 30, "unit": "U/L", "date": "2026-02-27", "reference_range": {"low": 10, "high": 40}}


def evaluate(anchors: dict[str, str], facts: dict) -> tuple[list[str], dict[str, list[str]]]:
    record = read_record(BOTH.checked, {"anchors": anchors, "facts": facts}, AS_OF)
    e = Evaluator(BOTH.compiled).evaluate(record)
    return e.missing, {c.id: c.missing for c in e.criteria}


def test_a_missing_anchor_is_asked_for_not_the_values_its_window_blocks() -> None:
    missing, _ = evaluate({}, {"ast": AST, "glucose": 90})
    assert "@first_dose" in missing
    assert not [m for m in missing if m.startswith("ast")], missing


def test_x_uln_asks_for_the_upper_limit_only_and_says_why_it_is_unknown() -> None:
    late = AST | {"date": "2026-03-05"}  # after first_dose: not in the window
    missing, per = evaluate({"first_dose": "2026-03-02"}, {"ast": late, "glucose": 90})
    assert "ast.reference_range.low" not in missing
    assert "ast.reference_range.high" in missing
    assert any("comes with the ast value, which is unknown" in m for m in per["I1"]), per
    assert any(
        "dated after first_dose (2026-03-02): the newest is from 2026-03-05" in m for m in per["I1"]
    )
    # within normal range reads both limits
    _, per = evaluate({"first_dose": "2026-03-02"}, {"ast": AST, "glucose": {"value": 90}})
    assert {"glucose.reference_range.low", "glucose.reference_range.high"} <= {
        m.split(" ")[0] for m in per["I2"]
    }, per
