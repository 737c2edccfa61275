"""UCUM unit codes (as FHIR Observations carry them) -> critlang units.

Clinical codes (`g/dL`, `10*3/uL`, `mL/min/{1.73_m2}`, `[IU]/L`, `umol/L`) are read by
critlang's own exact unit parser. Anything else goes to ucumvert, a kept library: a Lark
parser built from the official UCUM essence file, mapped to pint. It is good enough for
validation (the UCUM functional tests) and general conversion, with three holes closed
here:

- `[IU]` would become a plain count in ucumvert; critlang keeps international units a
  dimension of their own (they convert to nothing);
- `{1.73_m2}` is an annotation to UCUM (so ucumvert drops it), but it means "per 1.73 m2
  of body surface": critlang keeps `mL/min/{1.73_m2}` apart from `mL/min`;
- a number followed by an exponent (`10+3`) is not valid UCUM (exponents belong to unit
  atoms), though ucumvert accepts it;
- two atoms that ucumvert takes from pint's physical constants are put back to UCUM's
  own definitions (ucum-essence.xml): `m[Hg]` is exactly 133.3220 kPa (pint: 133.322387415)
  and `[mu_0]` is exactly 4.[pi].10*-7.N/A2 (pint: CODATA 2018).

ucumvert is imported only when a code needs it (it costs about a second to load).
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import cache
from typing import Any

from .units import Unit, UnitError, parse_unit

_IU = re.compile(r"\[(?:IU|iU)\]")
_FACTOR_WITH_EXPONENT = re.compile(r"(?:^|[./(])\d+[+-]\d")


# UCUM's definitions where pint's differ (see the module docstring)
_HG = re.compile(r"(?<![A-Za-z\]])([YZEPTGMkhcmunpfazy]?)m\[Hg\]")
_MU0 = re.compile(r"\[mu_0\]")


def _ucum_definitions(code: str) -> str:
    code = _HG.sub(lambda m: f"(133322.{m.group(1)}Pa)", code)
    return _MU0.sub("(4.[pi].10*-7.N/A2)", code)


@cache
def _ucumvert() -> tuple[Any, Any]:
    from ucumvert import PintUcumRegistry, get_ucum_parser

    return get_ucum_parser(), PintUcumRegistry()


def is_valid(code: str) -> bool:
    """Is this a valid UCUM code (case-sensitive, per the UCUM specification)?"""
    if not code or _FACTOR_WITH_EXPONENT.search(code):
        return False
    parser, _ = _ucumvert()
    try:
        parser.parse(code)
    except Exception:  # ucumvert raises Lark errors of several kinds
        return False
    return True


def _own(code: str) -> Unit | None:
    """critlang's exact parser, for the clinical codes it knows."""
    text = _IU.sub("IU", code)
    if "[" in text or "'" in text:
        return None  # other bracketed atoms are ucumvert's
    try:
        return parse_unit(text)
    except UnitError:
        return None


@cache
def ucum_unit(code: str) -> Unit:
    """A UCUM code as a critlang unit. Raises UnitError for invalid or unusable codes."""
    code = code.strip()
    own = _own(code)
    if own is not None:
        return Unit(code, own.factor, own.dims)
    if not is_valid(code):
        raise UnitError(f"`{code}` is not a valid UCUM unit")
    _, ureg = _ucumvert()
    try:
        q = ureg.from_ucum(_ucum_definitions(_IU.sub("1", code))).to_base_units()
    except Exception as exc:  # pint and ucumvert raise many kinds
        raise UnitError(f"`{code}` cannot be converted: {exc}") from exc
    dims = {d: int(e) for d, e in q.dimensionality.items()}
    factor = Fraction(repr(float(q.magnitude)))
    # pint's base for mass is the kilogram; critlang's is the gram
    factor *= Fraction(1000) ** dims.get("[mass]", 0)
    if _IU.search(code):
        dims["[iu]"] = dims.get("[iu]", 0) + 1
    if "{1.73_m2}" in code:
        dims["[bsa]"] = dims.get("[bsa]", 0) - 1
    return Unit(code, factor, tuple(sorted((d, e) for d, e in dims.items() if e)))
