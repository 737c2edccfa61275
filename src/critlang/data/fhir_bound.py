"""Whether a resource's raw JSON text can hold a bound code, decided on its bytes.

The one raw-bytes test of the reading path (duplicate-key checks: fhir_duplicates.py;
which resources need decoding at all may use it too). critlang reads codes only from
`Coding.code` members (code.coding[].code, medicationCodeableConcept.coding[].code,
component[].code.coding[].code), so a resource can carry a bound code, in any copy of a
member given twice, only if its text holds `"code"`, a colon and the bound code as a
JSON string. One compiled bytes regex (a trie of the bound codes after `"code":`, C
speed) says so. JSON escapes can spell a name or a code otherwise (`"\\u0063ode"`,
`"718\\u002d7"`, RFC 8259 section 7): text with a backslash cannot be decided on its
bytes, so `may_hold` says yes for it (callers decode it to be sure).

    bound_search(codes) -> search(raw) -> re.Match | None   (no escapes considered)
    may_hold(raw: bytes, codes) -> bool
    bound_codes_in(raw: bytes, codes) -> frozenset[str]     (escapes decoded)
    usable(r, codes) -> bool, kept(resources, codes) -> list  (on decoded resources)
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from .fhir_decode import Resource

_WS = rb"[ \t\n\r]*"  # JSON whitespace (RFC 8259 section 2)


def _trie(codes: Iterable[bytes]) -> bytes:
    """An alternation of the byte strings as a trie: sre tries one branch per byte
    instead of one per code (3-4x faster on Synthea than a flat alternation)."""
    root: dict[int, Any] = {}
    for code in codes:
        node = root
        for byte in code:
            node = node.setdefault(byte, {})
        node[-1] = {}

    def emit(node: dict[int, Any]) -> bytes:
        bytes_ = sorted(k for k in node if k >= 0)
        branches = [re.escape(bytes([b])) + emit(node[b]) for b in bytes_]
        if not branches:
            return b""
        body = b"(?:" + b"|".join(branches) + b")"
        return body + b"?" if -1 in node else body

    return emit(root)


@functools.lru_cache(maxsize=16)
def _compiled(codes: frozenset[str]) -> re.Pattern[bytes] | None:
    # each code as JSON writes it without escapes (a quote or backslash in a code would
    # be escaped: written so here too)
    spelled = sorted({msgspec.json.encode(c)[1:-1] for c in codes if c})
    if not spelled:
        return None
    return re.compile(rb'"code"' + _WS + b":" + _WS + b'"' + _trie(spelled) + b'"')


def _never(raw: Any) -> None:
    return None


def bound_search(codes: frozenset[str]) -> Callable[[Any], re.Match[bytes] | None]:
    """`search(raw)`: a match when the text (bytes, msgspec.Raw, any buffer) names a
    bound code as a `code` member written without escapes; compiled once per code set."""
    pattern = _compiled(frozenset(codes))
    return pattern.search if pattern is not None else _never


def may_hold(raw: bytes, codes: frozenset[str]) -> bool:
    """True when `raw` may hold a bound code in a `code` member: it names one, or it has
    a JSON escape (then only decoding can tell)."""
    return b"\\" in raw or bound_search(codes)(raw) is not None


# a JSON string token (RFC 8259 section 7)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def bound_codes_in(raw: bytes, codes: frozenset[str]) -> frozenset[str]:
    """The bound codes the text spells as JSON strings (escapes decoded), in any member:
    for text that cannot be parsed (an unreadable NDJSON line) or whose copies of a
    member disagree, what it may be about. Over-inclusive by design (a bound code in
    a display string counts): it decides only what becomes unknown."""
    found = set()
    for c in codes:
        if c and msgspec.json.encode(c) in raw:
            found.add(c)
    if b"\\" in raw:
        for m in _STRING.finditer(raw):
            token = m.group()
            if b"\\" in token:
                try:
                    value = json.loads(token)
                except ValueError:
                    continue
                if value in codes:
                    found.add(value)
    return frozenset(found)


# ------------------------------------------------------------ on decoded resources
def kept(resources: list[Resource], codes: frozenset[str] | None) -> list[Resource]:
    """The resources a protocol can use: a bound code, components with a bound code (or
    that cannot be decoded), a medication reference; the rest are counted but not kept
    (all without codes). Whether one names a JSON member twice is checked at reading
    (fhir_duplicates.check_read) and where a fact is read from it (duplicate_keys)."""
    if codes is None:
        return resources
    out = []
    for r in resources:
        if r.contained:  # with what it contains (fhir_contained.py)
            from .fhir_contained import with_contained  # (it imports fhir_decode)

            out += with_contained(r, codes, usable_own)
        elif usable_own(r, codes):
            out.append(r)
    return out


_THERAPIES = frozenset({"MedicationRequest", "MedicationStatement", "MedicationAdministration"})
YES_NO_KINDS = frozenset({"Condition", "Procedure"})  # fhir_status.YES_NO_KINDS


def usable(r: Resource, codes: frozenset[str]) -> bool:
    """Whether a decoded resource can give a fact of the protocol whose bound codes are
    `codes` (fhir_status.BoundCodes): kept per patient, else only counted. A resource it
    contains counts too (fhir_contained.py)."""
    if r.contained:
        from .fhir_contained import holds  # (it imports fhir_decode)

        if holds(r, codes, usable_own):
            return True
    return usable_own(r, codes)


def usable_own(r: Resource, codes: frozenset[str]) -> bool:
    """usable, for r's own code and components only."""
    concept = r.code
    if concept is None:
        concept = r.medicationCodeableConcept
    if concept is not None:
        coding = concept.coding
        if coding:
            for c in coding:  # (a loop, not any(): this runs for every resource read)
                if c.code in codes:
                    return True
            if r.hidden_:
                return True  # a copy given twice names a bound code (fhir_duplicates)
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
