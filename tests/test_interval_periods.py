"""Period forms and date bounds over dates known only as intervals, in both evaluators.

An ongoing therapy (end "ongoing", or a planned end after the evaluation date) has an end
no earlier than the evaluation date and no latest day; a partial date is any day of its
year or month. `START to END ongoing at A`, `overlaps D before/after A`, `at least D
before A`, `no later than A`, `on or after A` and `between D1 and D2 before A` are
decided when every day the dates may be decides them alike (docs/language.md, Time
windows; docs/patients.md, Ongoing therapies), unknown otherwise. Every status is
asserted in the compiled evaluator and the reference interpreter, which must agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from critlang.backends.python import compile_protocol
from critlang.data.records import read_record
from critlang.evaluate import run_compiled
from critlang.frontend import analyse_text
from critlang.interpreter import Interpreter
from helpers import STATUS_WORDS, TwoEvaluators

AS_OF = dt.date(2026, 11, 27)  # the evaluation date: an ongoing end is at least this day

PROTOCOL = """\
anchor randomisation
fact therapies: list of {kind: enum {chemo, other}, start: date, end: date}
inclusion criteria
O1 "ongoing at enrollment"
  rule any therapies with (start to end ongoing at enrollment)
O2 "ongoing at randomisation"
  rule any therapies with (start to end ongoing at randomisation)
V1 "overlapping the 4 weeks before randomisation"
  rule any therapies with (start to end overlaps 4 weeks before randomisation)
V2 "overlapping the 4 weeks after randomisation"
  rule any therapies with (start to end overlaps 4 weeks after randomisation)
B1 "ended at least 4 weeks before randomisation"
  rule all therapies with (end at least 4 weeks before randomisation)
B2 "ended no later than enrollment"
  rule all therapies with (end no later than enrollment)
B3 "ended on or after randomisation"
  rule any therapies with (end on or after randomisation)
B4 "ended at least 2 weeks after randomisation"
  rule any therapies with (end at least 2 weeks after randomisation)
W1 "ended between 2 and 6 weeks before randomisation"
  rule any therapies with (end between 2 and 6 weeks before randomisation)
W2 "ended between 1 and 3 weeks after randomisation"
  rule any therapies with (end between 1 and 3 weeks after randomisation)
"""

BOTH = TwoEvaluators(PROTOCOL, "periods.crit")
CHECKED, COMPILED, INTERPRETER = BOTH.checked, BOTH.compiled, BOTH.interpreter
EVALUATOR = BOTH.evaluator
IDS = BOTH.ids
WORDS = STATUS_WORDS


def status(criterion: str, start: str, end: str, randomisation: str = "2026-12-20") -> str:
    data = {
        "facts": {"therapies": [{"kind": "chemo", "start": start, "end": end}]},
        "anchors": {"randomisation": randomisation},
    }
    record = read_record(CHECKED, data, AS_OF)
    assert not record.problems, record.problems
    _verdict, compiled = BOTH.statuses(record)
    word = WORDS[compiled[IDS.index(criterion)]]
    result = EVALUATOR.evaluate(record).criteria[IDS.index(criterion)]
    # the explanation walker follows the form and agrees (else it shows no clause)
    assert result.status == word and result.explanation, result
    return word


@pytest.mark.parametrize(
    ("criterion", "start", "end", "randomisation", "expected"),
    [
        # ongoing at the evaluation date: an ongoing end is at least that day
        ("O1", "2026-06-01", "ongoing", "2026-12-20", "met"),
        ("O1", "2026-06-01", "2027-03-01", "2026-12-20", "met"),  # planned end: ongoing
        ("O1", "2026-11-27", "ongoing", "2026-12-20", "met"),  # started that day
        ("O1", "2026-06", "ongoing", "2026-12-20", "met"),  # started some day of June
        # a start after the evaluation date is impossible: "2026" is up to 2026-11-27
        ("O1", "2026", "ongoing", "2026-12-20", "met"),
        ("O2", "2026", "ongoing", "2026-11-27", "met"),
        ("O2", "2026", "ongoing", "2026-06-01", "unknown"),  # may have started after June
        ("O1", "2026-06-01", "2026-11-27", "2026-12-20", "met"),  # ended that day
        ("O1", "2026-06-01", "2026-11-26", "2026-12-20", "not met"),
        ("O1", "2026-06-01", "2026-11", "2026-12-20", "unknown"),  # 1 to 27 November
        ("O1", "2026-06-01", "2026-10", "2026-12-20", "not met"),
        # at a later anchor: the therapy may stop before it
        ("O2", "2026-06-01", "ongoing", "2026-12-20", "unknown"),
        ("O2", "2026-06-01", "ongoing", "2026-11-27", "met"),
        ("O2", "2026-06-01", "ongoing", "2026-11-01", "met"),  # an anchor already past
        ("O2", "2026-06-01", "ongoing", "2026-05-31", "not met"),  # before it started
        ("O2", "2026-06", "ongoing", "2026-06-15", "unknown"),  # started 1 to 30 June
        ("O2", "2026-06", "ongoing", "2026-06-30", "met"),
        # overlaps [A - 28 days, A]: reaches it when A - 28 is on or before the evaluation date
        ("V1", "2026-06-01", "ongoing", "2026-12-20", "met"),  # from 2026-11-22
        ("V1", "2026-06-01", "ongoing", "2026-12-25", "met"),  # from 2026-11-27: the edge day
        ("V1", "2026-06-01", "ongoing", "2026-12-26", "unknown"),  # from 2026-11-28
        ("V1", "2026-06-01", "ongoing", "2027-01-10", "unknown"),
        ("V1", "2026-06-01", "ongoing", "2026-05-31", "not met"),  # starts after the window
        ("V1", "2026-06-01", "2026-10", "2026-11-29", "not met"),  # window from 2026-11-01
        ("V1", "2026-06-01", "2026-10", "2026-11-15", "unknown"),  # from 2026-10-18
        ("V1", "2026-06-01", "2026-10", "2026-10-29", "met"),  # from 2026-10-01
        # overlaps [A, A + 28 days]
        ("V2", "2026-06-01", "ongoing", "2026-11-27", "met"),
        ("V2", "2026-06-01", "ongoing", "2026-11-28", "unknown"),
        ("V2", "2026-06-01", "ongoing", "2026-10-01", "met"),
        ("V2", "2026-06-01", "ongoing", "2026-05-04", "met"),  # to 2026-06-01: the start day
        ("V2", "2026-06-01", "ongoing", "2026-05-03", "not met"),  # to 2026-05-31
    ],
)
def test_periods_with_an_ongoing_or_partial_end(
    criterion: str, start: str, end: str, randomisation: str, expected: str
) -> None:
    assert status(criterion, start, end, randomisation) == expected


@pytest.mark.parametrize(
    ("criterion", "end", "randomisation", "expected"),
    [
        # end <= A - 28 days
        ("B1", "ongoing", "2026-12-20", "not met"),  # the edge 2026-11-22 is already past
        ("B1", "ongoing", "2026-12-24", "not met"),  # edge 2026-11-26
        ("B1", "ongoing", "2026-12-25", "unknown"),  # edge 2026-11-27: may end that day
        ("B1", "ongoing", "2027-03-01", "unknown"),
        ("B1", "2026-10", "2026-12-20", "met"),  # October, edge 2026-11-22
        ("B1", "2026-10", "2026-11-15", "unknown"),  # edge 2026-10-18
        # end <= the evaluation date
        ("B2", "ongoing", "2026-12-20", "unknown"),  # may have ended today, or not
        ("B2", "2027-01-10", "2026-12-20", "unknown"),  # planned: at least today
        ("B2", "2026", "2026-12-20", "met"),  # some day of 2026 up to today
        # end >= A
        ("B3", "ongoing", "2026-11-27", "met"),
        ("B3", "ongoing", "2026-11-01", "met"),
        ("B3", "ongoing", "2026-12-01", "unknown"),
        ("B3", "2026-10", "2026-10-15", "unknown"),
        ("B3", "2026-10", "2026-10-01", "met"),  # the first of the month included
        ("B3", "2026-10", "2026-11-01", "not met"),
        # end >= A + 14 days
        ("B4", "ongoing", "2026-11-13", "met"),  # edge 2026-11-27: the evaluation date
        ("B4", "ongoing", "2026-11-14", "unknown"),
        ("B4", "2026-10", "2026-10-18", "not met"),  # edge 2026-11-01
        # A - 42 <= end <= A - 14
        ("W1", "ongoing", "2026-12-20", "unknown"),  # 2026-11-08 .. 2026-12-06
        ("W1", "ongoing", "2026-12-10", "not met"),  # .. 2026-11-26: already past
        ("W1", "ongoing", "2026-12-11", "unknown"),  # .. 2026-11-27
        ("W1", "2026-10", "2026-12-20", "not met"),
        ("W1", "2026-10", "2026-11-20", "unknown"),  # 2026-10-09 .. 2026-11-06
        ("W1", "2026-11-20", "2026-12-20", "met"),
        # A + 7 <= end <= A + 21
        ("W2", "ongoing", "2026-11-10", "unknown"),  # 2026-11-17 .. 2026-12-01
        ("W2", "ongoing", "2026-11-05", "not met"),  # .. 2026-11-26
        ("W2", "ongoing", "2026-11-21", "unknown"),  # from 2026-11-28
        ("W2", "2026-10", "2026-09-01", "not met"),  # 2026-09-08 .. 2026-09-22
        ("W2", "2026-10", "2026-09-20", "unknown"),  # 2026-09-27 .. 2026-10-11
    ],
)
def test_date_bounds_with_an_ongoing_or_partial_end(
    criterion: str, end: str, randomisation: str, expected: str
) -> None:
    assert status(criterion, "2026-06-01", end, randomisation) == expected


def test_e5_systemic_therapy_ongoing_at_randomisation_is_decided() -> None:
    """The language reference's example: "ongoing at randomisation or within 4 weeks
    before it", a therapy still given at screening with randomisation within 4 weeks."""
    text = PROTOCOL + (
        'E5 "Systemic therapy ongoing at randomisation or within 4 weeks before it"\n'
        "  rule any therapies with (start to end overlaps 4 weeks before randomisation)\n"
    )
    a = analyse_text(text, "e5.crit").result
    assert a is not None and a.ok
    compiled = compile_protocol(a)
    data: dict[str, Any] = {
        "facts": {"therapies": [{"kind": "chemo", "start": "2026-09-01", "end": "ongoing"}]},
        "anchors": {"randomisation": "2026-12-10"},
    }
    record = read_record(a, data, AS_OF)
    _, statuses = run_compiled(compiled, compiled.normalise(record))
    _, ref, _ = Interpreter(a).run(record)
    assert statuses == ref and statuses[-1] is True
