"""Facts and list fields with no interval in a cohort are compared as plain values.

`critlang ingest` measures, in the per-patient tables it writes, which facts and list
fields hold only points (closed, low = high, never ongoing: values.Layout.measured);
the query then compares their one value instead of reasoning over interval bounds
(docs/scale.md, "Screening from the per-patient tables"). The answers must be the same
patient by patient: against the Python evaluator, the facts form and the per-patient
form without the measurement; and a cohort with one censored value or one ongoing end
must not be measured as points for that fact or field.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

from critlang.backends.python import compile_protocol
from critlang.backends.sql import compile_sql
from critlang.backends.sql.engines import DuckDB
from critlang.backends.sql.values import Layout
from critlang.frontend import analyse_text
from test_sql_intervals import AS_OF, DATES, _assert_same, _both

EXACT_ENDS = [
    "2026-11-20",
    "2026-11-27",
    "2026-10-01",
    "2026-08-28",
    "2025-05-03",
    None,
]  # none after AS_OF: a planned end is an interval
EXACT_STARTS = ["2026-01-05", "2025-12-01", "2026-06-01", "2025-12-31"]
EXACT_SURGERIES = ["2025-11-02", "2025-06-15", "2026-10-28", "2024-02-29", None]
ANCHORS = ["2026-12-17", "2027-03-01", "2026-11-28", "2026-11-27", None]

LABS = """fact wbc: quantity x10^9/L
fact glucose: quantity mg/dL
  reference range 70 mg/dL to 100 mg/dL
fact weight: quantity kg
inclusion criteria
W1 "wbc"
  rule wbc < 2 x10^9/L
W2 "wbc between"
  rule wbc between 1 x10^9/L and 3 x10^9/L
G1 "glucose"
  rule glucose > 2 x ULN
G2 "glucose normal"
  rule glucose within normal range
X1 "arithmetic"
  rule (weight in kg) * 2 < 150
"""


def _exact_patients(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        items = []
        for _ in range(rng.choice([0, 1, 2, 3])):
            item: dict[str, Any] = {"kind": rng.choice(["ssa", "tace"])}
            if rng.random() < 0.9:
                item["start"] = rng.choice(EXACT_STARTS)
            end = rng.choice(EXACT_ENDS)
            if end is not None:
                item["end"] = end
            items.append(item)
        facts: dict[str, Any] = {"prior_therapies": items}
        surgery = rng.choice(EXACT_SURGERIES)
        if surgery is not None:
            facts["last_surgery"] = surgery
        patient: dict[str, Any] = {"id": f"x{i}", "facts": facts}
        anchor = rng.choice(ANCHORS)
        if anchor is not None:
            patient["anchors"] = {"prrt_start": anchor}
        out.append(patient)
    return out


def _layouts(text: str, path: Path) -> tuple[Any, Layout, str, str]:
    """The cohort's measured layout and the query text with and without it."""
    a = analyse_text(text)
    assert a.result is not None
    compiled = compile_protocol(a.result)
    engine = DuckDB(path)
    try:
        layout = Layout.from_meta(engine.meta())
        assert layout is not None
        plain = dataclasses.replace(layout, points=frozenset(), no_range=frozenset())
        fast, slow = compile_sql(compiled, AS_OF, layout), compile_sql(compiled, AS_OF, plain)
        assert fast.form == slow.form == "values"
        rows = engine.run(fast).patients
        assert rows and rows == engine.run(slow).patients
        return compiled, layout, fast.sql("duckdb"), slow.sql("duckdb")
    finally:
        engine.close()


def test_dates_without_intervals_are_compared_as_plain_values(tmp_path: Path) -> None:
    path = tmp_path / "c.duckdb"
    _assert_same(_both(DATES, _exact_patients(300, 8), path), min_decided=1000)
    _, layout, fast, slow = _layouts(DATES, path)
    assert {"last_surgery", "prior_therapies.x2", "prior_therapies.x3"} <= layout.points
    assert {"prior_therapies.x2", "prior_therapies.x3"} <= layout.no_range
    # the bounds of the end date and the ongoing flag are no longer read
    assert "x3_hi" in slow and "x3_ong" in slow
    assert "x3_hi" not in fast and "x3_ong" not in fast
    assert len(fast) < len(slow) * 0.7, (len(fast), len(slow))


def test_one_ongoing_end_keeps_the_interval_reasoning(tmp_path: Path) -> None:
    patients = _exact_patients(200, 9)
    patients[17]["facts"]["prior_therapies"] = [{"kind": "ssa", "start": "2026-06-01"}]
    patients[17]["facts"]["prior_therapies"][0]["end"] = "ongoing"
    patients[18]["facts"]["last_surgery"] = "2026-10"  # a partial date
    path = tmp_path / "c.duckdb"
    _assert_same(_both(DATES, patients, path), min_decided=600)
    _, layout, fast, _ = _layouts(DATES, path)
    assert "prior_therapies.x3" not in layout.points
    assert "prior_therapies.x3" not in layout.no_range
    assert "last_surgery" not in layout.points
    assert "prior_therapies.x2" in layout.points  # the starts are still exact
    assert "x3_ong" in fast


def _labs(n: int, seed: int, censored: bool) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        facts: dict[str, Any] = {}
        if rng.random() < 0.9:
            facts["wbc"] = {"value": rng.choice([0.5, 1, 1.5, 2, 2.5, 3, 4]), "unit": "x10^9/L"}
        if rng.random() < 0.9:
            glucose: dict[str, Any] = {
                "value": rng.choice([60, 90, 150, 200, 250]),
                "unit": "mg/dL",
            }
            if rng.random() < 0.5:
                glucose |= {"low": 70, "high": rng.choice([100, 110, 125])}
            facts["glucose"] = glucose
        if rng.random() < 0.9:
            facts["weight"] = {"value": rng.choice([50, 74, 75, 76, 120]), "unit": "kg"}
        out.append({"id": f"l{i}", "facts": facts})
    if censored:
        out[3]["facts"]["wbc"] = {"value": 1.5, "unit": "x10^9/L", "comparator": "<"}
        out[4]["facts"]["weight"] = {"value": 200, "unit": "kg", "comparator": ">"}
    return out


def test_scalar_facts_with_and_without_a_censored_value(tmp_path: Path) -> None:
    plain = tmp_path / "plain.duckdb"
    _assert_same(_both(LABS, _labs(300, 3, censored=False), plain), min_decided=800)
    _, layout, fast, slow = _layouts(LABS, plain)
    assert {"wbc", "glucose"} <= layout.points and "weight" in layout.no_range
    assert len(fast) < len(slow)
    censored = tmp_path / "censored.duckdb"
    pairs = _both(LABS, _labs(300, 3, censored=True), censored)
    # "> 200 kg" read by arithmetic: Python computes the interval (not met), SQL leaves it
    # unknown (intervals.py: weaker, never different), with or without the measurement
    (py, sql) = pairs[4]
    assert (py[-1], sql[-1]) == ("not met", "unknown")
    pairs[4] = (py, (*sql[:-1], py[-1]))
    _assert_same(pairs, min_decided=800)
    _, layout, _, _ = _layouts(LABS, censored)
    assert "wbc" not in layout.points and "glucose" in layout.points
    # weight read plainly (arithmetic) and censored once: its plain reads stay marked
    assert "weight" not in layout.no_range


def test_a_layout_from_an_older_cohort_has_no_points() -> None:
    meta = {"values": '{"columns": {"wbc": ["f1", "d"]}, "lists": {}}'}
    layout = Layout.from_meta(meta)
    assert layout is not None and layout.points == layout.no_range == frozenset()
    assert "points" not in layout.to_meta()
