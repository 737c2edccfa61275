"""Choice elements ([x]) given in two types at once: R4 formats.html#choice."""

from __future__ import annotations

from typing import Any

# choice elements ([x]) of the resources critlang reads, and the R4 datatype names that
# end their JSON names (formats.html#choice: valueQuantity, effectivePeriod, ...)
CHOICES = ("value", "effective", "onset", "abatement", "performed", "medication", "deceased")
_TYPES = frozenset(
    [
        "Quantity",
        "CodeableConcept",
        "String",
        "Boolean",
        "Integer",
        "Decimal",
        "Range",
        "Ratio",
        "SampledData",
        "Time",
        "DateTime",
        "Period",
        "Timing",
        "Instant",
        "Age",
        "Reference",
        "Duration",
        "Attachment",
        "Coding",
        "Uri",
    ]
)


_CHOICE_NAMES = {prefix + t: prefix for prefix in CHOICES for t in _TYPES}


def two_choices(item: Any) -> str | None:
    """Why a resource is malformed when a choice element [x] is given in two types at
    once (`valueQuantity` and `valueString`), in itself or in one of its components:
    R4 formats.html#choice, json.html ("only one of the choice types may be present");
    reading either one would be file-order or guesswork. None when there is none."""
    if not isinstance(item, dict):
        return None
    parts = [("", item)]
    if isinstance(item.get("component"), list):
        parts += [(f"component {i + 1}: ", c) for i, c in enumerate(item["component"])]
    for where, part in parts:
        if not isinstance(part, dict):
            continue
        # one pass over the members (this runs for every resource a protocol uses)
        found = [k for k in part if k in _CHOICE_NAMES and part[k] is not None]
        if len(found) < 2 or len({_CHOICE_NAMES[k] for k in found}) == len(found):
            continue  # (effectiveDateTime and valueQuantity: two elements, once each)
        for prefix in CHOICES:
            names = sorted(k for k in found if _CHOICE_NAMES[k] == prefix)
            if len(names) > 1:
                return (
                    f"{where}{prefix}[x] is given {len(names)} times ({', '.join(names)}); "
                    "R4 allows one choice type"
                )
    return None


# Modifier elements (isModifier) of earlier FHIR versions that R4 replaced by a status
# code. In an R4 resource they are unknown elements (R4 json.html), and what they say
# ("taken": "n", "notGiven": true) cannot be read as R4; skipping them would read a drug
# never taken as taken. STU3: MedicationStatement.taken (y | n | unk | na),
# MedicationAdministration.notGiven, Procedure.notDone, Immunization.notGiven; DSTU2:
# MedicationStatement.wasNotTaken, MedicationAdministration.wasNotGiven,
# Procedure.notPerformed, Immunization.wasNotGiven. R4: status not-taken / not-done.
FORMER_MODIFIERS = {
    "MedicationStatement": ("taken", "wasNotTaken", "notTaken"),
    "MedicationAdministration": ("notGiven", "wasNotGiven"),
    "Procedure": ("notDone", "notPerformed"),
    "Immunization": ("notGiven", "wasNotGiven"),
}
# Patient.deceased[x] is deceasedBoolean | deceasedDateTime (R4 patient.html): any other
# `deceased...` member says something about death that R4 gives no meaning to, and a
# patient whose death cannot be read is never "alive" in silence (breaker8 F3)
DECEASED = ("deceasedBoolean", "deceasedDateTime")


def foreign_element(item: Any) -> str | None:
    """Why a resource is unusable when it gives a member R4 does not define whose meaning
    would change the reading (a former modifier element, a deceased[x] of no R4 type);
    None otherwise. Other unknown members are ignored, as R4 readers may."""
    if not isinstance(item, dict):
        return None
    rt = item.get("resourceType")
    for name in FORMER_MODIFIERS.get(rt, ()) if isinstance(rt, str) else ():
        if name in item:
            shown = str(item[name])[:20]
            return (
                f"{name!r} ({shown}) is not an R4 element: it is a modifier element of an "
                f"earlier FHIR version ({rt}.{name}) that R4 replaced by status, so what it "
                "says cannot be read as R4"
            )
    if rt == "Patient":
        for k in item:
            if isinstance(k, str) and k.startswith("deceased") and k not in DECEASED:
                return (
                    f"{k!r} is not an R4 element: Patient.deceased[x] is deceasedBoolean or "
                    "deceasedDateTime"
                )
    return None
