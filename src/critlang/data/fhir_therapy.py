"""FHIR R4 therapies -> items of a list fact: when each began and ended.

- `began(kind, r, birth) -> Span | None`: when a MedicationRequest (authoredOn),
  MedicationStatement / MedicationAdministration (effective[x]) or Procedure
  (performed[x]) began, from any choice type; raises `Unusable` when it cannot be placed.
- `therapy_dates(kind, r) -> (start, end)`: the dates as written (an end not recorded is
  None; a dateTime is both the start and the end); raises `Unusable` when they cannot be
  read (a dispenseRequest with a modifierExtension).
- `therapy_item(kind, r, member, as_of) -> (item, problem | None)`: the item
  `{"kind", "start", "end"}`, where a status saying the exposure goes on makes the end
  "ongoing" (docs/patients.md), and the diagnostic when the record contradicts itself.

Rules and R4 sources: docs/fhir.md, "Therapies and procedures".
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .fhir_decode import Resource
from .fhir_events import Span, event_span, when
from .fhir_observation import Unusable
from .fhir_status import modifier_unread
from .values import When, parse_when

# statuses saying the exposure has not ended: medication-statement-status active ("The
# medication is still being taken"), medicationrequest-status active (the prescription
# is actionable), event-status in-progress ("The event is currently occurring"). on-hold
# is neither: the exposure is halted, its end unknown.
ONGOING = {
    "Procedure": frozenset({"in-progress"}),
    "MedicationAdministration": frozenset({"in-progress"}),
    "MedicationRequest": frozenset({"active"}),
    "MedicationStatement": frozenset({"active"}),
}


def began(kind: str, r: Resource, birth: When | None) -> Span | None:
    """When a therapy began, from any choice type of its time element."""
    if kind == "MedicationRequest":
        if r.authoredOn is None:
            return None
        w = when("authoredOn", r.authoredOn)
        return Span(w.first, w.last, w.text)
    return event_span(r, "performed" if kind == "Procedure" else "effective", birth)


def therapy_dates(kind: str, r: Resource) -> tuple[str | None, str | None]:
    """(start, end) as written; an end not recorded is None (the caller reads the status).
    A dateTime (effectiveDateTime, performedDateTime) is a moment of exposure: both."""
    start, end = _recorded(kind, r)
    if end is None and kind != "MedicationRequest":
        moment = r.performedDateTime if kind == "Procedure" else r.effectiveDateTime
        if moment is not None and start == moment:
            return start, moment
    return start, end


def _recorded(kind: str, r: Resource) -> tuple[str | None, str | None]:
    """(start, end) where the end is only an end the resource records as one."""
    if kind == "MedicationRequest":
        dispense = r.dispenseRequest
        if dispense is not None and dispense.modifierExtension:
            # a BackboneElement's modifierExtension (R4 extensibility.html) may change
            # what its validityPeriod means: the end cannot be read
            raise Unusable(f"dispenseRequest {modifier_unread(dispense)}: its end cannot be read")
        # MedicationRequest.dispenseRequest.validityPeriod: "the validity period of a
        # prescription (stale dating the Prescription)": when it may be filled, not when
        # the drug is taken (a dispense on its last day is taken after it), so it is no
        # end of exposure (realfhir7 F4). The end of taking is not recorded: unknown
        # (dosageInstruction.timing bounds are a plan, not read).
        return r.authoredOn, None
    if kind == "Procedure":
        performed = r.performedPeriod
        if performed is not None:
            return performed.start, performed.end
        return r.performedDateTime, None
    period = r.effectivePeriod
    if period is not None:
        return period.start, period.end
    return r.effectiveDateTime, None


def therapy_item(
    kind: str, r: Resource, member: str | None, as_of: dt.date
) -> tuple[dict[str, Any], str | None]:
    """One therapy as a list item, and a diagnostic when its end cannot be read.

    With a status saying the exposure goes on (ONGOING), the end is "ongoing" when none
    is recorded, also beside an effectiveDateTime / performedDateTime (the time it was
    taken, not its end); a recorded end after the screening date stays (the exposure
    went on through it). A recorded end on or before the screening date contradicts the
    status ("still being taken" yet ended): the end is unknown, with the diagnostic,
    never silently ended. Any other status: the dates as written (therapy_dates).
    """
    if r.status not in ONGOING.get(kind, ()):
        start, end = therapy_dates(kind, r)
        return {"kind": member, "start": start, "end": end}, None
    start, end = _recorded(kind, r)
    if kind == "MedicationRequest":
        return _active_order(r, member, start, as_of)
    if end is None:
        return {"kind": member, "start": start, "end": "ongoing"}, None
    try:
        last = parse_when(end).last
    except ValueError:
        return {"kind": member, "start": start, "end": end}, None  # the reader says why
    if last > as_of:
        return {"kind": member, "start": start, "end": end}, None
    element = "performedPeriod.end" if kind == "Procedure" else "effectivePeriod.end"
    why = (
        f"status {r.status!r} says it goes on, but {element} {str(end)[:40]} is on or before "
        f"the screening date {as_of.isoformat()}: the record contradicts itself, so its end "
        "is unknown"
    )
    return {"kind": member, "start": start, "end": None}, why


def _active_order(
    r: Resource, member: str | None, start: str | None, as_of: dt.date
) -> tuple[dict[str, Any], str | None]:
    """An active order (medicationrequest-status active: "actionable, but not all actions
    that are implied by it have occurred yet"): ongoing on the screening date, unless the
    prescription could no longer be filled by then (validityPeriod.end on or before it):
    whether the drug is still taken is then unknown, with the diagnostic."""
    dispense = r.dispenseRequest
    validity = dispense.validityPeriod if dispense else None
    stale = validity.end if validity else None
    if stale is not None:
        try:
            last = parse_when(stale).last
        except ValueError:
            last = None
        if last is None or last <= as_of:
            why = (
                f"status 'active', but the prescription could be filled only until "
                f"{str(stale)[:40]} (dispenseRequest.validityPeriod.end), on or before the "
                f"screening date {as_of.isoformat()}: whether it is still taken is unknown"
            )
            if last is None:
                why = f"dispenseRequest.validityPeriod.end {str(stale)[:40]!r} is not a date"
            return {"kind": member, "start": start, "end": None}, why
    return {"kind": member, "start": start, "end": "ongoing"}, None
