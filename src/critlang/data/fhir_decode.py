"""Typed decoding of FHIR R4 JSON: only the elements critlang reads, with msgspec.

A resource is decoded into one `Resource` struct holding every element any binding can
need (Observation, Condition, Medication*, Procedure, Patient, Bundle); all other
elements are skipped by the decoder without building Python objects, which is what
makes screening faster than a plain `json.load` of the same files.

Structure is typed (a `coding` must be a list of objects, a `code` a string: FHIR R4
datatypes Coding/CodeableConcept/Reference/Period); the elements in LAZY are kept as raw
JSON and decoded only for resources whose code is bound. Values are not typed (`valueQuantity.value`
is read later, where a bad number becomes a per-fact diagnostic). When a file does not
decode as typed, it is decoded again generically and each resource is converted alone,
so one malformed resource costs only itself: it becomes a `Resource` that keeps what
identifies it (type, id, subject, codes) and says in `malformed` why it is unusable.

Errors: `decode_file` and `decode_line` never raise for bad input; they return problems.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from msgspec import Struct, field

from .fhir_choices import two_choices
from .fhir_duplicates import RAW_BUNDLE as _RAW_BUNDLE
from .fhir_duplicates import RAW_LIST as _RAW_LIST
from .fhir_duplicates import bundle_duplicates, loose_raws
from .values import exact_number


class Coding(Struct, gc=False):
    system: str | None = None
    code: str | None = None


class Concept(Struct, gc=False):
    """CodeableConcept."""

    coding: list[Coding] | None = None
    text: str | None = None


class Ref(Struct, gc=False):
    """Reference (FHIR R4 2.3.0.1 / references.html): `reference`, `type`, `identifier`,
    `display`."""

    reference: str | None = None
    type: str | None = None
    identifier: Any = None
    display: Any = None  # text only: names no resource (a display-only subject)


class Quantity(Struct, gc=False):
    value: Any = None
    comparator: Any = None
    unit: Any = None
    system: Any = None
    code: Any = None


class Period(Struct, gc=False):
    start: str | None = None
    end: str | None = None


class Span(Struct, gc=False):
    low: Quantity | None = None  # Range (R4 datatypes.html#Range)
    high: Quantity | None = None


class Range(Struct, gc=False):
    """Observation.referenceRange, with to whom it applies (type, appliesTo, age)."""

    low: Quantity | None = None
    high: Quantity | None = None
    type: Concept | None = None
    appliesTo: list[Concept] | None = None
    age: Span | None = None


class Component(Struct, gc=False):
    """Observation.component: a code and a value like the Observation's own."""

    code: Concept | None = None
    # BackboneElement.modifierExtension: present means the component is not read
    # (R4 extensibility.html#modifierExtension)
    modifierExtension: Any = None
    valueQuantity: Quantity | None = None
    valueInteger: Any = None
    valueBoolean: Any = None
    valueString: Any = None
    # only whether it is there: a coded answer is not read (fhir_observation._offered)
    valueCodeableConcept: msgspec.Raw = msgspec.Raw()
    dataAbsentReason: Concept | None = None
    referenceRange: list[Range] | None = None


class PatientLink(Struct, gc=False):
    """Patient.link: another Patient resource about the same person, and how (link-type)."""

    other: Ref | None = None
    type: str | None = None
    modifierExtension: Any = None  # BackboneElement.modifierExtension: the link unread


class Meta(Struct, gc=False):
    """Resource.meta: the version and time of this state of the resource (R4 Meta);
    values checked where used (fhir_bundles.py)."""

    versionId: Any = None
    lastUpdated: Any = None


class DispenseRequest(Struct, gc=False):
    validityPeriod: Period | None = None
    modifierExtension: Any = None  # BackboneElement.modifierExtension: its dates unread


EMPTY = msgspec.Raw()
# elements kept as raw JSON and decoded only when a resource's code is bound: most
# resources of a cohort are about nothing the protocol reads, and building their values
# costs more than skipping them (docs/fhir.md, Performance)
LAZY = (
    "valueQuantity",
    "component",
    "referenceRange",
    "effectivePeriod",
    "clinicalStatus",
    "verificationStatus",
    "abatementPeriod",
    "dispenseRequest",
    "performedPeriod",
    "dosageInstruction",
    "type",
)


def _lazy(name: str) -> Any:
    return field(default=EMPTY, name=name)


class Resource(Struct, gc=False):
    """The elements critlang reads, from any resource type (absent ones stay None).

    Attribute names are FHIR's JSON element names, so no renaming is needed; the
    elements in LAZY are held as raw JSON (`<name>_`) and decoded on access (`<name>`),
    raising msgspec.ValidationError / DecodeError when they do not have their datatype.
    """

    resourceType: str | None = None
    id: str | None = None
    status: str | None = None
    code: Concept | None = None
    subject: Ref | None = None
    patient: Ref | None = None
    # Observation (`issued` is not decoded: it is never the date, see docs/fhir.md)
    effectiveDateTime: str | None = None
    effectivePeriod_: msgspec.Raw = _lazy("effectivePeriod")
    effectiveInstant: str | None = None
    valueQuantity_: msgspec.Raw = _lazy("valueQuantity")
    valueInteger: Any = None
    valueBoolean: Any = None
    valueString: Any = None
    # only whether it is there: a coded answer is not read (fhir_observation._offered)
    valueCodeableConcept_: msgspec.Raw = _lazy("valueCodeableConcept")
    dataAbsentReason: Concept | None = None
    component_: msgspec.Raw = _lazy("component")
    referenceRange_: msgspec.Raw = _lazy("referenceRange")
    # Condition
    clinicalStatus_: msgspec.Raw = _lazy("clinicalStatus")
    verificationStatus_: msgspec.Raw = _lazy("verificationStatus")
    # onset[x], abatement[x], performed[x]: every R4 choice type is kept (fhir_events.py
    # reads each one or refuses it); the rare ones are plain JSON values
    onsetDateTime: str | None = None
    onsetPeriod: Any = None
    onsetAge: Any = None
    onsetRange: Any = None
    onsetString: Any = None
    recordedDate: str | None = None
    abatementDateTime: str | None = None
    abatementPeriod_: msgspec.Raw = _lazy("abatementPeriod")
    abatementAge: Any = None
    abatementRange: Any = None
    abatementString: Any = None
    abatementBoolean: Any = None
    # Medication*, Procedure
    medicationCodeableConcept: Concept | None = None
    medicationReference: Ref | None = None
    authoredOn: str | None = None
    dispenseRequest_: msgspec.Raw = _lazy("dispenseRequest")
    # MedicationRequest.dosageInstruction (Dosage): read generically, each bound checked
    # where it is used (fhir_therapy.planned_end)
    dosageInstruction_: msgspec.Raw = _lazy("dosageInstruction")
    performedDateTime: str | None = None
    performedPeriod_: msgspec.Raw = _lazy("performedPeriod")
    performedAge: Any = None
    performedRange: Any = None
    performedString: Any = None
    # MedicationRequest.doNotPerform and .intent: modifier elements (fhir_status.py)
    doNotPerform: Any = None
    intent: Any = None
    # DomainResource.modifierExtension (any resource) and Observation.focus: a resource
    # with either is not read as the patient's own (fhir_status.py)
    modifierExtension: Any = None
    focus: Any = None
    # Patient
    birthDate: str | None = None
    gender: str | None = None
    deceasedBoolean: bool | None = None
    deceasedDateTime: str | None = None
    active: bool | None = None  # Patient.active and Patient.link: modifier elements
    link: list[PatientLink] | None = None
    # any resource (DomainResource.contained, Resource.meta), and Bundle.type / entry
    contained: list[Resource] | None = None
    meta: Meta | None = None
    type_: msgspec.Raw = _lazy("type")  # Bundle.type; raw, as other resources' differ
    entry: list[Entry] | None = None
    # set by critlang, never read from JSON: why this resource cannot be used
    malformed: str | None = field(default=None, name="critlang:malformed")
    # set by critlang, never read from JSON: a malformed resource (salvage) named a
    # deceased[x] member (Patient.deceased[x], a modifier element: perhaps deceased)
    deceased_given: bool = field(default=False, name="critlang:deceased")
    # set by critlang: the resource's own JSON text, to look for duplicate keys in the
    # resources a protocol uses (duplicate_keys); never read from JSON
    raw_: msgspec.Raw = field(default=EMPTY, name="critlang:raw")
    # set by critlang, never read from JSON: the label of the resource whose `contained`
    # list holds this one (fhir_contained.py), which names it
    container: str | None = field(default=None, name="critlang:container")
    # set by critlang (fhir_duplicates.examine), never read from JSON: the paths of the
    # members its text names twice (None: not examined), the bound codes its `code`
    # members name in any copy when there are such, and a choice element given in two
    # types, kept until a fact is read from it
    dups_: tuple[str, ...] | None = field(default=None, name="critlang:dups")
    hidden_: tuple[str, ...] = field(default=(), name="critlang:hidden")
    pending_: str | None = field(default=None, name="critlang:pending")

    @property
    def valueQuantity(self) -> Quantity | None:
        return _QUANTITY.decode(self.valueQuantity_) if self.valueQuantity_ else None

    @property
    def component(self) -> list[Component] | None:
        return _COMPONENTS.decode(self.component_) if self.component_ else None

    @property
    def referenceRange(self) -> list[Range] | None:
        return _RANGES.decode(self.referenceRange_) if self.referenceRange_ else None

    @property
    def effectivePeriod(self) -> Period | None:
        return _PERIOD.decode(self.effectivePeriod_) if self.effectivePeriod_ else None

    @property
    def clinicalStatus(self) -> Concept | None:
        return _CONCEPT.decode(self.clinicalStatus_) if self.clinicalStatus_ else None

    @property
    def verificationStatus(self) -> Concept | None:
        raw = self.verificationStatus_
        return _CONCEPT.decode(raw) if raw else None

    @property
    def abatementPeriod(self) -> Period | None:
        return _PERIOD.decode(self.abatementPeriod_) if self.abatementPeriod_ else None

    @property
    def dispenseRequest(self) -> DispenseRequest | None:
        raw = self.dispenseRequest_
        return _DISPENSE.decode(raw) if raw else None

    @property
    def dosageInstruction(self) -> Any:
        raw = self.dosageInstruction_
        return msgspec.json.decode(raw) if raw else None

    @property
    def performedPeriod(self) -> Period | None:
        return _PERIOD.decode(self.performedPeriod_) if self.performedPeriod_ else None


class EntryRequest(Struct, gc=False):
    """Bundle.entry.request (R4 bundle.html; bdl-3: transaction, batch, history only)."""

    method: Any = None
    url: Any = None


class EntryResponse(Struct, gc=False):
    """Bundle.entry.response (transaction-response, batch-response, history)."""

    status: Any = None
    location: Any = None
    etag: Any = None
    lastModified: Any = None


class EntrySearch(Struct, gc=False):
    """Bundle.entry.search (searchset: mode match, include or outcome)."""

    mode: Any = None


class Entry(Struct, gc=False):
    """Bundle.entry: `fullUrl` names `resource` inside the bundle (R4 bundle.html#references)."""

    fullUrl: str | None = None
    resource: Resource | None = None
    # BackboneElement.modifierExtension on the entry: its resource is not read
    modifierExtension: Any = None
    request: EntryRequest | None = None
    response: EntryResponse | None = None
    search: EntrySearch | None = None


_CONCEPT = msgspec.json.Decoder(Concept | None)
# a decimal a float cannot hold arrives exact (values.exact_number; R4 decimal)
_QUANTITY = msgspec.json.Decoder(Quantity | None, float_hook=exact_number)
_COMPONENTS = msgspec.json.Decoder(list[Component] | None, float_hook=exact_number)
_RANGES = msgspec.json.Decoder(list[Range] | None, float_hook=exact_number)
_PERIOD = msgspec.json.Decoder(Period | None)
_DISPENSE = msgspec.json.Decoder(DispenseRequest | None)


_FILE = msgspec.json.Decoder(Resource | list[Resource])
_LINE = msgspec.json.Decoder(Resource)
_GENERIC = msgspec.json.Decoder()
_ENCODE = msgspec.json.Encoder().encode


class Decoded(Struct):
    """What one file or line held: entries (fullUrl and resource), or a problem."""

    items: list[Entry]
    bundle: bool = False
    type: str | None = None  # Bundle.type
    problem: str | None = None  # the whole input is unusable, and why
    # per item that is not a resource at all (index, why)
    broken: list[tuple[int, str]] = msgspec.field(default_factory=list)
    # the text has a backslash: a JSON escape may spell a bound code (fhir_bound.py)
    escapes: bool = True


def decode_file(data: bytes) -> Decoded:
    """A JSON file: a Bundle, one resource, or a top-level array of resources."""
    if not data.strip():
        return Decoded([], problem="the file is empty")
    try:
        top = _FILE.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return _decode_loosely(data)
    out = _typed(top, data)
    out.escapes = b"\\" in data
    return out


def _typed(top: Resource | list[Resource], data: bytes) -> Decoded:
    if isinstance(top, list):
        for r, raw in zip(top, _RAW_LIST.decode(data), strict=True):
            r.raw_ = raw
        return Decoded([Entry(None, r) for r in top])
    out = _unwrap(top)
    if out.bundle:
        entries = _RAW_BUNDLE.decode(data).entry or []
        dup = bundle_duplicates(data, entries)
        if dup:
            # Bundle.entry, .type, an entry's resource/request/response given twice: the
            # readers keep the last copy in silence, so which resources the file holds,
            # and in what state, would be decided by key order (breaker7 F3)
            names = ", ".join(map(repr, dup))
            return Decoded(
                [],
                bundle=True,
                problem=f"duplicate JSON keys {names} in the Bundle or its entries: "
                "conflicting copies, so what the file holds cannot be told",
            )
        for e, raw in zip(out.items, entries, strict=True):
            if e.resource is not None:
                e.resource.raw_ = raw.resource
    elif out.items and out.items[0].resource is not None:
        out.items[0].resource.raw_ = msgspec.Raw(data)
    return out


def _unwrap(top: Resource) -> Decoded:
    if top.resourceType is None:
        return Decoded([], problem="not FHIR: the JSON object has no resourceType")
    if top.resourceType != "Bundle":
        return Decoded([Entry(None, top)])
    return Decoded(top.entry or [], bundle=True, type=bundle_type(top))


NOT_USED = "not used: "  # a `malformed` text saying why a well-formed resource cannot be used


def resource_label(r: Resource) -> str:
    """How messages name a resource: "Observation/x", or "Observation (no id)"; a
    contained one by its local id in its container, "Observation #o1 contained in
    DiagnosticReport/d1" (R4 references.html#contained: it has no identity of its own)."""
    if r.container is not None:
        return f"{r.resourceType} #{r.id or '(no id)'} contained in {r.container}"
    # a stand-in with no type is an NDJSON line that cannot be read
    # (fhir_ndjson._unreadable_line)
    if r.resourceType is None:
        return "a line that cannot be read"
    return f"{r.resourceType}/{r.id}" if r.id else f"{r.resourceType} (no id)"


def unusable(why: str) -> str:
    """How a resource's `malformed` text reads after its label: "is malformed (...)", or
    for a resource whose state cannot be told (fhir_bundles.py) "cannot be used: ..."."""
    if why.startswith(NOT_USED):
        return "cannot be used: " + why[len(NOT_USED) :]
    return f"is malformed ({why})"


def bundle_type(r: Resource) -> str | None:
    """Bundle.type as written, or None when absent or not a string."""
    if not r.type_:
        return None
    try:
        value = msgspec.json.decode(r.type_)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, str) else None


def _generic(data: bytes) -> tuple[Any, str | None]:
    """Plain JSON values; the standard library reads what msgspec refuses (1e400)."""
    try:
        return _GENERIC.decode(data), None
    except RecursionError:
        return None, "not readable: JSON nested too deeply"
    except msgspec.ValidationError:  # a number msgspec cannot hold (1e400): a subclass of
        try:  # DecodeError, so caught first
            return json.loads(data), None
        except (ValueError, RecursionError) as exc:
            return None, f"not JSON ({exc})"
    except msgspec.DecodeError as exc:
        if "UTF-8" in str(exc):
            return None, f"not UTF-8 text ({exc})"
        return None, f"not JSON ({exc})"


def _decode_loosely(data: bytes) -> Decoded:
    out = _loosely(data)
    out.escapes = b"\\" in data
    return out


def _loosely(data: bytes) -> Decoded:
    top, problem = _generic(data)
    if problem is not None:
        return Decoded([], problem=problem)
    raws = loose_raws(data, top) if isinstance(top, (list, dict)) else []
    if isinstance(top, list):
        out = Decoded([])
        for i, item in enumerate(top):
            _add(out, i, item, raw=raws[i] if len(raws) == len(top) else EMPTY)
        return out
    if not isinstance(top, dict):
        return Decoded([], problem=f"not FHIR: the file holds a JSON {type(top).__name__}")
    if "resourceType" not in top:
        return Decoded([], problem="not FHIR: the JSON object has no resourceType")
    if top.get("resourceType") != "Bundle":
        out = Decoded([])
        _add(out, 0, top, raw=msgspec.Raw(data))
        return out
    entries = top.get("entry")
    kind = top.get("type") if isinstance(top.get("type"), str) else None
    if entries is None:
        return Decoded([], bundle=True, type=kind)
    if not isinstance(entries, list):
        # Bundle.entry is 0..* BackboneElement: JSON gives it as an array (R4 json.html)
        return Decoded([], bundle=True, type=kind, problem="Bundle.entry is not a list")
    out = Decoded([], bundle=True, type=kind)
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            out.broken.append((i, "a Bundle entry is not an object"))
            continue
        url = e.get("fullUrl") if isinstance(e.get("fullUrl"), str) else None
        parts = [_part(e.get(k), t) for k, t in _PARTS]
        if e.get("resource") is None and parts[0] is not None:
            # a history or transaction entry with a request and no resource (a DELETE)
            out.items.append(Entry(url, None, *parts))
            continue
        _add(out, i, e.get("resource"), url, parts, raws[i] if len(raws) == len(entries) else EMPTY)
    return out


_PARTS = (("request", EntryRequest), ("response", EntryResponse), ("search", EntrySearch))


def _part(value: Any, kind: type[Any]) -> Any:
    if not isinstance(value, dict):
        return None
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError:
        return None


def _add(
    out: Decoded,
    i: int,
    item: Any,
    url: str | None = None,
    parts: Any = (),
    raw: msgspec.Raw = EMPTY,
) -> None:
    if not isinstance(item, dict) or not isinstance(item.get("resourceType"), str):
        out.broken.append((i, "not a FHIR resource (no resourceType)"))
        return
    r = convert(item)
    r.raw_ = raw  # its text: a member given twice is still found (fhir_duplicates)
    out.items.append(Entry(url, r, *parts))


def convert(item: dict[str, Any]) -> Resource:
    """One resource from plain JSON values; a malformed one keeps its identity only."""
    lazy = {}
    for k in LAZY:
        if k in item:
            try:  # back to JSON text, to be decoded when used
                lazy[k] = msgspec.Raw(json.dumps(item[k], allow_nan=False).encode())
            except (ValueError, RecursionError):
                return salvage(item, f"`{k}` holds a number out of range")
    twice = two_choices(item)
    if twice is not None:
        return salvage(item, twice)
    # contained resources (R4 references.html#contained) each on their own: their lazy
    # elements are JSON text too, and one malformed costs only itself (fhir_contained)
    value = item.get("contained")
    inner = None
    if value is not None and not isinstance(value, list):
        return salvage(item, "contained is not a list")
    if isinstance(value, list):
        resources = [
            c for c in value if isinstance(c, dict) and isinstance(c.get("resourceType"), str)
        ]
        inner = [convert(c) for c in resources]
        if len(resources) < len(value):
            r = salvage(item, "a contained item is not a FHIR resource")
            r.contained = inner
            return r
    try:
        r = msgspec.convert({**item, **lazy, "contained": None}, Resource)
    except (msgspec.ValidationError, RecursionError) as exc:
        r = salvage(item, str(exc))
    r.contained = inner
    return r


def salvage(item: dict[str, Any], why: str) -> Resource:
    """What identifies a malformed resource (type, id, subject, codes), and why."""

    def ref(value: Any) -> Ref | None:
        if isinstance(value, dict) and isinstance(value.get("reference"), str):
            return Ref(value["reference"])
        return None

    def concept(value: Any) -> Concept | None:
        if not isinstance(value, dict) or not isinstance(value.get("coding"), list):
            return None
        codings = [
            Coding(c.get("system") if isinstance(c.get("system"), str) else None, c["code"])
            for c in value["coding"]
            if isinstance(c, dict) and isinstance(c.get("code"), str)
        ]
        return Concept(codings)

    rid = item.get("id")
    return Resource(
        resourceType=item["resourceType"],
        id=rid if isinstance(rid, str) else None,
        subject=ref(item.get("subject")),
        patient=ref(item.get("patient")),
        code=concept(item.get("code")),
        medicationCodeableConcept=concept(item.get("medicationCodeableConcept")),
        malformed=why,
        deceased_given=any(isinstance(k, str) and k.startswith("deceased") for k in item),
    )


def decode_line(line: bytes) -> tuple[Resource | None, str | None]:
    """One NDJSON line: a resource, or why it is not one."""
    try:
        r = _LINE.decode(line)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        top, problem = _generic(line)
        if problem is not None:
            return None, problem
        if not isinstance(top, dict) or not isinstance(top.get("resourceType"), str):
            return None, "not a FHIR resource (no resourceType)"
        r = convert(top)
        r.raw_ = msgspec.Raw(line)  # its text: a member given twice is still found
        return r, None
    if r.resourceType is None:
        return None, "not a FHIR resource (no resourceType)"
    r.raw_ = msgspec.Raw(line)
    return r, None
