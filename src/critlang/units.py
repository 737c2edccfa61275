"""Clinical units with exact conversion factors.

A unit as an author writes it ("x10^9/L", "/mm3", "mL/min/1.73m2", "mg/dL", "mm[Hg]",
"lb") or as a record carries it (a UCUM code) becomes a `Unit`: an exact rational factor
to base units and a dimension signature. One unit system serves criteria files and
records (`parse_unit`): critlang's own spellings, whose atoms ("mg", "dL", "min") pint
resolved ahead of time from critlang's definitions (units.txt -> unit_table.py), then the
clinical spellings and every UCUM code (ucum.py). Arithmetic is rational, so equal
thresholds written in different units compare equal exactly (2000/mm3 == 2 x10^9/L).
Sizes are bounded (E310) so that no unit can stall the tool or overflow a float.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import cache
from pathlib import Path

from .frozen_classes import frozen

Dims = tuple[tuple[str, int], ...]  # sorted (base dimension, exponent), no zeros

_DEFINITIONS = Path(__file__).with_name("units.txt")


class UnitError(ValueError):
    """A unit that cannot be read: `code` is E301 (unknown), E310 (out of bounds)."""

    def __init__(self, message: str, hint: str = "", code: str = "E301") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code


@frozen
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
    (("[length]", -1), ("[mass]", 1), ("[time]", -2)): "a pressure",
    (("[length]", -3), ("[substance]", 1), ("[time]", -1)): "a catalytic activity concentration",
    (("[substance]", 1), ("[time]", -1)): "a catalytic activity",
    (("[length]", -2), ("[mass]", 1)): "a mass per area",
    (("[time]", -1),): "a rate (per time)",
    (("[eq]", 1), ("[length]", -3)): "an equivalent (charge) concentration",
    (("[eq]", 1),): "an amount of charge in equivalents",
}


_RATIO_WORDS = {
    "substance": "a substance fraction (like mmol/mol)",
    "mass": "a mass ratio (like mg/g)",
}


def describe(dims: Dims) -> str:
    if dims in _DIM_WORDS:
        return _DIM_WORDS[dims]
    if len(dims) == 1 and dims[0][1] == 1 and dims[0][0].startswith("[ratio:"):
        kind = dims[0][0][7:-1]
        return _RATIO_WORDS.get(kind, f"a ratio of like quantities ({kind})")
    if len(dims) == 1 and dims[0][1] == 1 and dims[0][0].startswith("[scale:"):
        return f"a value on the {dims[0][0][7:-1]} scale"
    if dims == (("[temperature]", 1),):
        return "a thermodynamic temperature (kelvin)"
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


# pint's base unit for each of critlang's base dimensions (the reference interpreter computes
# with pint quantities); dimensions met only through UCUM ([temperature], [scale:Cel],
# [ratio:substance], [arbitrary:[arb'U]]) get a base unit of their own on first use.
_PINT_BASES = {
    "[length]": "meter",
    "[mass]": "gram",
    "[time]": "second",
    "[substance]": "mole",
    "[calendar]": "month",
    "[iu]": "international_unit",
    "[bsa]": "body_surface_173",
}


def pint_base_unit(dim: str) -> str:
    """The pint unit that is one base unit of `dim` in the reference interpreter's registry."""
    if dim in _PINT_BASES:
        return _PINT_BASES[dim]
    name = "critlang_" + "".join(c if c.isalnum() else "_" for c in dim.strip("[]"))
    ureg = _registry()
    if name not in ureg:
        ureg.define(f"{name} = [{name}]")
    _PINT_BASES[dim] = name
    return name


def table_atoms() -> list[str]:
    return sorted({p + b for p in _PREFIXES for b in _BASES} | set(_OTHERS))


def resolve_with_pint(name: str) -> tuple[Fraction, Dims]:
    import pint

    ureg = _registry()
    try:
        q = ureg.Quantity(Fraction(1), name).to_base_units()
    except (pint.errors.UndefinedUnitError, AttributeError, ValueError, TypeError) as exc:
        close = _close(name)
        hint = f"did you mean `{close[0]}`?" if close else ""
        raise UnitError(f"`{name}` is not a unit critlang knows", hint) from exc
    dims = tuple(sorted((d, int(e)) for d, e in q.dimensionality.items() if e))
    return Fraction(q.magnitude), dims


def _close(name: str) -> list[str]:
    """The known atom closest to a misspelt one (difflib loaded only then)."""
    import difflib

    return difflib.get_close_matches(name, _known_atoms(), n=1, cutoff=0.6)


@cache
def _atom(name: str) -> tuple[Fraction, Dims]:
    """An atom of critlang's own spellings. Others (Pa, U, K, cd) are UCUM's to read."""
    from .unit_table import ATOMS

    if name in ATOMS:
        num, den, dims = ATOMS[name]
        return Fraction(num, den), dims
    close = _close(name)
    hint = f"did you mean `{close[0]}`?" if close else ""
    raise UnitError(f"`{name}` is not a unit critlang knows", hint)


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
_POWER = re.compile(r"^(?:[x×]\s*)?10(?:\^|\*|\*\*)([-+]?\d+)\s*")
# `mc` for micro (ISMP's recommended spelling, so that µ is not misread as m) inside any
# unit, not only alone: mcg/L, mcmol/L, /mcL, 10*3/mcL, mcL-1 (breaker7 F19). UCUM has no
# atom or prefix `mc`, so the reading is unambiguous.
MC_MICRO = re.compile(r"(?<![A-Za-z\[_{])mc(?=(?:g|L|l|mol)(?![A-Za-z]))")
_ANNOTATION = re.compile(r"\{[^}]*\}")
# a log-transformed result: `{Log_copies}/mL`, `{log10}`, `log10 IU/mL`, `Log IU/mL`, `lg(...)`
_LOGARITHM = re.compile(r"(?i)\{[^}]*\blog|\{log|^\s*(?:log|lg|ln)(?:10|2)?(?:[\s_(\[{]|$)")
_TOKEN = re.compile(r"\s*(?:(?P<op>[/.*])|(?P<atom>[A-Za-z%_]+)(?:\^|\*\*)?(?P<exp>[-+]?\d+)?)")

# Bounds on what a unit may say (issue 14: `mg^9999999` or `10^300` must not take minutes
# nor overflow a float downstream). Clinical units stay far inside them: exponents up to 3
# (m3), powers of ten up to 10^12 (x10^12/L), UCUM's prefixes up to 10^24.
MAX_UNIT_LENGTH = 120  # characters
MAX_ATOM_EXPONENT = 9  # |e| in `m3`, `s-2`, `mg^2`
MAX_POWER_OF_TEN = 24  # |n| in `x10^9/L`, `10*3/uL` (UCUM's largest prefix, yotta)
MAX_DIMENSION_EXPONENT = 12  # |e| of a base dimension in the whole unit
MAX_FACTOR_DIGITS = 60  # |log10| of the unit's factor to base units


def _bound_exponent(text: str, exp: int, limit: int, what: str) -> int:
    if abs(exp) > limit:
        raise UnitError(
            f"`{text}`: the exponent {exp} {what} is out of bounds (at most {limit})",
            "no clinical unit needs it; see docs/language.md, Units",
            code="E310",
        )
    return exp


def check_bounds(text: str, factor: Fraction, dims: Dims) -> None:
    """Refuse units whose dimension exponents or factor are out of clinical bounds (E310)."""
    for d, e in dims:
        _bound_exponent(text, e, MAX_DIMENSION_EXPONENT, f"of {d.strip('[]')}")
    if factor:
        digits = abs(len(str(factor.numerator)) - len(str(factor.denominator)))
        if digits > MAX_FACTOR_DIGITS:
            raise UnitError(
                f"`{text}` is about 10^{digits if factor > 1 else -digits} base units: "
                f"out of bounds (at most 10^{MAX_FACTOR_DIGITS})",
                "no clinical unit needs it; see docs/language.md, Units",
                code="E310",
            )


class Combiner:
    """Multiplies unit atoms together, exactly, and notes the dimensions that cancel.

    A unit whose dimensions cancel completely is a ratio of like quantities: mmol/mol is a
    substance fraction, mg/g a mass ratio. Such a ratio keeps its kind as a dimension of
    its own (`[ratio:substance]`, ...) so that it converts to other ratios of the same kind
    (mmol/mol -> umol/mol) but never silently to % or a bare number (a volume fraction,
    L/L or mL/L, is the exception: a plain ratio, 0.32 L/L = 32 %):
    HbA1c 64 mmol/mol (IFCC) is not 6.4 % (NGSP) but about 8.0 % (an affine scale, which a
    fact declares; docs/language.md, Units).
    """

    def __init__(self, text: str, ratios: bool = True) -> None:
        self.text = text
        self.ratios = ratios  # False inside UCUM's own definitions (g/t/9 is just a mass)
        self.factor = Fraction(1)
        self.dims: dict[str, int] = {}
        self.signs: dict[str, set[int]] = {}

    def add(self, factor: Fraction, dims: Dims, power: int) -> None:
        _bound_exponent(self.text, power, MAX_ATOM_EXPONENT, "on a unit")
        self.factor *= factor**power
        for d, e in dims:
            self.dims[d] = self.dims.get(d, 0) + e * power
            self.signs.setdefault(d, set()).add(1 if e * power > 0 else -1)
            _bound_exponent(self.text, self.dims[d], MAX_DIMENSION_EXPONENT, f"of {d}")
        if self.factor:
            n, m = self.factor.numerator.bit_length(), self.factor.denominator.bit_length()
            if abs(n - m) > 4 * MAX_FACTOR_DIGITS:  # stop early, before the final check
                check_bounds(self.text, self.factor, ())

    def result(self) -> Unit:
        dims = tuple(sorted((d, e) for d, e in self.dims.items() if e))
        cancelled = sorted(d.strip("[]") for d, s in self.signs.items() if len(s) == 2)
        # a volume (or length) fraction is a plain ratio, as UCUM has it (L = dm3, so L/L
        # is 1): haematocrit 0.32 L/L is 32 % (LOINC 4544-3, property VFr; ICSH reports
        # the packed cell volume as a fraction, L/L). Substance, mass, time and other
        # ratios keep their kind: mmol/mol HbA1c (IFCC) is not NGSP %, mg/kg is a dose
        # per body weight, s/s a prothrombin ratio that is no INR
        if not dims and cancelled and self.ratios and cancelled != ["length"]:
            dims = ((f"[ratio:{','.join(cancelled)}]", 1),)
        check_bounds(self.text, self.factor, dims)
        return Unit(self.text, self.factor, dims)


def _normalise(text: str) -> str:
    t = text.strip().replace("µ", "u").replace("μ", "u")
    t = _BSA.sub("/bsa", t)
    return _ANNOTATION.sub("", t).strip()


def _own_unit(text: str) -> Unit:
    """critlang's own spellings (x10^9/L, /mm3, mL/min/1.73m2, weeks), from the atom table."""
    t = _normalise(text)
    acc = Combiner(text)
    m = _POWER.match(t)
    if m:
        power = _bound_exponent(text, int(m.group(1)), MAX_POWER_OF_TEN, "on 10")
        acc.add(Fraction(10) ** power, (), 1)
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
        exp = _bound_exponent(text, int(tm.group("exp") or 1), MAX_ATOM_EXPONENT, "on a unit")
        f, d = _atom(tm.group("atom"))
        acc.add(f, d, pending * exp)
        pending = 1
        expect_atom = False
    if expect_atom and (t or pending == -1):
        raise UnitError(f"`{text}` ends in an operator", _unit_hint(text))
    return acc.result()


@cache
def parse_unit(text: str) -> Unit:
    """A unit as written in a criteria file or a record: one unit system for both.

    Tried in order: critlang's own exact spellings (x10^9/L, /mm3, mL/min/1.73m2, weeks,
    mg/dL), the documented table of clinical spellings (mmHg -> mm[Hg], lb -> [lb_av];
    ucum.CLINICAL_SPELLINGS), then any valid UCUM code, evaluated exactly from UCUM's own
    definitions (ucum-essence.xml). Raises UnitError (code E301, or E310 when out of
    bounds) with a hint.
    """
    if len(text) > MAX_UNIT_LENGTH:
        raise UnitError(
            f"a unit of {len(text)} characters is out of bounds (at most {MAX_UNIT_LENGTH})",
            "see docs/language.md, Units",
            code="E310",
        )
    if _LOGARITHM.search(text):
        # LOINC's "[Log #/volume]" results (HIV-1 or HCV RNA as log10 copies or IU/mL) carry
        # units such as {Log_copies}/mL or "log10 IU/mL". An annotation is unity in UCUM
        # (UCUM section 12), so read as UCUM 4.3 {Log_copies}/mL would be 4.3 /mL, where
        # it means 10^4.3 = 19,953 copies/mL: refused, never read on the wrong scale.
        raise UnitError(
            f"`{text.strip()}` is a logarithm (log10) of a count, not a count in that unit: "
            "4.3 log10 copies/mL is 10^4.3 = 19,953 copies/mL",
            "bind the code of the result in copies/mL or IU/mL, or declare a `number` fact "
            "for the log10 value",
        )
    try:
        own_text = MC_MICRO.sub("u", text)
        u = _own_unit(own_text)
        return u if own_text == text else Unit(text, u.factor, u.dims)  # shown as written
    except UnitError as exc:
        if exc.code == "E310":
            raise
        own = exc
    from .ucum import clinical_or_ucum

    try:
        u = clinical_or_ucum(text)
    except UnitError as exc:
        if exc.code == "E310" or exc.hint:
            raise
        raise own from exc
    return Unit(text, u.factor, u.dims)


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
