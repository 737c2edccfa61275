"""Which quantities can be below zero (data/signs.py), one rule for the reader and every
evaluator (issue F17 of author7).

A censored "< 1.5 mg/dL" creatinine is a value from 0 up to 1.5: `between 0 mg/dL and 2
mg/dL` is met (it stayed unknown, as if the creatinine could be negative, though the
reader refuses a negative creatinine as impossible). A temperature in Cel and a base
excess can be negative: no floor, and no refusal. Both evaluators, the explanation,
DuckDB and the FHIR reading path agree.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from critlang.backends.python import compile_protocol
from critlang.cli import main
from critlang.data.records import read_record
from critlang.evaluate import Evaluator, render_details
from critlang.frontend import analyse_text
from critlang.interpreter import Interpreter
from helpers import STATUS_WORDS, duckdb_rows

AS_OF = dt.date(2024, 1, 20)

PROTOCOL = """protocol "SIGNS"
  title "quantities below zero"
  version "1"
  date 2024-01-01
codes creat: loinc "2160-0"
codes base_excess: loinc "11555-0"
fact creat: quantity mg/dL
fact temp: quantity Cel
fact base_excess: quantity mmol/L
fact other_excess: quantity mmol/L
fact doses: list of {amount: quantity mg}
inclusion criteria
I1 "creatinine between 0 and 2 mg/dL"
  rule creat between 0 mg/dL and 2 mg/dL
I2 "creatinine at least 0"
  rule creat >= 0 mg/dL
I3 "creatinine above 0"
  rule creat > 0 mg/dL
I4 "temperature between 0 and 2 Cel"
  rule temp between 0 Cel and 2 Cel
I5 "base excess between 0 and 2 mmol/L"
  rule base_excess between 0 mmol/L and 2 mmol/L
I6 "a dose between 0 and 10 mg"
  rule any doses with (amount between 0 mg and 10 mg)
"""

IDS = ["I1", "I2", "I3", "I4", "I5", "I6"]
WORDS = STATUS_WORDS


def q(value: float, unit: str, comparator: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"value": value, "unit": unit}
    if comparator:
        out["comparator"] = comparator
    return out


CENSORED = {
    "creat": q(1.5, "mg/dL", "<"),
    "temp": q(1.5, "Cel", "<"),
    "base_excess": q(1.5, "mmol/L", "<"),
    "doses": [{"amount": q(5, "mg", "<")}],
}


@pytest.fixture(scope="module")
def protocol() -> Any:
    a = analyse_text(PROTOCOL, "signs.crit")
    assert a.result is not None and a.ok, [d.message for d in a.diagnostics]
    return a.result


def _statuses(protocol: Any, facts: dict[str, Any]) -> tuple[Any, ...]:
    record = read_record(protocol, {"facts": facts}, AS_OF, "p")
    assert not record.problems, record.problems
    compiled = compile_protocol(protocol)
    _, got = compiled.evaluate(compiled.normalise(record))
    _, ref, _ = Interpreter(protocol).run(record)
    assert got == ref
    e = Evaluator(compiled).evaluate(record)
    assert [c.status for c in e.criteria] == [WORDS[s] for s in got]
    assert all(c.explanation for c in e.criteria), render_details(e)
    return got


def test_a_censored_value_of_a_quantity_never_negative_starts_at_zero(protocol: Any) -> None:
    got = _statuses(protocol, CENSORED)
    # creatinine [0, 1.5): between 0 and 2, at least 0, but maybe 0 (so "> 0" is open);
    # a temperature below 1.5 Cel may be below 0 Cel; a base excess below 1.5 mmol/L too;
    # a list item's quantity follows the same rule
    assert dict(zip(IDS, got, strict=True)) == {
        "I1": True,
        "I2": True,
        "I3": None,
        "I4": None,
        "I5": None,
        "I6": True,
    }


def test_the_explanation_says_the_interval_and_is_grammatical(protocol: Any) -> None:
    record = read_record(protocol, {"facts": CENSORED}, AS_OF, "p")
    text = render_details(Evaluator(compile_protocol(protocol)).evaluate(record))
    assert "every value below 1.5 mg/dL lies between them" in text
    assert "only some values below 1.5 Cel lie between them" in text
    assert "values below 1.5 Cel lies" not in text  # was: "only some values ... lies"


@pytest.mark.parametrize(
    ("fact", "value", "refused"),
    [
        ("creat", q(-0.1, "mg/dL"), True),  # an amount: impossible
        ("creat", q(0, "mg/dL", "<"), True),  # every value it allows is negative
        ("temp", q(-5, "Cel"), False),  # a point of the Celsius scale
        ("base_excess", q(-3, "mmol/L"), False),  # bound to LOINC 11555-0: signed
        ("other_excess", q(-3, "mmol/L"), True),  # no signed code: an amount
    ],
)
def test_the_reader_refuses_negative_values_by_the_same_rule(
    protocol: Any, fact: str, value: Any, refused: bool
) -> None:
    record = read_record(protocol, {"facts": {fact: value}}, AS_OF, "p")
    problems = [p.message for p in record.problems]
    assert bool(problems) == refused, problems
    if refused:
        assert "negative: impossible for an amount" in problems[0]
    else:
        assert record.facts[fact] is not None


def test_negative_temperature_and_base_excess_decide(protocol: Any) -> None:
    got = _statuses(protocol, {"temp": q(-1, "Cel"), "base_excess": q(-3, "mmol/L")})
    assert (got[3], got[4]) == (False, False)


def test_sql_equals_python(protocol: Any, tmp_path: Path) -> None:

    compiled = compile_protocol(protocol)
    cases = [
        CENSORED,
        {"creat": q(2.5, "mg/dL", "<"), "doses": [{"amount": q(10, "mg", "<=")}]},
        {"creat": q(0.5, "mg/dL", ">"), "temp": q(-1, "Cel")},
        {"base_excess": q(-3, "mmol/L"), "doses": [{"amount": q(11, "mg", "<")}]},
    ]
    records = [(f"p{i}", {"facts": facts}) for i, facts in enumerate(cases)]
    rows = duckdb_rows(compiled, records, tmp_path / "db", AS_OF)
    evaluator = Evaluator(compiled, explain=False)
    decided = 0
    for (name, data), row in zip(records, rows, strict=True):
        e = evaluator.evaluate(read_record(protocol, data, AS_OF, name))
        assert (e.verdict, *(c.status for c in e.criteria)) == tuple(row[2:-1])
        decided += sum(c.status != "unknown" for c in e.criteria)
    assert decided >= 8, decided


def test_fhir_censored_creatinine(tmp_path: Path) -> None:
    """The FHIR path: Observation.valueQuantity.comparator "<" (a modifier element)."""
    protocol = tmp_path / "p.crit"
    protocol.write_text(PROTOCOL)
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"}},
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
                    "subject": {"reference": "Patient/p1"},
                    "effectiveDateTime": "2024-01-10T10:00:00Z",
                    "valueQuantity": {
                        "value": 1.5,
                        "comparator": "<",
                        "unit": "mg/dL",
                        "system": "http://unitsofmeasure.org",
                        "code": "mg/dL",
                    },
                }
            },
        ],
    }
    data = tmp_path / "b.json"
    data.write_text(json.dumps(bundle))
    out = tmp_path / "out.jsonl"
    rc = main(["screen", "--as-of", "2024-01-20", str(protocol), str(data), "--patients", str(out)])
    row = json.loads(out.read_text().splitlines()[0])
    assert rc == 0
    assert (row["criteria"]["I1"], row["criteria"]["I2"], row["criteria"]["I3"]) == (
        "met",
        "met",
        "unknown",
    )
