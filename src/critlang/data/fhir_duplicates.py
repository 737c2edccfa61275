"""Duplicate JSON member names in FHIR input, found exactly and cheaply.

RFC 8259 section 4: names "SHOULD be unique"; FHIR R4 json.html gives each element once.
JSON readers (msgspec, the standard library) keep the last copy in silence, so a member
given twice would be decided by key order: a conflict, reported, never the last copy.
`bundle_duplicates` checks a Bundle outside its entries' resources (fhir_decode.decode_file);
`duplicate_keys` a resource a protocol uses (fhir_decode.Resource with its raw text).
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from .fhir_choices import foreign_element, two_choices

EMPTY = msgspec.Raw()
_GENERIC = msgspec.json.Decoder()
_ENCODE = msgspec.json.Encoder().encode


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
    """Marks r malformed when one of its JSON objects names a member twice.

    RFC 8259 section 4: names "SHOULD be unique"; FHIR R4 json.html gives each element once.
    JSON readers (msgspec, the standard library) keep the last value in silence, so a
    resource with `"value": 1.0, "value": 5.0` would give 5.0 by file order: a conflict,
    made unusable (a per-fact diagnostic, unknown). Checked only for the resources a
    protocol uses (their raw text kept at decoding), as a full check costs as much as
    decoding the file twice with the standard library.
    """
    if not r.raw_ or r.malformed is not None:
        return
    raw = bytes(r.raw_)
    r.raw_ = EMPTY  # checked once: a second call (a resource read twice) costs nothing
    try:
        item = _GENERIC.decode(raw)
        # Fast exact test: re-encoding the decoded object gives the compact text of the
        # original only when no member was dropped (a duplicate would shorten it). Any
        # other difference (number spelling "2.50", escapes "\u00e9") goes to the
        # member-by-member check below; so the fast path never hides a duplicate. Text
        # that is compact already (most files) is compared as it is.
        text = _ENCODE(item)
        if text == raw or text == msgspec.json.format(raw, indent=-1):
            _check_members(r, item)
            return
        # Second exact test (escapes, number spellings): every name in the text is one
        # member of the decoded object unless a name was given twice in one object.
        if _names_in_text(raw) == _members(item):
            _check_members(r, item)
            return
    except (msgspec.DecodeError, RecursionError):
        pass  # 1e400 and the like: the check below reads them
    try:
        item = json.loads(raw, object_pairs_hook=_pairs)
    except _Duplicate as dup:
        r.malformed = f"duplicate JSON keys {', '.join(map(repr, dup.names))}: conflicting values"
        return
    except (ValueError, RecursionError):
        return  # not the reader's concern here: msgspec decoded it
    _check_members(r, item)


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
    member R4 does not define that would change its meaning (foreign_element)."""
    r.malformed = two_choices(item) or foreign_element(item)
    if r.malformed is not None and r.resourceType == "Patient":
        # whatever its deceased[x] says, the patient is "perhaps deceased" (fhir_patient)
        r.deceased_given = r.deceased_given or any(
            isinstance(k, str) and k.startswith("deceased") for k in item
        )
