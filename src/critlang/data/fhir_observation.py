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
from .fhir_period import reversed_period
from .fhir_systems import LOINC_URIS

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
        if _has_value(holder):
            # R4 obs-6: "dataAbsentReason SHALL only be present if Observation.value[x] is
            # not present"; both: it contradicts itself (and may be the newest value)
            raise Unusable(f"has a value and a dataAbsentReason {reason!r} (R4 obs-6)")
        raise NoValue(f"no value (dataAbsentReason {reason!r})")
    if isinstance(t, PressureT):
        return _pressure(holder, entry)
    if isinstance(t, (QuantT, NumberT)):
        vq = holder.valueQuantity
        if vq is not None:
            entry.update(quantity_fields(vq, "valueQuantity"))
            rr = _reference_range(holder, entry.get("unit"))
            if rr:
                entry["reference_range"] = rr
            return entry
        if holder.valueInteger is not None:
            value = json_number(holder.valueInteger, "valueInteger")
            if not isinstance(value, int):
                raise Unusable(f"valueInteger {value!r} is not an integer")
            entry["value"] = value
            # a score given as an integer (Glasgow Coma Scale 9269-2, ECOG 89247-1) has
            # its referenceRange as a valueQuantity has (R4 Observation.referenceRange
            # applies to any value[x]): `gcs <= 1.5 x ULN` reads it
            rr = _reference_range(holder, None)
            if rr:
                entry["reference_range"] = rr
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
            rr = _reference_range(holder, entry.get("unit"))
            if rr:
                entry["reference_range"] = rr
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
    """A blood pressure panel (85354-9, or Synthea's 55284-4): the components 8480-6
    (systolic) and 8462-4 (diastolic), each read as `part_value` reads any quantity
    (FHIR R4 vital signs profile, bp): `entry["systolic"] = {"value", "unit",
    "comparator"}`, a part that cannot be read said in `entry["unread_parts"]`.

    A part is named by its LOINC code only, never by its place in the array: a component
    with no code, or with a code of neither part, is neither (a note says so when it has
    a value), and a part with dataAbsentReason is unknown; neither shifts what the other
    component means (Observation.component.code 1..1, .dataAbsentReason)."""
    found: dict[str, list[Any]] = {}
    notes: list[str] = []
    own = _part_code(holder.code)
    if own is not None and not getattr(holder, "component", None):
        # a separate systolic (8480-6) or diastolic (8462-4) Observation bound to the
        # fact: that part alone (pair_parts joins the two of one instant)
        found[own] = [part_reading(holder, own)]
    for comp in getattr(holder, "component", None) or []:
        if comp.modifierExtension:
            # BackboneElement.modifierExtension (R4 extensibility.html): it may change
            # what this part means, so the panel cannot be read
            raise Unusable("a component has a modifierExtension critlang cannot read")
        part = _part_code(comp.code)
        if part is None:
            codes = _loinc(comp.code)
            if len({BP_PARTS[c] for c in codes if c in BP_PARTS}) > 1:
                # one CodeableConcept naming both parts (R4: codings are one meaning)
                notes.append("a component coded both systolic and diastolic is neither")
            elif comp.valueQuantity is not None and comp.valueQuantity.value is not None:
                which = "no code" if not codes else f"code {codes[0]}"
                notes.append(f"a component with {which} is neither part: not read")
            continue
        found.setdefault(part, []).append(part_reading(comp, part))
    for part in ("systolic", "diastolic"):
        readings = found.get(part, [])
        if not readings:
            continue
        if any(r != readings[0] for r in readings[1:]):
            # Observation.component: one systolic, one diastolic (vs-2 profile slices
            # are 1..1); two that disagree are a conflict, never the last by file order
            shown = ", ".join(
                sorted(str(r.get("value")) if isinstance(r, dict) else r for r in readings)
            )
            raise Unusable(f"two {part} components disagree ({shown})")
        if isinstance(readings[0], dict):
            entry[part] = readings[0]
        else:
            notes.append(f"{part} {readings[0]}")
    if "systolic" not in entry and "diastolic" not in entry:
        if notes and all("has no value (dataAbsentReason" in x for x in notes):
            raise NoValue("; ".join(notes))  # nothing measured: hides no newer value
        raise Unusable("; ".join(notes) or "no systolic (8480-6) or diastolic (8462-4) component")
    if notes:
        entry["unread_parts"] = notes
    return entry


def _loinc(concept: Concept | None) -> list[str]:
    if concept is None:
        return []
    return [c.code for c in concept.coding or [] if c.system in LOINC_URIS and c.code]


def _part_code(concept: Concept | None) -> str | None:
    """ "systolic" / "diastolic" when the concept's LOINC codings name exactly that part."""
    named = {BP_PARTS[c] for c in _loinc(concept) if c in BP_PARTS}
    return named.pop() if len(named) == 1 else None


def _has_value(holder: Resource | Component) -> bool:
    return (
        holder.valueQuantity is not None
        or holder.valueInteger is not None
        or holder.valueBoolean is not None
        or holder.valueString is not None
    )


def pair_parts(facts: dict[str, Any], pressures: list[str]) -> None:
    """In each blood-pressure fact's entries, a separate systolic and a separate diastolic
    Observation of one instant (the same effective[x] text, the same status) joined into
    one pair, as a panel would hold them; any other grouping is left as it is (two
    systolics at one instant stay two candidates: a conflict unless both decide alike)."""
    for fact in pressures:
        if isinstance(facts.get(fact), list):
            facts[fact] = _paired(facts[fact])


def _paired(entries: list[Any]) -> list[Any]:
    groups: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for e in entries:
        if isinstance(e, dict) and e.get("date") and "unread_parts" not in e:
            sides = [k for k in ("systolic", "diastolic") if k in e]
            if len(sides) == 1:
                groups.setdefault((e["date"], e.get("status")), []).append(e)
    out = list(entries)
    for group in groups.values():
        s = [e for e in group if "systolic" in e]
        d = [e for e in group if "diastolic" in e]
        if len(s) == 1 and len(d) == 1:
            joined = {**s[0], "diastolic": d[0]["diastolic"]}
            joined["source"] = " + ".join(sorted((str(s[0]["source"]), str(d[0]["source"]))))
            out = [e for e in out if e is not s[0] and e is not d[0]] + [joined]
    return out


def part_reading(comp: Resource | Component, part: str) -> dict[str, Any] | str:
    """One blood-pressure component as `{"value", "unit", "comparator"}` (the rules of a
    top-level valueQuantity: quantity_fields), or why it gives no value (a string)."""
    vq = comp.valueQuantity
    if comp.dataAbsentReason is not None:
        reason = first_code(comp.dataAbsentReason) or comp.dataAbsentReason.text
        if vq is not None:
            # Observation.component.dataAbsentReason: "why the expected value ... is
            # missing"; beside a value the component contradicts itself (R4 obs-6)
            return f"has a value and a dataAbsentReason {reason!r}"
        return f"has no value (dataAbsentReason {reason!r})"
    if vq is None:
        return "has no valueQuantity"
    try:
        return quantity_fields(vq, f"{part} valueQuantity")
    except Unusable as exc:
        return str(exc)


def quantity_fields(vq: Any, element: str) -> dict[str, Any]:
    """A valueQuantity's value, comparator and unit (UCUM `code`, else `unit`), the one
    rule for an Observation's own value and a component's; raises Unusable."""
    if vq.value is None:
        raise Unusable(f"{element} has no value")
    out: dict[str, Any] = {"value": json_number(vq.value, f"{element}.value")}
    if vq.comparator is not None:
        # Quantity.comparator is a modifier: "< 2" is not 2 (R4 quantity-comparator)
        if vq.comparator not in COMPARATORS:
            raise Unusable(f"comparator {vq.comparator!r} is not one of <, <=, >=, >")
        out["comparator"] = vq.comparator
    unit = vq.code if vq.system in (UCUM, None) else None
    unit = unit or vq.unit
    if unit:  # a number's unit too: 13.5 s filed under INR is no INR (reader.py)
        out["unit"] = unit
    return out


def observation_time(r: Resource) -> str | None:
    """effective[x] as written (R4 Observation.effective[x]); a period counts at its end.
    A period whose end is before its start (R4 per-1) dates nothing: Unusable."""
    if r.effectiveDateTime:
        return r.effectiveDateTime
    if r.effectiveInstant:
        return r.effectiveInstant
    period = r.effectivePeriod
    if period is not None:
        why = reversed_period("effectivePeriod", period.start, period.end)
        if why is not None:
            raise Unusable(why)
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
    try:
        return observation_time(r)
    except Unusable:  # a reversed effectivePeriod (per-1): undated, it may be the newest
        return None
