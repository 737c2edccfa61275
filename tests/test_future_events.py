"""Events after the evaluation date (issue F3 of author7; future_events.py).

(a) A list records what happened. "A negative urine pregnancy test on Day -1", evaluated
at screening with Day -1 ahead and no test yet, was "not met" (the patient ineligible):
the test cannot have happened yet. An `any`, `at least N` or `no` condition that only an
item dated after the evaluation date could meet is unknown when the recorded items do
not decide it; a window reaching back before the evaluation date is still decided by
what is recorded. (b) Every list-item date but `end` records something that happened: a
date after the evaluation date is refused with one diagnostic, whatever the field's
name (`start` was refused, `taken` used silently). Both evaluators, the explanation,
DuckDB and the proof encoding are held to the same statuses.
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
from helpers import STATUS_WORDS, duckdb_rows

AS_OF = dt.date(2019, 2, 1)

PROTOCOL = """protocol "FUTURE"
  title "events after the evaluation date"
  version "1"
  date 2019-01-01
anchor day_minus_1 "Day -1"
anchor day1 "Day 1"
fact tests: list of {result: enum {negative, positive}, taken: date}
fact therapies: list of {kind: enum {a, b}, start: date, end: date}
inclusion criteria
I1 "negative test on Day -1"
  rule any tests with (result = negative and taken on or after day_minus_1
                       and taken on or before day_minus_1)
I2 "two tests within 3 days after Day 1"
  rule at least 2 of tests with (taken within 3 days after day1)
I3 "no positive test after Day 1"
  rule no tests with (result = positive and taken after day1)
I4 "a negative test within 7 days before Day 1"
  rule any tests with (result = negative and taken within 7 days before day1)
I5 "no therapy ended within 4 weeks before Day 1"
  rule no therapies with (end within 4 weeks before day1)
I6 "a negative test"
  rule any tests with (result = negative)
I7 "a therapy started after Day 1"
  rule any therapies with (start after day1)
"""

IDS = [f"I{i}" for i in range(1, 8)]
WORDS = STATUS_WORDS
T, F, U = True, False, None

# (anchors, tests, expected I1..I7)
CASES: list[tuple[dict[str, str], list[dict[str, str]], tuple[Any, ...]]] = [
    # Day -1 and Day 1 ahead, nothing recorded: every window ahead is open; I5 reads only
    # `end` (an end may be planned: not the rule), I6 has no date
    ({"day_minus_1": "2019-02-10", "day1": "2019-02-11"}, [], (U, U, U, U, T, F, U)),
    # Day 1 on 2019-02-05: "within 7 days before" reaches back to 2019-01-29, before the
    # evaluation date, so the absence of a test there decides (not met)
    ({"day_minus_1": "2019-02-04", "day1": "2019-02-05"}, [], (U, U, U, F, T, F, U)),
    # both anchors past: decided by the record, as before
    ({"day_minus_1": "2019-01-20", "day1": "2019-01-21"}, [], (F, F, T, F, T, F, F)),
    # the test on Day -1 recorded: met; a positive test after Day 1 (the evaluation date)
    # may still come: `no` is unknown, never met
    (
        {"day_minus_1": "2019-01-31", "day1": "2019-02-01"},
        [{"result": "negative", "taken": "2019-01-31"}],
        (T, F, U, T, T, T, U),
    ),
    # an anchor not known: as before (the absence of items decides `any`)
    ({}, [], (F, F, T, F, T, F, F)),
]


@pytest.fixture(scope="module")
def protocol() -> Any:
    a = analyse_text(PROTOCOL, "future.crit")
    assert a.result is not None and a.ok, [d.message for d in a.diagnostics]
    return a.result


def _data(anchors: dict[str, str], tests: list[dict[str, str]]) -> dict[str, Any]:
    return {"anchors": anchors, "facts": {"tests": tests, "therapies": []}}


@pytest.mark.parametrize(("anchors", "tests", "expected"), CASES)
def test_list_conditions_only_later_events_could_meet(
    protocol: Any, anchors: dict[str, str], tests: list[dict[str, str]], expected: tuple
) -> None:
    record = read_record(protocol, _data(anchors, tests), AS_OF, "p")
    assert not record.problems, record.problems
    compiled = compile_protocol(protocol)
    _, got = compiled.evaluate(compiled.normalise(record))
    _, ref, _ = Interpreter(protocol).run(record)
    assert got == ref
    assert dict(zip(IDS, got, strict=True)) == dict(zip(IDS, expected, strict=True))
    e = Evaluator(compiled).evaluate(record)
    assert [c.status for c in e.criteria] == [WORDS[s] for s in expected]
    assert all(c.explanation for c in e.criteria), render_details(e)


def test_the_explanation_says_the_event_may_still_happen(protocol: Any) -> None:
    compiled = compile_protocol(protocol)
    # a negative test in January: I6 met, the rest waits for tests and therapies ahead
    past = [{"result": "negative", "taken": "2019-01-25"}]
    e = Evaluator(compiled).evaluate(read_record(protocol, _data(CASES[0][0], past), AS_OF, "p"))
    assert e.verdict == "undetermined", e.statuses()
    # what the undetermined verdict waits for: the events, not a criterion number
    assert e.missing == [
        "tests (an item dated after the evaluation date)",
        "therapies (an item dated after the evaluation date)",
    ]
    record = read_record(protocol, _data(*CASES[0][:2]), AS_OF, "p")
    text = render_details(Evaluator(compiled).evaluate(record))
    assert (
        "? no tests recorded (tests); the rule asks for at least one with result = negative "
        "and taken on or after day_minus_1 and taken on or before day_minus_1; only an item "
        "dated after the evaluation date (2019-02-01) could meet it, and it may still happen"
    ) in text


@pytest.mark.parametrize("field", ["taken", "start"])
def test_a_list_date_after_the_evaluation_date_is_refused_whatever_its_name(
    protocol: Any, field: str
) -> None:
    """(b): the same date in `taken` or `start` is one rule: refused, the item's dates
    unknown; only `end` may be planned (ongoing as of the evaluation date)."""
    if field == "taken":
        facts: dict[str, Any] = {"tests": [{"result": "negative", "taken": "2019-02-10"}]}
        facts["therapies"] = []
        name = "tests"
    else:
        facts = {
            "tests": [],
            "therapies": [{"kind": "a", "start": "2019-02-10", "end": "2019-03-01"}],
        }
        name = "therapies"
    record = read_record(
        protocol,
        {"anchors": {"day_minus_1": "2019-02-10", "day1": "2019-02-11"}, "facts": facts},
        AS_OF,
        "p",
    )
    assert [(p.fact, p.message) for p in record.problems] == [
        (
            f"{name}[1]",
            f"{field} (2019-02-10) after the evaluation date (2019-02-01): impossible for "
            "something recorded as having happened",
        )
    ]
    item = record.facts[name].value[0]
    assert all(item[k] is None for k in item if k in ("taken", "start", "end"))
    compiled = compile_protocol(protocol)
    _, got = compiled.evaluate(compiled.normalise(record))
    assert got == Interpreter(protocol).run(record)[1]
    # the refused test is an item whose date is unknown: I1 unknown, never met
    assert got[0] is None


def test_a_planned_end_is_still_read_as_ongoing(protocol: Any) -> None:
    facts = {"tests": [], "therapies": [{"kind": "a", "start": "2019-01-10", "end": "2019-03-01"}]}
    record = read_record(protocol, {"anchors": {"day1": "2019-01-25"}, "facts": facts}, AS_OF, "p")
    assert not record.problems
    compiled = compile_protocol(protocol)
    _, got = compiled.evaluate(compiled.normalise(record))
    assert got == Interpreter(protocol).run(record)[1]
    assert got[4] is False  # ongoing at Day 1 (past): ended "within 4 weeks before" it


def test_sql_equals_python(protocol: Any, tmp_path: Path) -> None:

    compiled = compile_protocol(protocol)
    records = [(f"p{i}", _data(a, t)) for i, (a, t, _) in enumerate(CASES)]
    rows = duckdb_rows(compiled, records, tmp_path / "db", AS_OF)
    for (_, _, expected), row in zip(CASES, rows, strict=True):
        assert tuple(row[3:-1]) == tuple(WORDS[s] for s in expected)


def test_the_proof_encoding_never_claims_not_met(protocol: Any) -> None:
    """z3 (semantics/encode_time.only_future): a patient with no tests and Day -1 after
    the evaluation date can have I1 unknown (the evaluators' answer), so "I1 is never
    unknown for such a patient" is not provable."""
    import z3

    from critlang.semantics.encode import Encoder, Space

    enc = Encoder(protocol, Space(as_of=AS_OF))
    crit = protocol.protocol.criteria[0][1]
    i1 = enc.cond(crit.rule, {})
    anchor = enc.date_var(("anchor", "day_minus_1"))
    s = z3.Solver()
    s.add(*enc.s.constraints, enc.s.known("@day_minus_1"), anchor > AS_OF.toordinal() + 5)
    s.add(enc.s.known("tests"), z3.Not(enc.var(("list", "tests", 0), lambda: None)))
    assert s.check(z3.Not(z3.Or(i1.t, i1.f))) == z3.sat  # unknown is possible
    assert s.check(i1.t) == z3.unsat  # never met without a test
    # with Day -1 in the past, no test recorded is "not met" for certain
    s2 = z3.Solver()
    s2.add(*enc.s.constraints, enc.s.known("@day_minus_1"), anchor < AS_OF.toordinal())
    s2.add(enc.s.known("tests"), z3.Not(enc.var(("list", "tests", 0), lambda: None)))
    assert s2.check(z3.Not(i1.f)) == z3.unsat


def test_an_end_or_a_planned_date_may_lie_ahead() -> None:
    """`washout_end` (computed: last dose + 5 half-lives) and `planned_` dates are read as
    recorded after the evaluation date; `end` stays "ongoing then" (data/reader_lists)."""
    src = """fact courses: list of {start: date, washout_end: date, planned_scan: date, end: date}
anchor day1
inclusion criteria
I1 "washout over by Day 1"
  rule all courses with (washout_end no later than day1)
I2 "a scan planned before Day 1"
  rule any courses with (planned_scan before day1)
"""
    a = analyse_text(src, "ahead.crit")
    assert a.result is not None and a.ok
    item = {
        "start": "2019-01-10",
        "washout_end": "2019-02-15",
        "planned_scan": "2019-02-05",
        "end": "2019-03-01",
    }
    record = read_record(
        a.result, {"anchors": {"day1": "2019-02-10"}, "facts": {"courses": [item]}}, AS_OF, "p"
    )
    assert not record.problems, record.problems
    compiled = compile_protocol(a.result)
    _, got = compiled.evaluate(compiled.normalise(record))
    assert got == Interpreter(a.result).run(record)[1]
    assert got == (False, True)  # the washout ends 5 days after Day 1; the scan before it


def _random_patients(n: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """Anchors around the evaluation date (or missing), 0-3 tests and therapies with
    past dates, partial dates, missing fields, ongoing and planned ends."""
    import random

    rng = random.Random(seed)

    def day(lo: int, hi: int) -> str:
        return (AS_OF + dt.timedelta(days=rng.randint(lo, hi))).isoformat()

    out = []
    for i in range(n):
        anchors = {a: day(-20, 20) for a in ("day_minus_1", "day1") if rng.random() < 0.85}
        tests = [
            {
                k: v
                for k, v in (
                    ("result", rng.choice(["negative", "positive", None])),
                    ("taken", rng.choice([day(-30, 0), day(-30, 0), "2019-01", None])),
                )
                if v is not None
            }
            for _ in range(rng.choice([0, 0, 1, 2, 3]))
        ]
        therapies = [
            {
                "kind": rng.choice(["a", "b"]),
                "start": rng.choice([day(-90, 0), "2018", "2019-01"]),
                "end": rng.choice(["ongoing", day(-40, 0), day(1, 60), "2019-02"]),
            }
            for _ in range(rng.choice([0, 1, 2]))
        ]
        out.append(
            (f"r{i}", {"anchors": anchors, "facts": {"tests": tests, "therapies": therapies}})
        )
    return out


def test_random_patients_agree_in_every_engine(protocol: Any, tmp_path: Path) -> None:
    """Both evaluators and DuckDB on 300 generated patients, many decided by the rule."""

    compiled = compile_protocol(protocol)
    interpreter = Interpreter(protocol)
    records = _random_patients(300, 7)
    rows = duckdb_rows(compiled, records, tmp_path / "db", AS_OF)
    opened = 0
    for (name, data), row in zip(records, rows, strict=True):
        record = read_record(protocol, data, AS_OF, name)
        verdict, got = compiled.evaluate(compiled.normalise(record))
        assert (verdict, got) == Interpreter.run(interpreter, record)[:2], name
        assert (verdict, *(WORDS[s] for s in got)) == tuple(row[2:-1]), name
        opened += got[0] is None and not data["facts"]["tests"]
    assert opened >= 30, opened  # Day -1 ahead with no test: unknown, often
