"""One calendar convention for month and year steps (author8 F5): the step is added to
the earlier date of the pair, clamped to the month's end (CQL date arithmetic), in every
back end, whichever way the sentence is phrased; ages follow the same rule."""

from __future__ import annotations

import datetime as dt

import pytest

from critlang.backends.python import compile_protocol
from critlang.backends.runtime import add_months, elapsed_years
from critlang.backends.runtime_calendar import elapsed_months, months_back
from critlang.data.records import read_record
from critlang.evaluate import Evaluator
from critlang.frontend import analyse_text
from critlang.interpreter import Interpreter
from helpers import duckdb_rows

HEAD = 'protocol "T"\n  title "t"\n  version "1"\n  date 2026-01-01\nfact surgery: date\n'


def _o(s: str) -> int:
    return dt.date.fromisoformat(s).toordinal()


def test_edges_are_the_earlier_date_convention_on_every_day() -> None:
    start = _o("2023-12-01")
    for a in range(start, start + 800):
        for m in (1, 2, 12, 24):
            lo = min(d for d in range(a - 800, a + 1) if add_months(d, m) >= a)
            hi = max(d for d in range(a - 800, a + 1) if add_months(d, m) <= a)
            assert (months_back(a, m, "lo"), months_back(a, m, "hi")) == (lo, hi)


def test_elapsed_years_and_months_follow_the_same_step() -> None:
    # born 2008-02-29: 2008-02-29 + 18 years = 2026-02-28 (clamped), so 18 that day
    assert elapsed_years(_o("2008-02-29"), _o("2026-02-28")) == 18.0
    assert elapsed_years(_o("2008-02-29"), _o("2026-02-27")) == 17.0
    assert elapsed_years(_o("2024-02-29"), _o("2026-02-28")) == 2.0
    assert elapsed_years(_o("2024-02-29"), _o("2028-02-28")) == 3.0  # leap year: 29th
    assert elapsed_months(_o("2026-01-31"), _o("2026-02-28")) == 1.0
    assert elapsed_months(_o("2026-01-31"), _o("2026-02-27")) == 0.0
    assert elapsed_months(_o("2025-03-15"), _o("2025-11-20")) == 8.0


PAIRS = [
    ("enrollment less than 1 months after surgery", "surgery less than 1 months before enrollment"),
    ("enrollment within 1 months after surgery", "surgery within 1 months before enrollment"),
    ("enrollment more than 1 months after surgery", "surgery more than 1 months before enrollment"),
    ("enrollment at least 1 months after surgery", "surgery at least 1 months before enrollment"),
    ("enrollment less than 2 years after surgery", "surgery less than 2 years before enrollment"),
]


_CACHE: dict[str, object] = {}


def _protocol(rule: str) -> object:
    if rule not in _CACHE:
        a = analyse_text(HEAD + f'exclusion criteria\nE1 "x"\n  rule {rule}\n', "t.crit")
        assert a.result is not None and a.ok, [d.message for d in a.diagnostics]
        _CACHE[rule] = a.result
    return _CACHE[rule]


def _verdict(rule: str, surgery: str, as_of: str) -> str:
    """The compiled verdict, held equal to the reference interpreter's statuses and to
    the explanation's verdict."""
    p = _protocol(rule)
    record = read_record(p, {"facts": {"surgery": surgery}}, dt.date.fromisoformat(as_of), "p")
    compiled = compile_protocol(p)
    _, got = compiled.evaluate(compiled.normalise(record))
    _, ref, _ = Interpreter(p).run(record)
    assert got == ref, (rule, surgery, as_of)
    return Evaluator(compiled).evaluate(record).verdict


@pytest.mark.parametrize("after, before", PAIRS)
def test_mirrored_phrasings_agree_on_month_ends(after: str, before: str) -> None:
    days = ["2024-02-29", "2026-01-28", "2026-01-29", "2026-01-31", "2026-02-01", "2026-03-31"]
    for surgery in days:
        for as_of in ["2026-02-28", "2026-03-01", "2026-03-31", "2026-04-30", "2028-02-28"]:
            if surgery > as_of:
                continue
            assert _verdict(after, surgery, as_of) == _verdict(before, surgery, as_of), (
                surgery,
                as_of,
            )
    # the case that had differed: 2026-01-31 + 1 month = 2026-02-28, not less than a month
    assert _verdict(PAIRS[0][1], "2026-01-31", "2026-02-28") == "eligible"


def test_duckdb_agrees_on_month_ends(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for n, (after, before) in enumerate(PAIRS):
        for rule in (after, before):
            compiled = compile_protocol(_protocol(rule))
            records = [
                (f"p{i}", {"facts": {"surgery": s}})
                for i, s in enumerate(
                    ["2024-02-29", "2026-01-28", "2026-01-29", "2026-01-31", "2026-02-01"]
                )
            ]
            for as_of in ("2026-02-28", "2026-03-31"):
                day = dt.date.fromisoformat(as_of)
                rows = duckdb_rows(
                    compiled, records, tmp_path / f"{n}{rule[:3]}{as_of}.duckdb", day
                )
                want = [_verdict(rule, r[1]["facts"]["surgery"], as_of) for r in records]
                got = [
                    next(x for x in row if x in ("eligible", "ineligible", "undetermined"))
                    for row in rows
                ]
                assert got == want, (rule, as_of)
