"""The native record reader's measured values (a base of reader.py's `Reader`):
quantities with their units (UCUM, or a unit on another clinical scale), censored values
(FHIR Quantity.comparator), blood-pressure pairs, and what is physiologically
impossible (values.PLAUSIBLE).
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import Any

from ..checker import CheckResult
from ..scales import conversion, other_scale
from ..typesys import PressureT, QuantT
from ..ucum import read_unit
from ..units import Unit, UnitError, conversion_factor, describe, parse_unit
from .reader_ranges import RangeReading
from .records import Bound, Observation, _decimal, part_text
from .signs import never_negative
from .values import PLAUSIBLE, _one, float_holds

__all__ = ["QuantityReading", "_one"]

# FHIR R4 QuantityComparator (valueset-quantity-comparator)
COMPARATORS = ("<", "<=", ">", ">=")
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


class QuantityReading(RangeReading):
    """A base of `Reader`. It uses the Reader's `checked`, `problem`, `number` and
    `when`."""

    checked: CheckResult
    problem: Any
    number: Any
    when: Any

    def pressure(self, fact: str, t: PressureT, entry: dict[str, Any]) -> Observation | None:
        """A blood pressure's value: `{"systolic": 120, "diastolic": 80, "unit": "mm[Hg]"}`,
        or each part an object `{"value": 170, "comparator": ">", "unit": "kPa"}` (its own
        unit, else the entry's) (the entry's date, status and source are read by
        `Reader.entry`, as for any fact).

        FHIR vital signs carry it as one Observation (LOINC 85354-9, blood pressure panel)
        with two components, 8480-6 systolic and 8462-4 diastolic, each a valueQuantity
        (fhir_observation.part_reading). Each part is read by the rules of a censored
        quantity: a comparator makes it a bound (records.Bound), never an exact value;
        parts in different units of pressure (mm[Hg], mmHg, kPa, cm[H2O]) are converted
        exactly into mm[Hg] (UCUM ucum-essence.xml: mm[Hg] = 133.322 Pa, via m[Hg] =
        133.3220 kPa); only a unit of another dimension is refused. One part may be
        missing; that part is then unknown.
        """
        for note in entry.get("unread_parts") or ():
            # a component with no value, a contradictory one, or one naming neither part:
            # that part is unknown, said, never dropped in silence (breaker7 F13)
            self.problem(
                fact, f"a blood-pressure component: {str(note)[:80]}; that part is unknown"
            )
        read: list[tuple[Fraction | Bound, Unit] | None] = []
        for key in ("systolic", "diastolic"):
            raw = entry.get(key)
            if raw is None:
                read.append(None)
                continue
            part = self.pressure_part(fact, key, raw, entry.get("unit"), t)
            if part is None:
                return None  # a part recorded but unusable: the diagnostic says why
            read.append(part)
        units = {p[1] for p in read if p is not None}
        if len(units) == 1:
            unit = units.pop()  # one unit: the values as recorded
            values = tuple(None if p is None else p[0] for p in read)
            note = None
        else:  # each part converted exactly into the fact's unit, said
            unit = t.unit
            values = tuple(
                None if p is None else _times(p[0], conversion_factor(p[1], t.unit)) for p in read
            )
            note = (
                "parts converted to "
                + t.unit.text
                + " ("
                + ", ".join(
                    f"{k} {part_text(p[0])} {p[1].text}"
                    for k, p in zip(("systolic", "diastolic"), read, strict=True)
                    if p is not None
                )
                + ")"
            )
        # an arterial pressure is never below zero, and the systolic is by definition the
        # peak of the cycle: a negative part or a diastolic surely above the systolic is a
        # sign slip or swapped components, which would otherwise decide `bp < 140/90`
        if any(v is not None and _all_negative(v) for v in values):
            self.problem(fact, "a blood pressure part is negative; no pressure is read")
            return None
        s, d = values
        if s is not None and d is not None and _surely_above(d, s):
            self.problem(
                fact,
                f"the diastolic above the systolic ({part_text(s)}/{part_text(d)}): "
                "the parts look swapped; neither is used",
            )
            return None
        return Observation(values, unit, None, note)

    def pressure_part(
        self, fact: str, key: str, raw: Any, entry_unit: Any, t: PressureT
    ) -> tuple[Fraction | Bound, Unit] | None:
        """One part, read as a quantity in a unit of pressure, or None after a diagnostic."""
        meta = raw if isinstance(raw, dict) else {"value": raw}
        value = self.number(fact, meta.get("value"))
        comparator = self.comparator(fact, meta)
        if value is None or comparator is False:
            return None
        if not float_holds(value):
            # a pressure is compared as two floats: a part with more digits than a float
            # holds could be rounded onto a threshold (120.00000000000000001 onto 120)
            self.problem(fact, "a part has more digits than critlang compares exactly")
            return None
        unit_text = meta.get("unit", entry_unit)
        if not isinstance(unit_text, str) or not unit_text.strip():
            self.problem(fact, "a blood pressure needs its unit (mm[Hg]); it is never guessed")
            return None
        unit = self.unit(fact, unit_text, t.unit)
        if unit is None:
            return None
        if conversion_factor(unit, t.unit) is None:
            self.problem(
                fact, f"the {key} unit {unit_text!r} is {describe(unit.dims)}, not a pressure"
            )
            return None
        return (Bound(comparator, value) if comparator else value), unit

    def comparator(self, fact: str, meta: dict[str, Any]) -> str | bool:
        """The entry's comparator ("" when none); False after reporting a bad one."""
        c = meta.get("comparator")
        if c is None:
            return ""
        if c in COMPARATORS:
            return str(c)
        self.problem(
            fact,
            f"comparator {str(c)[:20]!r} is not one of <, <=, >, >= (FHIR Quantity.comparator)",
        )
        return False

    def quantity(self, fact: str, t: QuantT, raw: Any, meta: dict[str, Any]) -> Observation | None:
        value = self.number(fact, raw)
        comparator = self.comparator(fact, meta)
        if value is None or comparator is False:
            return None
        unit_text = meta.get("unit")
        if not isinstance(unit_text, str) or not unit_text.strip():
            self.problem(
                fact,
                f"{raw!r} has no unit; {fact} is recorded in units like {t.unit.text} "
                "(a value without unit is never guessed)",
            )
            return None
        unit = self.unit(fact, unit_text, t.unit)
        if unit is None:
            return None
        info = self.c.facts.get(fact)
        molar = info.molar_mass if info else None
        # a unit conversion (exact UCUM factor, or the molar mass), else a clinical scale
        # the fact declares (or a UCUM temperature scale); else the value is refused
        convert = conversion(unit, t.unit, molar, info.scales if info else ())
        if convert is None:
            # the molar mass only bridges mass and amount of substance (mg/dL <-> mmol/L);
            # naming it for [IU]/L against U/L would point at the wrong fix
            extra = ""
            if molar is None and _as_substance(unit.dims) == _as_substance(t.unit.dims):
                # a list's field cannot have a molar mass (docs/language.md): never
                # send the author to declare one there
                extra = (
                    " and no molar mass is declared"
                    if info is not None
                    else "; a list's field has no molar mass, so the two do not convert"
                )
            if other_scale(unit, t.unit):
                extra = (
                    ": another clinical scale, not a unit conversion; the fact declares no "
                    f"`convert {unit_text.strip()} to {t.unit.text} as A x + B source ...`"
                )
            self.problem(
                fact,
                f"unit {unit_text!r} is {describe(unit.dims)}, but {fact} is "
                f"{describe(t.unit.dims)} ({t.unit.text}){extra}",
            )
            return None
        low = high = None
        range_unknown = False
        rr = meta.get("reference_range")
        if rr is not None:
            limits = self.reference_range(fact, rr, unit, t.unit, molar, meta.get("date"))
            if limits is None:
                range_unknown = True  # reported, but not this patient's for sure
            else:
                low, high = limits
        note = recorded = None
        if convert.source is not None:
            # another scale: the value is converted here, once, into the fact's unit, and
            # says so (explanations show the recorded value and the equation's source)
            recorded = f"{comparator + ' ' if comparator else ''}{_num(value)} {unit_text.strip()}"
            value, unit = convert(value), t.unit
            low = None if low is None else convert(low)
            high = None if high is None else convert(high)
            if convert.slope < 0:  # a decreasing scale swaps the limits and the bound's side
                low, high = high, low
                comparator = _FLIP.get(comparator, comparator)
            note = f"from {recorded} by {convert.source}"
        k = conversion_factor(unit, t.unit, molar)
        obs = Observation(
            value,
            unit,
            None,
            note,
            low,
            high,
            comparator or None,
            range_unknown=range_unknown,
            range_why=self.range_why if range_unknown else None,
        )
        return obs if self.plausible(fact, obs, k, t, recorded) else None

    def plausible(
        self,
        fact: str,
        obs: Observation,
        k: Fraction | None,
        t: QuantT | None = None,
        recorded: str | None = None,
    ) -> bool:
        """False (with a diagnostic) when the value cannot be a living patient's.

        A censored value is impossible when every value it allows is ("< 0", "> 100 %").
        `recorded`: the value as recorded when a scale conversion gave `obs`.
        """
        c = obs.comparator

        def all_below(v: Fraction, limit: Fraction) -> bool:  # every value allowed < limit
            if c is None:
                return v < limit
            return v <= limit if c == "<" else v < limit if c == "<=" else False

        def all_above(v: Fraction, limit: Fraction) -> bool:  # every value allowed > limit
            if c is None:
                return v > limit
            return v >= limit if c == ">" else v > limit if c == ">=" else False

        declared = obs.value * k if k is not None else obs.value
        shown = f"{c + ' ' if c else ''}{_num(obs.value)}"
        if obs.unit is not None:
            shown += f" {obs.unit.text}"
            codes = self.c.bindings.get(fact, [])
            if t is not None and never_negative(t.unit, codes) and all_below(declared, Fraction(0)):
                self.problem(fact, f"{shown} is negative: impossible for an amount")
                return False
            if t is not None and t.unit.text == "%" and all_above(declared, Fraction(100)):
                self.problem(fact, f"{shown} is above 100 %: impossible for a share")
                return False
        own = declared_range(self.c, fact)
        if own is not None and (all_below(declared, own[0]) or all_above(declared, own[1])):
            # the fact's own `plausible LOW..HIGH` (docs/language.md): a value outside it
            # is an entry or unit error (HbA1c "53 %" is an IFCC mmol/mol value), never
            # a measurement that may decide a criterion
            if recorded is not None or (k is not None and k != 1 and obs.unit is not None):
                shown = f"{recorded or shown} (= {_num(declared)} {own[2]})"
            scales = sorted({s.src.text for s in self.c.facts[fact].scales})
            extra = (
                f"; a value in {' or '.join(scales)} labelled {own[2]}?"
                if scales and recorded is None and obs.unit is not None
                else ""
            )
            self.problem(
                fact,
                f"{shown} is outside the plausible range the protocol declares for {fact} "
                f"({_num(own[0])}..{_num(own[1])}{' ' + own[2] if own[2] else ''}){extra}",
            )
            return False
        for code in self.c.bindings.get(fact, []):
            row = PLAUSIBLE.get(code.value) if code.system == "loinc" else None
            if row is None:
                continue
            if row.unit and obs.unit is not None:
                molar = self.c.facts[fact].molar_mass if fact in self.c.facts else None
                kk = conversion_factor(obs.unit, parse_unit(row.unit), molar)
                if kk is None:
                    continue
                v = obs.value * kk
            elif row.unit or obs.unit is not None:
                continue
            else:
                v = obs.value
            if all_below(v, row.low) or all_above(v, row.high):
                self.problem(
                    fact,
                    f"{shown} is beyond physiological plausibility for LOINC {code.value} "
                    f"({_num(row.low)} to {_num(row.high)} {row.unit}; {row.source})",
                )
                return False
            break
        return True

    def unit(self, fact: str, text: str, want: Unit | None = None) -> Unit | None:
        """A unit as written or as a UCUM code (FHIR's `valueQuantity.code`), for a fact
        in `want`: one unit system with criteria files (units.parse_unit, ucum.read_unit)."""
        try:
            return read_unit(text, want)
        except UnitError as exc:
            self.problem(fact, f"{exc.message}{' (' + exc.hint + ')' if exc.hint else ''}")
            return None

    # ------------------------------------------------------------------ choosing


def _span(v: Fraction | Bound) -> tuple[Fraction | None, Fraction | None]:
    """(lowest, highest) value a blood-pressure part allows (None: unbounded)."""
    if isinstance(v, Bound):
        return (v.value, None) if v.comparator in (">", ">=") else (None, v.value)
    return v, v


def _surely_above(d: Fraction | Bound, s: Fraction | Bound) -> bool:
    """Whether every value the diastolic allows is above every value the systolic does."""
    low, high = _span(d)[0], _span(s)[1]
    if low is None or high is None:
        return False
    open_side = (isinstance(d, Bound) and d.comparator == ">") or (
        isinstance(s, Bound) and s.comparator == "<"
    )
    return low > high or (low == high and open_side)


def _all_negative(v: Fraction | Bound) -> bool:
    """Whether every value a part allows is below zero ("-5", "< 0")."""
    high = _span(v)[1]
    strict = isinstance(v, Bound) and v.comparator == "<"
    return high is not None and (high < 0 or (high == 0 and strict))


def _times(v: Fraction | Bound, k: Fraction | None) -> Fraction | Bound:
    assert k is not None and k > 0  # checked: a unit of pressure
    return Bound(v.comparator, v.value * k) if isinstance(v, Bound) else v * k


def _num(x: Fraction) -> str:
    return _decimal(x)


def declared_range(checked: CheckResult, fact: str) -> tuple[Fraction, Fraction, str] | None:
    """The fact's own `plausible LOW..HIGH` as (low, high, unit) in its declared unit
    ("" for a plain number), or None when it declares none (the checker has refused a
    range in another dimension or with no unit: such a protocol is never run)."""
    info = checked.facts.get(fact)
    opt = info.node.option("plausible") if info is not None else None
    if info is None or opt is None or opt.quantity is None or opt.high is None:
        return None
    t = info.type
    if isinstance(t, QuantT):
        return _in_unit(
            (opt.quantity.value, opt.quantity.unit, opt.high.value, opt.high.unit),
            t.unit.text,
            info.molar_mass,
        )
    if opt.quantity.unit or opt.high.unit:
        return None
    return opt.quantity.value, opt.high.value, ""


@lru_cache(maxsize=256)
def _in_unit(
    ends: tuple[Fraction, str, Fraction, str], unit: str, molar: Fraction | None
) -> tuple[Fraction, Fraction, str] | None:
    want = parse_unit(unit)
    out = []
    for value, text in ((ends[0], ends[1]), (ends[2], ends[3])):
        if not text:
            return None
        k = conversion_factor(parse_unit(text), want, molar)
        if k is None:
            return None
        out.append(value * k)
    return out[0], out[1], unit


def _as_substance(dims: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    """dims with mass read as amount of substance: equal for mg/dL and mmol/L alone."""
    return tuple(sorted(("[substance]" if d == "[mass]" else d, k) for d, k in dims))
