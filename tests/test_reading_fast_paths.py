"""The reading path's shortcuts give exactly what the long way gives (docs/performance.md,
"Screening FHIR data"): exact decimals, the duplicate-key check, the current-state test."""

from __future__ import annotations

import json
from fractions import Fraction

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from critlang.data.fhir_bundles import COPY, current
from critlang.data.fhir_decode import Entry, Resource, decode_file
from critlang.data.fhir_duplicates import duplicate_keys
from critlang.data.values import exact_number


def _reference_exact_number(text: str) -> float | Fraction:
    """exact_number as it was written before its shortcut: two Fractions compared."""
    value = float(text)
    if len(text) < 16 or value in (float("inf"), float("-inf")):
        return value
    exact = Fraction(text)
    return value if Fraction(repr(value)) == exact else exact


def _same(a: float | Fraction, b: float | Fraction) -> bool:
    return type(a) is type(b) and a == b


@settings(max_examples=400, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_exact_number_of_a_float_as_written(x: float) -> None:
    """A float printed in its shortest form (what Synthea and most writers give) reads
    back as that float, through the shortcut or not."""
    text = repr(x)
    assert _same(exact_number(text), _reference_exact_number(text))
    assert exact_number(text) == x


@settings(max_examples=400, deadline=None)
@given(
    st.integers(0, 10**12),
    st.text("0123456789", min_size=1, max_size=30),
    st.sampled_from(["", "-"]),
    st.sampled_from(["", "e5", "E-3", "e+2"]),
)
def test_exact_number_of_any_decimal(whole: int, digits: str, sign: str, exp: str) -> None:
    """Any JSON decimal, with trailing zeros, more digits than a float holds, exponents:
    a Fraction exactly when the float does not hold what is written."""
    text = f"{sign}{whole}.{digits}{exp}"
    got = exact_number(text)
    assert _same(got, _reference_exact_number(text))
    if isinstance(got, Fraction):
        assert got == Fraction(text) and Fraction(repr(float(text))) != got


def test_exact_number_examples() -> None:
    assert _same(exact_number("176.35499866729558"), 176.35499866729558)
    assert _same(exact_number("1.50000000000000000"), 1.5)  # trailing zeros: same decimal
    got = exact_number("99.99999999999999999")  # never read as 100
    assert isinstance(got, Fraction) and got == Fraction("99.99999999999999999")


def test_duplicate_keys_checks_a_resource_once() -> None:
    """The check reads the resource's text once; calling it again (a resource read for
    two facts) neither repeats the work nor changes the verdict."""
    text = b'{"resourceType":"Observation","valueQuantity":{"value":1.0,"value":5.0}}'
    r = Resource(resourceType="Observation", raw_=msgspec.Raw(text))
    duplicate_keys(r)
    assert r.malformed is not None and "'value' at valueQuantity.value" in r.malformed
    # the paths are kept: a second call reads nothing (the text stays only for the bound
    # codes its copies may name, fhir_duplicates.examine)
    assert r.dups_ == ("valueQuantity.value",)
    duplicate_keys(r)
    assert "'value'" in r.malformed
    clean = Resource(resourceType="Observation", raw_=msgspec.Raw(b'{"a":1,"b":{"a":1}}'))
    duplicate_keys(clean)
    duplicate_keys(clean)
    assert clean.malformed is None and not clean.raw_


def test_duplicate_keys_in_text_that_is_not_compact() -> None:
    """Pretty-printed text (spaces, new lines) is compared once made compact: a member
    named twice is still found, and a clean resource passes."""
    dup = b'{\n  "resourceType": "Observation",\n  "status": "final",\n  "status": "x"\n}'
    r = Resource(resourceType="Observation", raw_=msgspec.Raw(dup))
    duplicate_keys(r)
    assert r.malformed is not None and "'status'" in r.malformed
    ok = Resource(resourceType="Observation", raw_=msgspec.Raw(b'{ "a" : 1 , "b" : [ 1 ] }'))
    duplicate_keys(ok)
    assert ok.malformed is None


def _entries(ids: list[str]) -> list[Entry]:
    items = [{"resourceType": "Observation", "id": i, "status": "final"} for i in ids]
    text = json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": f"urn:uuid:{n}", "resource": r} for n, r in enumerate(items)
    ]})  # fmt: skip
    return decode_file(text.encode()).items


@given(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), max_size=6))
def test_current_state_of_entries_with_or_without_repeated_ids(ids: list[str]) -> None:
    """Entries that each name another resource are all current (nothing dropped); an id
    given twice (identical copies here) drops all but one, whatever the shortcut."""
    dropped: list[tuple[str, str]] = []
    skip = current(
        _entries(ids), "collection", lambda why, where: dropped.append((why, where)), str
    )
    assert len(skip) == len(ids) - len(set(ids))
    assert [why for why, _ in dropped] == [COPY] * (len(ids) - len(set(ids)))


def test_escaped_text_is_checked_without_the_slow_reader(monkeypatch) -> None:
    """Laboratory names with escapes (Synthea's `[#/\\u200bvolume]`) re-encode to other
    bytes; the count of member names decides without the standard library's reader."""
    from critlang.data import fhir_decode

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the slow reader was used")

    monkeypatch.setattr(fhir_decode.json, "loads", refuse)
    text = (
        b'{"resourceType":"Observation","code":{"text":"Leukocytes [#/\\u200bvolume]"},'
        b'"note":"a \\"quoted\\": text","valueQuantity":{"value":1.50}}'
    )
    r = Resource(resourceType="Observation", raw_=msgspec.Raw(text))
    duplicate_keys(r)
    assert r.malformed is None


_NAMES = st.sampled_from(["a", "b", "v", "\\u0061", '\\"q\\"', ":x"])
_SCALARS = st.sampled_from(["1", "2.50", '"s"', '"\\u00e9"', '":a"', "null", "1.0E2"])


def _json(depth: int) -> st.SearchStrategy[str]:
    """JSON text with any member names (escaped spellings, names given twice)."""
    if depth == 0:
        return _SCALARS
    inner = _json(depth - 1)
    members = st.lists(st.tuples(_NAMES, inner), max_size=4)
    objects = members.map(lambda ms: "{" + ",".join(f'"{k}" : {v}' for k, v in ms) + "}")
    arrays = st.lists(inner, max_size=3).map(lambda vs: "[" + ",".join(vs) + "]")
    return st.one_of(_SCALARS, objects, arrays)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_NAMES, _json(2)), max_size=5))
def test_duplicate_keys_agrees_with_the_standard_library(members: list[tuple[str, str]]) -> None:
    """Whatever the spelling, a resource is marked for a duplicate name exactly when the
    standard library's reader, told to refuse one, refuses it."""
    body = ",".join(f'"{k}":{v}' for k, v in members)
    text = '{"resourceType":"Observation"' + ("," + body if body else "") + "}"

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        names = [k for k, _ in items]
        if len(set(names)) != len(names):
            raise ValueError("duplicate")
        return dict(items)

    try:
        json.loads(text, object_pairs_hook=pairs)
        duplicated = False
    except ValueError:
        duplicated = True
    r = Resource(resourceType="Observation", raw_=msgspec.Raw(text.encode()))
    duplicate_keys(r)
    assert (r.malformed is not None and "duplicate JSON keys" in r.malformed) == duplicated
