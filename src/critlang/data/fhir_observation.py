"""FHIR R4 Observation values -> entries of critlang's native record (docs/patients.md).

`observation_entry(r, holder, t, label) -> dict` reads one Observation (or one of its
components, `holder`) for a fact of type `t`: `{"source", "date", "value", "unit",
"comparator", "status", "reference_range"}` as the record reader takes them, or raises
`Unusable` saying why the value cannot be used (a per-fact diagnostic, the fact stays
unknown). Rules and their R4 sources: docs/fhir.md, Observation.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from ..typesys import BoolT, EnumT, IntT, NumberT, PressureT, QuantT, ScaleT
from .fhir_decode import Component, Concept, Resource

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
# LOINC components of the blood pressure panel (85354-9): a `blood pressure` fact
BP_PARTS = {"8480-6": "systolic", "8462-4": "diastolic"}
# R4 observation-status: what a value with this status is worth
OBSERVATION_USED = frozenset({"final", "amended", "corrected"})
OBSERVATION_MARKED = frozenset({"preliminary"})
COMPARATORS = frozenset({"<", "<=", ">=", ">"})  # R4 quantity-comparator
# a valueString that is nothing but a comparator, a number and (optionally) a unit
_CENSORED = re.compile(r"\s*(<=|>=|<|>)\s*([0-9]+(?:\.[0-9]+)?)(?:\s+(\S+)|([^\s0-9.]\S*))?\s*")


class Unusable(Exception):
    """A resource's value cannot be used for a fact; the message says why."""


class NoValue(Unusable):
    """The resource says there is no value (dataAbsentReason): nothing was measured, so
    it hides no newer value (unlike a value that cannot be read)."""


def json_number(value: Any, element: str) -> Any:
    """A decimal/integer element's value, which R4 JSON gives as a JSON number
    (json.html: "represented as a JSON number"); a string ("5.0") is malformed."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction)):
        raise Unusable(
            f"{element} {str(value)[:40]!r} is not a number: R4 JSON gives it as a JSON "
            "number (json.html)"
        )
    return value


def first_code(concept: Concept | None) -> str | None:
    """The first code of a CodeableConcept's codings, or None."""
    if concept is not None and concept.coding:
        for c in concept.coding:
            if c.code is not None:
                return c.code
    return None


def observation_entry(
    r: Resource, holder: Resource | Component, t: Any, label: str
) -> dict[str, Any]:
    """r's value (or its component `holder`'s) for a fact of type t; raises Unusable."""
    entry: dict[str, Any] = {"source": label}
    when = observation_time(r)
    if when:
        entry["date"] = when
    if r.status in OBSERVATION_MARKED:
        entry["status"] = r.status
    if holder.dataAbsentReason is not None:
        reason = first_code(holder.dataAbsentReason) or holder.dataAbsentReason.text
        raise NoValue(f"no value (dataAbsentReason {reason!r})")
    if isinstance(t, PressureT):
        return _pressure(holder, entry)
    if isinstance(t, (QuantT, NumberT)):
        vq = holder.valueQuantity
        if vq is not None:
            if vq.value is None:
                raise Unusable("valueQuantity has no value")
            entry["value"] = json_number(vq.value, "valueQuantity.value")
            if vq.comparator is not None:
                # Quantity.comparator is a modifier: "< 2" is not 2 (R4 quantity-comparator)
                if vq.comparator not in COMPARATORS:
                    raise Unusable(f"comparator {vq.comparator!r} is not one of <, <=, >=, >")
                entry["comparator"] = vq.comparator
            unit = vq.code if vq.system in (UCUM, None) else None
            unit = unit or vq.unit
            if unit:  # a number's unit too: 13.5 s filed under INR is no INR (reader.py)
                entry["unit"] = unit
            rr = _reference_range(holder, unit)
            if rr:
                entry["reference_range"] = rr
            return entry
        if holder.valueInteger is not None:
            value = json_number(holder.valueInteger, "valueInteger")
            if not isinstance(value, int):
                raise Unusable(f"valueInteger {value!r} is not an integer")
            entry["value"] = value
            return entry
        if holder.valueString is not None:
            text = holder.valueString
            m = _CENSORED.fullmatch(text) if isinstance(text, str) else None
            if m is None:
                raise Unusable(
                    f"valueString {text!r} is text, not a value critlang reads "
                    "(only a comparator, a number and a unit, like '<0.5 mg/dL')"
                )
            entry["comparator"], entry["value"] = m.group(1), m.group(2)
            unit_text = m.group(3) or m.group(4)
            if unit_text and isinstance(t, QuantT):
                entry["unit"] = unit_text
            return entry
        raise Unusable("no valueQuantity")
    if isinstance(t, IntT):
        return _integer(holder, entry, t)
    if isinstance(t, (EnumT, ScaleT)) and isinstance(holder.valueString, str):
        # a category written as its name ("III"); the record reader checks it is one of
        # the fact's members, with a did-you-mean (coded answers are not mapped: fhir.md)
        entry["value"] = holder.valueString
        return entry
    if isinstance(t, BoolT):
        if isinstance(holder.valueBoolean, bool):
            entry["value"] = holder.valueBoolean
            return entry
    raise Unusable(f"no value of the kind {t.describe()}{_offered(holder)}")


# a count or a score: no unit, UCUM "1", or an annotation only ("{score}": UCUM 4.5.1,
# annotations are unity)
_UNITLESS = re.compile(r"1?|\{[^{}]*\}")


def _integer(holder: Resource | Component, entry: dict[str, Any], t: IntT) -> dict[str, Any]:
    """A whole-number fact (ECOG, a count): valueInteger (R4 Observation.value[x]), or a
    valueQuantity with no unit, or a unitless one ("{score}"); the record reader checks it
    is whole and inside the declared range."""
    if holder.valueInteger is not None:
        value = json_number(holder.valueInteger, "valueInteger")
        if not isinstance(value, int):
            raise Unusable(f"valueInteger {value!r} is not an integer")
        entry["value"] = value
        return entry
    vq = holder.valueQuantity
    if vq is not None:
        if vq.value is None:
            raise Unusable("valueQuantity has no value")
        value = json_number(vq.value, "valueQuantity.value")
        if vq.comparator is not None:
            # a censored score ("< 2") is no whole number (R4 quantity-comparator, a modifier)
            raise Unusable(f"valueQuantity is censored ({vq.comparator!r} {value})")
        unit = vq.code if vq.system in (UCUM, None) and vq.code is not None else vq.unit
        if unit is not None and not (isinstance(unit, str) and _UNITLESS.fullmatch(unit)):
            raise Unusable(f"valueQuantity in {str(unit)[:40]!r} is not a count or a score")
        entry["value"] = value
        return entry
    raise Unusable(f"no value of the kind {t.describe()}{_offered(holder)}")


def _offered(holder: Resource | Component) -> str:
    """What the resource gave instead, so the diagnostic says why it is not read."""
    coded = getattr(holder, "valueCodeableConcept_", None) or getattr(
        holder, "valueCodeableConcept", None
    )
    if coded:  # msgspec.Raw: empty when the element is absent
        return " (a coded answer, valueCodeableConcept, is not read for this kind of fact)"
    if holder.valueString is not None:
        return " (valueString is text)"
    return ""


def _pressure(holder: Resource | Component, entry: dict[str, Any]) -> dict[str, Any]:
    """A blood pressure panel: the components 8480-6 (systolic) and 8462-4 (diastolic),
    each a valueQuantity in UCUM mm[Hg] (FHIR R4 vital signs profile, bp)."""
    units = set()
    for comp in getattr(holder, "component", None) or []:
        if comp.modifierExtension:
            # BackboneElement.modifierExtension (R4 extensibility.html): it may change
            # what this part means, so the panel cannot be read
            raise Unusable("a component has a modifierExtension critlang cannot read")
        codes = [c.code for c in (comp.code.coding or []) if c.system in (LOINC, None)]
        part = next((BP_PARTS[c] for c in codes if c in BP_PARTS), None)
        vq = comp.valueQuantity
        if part is None or vq is None or vq.value is None:
            continue
        if vq.comparator is not None:
            # a censored part ("> 170", Quantity.comparator, a modifier) is no exact value:
            # that part stays unknown, and the reader says so (breaker7 F13)
            unit = vq.code if vq.system in (UCUM, None) and vq.code else vq.unit
            shown = f"{vq.comparator} {vq.value} {unit or ''}".strip()
            entry.setdefault("censored", []).append(f"{part} {shown[:40]}")
            continue
        json_number(vq.value, f"{part} valueQuantity.value")
        if part in entry and entry[part] != vq.value:
            # Observation.component: one systolic, one diastolic (vs-2 profile slices
            # are 1..1); two that disagree are a conflict, never the last by file order
            raise Unusable(f"two {part} components disagree ({entry[part]}, {vq.value})")
        entry[part] = vq.value
        unit = vq.code if vq.system in (UCUM, None) else None
        if unit or vq.unit:
            units.add(unit or vq.unit)
    if "systolic" not in entry and "diastolic" not in entry:
        raise Unusable("no systolic (8480-6) or diastolic (8462-4) component")
    if len(units) != 1:
        raise Unusable("the components' units are missing or differ")
    entry["unit"] = units.pop()
    return entry


def observation_time(r: Resource) -> str | None:
    """effective[x] as written (R4 Observation.effective[x]); a period counts at its end."""
    if r.effectiveDateTime:
        return r.effectiveDateTime
    if r.effectiveInstant:
        return r.effectiveInstant
    period = r.effectivePeriod
    if period is not None:
        return period.end or period.start
    return None


# R4 referencerange-meaning (Observation.referenceRange.type, extensible): "normal" is
# the normal range; the others (recommended, treatment, therapeutic, pre/post, phases of
# the cycle) are not what `x ULN` or `within normal range` mean
RANGE_MEANING = "http://terminology.hl7.org/CodeSystem/referencerange-meaning"
# appliesTo codes critlang can match against the patient's administrative sex
# (Patient.gender): SNOMED CT 248152002 |Female|, 248153007 |Male|; R4 administrative-
# gender; v3 AdministrativeGender F / M
SEX_CODES = {
    ("http://snomed.info/sct", "248152002"): "female",
    ("http://snomed.info/sct", "248153007"): "male",
    ("http://hl7.org/fhir/administrative-gender", "female"): "female",
    ("http://hl7.org/fhir/administrative-gender", "male"): "male",
    ("http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender", "F"): "female",
    ("http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender", "M"): "male",
}


def _reference_range(holder: Resource | Component, unit: Any) -> Any:
    """Every referenceRange with a limit, as the native record's `reference_range` (one
    object, or a list when there are several): the limits with what says to whom each
    applies (type, appliesTo, age), which the record reader weighs (reader_quantity:
    array order never decides). A range with only `text` gives no limit and is left out."""
    out: list[dict[str, Any]] = []
    for rr in holder.referenceRange or ():
        one: dict[str, Any] = {}
        units: set[Any] = set()
        for key in ("low", "high"):
            q = getattr(rr, key)
            if q is not None and q.value is not None:
                one[key] = json_number(q.value, f"referenceRange.{key}.value")
                units.add(q.code or q.unit)
        if not one:
            continue
        # R4 SimpleQuantity: a limit with neither code nor unit is unitless (UCUM "1"),
        # never taken in the value's unit (40 beside 2.2 ukat/L is not 40 ukat/L:
        # breaker7 F10); the reader refuses it for a value that has a unit
        if units == {None}:
            one["unitless"] = True
        elif None in units or len(units) > 1:
            one["units_differ"] = sorted(str(u) for u in units)
        else:
            one["unit"] = units.pop()
        if rr.type is not None:
            one["type"] = _meaning(rr.type)
        if rr.appliesTo:
            one["applies_to"] = [_population(c) for c in rr.appliesTo]
        if rr.age is not None:
            age: dict[str, Any] = {}
            for key in ("low", "high"):
                q = getattr(rr.age, key)
                if q is not None and q.value is not None:
                    age[key] = {"value": q.value, "unit": q.code or q.unit}
            one["age"] = age
        out.append(one)
    if not out:
        return None
    return out[0] if len(out) == 1 else out


def _meaning(concept: Concept) -> str:
    """referenceRange.type as the record says it: a referencerange-meaning code, else
    "?" and what was written (critlang cannot tell whether it is the normal range)."""
    for c in concept.coding or ():
        if c.system in (RANGE_MEANING, None) and c.code:
            return c.code
    first = next((c for c in concept.coding or () if c.code), None)
    return "?" + (f"{first.system}|{first.code}" if first else str(concept.text or ""))


def _population(concept: Concept) -> str:
    """One referenceRange.appliesTo: "female"/"male" when a coding names a sex critlang
    can match, else "?" and what was written (it cannot tell whether it applies)."""
    for c in concept.coding or ():
        sex = SEX_CODES.get((c.system or "", c.code or ""))
        if sex is not None:
            return sex
    first = next((c for c in concept.coding or () if c.code), None)
    return "?" + (f"{first.system}|{first.code}" if first else str(concept.text or ""))


def trusted_time(r: Resource) -> Any:
    """An unusable Observation's time for the may-be-newest rule, or None (undated: it may
    be the newest) when a date element is named twice: which one holds is file order."""
    if r.malformed is not None and any(
        f"'{k}" in r.malformed for k in ("effective", "start", "end", "issued")
    ):
        return None
    return observation_time(r)
