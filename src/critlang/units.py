"""Clinical units with exact conversion factors.

A unit as an author writes it ("x10^9/L", "/mm3", "mL/min/1.73m2", "mg/dL") becomes a
`Unit`: an exact rational factor to base units and a dimension signature. Atoms ("mg",
"dL", "min") are resolved by pint against critlang's own definitions (units.txt) with
rational arithmetic, so equal thresholds written in different units compare equal
exactly (2000/mm3 == 2 x10^9/L, no float residue).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path

Dims = tuple[tuple[str, int], ...]  # sorted (base dimension, exponent), no zeros

_DEFINITIONS = Path(__file__).with_name("units.txt")


class UnitError(ValueError):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Unit:
    text: str  # as written
    factor: Fraction  # one of this unit, in base units
    dims: Dims

    @property
    def is_dimensionless(self) -> bool:
        return not self.dims

    def same_dimension(self, other: Unit) -> bool:
        return self.dims == other.dims


DIMENSIONLESS = Unit("", Fraction(1), ())

MASS: Dims = (("[mass]", 1),)
SUBSTANCE: Dims = (("[substance]", 1),)
TIME: Dims = (("[time]", 1),)
CALENDAR: Dims = (("[calendar]", 1),)

# Words a clinician recognises, for messages. Unknown signatures are spelled out.
_DIM_WORDS: dict[Dims, str] = {
    (): "a plain number or ratio",
    (("[length]", -3), ("[mass]", 1)): "a mass concentration",
    (("[length]", -3), ("[substance]", 1)): "a substance concentration",
    (("[length]", -3),): "a count per volume",
    (("[length]", 3), ("[time]", -1)): "a clearance (volume per time)",
    (("[bsa]", -1), ("[length]", 3), ("[time]", -1)): "a clearance per 1.73 m2 body surface",
    TIME: "a fixed duration",
    CALENDAR: "a calendar duration",
    MASS: "a mass",
    SUBSTANCE: "an amount of substance",
    (("[length]", 1),): "a length",
    (("[length]", 2),): "an area",
    (("[length]", 3),): "a volume",
    (("[iu]", 1), ("[length]", -3)): "an activity concentration (IU per volume)",
    (("[iu]", 1),): "an activity in international units",
    (("[mass]", 1), ("[substance]", -1)): "a molar mass",
}


def describe(dims: Dims) -> str:
    if dims in _DIM_WORDS:
        return _DIM_WORDS[dims]
    parts = [d.strip("[]") + (f"^{e}" if e != 1 else "") for d, e in dims]
    return "a quantity of " + "·".join(parts)


def mul_dims(a: Dims, b: Dims, sign: int = 1) -> Dims:
    out: dict[str, int] = dict(a)
    for d, e in b:
        out[d] = out.get(d, 0) + sign * e
    return tuple(sorted((d, e) for d, e in out.items() if e))


@cache
def _registry():  # -> pint.UnitRegistry; imported lazily, pint costs ~0.15 s to import
    import pint

    return pint.UnitRegistry(str(_DEFINITIONS), non_int_type=Fraction)


@cache
def _known_atoms() -> tuple[str, ...]:
    names = ["mg", "g", "kg", "ug", "ng", "L", "dL", "mL", "uL", "mm3", "mol", "mmol", "umol"]
    names += ["nmol", "min", "h", "d", "wk", "mo", "a", "IU", "%", "days", "weeks", "months"]
    names += ["years", "m2", "x10^9/L", "x10^3/uL", "mL/min/1.73m2"]
    return tuple(names)


# Atoms resolved ahead of time, so checking a file does not pay for importing pint
# (~0.15 s). The table is pint's own answer for critlang's definitions: regenerate it
# with `python -m critlang.units` after editing units.txt; a test compares it with pint.
_PREFIXES = ("", "p", "n", "u", "m", "c", "d", "k")
_BASES = ("m", "g", "s", "mol", "L", "l", "IU")
_OTHERS = (
    "min",
    "h",
    "hr",
    "d",
    "wk",
    "mo",
    "a",
    "yr",
    "%",
    "percent",
    "bsa",
    "sec",
    "second",
    "minute",
    "hour",
    "day",
    "week",
    "month",
    "year",
    "seconds",
    "minutes",
    "hours",
    "days",
    "weeks",
    "months",
    "years",
    "meter",
    "gram",
    "mole",
    "liter",
    "litre",
)


def table_atoms() -> list[str]:
    return sorted({p + b for p in _PREFIXES for b in _BASES} | set(_OTHERS))


def resolve_with_pint(name: str) -> tuple[Fraction, Dims]:
    import pint

    ureg = _registry()
    try:
        q = ureg.Quantity(Fraction(1), name).to_base_units()
    except (pint.errors.UndefinedUnitError, AttributeError, ValueError, TypeError) as exc:
        close = difflib.get_close_matches(name, _known_atoms(), n=1, cutoff=0.6)
        hint = f"did you mean `{close[0]}`?" if close else ""
        raise UnitError(f"`{name}` is not a unit critlang knows", hint) from exc
    dims = tuple(sorted((d, int(e)) for d, e in q.dimensionality.items() if e))
    return Fraction(q.magnitude), dims


@cache
def _atom(name: str) -> tuple[Fraction, Dims]:
    from .unit_table import ATOMS

    if name in ATOMS:
        num, den, dims = ATOMS[name]
        return Fraction(num, den), dims
    return resolve_with_pint(name)


def _write_table(path: Path) -> None:
    rows = []
    for name in table_atoms():
        f, d = resolve_with_pint(name)
        rows.append(f"    {name!r}: ({f.numerator}, {f.denominator}, {d!r}),")
    path.write_text(
        '"""Generated by `python -m critlang.units` from units.txt via pint. Do not edit."""\n\n'
        "ATOMS: dict[str, tuple[int, int, tuple[tuple[str, int], ...]]] = {\n"
        + "\n".join(rows)
        + "\n}\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    _write_table(Path(__file__).with_name("unit_table.py"))


_BSA = re.compile(r"/\s*\{?1\.73[ _]?m(?:2|\^2|\*\*2)\}?")
_POWER = re.compile(r"^(?:[x×]\s*)?10(?:\^|\*|\*\*)(-?\d+)\s*")
_ANNOTATION = re.compile(r"\{[^}]*\}")
_TOKEN = re.compile(r"\s*(?:(?P<op>[/.*])|(?P<atom>[A-Za-z%_]+)(?:\^|\*\*)?(?P<exp>-?\d+)?)")


def _normalise(text: str) -> str:
    t = text.strip().replace("µ", "u").replace("μ", "u")
    t = _BSA.sub("/bsa", t)
    return _ANNOTATION.sub("", t).strip()


@cache
def parse_unit(text: str) -> Unit:
    """Parse a unit as written. Raises UnitError with a hint when it is not a unit."""
    t = _normalise(text)
    factor = Fraction(1)
    dims: Dims = ()
    m = _POWER.match(t)
    if m:
        factor *= Fraction(10) ** int(m.group(1))
        t = t[m.end() :]
    pending = 1
    if t.startswith("1/"):
        t = t[1:]
    if t.startswith("/"):  # "/mm3": per cubic millimetre
        t = t[1:].lstrip()
        pending = -1
    pos = 0
    expect_atom = True
    while pos < len(t):
        tm = _TOKEN.match(t, pos)
        if not tm or tm.end() == pos:
            raise UnitError(f"`{text}` is not a unit critlang can read", _unit_hint(text))
        pos = tm.end()
        if tm.group("op"):
            if expect_atom:
                raise UnitError(f"`{text}` is not a unit critlang can read", _unit_hint(text))
            pending = -1 if tm.group("op") == "/" else 1
            expect_atom = True
            continue
        exp = int(tm.group("exp") or 1)
        f, d = _atom(tm.group("atom"))
        power = pending * exp
        factor *= f**power
        dims = mul_dims(dims, tuple((k, v * power) for k, v in d))
        pending = 1
        expect_atom = False
    if expect_atom and (t or pending == -1):
        raise UnitError(f"`{text}` ends in an operator", _unit_hint(text))
    return Unit(text, factor, dims)


def _unit_hint(text: str) -> str:
    return "units are written like mg/dL, mmol/L, x10^9/L, /mm3, mL/min/1.73m2, %, weeks"


def conversion_factor(src: Unit, dst: Unit, molar_mass: Fraction | None = None) -> Fraction | None:
    """Exact factor f with value_in_dst = f * value_in_src, or None if not convertible.

    `molar_mass` (in base units, g/mol) lets mass and substance concentrations convert.
    """
    if src.dims == dst.dims:
        return src.factor / dst.factor
    if molar_mass is None:
        return None
    to_substance = mul_dims(mul_dims(src.dims, MASS, -1), SUBSTANCE)
    if to_substance == dst.dims:  # mass -> substance: divide by g/mol
        return src.factor / molar_mass / dst.factor
    to_mass = mul_dims(mul_dims(src.dims, SUBSTANCE, -1), MASS)
    if to_mass == dst.dims:
        return src.factor * molar_mass / dst.factor
    return None


def mass_substance_pair(a: Unit, b: Unit) -> bool:
    """True when a and b differ exactly by mass <-> amount of substance."""
    return (
        mul_dims(mul_dims(a.dims, MASS, -1), SUBSTANCE) == b.dims
        or mul_dims(mul_dims(a.dims, SUBSTANCE, -1), MASS) == b.dims
    )


def is_duration(unit: Unit) -> bool:
    return unit.dims in (TIME, CALENDAR)
