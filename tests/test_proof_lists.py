"""Proofs over lists (semantics/lists.py): a lint finding or a diff claim that rests on
the solver ruling something out holds for lists of any length only when the list
conditions need no more items than the encoding holds and none is `majority of`; else
its headline says "for lists of up to N items". A 5-item patient shows why: 3 lesions
of Krenning 4 and 2 of Krenning 0 meet `majority of lesions with (krenning >= 2)` and
`at least 2 of lesions with (krenning = 0)` together, which no list of 3 can."""

from __future__ import annotations

import datetime as dt

from critlang.backends.python import compile_protocol
from critlang.data.records import read_record
from critlang.diff import diff, headline, render_text
from critlang.frontend import analyse_text
from critlang.lint import lint
from critlang.lint import render_text as lint_text

AS_OF = dt.date(2026, 11, 27)
HEAD = 'protocol "T"\n  date 2026-01-01\nfact lesions: list of {krenning: integer 0..4}\n'
HEAD += "fact hb: quantity g/dL\n"
MAJORITY = 'I1 "majority with uptake"\n  rule majority of lesions with (krenning >= 2)\n'
HB = 'I2 "Hb"\n  rule hb >= 9 g/dL\n'
FIVE = {
    "id": "p5",
    "facts": {
        "lesions": [{"krenning": k} for k in (4, 4, 4, 0, 0)],
        "hb": {"value": 12, "unit": "g/dL", "date": "2026-11-20"},
    },
}


def checked(text: str):
    a = analyse_text(text)
    assert a.ok and a.result is not None, [d.message for d in a.diagnostics if d.is_error]
    return a.result


def verdict(text: str, record: dict) -> str:
    c = checked(text)
    return compile_protocol(c).evaluate(
        compile_protocol(c).normalise(read_record(c, record, AS_OF))
    )[0]


def test_a_criterion_that_matters_only_for_longer_lists_is_not_called_redundant() -> None:
    # breaker6 #9: E1 was "never changes a verdict ... for every patient" (3 slots)
    e1 = 'exclusion criteria\nE1 "two without uptake"\n'
    e1 += "  rule at least 2 of lesions with (krenning = 0)\n"
    text = HEAD + "inclusion criteria\n" + MAJORITY + HB + e1
    without = HEAD + "inclusion criteria\n" + MAJORITY + HB
    # what removing E1 would do to a real patient
    assert (verdict(text, FIVE), verdict(without, FIVE)) == ("ineligible", "eligible")
    found = lint(checked(text), AS_OF)
    assert [f.code for f in found if f.code == "L111"] == []


def test_a_bounded_finding_says_so_in_its_headline() -> None:
    # E1 (all lesions Krenning 0) restates a failed I1 for every list length, but with
    # `majority of` the proof covers only the lists the encoding holds: the headline says so
    e1 = 'exclusion criteria\nE1 "no uptake"\n  rule all lesions with (krenning = 0)\n'
    found = lint(checked(HEAD + "inclusion criteria\n" + MAJORITY + HB + e1), AS_OF)
    (f,) = [f for f in found if f.code == "L111"]
    assert f.lists_up_to is not None and f.lists_up_to >= 3
    assert f.message.startswith(
        f"E1 never changes a verdict for lists of up to {f.lists_up_to} items:"
    )
    assert "a longer list" in f.proof
    assert f.to_dict()["lists_up_to"] == f.lists_up_to
    assert f"for lists of up to {f.lists_up_to} items" in lint_text(found).splitlines()[0]


def test_any_all_and_at_least_are_proven_for_every_length() -> None:
    # `at least 4 of` with 3 slots could never be met: an exclusion wrongly "excludes
    # nobody" (L103); with the slots the conditions need, the proof covers every length
    i1 = 'I1 "uptake"\n  rule any lesions with (krenning >= 2)\n'
    e1 = 'exclusion criteria\nE1 "four without uptake"\n'
    e1 += "  rule at least 4 of lesions with (krenning = 0)\n"
    e2 = 'E2 "all without uptake"\n  rule all lesions with (krenning = 0)\n'
    found = lint(checked(HEAD + "inclusion criteria\n" + i1 + HB + e1 + e2), AS_OF)
    assert "L103" not in [f.code for f in found]
    (f,) = [f for f in found if f.code == "L111"]
    assert f.criteria[0] == "E2" and f.lists_up_to is None
    assert "for lists of up to" not in f.message and "lists of any length" in f.proof


def test_a_redundancy_proven_from_its_cover_alone_is_not_bounded_by_other_lists() -> None:
    # E1 restates a failed I2 (no list); I1's `majority of` elsewhere does not bound it
    e1 = 'exclusion criteria\nE1 "low Hb"\n  rule hb < 9 g/dL\n'
    found = lint(checked(HEAD + "inclusion criteria\n" + MAJORITY + HB + e1), AS_OF)
    (f,) = [f for f in found if f.code == "L111"]
    assert f.criteria == ["E1", "I2"] and f.lists_up_to is None


def test_diff_finds_the_change_a_five_item_list_shows() -> None:
    # breaker6 #10: "rewritten: verdicts unchanged ... no change of meaning (proven ...)"
    old = HEAD + "inclusion criteria\n" + MAJORITY + HB
    new = old.replace(
        "rule majority of lesions with (krenning >= 2)",
        "rule majority of lesions with (krenning >= 2) unless at least 2 of lesions with "
        "(krenning = 0)",
    )
    assert (verdict(old, FIVE), verdict(new, FIVE)) == ("eligible", "ineligible")
    co, cn = checked(old), checked(new)
    r = diff(co, cn, AS_OF)
    (ch,) = r.changes
    assert ch.kind == "changed" and ch.effect is not None
    assert ch.effect.classification == "narrowed"
    w = ch.effect.narrowing
    assert w is not None and len(w.record["facts"]["lesions"]) >= 5
    assert not r.overall.unchanged
    # what the solver ruled out (no patient gains) is bounded: the headline says so
    assert ch.effect.lists_up_to is not None
    assert f"for lists of up to {ch.effect.lists_up_to} items" in headline(ch.effect)
    assert "no change of meaning" not in render_text(r, co, cn)


def test_diff_unchanged_over_bounded_lists_is_not_called_a_proof_for_every_patient() -> None:
    old = HEAD + "inclusion criteria\n" + MAJORITY + HB
    new = old.replace("(krenning >= 2)", "(krenning > 1)")
    co, cn = checked(old), checked(new)
    r = diff(co, cn, AS_OF)
    (ch,) = r.changes
    assert ch.effect is not None and ch.effect.unchanged
    bound = ch.effect.lists_up_to
    assert bound is not None
    assert ch.kind == "changed"  # "rewritten" claims the same meaning for every patient
    text = render_text(r, co, cn)
    assert f"I1 (inclusion) changed: verdicts unchanged for lists of up to {bound} items" in text
    assert f"no change of meaning for lists of up to {bound} items" in text
    assert f"whole protocol: verdicts unchanged for lists of up to {bound} items" in text
    assert "(proven for known and unknown facts)" not in text


def test_diff_unchanged_with_any_is_proven_for_every_length() -> None:
    old = HEAD + 'inclusion criteria\nI1 "uptake"\n  rule any lesions with (krenning >= 2)\n' + HB
    new = old.replace("(krenning >= 2)", "(krenning > 1)")
    co, cn = checked(old), checked(new)
    r = diff(co, cn, AS_OF)
    (ch,) = r.changes
    assert ch.kind == "rewritten" and ch.effect is not None and ch.effect.lists_up_to is None
    text = render_text(r, co, cn)
    assert "no change of meaning (proven for known and unknown facts)" in text
    assert "for lists of any length" in text and "for lists of up to" not in text
