"""Syntax errors for writers: the caret at the real spot, hints for the usual slips."""

from __future__ import annotations

from critlang.frontend import analyse_text

PRE = "fact a: date\nfact b: quantity mg/dL\ninclusion criteria\n"


def errors(body: str) -> list[tuple[int, int, str, str]]:
    a = analyse_text(PRE + body, "t.crit")
    return [(d.span.line, d.span.column, d.message, d.hint) for d in a.diagnostics if d.is_error]


def test_caret_at_the_bracket_never_closed() -> None:
    body = (
        'I1 "x"\n  rule (b > 1 mg/dL and a within 4 weeks before enrollment\n'
        'I2 "y"\n  rule b > 2 mg/dL\n'
    )
    assert errors(body) == [
        (5, 8, "this bracket is never closed", "close it with `)` where the group ends")
    ]
    a = analyse_text(PRE + body, "t.crit")
    (d,) = [d for d in a.diagnostics if d.is_error]
    assert d.related[0][0].line == 6 and "the condition ends here, at `I2`" in d.related[0][1]


def test_brackets_in_texts_and_comments_do_not_count() -> None:
    body = 'I1 "x (y"\n  rule (b > 1 mg/dL) and a within 4 weeks before enrollment  # (\n  rule\n'
    assert all(m != "this bracket is never closed" for _, _, m, _ in errors(body))


def test_unicode_comparison_signs() -> None:
    for sign, ascii_ in (("≥", ">="), ("≤", "<="), ("≠", "!=")):
        ((line, col, message, hint),) = errors(f'I1 "x"\n  rule b {sign} 1 mg/dL\n')
        assert (line, col, message) == (5, 10, f"unexpected character `{sign}`")
        assert hint == f"write `{ascii_}` instead of `{sign}`"


def test_name_with_a_space() -> None:
    ((line, col, _, hint),) = errors('I1 "x"\n  rule serum creatinine < 1 mg/dL\n')
    assert (line, col) == (5, 14)
    assert hint == "a name is one word: write `serum_creatinine` (and declare it so)"


def test_window_without_before_or_after() -> None:
    ((line, col, _, hint),) = errors('I1 "x"\n  rule a within 4 weeks enrollment\n')
    assert (line, col) == (5, 25)
    assert hint == "say which side of the date: `... before enrollment` or `... after enrollment`"


def test_names_units_and_ids_are_checked_beside_syntax_errors() -> None:
    """The checker still runs on the items that parsed: one pass shows every problem."""
    body = (
        'I1 "ok"\n  rule b > 1 mg/dL\n'
        'I2 "broken"\n  rule (b > 2 mg/dL\n'
        'I3 "unknown name"\n  rule hemoglobin > 5 g/dL\n'
        'I4 "wrong unit"\n  rule b > 5 kg\n'
        'I1 "duplicate"\n  rule a within 4 weeks before enrollment\n'
    )
    found = [(line, code) for line, code in codes(body)]
    assert found == [(7, "E001"), (9, "E101"), (11, "E302"), (12, "E004")], found


def test_a_broken_declaration_does_not_make_its_name_unknown() -> None:
    text = (
        "fact a: date\nfact hb: quantity g/dL label\n"  # a label with no text: broken
        "inclusion criteria\n"
        'I1 "x"\n  rule hb > 5 g/dL\nI2 "y"\n  rule zz > 1\n'
    )
    a = analyse_text(text, "t.crit")
    got = [(d.code, a.source.text[d.span.start : d.span.end]) for d in a.diagnostics]
    assert ("E101", "hb") not in got and ("E101", "zz") in got, got
    assert a.result is None and not a.ok  # a file with syntax errors never checks clean


def test_a_broken_section_line_adds_nothing_beside_it() -> None:
    a = analyse_text('fact b: quantity mg/dL\ninclusion criterion\nI1 "x"\n  rule zz > 1\n', "t")
    assert [d.code for d in a.diagnostics if d.is_error] == ["E001"]


def codes(body: str) -> list[tuple[int, str]]:
    a = analyse_text(PRE + body, "t.crit")
    return [(d.span.line, d.code) for d in a.diagnostics if d.is_error]
