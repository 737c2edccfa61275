"""A conditional definition's explanation shows the branch taken and every condition that
chose it, with the recorded values (author7 F11: a Child-Pugh score printed only as
"cp bilirubin = 2, from 2", so a coordinator could not check it against the CRF)."""

from __future__ import annotations

import datetime as dt

from critlang.evaluate import render_details
from helpers import TwoEvaluators

PROTOCOL = """protocol "CP"
  title "conditional definitions"
  version "1"
  date 2020-01-01
fact total_bilirubin: quantity mg/dL
  molar mass 584.66 g/mol source "PubChem CID 5280352"
fact inr: number
define cp_bilirubin = (1 if total_bilirubin < 2 mg/dL else (2 if total_bilirubin <= 3 mg/dL else 3))
define cp_inr = (1 if inr < 1.7 else (2 if inr <= 2.3 else 3))
define score = cp_bilirubin + cp_inr
inclusion criteria
I1 "score"
  rule score between 2 and 3
"""
AS_OF = dt.date(2020, 3, 1)


def _details(facts: dict[str, object]) -> str:
    from critlang.data.records import read_record

    two = TwoEvaluators(PROTOCOL, "cp.crit")
    record = read_record(two.checked, {"facts": facts}, AS_OF, "p")
    assert not record.problems, record.problems
    two.statuses(record)  # both evaluators agree
    return render_details(two.evaluator.evaluate(record))


def test_every_condition_on_the_way_to_the_branch_is_shown_with_its_value() -> None:
    text = _details({"total_bilirubin": {"value": 40, "unit": "umol/L"}, "inr": 1.2})
    # 40 umol/L / 584.66 g/mol = 2.339 mg/dL: not < 2, <= 3, so 2 points
    assert (
        "cp bilirubin = 2, from 2 (✗ total bilirubin 40 umol/L = 2.339 mg/dL < 2 mg/dL,"
        " ✓ total bilirubin 40 umol/L = 2.339 mg/dL ≤ 3 mg/dL)"
    ) in text
    assert "cp inr = 1, from 1 (✓ inr 1.2 < 1.7)" in text
    assert "✗ score 3 between 2 and 3" not in text and "score 3" in text


def test_an_unknown_condition_still_shows_both_possibilities() -> None:
    text = _details({"total_bilirubin": {"value": 1, "unit": "mg/dL"}})
    assert "(inr unknown (not in the record) < 1.7: not known)" in text
