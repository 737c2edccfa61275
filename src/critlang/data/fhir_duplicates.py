"""Duplicate JSON member names in FHIR input, found exactly and cheaply.

RFC 8259 section 4: names "SHOULD be unique"; FHIR R4 json.html gives each element once.
JSON readers (msgspec, the standard library) keep the last copy in silence, so a member
given twice would be decided by key order: a conflict, reported, never the last copy.
`bundle_duplicates` checks a Bundle outside its entries' resources (fhir_decode.decode_file);
`check_read` each resource whose text may name a bound code, at reading (fhir_input,
fhir_ndjson: a copy given twice may hide a bound code, a subject given twice another
patient); `meta_twice` the versions of one resource (fhir_bundles.current);
`duplicate_keys` a resource a protocol uses (fhir_decode.Resource with its raw text).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import msgspec

from .fhir_choices import foreign_element, two_choices

EMPTY = msgspec.Raw()
_GENERIC = msgspec.json.Decoder()
_ENCODE = msgspec.json.Encoder().encode


# ---------------------------------------------------------------- each resource's text
class RawEntry(msgspec.Struct, gc=False):
    resource: msgspec.Raw = EMPTY


class RawBundle(msgspec.Struct, gc=False):
    entry: list[RawEntry] | None = None


class _LooseBundle(msgspec.Struct, gc=False):
    entry: list[msgspec.Raw] | None = None


RAW_BUNDLE = msgspec.json.Decoder(RawBundle)
RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_LOOSE_BUNDLE = msgspec.json.Decoder(_LooseBundle)
_LOOSE_ENTRY = msgspec.json.Decoder(RawEntry)
_RAW_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)


def nested_raws(bundle: Any, entries: list[Any]) -> None:
    """Gives the resources of a Bundle inside a Bundle (or on an NDJSON line) their own
    text from the Bundle's, as fhir_decode.decode_file does for a file's entries."""
    if not bundle.raw_:
        return
    try:
        raws = RAW_BUNDLE.decode(bundle.raw_).entry or []
    except _RAW_ERRORS:
        return
    if len(raws) != len(entries):
        return
    for e, raw in zip(entries, raws, strict=True):
        if e.resource is not None and not e.resource.raw_:
            e.resource.raw_ = raw.resource


def loose_raws(data: bytes, top: Any) -> list[msgspec.Raw]:
    """Each item's text for a file read loosely (fhir_decode: an array, or a Bundle's
    entries' resources; EMPTY where there is none), so that a member given twice is
    still found there."""
    try:
        if isinstance(top, list):
            return RAW_LIST.decode(data)
        raws = []
        for raw in _LOOSE_BUNDLE.decode(data).entry or []:
            try:
                raws.append(_LOOSE_ENTRY.decode(raw).resource)
            except _RAW_ERRORS:
                raws.append(EMPTY)
        return raws
    except _RAW_ERRORS:
        return []


# ------------------------------------------------------------- a Bundle outside its resources
_RESOURCE_KEY = re.compile(rb'"resource"[ \t\n\r]*:[ \t\n\r]*')


def bundle_duplicates(data: bytes, entries: list[Any]) -> list[str]:
    """Member names given twice in a Bundle's own object or in one of its entries
    (fullUrl, resource, request, response, search; RFC 8259 section 4, FHIR R4
    json.html: each element once), exactly: everything outside the entries' resources
    (which are checked where they are used: duplicate_keys) is read with a check of every
    object's names. Each resource is placed where the next `"resource":` after the
    previous one begins, confirmed byte for byte; one that cannot be placed so (a
    `resource` given twice leaves its first copy there) sends the file to the slower
    search (_skeleton_duplicates), which finds it."""
    parts: list[bytes] = []
    pos = 0
    for e in entries:
        if not e.resource:
            continue
        text = memoryview(e.resource)
        m = _RESOURCE_KEY.search(data, pos)
        if m is None or not data.startswith(text, m.end()):
            return _skeleton_duplicates(data, [x.resource or None for x in entries])
        parts += (data[pos : m.end()], b"0")
        pos = m.end() + len(text)
    parts.append(data[pos:])
    return _duplicates_in(b"".join(parts))


def _skeleton_duplicates(data: bytes, raws: list[msgspec.Raw | None]) -> list[str]:
    """Member names given twice in a Bundle outside its entries' resources (RFC 8259
    section 4; FHIR R4 json.html: each element once): the file with each resource's text
    replaced by `0`, so that only the Bundle's and its entries' own members are read
    (resources are checked where they are used: duplicate_keys). A resource given twice in
    an entry leaves its first copy in the skeleton, where its second `resource` shows."""
    parts: list[bytes] = []
    pos = 0
    for raw in raws:
        if raw is None:
            continue
        text = memoryview(raw)
        at = data.find(text, pos)
        if at < 0:  # cannot be placed (never expected): read the whole file
            return _duplicates_in(data)
        parts += (data[pos:at], b"0")
        pos = at + len(text)
    parts.append(data[pos:])
    return _duplicates_in(b"".join(parts))


def _duplicates_in(text: bytes) -> list[str]:
    """The names given twice in one object of valid JSON text, exactly; [] when none."""
    try:
        item = _GENERIC.decode(text)
        again = _ENCODE(item)
        if again == text or again == msgspec.json.format(text, indent=-1):
            return []  # the fast exact tests of duplicate_keys
        if _names_in_text(text) == _members(item):
            return []
    except (msgspec.DecodeError, RecursionError):
        pass
    try:
        json.loads(text, object_pairs_hook=_pairs)
    except _Duplicate as dup:
        return dup.names
    except (ValueError, RecursionError):
        return []
    return []


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen = dict(pairs)
    if len(seen) != len(pairs):
        names = [k for k, _ in pairs]
        raise _Duplicate(sorted({k for k in names if names.count(k) > 1}))
    return seen


class _Duplicate(Exception):
    def __init__(self, names: list[str]) -> None:
        self.names = names


def duplicate_keys(r: Any) -> None:
    """Marks r malformed when one of its JSON objects names a member twice, or when it
    gives a choice element in two types (fhir_choices.two_choices).

    RFC 8259 section 4: names "SHOULD be unique"; FHIR R4 json.html gives each element once.
    JSON readers (msgspec, the standard library) keep the last value in silence, so a
    resource with `"value": 1.0, "value": 5.0` would give 5.0 by file order: a conflict,
    made unusable (a per-fact diagnostic, unknown). Called for the resources a protocol
    uses; those whose text names a bound code were examined at reading already
    (`check_read`), which this completes at no cost.
    """
    if r.dups_ is None:
        if not r.raw_ or r.malformed is not None:
            return
        examine(r)
    if r.malformed is None and r.pending_ is not None:
        r.malformed = r.pending_
        r.pending_ = None


def examine(r: Any, codes: frozenset[str] | None = None) -> tuple[str, ...]:
    """The JSON paths of the members r's text names twice (`code`, `subject.reference`,
    `code.coding[0].code`), exactly; cached in `r.dups_`. With some, r becomes malformed
    ("duplicate JSON keys 'code' at code: conflicting values") and, given the bound
    `codes`, `r.hidden_` holds those its `code` members name in any copy: what it may
    be about (RFC 8259 section 4; R4 json.html). Without, a choice element given in two
    types is kept in `r.pending_` for duplicate_keys."""
    if r.dups_ is None:
        raw = r.raw_
        if not raw:
            r.dups_ = ()
            return ()
        paths, seen, item = _examine_text(bytes(raw), codes)
        r.dups_ = tuple(paths)
        if paths:
            shown = ", ".join(f"{p.rsplit('.', 1)[-1].split('[', 1)[0]!r} at {p}" for p in paths)
            if r.malformed is None:
                r.malformed = f"duplicate JSON keys {shown}: conflicting values"
            r.hidden_ = tuple(sorted(seen))
            if codes is None:
                return r.dups_  # the text kept for the codes it may hide (below)
        else:
            _check_members(r, item)
        r.raw_ = EMPTY  # checked once: a second call costs nothing
    elif r.dups_ and codes is not None and r.raw_:
        # examined before the codes were known (fhir_bundles.current): what it may hide
        _, seen, _ = _examine_text(bytes(r.raw_), codes)
        r.hidden_ = tuple(sorted(seen))
        r.raw_ = EMPTY
    return r.dups_


_BACKSLASH = re.compile(rb"\\").search


def check_read(
    r: Any, codes: frozenset[str], search: Callable[[Any], Any], escapes: bool = True
) -> None:
    """At reading, before r is given to a patient: r is examined when its text may name a
    bound code (fhir_bound: `"code": "<bound>"`, or any JSON escape when `escapes`, the
    file has a backslash): a copy given twice may hide one, whatever its decoded code or
    type says, and a subject given twice may name another patient. One C-speed search
    per resource; the few that match (about the resources a protocol uses) get the
    exact check they would get anyway."""
    if r.dups_ is None:
        raw = r.raw_
        if not raw or (search(raw) is None and not (escapes and _BACKSLASH(raw))):
            return
        examine(r, codes)
    elif r.dups_ and not r.hidden_:
        examine(r, codes)


def patient_twice(r: Any) -> bool:
    """r names its `subject` (or `patient`), or a member of it, twice: which patient it is
    about is file order, so it may be any patient's of its file."""
    return any(_head(p) in ("subject", "patient") for p in r.dups_ or ())


def meta_twice(r: Any) -> str | None:
    """The path of a duplicate member of r's `meta` (versionId, lastUpdated: what orders
    versions, R4 http.html#history), examining r if need be; None when there is none."""
    for p in examine(r):
        if _head(p) == "meta":
            return p
    return None


def _head(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


def _examine_text(raw: bytes, codes: frozenset[str] | None) -> tuple[list[str], set[str], Any]:
    """(paths of duplicate members, bound codes named in `code` members of any copy when
    there are duplicates, the decoded value or None when it is not JSON)."""
    try:
        item = _GENERIC.decode(raw)
        # Fast exact test: re-encoding the decoded object gives the compact text of the
        # original only when no member was dropped (a duplicate would shorten it). Any
        # other difference (number spelling "2.50", escapes "\u00e9") goes to the
        # member-by-member check below; so the fast path never hides a duplicate. Text
        # that is compact already (most files) is compared as it is.
        text = _ENCODE(item)
        if text == raw or text == msgspec.json.format(raw, indent=-1):
            return [], set(), item
        # Second exact test (escapes, number spellings): every name in the text is one
        # member of the decoded object unless a name was given twice in one object.
        if _names_in_text(raw) == _members(item):
            return [], set(), item
    except (msgspec.DecodeError, RecursionError):
        pass  # 1e400 and the like: the check below reads them
    seen: set[str] = set()
    twice = False

    def pairs(members: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal twice
        obj = dict(members)
        if codes:
            for k, v in members:  # every copy, the dropped ones too
                if k == "code" and isinstance(v, str) and v in codes:
                    seen.add(v)
        if len(obj) != len(members):
            twice = True
            names = [k for k, _ in members]
            obj = _Twice(obj)
            obj.names = sorted({k for k in names if names.count(k) > 1})
        return obj

    try:
        item = json.loads(raw, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return [], set(), None  # not the reader's concern here: msgspec decoded it
    if not twice:
        return [], set(), item
    return _paths(item, ""), seen, item


class _Twice(dict):  # type: ignore[type-arg]
    """A decoded JSON object that named members twice (`names`)."""

    names: list[str]


def _paths(value: Any, at: str) -> list[str]:
    """Where the objects that named a member twice are, as `a.b[0].c` paths (those
    inside a dropped copy are under a duplicate member already listed)."""
    out: list[str] = []
    if isinstance(value, dict):
        if isinstance(value, _Twice):
            out += [f"{at}.{k}" if at else k for k in value.names]
        for k, v in value.items():
            out += _paths(v, f"{at}.{k}" if at else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, f"{at}[{i}]")
    return out


# a JSON string, and whether a colon follows it (then it is an object's member name)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"([ \t\n\r]*:)?')


def _names_in_text(text: bytes) -> int:
    """Member names in JSON text (valid: decoded already). Outside strings JSON has no
    quote, so scanning string after string from the start never starts inside one."""
    return sum(1 for colon in _STRING.findall(text) if colon)


def _members(value: Any) -> int:
    """Members of every object in a decoded JSON value."""
    if isinstance(value, dict):
        return len(value) + sum(_members(v) for v in value.values())
    if isinstance(value, list):
        return sum(_members(v) for v in value)
    return 0


def _check_members(r: Any, item: Any) -> None:
    """A well-formed resource's members: a choice element in two types (two_choices) or a
    member R4 does not define that would change its meaning (foreign_element), kept in
    `r.pending_` until a fact is read from it (duplicate_keys)."""
    if item is None:
        return
    r.pending_ = two_choices(item) or foreign_element(item)
    if r.pending_ is not None and r.resourceType == "Patient":
        # whatever its deceased[x] says, the patient is "perhaps deceased" (fhir_patient)
        r.deceased_given = r.deceased_given or any(
            isinstance(k, str) and k.startswith("deceased") for k in item
        )
