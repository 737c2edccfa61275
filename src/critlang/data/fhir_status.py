"""FHIR R4 modifier elements and coded statuses: what makes a resource not the patient's
evidence, or evidence of something else.

- `coded_status(concept, system, element) -> str | None` reads a status-like
  CodeableConcept (Condition.clinicalStatus, Condition.verificationStatus): its code, or
  None when the element is absent; raises `Unusable` when it cannot be read.
- `not_evidence(r, kind) -> (why, hides) | None`: why a resource is not evidence about
  the patient (a modifierExtension, Observation.focus, a MedicationRequest that is not an
  order to give the drug, a status saying it did not happen, status unknown, a status
  outside its value set), and whether that hides the truth (True: it may say anything,
  so what it names stays unknown and a list is not read as complete; False: it says what
  did not happen, or is about someone else: set aside); None when it is evidence.
- `component_unread(comp) -> str | None`: the same for an Observation.component.
- `concept_targets(concept, index, codes)`: the bound targets of a CodeableConcept, and
  whether its codings contradict each other (one concept, two meanings).

Every rule cites its R4 element and value set; docs/fhir.md has one table row each.
"""

from __future__ import annotations

from typing import Any

from .fhir_decode import Component, Concept, Entry, Resource, resource_label
from .fhir_observation import Unusable

Target = tuple[str, str | None]  # (fact, list member or None)

CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

# Each status element's whole R4 value set: a code outside it is unreadable (unknown),
# never taken for one of the known ones. Procedure and MedicationAdministration:
# event-status / medication-admin-status; MedicationRequest: medicationrequest-status;
# MedicationStatement: medication-statement-status.
STATUSES = {
    "Procedure": frozenset(
        {"preparation", "in-progress", "not-done", "on-hold", "stopped", "completed"}
        | {"entered-in-error", "unknown"}
    ),
    "MedicationAdministration": frozenset(
        {"in-progress", "not-done", "on-hold", "completed", "entered-in-error", "stopped"}
        | {"unknown"}
    ),
    "MedicationRequest": frozenset(
        {"active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped"}
        | {"draft", "unknown"}
    ),
    "MedicationStatement": frozenset(
        {"active", "completed", "entered-in-error", "intended", "stopped", "on-hold"}
        | {"unknown", "not-taken"}
    ),
}
# Statuses saying the event did not happen (or is void), per value set: set aside, they
# hide nothing (a record that says "not taken" is not a hidden exposure). event-status
# (Procedure, MedicationAdministration): preparation ("The core event has not started
# yet"), not-done, entered-in-error; medicationrequest-status: cancelled, draft ("not yet
# actionable"), entered-in-error; medication-statement-status: not-taken, intended
# ("may take it in the future"), entered-in-error. "unknown" is apart: it may have
# happened, so it hides the truth (HIDDEN).
NOT_DONE = {
    "Procedure": frozenset({"preparation", "not-done", "entered-in-error"}),
    "MedicationAdministration": frozenset({"not-done", "entered-in-error"}),
    "MedicationRequest": frozenset({"cancelled", "draft"}),
    "MedicationStatement": frozenset({"not-taken", "intended"}),
}
# entered-in-error differs by value set. event-status (Procedure, MedicationAdministration):
# "should never have existed ... (If real-world activity has occurred, the status should
# be 'stopped' rather than 'entered-in-error')": nothing happened, set aside.
# medicationrequest-status and medication-statement-status: "Some of the actions that are
# implied by the medication statement may have occurred. For example, the patient may have
# taken some of the medication" (realfhir7 F14): the record may be wrong in what it names
# (the drug, the patient's dose) yet hide an exposure, so it is read as status unknown.
IN_ERROR_MAY_HIDE = frozenset({"MedicationRequest", "MedicationStatement"})
HIDDEN = "unknown"  # event-status, medication*-status: "The authoring system does not know"
# MedicationRequest.intent (medicationrequest-intent, a modifier element): only an order
# authorizes giving the drug; proposal, plan and option are suggestions or intentions
# (R4: "proposal ... without ... authorization", "plan ... an intention"), not evidence
# that the therapy was given.
ORDERS = frozenset({"order", "original-order", "reflex-order", "filler-order", "instance-order"})
INTENTS = ORDERS | {"proposal", "plan", "option"}


def coded_status(concept: Concept | None, system: str, element: str) -> str | None:
    """The code of a status CodeableConcept bound (required) to the code system `system`.

    None when the element is absent. Codings of `system` (or with no system) are read;
    codings of other systems are ignored only when at least one of `system` is there (R4
    datatypes.html#CodeableConcept: the codings are alternative codes for one concept, so
    another system's code cannot add a meaning the required one lacks). Raises Unusable
    when the codings of `system` disagree (their order "SHALL NOT be used to infer
    meaning"), or when there is none: text only, or only another system's codes, is not
    a code of the required value set, so the status is present but unknown, never the
    default an absent one would have.
    """
    if concept is None:
        return None
    codes = sorted({c.code for c in concept.coding or () if c.code and c.system in (system, None)})
    if len(codes) > 1:
        raise Unusable(f"{element} codings disagree ({', '.join(codes)})")
    if codes:
        return codes[0]
    others = sorted(f"{c.system}|{c.code}" for c in concept.coding or () if c.code)
    if others:
        shown = ", ".join(others[:3])
        raise Unusable(f"{element} has no code of {system} (only {shown}): status unknown")
    text = concept.text if isinstance(concept.text, str) else ""
    shown = repr(text[:40]) if text else "nothing"
    raise Unusable(f"{element} gives {shown} as text, no code (R4 binding: required)")


def not_evidence(r: Resource, kind: str) -> tuple[str, bool] | None:
    """Why r is not the patient's evidence, and whether that leaves what it names unknown
    (True: it may say anything, so it hides the truth) or simply not shown (False: it says
    what did not happen, or is about someone else); None when r is evidence."""
    unread = modifier_unread(r)
    if unread is not None:
        return unread, True
    if kind == "Observation" and r.focus:
        # Observation.focus: "the actual focus of an observation when it is not the
        # patient of record" (a fetus, a donor, a relative): not this patient's value
        return "has a focus (Observation.focus): it is about someone or something else", False
    if kind == "MedicationRequest":
        if r.doNotPerform is True:
            # MedicationRequest.doNotPerform (modifier): an order NOT to give the drug
            return "has doNotPerform true: an order not to give it, not a therapy", False
        if r.doNotPerform is not None and not isinstance(r.doNotPerform, bool):
            return f"has doNotPerform {str(r.doNotPerform)[:40]!r}, not a boolean", True
        if r.intent not in ORDERS:
            if r.intent in INTENTS:
                return f"has intent {r.intent!r}: not an order to give it, not a therapy", False
            return (
                f"has intent {str(r.intent)[:40]!r}, not a medicationrequest-intent code "
                "(MedicationRequest.intent is required)",
                True,
            )
    if kind in STATUSES and r.status not in STATUSES[kind]:
        if r.status is None:
            return f"has no status ({kind}.status is required)", True
        return f"has status {str(r.status)[:40]!r}, not a code of its R4 value set", True
    if kind in NOT_DONE and r.status in NOT_DONE[kind]:
        return f"has status {r.status!r}: {_NOT[kind]}", False
    if kind in IN_ERROR_MAY_HIDE and r.status == "entered-in-error":
        return (
            "has status 'entered-in-error': recorded in error, yet R4 says some of it may "
            f"have happened (the patient may have taken some), so whether it was "
            f"{_NOT[kind][4:]}, and what, is not known"
        ), True
    if kind in NOT_DONE and r.status == HIDDEN:
        return f"has status {HIDDEN!r}: whether it was {_NOT[kind][4:]} is not known", True
    return None


_NOT = {  # what a NOT_DONE status says, per resource type
    "Procedure": "not performed",
    "MedicationAdministration": "not given",
    "MedicationRequest": "not ordered",
    "MedicationStatement": "not taken",
}


def modifier_unread(r: Any) -> str | None:
    """DomainResource.modifierExtension, on any resource critlang reads (Patient, Condition,
    Observation, Procedure, Medication*): "Applications processing a resource are
    required to check for modifier extensions" and may not ignore one they do not know
    (extensibility.html#modifierExtension): it may negate the resource, so nothing read
    from it can be trusted. Also for a BackboneElement critlang reads (dispenseRequest,
    Patient.link). Why, or None."""
    if r.modifierExtension:
        return f"has a modifierExtension ({_urls(r.modifierExtension)}) critlang cannot read"
    return None


def entry_unread(e: Entry) -> str:
    """Why a Bundle entry with a modifierExtension (BackboneElement) is not read."""
    urls = _urls(e.modifierExtension)
    return f"its Bundle entry has a modifierExtension ({urls}) critlang cannot read"


def component_unread(comp: Component) -> str | None:
    """BackboneElement.modifierExtension on an Observation.component: not read."""
    if comp.modifierExtension:
        return f"has a modifierExtension ({_urls(comp.modifierExtension)}) critlang cannot read"
    return None


def _urls(extensions: Any) -> str:
    urls = []
    for e in extensions if isinstance(extensions, list) else [extensions]:
        url = e.get("url") if isinstance(e, dict) else None
        urls.append(str(url)[:80] if url else "no url")
    return ", ".join(sorted(set(urls))[:3])


def concept_targets(
    concept: Concept, index: dict[tuple[str, str], list[Target]], codes: Any
) -> tuple[list[Target], str | None]:
    """The bound targets of a CodeableConcept's codings, and why they contradict, if so.

    R4 datatypes.html#CodeableConcept: the codings of one concept are alternative codes
    for ONE meaning. Codings that agree, or whose bindings nest (ICD-10 K74.60 bound to
    cirrhosis and liver disease, SNOMED 19943007 to cirrhosis only), give every target.
    Codings with no target in common (cirrhosis and brain metastases), or two kinds of
    one list fact (two ATC kinds of one therapy), cannot all be right: the contradiction
    is returned, and the caller makes what depends on it unknown, never two facts or two
    therapies from one resource.
    """
    per: list[list[Target]] = []
    for c in concept.coding or ():
        if c.code in codes:
            hit = index.get((c.system or "", c.code))  # type: ignore[arg-type]
            if hit:
                per.append(hit)
    if not per:
        return [], None  # no coding bound (most components of a panel)
    out: list[Target] = []
    for hit in per:
        for t in hit:
            if t not in out:
                out.append(t)
    kinds: dict[str, set[str | None]] = {}
    for fact, member in out:
        kinds.setdefault(fact, set()).add(member)
    if any(len(members) > 1 for members in kinds.values()):
        # one resource is one therapy: never two kinds (two items) from it
        return out, f"its codings name different kinds ({_show(out)})"
    if len(per) > 1 and not set(per[0]).intersection(*map(set, per[1:])):
        shown = "; ".join(sorted({_show(hit) for hit in per}))
        return out, f"its codings name different things ({shown})"
    return out, None


def hidden_targets(r: Any, index: dict[tuple[str, str], list[Target]]) -> list[Target]:
    """The targets of the bound codes a resource's `code` members name in any copy
    (`r.hidden_`, set when it names a member twice: fhir_duplicates.examine), in any code
    system: which copy, and so which code and system, holds is file order."""
    found = set(r.hidden_)
    out: list[Target] = []
    for (_, code), targets in sorted(index.items()):
        if code in found:
            out += [t for t in targets if t not in out]
    return out


def _show(hit: list[Target]) -> str:
    return ", ".join(sorted(f"{f}.{m}" if m else f for f, m in hit))


def stray_markers(
    strays: list[Any], facts: dict[str, Any], index: Any, codes: Any
) -> list[tuple[str, dict[str, Any]]]:
    """(fact, dated marker) for each Observation with a bound code of this file or export
    that names no patient one can find (no subject, identifier-only, conditional...:
    fhir_bundles.MAY_BE_ANYONE): it may be this patient's, so, like an unreadable value,
    the reader makes the fact unknown when it may be the newest value (reader.fact_value)
    and leaves it alone when it is older than the value used. Yes/no facts and lists are
    fhir_bundles.stray_problems' concern."""
    import msgspec

    from ..typesys import BoolT, ListT
    from .fhir_bundles import SUBJECT_TWICE
    from .fhir_observation import trusted_time

    out: list[tuple[str, dict[str, Any]]] = []
    for where, r, why in strays:
        hits: list[Target] = []
        if r.hidden_:
            # a copy given twice names a bound code (or an unreadable NDJSON line does): of
            # any type it may be, an Observation too (fhir_duplicates.examine)
            hits = hidden_targets(r, index)
        elif r.resourceType != "Observation":
            continue
        try:
            if not r.hidden_:
                hits = concept_targets(r.code, index, codes)[0] if r.code is not None else []
                for comp in r.component or ():
                    if comp.code:
                        hits += concept_targets(comp.code, index, codes)[0]
            when = trusted_time(r)
        except (msgspec.ValidationError, msgspec.DecodeError):
            when = None
        label = resource_label(r)
        source = f"{label}, which names no patient of the data ({why})"
        if r.resourceType is None:  # an NDJSON line that cannot be read (fhir_ndjson)
            source = f"{where} (not readable)"
        elif SUBJECT_TWICE in why:
            source = f"{label} (its subject is given twice)"
        for fact in sorted({f for f, _ in hits}):
            info = facts.get(fact)
            if info is not None and not isinstance(info.type, (BoolT, ListT)):
                out.append((fact, {"source": source, "date": when}))
    return out


# a therapy coded only in systems the protocol binds no therapy in (NDC, a local code):
# which drug it is cannot be told, so it may be any bound kind (realfhir7 F6)
OTHER_SYSTEM = (
    "coded only in code systems in which this protocol binds no therapy, so its kind cannot be told"
)


_THERAPY_KINDS = frozenset({"MedicationRequest", "MedicationStatement", "MedicationAdministration"})


class BoundCodes(frozenset):
    """The codes a protocol binds (fhir_input keeps the resources that carry one), with
    `list_systems`: the system URIs its list facts are bound in, and `yesno_systems`: those
    its yes/no facts are bound in."""

    list_systems: frozenset[str] = frozenset()
    yesno_systems: frozenset[str] = frozenset()

    def __reduce__(self) -> Any:  # pickled for --jobs: keep the systems
        return (_bound_codes, (frozenset(self), self.list_systems, self.yesno_systems))


def _bound_codes(
    codes: frozenset[str], systems: frozenset[str], yesno: frozenset[str] = frozenset()
) -> BoundCodes:
    out = BoundCodes(codes)
    out.list_systems = systems
    out.yesno_systems = yesno
    return out


def other_system(r: Resource, concept: Any, systems: frozenset[str]) -> bool:
    """A medication resource whose codings are all in systems the protocol binds no list
    fact in (R4 CodeableConcept: codings are alternative codes for one meaning; none of
    them can be compared with a bound kind)."""
    if not systems or r.resourceType not in _THERAPY_KINDS or concept is None:
        return False
    return not any(c.system in systems for c in concept.coding or ())


# a Condition or Procedure coded only in systems the protocol binds no yes/no fact in (a
# local code, text only, no code): what it is cannot be told (breaker8 F7)
UNTOLD = "coded only in code systems in which this protocol binds no yes/no fact"
YES_NO_KINDS = frozenset({"Condition", "Procedure"})


def untold(r: Resource, concept: Any, systems: frozenset[str]) -> str | None:
    """How a Condition or Procedure shows what it is when none of its codings is in a
    system the protocol binds a yes/no fact in ("text 'Type 2 diabetes'", "urn:x|DM2"),
    or None when it is not such a resource. R4 datatypes.html#CodeableConcept: codings
    are alternative codes for one meaning, and `text` is its plain-text form; with no
    coding of a bound system, that meaning cannot be compared with a bound code (the
    therapies' rule, OTHER_SYSTEM). A coding of a bound system that matches no bound code
    is surely none of the facts: None."""
    if not systems or r.resourceType not in YES_NO_KINDS:
        return None
    codings = [c for c in (concept.coding or ()) if c.code] if concept is not None else []
    if any(c.system in systems for c in codings):
        return None
    shown = [f"{c.system or 'no system'}|{c.code}" for c in codings[:2]]
    text = concept.text if concept is not None and isinstance(concept.text, str) else None
    if text:
        shown.append(f"text {text[:40]!r}")
    return ", ".join(shown) or "no code"
