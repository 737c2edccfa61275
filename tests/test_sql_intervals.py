"""Values known only as an interval in the SQL back end (backends/sql/intervals.py).

Censored values ("< 1.5"), partial dates ("2024-05"), ongoing ends and planned ends after
the evaluation date are runtime.Range values in the Python evaluator, which decides a
comparison over one when every value of the interval decides it alike. Small protocols
and patients built from such values go through DuckDB: every status must equal the
Python evaluator's, and the patients are built so that many of them are decided.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from pathlib import Path
from typing import Any

import pytest

from critlang.backends.python import compile_protocol
from critlang.backends.sql import compile_sql
from critlang.backends.sql.engines import DuckDB
from critlang.backends.sql.values import Layout
from critlang.data.ingest import ingest_records
from critlang.data.records import read_record
from critlang.evaluate import Evaluator
from critlang.frontend import analyse_text

AS_OF = dt.date(2026, 11, 27)


def _both(text: str, patients: list[dict[str, Any]], path: Path) -> list[tuple[Any, Any]]:
    """(Python, DuckDB) verdict and statuses per patient."""
    a = analyse_text(text)
    assert a.result is not None and a.ok, [d.message for d in a.diagnostics]
    compiled = compile_protocol(a.result)
    records = [(p["id"], p) for p in patients]
    ingest_records(compiled, records, path, AS_OF)
    engine = DuckDB(path)
    try:
        rows = engine.run(compile_sql(compiled, AS_OF)).patients
        # and over the per-patient tables ingest wrote (backends/sql/values.py): the same rows
        wide = compile_sql(compiled, AS_OF, Layout.from_meta(engine.meta()))
        assert wide.form == "values"
        assert engine.run(wide).patients == rows
    finally:
        engine.close()
    evaluator = Evaluator(compiled, explain=False)
    out = []
    for (name, data), row in zip(records, rows, strict=True):
        e = evaluator.evaluate(read_record(a.result, data, AS_OF, name))
        out.append(((e.verdict, *(c.status for c in e.criteria)), tuple(row[2:-1])))
    return out


def _assert_same(pairs: list[tuple[Any, Any]], min_decided: int) -> None:
    wrong = [(i, py, sql) for i, (py, sql) in enumerate(pairs) if py != sql]
    assert not wrong, f"{len(wrong)} patients differ, e.g. {wrong[:3]}"
    decided = sum(s in ("met", "not met") for py, _ in pairs for s in py[1:])
    assert decided >= min_decided, decided


DATES = """anchor prrt_start
fact prior_therapies: list of {kind: enum {ssa, tace}, start: date, end: date}
fact last_surgery: date
inclusion criteria
I1 "no therapy ended within 6 weeks before PRRT"
  rule no prior_therapies with (end within 6 weeks before prrt_start)
I2 "no therapy ended less than 3 months before enrollment"
  rule no prior_therapies with (end less than 3 months before enrollment)
I3 "a therapy ended more than 1 month before PRRT"
  rule any prior_therapies with (end more than 1 month before prrt_start)
I4 "a therapy started after 2026-01-01"
  rule any prior_therapies with (start after 2026-01-01)
I5 "every therapy ended before PRRT"
  rule all prior_therapies with (end before prrt_start)
I6 "a therapy within 2 months after surgery"
  rule any prior_therapies with (start within 2 months after last_surgery)
I7 "surgery more than 12 months before enrollment"
  rule last_surgery more than 12 months before enrollment
I8 "surgery within 30 days before PRRT"
  rule last_surgery within 30 days before prrt_start
I9 "surgery less than 1 year after 2025-06-15"
  rule last_surgery less than 1 year after 2025-06-15
I10 "a therapy ended within 2 weeks after surgery"
  rule any prior_therapies with (end within 2 weeks after last_surgery)
"""

ENDS = [
    "ongoing", "2026-12-20", "2027-03", "2026-10", "2026-11", "2026", "2025",
    "2026-11-27", "2026-10-01", "2026-08-28", None,
]  # fmt: skip
STARTS = ["2026-01-05", "2025-12", "2026", "2025", "2026-06-01", "2025-12-31"]
SURGERIES = ["2025-11", "2025", "2026-11", "2026", "2025-06-15", "2024", "2026-10-28", None]
ANCHORS = ["2026-12-17", "2027-03-01", "2026-11-28", "2026-11-27", "2027-01", None]


def _date_patients(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        items = []
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            item: dict[str, Any] = {"kind": rng.choice(["ssa", "tace"])}
            start, end = rng.choice(STARTS), rng.choice(ENDS)
            if rng.random() < 0.9:
                item["start"] = start
            if end is not None:
                item["end"] = end
            items.append(item)
        facts: dict[str, Any] = {"prior_therapies": items}
        surgery = rng.choice(SURGERIES)
        if surgery is not None:
            facts["last_surgery"] = surgery
        anchor = rng.choice(ANCHORS)
        patient = {"id": f"d{i}", "facts": facts}
        if anchor is not None and len(anchor) == 10:
            patient["anchors"] = {"prrt_start": anchor}
        out.append(patient)
    return out


def test_dates_ongoing_planned_and_partial(tmp_path: Path) -> None:
    """Ongoing and planned ends, partial dates as list fields and as a date fact used as
    a window's subject and as its anchor: DuckDB gives Python's statuses exactly."""
    _assert_same(_both(DATES, _date_patients(600, 1), tmp_path / "d.duckdb"), 1500)


def test_planned_end_after_evaluation_date_decides(tmp_path: Path) -> None:
    """The issue's example: a planned end after the evaluation date is ongoing; with PRRT
    three weeks ahead, "ended within 6 weeks before PRRT" holds: I1 not met, in both."""
    patient = {
        "id": "planned",
        "facts": {"prior_therapies": [{"kind": "ssa", "start": "2026-06-01", "end": "2027-01-10"}]},
        "anchors": {"prrt_start": "2026-12-17"},
    }
    pairs = _both(DATES, [patient], tmp_path / "p.duckdb")
    _assert_same(pairs, 1)
    assert pairs[0][1][1] == "not met"


LABS = """fact wbc: quantity x10^9/L
fact ki67: quantity %
fact inr: number
fact glucose: quantity mg/dL
  reference range reported
inclusion criteria
I1 "wbc below 2"
  rule wbc < 2 x10^9/L (2000/mm3)
I2 "wbc at most 2"
  rule wbc <= 2 x10^9/L
I3 "ki67 between 3 and 20"
  rule ki67 between 3 % and 20 %
I4 "inr above 1.5"
  rule inr > 1.5
I5 "inr equal 1"
  rule inr = 1
I6 "glucose over 2 ULN"
  rule glucose > 2 x ULN
I7 "glucose normal"
  rule glucose within normal range
I8 "wbc known"
  rule wbc is known
I9 "wbc above 1000/mm3"
  rule wbc >= 1000 /mm3
I10 "inr not 1"
  rule inr != 1
"""


def _censored(rng: random.Random, values: list[float], unit: str | None) -> Any:
    v = rng.choice(values)
    if v is None:
        return None
    entry: dict[str, Any] = {"value": v, "date": "2026-11-20"}
    if unit is not None:
        entry["unit"] = unit
    comparator = rng.choice([None, "<", "<=", ">", ">="])
    if comparator is not None:
        entry["comparator"] = comparator
    return entry


def _lab_patients(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        facts: dict[str, Any] = {}
        for name, values, unit in (
            ("wbc", [1, 1.5, 2, 2.5, 4, None], rng.choice(["x10^9/L", "/mm3"])),
            ("ki67", [1, 3, 10, 20, 25, None], "%"),
            ("inr", [0.5, 1, 1.5, 2, None], None),
            ("glucose", [50, 100, 200, 250, None], "mg/dL"),
        ):
            entry = _censored(rng, values, unit)
            if entry is not None and name == "wbc" and entry["unit"] == "/mm3":
                entry["value"] = entry["value"] * 1000
            if entry is not None and name == "glucose" and rng.random() < 0.7:
                entry["reference_range"] = {"low": 70, "high": 100, "unit": "mg/dL"}
            if entry is not None:
                facts[name] = entry
        out.append({"id": f"l{i}", "facts": facts})
    return out


def test_censored_values(tmp_path: Path) -> None:
    """Censored values against constants, `between`, `x ULN`, `within normal range`,
    `is known`, a bound in another unit: DuckDB gives Python's statuses exactly."""
    _assert_same(_both(LABS, _lab_patients(600, 2), tmp_path / "l.duckdb"), 2500)


OTHER = """fact weight: quantity kg
fact serum_creatinine: quantity mg/dL
fact measured_clearance: quantity mL/min
fact birth_date: date
define age = elapsed_years(birth_date, enrollment)
define cg(age: quantity years, weight: quantity kg, creatinine: quantity mg/dL) =
  ((140 - (age in years)) * (weight in kg) / (72 * (creatinine in mg/dL)) as mL/min)
inclusion criteria
I1 "clearance"
  rule first available (measured_clearance, cg(age, weight, serum_creatinine)) >= 60 mL/min
I2 "adult"
  rule age >= 18 years
I3 "weight"
  rule weight > 40 kg or serum_creatinine < 1.5 mg/dL
"""


@pytest.mark.parametrize("seed", [3])
def test_other_uses_of_an_interval_are_never_decided_differently(tmp_path: Path, seed: int) -> None:
    """Arithmetic, a formula, `first available`, an age from a partial birth date: SQL
    says unknown where Python reasons over the interval, never another decided answer."""
    rng = random.Random(seed)
    patients = []
    for i in range(300):
        facts: dict[str, Any] = {}
        for name, values, unit in (
            ("weight", [35, 50, 80, None], "kg"),
            ("serum_creatinine", [0.8, 1.5, 2.5, None], "mg/dL"),
            ("measured_clearance", [40, 60, 90, None, None], "mL/min"),
        ):
            entry = _censored(rng, values, unit)
            if entry is not None:
                facts[name] = entry
        bd = rng.choice(["1960-03-15", "1960", "2008", "2008-11", "2010", None])
        if bd is not None:
            facts["birth_date"] = bd
        patients.append({"id": f"o{i}", "facts": facts})
    pairs = _both(OTHER, patients, tmp_path / "o.duckdb")
    decided = {"met", "not met", "eligible", "ineligible"}
    for py, sql in pairs:
        for a, b in zip(py, sql, strict=True):
            assert a == b or (a in decided and b in ("unknown", "undetermined")), (py, sql)
    # plain values stay decided alike
    assert sum(py == sql for py, sql in pairs) > 100


def test_interval_columns_of_the_facts_table(tmp_path: Path) -> None:
    """What ingest writes for each kind of interval (docs/scale.md)."""
    import duckdb

    text = """fact wbc: quantity x10^9/L
fact birth_date: date
fact prior_therapies: list of {kind: enum {ssa, tace}, start: date, end: date}
inclusion criteria
I1 "x"
  rule wbc < 2 x10^9/L and birth_date before 2000-01-01
"""
    a = analyse_text(text)
    assert a.result is not None and a.ok
    compiled = compile_protocol(a.result)
    patient = {
        "id": "x",
        "facts": {
            "wbc": {"value": 1500, "unit": "/mm3", "comparator": "<", "date": "2026-11-20"},
            "birth_date": "1960-05",
            "prior_therapies": [{"kind": "ssa", "start": "2026-01-01", "end": "ongoing"}],
        },
    }
    path = tmp_path / "x.duckdb"
    ingest_records(compiled, [("x", patient)], path, AS_OF)
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            "SELECT fact, field, value, value_low, value_high, low_open, high_open, ongoing "
            "FROM critlang_facts WHERE value_low IS NOT NULL OR value_high IS NOT NULL "
            "ORDER BY fact, field"
        ).fetchall()
    finally:
        con.close()
    day = dt.date.toordinal
    assert rows == [
        ("birth_date", None, None, day(dt.date(1960, 5, 1)), day(dt.date(1960, 5, 31)), 0, 0, 0),
        ("prior_therapies", "end", None, day(AS_OF), None, 0, 0, 1),
        ("wbc", None, None, 0.0, 1.5, 0, 1, 0),  # "< 1.5" of a count: from 0 (data/signs.py)
    ]


def test_every_combination_of_a_window_form(tmp_path: Path) -> None:
    """Exhaustive over small sets: every window form and direction, an end that is exact,
    partial, ongoing or planned, and anchors around it."""
    forms = [
        f"end {kind} {d} {direction} prrt_start"
        for kind in ("within", "less than", "more than")
        for d in ("2 weeks", "1 month", "3 months")
        for direction in ("before", "after")
    ]
    text = "anchor prrt_start\n"
    text += "fact prior_therapies: list of {start: date, end: date}\ninclusion criteria\n"
    for i, form in enumerate(forms, 1):
        text += f'I{i} "{form}"\n  rule any prior_therapies with ({form})\n'
    ends = ["ongoing", "2026-12-10", "2027-02", "2026-11", "2026-09", "2026", "2026-11-27",
            "2026-11-13", "2026-10-27", "2026-08-27"]  # fmt: skip
    anchors = ["2026-11-27", "2026-12-11", "2027-01-10", "2027-02-27", "2026-11-30"]
    patients = []
    for i, (end, anchor) in enumerate(itertools.product(ends, anchors)):
        patients.append(
            {
                "id": f"w{i}",
                "facts": {"prior_therapies": [{"start": "2026-01-01", "end": end}]},
                "anchors": {"prrt_start": anchor},
            }
        )
    _assert_same(_both(text, patients, tmp_path / "w.duckdb"), 300)


FORMS = """anchor prrt_start
fact prior_therapies: list of {kind: enum {ssa, tace}, start: date, end: date}
fact last_surgery: date
inclusion criteria
I1 "ended at least 4 weeks before PRRT"
  rule all prior_therapies with (end at least 4 weeks before prrt_start)
I2 "started on or after surgery"
  rule any prior_therapies with (start on or after last_surgery)
I3 "surgery no later than enrollment"
  rule last_surgery no later than enrollment
I4 "ended between 2 and 6 weeks before PRRT"
  rule any prior_therapies with (end between 2 and 6 weeks before prrt_start)
I5 "ongoing at enrollment"
  rule no prior_therapies with (start to end ongoing at enrollment)
I6 "overlapping the 3 months before PRRT"
  rule any prior_therapies with (start to end overlaps 3 months before prrt_start)
I7 "surgery implies a late therapy"
  rule last_surgery within 12 months before enrollment
    implies any prior_therapies with (end within 3 months before prrt_start)
"""


def test_date_bounds_and_periods_over_intervals(tmp_path: Path) -> None:
    """`at least`, `on or after`, `no later than`, `between ... before`, periods over
    ongoing ends and partial dates: decided where every day the interval may be decides
    alike, in SQL exactly as in Python (python.date_bound, window_between, period);
    `implies` is Kleene's."""
    _assert_same(_both(FORMS, _date_patients(600, 4), tmp_path / "f.duckdb"), 1500)


def test_a_partial_or_disagreeing_date_of_death_is_perhaps_in_both_engines(tmp_path: Path) -> None:
    """Patient.deceased[x] "2026" as of 2026-11-27 may fall either side: never eligible yet,
    never ineligible for it (python.deceased_verdict); a full date before: ineligible."""
    text = 'fact x: boolean\ninclusion criteria\nI1 "x"\n  rule x\n'
    deaths = [None, "2026", "2026-11", "2026-11-01", "2026-12", "2027", True, False]
    patients = [
        {"id": f"p{i}", "facts": {"x": True}, **({} if d is None else {"deceased": d})}
        for i, d in enumerate(deaths)
    ]
    pairs = _both(text, patients, tmp_path / "d.duckdb")
    _assert_same(pairs, 0)
    assert [py[0] for py, _ in pairs] == [
        "eligible",
        "undetermined",
        "undetermined",
        "ineligible",
        "eligible",
        "eligible",
        "ineligible",
        "eligible",
    ]
