"""FHIR R4 Period invariant per-1, one rule for every Period critlang reads.

`reversed_period(element, start, end) -> str | None` says why a Period whose end lies
before its start cannot date anything (None when it does not, or when either side is
not a date: the caller's own reading reports that). R4 datatypes.html#Period, per-1:
"If present, start SHALL have a lower value than end" (expression `start <= end`).
Such a Period is self-contradicting: neither side can be trusted (a swapped pair, or a
typo in either), so the resource it dates is unusable for dating and, for a value, may
be the newest (breaker8 F16: an HbA1c dated by the end of a reversed period was ranked
older than it may be, and an older value decided). Read at: Observation.effectivePeriod,
Condition.onsetPeriod and .abatementPeriod, Procedure.performedPeriod,
MedicationStatement/MedicationAdministration.effectivePeriod,
MedicationRequest.dispenseRequest.validityPeriod and
dosageInstruction.timing.repeat.boundsPeriod.
"""

from __future__ import annotations

from typing import Any

from .values import parse_when


def reversed_period(element: str, start: Any, end: Any) -> str | None:
    """Why `element` (a Period) breaks per-1, or None.

    Surely before only: two instants are compared as instants; otherwise by calendar
    day as written (a partial date spans its days), so `2024-05` and `2024-05-20`, which
    FHIRPath cannot order, are not a breach."""
    if start is None or end is None:
        return None
    try:
        first, last = parse_when(start), parse_when(end)
    except ValueError:
        return None
    if first.instant is not None and last.instant is not None:
        before = last.instant < first.instant
    else:
        before = last.last < first.first
    if not before:
        return None
    return (
        f"{element} ends ({last.text}) before it starts ({first.text}) (R4 per-1: start "
        "SHALL have a lower value than end), so it dates nothing"
    )
