"""FHIR R4 Patient -> the demographics of a native record.

- `patient_fields(group, fields, record, problems)`: the facts bound to Patient elements
  (`fhir "Patient.birthDate"`, `fhir "Patient.gender"`) and `record["deceased"]`.
- `birth_date(group) -> When | None`: the birth date that places an Age (onsetAge,
  performedAge, abatementAge), when the Patient resources give one valid one.

A Patient that cannot be read (malformed, or with a modifierExtension: R4
extensibility.html#modifierExtension, "Applications processing a resource are required
to check for modifier extensions") gives nothing, and keeps the others from giving it:
every fact read from it is unknown with its diagnostic; its deceased[x], whatever it
says, leaves the patient "perhaps deceased". Rules and R4 sources: docs/fhir.md, Patient.
"""

from __future__ import annotations

from typing import Any

from .fhir_decode import Resource, unusable
from .fhir_input import PatientResources
from .fhir_refs import link_diagnostics
from .fhir_status import modifier_unread
from .reader_time import UnreadDeceased
from .records import RecordProblem
from .values import Duplicate, When, parse_when

__all__ = ["birth_date", "patient_fields"]


def birth_date(group: PatientResources) -> When | None:
    """The patient's birth date when its Patient resources give one valid one (and none
    of them is unreadable: it may give another)."""
    if any(_unreadable(p) for p in group.patients):
        return None
    dates = {p.birthDate for p in group.patients} - {None}
    if len(dates) != 1:
        return None
    try:
        return parse_when(dates.pop())
    except ValueError:
        return None


def _unreadable(p: Resource) -> str | None:
    """Why a Patient resource cannot be read (malformed, a modifierExtension), or None."""
    if p.malformed is not None:
        return unusable(p.malformed)
    unread = modifier_unread(p)
    return None if unread is None else f"{unread}; not used"


def patient_fields(
    group: PatientResources,
    fields: dict[str, str],
    record: dict[str, Any],
    problems: list[RecordProblem],
) -> None:
    """Sets the facts bound to Patient elements (`fields`: fact -> element) and
    `record["deceased"]` from the patient's Patient resources; diagnostics to `problems`."""
    facts = record["facts"]
    problems.extend(link_diagnostics(group.patients, group.path))
    # a Patient that cannot be read gives no demographics, and keeps the others from
    # giving them: malformed (duplicate keys, wrong datatypes: the value read could be
    # either of two, RFC 8259 4; R4 json.html), or with a modifierExtension (it may
    # say the resource is not this patient's, R4 extensibility.html#modifierExtension)
    unread = []
    for p in group.patients:
        why = _unreadable(p)
        if why is not None:
            unread.append(f"{'Patient/' + p.id if p.id else 'Patient (no id)'} {why}")
    usable = [p for p in group.patients if _unreadable(p) is None]
    for fact, element in fields.items():
        values = {getattr(p, element, None) for p in usable} - {None}
        problems.extend(RecordProblem(group.path, fact, why) for why in unread)
        if unread:
            continue
        if len(values) == 1:
            facts[fact] = values.pop()
        elif len(values) > 1:
            problems.append(
                RecordProblem(group.path, fact, f"the Patient resources disagree: {sorted(values)}")
            )
    # Patient.deceased[x] (boolean or dateTime): a deceased patient is never eligible.
    # Resources of one patient that disagree (two dates, true and false) leave it
    # "perhaps deceased" (a Duplicate, reader.deceased_state), never the one read last.
    said = {
        p.deceasedDateTime or p.deceasedBoolean
        for p in usable
        if p.deceasedDateTime or p.deceasedBoolean is not None
    }
    if len(said) == 1:
        record["deceased"] = said.pop()
    elif said:
        shown = sorted(str(v) for v in said)
        problems.append(
            RecordProblem(group.path, "deceased", f"the Patient resources disagree: {shown}")
        )
        record["deceased"] = Duplicate(tuple(sorted(said, key=str)))
    # a Patient that cannot be read but gives deceased[x] (a modifierExtension; malformed:
    # deceased[x] in two choice types, R4 formats.html#choice, or of the wrong JSON type,
    # "true" or 20261101, R4 json.html): whatever it says, perhaps deceased, never
    # "alive" (Patient.deceased[x] is a modifier element; breaker7 F1)
    for p in group.patients:
        if p.deceasedDateTime is not None or p.deceasedBoolean is not None or p.deceased_given:
            if (why := _unreadable(p)) is not None:
                where = f"Patient/{p.id}" if p.id else "Patient (no id)"
                record["deceased"] = UnreadDeceased(f"{where} gives deceased[x] but {why}")
                break
