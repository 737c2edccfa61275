"""Which entries of a Bundle (or lines of an NDJSON export) are the current state of a
resource: Bundle types, versions, deletions and duplicate ids.

Rules (each with its FHIR R4 source; docs/fhir.md, "Bundle types, versions, duplicates"):

- A resource is named by `[type]/[id]` and, where its entry's RESTful fullUrl gives
  it, its server base (Resource.id: ids are unique per server; R4 bundle.html: a
  RESTful fullUrl is `[base]/[type]/[id]`): `http://a/fhir/Observation/14` and
  `http://b/fhir/Observation/14` are two resources (bdl-7 asks only that fullUrls be
  unique). Entries of one id are split by server only when every one of them has a
  known base (an entry with none may be a copy of either). An NDJSON export is one
  server's data. Entries with no id are named by their fullUrl.
- Several entries of one resource (R4 bundle.html bdl-7: "FullUrl must be unique in a
  bundle, or else entries with the same fullUrl must have different meta.versionId
  (except in history bundles)"; http.html#history: a history Bundle holds the versions
  of a resource): identical copies are one resource (the others counted as copies);
  otherwise they are versions, and the current one is the newest by
  `meta.lastUpdated` (else `entry.response.lastModified`), or, when those are missing,
  by a numeric `meta.versionId` (else the version in `entry.response.etag` `W/"n"` or
  `location` `.../_history/n`). When the order cannot be told (a version without either,
  equal times, versionId and lastUpdated disagreeing), no version is used: each is
  counted as "not used" with the reason, never the first or last in the file.
- An entry whose `request.method` is DELETE (history, http.html#history: "the resource
  was deleted"; Bundle.entry.request) has no resource: when it is the newest version of
  its resource, that resource is deleted and none of its versions is used. A
  transaction or batch that both deletes and writes one resource is a conflict
  (http.html#trules: overlapping identities make a transaction fail): none is used.
- transaction-response and batch-response: an entry whose `response.status` is not 2xx
  did not happen (Bundle.entry.response.status): its resource is not used.
- searchset: entries of `search.mode` match and include are data; OperationOutcome
  entries (mode outcome, or any Bundle) are reported: the server says something about
  the search (perhaps that it is incomplete).
- document, collection, searchset, transaction, batch and absent types are read as
  collections of current resources; the rules above apply to each.

Patient and Medication resources in Bundles other than history keep their own rules
(fhir_input._BundleIndex flags a Patient given twice; fhir_refs.Medications makes a
Medication given with two codes a conflict).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from msgspec import structs

from .fhir_decode import EMPTY, NOT_USED, Entry, Resource, resource_label
from .fhir_duplicates import meta_twice
from .fhir_refs import HISTORY, literal, rest_base
from .records import RecordProblem

HISTORY_TYPE = "history"
WRITES = frozenset({"transaction", "batch"})
RESPONSES = frozenset({"transaction-response", "batch-response"})
KNOWN_TYPES = frozenset(
    {"document", "message", "collection", "searchset", "history", *WRITES, *RESPONSES}
)
# R4 datatypes.html#instant (meta.lastUpdated) and #dateTime with a time
_INSTANT = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-](?:0\d|1[0-4]):[0-5]\d)\Z")
_ETAG = re.compile(r'(?:W/)?"(\d+)"\Z')
_VERSION = re.compile(r"/_history/(\d+)\Z")

SUPERSEDED = "an earlier version of a resource (only its newest version is used)"
DELETED = "its resource is deleted (its newest entry is a DELETE, R4 http.html#history)"
UNORDERED = (
    "its versions cannot be ordered (no distinct meta.lastUpdated or numeric "
    "meta.versionId, R4 http.html#history): none used"
)
CONFLICT = (
    "its id is given more than once with different contents and no meta.versionId or "
    "meta.lastUpdated to order them (R4 bdl-7): none used"
)
COPY = "an identical copy of another entry of the same resource"
TRANSACTION_CONFLICT = (
    "a transaction or batch both deletes and writes it (R4 http.html#trules): not used"
)
DELETE_BODY = "the resource given in a DELETE entry (the DELETE is what counts)"
FAILED = "its transaction or batch entry failed (response.status not 2xx)"
META_TWICE = (
    "a version names a member of its meta twice (RFC 8259 section 4: which copy holds is "
    "file order), so its versions cannot be ordered (R4 http.html#history): none used"
)

Drop = Callable[[str, str], None]  # (reason, where)
Where = Callable[[int], str]  # entry index -> where it is
Item = tuple[str, Entry]  # (where, entry)


def method(e: Entry) -> str | None:
    m = e.request.method if e.request is not None else None
    return m.upper() if isinstance(m, str) else None


def identity(e: Entry) -> tuple[str, str] | None:
    """(type, id) of the resource an entry holds or deletes, else ("url", its fullUrl)."""
    r = e.resource
    if r is not None and method(e) != "DELETE":
        if r.resourceType and r.id:
            return r.resourceType, r.id
        return ("url", HISTORY.sub("", e.fullUrl)) if e.fullUrl else None
    for name in (e.request.url if e.request is not None else None, e.fullUrl):
        if isinstance(name, str) and "?" not in name:  # not a conditional delete
            parts = literal(name)
            if parts is not None:
                return parts[1], parts[2]
    return None


def _instant(value: Any) -> tuple[dt.datetime, Decimal] | None:
    if not isinstance(value, str):
        return None
    m = _INSTANT.match(value)
    if m is None:
        return None
    try:
        at = dt.datetime.fromisoformat(m.group(1) + m.group(3).replace("Z", "+00:00"))
    except ValueError:
        return None
    return at.astimezone(dt.UTC), Decimal("0" + (m.group(2) or ".0"))


def _when(e: Entry) -> tuple[dt.datetime, Decimal] | None:
    r = e.resource
    if r is not None and r.meta is not None and r.meta.lastUpdated is not None:
        return _instant(r.meta.lastUpdated)
    return _instant(e.response.lastModified) if e.response is not None else None


def _version(e: Entry) -> int | None:
    r = e.resource
    if r is not None and r.meta is not None and r.meta.versionId is not None:
        v = r.meta.versionId
        return int(v) if isinstance(v, str) and v.isdigit() else None
    if e.response is not None:
        if isinstance(e.response.etag, str) and (m := _ETAG.match(e.response.etag)):
            return int(m.group(1))
        if isinstance(e.response.location, str) and (m := _VERSION.search(e.response.location)):
            return int(m.group(1))
    for name in (e.fullUrl, e.request.url if e.request is not None else None):
        if isinstance(name, str) and (m := _VERSION.search(name)):
            return int(m.group(1))
    return None


def _content(r: Resource) -> Resource:
    """What critlang reads of a resource, without its meta and raw text."""
    return structs.replace(r, meta=None, raw_=EMPTY)


def _ordered(group: list[Item]) -> list[Item] | None:
    """The versions oldest first, or None when their order cannot be told."""
    times = [_when(e) for _, e in group]
    versions = [_version(e) for _, e in group]
    by_version = None
    if all(v is not None for v in versions) and len(set(versions)) == len(versions):
        by_version = [group[i] for i in sorted(range(len(group)), key=lambda i: versions[i])]
    if all(t is not None for t in times) and len(set(times)) == len(times):
        by_time = [group[i] for i in sorted(range(len(group)), key=lambda i: times[i])]  # type: ignore[arg-type,return-value]
        if by_version is not None and by_version != by_time:
            return None  # meta.versionId and meta.lastUpdated disagree
        return by_time
    return by_version


def current(entries: list[Entry], kind: str | None, drop: Drop, where: Where) -> set[int]:
    """The entries that are not the current state of their resource (module docstring),
    as a set of their id(); usually empty.

    `entries` in file order; `kind`: Bundle.type (None for NDJSON); `where(i)` names
    entry i; `drop(reason, where)` is called once for every resource in the set. An entry
    whose state cannot be told stays out of the set but is marked unusable (`malformed`).
    Patient and Medication entries are left alone but in history Bundles (module docstring).
    """
    try:
        # the usual Bundle (or patient's lines): no request or response, every resource
        # named once by its type and id; nothing to resolve (the loop below agrees)
        if not any(e.request is not None or e.response is not None for e in entries):
            named = {(e.resource.resourceType, e.resource.id) for e in entries}  # type: ignore[union-attr]
            if len(named) == len(entries) and all(t and i for t, i in named):
                return set()
    except AttributeError:  # an entry with no resource
        pass
    history = kind == HISTORY_TYPE
    responses = kind in RESPONSES
    first: dict[tuple[str, str], int] = {}
    groups: dict[tuple[str, str], list[int]] = {}
    skip: set[int] = set()
    for i, e in enumerate(entries):
        r = e.resource
        if e.request is not None or e.response is not None:
            if responses and r is not None and e.response is not None:
                status = e.response.status
                if isinstance(status, str) and not status.strip().startswith("2"):
                    drop(FAILED, f"{where(i)}: {resource_label(r)}")
                    skip.add(id(e))
                    continue
            if method(e) == "DELETE":
                if r is not None:
                    # a DELETE records that the resource was deleted: what it carries is
                    # not a state of the resource (http.html#history)
                    drop(DELETE_BODY, f"{where(i)}: {resource_label(r)}")
                    skip.add(id(e))
                key = identity(e)
                if key is not None:
                    groups.setdefault(key, []).append(i)
                continue
        if r is None:
            continue
        kind_ = r.resourceType
        if not history and (kind_ == "Patient" or kind_ == "Medication"):
            continue
        rid = r.id
        key = (kind_, rid) if rid and kind_ else identity(e)  # type: ignore[assignment]
        if key is None:
            continue
        j = first.setdefault(key, i)
        if j != i:
            group = groups.get(key)
            if group is None:
                groups[key] = [j, i]
            else:
                group.append(i)
    for key, indexes in groups.items():
        if key in first and first[key] not in indexes:
            indexes.insert(0, first[key])  # a DELETE grouped before the resource was seen
        for part in _by_server(key, sorted(set(indexes)), entries):
            group = [(where(i), entries[i]) for i in part]
            if len(group) > 1:
                kept = {id(e) for e in _one_resource(group, kind, drop)}
                skip.update(id(e) for _, e in group if e.resource is not None and id(e) not in kept)
    return skip


def _by_server(key: tuple[str, str], indexes: list[int], entries: list[Entry]) -> list[list[int]]:
    """The entries of one [type]/[id] split by the server base of their RESTful fullUrl
    (R4 bundle.html: `[base]/[type]/[id]`; Resource.id is unique per server only): one id
    on two servers is two resources. When an entry has no known base (a `urn:uuid:`, no
    fullUrl, a relative DELETE), it may be either's: not split."""
    bases = [rest_base(HISTORY.sub("", entries[i].fullUrl or ""), *key) for i in indexes]
    if None in bases or len(set(bases)) < 2:
        return [indexes]
    parts: dict[str | None, list[int]] = {}
    for i, b in zip(indexes, bases, strict=True):
        parts.setdefault(b, []).append(i)
    return [parts[b] for b in sorted(parts)]  # type: ignore[type-var]


def _one_resource(group: list[Item], kind: str | None, drop: Drop) -> list[Entry]:
    held = [(w, e) for w, e in group if e.resource is not None and method(e) != "DELETE"]
    deletes = len(group) - len(held)
    if not held:
        return []

    def unusable(reason: str) -> list[Entry]:
        # unusable, not dropped: every entry is kept, marked, so that each patient it may
        # concern gets a per-fact diagnostic and the fact is unknown (never "absent",
        # which --absent-means-no reads as no), whichever entry comes first
        for w, e in held:
            r = e.resource
            assert r is not None
            if r.malformed is None:
                r.malformed = f"{NOT_USED}{reason} ({_place(w)}, one of {len(group)} entries)"
        return [e for _, e in held]

    if deletes and kind in WRITES:
        return unusable(TRANSACTION_CONFLICT)
    if not deletes:
        base = _content(held[0][1].resource)  # type: ignore[arg-type]
        if all(_content(e.resource) == base for _, e in held[1:]):  # type: ignore[arg-type]
            # identical copies: one resource; which one is kept cannot matter but for
            # its fullUrl, so the smallest, never the first in the file
            held.sort(key=lambda it: (it[1].fullUrl or "", it[0]))
            for w, e in held[1:]:
                drop(COPY, f"{w}: {resource_label(e.resource)}")  # type: ignore[arg-type]
            return [held[0][1]]
    if any(meta_twice(e.resource) for _, e in held):  # type: ignore[arg-type]
        # `"meta"` (or its versionId, lastUpdated) named twice: the version read would be
        # the last copy's by file order (breaker7 F5)
        return unusable(META_TWICE)
    order = _ordered(group)
    if order is None:
        return unusable(UNORDERED if kind == HISTORY_TYPE or deletes else CONFLICT)
    newest = order[-1][1]
    if method(newest) == "DELETE" or newest.resource is None:
        # deleted: its current state is "no resource"; absence is the truth here
        for w, e in held:
            drop(DELETED, f"{w}: {resource_label(e.resource)}")  # type: ignore[arg-type]
        return []
    for w, e in held:
        if e is not newest:
            drop(SUPERSEDED, f"{w}: {resource_label(e.resource)}")  # type: ignore[arg-type]
    return [newest]


def _place(where: str) -> str:
    """`entry 3` or `line 7` of a `where` (file, nested Bundle, entry or line)."""
    for mark in (" entry ", " line "):
        if mark in where:
            return mark.strip() + " " + where.rsplit(mark, 1)[1]
    return where


# ------------------------------------------------------------ resources of no patient
# why a resource names no patient of the data, for the reasons where it may be any
# patient of the file or export (references.html: an identifier-only, display-only,
# conditional or contained reference; a Group; no subject at all)
MAY_BE_ANYONE = (
    "identifier-only",
    "reference is empty",
    "display-only",
    "no subject",
    "conditional reference",
    "contained resource",
    "is a Group",
    "urn reference outside",
    "not of the form",
    "names two different",
    "(or patient) is given twice",
    "whose server is not known",
)
# an absolute reference no entry's fullUrl spells, to a patient id of this Bundle whose
# entry has no RESTful fullUrl: that patient's or another server's (fhir_input.resolve)
MAYBE_UNKNOWN_SERVER = (
    "its subject is an absolute URL that no entry's fullUrl spells, naming a Patient id of "
    "this Bundle whose server is not known"
)
# a resource naming its subject (or patient) twice, or a member of it: which patient it is
# about is file order (RFC 8259 section 4), so it may be any patient's of its file
SUBJECT_TWICE = "its subject (or patient) is given twice"


def may_be_anyone(why: str) -> bool:
    return any(part in why for part in MAY_BE_ANYONE)


Stray = tuple[str, Resource, str]  # (where, resource, why it is unassigned)


def stray_problems(
    strays: list[Stray],
    targets: Callable[[Resource], list[tuple[str, str | None]]],
    facts: dict[str, Any],
    absent: dict[str, Any],
    path: str,
) -> tuple[list[RecordProblem], set[str]]:
    """Per-patient diagnostics for the resources of this file or export that carry a
    bound code but name no patient one can find (`strays`): they may be this patient's.
    `targets(r)`: the bound targets a stray may be about.

    A yes/no fact read as "no" (from resolved conditions, or by `--absent-means-no`) and a
    list read as complete (`--absent-means-no medications`) would be decided without
    them: the fact becomes unknown (False removed from `facts`) with a diagnostic, which
    also keeps absence from being read as "no". Returns (problems, facts concerned).
    """
    seen: dict[str, list[str]] = {}
    lists = [f for f, no in absent.items() if isinstance(no, list)]
    for where, r, why in strays:
        concept = r.code if r.code is not None else r.medicationCodeableConcept
        hits = [f for f, _ in targets(r)]
        if concept is None and r.medicationReference is not None and not r.hidden_:
            hits = lists  # a Medication not read here: any kind of therapy
        for fact in hits:
            shown = seen.setdefault(fact, [])
            shown.append(f"{where}: {resource_label(r)} ({why})")
    problems: list[RecordProblem] = []
    blocked: set[str] = set()
    for fact in sorted(seen):
        value = facts.get(fact)
        if not (value is False or (fact in absent and (value is None or isinstance(value, list)))):
            continue  # yes already, or unknown anyway: they cannot make it wrong
        if value is False:
            del facts[fact]
        shown = sorted(seen[fact])
        problems.append(
            RecordProblem(
                path,
                fact,
                f"{len(shown)} resource(s) with a code of {fact} name no patient of the data "
                f"and may be this patient's, so {fact} is not read as no: " + "; ".join(shown[:3]),
            )
        )
        blocked.add(fact)
    return problems, blocked


NOT_IN_FILE = "its subject is a patient that is not in the data"
# a Bundle inside a Bundle is read on its own (its references resolve inside it): its
# patient may be in the Bundle around it, so not "not in the data"
NOT_IN_BUNDLE = (
    "its subject is a patient that is not in its Bundle (a Bundle inside a Bundle or an "
    "NDJSON file is read on its own)"
)
# (patient id, its server base or None, file, nested Bundle or "", label, bound codes)
Elsewhere = tuple[str, str | None, str, str, str, tuple[tuple[str, str], ...]]


def elsewhere(
    pid: str, base: str | None, path: str, inside: str, r: Resource, codes: frozenset[str]
) -> Elsewhere | None:
    """(patient id, base, file, nested Bundle, label, bound codes) of a resource with a
    bound code naming patient `pid` (of server `base`, None when not known), absent from
    its own Bundle or export (screen_elsewhere.py decides what it does); a Medication
    reference counts as ("", "*"): a therapy of any kind. None when no code of it is
    bound."""
    import msgspec

    pairs: set[tuple[str, str]] = set()
    try:
        concepts = [r.code, r.medicationCodeableConcept]
        concepts += [c.code for c in r.component or ()]
    except (msgspec.ValidationError, msgspec.DecodeError):
        concepts = [r.code, r.medicationCodeableConcept]
    for concept in concepts:
        for c in (concept.coding or ()) if concept is not None else ():
            if c.code in codes:
                pairs.add((c.system or "", c.code))
    if r.medicationReference is not None and r.medicationCodeableConcept is None:
        pairs.add(("", "*"))
    if not pairs:
        return None
    return pid, base, path, inside, resource_label(r), tuple(sorted(pairs))
