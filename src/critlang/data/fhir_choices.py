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
