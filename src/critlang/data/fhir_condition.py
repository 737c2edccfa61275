"""FHIR R4 Condition -> the state of a yes/no fact as of the screening date.

`condition_state(r, as_of, birth) -> str` is one Condition's state: "ignored" (refuted,
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


def condition_state(r: Resource, as_of: dt.date, birth: When | None) -> str:
    """One Condition's state as of `as_of`; see the module docstring."""
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
    clinical = coded_status(r.clinicalStatus, CLINICAL, "clinicalStatus")
    if clinical is not None and clinical not in ACTIVE | INACTIVE:
        raise Unusable(f"unknown clinicalStatus {clinical!r}")
    if verification is not None and verification not in UNCONFIRMED | {"confirmed"}:
        raise Unusable(f"unknown verificationStatus {verification!r}")
    current = clinical is None or clinical in ACTIVE
    if current and abated(r, as_of, birth):
        current = False
    state = "current" if current else "past"
    return "unconfirmed-" + state if verification in UNCONFIRMED else state


def abated(r: Resource, as_of: dt.date, birth: When | None) -> bool:
    """Condition.abatement[x] on or before the screening date (R4 con-4): True; after it,
    False; perhaps either, Unusable. abatementBoolean true and abatementString say it has
    abated at a time not given: before the screening date when a recordedDate on or before
    that date says so, else unknown."""
    flag = r.abatementBoolean
    if flag is not None and not isinstance(flag, bool):
        raise Unusable(f"abatementBoolean {flag!r} is not a boolean")
    if flag is False:
        return False
    if flag is True or r.abatementString is not None:
        given = "abatementBoolean true" if flag else f"abatementString {r.abatementString!r}"
        recorded = None
        if r.recordedDate is not None:
            recorded = when("recordedDate", r.recordedDate)
        if recorded is not None and recorded.last <= as_of:
            return True
        raise Unusable(
            f"abated at a time not given ({given[:60]}) and not recorded by the screening "
            f"date {as_of.isoformat()}: current or not is unknown"
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


__all__ = ["NotYet", "abated", "condition_fact", "condition_state"]
