"""UCUM codes, evaluated exactly, and the small table of clinical spellings.

Criteria files and records share one unit system (units.parse_unit): critlang's own exact
spellings first, then the clinical spellings below, then any valid UCUM code. A UCUM code
is parsed with ucumvert's grammar (a Lark grammar generated from the official
ucum-essence.xml, which ucumvert ships) and evaluated here from ucum-essence.xml's own
definitions with exact rational arithmetic, so that `[lb_av]` is exactly 453.59237 g and
`m[Hg]` exactly 133.3220 kPa (UCUM 2.2, §§ 31-45 and the essence file). Kept apart from SI,
so that the checker refuses what no unit conversion can answer:

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
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

from .units import (
    MAX_ATOM_EXPONENT,
    MAX_POWER_OF_TEN,
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
# `cells/uL`, `cells/mm3`, `cells/L` (also `cell/`): a count per volume; `cells` is a UCUM
# annotation ({cells}) that does not change the unit (UCUM § 12).
_CELLS = re.compile(r"^(?:cells?|\{cells?\})/")

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
    t = _CELLS.sub("{cells}/", t)
    return Unit(text, *_evaluate(t))


@cache
def ucum_unit(code: str) -> Unit:
    """A UCUM code, read as UCUM alone (conformance; records read through read_unit)."""
    code = code.strip()
    return Unit(code, *_evaluate(code))


def read_unit(text: str, want: Unit | None) -> Unit:
    """A unit in a record (FHIR `valueQuantity.code` or `.unit`), for a fact in `want`."""
    from .units import parse_unit

    t = text.strip()
    if want is not None and t in DATA_SPELLINGS and want.dims == DATA_SPELLINGS[t][1]:
        return Unit(text, parse_unit(DATA_SPELLINGS[t][0]).factor, want.dims)
    return parse_unit(t)


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
_FACTOR_WITH_EXPONENT = re.compile(r"(?:^|[./(])\d+[+-]\d")
_BSA_NOTE = re.compile(r"^\{1\.73[ _]?m2\}$")


@dataclass(frozen=True)
class _Atom:
    metric: bool
    special: bool
    arbitrary: bool
    value: str  # the number in the definition
    unit: str  # the defining unit expression


@cache
def _essence() -> tuple[dict[str, Fraction], dict[str, _Atom]]:
    import ucumvert

    path = Path(ucumvert.__file__).with_name("vendor") / "ucum-essence.xml"
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


@cache
def _parser() -> Any:
    """ucumvert's UCUM grammar, built once (no pickled cache: see docs/security.md)."""
    import ucumvert
    from lark import Lark

    grammar = Path(ucumvert.__file__).with_name("ucum_grammar.lark").read_text("utf-8")
    return Lark(grammar, start="main_term", strict=True)


def is_valid(code: str) -> bool:
    """Is this a valid UCUM code (case-sensitive, per the UCUM specification)?"""
    if not code or _FACTOR_WITH_EXPONENT.search(code):
        return False
    try:
        _parser().parse(code)
    except Exception:  # Lark raises errors of several kinds
        return False
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
    if a.arbitrary:
        return Fraction(1), ((f"[arbitrary:{code}]", 1),), False
    if a.special:
        return Fraction(1), ((f"[scale:{code}]", 1),), True
    f, d = _evaluate(a.unit, definition=True)
    return Fraction(a.value) * f, d, False


@cache
def _evaluate(code: str, definition: bool = False) -> Value:
    """A UCUM code's exact factor to critlang's base units and its dimensions."""
    if not definition and (not code or _FACTOR_WITH_EXPONENT.search(code)):
        raise UnitError(f"`{code}` is not a valid UCUM unit")
    try:
        tree = _parser().parse(code)
    except Exception as exc:  # Lark raises errors of several kinds
        raise UnitError(f"`{code}` is not a valid UCUM unit") from exc
    acc = Combiner(code, ratios=not definition)
    specials: list[str] = []
    try:
        _walk(tree, 1, acc, specials)
    except (KeyError, ZeroDivisionError) as exc:
        raise UnitError(f"`{code}` cannot be evaluated") from exc
    u = acc.result()
    if specials and (len(specials) > 1 or len(u.dims) != 1 or u.dims[0][1] != 1):
        raise UnitError(
            f"`{code}`: {specials[0]} is a value on a scale of its own (UCUM special unit); "
            "it cannot be combined with other units",
            f"write it alone, as the unit of a fact: `{specials[0]}`",
        )
    return u.factor, u.dims


def _walk(node: Any, sign: int, acc: Combiner, specials: list[str]) -> None:
    from lark import Token

    if isinstance(node, Token):
        if node.type == "ANNOTATION":
            if _BSA_NOTE.match(str(node)):
                acc.add(Fraction(1), (("[bsa]", 1),), sign)
            return  # any other annotation is unity (UCUM § 12)
        return  # operators
    kind, kids = node.data, node.children
    if kind == "main_term":
        if isinstance(kids[0], Token) and kids[0].type == "DIVIDE":
            _walk(kids[1], -sign, acc, specials)
        else:
            _walk(kids[0], sign, acc, specials)
    elif kind == "term":
        _walk(kids[0], sign, acc, specials)
        _walk(kids[2], -sign if str(kids[1]) == "/" else sign, acc, specials)
    elif kind == "component":
        _walk(kids[0], sign, acc, specials)
    elif kind == "annotatable":
        exp = int(str(kids[1])) if len(kids) > 1 else 1
        unit = kids[0]
        if isinstance(unit, Token) or unit.data != "simple_unit":
            _walk(unit, sign, acc, specials)
            return
        is_ten = str(unit.children[-1]) in ("10*", "10^")
        limit = MAX_POWER_OF_TEN if is_ten else MAX_ATOM_EXPONENT
        _bound_exponent(acc.text, exp, limit, "on 10" if is_ten else "on a unit")
        if is_ten:
            acc.add(Fraction(10) ** exp, (), sign)
        else:
            _simple(unit, sign * exp, acc, specials)
    elif kind == "simple_unit":
        _simple(node, sign, acc, specials)
    else:  # pragma: no cover - the grammar has no other rules
        raise UnitError(f"`{acc.text}` has an unexpected part ({kind})")


def _simple(node: Any, power: int, acc: Combiner, specials: list[str]) -> None:
    kids = [str(k) for k in node.children]
    if node.children[0].type == "FACTOR":
        if len(kids[0]) > 15:
            raise UnitError(
                f"`{acc.text}`: the factor {kids[0][:20]}... is out of bounds (at most 15 digits)",
                "no clinical unit needs it; see docs/language.md, Units",
                code="E310",
            )
        acc.add(Fraction(int(kids[0])), (), power)
        return
    prefix = Fraction(1)
    if len(kids) == 2:
        prefix = _essence()[0][kids[0]]
    f, d, special = _atom_value(kids[-1])
    if special:
        specials.append(kids[-1])
    acc.add(prefix * f, d, power)
