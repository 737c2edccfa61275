"""Which quantities can be below zero: one rule for the reader (a negative value is
impossible, a diagnostic) and for every evaluator (a censored "< 1.5 mg/dL" is a value
from 0 up to 1.5, not down to minus infinity).

A quantity in units of a ratio scale (an amount, a concentration, a count, a rate, a
length of time: UCUM's metric and customary units, whose zero is "none of it") is never
negative. Two kinds of quantity are exceptions:

- a value on a special unit's scale (UCUM § 21: `Cel`, `[degF]`, `[pH]`, ...; critlang's
  `[scale:...]` dimensions): the zero is a point of the scale, not "none", so values
  below it exist (-5 Cel);
- a quantity defined as a signed difference, though written in ratio units: the base
  excess (mmol/L; the amount of strong acid or base needed to bring blood to pH 7.40,
  negative for a base deficit). It is known by its LOINC codes (SIGNED_LOINC).

A `number` fact (a score: Glasgow Coma Scale, ECOG, NYHA class; a ratio: the INR; a
difference or a z-score) has no unit to tell its sign, so it has no sign rule of its
own: the fact's declared `plausible LOW..HIGH` decides (number_never_negative). With
LOW >= 0 it is never negative: a negative value is outside the range (the reader's
plausibility check refuses it: unknown, with a diagnostic) and a censored "< 2" is 0 to
2; with no declared range, or one reaching below 0, a negative value is read as recorded
and "< 2" is unbounded below.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..units import Unit

# LOINC codes of signed quantities in ratio units (component "Base excess"; source:
# LOINC, loinc.org, the codes' Long Common Names below).
SIGNED_LOINC = {
    "11555-0": "Base excess in Blood by calculation",
    "1925-7": "Base excess in Arterial blood by calculation",
    "1927-3": "Base excess in Venous blood by calculation",
    "1926-5": "Base excess in Capillary blood by calculation",
}


def never_negative(unit: Unit, codes: Iterable[Any] = ()) -> bool:
    """True when no value of a quantity in `unit` (a fact with these code bindings,
    `n.Code` with `.system` and `.value`) is below zero."""
    if any(d.startswith("[scale:") for d, _ in unit.dims):
        return False
    return not any(c.system == "loinc" and c.value in SIGNED_LOINC for c in codes)


def number_never_negative(checked: Any, fact: str) -> bool:
    """True when the `number` fact `fact` of a CheckResult declares `plausible LOW..HIGH`
    with LOW >= 0 (the module docstring: a number's sign is its declared range's)."""
    info = checked.facts.get(fact)
    opt = info.node.option("plausible") if info is not None else None
    low = opt.quantity if opt is not None else None
    return low is not None and not low.unit and low.value >= 0
