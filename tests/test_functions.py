"""Built-in functions (min, max, pow, sqrt, cbrt, ln, exp, log10): both evaluators held
to the same answers, values computed by hand from the published formulas, domain errors
unknown with a reason, intervals and alternatives decided as arithmetic is.

Expected values are the formulas evaluated in 50-digit decimals (Python's decimal
module), rounded to the 12 significant digits every formula ends with (runtime.sig):
an equality on 12 digits checks the whole computation, not a neighbourhood.
"""

from __future__ import annotations

import datetime as dt
import math
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from critlang import interpreter_math as im
from critlang.backends import runtime_math as rm
from critlang.backends.runtime import Range
from critlang.data.records import read_record
from critlang.intervals import Iv
from helpers import TwoEvaluators

AS_OF = dt.date(2024, 6, 1)

HEAD = """\
protocol "FUNCTIONS"
  title "built-in functions"
  version "1"
  date 2024-01-01
fact scr: quantity mg/dL
fact qt: quantity ms
fact rr: quantity s
fact weight: quantity kg
fact height: quantity cm
fact sex: enum {female, male}
fact birth_date: date
fact x: number
fact y: number
fact first_dose: date
fact second_dose: date
define age = elapsed_years(birth_date, enrollment)
"""

# CKD-EPI 2021 (Inker LA et al. N Engl J Med 2021;385:1737-49), written as
# protocols/lib/ckd-epi-2021.crit writes it
CKD_EPI = """\
define ckd_epi(creatinine: quantity mg/dL, age: quantity years, sex: enum {female, male}) =
  (142 * pow(min((creatinine in mg/dL) / (0.7 if sex = female else 0.9), 1),
             (-0.241 if sex = female else -0.302))
    * pow(max((creatinine in mg/dL) / (0.7 if sex = female else 0.9), 1), -1.2)
    * pow(0.9938, (age in years)) * (1.012 if sex = female else 1) as mL/min/1.73m2)
define egfr = ckd_epi(scr, age, sex)
"""


def _q(value: float, unit: str, comparator: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"value": value, "unit": unit}
    if comparator:
        out["comparator"] = comparator
    return out


def _born(age: int) -> str:
    return AS_OF.replace(year=AS_OF.year - age).isoformat()


def _run(two: TwoEvaluators, facts: dict[str, Any]) -> tuple[Any, ...]:
    record = read_record(two.checked, {"id": "p", "facts": facts}, AS_OF)
    return two.statuses(record)[1]


# (creatinine mg/dL, age, sex, eGFR rounded to 12 digits; the 50-digit value)
CKD_CASES = [
    (0.9, 60, "female", "73.1871841481"),  # 73.18718414805916...; NKF calculator: 73
    (1.2, 50, "male", "73.6735302971"),  # 73.67353029709868...
    (0.6, 40, "female", "116.295451622"),  # 116.2954516219495... (below kappa: alpha)
    (0.7, 60, "female", "98.9483146567"),  # 98.94831465668556... (Scr = kappa)
    (2.5, 70, "male", "26.9637824175"),  # 26.96378241750917...
]


@pytest.mark.parametrize(("scr", "age", "sex", "egfr"), CKD_CASES)
def test_ckd_epi_2021_hand_computed(scr: float, age: int, sex: str, egfr: str) -> None:
    text = HEAD + CKD_EPI + f'inclusion criteria\nI1 "x"\n  rule egfr = {egfr} mL/min/1.73m2\n'
    text += f'I2 "y"\n  rule egfr >= {round(float(egfr))} mL/min/1.73m2\n'
    two = TwoEvaluators(text, "ckd.crit")
    facts = {"scr": _q(scr, "mg/dL"), "birth_date": _born(age), "sex": sex}
    assert _run(two, facts) == (True, round(float(egfr)) <= float(egfr))
    # the same creatinine in umol/L (converted through the molar mass) would need one:
    # the value is the fact's, the formula reads it in mg/dL


def test_qtcf_and_body_surface_areas_hand_computed() -> None:
    text = HEAD + (
        "define qtcf = ((qt in ms) / cbrt((rr in s)) as ms)\n"
        # Mosteller RD. N Engl J Med 1987;317:1098
        "define mosteller = (sqrt((height in cm) * (weight in kg) / 3600) as m2)\n"
        # Du Bois D, Du Bois EF. Arch Intern Med 1916;17:863-71
        "define dubois =\n"
        "  (0.007184 * pow((weight in kg), 0.425) * pow((height in cm), 0.725) as m2)\n"
        "inclusion criteria\n"
        'I1 "QTcF"\n  rule qtcf = 430.886938006 ms\n'  # 430.886938006376...
        'I2 "Mosteller"\n  rule mosteller = 1.81811868577 m2\n'  # 1.818118685772619...
        'I3 "DuBois"\n  rule dubois = 1.80970780175 m2\n'  # 1.809707801753247...
        'I4 "QTcF > 470 ms"\n  rule qtcf > 470 ms\n'
    )
    two = TwoEvaluators(text, "qtc.crit")
    facts = {
        "qt": _q(400, "ms"),
        "rr": _q(800, "ms"),  # converted to s by the reader: 0.8 s
        "weight": _q(70, "kg"),
        "height": _q(170, "cm"),
    }
    assert _run(two, facts) == (True, True, True, False)


def _simple(rules: list[str], extra: str = "") -> TwoEvaluators:
    text = HEAD + extra + "inclusion criteria\n"
    text += "".join(f'I{i} "r{i}"\n  rule {r}\n' for i, r in enumerate(rules, 1))
    return TwoEvaluators(text, "f.crit")


def test_domain_errors_are_unknown_never_a_crash() -> None:
    two = _simple(
        [
            "sqrt(x) > 0",
            "ln(x) > 0",
            "log10(x) < 5",
            "pow(x, 0.5) > 0",
            "pow(x, 3) < 0",  # a negative base to an integer power is defined
            "pow(0, x) > 0",  # 0 to a negative power
            "exp(y) > 1",  # e^1000: out of range
            "exp(0 - y) >= 0",  # e^-1000: below 1e-300
            "cbrt(x) < 0",
            "pow(x, y) > 0",  # (-2)^1000 is 1e301: out of range
            "pow(y, y) > 0",
        ]
    )
    statuses = _run(two, {"x": -2, "y": 1000})
    assert statuses == (None, None, None, None, True, None, None, None, True, None, None)
    # 0 ** 0 is 1 (as SQL POWER)
    assert _run(two, {"x": 0, "y": 2})[:6] == (False, None, None, False, False, True)


def test_domain_error_explained_with_its_inputs() -> None:
    two = _simple(["sqrt(x) > 1"])
    record = read_record(two.checked, {"id": "p", "facts": {"x": -4}}, AS_OF)
    text = _explained(two, record)
    assert "sqrt(x -4) has no value (sqrt(-4): outside its domain" in text


def _explained(two: TwoEvaluators, record: Any) -> str:
    from critlang.explain import Explainer

    f = two.compiled.normalise(record)
    ex = Explainer(two.compiled)
    (crit,) = [c for _, c in two.checked.protocol.criteria]
    clause = ex.explain(crit, None, f, record)
    assert clause is not None
    return clause.text


def test_intervals_map_through_the_functions() -> None:
    two = _simple(
        [
            "min((scr in mg/dL), 1) < 0.5",  # scr < 0.5: every min is below 0.5
            "max((scr in mg/dL), 1) = 1",  # ... and every max is 1
            "sqrt((scr in mg/dL)) < 0.71",  # sqrt([0, 0.5)) = [0, 0.7071...)
            "pow((scr in mg/dL), -1) > 2",  # 0 may be the value: 1/0 undefined
            "ln((scr in mg/dL)) < 0",  # ln(0) undefined: unknown
            "exp((scr in mg/dL)) < 1.65",  # [1, 1.6487...)
        ]
    )
    assert _run(two, {"scr": _q(0.5, "mg/dL", "<")}) == (True, True, True, None, None, True)
    two = _simple(
        [
            # scr > 4: sqrt is above 2, but a formula's end is rounded to 12 digits
            # (runtime.sig) and a rounded end may be reached: [2, inf), unknown
            "sqrt((scr in mg/dL)) > 2",
            "pow((scr in mg/dL), -1) < 0.25",  # decreasing: (0, 0.25], unknown likewise
            "log10((scr in mg/dL)) > 0.6",  # log10 4 = 0.602
            "min((scr in mg/dL), 10) > 4",  # (4, 10]
            "min((scr in mg/dL), 10) >= 10",  # unknown: scr may be 5
            "pow(2, (scr in mg/dL)) > 16",  # increasing exponent: > 16
        ]
    )
    assert _run(two, {"scr": _q(4, "mg/dL", ">")}) == (None, None, True, True, None, None)


def test_min_max_units_dates_and_unknown_operands() -> None:
    two = _simple(
        [
            "min(weight, 150 [lb_av]) = 68.0388555 kg",  # 150 lb = 68.0388555 kg exactly
            "max(weight, 150 [lb_av]) = 70 kg",
            "max(first_dose, second_dose) = 2024-05-20",
            "min(first_dose, second_dose, 2024-01-01) = 2024-01-01",
            "min(weight, 1 kg) < 2 kg",  # unknown when any operand is, even here
        ]
    )
    facts = {"weight": _q(70, "kg"), "first_dose": "2024-05-01", "second_dose": "2024-05-20"}
    assert _run(two, facts) == (True, True, True, True, True)
    del facts["weight"]
    assert _run(two, facts) == (None, None, True, True, None)


def test_alternatives_follow_every_possibility() -> None:
    two = _simple(["egfr > 60 mL/min/1.73m2", "egfr > 100 mL/min/1.73m2"], extra=CKD_EPI)
    # sex unknown: the female and male values (73.19, 61.38...) are both above 60
    facts = {"scr": _q(0.9, "mg/dL"), "birth_date": _born(60)}
    assert _run(two, facts) == (True, False)
    facts = {"scr": _q(1.0, "mg/dL"), "birth_date": _born(60)}
    assert _run(two, facts) == (True, False)  # female 64.5, male 86.2
    facts = {"scr": _q(1.3, "mg/dL"), "birth_date": _born(60)}
    assert _run(two, facts) == (None, False)  # female 47.3, male 62.8: they disagree


# ---------------------------------------------------------------------- runtime vs oracle

_ENDS = [-math.inf, -3.0, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 9.0, math.inf]


@st.composite
def _interval(draw: Any) -> tuple[Range, Iv]:
    a, b = sorted((draw(st.sampled_from(_ENDS)), draw(st.sampled_from(_ENDS))))
    if a == b and not math.isfinite(a):
        b = 1.0 if a < 0 else a
        a = -1.0 if a > 0 else a
        a, b = sorted((a, b))
    lo_open = draw(st.booleans()) and math.isfinite(a) and a != b
    hi_open = draw(st.booleans()) and math.isfinite(b) and a != b
    r = Range(a, b, lo_open, hi_open)
    end = lambda v: None if not math.isfinite(v) else Fraction(v)  # noqa: E731
    return r, Iv(end(a), end(b), lo_open, hi_open)


def _same(r: Any, i: Any) -> bool:
    """A runtime result (float / Range / None) equals the interpreter's (Fraction / Iv)."""
    if r is None or i is None:
        return r is None and i is None
    if isinstance(r, Range) or isinstance(i, Iv):
        if not (isinstance(r, Range) and isinstance(i, Iv)):
            return False
        lo = -math.inf if i.lo is None else float(i.lo)
        hi = math.inf if i.hi is None else float(i.hi)
        close = lambda p, q: p == q or math.isclose(p, q, rel_tol=1e-12)  # noqa: E731
        return (
            close(r.lo, lo) and close(r.hi, hi) and (r.lo_open, r.hi_open) == (i.lo_open, i.hi_open)
        )
    return math.isclose(float(r), float(i), rel_tol=1e-12, abs_tol=0)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["sqrt", "cbrt", "ln", "log10", "exp", "min", "max", "pow", "powexp"]),
    _interval(),
    _interval(),
    st.sampled_from([-2.0, -1.2, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0]),
)
def test_interval_images_agree(name: str, a: Any, b: Any, k: float) -> None:
    (ra, ia), (rb, ib) = a, b
    if name in ("min", "max"):
        r = getattr(rm, f"m_{name}")(False, ra, rb)
        i = im.call(name, (ia, ib))
    elif name == "pow":
        r = rm.m_pow(False, ra, k)
        i = im.call("pow", (ia, Fraction(k)))
    elif name == "powexp":  # the exponent an interval: bounded base above 0 only
        r = rm.m_pow(False, ra, rb)
        i = im.call("pow", (ia, ib))
    else:
        r = getattr(rm, f"m_{name}")(False, ra)
        i = im.call(name, (ia,))
    assert _same(r, i), (name, ra, rb, k, r, i)
    # soundness: every sampled point of the operands lands inside the image
    if r is None or not isinstance(r, Range):
        return
    for x in _points(ra):
        for z in _points(rb) if name in ("min", "max", "powexp") else [k]:
            if name in ("min", "max"):
                v = getattr(rm, f"m_{name}")(False, x, z)
            elif name in ("pow", "powexp"):
                v = rm.m_pow(False, x, z)
            else:
                v = getattr(rm, f"m_{name}")(False, x)
            if v is None:
                continue
            assert r.lo - 1e-9 <= v <= r.hi + 1e-9, (name, ra, rb, x, z, v, r)


def _points(r: Range) -> list[float]:
    lo = r.lo if math.isfinite(r.lo) else min(r.hi, 0.0) - 5
    hi = r.hi if math.isfinite(r.hi) else max(r.lo, 0.0) + 5
    pts = [lo + (hi - lo) * t for t in (0.0, 0.1, 0.5, 0.9, 1.0)]
    return [
        p
        for p in pts
        if (r.lo < p or (p == r.lo and not r.lo_open))
        and (p < r.hi or (p == r.hi and not r.hi_open))
    ]


# ---------------------------------------------------------------------- generated patients

# rules whose thresholds sit exactly on values the generated x and y reach (x = 9 gives
# sqrt 3; x = 100 gives log10 2; 8 gives cbrt 2; 1.44 gives sqrt 1.2)
BOUNDARY_RULES = [
    "sqrt(x) >= 3",
    "sqrt(x) = 1.2",
    "cbrt(x) <= 2",
    "log10(x) = 2",
    "ln(x) > 1",
    "exp(x) >= 2.718281828459",
    "pow(x, 2) <= 81",
    "pow(x, y) < 10",
    "pow(x, 0.5) * 2 = 6",
    "min(x, y, 3) = 3",
    "max(x, y) between 8.99999 and 9.00001",
    "egfr >= 60 mL/min/1.73m2",
    "egfr < 90 mL/min/1.73m2",
]
BOUNDARY_X = [
    -1,
    0,
    0.5,
    1,
    1.44,
    2.718281828459,
    8,
    8.99999,
    9,
    9.00001,
    81,
    99.9999,
    100,
    700,
    1e6,
]


def boundary_protocol() -> str:
    return (
        HEAD
        + CKD_EPI
        + "inclusion criteria\n"
        + "".join(f'I{i} "r{i}"\n  rule {r}\n' for i, r in enumerate(BOUNDARY_RULES, 1))
    )


@st.composite
def boundary_facts(draw: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for name in ("x", "y"):
        choice = draw(st.integers(0, 9))
        if choice == 0:
            continue  # unknown
        if choice == 1:
            facts[name] = {"value": draw(st.sampled_from([1, 9, 100])), "comparator": ">"}
        else:
            facts[name] = draw(st.sampled_from(BOUNDARY_X))
    if draw(st.integers(0, 5)):
        scr = draw(st.sampled_from([0.3, 0.5, 0.7, 0.9, 1.0, 1.02, 1.3, 2.0, 4.5]))
        comparator = draw(st.sampled_from([None, None, None, "<", ">"]))
        facts["scr"] = _q(scr, "mg/dL", comparator)
    if draw(st.integers(0, 5)):
        facts["birth_date"] = _born(draw(st.integers(18, 95)))
    sex = draw(st.sampled_from(["female", "male", None]))
    if sex:
        facts["sex"] = sex
    return facts


def test_generated_patients_both_evaluators_agree() -> None:
    two = TwoEvaluators(boundary_protocol(), "boundary.crit")
    seen: set[Any] = set()

    @settings(max_examples=400, deadline=None)
    @given(boundary_facts())
    def agree(facts: dict[str, Any]) -> None:
        seen.update(_run(two, facts))  # asserts the two evaluators agree

    agree()
    assert seen == {True, False, None}


# ---------------------------------------------------------------------- proofs (z3)


def _diff(old_rule: str, new_rule: str) -> Any:
    from critlang.diff import diff
    from critlang.frontend import analyse_text

    def checked(rule: str) -> Any:
        text = HEAD + f'inclusion criteria\nI1 "r"\n  rule {rule}\n'
        result = analyse_text(text, "p.crit").result
        assert result is not None and result.ok
        return result

    return diff(checked(old_rule), checked(new_rule), AS_OF)


def test_min_is_exact_in_proofs() -> None:
    # the same value written as a conditional: proven, unknown operands included
    r = _diff("min(x, y) < 3", "(x if x < y else y) < 3")
    assert r.overall.classification == "unchanged"
    assert r.overall.proof.startswith("proven by z3")


def test_transcendental_functions_are_uninterpreted_but_sound() -> None:
    # the same term twice: proven without knowing the square
    r = _diff("pow(x, 2) > 4", "pow(x, 2) > 4 and pow(x, 2) > 3")
    assert r.overall.classification == "unchanged"
    assert any("pow (a function of its arguments)" in note for note in r.solver_notes)
    # sqrt(x) > 3 is not x > 9: x = -1 is unknown (no square root) against not met;
    # the witness is a real patient, re-checked by the evaluators
    r = _diff("sqrt(x) > 3", "x > 9")
    assert r.overall.undetermined == "changes"
