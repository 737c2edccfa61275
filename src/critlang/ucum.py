"""UCUM codes, evaluated exactly, and the small table of clinical spellings.

Criteria files and records share one unit system (units.parse_unit): critlang's own exact
spellings first, then the clinical spellings below, then any valid UCUM code. A UCUM code
is read here by UCUM's grammar (§§ 7-12) against the atoms and prefixes of the official
ucum-essence.xml (the copy the ucumvert library ships, found without importing it) and
evaluated from the essence file's own definitions with exact rational arithmetic, so that
`[lb_av]` is exactly 453.59237 g and `m[Hg]` exactly 133.3220 kPa (UCUM 2.2, §§ 31-45
and the essence file). Kept apart from SI, so that the checker refuses what no unit
conversion can answer:

- `mol` is a base dimension (UCUM defines it as a count, 6.02214076e23);
- `[IU]`/`[iU]` (and every other arbitrary unit, UCUM § 45) are dimensions of their own:
  an international unit is defined per substance by a WHO reference preparation;
- special units (UCUM § 21: Cel, [degF], [pH], B, Np, ...) are values on a scale of their
  own, never converted multiplicatively; the temperatures convert through the affine
  equations of their UCUM definitions (`temperature_conversion`);
- the annotation `{1.73_m2}` means "per 1.73 m2 of body surface" (KDIGO 2012), not unity.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import cache
from pathlib import Path

from .frozen_classes import frozen
from .units import (
    MAX_ATOM_EXPONENT,
    MAX_POWER_OF_TEN,
    MC_MICRO,
    Combiner,
    Dims,
    Unit,
    UnitError,
    _bound_exponent,
)

# ---------------------------------------------------------------- clinical spellings
# Spellings seen in protocols and lab systems that are not UCUM codes, each with the UCUM
# code it means. Kept small on purpose: every entry is unambiguous for any fact.
CLINICAL_SPELLINGS: dict[str, tuple[str, str]] = {
    "mmHg": ("mm[Hg]", "millimetre of mercury; UCUM print symbol mmHg (UCUM table 19)"),
    "cmH2O": ("cm[H2O]", "centimetre of water; UCUM print symbol cm H2O (UCUM table 19)"),
    "lb": ("[lb_av]", "avoirdupois pound, exactly 453.59237 g (UCUM table 13)"),
    "lbs": ("[lb_av]", "avoirdupois pound (plural)"),
    "oz": ("[oz_av]", "avoirdupois ounce (UCUM table 13)"),
    "ft": ("[ft_i]", "international foot, exactly 0.3048 m (UCUM table 7)"),
    "inch": ("[in_i]", "international inch, exactly 2.54 cm (UCUM table 7); `in` is a keyword"),
    "mcg": ("ug", "microgram; `mc` is the ISMP-recommended spelling of micro"),
    "mcL": ("uL", "microlitre"),
    "mcmol": ("umol", "micromole"),
    "cc": ("cm3", "cubic centimetre"),
    "mEq": ("meq", "milliequivalent; UCUM's atom is `eq`, case-sensitive"),
    "mEq/L": ("meq/L", "milliequivalents per litre"),
    "mOsm/kg": ("mosm/kg", "milliosmoles per kilogram (UCUM `osm`)"),
    "degC": ("Cel", "degree Celsius (UCUM special unit Cel)"),
    "°C": ("Cel", "degree Celsius"),
    "degF": ("[degF]", "degree Fahrenheit (UCUM special unit [degF])"),
    "°F": ("[degF]", "degree Fahrenheit"),
    "pH": ("[pH]", "pH (UCUM special unit [pH])"),
    "bpm": ("/min", "beats per minute: a count per minute"),
    "beats/min": ("/min", "beats per minute"),
    "breaths/min": ("/min", "breaths per minute"),
    "/hpf": ("/[HPF]", "per high-power field (UCUM [HPF])"),
    "/HPF": ("/[HPF]", "per high-power field"),
}
# `cells/uL`, `cells/mm3`, `cells/L` (also `cell/`), `copies/mL` (viral loads): a count per
# volume; `cells` and `copies` are UCUM annotations ({cells}, {copies}) that do not change
# the unit (UCUM § 12). Compiled when first used.
_CELLS = r"^(?:cells?|\{cells?\}|copies|\{copies\})/"

# Spellings that are refused, with what to write instead.
REFUSED_SPELLINGS: dict[str, str] = {
    "K/uL": "K is the kelvin in UCUM; write x10^3/uL (thousands per microlitre)",
    "M/uL": "M is mega, not a unit, in UCUM; write x10^6/uL (millions per microlitre)",
    "units": "write U (enzyme unit, umol/min) or [IU] (international unit): they differ",
    "units/L": "write U/L (enzyme units) or [IU]/L (international units): they differ",
    "u/L": "write U/L (enzyme units) or [IU]/L (international units): they differ",
    "C": "C is the coulomb in UCUM; write Cel (or degC) for degrees Celsius",
    "F": "F is the farad in UCUM; write [degF] (or degF) for degrees Fahrenheit",
}

# Lab-system spellings read only where the fact's dimension makes them unambiguous: Synthea
# and many LIS exports write K/uL and M/uL for thousands and millions per microlitre. In
# UCUM `K/uL` is kelvin per microlitre, which is no clinical quantity, so for a fact that
# holds a count per volume the lab reading is the only possible one; for any other fact
# (and in criteria files, where the author can write x10^3/uL) they are refused.
COUNT_PER_VOLUME: Dims = (("[length]", -3),)
DATA_SPELLINGS: dict[str, tuple[str, Dims]] = {
    "K/uL": ("10*3/uL", COUNT_PER_VOLUME),
    "M/uL": ("10*6/uL", COUNT_PER_VOLUME),
}


def clinical_or_ucum(text: str) -> Unit:
    """A clinical spelling or a UCUM code (not critlang's own spellings: units.parse_unit)."""
    t = text.strip()
    if t in REFUSED_SPELLINGS:
        raise UnitError(f"`{t}` is ambiguous as a unit", REFUSED_SPELLINGS[t])
    if t in CLINICAL_SPELLINGS:
        t = CLINICAL_SPELLINGS[t][0]
    t = MC_MICRO.sub("u", t)
    t = re.sub(_CELLS, lambda m: "{copies}/" if "copies" in m.group(0) else "{cells}/", t)
    return Unit(text, *_evaluate(t))


@cache
def ucum_unit(code: str) -> Unit:
    """A UCUM code, read as UCUM alone (conformance; records read through read_unit)."""
    code = code.strip()
    return Unit(code, *_evaluate(code))


# A record's unit that begins with a bare number other than 1 ("109/L", "103/uL",
# "10.3/uL"). UCUM reads such a factor literally (109 per litre; "." multiplies: 10.3 is
# 10 x 3), but in exported lab data it is almost always a power of ten whose superscript
# was lost ("10⁹/L" printed without its exponent mark). Taken literally it shrinks a count
# a billionfold, which no plausibility range catches (a count may be 0): such a unit is
# refused as ambiguous, never guessed. Powers of ten written as UCUM writes them (10*9,
# 10^9) and a leading 1 ("1/min") are read.
_BARE_FACTOR = re.compile(r"(\d+(?:\.\d+)*)(?![\d*^])")


def read_unit(text: str, want: Unit | None) -> Unit:
    """A unit in a record (FHIR `valueQuantity.code` or `.unit`), for a fact in `want`.

    Raises UnitError for a unit it cannot read, and for one that begins with a bare
    number other than 1 (ambiguous: see _BARE_FACTOR)."""
    from .units import parse_unit

    t = text.strip()
    spelled = data_spelling(t)
    if spelled is not None:
        code, dims = spelled
        if want is not None and want.dims == dims:
            return Unit(text, parse_unit(code).factor, want.dims)
        raise UnitError(
            f"{t!r} is a lab system's spelling of {code}, read only for a count per volume",
            hint="for other quantities write the unit as UCUM does",
        )
    m = _BARE_FACTOR.match(t)
    if m is not None and m.group(1) != "1":
        number = m.group(1)
        raise UnitError(
            f"the unit {t!r} begins with the number {number}: taken as UCUM it means "
            f"{number} x what follows, but exported lab units lose exponent marks "
            f"(10⁹/L printed as 109/L): ambiguous, not used",
            hint="write powers of ten as UCUM does: 10*9/L, 10*3/uL",
        )
    return parse_unit(t)


# Lab exports (Epic, LabCorp, Cerner) write powers of ten with an E: x10E9/L, 10E3/uL,
# x10E3/µL for 10*9/L and 10*3/uL. Not UCUM (which reads no E); like K/uL, read only for a
# fact holding a count per volume, where no other reading is a clinical quantity.
_E_POWER = re.compile(r"^x?\s*10\s*[Ee]\s*\+?(\d{1,2})\s*/\s*(L|dL|mL|uL|nL|pL|mm3)$")
_MICRO = str.maketrans({"\u00b5": "u", "\u03bc": "u"})  # MICRO SIGN, GREEK SMALL LETTER MU


def data_spelling(text: str) -> tuple[str, Dims] | None:
    """(UCUM code, the dimension it is read for) of a lab-export spelling: K/uL, M/uL (also
    with µ or mcL), x10E9/L; None for any other text."""
    t = text.strip().translate(_MICRO).replace("/mcL", "/uL")
    if t in DATA_SPELLINGS:
        return DATA_SPELLINGS[t]
    m = _E_POWER.match(t)
    if m is not None:
        return f"10*{int(m.group(1))}/{m.group(2)}", COUNT_PER_VOLUME
    return None


# ---------------------------------------------------------------- temperatures
# Kelvin = slope * x + offset, from the UCUM definitions of the special units:
# Cel: cel(1 K) = K - 273.15; [degF]: degf(5 K/9) = 9/5 K - 459.67; [degRe]: 5/4 x + 273.15.
_TO_KELVIN: dict[str, tuple[Fraction, Fraction]] = {
    "[scale:Cel]": (Fraction(1), Fraction("273.15")),
    "[scale:[degF]]": (Fraction(5, 9), Fraction("459.67") * Fraction(5, 9)),
    "[scale:[degRe]]": (Fraction(5, 4), Fraction("273.15")),
}
TEMPERATURE_SOURCE = "the UCUM definitions of the temperature scales (ucum-essence.xml)"


def _kelvin(u: Unit) -> tuple[Fraction, Fraction] | None:
    if len(u.dims) != 1 or u.dims[0][1] != 1:
        return None
    d = u.dims[0][0]
    if d == "[temperature]":
        return u.factor, Fraction(0)
    if d in _TO_KELVIN:
        slope, offset = _TO_KELVIN[d]
        return slope * u.factor, offset
    return None


def temperature_conversion(src: Unit, dst: Unit) -> tuple[Fraction, Fraction] | None:
    """(a, b) with value_in_dst = a * value_in_src + b between temperature scales, or None."""
    s, d = _kelvin(src), _kelvin(dst)
    if s is None or d is None or src.dims == dst.dims:
        return None
    return s[0] / d[0], (s[1] - d[1]) / d[0]


# ---------------------------------------------------------------- UCUM, exactly
_ESSENCE_BASES = {
    "m": "[length]",
    "s": "[time]",
    "g": "[mass]",
    "rad": "[angle]",
    "K": "[temperature]",
    "C": "[charge]",
    "cd": "[luminosity]",
}
_FACTOR_WITH_EXPONENT = r"(?:^|[./(])\d+[+-]\d"  # compiled when first used
_BSA_NOTE = r"^\{1\.73[ _]?m2\}$"  # compiled when first used


@frozen
class _Atom:
    metric: bool
    special: bool
    arbitrary: bool
    value: str  # the number in the definition
    unit: str  # the defining unit expression


@cache
def _ucumvert_dir() -> Path:
    """ucumvert's package folder, found without importing it (its import loads pint, ~1 s)."""
    import importlib.util

    spec = importlib.util.find_spec("ucumvert")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover
        raise UnitError("the ucumvert library is not installed (pip install ucumvert)")
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def _essence() -> tuple[dict[str, Fraction], dict[str, _Atom]]:
    path = _ucumvert_dir() / "vendor" / "ucum-essence.xml"
    import xml.etree.ElementTree as ET  # read once, when a UCUM code is first met

    root = ET.parse(path).getroot()
    prefixes = {}
    for p in root.iter():
        if p.tag.endswith("prefix") and "Code" in p.attrib:
            v = next(c for c in p if c.tag.endswith("value"))
            prefixes[p.attrib["Code"]] = Fraction(v.attrib["value"])
    atoms: dict[str, _Atom] = {}
    for u in root.iter():
        if not (u.tag.endswith("}unit") or u.tag == "unit") or "Code" not in u.attrib:
            continue
        v = next(c for c in u if c.tag.endswith("value"))
        atoms[u.attrib["Code"]] = _Atom(
            u.attrib.get("isMetric") == "yes",
            u.attrib.get("isSpecial") == "yes",
            u.attrib.get("isArbitrary") == "yes",
            v.attrib.get("value", "1"),
            v.attrib.get("Unit", "1"),
        )
    return prefixes, atoms


def is_valid(code: str) -> bool:
    """Is this a valid UCUM code (case-sensitive, per the UCUM specification)?"""
    try:
        _evaluate(code)
    except UnitError as exc:
        return exc.code == "E310" or "scale of its own" in exc.message  # valid, but refused
    return True


Value = tuple[Fraction, Dims]


@cache
def _atom_value(code: str) -> tuple[Fraction, Dims, bool]:
    """An atom's factor to base units and dimensions; True if it is a special unit."""
    if code in _ESSENCE_BASES:
        return Fraction(1), ((_ESSENCE_BASES[code], 1),), False
    if code == "mol":
        return Fraction(1), (("[substance]", 1),), False
    _, atoms = _essence()
    a = atoms[code]
    if code in ("[IU]", "[iU]"):
        return Fraction(1), (("[iu]", 1),), False
    if code == "eq":
        # A departure from UCUM, which defines 1 eq = 1 mol: an equivalent is a mole of
        # charge, so for an ion of valence z 1 mmol/L = z mEq/L (calcium, magnesium: 2;
        # Tietz Textbook of Clinical Chemistry; AMA Manual of Style, SI conversion
        # tables). Taken as UCUM says, 5.0 mEq/L of calcium would read as 5.0 mmol/L.
        # An equivalent is a dimension of its own: mEq/L converts to mmol/L or mg/dL only
        # through a fact's declared `convert mEq/L to mmol/L as 0.5 x + 0 source ...`.
        return Fraction(1), (("[eq]", 1),), False
    if a.arbitrary:
        return Fraction(1), ((f"[arbitrary:{code}]", 1),), False
    if a.special:
        return Fraction(1), ((f"[scale:{code}]", 1),), True
    f, d = _evaluate(a.unit, definition=True)
    return Fraction(a.value) * f, d, False


@cache
def _evaluate(code: str, definition: bool = False) -> Value:
    """A UCUM code's exact factor to critlang's base units and its dimensions.

    The syntax is UCUM's (§§ 7-12): `main-term: "/" term | term`, `term: term ("." | "/")
    component | component`, `component: annotatable annotation? | annotation | factor |
    "(" term ")"`, `annotatable: simple-unit exponent?`, a simple unit being an atom or a
    prefix and a metric atom (a whole atom wins: `cd` is the candela, `Pa` the pascal).
    """
    if not code or re.search(_FACTOR_WITH_EXPONENT, code):
        raise UnitError(f"`{code}` is not a valid UCUM unit")
    reader = _Reader(code, Combiner(code, ratios=not definition))
    try:
        reader.main_term(1)
        if reader.i != len(code):
            reader.fail()
    except (KeyError, ZeroDivisionError) as exc:
        raise UnitError(f"`{code}` is not a valid UCUM unit") from exc
    u = reader.acc.result()
    specials = reader.specials
    if specials and (len(specials) > 1 or len(u.dims) != 1 or u.dims[0][1] != 1):
        raise UnitError(
            f"`{code}`: {specials[0]} is a value on a scale of its own (UCUM special unit); "
            "it cannot be combined with other units",
            f"write it alone, as the unit of a fact: `{specials[0]}`",
        )
    return u.factor, u.dims


_EXPONENT = r"^(.*?)([+-]?\d+)$"  # compiled when first used
_SYMBOL_STOP = "./(){}"


class _Reader:
    """UCUM's grammar, read left to right into a Combiner (no tree is needed)."""

    def __init__(self, code: str, acc: Combiner) -> None:
        self.s = code
        self.i = 0
        self.acc = acc
        self.specials: list[str] = []

    def fail(self) -> None:
        raise UnitError(f"`{self.s}` is not a valid UCUM unit")

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def main_term(self, sign: int) -> None:
        if self.peek() == "/":
            self.i += 1
            sign = -sign
        self.term(sign)

    def term(self, sign: int) -> None:
        self.component(sign)
        while self.peek() in (".", "/"):
            op = self.s[self.i]
            self.i += 1
            self.component(-sign if op == "/" else sign)

    def component(self, sign: int) -> None:
        c = self.peek()
        if c == "(":
            self.i += 1
            self.main_term(sign)
            if self.peek() != ")":
                self.fail()
            self.i += 1
        elif c == "{":
            self.annotation(sign)
            return
        else:
            self.simple(sign)
        if self.peek() == "{":
            self.annotation(0)  # an annotation on a unit is unity (UCUM § 12)

    def annotation(self, sign: int) -> None:
        end = self.s.find("}", self.i)
        if end < 0:
            self.fail()
        text = self.s[self.i : end + 1]
        if any(not (33 <= ord(ch) <= 126) or ch in "{}" for ch in text[1:-1]):
            self.fail()
        self.i = end + 1
        if sign and re.match(_BSA_NOTE, text):
            self.acc.add(Fraction(1), (("[bsa]", 1),), sign)

    def simple(self, sign: int) -> None:
        start = self.i
        while self.i < len(self.s) and self.s[self.i] not in _SYMBOL_STOP:
            if self.s[self.i] == "[":  # a bracketed part may hold `.` and `/`
                close = self.s.find("]", self.i)
                if close < 0:
                    self.fail()
                self.i = close + 1
            else:
                self.i += 1
        run = self.s[start : self.i]
        if not run:
            self.fail()
        if run.isdigit():  # a factor
            if len(run) > 15:
                raise UnitError(
                    f"`{self.s}`: the factor {run[:20]}... is out of bounds (at most 15 digits)",
                    "no clinical unit needs it; see docs/language.md, Units",
                    code="E310",
                )
            self.acc.add(Fraction(int(run)), (), sign)
            return
        m = re.match(_EXPONENT, run)
        symbol, exp = (m.group(1), int(m.group(2))) if m else (run, 1)
        if not symbol or symbol.isdigit():
            self.fail()
        if symbol in ("10*", "10^"):
            _bound_exponent(self.s, exp, MAX_POWER_OF_TEN, "on 10")
            self.acc.add(Fraction(10) ** exp, (), sign)
            return
        _bound_exponent(self.s, exp, MAX_ATOM_EXPONENT, "on a unit")
        factor, dims, special = _simple_unit(symbol)
        if special:
            self.specials.append(symbol)
        self.acc.add(factor, dims, sign * exp)


def _is_metric(atom: str) -> bool:
    return atom in _ESSENCE_BASES or atom == "mol" or _essence()[1][atom].metric


@cache
def _simple_unit(symbol: str) -> tuple[Fraction, Dims, bool]:
    """An atom, or a prefix and a metric atom; a whole atom wins (UCUM § 10)."""
    prefixes, atoms = _essence()
    if symbol in atoms or symbol in _ESSENCE_BASES:
        return _atom_value(symbol)
    for n in (2, 1):
        prefix, atom = symbol[:n], symbol[n:]
        if prefix in prefixes and atom and (atom in atoms or atom in _ESSENCE_BASES):
            if _is_metric(atom):
                factor, dims, special = _atom_value(atom)
                return prefixes[prefix] * factor, dims, special
    raise KeyError(symbol)
