"""FHIR R4 Condition -> the state of a yes/no fact as of the screening date.

`condition_state(r, as_of, birth, ever=False) -> str` is one Condition's state: "ignored" (refuted,
entered-in-error), "current", "past", "unconfirmed-current" or "unconfirmed-past"; raises
`Unusable` when the state cannot be read (the caller counts it as "unknown", which keeps
other Conditions from making the fact "no"), or `NotYet` when it began after the screening
date (not there then: not used, and no obstacle to "no").
`condition_fact(states, ever) -> (value | None, unsure labels)` combines them.
Rules and R4 sources: docs/fhir.md, Condition.
"""

from __future__ import annotations

import datetime as dt

from .fhir_decode import Resource
from .fhir_events import NotYet, Span, event_span, past_event, when
from .fhir_observation import Unusable
from .fhir_status import CLINICAL, VERIFICATION, coded_status
from .values import When

# R4 condition-clinical and condition-ver-status
ACTIVE = frozenset({"active", "recurrence", "relapse"})
INACTIVE = frozenset({"inactive", "resolved", "remission"})
IGNORED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
UNCONFIRMED = frozenset({"provisional", "differential", "unconfirmed"})


def condition_state(r: Resource, as_of: dt.date, birth: When | None, ever: bool = False) -> str:
    """One Condition's state as of `as_of`; see the module docstring. With `ever` (a fact
    declared `history ever`) whether it is current does not matter, so a status or an
    abatement that cannot be placed leaves it "past" rather than unknown."""
    # Condition.verificationStatus and .clinicalStatus: modifier elements, required
    # bindings; several codings must agree, text alone is no code (fhir_status)
    verification = coded_status(r.verificationStatus, VERIFICATION, "verificationStatus")
    if verification in IGNORED_VERIFICATION:
        return "ignored"
    # Condition.onset[x] (any choice type; else recordedDate) after the screening date:
    # the condition was not there, or not known, on that date (screening as of a past date)
    began = event_span(r, "onset", birth)
    if began is None and r.recordedDate is not None:
        w = when("recordedDate", r.recordedDate)
        began = Span(w.first, w.last, f"recorded {w.text}")
    if began is not None:
        past_event(began, as_of, "begins")
    if verification is not None and verification not in UNCONFIRMED | {"confirmed"}:
        raise Unusable(f"unknown verificationStatus {verification!r}")
    try:
        current = is_current(r, as_of, birth)
    except Unusable:
        if not ever:
            raise
        current = False  # current or not, it was there by the screening date
    state = "current" if current else "past"
    return "unconfirmed-" + state if verification in UNCONFIRMED else state


def is_current(r: Resource, as_of: dt.date, birth: When | None) -> bool:
    """Whether the condition was current on `as_of` (docs/fhir.md, Condition).

    clinicalStatus describes the record when it was written, not the screening date: when
    abatement[x] is given, its date decides against the screening date (after it:
    current; on or before it: not current; perhaps either: Unusable), whatever the status
    says. An abatement beside clinicalStatus active, recurrence or relapse contradicts
    R4 con-4 ("If condition is abated, then clinicalStatus must be either inactive,
    resolved, or remission"): Unusable. inactive, resolved or remission with no
    abatement: not current (the record's status read as the status on the screening date,
    an assumption); active, recurrence, relapse or no status: current.
    """
    clinical = coded_status(r.clinicalStatus, CLINICAL, "clinicalStatus")
    if clinical is not None and clinical not in ACTIVE | INACTIVE:
        raise Unusable(f"unknown clinicalStatus {clinical!r}")
    given = abatement_given(r)
    if given is None:
        return clinical is None or clinical in ACTIVE
    if clinical in ACTIVE:
        raise Unusable(
            f"clinicalStatus {clinical!r} with {given}: the record contradicts itself (R4 "
            "con-4: an abated condition is inactive, resolved or remission), so current or "
            "not is unknown"
        )
    return not abated(r, as_of, birth)


def abatement_given(r: Resource) -> str | None:
    """How abatement[x] is given (e.g. "abatementDateTime 2020-01-01"), or None when it is
    absent or abatementBoolean false (not abated, which agrees with every status)."""
    for element in ("DateTime", "Age", "Range", "String"):
        value = getattr(r, f"abatement{element}", None)
        if value is not None:
            return f"abatement{element} {str(value)[:40]}"
    if r.abatementPeriod_:
        return "abatementPeriod"
    flag = r.abatementBoolean
    if flag is not None and flag is not False:
        return f"abatementBoolean {str(flag)[:40]}"
    return None


def abated(r: Resource, as_of: dt.date, birth: When | None) -> bool:
    """Condition.abatement[x] on or before the screening date: True; after it, False;
    perhaps either, Unusable. abatementBoolean true and abatementString say it has
    abated at a time not given (R4 Condition.abatement[x]: "When abatementString exists,
    it implies the condition is abated"): abated by the time this version of the record
    was written, so before the screening date only when `meta.lastUpdated` (the time of
    this version, R4 Meta.lastUpdated) is on or before it; else unknown. recordedDate
    (R4: "when this particular Condition record was created") says nothing of when the
    abatement was written: a record created while the condition was ongoing is usually
    marked abated later (realfhir7 F2: "around April 9, 2013" recorded 2013-04-04)."""
    flag = r.abatementBoolean
    if flag is not None and not isinstance(flag, bool):
        raise Unusable(f"abatementBoolean {flag!r} is not a boolean")
    if flag is False:
        return False
    if flag is True or r.abatementString is not None:
        given = "abatementBoolean true" if flag else f"abatementString {r.abatementString!r}"
        updated = r.meta.lastUpdated if r.meta is not None else None
        written = None
        if isinstance(updated, str):
            try:
                written = when("meta.lastUpdated", updated)
            except Unusable:
                written = None  # an invalid time places nothing
        if written is not None and written.last <= as_of:
            return True
        by = f"last updated {written.text}" if written is not None else "no meta.lastUpdated"
        raise Unusable(
            f"abated at a time not given ({given[:60]}; {by}): whether it was still current "
            f"on the screening date {as_of.isoformat()} is unknown"
        )
    span = event_span(r, "abatement", birth)
    if span is None:
        return False
    if span.last <= as_of:
        return True
    if span.first > as_of:
        return False
    raise Unusable(f"abates {span.text}, perhaps after the screening date {as_of.isoformat()}")


def condition_fact(found: list[tuple[str, str]], ever: bool) -> tuple[bool | None, list[str]]:
    """The fact from its matching resources' states: (value or None, the labels that
    leave it unknown). `procedure` counts as yes; `unknown` (a resource that could not be
    read) keeps the fact from being no."""
    states = {s for s, _ in found}
    yes = {"current", "past", "procedure"} if ever else {"current", "procedure"}
    unsure = {"unconfirmed-current", "unconfirmed-past"} if ever else {"unconfirmed-current"}
    if states & yes:
        return True, []
    if states & (unsure | {"unknown"}):
        return None, sorted(label for s, label in found if s in unsure | {"unknown"})
    if states - {"ignored"}:
        return False, []
    return None, []


__all__ = ["NotYet", "abated", "condition_fact", "condition_state", "is_current"]
