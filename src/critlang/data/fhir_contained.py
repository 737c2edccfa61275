"""Resources inside another resource's `contained` list, read as part of their container.

R4 references.html#contained: a contained resource "has no independent existence" apart
from its container and carries no identity of its own (its id is local: `#o1`), but what
it says is part of the record: lab interfaces send a DiagnosticReport whose `result`
names Observations in its `contained` list, an Encounter may hold its diagnosis as a
contained Condition (`diagnosis.condition: #c1`), a panel Observation its members
(`hasMember: #o1`). Ignoring them let an older platelet count decide and a diabetic pass
a diabetes exclusion without a word (breaker8 F8).

`with_contained(r, codes, own) -> list[Resource]`: r itself when `own(r, codes)` (its
own code is bound), then every contained resource `own` would keep, each marked with its
container (`Resource.container`, so it is named "Observation #o1 contained in
DiagnosticReport/dr1", never as a resource of the data). A contained resource is the
container's patient's: its own `subject` (or `patient`) when it names one, else the
container's. When that cannot be told, or its container cannot be read, it is made
unusable (`malformed`, with why), so that each fact it names is unknown and, for a value,
it may be the newest (never ignored in silence):

- its own subject names another reference than its container's (whose it is cannot be
  told without resolving both; the usual shape repeats the container's or leaves it out);
- the container is malformed (a member named twice anywhere in it, contained ones too;
  RFC 8259 section 4), has a modifierExtension (R4 extensibility.html: it may change the
  meaning of all it holds), or has status entered-in-error (in every R4 status value set:
  the resource "should not be treated as valid");
- it contains resources itself (R4 dom-2: a contained resource SHALL NOT contain nested
  resources) or gives a choice element twice / an element of an earlier FHIR version
  (fhir_choices: checked here, as the container's text holds it).

A contained Patient names no patient of the cohort (fhir_refs refuses a contained
subject) and a contained Medication gives a therapy its code (fhir_refs.Medications):
neither is data of its own. Decoding costs nothing extra: msgspec decodes `contained`
with the resource (fhir_decode.Resource), and only resources that have one look further.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from .fhir_choices import foreign_element, two_choices
from .fhir_decode import NOT_USED, Resource, resource_label, unusable
from .fhir_duplicates import duplicate_keys
from .fhir_status import modifier_unread

NOT_DATA = frozenset({"Patient", "Medication", "Bundle"})
Own = Callable[[Resource, Any], bool]


def holds(r: Resource, codes: Any, own: Own) -> bool:
    """Whether a contained resource of r can give a fact (r.contained is not empty)."""
    return any(c.resourceType not in NOT_DATA and own(c, codes) for c in r.contained or ())


def with_contained(r: Resource, codes: Any, own: Own) -> list[Resource]:
    """r when its own code can give a fact, then its contained resources that can (see
    the module docstring); r.contained is not empty."""
    out = [r] if own(r, codes) else []
    inner = [c for c in r.contained or () if c.resourceType not in NOT_DATA and own(c, codes)]
    if not inner:
        return out
    label = resource_label(r)
    raw = bytes(r.raw_) if r.raw_ else b""
    duplicate_keys(r)  # the whole container's text: a member twice in a contained one too
    why = _container_unread(r)
    items = _contained_items(raw) if raw and why is None else None
    medications = [c for c in r.contained or () if c.resourceType == "Medication"]
    reference = _reference(r)
    for c in inner:
        c.container = label
        if c.malformed is not None:
            continue
        if why is not None:
            c.malformed = f"{NOT_USED}its container {label} {why}"
            continue
        if c.contained:
            c.malformed = "it contains resources itself (R4 dom-2: a contained resource SHALL NOT)"
            continue
        own_ref = _reference(c)
        if own_ref is not None and own_ref != reference:
            c.malformed = (
                f"{NOT_USED}its subject {own_ref[:80]!r} is not its container's "
                f"({(reference or 'none')[:80]!r}), so whose it is cannot be told"
            )
            continue
        if items is not None and c.id is not None:
            item = items.get((c.resourceType, c.id))
            if item is not None:
                c.malformed = two_choices(item) or foreign_element(item)
                if c.malformed is not None:
                    continue
        if medications:
            # `medicationReference: #m1` names a sibling Medication of the container
            c.contained = medications
    return out + inner


def _container_unread(r: Resource) -> str | None:
    """Why nothing r contains can be read, or None."""
    if r.malformed is not None:
        return unusable(r.malformed)
    unread = modifier_unread(r)
    if unread is not None:
        return unread
    if r.status == "entered-in-error":
        return "has status 'entered-in-error' (it should not be treated as valid)"
    return None


def _reference(r: Resource) -> str | None:
    ref = r.subject if r.subject is not None else r.patient
    value = ref.reference if ref is not None else None
    return value if isinstance(value, str) and value else None


def _contained_items(raw: bytes) -> dict[tuple[Any, Any], Any] | None:
    """The container's contained resources as plain JSON, by type and id."""
    try:
        item = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    inner = item.get("contained") if isinstance(item, dict) else None
    if not isinstance(inner, list):
        return None
    return {(c.get("resourceType"), c.get("id")): c for c in inner if isinstance(c, dict)}
