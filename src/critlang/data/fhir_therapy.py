"""FHIR R4 therapies -> items of a list fact: when each began and ended.

- `began(kind, r, birth) -> Span | None`: when a MedicationRequest (authoredOn),
  MedicationStatement / MedicationAdministration (effective[x]) or Procedure
  (performed[x]) began, from any choice type; raises `Unusable` when it cannot be placed.
- `therapy_dates(kind, r) -> (start, end)`: the dates as written (an end not recorded is
  None; a dateTime is both the start and the end); raises `Unusable` when they cannot be
  read (a dispenseRequest with a modifierExtension).
- `planned_end(r) -> (end, why)`: a MedicationRequest's planned end of taking the drug,
  from dosageInstruction[].timing.repeat.bounds[x] (the latest of its lines), or why it
  cannot be read.
- `therapy_item(kind, r, member, as_of) -> (item, problem | None)`: the item
  `{"kind", "start", "end"}`, where a status saying the exposure goes on makes the end
  "ongoing" (docs/patients.md), and the diagnostic when the record contradicts itself.

Rules and R4 sources: docs/fhir.md, "Therapies and procedures".
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from typing import Any

import msgspec

from .fhir_decode import Resource
from .fhir_events import Span, event_span, when
from .fhir_observation import UCUM, Unusable
from .fhir_period import reversed_period
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
        # end of exposure (realfhir7 F4). The planned end of taking is the dosage's
        # timing bounds (planned_end), read by status in therapy_item.
        return r.authoredOn, None
    element = "performedPeriod" if kind == "Procedure" else "effectivePeriod"
    period = r.performedPeriod if kind == "Procedure" else r.effectivePeriod
    if period is not None:
        # R4 per-1: a period that ends before it starts dates nothing (fhir_period)
        why = reversed_period(element, period.start, period.end)
        if why is not None:
            raise Unusable(why)
        return period.start, period.end
    return (r.performedDateTime if kind == "Procedure" else r.effectiveDateTime), None


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
    if kind == "MedicationRequest" and r.status in PLANNED_END:
        # an order has no end of its own: its dosage's timing bounds are the planned end
        # of taking the drug (R4 Timing.repeat.bounds[x]); an unreadable bound leaves the
        # end unknown, never "ongoing"
        end, why = planned_end(r)
        if why is not None:
            return {"kind": member, "start": r.authoredOn, "end": None}, why
        if end is not None:
            if r.status == "completed" or parse_when(end).last <= as_of:
                return {"kind": member, "start": r.authoredOn, "end": end}, None
            item, stale = _active_order(r, member, r.authoredOn, as_of)
            return ({**item, "end": end} if stale is None else item), stale
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


# medicationrequest-status codes whose order was followed to its plan: active (going on)
# and completed ("all actions that are implied by the prescription have occurred"); a
# stopped or on-hold order ended before its plan, on a day not recorded
PLANNED_END = frozenset({"active", "completed"})
# UCUM codes of Duration (R4 drt-1: "a code ... an expression of time"): seconds each,
# or calendar months for mo and a (read as look-back windows are: docs/language.md)
_SECONDS = {"s": 1, "min": 60, "h": 3600, "d": 86400, "wk": 604800}
_MONTHS = {"mo": 1, "a": 12}


def planned_end(r: Resource) -> tuple[str | None, str | None]:
    """(end, None): the planned end of taking the drug, the latest end of the order's
    dosage lines (Dosage.timing.repeat.boundsPeriod.end, or authoredOn +
    boundsDuration), as a date or dateTime; (None, None) when a line is unbounded (no
    timing bounds, a boundsPeriod with no end: R4 Period "the end ... is ongoing") or
    there is no dosage; (None, why) when a bound cannot be read."""
    try:
        lines = r.dosageInstruction
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None, "dosageInstruction is malformed: its planned end is unknown"
    if lines is None:
        return None, None
    if not isinstance(lines, list):
        return None, "dosageInstruction is not a list: its planned end is unknown"
    ends: list[tuple[dt.date, str]] = []
    for line in lines:
        try:
            end = _line_end(line, r.authoredOn)
        except ValueError as exc:
            return None, f"dosageInstruction {exc}: the planned end is unknown"
        except OverflowError:  # a bound beyond the calendar (year 9999)
            return None, "dosageInstruction gives a bound past year 9999: the end is unknown"
        if end is None:
            return None, None  # a line with no end: the order plans none
        ends.append((parse_when(end).last, end))
    return (max(ends)[1] if ends else None), None


def _line_end(line: Any, authored: str | None) -> str | None:
    """One Dosage's planned end (None: unbounded); ValueError saying why it is unreadable."""
    if not isinstance(line, dict):
        raise ValueError("holds a line that is not an object")
    if line.get("modifierExtension"):
        # BackboneElement.modifierExtension (R4 extensibility.html): it may change what
        # the line means
        raise ValueError("has a line with a modifierExtension")
    timing = line.get("timing")
    if timing is None:
        return None
    repeat = timing.get("repeat") if isinstance(timing, dict) else False
    if repeat is False or not isinstance(repeat, (dict, type(None))):
        raise ValueError("has a timing that is not an object")
    if not repeat:
        return None
    bounds = [k for k in ("boundsPeriod", "boundsDuration", "boundsRange") if k in repeat]
    if not bounds:
        return None
    if len(bounds) > 1:  # a choice element in two types (formats.html#choice)
        raise ValueError(f"gives bounds[x] {len(bounds)} times")
    value = repeat[bounds[0]]
    if bounds[0] == "boundsRange":
        # a range of possible lengths: the end is no one date
        raise ValueError("gives timing.repeat.boundsRange (a range of lengths)")
    if bounds[0] == "boundsPeriod":
        if not isinstance(value, dict):
            raise ValueError("gives a boundsPeriod that is not an object")
        end = value.get("end")
        if end is None:
            return None
        parse_when(end)  # ValueError saying why it is no date
        # R4 per-1: a bound that ends before it starts is no plan (fhir_period)
        why = reversed_period("timing.repeat.boundsPeriod", value.get("start"), end)
        if why is not None:
            raise ValueError(why)
        return str(end)
    return _after(authored, value)


def _after(authored: str | None, duration: Any) -> str:
    """authoredOn + a boundsDuration, as the calendar day it falls on (in authoredOn's own
    offset); ValueError when either cannot be read or the day is not one day."""
    if authored is None:
        raise ValueError("gives a boundsDuration but the order has no authoredOn")
    start = parse_when(authored)
    if start.first != start.last:
        raise ValueError(f"gives a boundsDuration from authoredOn {authored[:20]}, not a day")
    if not isinstance(duration, dict) or duration.get("system") not in (None, UCUM):
        raise ValueError("gives a boundsDuration that is not a UCUM Duration (drt-1)")
    code, amount = duration.get("code"), duration.get("value")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
        raise ValueError(f"gives a boundsDuration value {str(amount)[:20]!r}")
    if code in _MONTHS:
        from ..backends.runtime import add_months  # (data is imported by the back ends)

        if amount != int(amount):
            raise ValueError(f"gives a boundsDuration of {amount} {code}, not whole")
        months = int(amount) * _MONTHS[code]
        return dt.date.fromordinal(add_months(start.first.toordinal(), months)).isoformat()
    if code not in _SECONDS:
        raise ValueError(f"gives a boundsDuration in {str(code)[:20]!r}, not a unit of time")
    seconds = Fraction(str(amount)) * _SECONDS[code]
    if start.instant is not None:  # the instant, then its day in authoredOn's offset
        moment = dt.datetime.fromisoformat(authored.replace("Z", "+00:00"))
        return (moment + dt.timedelta(seconds=float(seconds))).date().isoformat()
    # a date without time: the end is a day only when the duration is whole days
    if seconds % 86400:
        raise ValueError(f"gives a boundsDuration of {amount} {code} from a date without time")
    return (start.first + dt.timedelta(days=int(seconds // 86400))).isoformat()


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
    start_v = validity.start if validity else None
    reversed_ = reversed_period("dispenseRequest.validityPeriod", start_v, stale)
    if reversed_ is not None:
        # R4 per-1: a validity that ends before it starts says nothing of when the
        # prescription could be filled, so whether it is still taken is unknown
        return {"kind": member, "start": start, "end": None}, reversed_
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
