"""Comparison forms over a value with several possibilities (issue F1 of author7).

A conditional whose condition is unknown (`(1 if inr < 1.7 else 3)` without an INR) has
every branch value as a possibility; docs/language.md: a comparison over it is decided
when every possibility gives the same answer. `>=` and `<=` did so, but `between`,
windows, date bounds, `before`, periods, `in {...}` and list conditions over such a value
stayed unknown: a Child-Pugh score of 12, 13 or 14 was not "between 10 and 15". Each form
is asserted here with real statuses, in both evaluators (which must agree), the
explanation (which must reach the same status and say why) and DuckDB (equal to Python).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from critlang.backends.python import compile_protocol
from critlang.data.records import read_record
from critlang.evaluate import Evaluator, render_details
from critlang.frontend import analyse_text
from critlang.interpreter import Interpreter
from critlang.semantics.encode import Encoder, Space
from helpers import STATUS_WORDS, duckdb_rows

AS_OF = dt.date(2020, 3, 1)

PROTOCOL = """protocol "ALT"
  title "comparison forms over a conditional value"
  version "1"
  date 2020-01-01
anchor day1 "Day 1"
fact inr: number
fact base: integer 0..20
fact early: date
fact late: date
fact started: date
fact kind: enum {mild, moderate, severe}
fact other: enum {mild, moderate, severe}
fact events: list of {taken: date}
define flat = (1 if inr < 1.7 else 3)
define score = base + flat
define when = (early if inr < 1.7 else late)
define grade = (kind if inr < 1.7 else other)
inclusion criteria
I1 "score between 10 and 15"
  rule score between 10 and 15
I2 "flat between 2 and 3"
  rule flat between 2 and 3
I3 "score between 20 and 30"
  rule score between 20 and 30
I4 "when within 30 days before enrollment"
  rule when within 30 days before enrollment
I5 "when before day1"
  rule when before day1
I6 "when at least 7 days before day1"
  rule when at least 7 days before day1
I7 "when between 10 and 40 days before day1"
  rule when between 10 and 40 days before day1
I8 "grade mild or moderate"
  rule grade in {mild, moderate}
I9 "an event within 7 days after when"
  rule any events with (taken within 7 days after when)
I10 "started to when ongoing at day1"
  rule started to when ongoing at day1
"""

IDS = [f"I{i}" for i in range(1, 11)]
WORDS = STATUS_WORDS


def _patient(**facts: Any) -> dict[str, Any]:
    base = {
        "base": 11,
        "early": "2020-02-15",
        "late": "2020-02-20",
        "started": "2020-01-01",
        "kind": "mild",
        "other": "moderate",
        "events": [{"taken": "2020-02-21"}],
    }
    base.update(facts)
    return {"as_of": AS_OF.isoformat(), "anchors": {"day1": "2020-03-20"}, "facts": base}


# (facts, expected statuses I1..I10)
CASES = [
    # no INR: every form decided where both possibilities agree
    (
        {},
        (True, None, False, True, True, True, True, True, True, False),
    ),
    # the possibilities disagree: unknown, form by form
    (
        {"late": "2020-01-20", "other": "severe", "events": [{"taken": "2020-02-18"}]},
        (True, None, False, None, True, True, None, None, None, False),
    ),
    # the INR known: one value, as before
    ({"inr": 1.5}, (True, False, False, True, True, True, True, True, True, False)),
    ({"inr": 2.0}, (True, True, False, True, True, True, True, True, True, False)),
    # a possibility unknown: the value is unknown
    ({"late": None}, (True, None, False, None, None, None, None, True, None, None)),
]


@pytest.fixture(scope="module")
def protocol() -> Any:
    a = analyse_text(PROTOCOL, "alt.crit")
    assert a.result is not None and a.ok, [d.message for d in a.diagnostics]
    return a.result


@pytest.mark.parametrize(("facts", "expected"), CASES)
def test_forms_over_possibilities(protocol: Any, facts: dict[str, Any], expected: tuple) -> None:
    data = _patient(**facts)
    data["facts"] = {k: v for k, v in data["facts"].items() if v is not None}
    record = read_record(protocol, data, AS_OF, "p")
    assert not record.problems, record.problems
    compiled = compile_protocol(protocol)
    _, got = compiled.evaluate(compiled.normalise(record))
    _, ref, _ = Interpreter(protocol).run(record)
    assert got == ref
    assert dict(zip(IDS, got, strict=True)) == dict(zip(IDS, expected, strict=True))
    # the explanation reaches the same status for every criterion (else it shows none)
    e = Evaluator(compiled).evaluate(record)
    assert [c.status for c in e.criteria] == [WORDS[s] for s in expected]
    assert all(c.explanation for c in e.criteria), render_details(e)


def test_the_explanation_says_every_possibility_decides(protocol: Any) -> None:
    record = read_record(protocol, _patient(), AS_OF, "p")
    text = render_details(Evaluator(compile_protocol(protocol)).evaluate(record))
    assert "✓ score 12 or 14 between 10 and 15: holds for every possibility" in text
    assert "? flat 1 or 3 between 2 and 3: holds for some possibilities only" in text
    assert "✗ score 12 or 14 between 20 and 30: fails for every possibility" in text
    assert "depends on a condition not known" not in text.split("I8")[0]


def test_sql_equals_python(protocol: Any, tmp_path: Path) -> None:

    compiled = compile_protocol(protocol)
    records = []
    for i, (facts, _) in enumerate(CASES):
        data = _patient(**facts)
        data["facts"] = {k: v for k, v in data["facts"].items() if v is not None}
        records.append((f"p{i}", data))
    rows = duckdb_rows(compiled, records, tmp_path / "db", AS_OF)
    evaluator = Evaluator(compiled, explain=False)
    for (name, data), row, (_, expected) in zip(records, rows, CASES, strict=True):
        e = evaluator.evaluate(read_record(protocol, data, AS_OF, name))
        assert (e.verdict, *(c.status for c in e.criteria)) == tuple(row[2:-1])
        assert tuple(row[3:-1]) == tuple(WORDS[s] for s in expected)


def test_the_proof_encoding_decides_as_the_evaluators(protocol: Any) -> None:
    """z3 (semantics/encode.py) models the same rule: with no INR and base 11, I1 is
    provably met and I3 provably not met (never claimed otherwise)."""
    import z3

    enc = Encoder(protocol, Space(as_of=AS_OF))
    crits = {c.id: c for _, c in protocol.protocol.criteria}
    i1, i3 = enc.cond(crits["I1"].rule, {}), enc.cond(crits["I3"].rule, {})
    base = enc.fact("base")
    i2 = enc.cond(crits["I2"].rule, {})
    s = z3.Solver()
    s.add(*enc.s.constraints, base.k, base.v == 11, z3.Not(enc.fact("inr").k))
    assert s.check(z3.Not(i1.t)) == z3.unsat  # met for every such patient
    assert s.check(z3.Not(i3.f)) == z3.unsat  # not met for every such patient
    assert s.check(z3.Or(i2.t, i2.f)) == z3.unsat  # flat 1 or 3 between 2 and 3: unknown
    # with the INR known, flat between 2 and 3 is decided both ways
    s2 = z3.Solver()
    s2.add(*enc.s.constraints, enc.fact("inr").k)
    assert s2.check(i2.t) == z3.sat and s2.check(i2.f) == z3.sat
    assert s2.check(z3.Not(z3.Or(i2.t, i2.f))) == z3.unsat


def test_is_known_over_possibilities_in_sql_as_in_python(tmp_path: Path) -> None:
    """`x is known` for a conditional whose condition is unknown: known when every
    possibility is (runtime.choice). DuckDB said "not known" for it (the conditional
    read as NULL), where both evaluators say known."""

    src = """fact inr: number
fact a: number
define flat = (a if inr < 1.7 else 3)
inclusion criteria
I1 "known"
  rule flat is known
"""
    checked = analyse_text(src, "known.crit").result
    assert checked is not None
    compiled = compile_protocol(checked)
    records = [("p1", {"facts": {}}), ("p2", {"facts": {"a": 2}}), ("p3", {"facts": {"inr": 1}})]
    rows = duckdb_rows(compiled, records, tmp_path / "db", AS_OF)
    expected = ["not met", "met", "not met"]  # a unknown; a and 3 both known; a chosen, unknown
    for (name, data), row, want in zip(records, rows, expected, strict=True):
        record = read_record(checked, data, AS_OF, name)
        _, got = compiled.evaluate(compiled.normalise(record))
        assert got == Interpreter(checked).run(record)[1]
        assert (WORDS[got[0]], row[3]) == (want, want)


def test_random_patients_agree_in_every_engine(protocol: Any, tmp_path: Path) -> None:
    """Both evaluators, the explanation and DuckDB on 300 generated patients: INR known
    or not, dates and categories near each form's edges, a possibility unknown."""
    import random

    rng = random.Random(11)

    def day(lo: int, hi: int) -> str:
        return (AS_OF + dt.timedelta(days=rng.randint(lo, hi))).isoformat()

    records = []
    for i in range(300):
        facts: dict[str, Any] = {
            "inr": rng.choice([None, None, 1.5, 2.0]),
            "base": rng.choice([None, 5, 8, 9, 11, 12, 13]),
            # exact dates: SQL reads a fact inside a conditional's branch plainly, so a
            # partial date there leaves the criterion unknown (conservative; open)
            "early": rng.choice([day(-60, 0), day(-60, 0), None]),
            "late": rng.choice([day(-60, 0), day(-60, 0), None]),
            "started": rng.choice([day(-90, 0), None]),
            "kind": rng.choice(["mild", "moderate", "severe", None]),
            "other": rng.choice(["mild", "moderate", "severe", None]),
            "events": [{"taken": day(-60, 0)} for _ in range(rng.choice([0, 1, 2]))],
        }
        facts = {k: v for k, v in facts.items() if v is not None}
        records.append((f"r{i}", {"anchors": {"day1": day(-10, 30)}, "facts": facts}))
    compiled = compile_protocol(protocol)
    interpreter = Interpreter(protocol)
    evaluator = Evaluator(compiled)
    rows = duckdb_rows(compiled, records, tmp_path / "db", AS_OF)
    decided_over_possibilities = 0
    for (name, data), row in zip(records, rows, strict=True):
        record = read_record(protocol, data, AS_OF, name)
        verdict, got = compiled.evaluate(compiled.normalise(record))
        assert (verdict, got) == interpreter.run(record)[:2], name
        assert (verdict, *(WORDS[s] for s in got)) == tuple(row[2:-1]), name
        e = evaluator.evaluate(record)
        assert all(c.explanation for c in e.criteria), render_details(e)
        if "inr" not in data["facts"]:
            decided_over_possibilities += sum(s is not None for s in got)
    assert decided_over_possibilities >= 300, decided_over_possibilities
