"""Arithmetic over intervals with an unbounded side, in both evaluators.

A censored value ("> 10 mg/dL", FHIR Quantity.comparator) is an interval with one side
unbounded; an ongoing end has no latest day. Formulas over them (Cockcroft-Gault) are
intervals too, decided when every value they may take decides alike
(docs/patients.md, "Values known as an interval"). Three layers are checked:

- the operations themselves: runtime.Range (compiled) and intervals.Iv (interpreter)
  give the same interval, openness included, and every sampled pair of values lands
  inside it (a wrong, too narrow interval would be a wrong verdict);
- small protocols through both evaluators, with each status asserted exactly on both
  sides of the boundaries (open and closed ends, a value exactly on a threshold, a
  divisor that may be zero);
- the trial's Cockcroft-Gault criterion from a FHIR Observation with comparator ">".
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from critlang.backends.python import compile_protocol
from critlang.backends.runtime import Range
from critlang.data.records import read_record
from critlang.evaluate import run_compiled
from critlang.interpreter import Interpreter
from critlang.intervals import Iv
from critlang.intervals import arith as iv_arith
from helpers import STATUS_WORDS, TwoEvaluators

AS_OF = dt.date(2026, 11, 27)
INF = math.inf

# ---------------------------------------------------------------------- operations
# ends: small integers (exact in floats), 0, and infinity; each end open or closed
FINITE = [-3, -1, 0, 2, 5]
SIDES = [
    (lo, hi)
    for lo in [None, *FINITE]
    for hi in [*FINITE, None]
    if lo is None or hi is None or lo <= hi
]


def intervals() -> list[tuple[Any, Any, bool, bool]]:
    out = []
    for lo, hi in SIDES:
        if lo is None and hi is None:
            continue
        for lo_open, hi_open in itertools.product([False, True], repeat=2):
            if lo is not None and lo == hi and (lo_open or hi_open):
                continue  # empty
            out.append((lo, hi, lo_open and lo is not None, hi_open and hi is not None))
    return out


ALL = intervals()


def as_range(lo: Any, hi: Any, lo_open: bool, hi_open: bool) -> Range:
    return Range(
        -INF if lo is None else float(lo), INF if hi is None else float(hi), lo_open, hi_open
    )


def as_iv(lo: Any, hi: Any, lo_open: bool, hi_open: bool) -> Iv:
    f = lambda x: None if x is None else Fraction(x)  # noqa: E731
    return Iv(f(lo), f(hi), lo_open, hi_open)


def same(r: Range | None, v: Iv | None) -> bool:
    """The compiled and the reference interval are one interval (ends and openness)."""
    if r is None or v is None:
        return r is None and v is None
    lo = -INF if v.lo is None else float(v.lo)
    hi = INF if v.hi is None else float(v.hi)
    ends = math.isclose(r.lo, lo, rel_tol=1e-12) and math.isclose(r.hi, hi, rel_tol=1e-12)
    flags = (r.lo_open and math.isfinite(r.lo), r.hi_open and math.isfinite(r.hi)) == (
        v.lo_open,
        v.hi_open,
    )
    return ends and flags


def samples(lo: Any, hi: Any, lo_open: bool, hi_open: bool) -> list[Fraction]:
    """Values inside the interval: reached ends, points just inside, far points."""
    eps = Fraction(1, 1000)
    low = Fraction(lo) if lo is not None else Fraction(hi) - 10**6
    high = Fraction(hi) if hi is not None else Fraction(lo) + 10**6
    points = {low + eps, high - eps, (low + high) / 2, low, high}
    if lo is None:
        points.add(low - 10**6)
    if hi is None:
        points.add(high + 10**6)

    def inside(x: Fraction) -> bool:
        above = lo is None or x > lo or (x == lo and not lo_open)
        below = hi is None or x < hi or (x == hi and not hi_open)
        return above and below

    return sorted(x for x in points if inside(x))


def holds(v: Iv, x: Fraction) -> bool:
    above = v.lo is None or x > v.lo or (x == v.lo and not v.lo_open)
    below = v.hi is None or x < v.hi or (x == v.hi and not v.hi_open)
    return above and below


def exact(op: str, x: Fraction, y: Fraction) -> Fraction | None:
    if op == "/":
        return None if y == 0 else x / y
    return {"+": x + y, "-": x - y, "*": x * y}[op]


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_both_evaluators_compute_one_interval_that_holds_every_result(op: str) -> None:
    """Every pair of intervals from the grid (every kind of end): the same interval in
    the compiled runtime and the interpreter; every sampled result inside it; a divisor
    that may be zero (0 reached, or inside) unknown in both."""
    pyop = {"+": lambda a, b: a + b, "-": lambda a, b: a - b,
            "*": lambda a, b: a * b, "/": lambda a, b: a / b}[op]  # fmt: skip
    decided = 0
    for a, b in itertools.product(ALL, ALL):
        r = pyop(as_range(*a), as_range(*b))
        v = iv_arith(op, as_iv(*a), as_iv(*b))
        assert same(r, v), (a, op, b, r, v)
        if op == "/" and holds(as_iv(*b), Fraction(0)):
            assert v is None, (a, b, v)  # the divisor may be zero: unknown
            continue
        if v is None:
            continue
        decided += 1
        for x in samples(*a):
            for y in samples(*b):
                z = exact(op, x, y)
                assert z is not None and holds(v, z), (a, op, b, x, y, z, v)
    assert decided > 200


@pytest.mark.parametrize(
    ("a", "op", "b", "expected"),
    [
        # creatinine "> 10": 1 / (10, inf) is (0, 0.1), open at both ends
        ((1, 1, False, False), "/", (10, None, True, False), (0, Fraction(1, 10), True, True)),
        # ">= 10": 0.1 reached
        ((1, 1, False, False), "/", (10, None, False, False), (0, Fraction(1, 10), True, False)),
        # (0, 1] as a divisor excludes 0: [1, inf)
        ((1, 1, False, False), "/", (0, 1, True, False), (1, None, False, False)),
        # [0, 1] may be 0: unknown
        ((1, 1, False, False), "/", (0, 1, False, False), None),
        # "< 1" (unbounded below) holds 0: unknown
        ((1, 1, False, False), "/", (None, 1, False, True), None),
        # (-inf, -2]: [-1/2, 0)
        ((1, 1, False, False), "/", (None, -2, False, False), (Fraction(-1, 2), 0, False, True)),
        # a reached 0 keeps 0 reached whatever the other factor: [0, 1] x (3, inf) = [0, inf)
        ((0, 1, False, False), "*", (3, None, True, False), (0, None, False, False)),
        # an open 0 only approaches it: (0, 1] x [3, inf) = (0, inf)
        ((0, 1, True, False), "*", (3, None, False, False), (0, None, True, False)),
        # opposite unbounded sides: no bound at all, unknown
        ((None, 1, False, False), "+", (2, None, False, False), None),
        ((2, None, True, False), "*", (None, 3, False, True), None),
        # 140 - "> 2": (-inf, 138)
        ((140, 140, False, False), "-", (2, None, True, False), (None, 138, False, True)),
        # exact zero times an unbounded interval is exactly zero
        ((2, None, False, False), "*", (0, 0, False, False), (0, 0, False, False)),
    ],
)
def test_interval_operations_exactly(a: tuple, op: str, b: tuple, expected: tuple | None) -> None:
    pyop = {"+": lambda x, y: x + y, "-": lambda x, y: x - y,
            "*": lambda x, y: x * y, "/": lambda x, y: x / y}[op]  # fmt: skip
    v = iv_arith(op, as_iv(*a), as_iv(*b))
    r = pyop(as_range(*a), as_range(*b))
    want = None if expected is None else as_iv(*expected)
    assert v == want
    assert same(r, want)


def test_plain_number_divided_by_a_range_and_the_reverse() -> None:
    """float / Range goes through Range.__rtruediv__, Range / float through __truediv__."""
    assert same(5600 / as_range(720, None, True, False), as_iv(0, Fraction(70, 9), True, True))
    assert same(as_range(10, None, True, False) / 2, as_iv(5, None, True, False))
    assert same(as_range(10, None, True, False) / -2, as_iv(None, -5, False, True))
    assert as_range(10, None, True, False) / 0 is None


# ---------------------------------------------------------------------- both evaluators
PROTOCOL = """\
fact a: number
fact b: number
fact weight: quantity kg
fact serum_creatinine: quantity mg/dL
  molar mass 113.12 g/mol source "PubChem CID 588, creatinine C4H7N3O"
fact sex: enum {female, male}
fact birth_date: date
fact therapies: list of {kind: enum {chemo, other}, start: date, end: date}

define age = elapsed_years(birth_date, enrollment)
define cockcroft_gault(age: quantity years, weight: quantity kg,
    creatinine: quantity mg/dL, sex: enum {female, male}) =
  ((140 - (age in years)) * (weight in kg) / (72 * (creatinine in mg/dL))
    * (0.85 if sex = female else 1) as mL/min)
define cg = cockcroft_gault(age, weight, serum_creatinine, sex)

inclusion criteria
S1 "a + b < 10"
  rule a + b < 10
S2 "a + b <= 10"
  rule a + b <= 10
D1 "a - b > 0"
  rule a - b > 0
D2 "a - b >= 0"
  rule a - b >= 0
P1 "a * b >= 6"
  rule a * b >= 6
P2 "a * b > 6"
  rule a * b > 6
V1 "10 / b < 3"
  rule 10 / b < 3
V2 "10 / b <= 2"
  rule 10 / b <= 2
V3 "10 / b >= 0"
  rule 10 / b >= 0
V4 "10 / b > 0"
  rule 10 / b > 0
C1 "Cockcroft-Gault < 50 mL/min"
  rule cg < 50 mL/min
C2 "Cockcroft-Gault <= 50 mL/min"
  rule cg <= 50 mL/min
Y1 "a therapy of at least 1 year"
  rule any therapies with (elapsed_years(start, end) >= 1 years)
"""

BOTH = TwoEvaluators(PROTOCOL, "arith.crit")
CHECKED, COMPILED, INTERPRETER = BOTH.checked, BOTH.compiled, BOTH.interpreter
IDS = BOTH.ids
WORDS = STATUS_WORDS


def status(criterion: str, facts: dict[str, Any]) -> str:
    """The criterion's status, asserted equal in both evaluators."""
    record = read_record(CHECKED, {"facts": facts}, AS_OF)
    assert not record.problems, record.problems
    _verdict, compiled = BOTH.statuses(record)
    return WORDS[compiled[IDS.index(criterion)]]


def num(text: str) -> Any:
    """A number, censored when it starts with a comparator ("> 5", "<= 2")."""
    for c in ("<=", ">=", "<", ">"):
        if text.startswith(c):
            return {"value": text[len(c) :].strip(), "comparator": c}
    return text


@pytest.mark.parametrize(
    ("criterion", "a", "b", "expected"),
    [
        ("S1", "< 4", "< 5", "met"),  # (-inf, 9)
        ("S1", "< 4", "<= 6", "unknown"),  # (-inf, 10): a formula's bound is rounded, so reached
        ("S2", "< 4", "<= 6", "met"),
        ("S2", "< 4", "> 6", "unknown"),  # both sides unbounded: nothing known
        ("S1", "> 4", "> 6", "not met"),  # (10, inf)
        ("S1", "> 4", "5", "unknown"),  # (9, inf)
        ("D1", "> 6", "< 5", "met"),  # (1, inf)
        ("D1", "> 5", "< 5", "met"),  # (0, inf): nothing but 0 rounds to 0
        ("D1", "> 5", "<= 5", "met"),  # (0, inf): a > 5 strictly
        ("D1", ">= 5", "<= 5", "unknown"),  # [0, inf)
        ("D2", "> 5", "< 5", "met"),
        ("D1", "< 5", "> 5", "not met"),  # (-inf, 0)
        ("D1", "< 5", "> 4", "unknown"),  # (-inf, 1)
        ("P1", "> 2", "> 3", "met"),  # (6, inf)
        ("P2", "> 2", "> 3", "unknown"),  # rounded: 6 reachable
        ("P1", "> 2", ">= 3", "met"),
        ("P1", "> 2", "< 3", "unknown"),  # (2, inf) x (-inf, 3): unbounded both sides
        ("P1", "< -2", "< -4", "met"),  # (8, inf)
        ("P1", "< -2", "> -1", "unknown"),  # (-inf, inf)
        ("V1", "1", "> 5", "met"),  # 10 / (5, inf) = (0, 2)
        ("V2", "1", "> 5", "met"),
        ("V2", "1", ">= 5", "met"),  # [0, 2] after rounding; 2 reached at b = 5
        ("V1", "1", "> 2", "unknown"),  # (0, 5)
        ("V1", "1", "< 5", "unknown"),  # b may be 0: unknown, never divided
        ("V1", "1", "< -2", "met"),  # (-5, 0)
        ("V3", "1", "> 0", "met"),  # (0, inf): 0 excluded from the divisor
        ("V3", "1", ">= 0", "unknown"),  # 0 in the divisor: unknown
        ("V3", "1", "< 0", "not met"),  # (-inf, 0): an open 0 stays open when rounded
        ("V4", "1", "> 0", "met"),  # (0, inf)
        ("V4", "1", ">= 0", "unknown"),
        ("V3", "1", "<= 0", "unknown"),
    ],
)
def test_censored_arithmetic(criterion: str, a: str, b: str, expected: str) -> None:
    assert status(criterion, {"a": num(a), "b": num(b)}) == expected


def creatinine(value: Any, comparator: str | None = None, unit: str = "mg/dL") -> dict:
    entry = {"value": value, "unit": unit}
    if comparator:
        entry["comparator"] = comparator
    return entry


# born 1958-06-01: 68 on 2026-11-27; (140 - 68) x 72 kg = 5184; CG = 5184 / (72 x Cr) = 72 / Cr
MAN = {"birth_date": "1958-06-01", "weight": {"value": 72, "unit": "kg"}, "sex": "male"}


@pytest.mark.parametrize(
    ("criterion", "cr", "sex", "expected"),
    [
        ("C1", creatinine(10, ">"), "male", "met"),  # (0, 7.2)
        ("C1", creatinine(10, ">"), None, "met"),  # either sex factor: both below 50
        ("C1", creatinine(10, ">"), "female", "met"),
        ("C1", creatinine(1.5, ">"), "male", "met"),  # (0, 48)
        ("C1", creatinine(1.44, ">"), "male", "unknown"),  # (0, 50): rounded, 50 reachable
        ("C2", creatinine(1.44, ">"), "male", "met"),
        ("C2", creatinine(1.44, ">="), "male", "met"),  # [.., 50]: on the threshold
        ("C1", creatinine(1.44, ">="), "male", "unknown"),
        ("C2", creatinine(1.4, ">"), "male", "unknown"),  # (0, 51.43)
        ("C1", creatinine(1.44, ">"), "female", "met"),  # (0, 42.5)
        ("C1", creatinine(1.44, ">"), None, "unknown"),  # male: 50 reachable
        ("C1", creatinine(1.0, "<"), "male", "unknown"),  # the divisor may be 0
        ("C1", creatinine(2.0, "<"), "male", "unknown"),
        ("C1", creatinine(884, ">", "umol/L"), "male", "met"),  # > 10.0 mg/dL
        ("C1", creatinine(1.5), "male", "met"),  # plain: 48
        ("C1", creatinine(1.4), "male", "not met"),  # plain: 51.43
    ],
)
def test_cockcroft_gault_with_a_censored_creatinine(
    criterion: str, cr: dict, sex: str | None, expected: str
) -> None:
    facts = {**MAN, "serum_creatinine": cr}
    if sex is None:
        del facts["sex"]
    else:
        facts["sex"] = sex
    assert status(criterion, facts) == expected


def test_cockcroft_gault_with_a_censored_weight_and_a_partial_birth_date() -> None:
    """Weight "< 100 kg", born in 1958 (67 or 68), creatinine "> 3": (-inf, 34.7]."""
    facts = {
        "birth_date": "1958",
        "weight": {"value": 100, "unit": "kg", "comparator": "<"},
        "sex": "male",
        "serum_creatinine": creatinine(3, ">"),
    }
    assert status("C1", facts) == "met"
    facts["serum_creatinine"] = creatinine(1, ">")  # up to 104: unknown
    assert status("C1", facts) == "unknown"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2025-06-01", "ongoing", "met"),  # at least 1 year by 2026-11-27, more later
        ("2026-06-01", "ongoing", "unknown"),  # 0 years so far: may still reach 1
        ("2026-06-01", "2027-09-01", "unknown"),  # a planned end: ongoing as of now
        ("2025-06-01", "2026-01-01", "not met"),
        ("2025-01-01", "2026-01-01", "met"),
    ],
)
def test_elapsed_years_to_an_ongoing_end(start: str, end: str, expected: str) -> None:
    item = {"kind": "chemo", "start": start, "end": end}
    assert status("Y1", {"therapies": [item]}) == expected


# ---------------------------------------------------------------------- FHIR, end to end
def test_fhir_creatinine_with_comparator_decides_cockcroft_gault(tmp_path: Path) -> None:
    """The trial's E7 (creatinine clearance < 50 mL/min, Cockcroft-Gault when no measured
    clearance): an Observation 2160-0 with valueQuantity.comparator ">" 10 mg/dL decides
    it (met) in both evaluators; "> 1 mg/dL" leaves it unknown, as does "< 10 mg/dL"."""
    from critlang.data.fhir import Extractor, read_fhir
    from critlang.frontend import analyse_file
    from helpers import TRIAL

    checked = analyse_file(TRIAL / "current.crit").result
    assert checked is not None
    compiled = compile_protocol(checked)
    interpreter = Interpreter(checked)
    e7 = [c.id for _, c in checked.protocol.criteria].index("E7")

    def observation(code: str, value: Any, unit: str, comparator: str | None) -> dict:
        quantity = {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        }
        if comparator:
            quantity["comparator"] = comparator
        return {
            "resourceType": "Observation",
            "id": f"obs-{code}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": "urn:uuid:p1"},
            "effectiveDateTime": "2026-11-20T10:00:00+00:00",
            "valueQuantity": quantity,
        }

    def e7_status(value: Any, comparator: str | None) -> Any:
        patient = {
            "resourceType": "Patient",
            "id": "p1",
            "birthDate": "1958-06-01",
            "gender": "male",
        }
        resources = [
            patient,
            observation("29463-7", 72, "kg", None),
            observation("2160-0", value, "mg/dL", comparator),
        ]
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
        }
        path = tmp_path / "b.json"
        path.write_text(json.dumps(bundle))
        (found,) = list(read_fhir([path], Extractor(checked), AS_OF))
        record = read_record(checked, found.record, AS_OF, str(path))
        assert record.facts["serum_creatinine"].comparator == comparator
        _, statuses = run_compiled(compiled, compiled.normalise(record))
        _, ref, _ = interpreter.run(record)
        assert statuses == ref
        return statuses[e7]

    assert e7_status(10, ">") is True  # CG in (0, 7.2) mL/min
    assert e7_status(1, ">") is None  # (0, 72): may be 50 or more
    assert e7_status(10, "<") is None  # the divisor may be 0
    assert e7_status(1, None) is False  # plain: 72 mL/min


def test_an_interval_formula_is_explained_in_words(tmp_path: Path, capsys: Any) -> None:
    """`critlang eval --details`: the Cockcroft-Gault interval is shown as the clause that
    decided E7, with its inputs."""
    from critlang.cli import main
    from helpers import TRIAL

    patient = {
        "id": "cg",
        "facts": {
            **MAN,
            "weight": {"value": 72, "unit": "kg", "date": "2026-11-20"},
            "serum_creatinine": {**creatinine(10, ">"), "date": "2026-11-20"},
        },
    }
    path = tmp_path / "p.json"
    path.write_text(json.dumps(patient))
    main(
        ["eval", "--details", "--as-of", AS_OF.isoformat(), str(TRIAL / "current.crit"), str(path)]
    )
    out = capsys.readouterr().out
    assert "✓ creatinine clearance 0-7.2 mL/min < 50 mL/min" in out
    assert "creatinine above 10 mg/dL; sex male)" in out
