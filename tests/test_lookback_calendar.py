"""A fact's look-back window (`measured within N months before ANCHOR`) holds exactly the
days a `within N months before ANCHOR` rule holds: one calendar convention (a step added
to the earlier date, clamped to the month's end; backends/runtime_calendar.py), so a
value the reader places in the window is never one the rule's own window would refuse."""

from __future__ import annotations

import datetime as dt

import pytest

from critlang.data.records import read_record
from helpers import TwoEvaluators

BOTH = TwoEvaluators(
    """\
anchor visit "Visit"
fact hb: quantity g/dL
  measured within 1 months before visit
fact hb_taken: date
fact scan: quantity cm
  measured within 3 months before visit
fact scan_taken: date
inclusion criteria
I1 "a haemoglobin in its window"
  rule hb >= 0 g/dL
I2 "taken within 1 month"
  rule hb_taken within 1 months before visit
I3 "a scan in its window"
  rule scan >= 0 cm
I4 "scanned within 3 months"
  rule scan_taken within 3 months before visit
""",
    "lookback.crit",
)


@pytest.mark.parametrize(
    "anchor", ["2026-03-31", "2026-03-30", "2024-02-29", "2026-02-28", "2026-05-31"]
)
def test_the_look_back_window_is_the_rules_window(anchor: str) -> None:
    visit = dt.date.fromisoformat(anchor)
    for back in range(0, 130):
        day = (visit - dt.timedelta(days=back)).isoformat()
        data = {
            "anchors": {"visit": anchor},
            "facts": {
                "hb": {"value": 12, "unit": "g/dL", "date": day},
                "hb_taken": day,
                "scan": {"value": 3, "unit": "cm", "date": day},
                "scan_taken": day,
            },
        }
        record = read_record(BOTH.checked, data, visit)
        _, s = BOTH.statuses(record)
        i1, i2, i3, i4 = (s[BOTH.ids.index(c)] for c in ("I1", "I2", "I3", "I4"))
        assert (i1 is True) == (i2 is True), (anchor, day, i1, i2)
        assert (i3 is True) == (i4 is True), (anchor, day, i3, i4)
