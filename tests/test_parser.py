from __future__ import annotations

import datetime as dt
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from critlang import nodes as n
from critlang.frontend import analyse_text
from critlang.parser import build_strict, grammar_path, parse_text
from helpers import ROOT, TRIAL


def test_grammar_is_strict_lalr() -> None:
    """No shift/reduce conflicts and no terminal collisions (Lark strict mode)."""
    build_strict()


def test_grammar_ships_with_package_or_repo() -> None:
    path = grammar_path()
    assert path.name == "critlang.lark"
    assert path.read_text() == (ROOT / "grammar" / "critlang.lark").read_text()


def rule_of(src: str) -> n.Expr:
    p, d = parse_text(f'fact x: boolean\ninclusion criteria\nI1 "t"\n  rule {src}\n')
    assert p is not None, d
    rule = p.criteria[0][1].rule
    assert rule is not None
    return rule


def test_quantity_tokens() -> None:
    e = rule_of("wbc < 2x10^9/L (2000/mm3)")
    assert isinstance(e, n.Compare) and isinstance(e.right, n.DualQuantityLit)
    assert (e.right.primary.value, e.right.primary.unit) == (Fraction(2), "x10^9/L")
    assert (e.right.secondary.value, e.right.secondary.unit) == (Fraction(2000), "/mm3")


def test_keywords_are_not_units() -> None:
    e = rule_of("glucose > 2 x ULN")
    assert isinstance(e, n.CompareRef) and e.factor.value == 2 and e.limit == "ULN"
    e = rule_of("(0.85 if sex = female else 1) > 0")
    assert isinstance(e, n.Compare) and isinstance(e.left, n.Conditional)


def test_precedence() -> None:
    e = rule_of("a or b and not c unless d")
    assert isinstance(e, n.Unless)
    assert isinstance(e.rule, n.Or) and isinstance(e.rule.right, n.And)
    assert isinstance(e.rule.right.right, n.Not)


def test_windows() -> None:
    e = rule_of("d within 4 weeks before prrt_start")
    assert isinstance(e, n.Window) and (e.kind, e.direction) == ("within", "before")
    e = rule_of("enrollment less than 2 years after last_menstruation")
    assert isinstance(e, n.Window) and (e.kind, e.direction) == ("less", "after")
    e = rule_of("d more than 12 months before enrollment")
    assert isinstance(e, n.Window) and e.duration.unit == "months"


def test_quantifiers() -> None:
    e = rule_of("at least 2 of lesions with (k >= 3)")
    assert isinstance(e, n.Quantified) and (e.quantifier, e.count) == ("at_least", 2)
    e = rule_of("majority of lesions with (k >= 3)")
    assert isinstance(e, n.Quantified) and e.quantifier == "majority"


def test_spans_point_at_source() -> None:
    src = 'fact x: boolean\ninclusion criteria\nI1 "t"\n  rule x and x\n'
    p, _ = parse_text(src, "f.crit")
    assert p is not None
    crit = p.criteria[0][1]
    assert (crit.id_span.line, crit.id_span.column) == (3, 1)
    rule = crit.rule
    assert rule is not None and (rule.span.line, rule.span.column) == (4, 8)
    assert src[rule.span.start : rule.span.end] == "x and x"


def test_node_equality_ignores_spans() -> None:
    a = rule_of("x and x")
    b = rule_of("x   and\n      x")
    assert a == b


def test_header_fields() -> None:
    p, _ = parse_text('protocol "N"\n  date 2024-02-01\n  healthy volunteers yes\n')
    assert p is not None and p.header is not None
    assert p.header.date == dt.date(2024, 2, 1) and p.header.healthy_volunteers is True


@pytest.mark.parametrize(
    ("src", "line", "column", "fragment"),
    [
        ("fact x boolean\n", 1, 8, "expected"),
        ('fact x: boolean\ninclusion criteria\nI1 "t\n', 3, 4, "character"),
        ("fact x: quantity mg/dL\nmolar mass 5\n", 2, 12, "unit"),
        ('protocol "N"\n  minimum age 18\n', 2, 15, ""),
    ],
)
def test_syntax_error_positions(src: str, line: int, column: int, fragment: str) -> None:
    a = analyse_text(src)
    (d,) = [d for d in a.diagnostics if d.code == "E001"][:1]
    assert (d.span.line, d.span.column) == (line, column), d
    assert fragment in (d.label + d.message)


def test_missing_unit_hint_in_header() -> None:
    a = analyse_text('protocol "N"\n  minimum age 18\n')
    (d,) = a.diagnostics
    assert "18 mg/dL" in d.hint or "unit" in d.hint


TRIAL_TEXT = (TRIAL / "current.crit").read_text()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mangled_trial_never_raises(data: st.DataObject) -> None:
    """Random edits of the real file give diagnostics, never an exception."""
    text = TRIAL_TEXT
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(text)))
        j = data.draw(st.integers(i, min(len(text), i + 40)))
        insert = data.draw(st.text(alphabet=' \n()<>=x%/"#abcI1E9.-', max_size=6))
        text = text[:i] + insert + text[j:]
    a = analyse_text(text, "mangled.crit")
    assert all(d.code[0] in "EW" for d in a.diagnostics)
