"""Which resources a protocol can use, and where an unassigned one with a bound code
goes (split from fhir_input.py; its rules are those of fhir_input's docstring).

`_kept(resources, codes)`: the resources that can give a fact (a bound code, components
with one, a medication reference, a Condition or Procedure whose kind cannot be told),
with what they contain (fhir_contained.py); `_usable(r, codes)`: whether r or a resource
it contains can; `_unassign(...)`: counts an unassigned resource and keeps the ones with
a bound code as strays of their file, or for the check across files.
"""

from __future__ import annotations

import msgspec

from .fhir_bundles import NOT_IN_BUNDLE, NOT_IN_FILE, Stray, elsewhere, may_be_anyone
from .fhir_contained import holds, with_contained
from .fhir_decode import Resource
from .fhir_duplicates import duplicate_keys
from .fhir_refs import (
    DISPLAY_ONLY,
    display_only,
    literal,
    patient_target,
    rest_base,
    subject_reference,
)
from .fhir_status import YES_NO_KINDS
from .fhir_tally import Tally


def _unassign(
    tally: Tally,
    why: str,
    where: str,
    r: Resource,
    codes: frozenset[str] | None,
    strays: list[Stray],
    base: str | None = None,
    path: str | None = None,
    inside: str = "",
) -> None:
    """Counts r as unassigned; one with a bound code is kept as a stray of its file (it
    may be any patient's) or, when it names a patient that is not in its Bundle, for the
    check across files and Bundles (screen_elsewhere.py). `base`: the RESTful fullUrl of
    r's entry; `path` and `inside`: its file and nested Bundle."""
    display = display_only(r) if why == DISPLAY_ONLY else None
    tally.unassign(why, where + (f" (display {display!r})" if display else ""))
    if codes is None or not _usable(r, codes):
        return
    if r.contained:  # what it contains goes where it goes (fhir_contained.py)
        for one in with_contained(r, codes, _usable_own):
            _stray(one, why, where, codes, strays, tally, base, path, inside)
        return
    _stray(r, why, where, codes, strays, tally, base, path, inside)


def _stray(
    r: Resource,
    why: str,
    where: str,
    codes: frozenset[str],
    strays: list[Stray],
    tally: Tally,
    base: str | None,
    path: str | None,
    inside: str,
) -> None:
    """An unassigned resource with a bound code: a stray of its file, or a resource naming
    a patient of another file or Bundle (_unassign)."""
    duplicate_keys(r)
    if r.malformed is not None and any(f"'{k}'" in r.malformed for k in ("subject", "patient")):
        # `"subject"` named twice: the reference read is the last by file order, so the
        # resource may be any patient's of the file (RFC 8259 section 4; R4 json.html)
        why = f"its subject is given twice ({r.malformed})"
        strays.append((where.rsplit(": ", 1)[0], r, why))
    elif may_be_anyone(why):
        strays.append((where.rsplit(": ", 1)[0], r, why))
    elif why in (NOT_IN_FILE, NOT_IN_BUNDLE):
        ref, _ = subject_reference(r)
        target = patient_target(ref)[0] if ref else None
        parts = literal(target) if target and not target.startswith("urn:") else None
        if parts is None:
            return
        # the patient's identity: an absolute URL's base, else that of r's entry (R4
        # bundle.html "Resolving references in Bundles"), else not known
        server = parts[0] or rest_base(base)
        file = path if path is not None else where.rsplit(": ", 1)[0]
        found = elsewhere(parts[2], server, file, inside, r, codes)
        if found is not None:
            tally.elsewhere.append(found)


def _kept(resources: list[Resource], codes: frozenset[str] | None) -> list[Resource]:
    """The resources a protocol can use: a bound code, components with a bound code (or
    that cannot be decoded), a medication reference; the rest are counted but not kept
    (all without codes). Whether one names a JSON member twice is checked where a fact
    is read from it (fhir.Extractor, fhir_decode.duplicate_keys)."""
    if codes is None:
        return resources
    out = []
    for r in resources:
        if r.contained:  # with what it contains (fhir_contained.py)
            out += with_contained(r, codes, _usable_own)
        elif _usable_own(r, codes):
            out.append(r)
    return out


_THERAPIES = frozenset({"MedicationRequest", "MedicationStatement", "MedicationAdministration"})


def _usable(r: Resource, codes: frozenset[str]) -> bool:
    """Whether r, or a resource it contains, can give a fact."""
    if r.contained and holds(r, codes, _usable_own):
        return True
    return _usable_own(r, codes)


def _usable_own(r: Resource, codes: frozenset[str]) -> bool:
    concept = r.code
    if concept is None:
        concept = r.medicationCodeableConcept
    if concept is not None:
        coding = concept.coding
        if coding:
            for c in coding:  # (a loop, not any(): this runs for every resource read)
                if c.code in codes:
                    return True
            if r.component_:
                return _components_bound(r, codes)
            if r.resourceType in YES_NO_KINDS:
                # a Condition or Procedure coded only in systems the protocol binds no
                # yes/no fact in may be one of them: kept, the extractor says so (F7)
                yesno = getattr(codes, "yesno_systems", None)
                return bool(yesno) and all(c.system not in yesno for c in coding)
            # a therapy coded only in systems the protocol binds no therapy in (NDC when
            # it binds RxNorm) may be any bound kind: kept, the extractor says so
            # (realfhir7 F6)
            systems = getattr(codes, "list_systems", None)
            if not systems or r.medicationCodeableConcept is None:
                return False
            if r.resourceType not in _THERAPIES:
                return False
            return all(c.system not in systems for c in coding)
    if r.component_ and _components_bound(r, codes):
        return True
    if r.resourceType in YES_NO_KINDS and getattr(codes, "yesno_systems", None):
        return True  # text only, or no code: what it is cannot be told (F7)
    return r.medicationReference is not None or r.malformed is not None


def _components_bound(r: Resource, codes: frozenset[str]) -> bool:
    """Whether r's components can give a fact: one has a bound code, or they do not have
    their datatypes (the extractor then reports r as malformed, as for any kept resource).
    A panel whose components carry no bound code gives nothing (most blood pressure and
    questionnaire panels of a cohort): not kept, only counted."""
    try:
        components = r.component
    except (msgspec.ValidationError, msgspec.DecodeError):
        return True
    for comp in components or ():
        concept = comp.code
        if concept is not None:
            for c in concept.coding or ():
                if c.code in codes:
                    return True
    return False
