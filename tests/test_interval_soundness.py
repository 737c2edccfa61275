"""Never wrong: a status decided over an interval holds for every value inside it.

A record with censored values, partial dates and ongoing ends is evaluated as intervals
(the compiled evaluator; the reference interpreter agrees, asserted by the helpers it
reuses). Then each interval is replaced by concrete values it allows (its reached ends,
points just inside, far points on an unbounded side, every day of a partial month, days
far after the evaluation date for an ongoing end) and the record is evaluated again on
plain values. Every criterion the interval record decided must have the same status for
every concrete choice: an interval answer may be unknown where the values would decide,
never another answer than theirs.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import test_interval_arithmetic as arith
import test_interval_periods as periods
from critlang.backends.runtime import Range
from critlang.data.records import read_record
from critlang.evaluate import run_compiled

COMPARATORS = [None, "<", "<=", ">", ">="]


def concrete(r: Any, days: bool = False) -> list[Any]:
    """Values inside a Range (the value itself when it is plain)."""
    if not isinstance(r, Range):
        return [r]
    if days:
        lo = int(r.lo)
        hi = int(r.hi) if math.isfinite(r.hi) else lo + 4000
        picks = set(range(lo, min(hi, lo + 40) + 1)) | {hi, hi - 1, (lo + hi) // 2}
        if not math.isfinite(r.hi):
            picks |= {lo + 400, lo + 40000}
        return sorted(x for x in picks if lo <= x <= hi)
    eps = 1e-6
    lo = r.lo if math.isfinite(r.lo) else r.hi - 1e6
    hi = r.hi if math.isfinite(r.hi) else r.lo + 1e6
    points = {lo + eps, hi - eps, (lo + hi) / 2, lo + 1, hi - 1}
    if not r.lo_open and math.isfinite(r.lo):
        points.add(r.lo)
    if not r.hi_open and math.isfinite(r.hi):
        points.add(r.hi)
    if not math.isfinite(r.lo):
        points |= {lo - 1e9, 0.0, -eps}
    if not math.isfinite(r.hi):
        points |= {hi + 1e9}

    def inside(x: float) -> bool:
        if not math.isfinite(x):
            return False
        above = x > r.lo or (x == r.lo and not r.lo_open)
        below = x < r.hi or (x == r.hi and not r.hi_open)
        return above and below

    return sorted(x for x in points if inside(x))


def test_censored_arithmetic_is_never_decided_against_a_value_inside() -> None:
    values = ["-4", "0", "2", "5", "10"]
    checked = 0
    for (ca, va), (cb, vb) in itertools.product(itertools.product(COMPARATORS, values), repeat=2):
        facts = {
            "a": arith.num(f"{ca} {va}" if ca else va),
            "b": arith.num(f"{cb} {vb}" if cb else vb),
        }
        record = read_record(arith.CHECKED, {"facts": facts}, arith.AS_OF)
        f = arith.COMPILED.normalise(record)
        _, ranged = run_compiled(arith.COMPILED, f)
        for x, y in itertools.product(concrete(f["a"]), concrete(f["b"])):
            _, plain = run_compiled(arith.COMPILED, {**f, "a": x, "b": y})
            for cid, s, p in zip(arith.IDS, ranged, plain, strict=True):
                if s is not None:
                    checked += 1
                    assert s == p, (cid, facts, x, y, s, p)
    assert checked > 5000


def test_cockcroft_gault_is_never_decided_against_a_value_inside() -> None:
    checked = 0
    for comparator, value, weight, birth in itertools.product(
        COMPARATORS,
        ["0.5", "1", "1.44", "2", "10"],
        ["< 100", "72", "> 40"],
        ["1958", "1958-06-01"],
    ):
        cr = {"value": value, "unit": "mg/dL"}
        if comparator:
            cr["comparator"] = comparator
        w: dict[str, Any] = {"value": weight.split()[-1], "unit": "kg"}
        if " " in weight:
            w["comparator"] = weight.split()[0]
        facts = {"birth_date": birth, "weight": w, "serum_creatinine": cr, "sex": "female"}
        record = read_record(arith.CHECKED, {"facts": facts}, arith.AS_OF)
        f = arith.COMPILED.normalise(record)
        _, ranged = run_compiled(arith.COMPILED, f)
        bd = f["birth_date"]
        births = [bd]
        if isinstance(bd, Range):  # born some day of 1958: its ends, and days between
            births = sorted({int(bd.lo), int(bd.hi), int(bd.lo) + 151, int(bd.hi) - 30})
        for c, wt, b in itertools.product(
            concrete(f["serum_creatinine"]), concrete(f["weight"]), births
        ):
            if c <= 0 or wt < 0:
                continue  # not a value a record can hold (no quantity is below zero)
            _, plain = run_compiled(
                arith.COMPILED, {**f, "serum_creatinine": c, "weight": wt, "birth_date": b}
            )
            for cid, s, p in zip(arith.IDS, ranged, plain, strict=True):
                if cid.startswith("C") and s is not None:
                    checked += 1
                    assert s == p, (cid, facts, c, wt, b, s, p)
    assert checked > 500


def test_periods_are_never_decided_against_a_day_inside() -> None:
    starts = ["2026-06-01", "2026-06", "2026-11-27", "2025"]
    ends = ["ongoing", "2027-02-01", "2026-11", "2026-10", "2026-11-27", "2026-09-15", "2026"]
    anchors = ["2026-05-03", "2026-06-15", "2026-11-01", "2026-11-13", "2026-11-27",
               "2026-12-10", "2026-12-25", "2026-12-26", "2027-03-01"]  # fmt: skip
    checked = 0
    for start, end, anchor in itertools.product(starts, ends, anchors):
        data = {
            "facts": {"therapies": [{"kind": "chemo", "start": start, "end": end}]},
            "anchors": {"randomisation": anchor},
        }
        record = read_record(periods.CHECKED, data, periods.AS_OF)
        if record.problems:
            continue  # a start after its end: both unknown, nothing to check
        f = periods.COMPILED.normalise(record)
        _, ranged = run_compiled(periods.COMPILED, f)
        _, ref, _ = periods.INTERPRETER.run(record)
        assert ranged == ref
        (item,) = f["therapies"]
        for s_day, e_day in itertools.product(
            concrete(item["start"], days=True), concrete(item["end"], days=True)
        ):
            if e_day < s_day:
                continue  # no period
            concrete_item = {**item, "start": s_day, "end": e_day}
            _, plain = run_compiled(periods.COMPILED, {**f, "therapies": [concrete_item]})
            for cid, s, p in zip(periods.IDS, ranged, plain, strict=True):
                if s is not None:
                    checked += 1
                    assert s == p, (cid, start, end, anchor, s_day, e_day, s, p)
    assert checked > 20000
