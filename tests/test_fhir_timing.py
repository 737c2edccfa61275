"""The planned end of taking a drug (reading8 item 3): a MedicationRequest's
dosageInstruction[].timing.repeat.bounds[x] (R4 Timing.repeat.boundsPeriod /
boundsDuration) and a MedicationStatement's effectivePeriod, at the edges of a 4-week
window, the list read as complete (`--absent-means-no medications`). Each case is
screened from a Bundle (the compiled evaluator), run by the
interpreter (which must agree) and through `ingest` + DuckDB (which must agree)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from critlang.data.fhir import Extractor, Tally, read_fhir
from critlang.data.reader import Reader
from helpers import TwoEvaluators, write_fhir
from test_fhir_realworld7 import duckdb_row, said, screen

SNOMED = "http://snomed.info/sct"
PROTOCOL = """fact therapies: list of {kind: enum {nystatin, cisplatin}, start: date, end: date}
codes therapies.nystatin: snomed "324689003"
codes therapies.cisplatin: rxnorm "1736854"
exclusion criteria
E1 "nystatin ongoing"
  rule any therapies with (kind = nystatin and start to end ongoing at enrollment)
E2 "nystatin within 4 weeks"
  rule any therapies with (kind = nystatin and start to end overlaps 4 weeks before enrollment)
"""
PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"}
AS_OF = dt.date(2024, 6, 1)  # test_fhir_realworld7.AS_OF; 4 weeks before: 2024-05-04
# the list read as complete, so that one item decides `any ... with` either way
FLAGS = ("--absent-means-no", "medications")
WORDS = {True: "met", False: "not met", None: "unknown"}


def request(status: str = "active", *lines: dict, **extra: Any) -> dict[str, Any]:
    r = {
        "resourceType": "MedicationRequest",
        "id": "mr1",
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"coding": [{"system": SNOMED, "code": "324689003"}]},
        "authoredOn": "2024-01-15",
    } | extra
    if lines:
        r["dosageInstruction"] = list(lines)
    return r


def period(end: str | None, start: str = "2024-01-15") -> dict:
    p = {"start": start} | ({"end": end} if end else {})
    return {"text": "one daily", "timing": {"repeat": {"boundsPeriod": p, "frequency": 1}}}


def duration(value: Any, code: str = "d") -> dict:
    q = {"value": value, "unit": code, "system": "http://unitsofmeasure.org", "code": code}
    return {"timing": {"repeat": {"boundsDuration": q}}}


def run(tmp_path: Path, resource: dict) -> tuple[dict, list[str]]:
    """E1/E2 from the compiled evaluator and the interpreter (asserted equal), the
    same through ingest + DuckDB (asserted equal), and the problems on `therapies`."""
    two = TwoEvaluators(PROTOCOL, "t.crit")
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": PATIENT}, {"resource": resource}]}  # fmt: skip
    (path,) = write_fhir(tmp_path, [("b.json", bundle)])
    (p,) = list(read_fhir([path], Extractor(two.checked, FLAGS[1:]), AS_OF, Tally()))
    record = Reader(two.checked, p.path, AS_OF).read(p.record)
    _, got = two.statuses(record)
    statuses = {c: WORDS[s] for c, s in zip(two.ids, got, strict=True)}
    row = screen(tmp_path, "bundle", [PATIENT, resource], PROTOCOL, FLAGS)
    assert row["criteria"] == statuses
    sql = duckdb_row(tmp_path, "bundle", [PATIENT, resource], PROTOCOL, FLAGS)
    assert {c: sql[c] for c in statuses} == statuses
    return statuses, [
        p[len("therapies: ") :] for p in row["problems"] if said(row, "therapies", "")
    ]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        # no dosage bounds: an active order is ongoing (as before)
        ((), {"E1": "met", "E2": "met"}),
        ((period(None),), {"E1": "met", "E2": "met"}),  # a period with no end goes on
        # boundsPeriod.end: the planned end of taking, on both sides of the window start
        ((period("2024-05-04"),), {"E1": "not met", "E2": "met"}),
        ((period("2024-05-03"),), {"E1": "not met", "E2": "not met"}),
        ((period("2024-05-03T23:59:00+02:00"),), {"E1": "not met", "E2": "not met"}),
        # a planned end after the screening date: still taken then
        ((period("2024-07-01"),), {"E1": "met", "E2": "met"}),
        ((period("2024-06-01"),), {"E1": "met", "E2": "met"}),
        # boundsDuration from authoredOn 2024-01-15: 110 days end 2024-05-04
        ((duration(110),), {"E1": "not met", "E2": "met"}),
        ((duration(109),), {"E1": "not met", "E2": "not met"}),
        ((duration(15, "wk"),), {"E1": "not met", "E2": "not met"}),  # 2024-04-29
        ((duration(4, "mo"),), {"E1": "not met", "E2": "met"}),  # 2024-05-15
        ((duration(1, "a"),), {"E1": "met", "E2": "met"}),  # 2025-01-15
        # several lines: the latest end, in either order
        ((period("2024-03-01"), period("2024-07-01")), {"E1": "met", "E2": "met"}),
        ((period("2024-07-01"), period("2024-03-01")), {"E1": "met", "E2": "met"}),
        ((period("2024-03-01"), duration(110)), {"E1": "not met", "E2": "met"}),
        # one line with no end: the order plans none
        ((period("2024-03-01"), {"text": "as needed"}), {"E1": "met", "E2": "met"}),
    ],
)
def test_an_active_order_ends_at_its_dosage_bounds(tmp_path, lines, expected) -> None:
    got, problems = run(tmp_path, request("active", *lines))
    assert got == expected
    assert not [p for p in problems if "dosageInstruction" in p]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (period("2024-13-01"), "is not a date"),
        (duration(3, "{tbl}"), "not a unit of time"),
        (duration(-3), "boundsDuration value '-3'"),
        (duration(1.5, "mo"), "not whole"),
        (duration(36, "h"), "from a date without time"),
        (
            {"timing": {"repeat": {"boundsRange": {"high": {"value": 3, "code": "mo"}}}}},
            "boundsRange",
        ),
        ({"timing": {"repeat": {"boundsPeriod": "2024-05-01"}}}, "not an object"),
        ({"modifierExtension": [{"url": "x"}], "timing": {}}, "modifierExtension"),
    ],
)
def test_a_bound_that_cannot_be_read_leaves_the_end_unknown(tmp_path, line, why) -> None:
    """Never "ongoing" by default: the end is unknown, said; a readable line beside it
    does not decide in its place."""
    for lines in ((line,), (period("2024-03-01"), line)):
        got, problems = run(tmp_path, request("active", *lines))
        assert got == {"E1": "unknown", "E2": "unknown"}, lines
        assert any("dosageInstruction" in p and why in p for p in problems), problems


def test_a_duration_from_an_authored_time_counts_in_its_offset(tmp_path) -> None:
    """authoredOn 2024-05-03T20:00+02:00 + 6 h is 2024-05-04T02:00 in that offset:
    inside the window (its UTC day would be 05-04 too; 3 h stays 05-03)."""
    r = request("active", duration(6, "h"), authoredOn="2024-05-03T20:00:00+02:00")
    assert run(tmp_path, r)[0] == {"E1": "not met", "E2": "met"}
    r = request("active", duration(3, "h"), authoredOn="2024-05-03T20:00:00+02:00")
    assert run(tmp_path, r)[0] == {"E1": "not met", "E2": "not met"}


@pytest.mark.parametrize(
    ("status", "lines", "expected"),
    [
        # completed: taken to the planned end
        ("completed", (period("2024-05-04"),), {"E1": "not met", "E2": "met"}),
        ("completed", (period("2024-05-03"),), {"E1": "not met", "E2": "not met"}),
        ("completed", (period("2024-07-01"),), {"E1": "met", "E2": "met"}),
        ("completed", (), {"E1": "unknown", "E2": "unknown"}),  # no plan: end unknown
        # stopped / on-hold: ended before the plan, on a day not recorded
        ("stopped", (period("2024-05-03"),), {"E1": "unknown", "E2": "unknown"}),
        ("on-hold", (period("2024-07-01"),), {"E1": "unknown", "E2": "unknown"}),
    ],
)
def test_the_planned_end_by_status(tmp_path, status, lines, expected) -> None:
    assert run(tmp_path, request(status, *lines))[0] == expected


def test_an_active_order_past_its_validity_with_a_later_planned_end(tmp_path) -> None:
    """A planned end after the screening date, but a prescription that could be filled
    only until before it: whether it is still taken is unknown (as without bounds)."""
    stale = {"validityPeriod": {"start": "2024-01-15", "end": "2024-03-01"}}
    got, problems = run(tmp_path, request("active", period("2024-07-01"), dispenseRequest=stale))
    assert got["E1"] == "unknown"
    assert any("could be filled only until 2024-03-01" in p for p in problems)
    # a planned end before the screening date decides whatever the validity says
    got, _ = run(tmp_path, request("active", period("2024-05-03"), dispenseRequest=stale))
    assert got == {"E1": "not met", "E2": "not met"}


@pytest.mark.parametrize(
    ("status", "end", "expected"),
    [
        ("completed", "2024-05-04", {"E1": "not met", "E2": "met"}),
        ("completed", "2024-05-03", {"E1": "not met", "E2": "not met"}),
        ("active", "2024-07-01", {"E1": "met", "E2": "met"}),
        ("active", None, {"E1": "met", "E2": "met"}),
    ],
)
def test_a_statement_effective_period_at_the_window_edges(tmp_path, status, end, expected):
    statement = {
        "resourceType": "MedicationStatement",
        "id": "ms1",
        "status": status,
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"coding": [{"system": SNOMED, "code": "324689003"}]},
        "effectivePeriod": {"start": "2024-01-15"} | ({"end": end} if end else {}),
    }
    assert run(tmp_path, statement)[0] == expected
