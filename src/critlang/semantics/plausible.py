"""Physiologically plausible ranges, so that witness patients are patients.

A witness is solved within the plausible range of every quantity it carries and, where
the solver is free, near the thresholds the protocol compares the fact with (or at a
typical value). The range of a fact comes from, in this order:
1. the fact's own `plausible LOW..HIGH` option;
2. the table below, matched on the fact's name and converted to its unit exactly
   (through its molar mass where the table's unit is the other concentration kind);
3. a percentage: 0..100 %;
4. otherwise 0 up to ten times the largest threshold the protocol compares it with.

The table's limits are not reference (normal) ranges: they bound values that are seen in
living patients, wide enough to include critical values. Sources: the adult reference
intervals of Kratz A et al., "Laboratory reference values", N Engl J Med 2004;351:1548-63
(typical values and the reference ranges used for `x ULN` and `within normal range`),
widened to the critical-value limits of the Mayo Clinic Laboratories "Critical Values /
Critical Results List" (2023) and, for anthropometry, the CDC NHANES 2015-2018 adult
body measurement percentiles (Fryar CD et al., Vital Health Stat 3(46), 2021). Where a
protocol's population lies outside these bounds (paediatrics, intensive care), the fact
declares its own with `plausible`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ..checker import CheckResult
from ..typesys import NumberT, QuantT, Type
from ..units import conversion_factor, parse_unit


@dataclass(frozen=True)
class Plausible:
    unit: str  # "" for a plain number
    low: Fraction
    high: Fraction
    typical: Fraction
    normal: tuple[Fraction, Fraction] | None = None  # reference range (Kratz et al.)


def _p(
    unit: str, low: str, high: str, typical: str, normal: tuple[str, str] | None = None
) -> Plausible:
    return Plausible(
        unit,
        Fraction(low),
        Fraction(high),
        Fraction(typical),
        (Fraction(normal[0]), Fraction(normal[1])) if normal else None,
    )


# name words -> range; the first entry whose words all occur in the fact's name wins
TABLE: list[tuple[tuple[str, ...], Plausible]] = [
    (("hba1c",), _p("%", "3", "20", "5.5", ("4", "5.6"))),
    (("a1c",), _p("%", "3", "20", "5.5", ("4", "5.6"))),
    (("ldl",), _p("mg/dL", "10", "600", "110", ("0", "130"))),
    (("hdl",), _p("mg/dL", "5", "150", "50", ("40", "90"))),
    (("cholesterol",), _p("mg/dL", "50", "1000", "190", ("0", "200"))),
    (("triglyceride",), _p("mg/dL", "20", "5000", "130", ("0", "150"))),
    (("hemoglobin",), _p("g/dL", "3", "25", "13.5", ("12", "17.5"))),
    (("haemoglobin",), _p("g/dL", "3", "25", "13.5", ("12", "17.5"))),
    (("hb",), _p("g/dL", "3", "25", "13.5", ("12", "17.5"))),
    (("platelet",), _p("x10^9/L", "5", "1500", "250", ("150", "350"))),
    (("neutrophil",), _p("x10^9/L", "0.05", "60", "4", ("1.8", "7.7"))),
    (("anc",), _p("x10^9/L", "0.05", "60", "4", ("1.8", "7.7"))),
    (("lymphocyte",), _p("x10^9/L", "0.05", "60", "2", ("1", "4.8"))),
    (("wbc",), _p("x10^9/L", "0.1", "150", "7", ("4.5", "11"))),
    (("leukocyte",), _p("x10^9/L", "0.1", "150", "7", ("4.5", "11"))),
    (("clearance",), _p("mL/min", "2", "200", "90", ("75", "125"))),
    (("gfr",), _p("mL/min", "2", "200", "90", ("75", "125"))),
    (("creatinine",), _p("mg/dL", "0.2", "15", "0.9", ("0.6", "1.3"))),
    (("bilirubin",), _p("mg/dL", "0.1", "30", "0.7", ("0.3", "1.2"))),
    (("albumin",), _p("g/dL", "1", "6", "4.2", ("3.5", "5.5"))),
    (("glucose",), _p("mg/dL", "20", "1000", "95", ("70", "110"))),
    (("inr",), _p("", "0.8", "10", "1", ("0.9", "1.1"))),
    (("prothrombin",), _p("s", "8", "100", "12.5", ("11.1", "13.1"))),
    (("ast",), _p("U/L", "5", "5000", "25", ("0", "35"))),
    (("alt",), _p("U/L", "5", "5000", "25", ("0", "35"))),
    (("potassium",), _p("mmol/L", "1.5", "9", "4.2", ("3.5", "5"))),
    (("sodium",), _p("mmol/L", "100", "180", "140", ("136", "145"))),
    (("calcium",), _p("mg/dL", "4", "16", "9.5", ("9", "10.5"))),
    (("weight",), _p("kg", "30", "250", "75")),
    (("height",), _p("cm", "120", "220", "170")),
    (("bmi",), _p("kg/m2", "12", "70", "26")),
    (("systolic",), _p("mm[Hg]", "60", "260", "125")),
    (("diastolic",), _p("mm[Hg]", "30", "160", "78")),
    (("heart", "rate"), _p("/min", "25", "250", "72")),
    (("pulse",), _p("/min", "25", "250", "72")),
]


def _words(name: str) -> set[str]:
    return set(name.lower().replace("-", "_").split("_"))


def _in_unit(p: Plausible, t: Type, molar: Fraction | None) -> Plausible | None:
    """The entry in the fact's unit, or None when the kinds do not match."""
    if isinstance(t, NumberT):
        return p if p.unit == "" else None
    if not isinstance(t, QuantT) or p.unit == "":
        return None
    try:
        k = conversion_factor(parse_unit(p.unit), t.unit, molar)
    except Exception:  # a unit the table spells differently than this build's units
        return None
    if k is None:
        return None
    normal = (p.normal[0] * k, p.normal[1] * k) if p.normal else None
    return Plausible(t.unit.text, p.low * k, p.high * k, p.typical * k, normal)


def lookup(
    checked: CheckResult, name: str, t: Type, thresholds: set[Fraction] | None = None
) -> Plausible | None:
    """The plausible range of fact `name` of kind `t` in its declared unit."""
    info = checked.facts.get(name)
    opt = info.node.option("plausible") if info is not None else None
    if opt is not None and opt.quantity is not None and opt.high is not None:
        lo, hi = opt.quantity, opt.high
        if isinstance(t, QuantT) and lo.unit:
            klo = conversion_factor(parse_unit(lo.unit), t.unit, info.molar_mass if info else None)
            khi = conversion_factor(parse_unit(hi.unit), t.unit, info.molar_mass if info else None)
            if klo is not None and khi is not None:
                low, high = lo.value * klo, hi.value * khi
                return Plausible(t.unit.text, low, high, (low + high) / 2)
        elif not lo.unit:
            return Plausible("", lo.value, hi.value, (lo.value + hi.value) / 2)
    if not isinstance(t, (QuantT, NumberT)):
        return None
    words = _words(name)
    molar = info.molar_mass if info is not None else None
    for keys, p in TABLE:
        if all(k in words for k in keys):
            converted = _in_unit(p, t, molar)
            if converted is not None:
                return converted
    if isinstance(t, QuantT) and t.unit.text == "%":
        return Plausible("%", Fraction(0), Fraction(100), Fraction(10))
    top = max((abs(x) for x in thresholds or ()), default=Fraction(0))
    high = top * 10 if top else Fraction(1000)
    return Plausible(t.unit.text if isinstance(t, QuantT) else "", Fraction(0), high, top or 1)
