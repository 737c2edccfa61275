"""Clinical scales: conversions that are not unit conversions.

Some values are dimensionally alike but on different clinical scales, so that no unit
factor relates them: HbA1c in mmol/mol (IFCC) and in % (NGSP/DCCT) are related by the
affine IFCC-NGSP master equation; an enzyme in [IU]/L and in U/L by the laboratory's
method; body temperature in Cel and [degF] by the affine equations of their UCUM
definitions. critlang never converts between such scales on its own: a fact declares the
conversion with its source (`convert mmol/mol to % as 0.09148 x + 2.152 source "..."`),
and without one a value on another scale is refused (a per-fact diagnostic, unknown).
Temperatures are the one built-in case: their equations are part of UCUM itself.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from .frozen_classes import frozen
from .ucum import TEMPERATURE_SOURCE, temperature_conversion
from .units import Unit, conversion_factor


@frozen
class Affine:
    """value_in_dst = slope * value_in_src + intercept; `source` says where it comes from."""

    slope: Fraction
    intercept: Fraction
    source: str | None = None  # None: a unit conversion (UCUM, or the declared molar mass)

    def __call__(self, value: Fraction) -> Fraction:
        return self.slope * value + self.intercept


@frozen
class ScaleConversion:
    """A fact's declared conversion from one clinical scale to another (`convert` option)."""

    src: Unit
    dst: Unit
    slope: Fraction
    intercept: Fraction
    source: str


def conversion(
    src: Unit,
    dst: Unit,
    molar_mass: Fraction | None = None,
    declared: tuple[ScaleConversion, ...] = (),
) -> Affine | None:
    """How a value in `src` becomes a value in `dst`, or None when nothing says how.

    Unit conversions (exact UCUM factors, or the declared molar mass) first; then a
    conversion the fact declares from `src`'s scale (the value is first put in the declared
    source unit, and the result from the declared target unit into `dst`); then the
    temperature scales of UCUM.
    """
    k = conversion_factor(src, dst, molar_mass)
    if k is not None:
        return Affine(k, Fraction(0))
    for c in declared:
        k_in = conversion_factor(src, c.src)
        k_out = conversion_factor(c.dst, dst, molar_mass)
        if k_in is not None and k_out is not None:
            return Affine(k_out * c.slope * k_in, k_out * c.intercept, c.source)
    t = temperature_conversion(src, dst)
    if t is not None:
        return Affine(t[0], t[1], TEMPERATURE_SOURCE)
    return None


def _scale_kind(u: Unit) -> bool:
    return any(d.startswith(("[ratio:", "[scale:")) for d, _ in u.dims)


def other_scale(a: Unit, b: Unit, fact: Any = None) -> bool:
    """Are a and b on different clinical scales (not different dimensions)?

    True when a conversion exists only through a declared scale or the temperature
    equations, or when a ratio of like quantities (mmol/mol) or a UCUM special unit (Cel,
    [pH]) meets a plain number (%) or another such kind: the cases a reader might take for
    a unit conversion (64 mmol/mol read as 6.4 %).
    """
    if a.same_dimension(b):
        return False
    declared = getattr(fact, "scales", ()) or ()
    if conversion(a, b, getattr(fact, "molar_mass", None), declared) is not None:
        return True
    plain_or_scale = [not u.dims or _scale_kind(u) for u in (a, b)]
    return all(plain_or_scale) and (_scale_kind(a) or _scale_kind(b))
