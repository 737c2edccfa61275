"""FHIR R4 data -> critlang patient records, through the protocol's code bindings.

The one public reading path (used by `critlang screen`, `impact` and `ingest`)::

    read_fhir(paths: Iterable[Path], extractor: Extractor, as_of: datetime.date,
              tally: Tally | None = None) -> Iterator[FhirPatient]

yields, per patient and in a stable order, a `FhirPatient(id, path, record, problems)`:
`record` is a dict in critlang's native record format (docs/patients.md: `{"id": ...,
"facts": {fact: value | [entries]}}`, plus `"deceased": true | "YYYY-MM-DD..."` when
Patient.deceased[x] says so), `problems` the per-resource diagnostics (RecordProblem,
fact = the fact concerned, or "patient"). Streaming: memory is flat in cohort size
(bundles one file at a time; NDJSON bucketed by patient, see fhir_input.py). `tally`
(fhir_input.Tally) receives what was read and what could not be used; its counts
reconcile (`Tally.reconciles()`). It never raises for bad input. `Extractor(checked,
absent_means_no=frozenset())` is built once per protocol.

Reading rules (each with its FHIR R4 source in docs/fhir.md):
- Observation (values: fhir_observation.py): status final/amended/corrected used,
  preliminary used and marked (`"status": "preliminary"` in the entry), registered/
  cancelled/entered-in-error/unknown not used, with a diagnostic (R4
  observation-status). The date is effectiveDateTime or
  effectiveInstant as written (time and offset kept), or effectivePeriod.end (else its
  start); `issued` is not a fallback. valueQuantity (UCUM `code`, else `unit`) with its
  `comparator`, valueInteger, valueBoolean, and a valueString that is only a comparator, a
  number and a unit (`<0.5 mg/dL`). Observation.component values are read like the
  Observation's own when their code is bound (a BP panel's 8480-6 / 8462-4).
- Every resource: a modifierExtension makes it unusable (R4 extensibility.html); a
  choice element in two types, a decimal as a JSON string: malformed; codings of one
  CodeableConcept naming different facts or kinds: unknown (fhir_status.py).
- Condition (fhir_condition.py): statuses read from their codings (several must agree;
  text only: unknown); refuted/entered-in-error ignored; provisional, differential,
  unconfirmed make the fact unknown, never yes. An abatement[x] decides against the
  screening date whatever clinicalStatus says (on or before it: "not current"), and
  beside active/recurrence/relapse is a contradiction (R4 con-4: unknown); with no
  abatement, inactive/resolved/remission are "not current"; onset[x] after it: not
  used. Every choice type of onset/abatement/performed/effective[x] is read or refused
  (fhir_events.py). A fact declared `history ever` is
  yes for any confirmed condition; the default (`history current`) only for a current one.
- MedicationRequest / MedicationStatement / MedicationAdministration / Procedure
  (fhir_therapy.py): items of a list fact with start and end (active or in-progress:
  "ongoing", also beside an effectiveDateTime; a recorded end before the screening date
  then contradicts the status: unknown); a Procedure also makes a yes/no fact yes.
  Not-done, not-taken, cancelled, draft, intended ones (entered-in-error on a
  MedicationAdministration or Procedure; on a request or statement it may hide), and
  MedicationRequests with doNotPerform or an intent that is not an order, are set aside
  (they hide nothing: a list may still be read as complete); status unknown, a status
  outside its value set or a modifierExtension: unknown (fhir_status.not_evidence).
- Patient (fhir_patient.py): birthDate, gender; deceased[x] becomes the record's
  `deceased`; a Patient with a modifierExtension gives none of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from ..checker import CheckResult
from ..typesys import BoolT, ListT, PressureT
from .fhir_absent import absent_facts, open_lists
from .fhir_bundles import stray_problems
from .fhir_condition import condition_state
from .fhir_decode import Component, Resource, resource_label, unusable
from .fhir_duplicates import duplicate_keys
from .fhir_events import NotYet, event_span, past_event
from .fhir_facts import canonical, hidden_facts
from .fhir_files import data_files
from .fhir_input import PatientResources, Tally, read_groups
from .fhir_observation import (
    OBSERVATION_MARKED,
    OBSERVATION_USED,
    NoValue,
    Unusable,
    first_code,
    observation_entry,
    pair_parts,
    trusted_time,
)
from .fhir_patient import birth_date, patient_fields
from .fhir_refs import NOT_IN_DATA
from .fhir_status import (
    OTHER_SYSTEM,
    BoundCodes,
    Target,
    component_unread,
    concept_targets,
    hidden_targets,
    not_evidence,
    other_system,
    stray_markers,
    untold,
)
from .fhir_systems import SYSTEMS
from .fhir_therapy import began, therapy_dates, therapy_item
from .fhir_yesno import settle, untold_state
from .records import RecordProblem
from .values import When

__all__ = ["Extractor", "FhirPatient", "Tally", "data_files", "read_fhir"]

MEDICATIONS = ("MedicationRequest", "MedicationStatement", "MedicationAdministration")
RELEVANT = frozenset({"Observation", "Condition", "Procedure", *MEDICATIONS})
# medicationdispense-status codes saying the drug was not handed over (R4)
# observation-status codes that say there is no result: not yet (registered), never
# (cancelled), withdrawn (entered-in-error)
OBSERVATION_RETRACTED = frozenset({"registered", "cancelled", "entered-in-error"})
NOT_DISPENSED = frozenset({"cancelled", "declined", "entered-in-error"})

ABSENT_KINDS = ("conditions", "medications")


@dataclass
class FhirPatient:
    """One patient as a native record, with what could not be used."""

    id: str
    path: str
    record: dict[str, Any]
    problems: list[RecordProblem]
    # the patient's server base (RESTful fullUrl), None when not known, and the nested
    # Bundle it was read from ("" for the file's own): fhir_input.PatientResources
    base: str | None = None
    bundle: str = ""


@dataclass
class _State:
    """What one patient's resources have given so far."""

    path: str
    facts: dict[str, Any]
    conditions: dict[str, list[tuple[str, str]]]  # fact -> (state, label)
    problems: list[RecordProblem]
    birth: When | None  # Patient.birthDate, to place an Age (onsetAge, performedAge)
    # fact -> Observations that could not be read, with their dates (reader.fact_value)
    unread: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # problems of resources set aside because they say what did not happen: they keep
    # no fact from being read as "no" (--absent-means-no)
    set_aside: set[RecordProblem] = field(default_factory=set)

    def aside(self, fact: str, message: str) -> None:
        problem = RecordProblem(self.path, fact, message)
        self.problems.append(problem)
        self.set_aside.add(problem)


class Extractor:
    """Everything a protocol needs from FHIR, prepared once per protocol.

    `absent_means_no` ("conditions", "medications"): feasibility mode, where a coded fact
    with no matching resource counts as "no" (see `absent_facts`).
    """

    def __init__(
        self,
        checked: CheckResult,
        absent_means_no: Iterable[str] = frozenset(),
        anchors: dict[str, str] | None = None,
    ) -> None:
        self.c = checked
        # protocol dates given on the command line (`--anchor visit_1=2024-03-15`): FHIR
        # data hold none; a native record's own anchors win over them
        self.anchors = dict(anchors or {})
        self.index: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
        self.patient_fields: dict[str, str] = {}  # fact -> Patient element
        self.warnings: list[str] = []
        for fact, codes in checked.bindings.items():
            for code in codes:
                self._bind(code.system, code.value, (fact, None))
        for (fact, member), codes in checked.item_bindings.items():
            for code in codes:
                self._bind(code.system, code.value, (fact, member))
        # the code systems in which the protocol binds a list fact (therapies): a
        # medication coded only in others cannot be told to be of no bound kind
        list_systems = frozenset(
            uri
            for (uri, _), targets in self.index.items()
            if any(
                isinstance(checked.facts[f].type, ListT) for f, _ in targets if f in checked.facts
            )
        )
        self.codes = BoundCodes(code for _, code in self.index)
        self.codes.list_systems = list_systems
        # ... and a yes/no fact: a Condition or Procedure coded only in others cannot be
        # told to be none of them (breaker8 F7; fhir_status.untold)
        self.codes.yesno_systems = frozenset(
            uri
            for (uri, _), targets in self.index.items()
            if any(
                isinstance(checked.facts[f].type, BoolT) for f, _ in targets if f in checked.facts
            )
        )
        self.history: dict[str, str] = {}
        self.pressures = sorted(
            n for n, i in checked.facts.items() if isinstance(i.type, PressureT)
        )
        for name, info in checked.facts.items():
            opt = info.node.option("history")
            self.history[name] = opt.text if opt is not None and opt.text else "current"
        self.absent_facts = absent_facts(checked, frozenset(absent_means_no), self.warnings)
        self._as_of = dt.date.today()

    def _bind(self, system: str, value: str, target: tuple[str, str | None]) -> None:
        if system == "fhir":
            element = value.removeprefix("Patient.")
            if element not in ("birthDate", "gender"):
                self.warnings.append(
                    f"{target[0]}: {value} is not an element critlang reads (birthDate, gender)"
                )
            self.patient_fields[target[0]] = element
            return
        for uri in SYSTEMS[system]:
            self.index.setdefault((uri, value), []).append(target)

    # ------------------------------------------------------------------ one patient
    def patient(self, group: PatientResources, as_of: dt.date) -> FhirPatient:
        """The patient as a native record (docs/patients.md) and its problems."""
        self._as_of = as_of
        if group.native is not None:
            native = group.native
            own = native.get("anchors")
            if self.anchors and (own is None or isinstance(own, dict)):
                native = {**native, "anchors": {**self.anchors, **(own or {})}}
            return FhirPatient(group.id, group.path, native, list(group.problems))
        facts: dict[str, Any] = {}
        problems = list(group.problems)
        record: dict[str, Any] = {"id": group.id, "facts": facts}
        if self.anchors:
            record["anchors"] = dict(self.anchors)
        patient_fields(group, self.patient_fields, record, problems)
        conditions: dict[str, list[tuple[str, str]]] = {}
        state = _State(group.path, facts, conditions, problems, birth_date(group))
        unread_medications: dict[str, list[Resource]] = {}  # why -> therapies
        # Conditions and Procedures whose kind cannot be told: (label, state, codes)
        untold_found: list[tuple[str, str, str]] = []
        index, codes = self.index, self.codes
        for r in group.resources:
            if r.hidden_ and r.malformed is not None:
                # a member named twice, a copy naming a bound code: what it is about, its
                # type, code, patient or value, is file order (fhir_duplicates.examine)
                hidden_facts(r, self.index, self.c.facts, state)
                continue
            # resources kept by the reader carry a bound code, components or a medication
            # reference (fhir_input._kept); components are decoded only now
            try:
                concept = r.code
                if concept is None:
                    concept = r.medicationCodeableConcept
                    if concept is None and r.medicationReference is not None:
                        # the reader resolved the ones it could (fhir_refs.Medications):
                        # the Medication is not in the data, or its copies disagree, so
                        # neither this therapy nor its absence can be read
                        why = group.medication_problems.get(id(r), NOT_IN_DATA)
                        unread_medications.setdefault(why, []).append(r)
                        continue
                components = r.component
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                problems.append(
                    RecordProblem(
                        group.path, "resource", f"{resource_label(r)} is malformed ({exc})"
                    )
                )
                continue
            targets, ambiguous = (
                concept_targets(concept, index, codes) if concept is not None else ([], None)
            )
            parts: list[tuple[Component, list[Target], str | None]] = []
            for comp in components or ():
                if comp.code:
                    hit, split = concept_targets(comp.code, index, codes)
                    if hit:
                        parts.append((comp, hit, split or component_unread(comp)))
            if not targets and not parts:
                if other_system(r, concept, self.codes.list_systems):
                    said = not_evidence(r, r.resourceType or "")
                    if said is None or said[1]:  # set aside ones hide nothing
                        unread_medications.setdefault(OTHER_SYSTEM, []).append(r)
                elif (shown := untold(r, concept, codes.yesno_systems)) is not None:
                    duplicate_keys(r)
                    how = untold_state(r, self._as_of, state.birth)
                    if how is not None:
                        untold_found.append((resource_label(r), how, shown))
                continue
            label = resource_label(r)
            kind = r.resourceType or ""
            every = targets + [t for _, hit, _ in parts for t in hit]
            duplicate_keys(r)  # a member named twice: a conflict, the resource unusable
            if r.malformed is not None:
                self._unread(kind, r, every, f"{label} {unusable(r.malformed)}", state)
                continue
            if kind == "MedicationDispense":
                self._dispense(r, every, label, state)
                continue
            if kind not in RELEVANT:
                continue
            if not self._status_usable(r, kind, label, every, group.path, problems, state):
                continue
            said = not_evidence(r, kind)
            if said is not None:
                why, hides = said
                if hides:  # it may say anything, even that nothing happened: unknown
                    self._unread(kind, r, every, f"{label} {why}; not used", state, False)
                else:  # it says what did not happen: set aside, hides nothing
                    for fact in sorted({f for f, _ in every}):
                        state.aside(fact, f"{label} {why}; not used")
                continue
            if ambiguous is not None:
                # R4 CodeableConcept: one concept; codings that disagree leave it unknown
                self._unread(kind, r, targets, f"{label}: {ambiguous}; not used", state)
            else:
                for fact, member in targets:
                    self._one(kind, r, r, fact, member, label, state)
            for comp, hit, split in parts:
                where = f"{label} component {first_code(comp.code)}"
                if split is not None:
                    self._unread(kind, r, hit, f"{where}: {split}; not used", state)
                    continue
                for fact, member in hit:
                    self._one(kind, r, comp, fact, member, where, state)
        self._stray_observations(group, index, codes, state)
        if state.unread:
            record["unread"] = {f: sorted(u, key=str) for f, u in sorted(state.unread.items())}
        # yes/no facts from all their resources, Observations too (fhir_yesno.py)
        settle(self, state, untold_found)
        for why, unread in unread_medications.items():
            shown = ", ".join(sorted(resource_label(r) for r in unread)[:3])
            problems.append(
                RecordProblem(
                    group.path,
                    "medications",
                    f"{len(unread)} medication resource(s) name a Medication {why} ({shown}): "
                    "not read",
                )
            )
        # resources of this file or export that may be this patient's (fhir_bundles.py)
        stray, blocked = stray_problems(
            group.strays,
            self._targets,
            facts,
            self.absent_facts,
            group.path,
        )
        problems.extend(stray)
        for fact, no in self.absent_facts.items():
            if isinstance(no, list) and unread_medications:
                continue  # an unread medication may be of any kind
            # a resource set aside (not taken, not done, entered in error: it says what
            # did not happen) hides nothing; any other problem on the fact may
            if fact not in facts and not any(
                p.fact == fact and p not in state.set_aside for p in problems
            ):
                facts[fact] = no
        pair_parts(facts, self.pressures)  # a separate systolic and diastolic of one instant
        # file order never decides anything: entries in a canonical order
        for value in facts.values():
            if isinstance(value, list):
                canonical(value)
        unread = bool(unread_medications) or any(isinstance(facts.get(f), list) for f in blocked)
        open_lists(self.c, self.absent_facts, facts, problems, group.path, unread)
        problems.sort(key=lambda p: (p.fact, p.message))
        return FhirPatient(group.id, group.path, record, problems, group.base, group.bundle)

    def _status_usable(
        self,
        r: Resource,
        kind: str,
        label: str,
        every: list[Target],
        path: str,
        problems: list[RecordProblem],
        st: _State,
    ) -> bool:
        """False (with a diagnostic) for an Observation its status retracts or that is not
        yet a result (not evidence of anything: it hides nothing), or whose status cannot be
        told (it may hide the newest result). The other kinds' statuses:
        fhir_status.not_evidence."""
        why = None
        if kind == "Observation":
            # Observation.status is a modifier element (R4 observation-status, 1..1)
            if r.status is None:
                why = f"{label} has no status (Observation.status is required); not used"
            elif r.status not in OBSERVATION_USED | OBSERVATION_MARKED:
                why = f"{label} has status {r.status!r}; not used"
        if why is None:
            return True
        if r.status in OBSERVATION_RETRACTED:
            for fact in sorted({f for f, _ in every}):
                problems.append(RecordProblem(path, fact, why))
        else:
            # `unknown` ("the source system does not know which status applies": it may
            # be final), no status or a code outside the value set: it may be the newest
            # result, so the reader's may-be-newest rule decides (a dated marker)
            self._unread(kind, r, every, why, st)
        return False

    def _stray_observations(
        self, group: PatientResources, index: Any, codes: Any, st: _State
    ) -> None:
        """Observations that name no patient one can find may be this one's newest value:
        dated markers for the reader (fhir_status.stray_markers)."""
        for fact, marker in stray_markers(group.strays, self.c.facts, index, codes):
            st.unread.setdefault(fact, []).append(marker)

    def _targets(self, r: Resource) -> list[Target]:
        """The bound targets a resource may be about: its code's (medication code's), or
        those its copies name when it names a member twice (fhir_status.hidden_targets)."""
        if r.hidden_:
            return hidden_targets(r, self.index)
        concept = r.code if r.code is not None else r.medicationCodeableConcept
        return concept_targets(concept, self.index, self.codes)[0] if concept is not None else []

    def _dispense(self, r: Resource, every: list[Target], label: str, st: _State) -> None:
        """R4 MedicationDispense: the drug was supplied to the patient, which says it may
        have been taken, not when (whenHandedOver is the supply, daysSupply an intention):
        one item of its kind with unknown dates, so that no window reads it as absent and
        no list is complete without it. A dispense that did not happen (status cancelled,
        declined, entered-in-error; medicationdispense-status) is not evidence."""
        if r.status in NOT_DISPENSED:
            for fact in sorted({f for f, _ in every}):  # set aside: it hides nothing
                st.aside(fact, f"{label} has status {r.status!r}: not dispensed; not used")
            return
        why = f"{label}: dispensed (MedicationDispense), dates of use not recorded"
        self._unread("MedicationDispense", r, every, why, st)

    def _unread(
        self,
        kind: str,
        r: Resource,
        targets: list[Target],
        why: str,
        st: _State,
        happened: bool = True,
    ) -> None:
        """A resource that may be evidence but cannot be read: each fact it names gets the
        diagnostic and stays unknown, never decided by the other resources alone. An
        Observation leaves a dated marker (the reader makes the fact unknown when it may
        be the newest value, reader.fact_value); a Condition or Procedure an "unknown"
        state (never "no"); a therapy one item of unknown dates (of unknown kind too when
        its codings disagree, or when it may not have `happened` at all: a status or a
        modifierExtension that may say it was not given)."""
        for fact in sorted({f for f, _ in targets}):
            st.problems.append(RecordProblem(st.path, fact, why))
            info = self.c.facts.get(fact)
            if info is None:
                continue
            if isinstance(info.type, ListT):
                members = {m for f, m in targets if f == fact}
                item: dict[str, Any] = {"kind": members.pop() if len(members) == 1 else None}
                names = {name for name, _ in info.type.fields}
                if not happened:
                    item = {"kind": None}  # an item that may be nothing: nothing known
                elif (kind in MEDICATIONS or kind == "Procedure") and "kind" in names:
                    # its kind unknown (codings that disagree), its dates read. A list
                    # without kinds cannot say "of unknown kind": its item keeps unknown
                    # dates, or a therapy the resource may not record would decide a
                    # window (breaker8 F4: a MedicationStatement "taken": "n")
                    try:
                        start, end = therapy_dates(kind, r)
                    except (msgspec.ValidationError, msgspec.DecodeError, Unusable):
                        start = end = None
                    item |= {"start": start, "end": end} if item["kind"] is None else {}
                st.facts.setdefault(fact, []).append({k: v for k, v in item.items() if k in names})
            elif kind == "Observation":
                try:
                    when = trusted_time(r)
                except (msgspec.ValidationError, msgspec.DecodeError):
                    when = None
                st.unread.setdefault(fact, []).append({"source": resource_label(r), "date": when})
            elif isinstance(info.type, BoolT):
                st.conditions.setdefault(fact, []).append(("unknown", resource_label(r)))

    def _one(
        self,
        kind: str,
        r: Resource,
        holder: Resource | Component,
        fact: str,
        member: str | None,
        label: str,
        st: _State,
    ) -> None:
        info = self.c.facts.get(fact)
        if info is None:
            return
        try:
            try:
                therapy = kind in MEDICATIONS or kind == "Procedure"
                # a therapy item: of the kind its code is bound to, or of a list bound as a
                # whole (`codes sglt2_therapy: atc ...` on a list of {start, end}), whose
                # items have no kind (author7 F16: it was read, yet said unreadable)
                if member is not None or (therapy and isinstance(info.type, ListT)):
                    # a therapy begun after the screening date had not happened then (as
                    # Condition.onset[x], Procedure.performed[x]); any choice type is read
                    span = began(kind, r, st.birth)
                    if span is not None:
                        past_event(span, self._as_of, "started")
                    if kind == "Procedure" and r.performedPeriod is None:
                        if r.performedDateTime is None and span is not None:
                            raise Unusable(f"performed {span.text}: no dates for a therapy item")
                    item, contradiction = therapy_item(kind, r, member, self._as_of)
                    if contradiction is not None:
                        why = f"{label}: {contradiction}"
                        st.problems.append(RecordProblem(st.path, fact, why))
                    t = info.type
                    names = {name for name, _ in t.fields} if isinstance(t, ListT) else set(item)
                    st.facts.setdefault(fact, []).append(
                        {k: v for k, v in item.items() if k in names}
                    )
                    return
                t = info.type
                if kind == "Observation":
                    entry = observation_entry(r, holder, t, label)
                    existing = st.facts.setdefault(fact, [])
                    if not isinstance(existing, list):
                        st.facts[fact] = existing = [{"value": existing}]
                    existing.append(entry)
                elif kind == "Condition" and isinstance(t, BoolT):
                    ever = self.history.get(fact) == "ever"
                    state = condition_state(r, self._as_of, st.birth, ever)
                    st.conditions.setdefault(fact, []).append((state, label))
                elif kind == "Procedure" and isinstance(t, BoolT):
                    # Procedure.performed[x] (any choice type) after the screening date:
                    # it had not happened then
                    performed = event_span(r, "performed", st.birth)
                    if performed is not None:
                        past_event(performed, self._as_of, "performed")
                    st.conditions.setdefault(fact, []).append(("procedure", label))
                else:
                    raise Unusable(f"a {kind} cannot give a value of the kind {t.describe()}")
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                # an element read only now (fhir_decode.LAZY) lacks its R4 datatype
                raise Unusable(f"is malformed ({exc})") from None
        except NotYet as exc:  # not there on the screening date: hides nothing
            st.aside(fact, f"{label}: {exc}")
        except Unusable as exc:
            why = f"{label}: {exc}" if not str(exc).startswith("is ") else f"{label} {exc}"
            if kind == "Observation" and not isinstance(exc, NoValue):
                self._unread(kind, r, [(fact, member)], why, st)
            elif kind == "Observation":
                st.problems.append(RecordProblem(st.path, fact, why))
            else:
                self._unread(kind, r, [(fact, member)], why, st)


def read_fhir(
    paths: Iterable[Path],
    extractor: Extractor,
    as_of: dt.date,
    tally: Tally | None = None,
) -> Iterator[FhirPatient]:
    """Every patient in the files, as a native record; see the module docstring."""
    for group in read_groups(paths, tally, extractor.codes):
        yield extractor.patient(group, as_of)
