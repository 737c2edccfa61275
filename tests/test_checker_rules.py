"""Every checker rule: a small bad file and the exact diagnostic (code, line, column).

The caret mark ‸ in each case is removed before checking; the diagnostic must start
exactly there, and (for errors) be the only error in the file.
"""

from __future__ import annotations

import pytest

from critlang.diagnostics import CODES
from critlang.frontend import analyse_text
from helpers import ROOT

HERE = str(ROOT / "tests" / "rules.crit")  # imports resolve against tests/

PRELUDE = """\
protocol "NCT00000000"
  title "Rules"
  version "1"
  date 2024-01-01
  sex all
  minimum age 18 years
fact birth_date: date
fact sex: enum {female, male}
fact hb: quantity g/dL
  molar mass 16114 g/mol source "test"
fact bili: quantity mg/dL
fact crcl: quantity mL/min
fact egfr: quantity mL/min/1.73m2
fact krenning: integer 0..4
fact grade: scale {G1 < G2 < G3}
fact consent: attestation
fact prior: list of {kind: enum {a, b}, end: date}
fact weight: quantity kg
fact glucose: quantity mg/dL
fact ratio: number
define age = elapsed_years(birth_date, enrollment)
inclusion criteria
I0 "uses everything once"
  rule age >= 18 years and sex = female and hb > 1 g/dL and bili > 1 mg/dL
    and crcl > 1 mL/min and egfr > 1 mL/min/1.73m2 and krenning > 1 and grade > G1
    and consent and any prior with (kind = a) and weight > 1 kg and glucose > 1 mg/dL
    and ratio > 1
"""

MARK = "‸"

CASES: list[tuple[str, str, str]] = [
    # (name, text added after the prelude, expected code at the mark)
    ("syntax", 'I1 "x"\n  rule hb < ‸) 5 g/dL\n', "E001"),
    ("syntax-missing-quote", "I1 ‸x\n  rule consent\n", "E001"),
    ("no-rule", '‸I1 "x"\n', "E002"),
    ("two-rules", 'I1 "x"\n  rule consent\n  ‸rule consent\n', "E003"),
    ("duplicate-id", 'I1 "x"\n  rule consent\n‸I1 "y"\n  rule consent\n', "E004"),
    ("duplicate-fact", "‸fact hb: quantity g/L\n", "E005"),
    ("import-missing", '‸import "fixtures/no-such-library.crit"\n', "E007"),
    ("codes-unknown-fact", '‸codes hemoglobin: loinc "718-7"\n', "E101"),
    ("codes-unknown-member", '‸codes prior.c: rxnorm "1"\n', "E102"),
    ("codes-not-a-list", '‸codes hb.a: rxnorm "1"\n', "E103"),
    ("bad-date", 'I1 "x"\n  rule birth_date before ‸2024-02-30\n', "E006"),
    ("unknown-name", 'I1 "x"\n  rule ‸hemoglobin < 8 g/dL\n', "E101"),
    ("unknown-category", 'I1 "x"\n  rule sex = ‸femal\n', "E102"),
    ("unknown-scale-member", 'I1 "x"\n  rule grade >= ‸G4\n', "E102"),
    ("field-access", 'I1 "x"\n  rule ‸prior.kind = a\n', "E103"),
    ("arity", 'I1 "x"\n  rule ‸elapsed_years(birth_date) > 3 years\n', "E104"),
    ("self-reference", "‸define loop = loop\n", "E105"),
    ("not-a-condition", 'I1 "x"\n  rule ‸hb\n', "E201"),
    ("bool-arith", 'I1 "x"\n  rule (‸consent + 1) > 2\n', "E201"),
    ("enum-order", 'I1 "x"\n  rule ‸sex > female\n', "E202"),
    ("not-a-list", 'I1 "x"\n  rule any ‸hb with (consent)\n', "E203"),
    ("no-reference-range", 'I1 "x"\n  rule ‸glucose > 2 x ULN\n', "E204"),
    ("branches", "define f = ‸(1 g/dL if consent else 2 kg)\n", "E205"),
    ("unknown-unit", 'I1 "x"\n  rule hb < ‸8 g/dLL\n', "E301"),
    ("dimension", 'I1 "x"\n  rule crcl < ‸50 mg/dL\n', "E302"),
    ("per-bsa-vs-absolute", 'I1 "x"\n  rule crcl < ‸50 mL/min/1.73m2\n', "E302"),
    ("iu-does-not-convert", 'I1 "x"\n  rule bili < ‸3 IU/L\n', "E302"),
    ("unit-missing", 'I1 "x"\n  rule bili > ‸3\n', "E303"),
    ("no-molar-mass", 'I1 "x"\n  rule bili > ‸51 umol/L\n', "E304"),
    ("calendar-vs-fixed", 'I1 "x"\n  rule age >= ‸6570 days\n', "E305"),
    ("already-has-unit", "define f = (‸weight as kg)\n", "E306"),
    ("window-not-duration", 'I1 "x"\n  rule birth_date within ‸2 kg before enrollment\n', "E307"),
    ("unit-out-of-bounds", 'I1 "x"\n  rule weight < ‸5 mg^9999999\n', "E310"),
    ("ten-power-out-of-bounds", 'I1 "x"\n  rule weight < ‸5 x10^300.g\n', "E310"),
    (
        "other-scale",
        'fact a1c: quantity %\ninclusion criteria\nI1 "x"\n  rule a1c < ‸64 mmol/mol\n',
        "E311",
    ),
    (
        "scale-conversion-wrong-end",
        'fact a1c: quantity %\n  ‸convert mmol/mol to g/dL as 1 x source "s"\ninclusion criteria\n'
        'I1 "x"\n'
        "  rule a1c < 8 %\n",
        "E312",
    ),
    ("function-of-a-unit", "define f = sqrt(‸weight)\n", "E313"),
    ("pow-of-a-unit", "define f = pow(ratio, ‸weight)\n", "E313"),
    ("function-arity", "define f = ‸sqrt(ratio, 2)\n", "E104"),
    ("min-one-operand", "define f = ‸min(ratio)\n", "E104"),
    ("min-dimensions", "define f = min(weight, ‸2 mg/dL)\n", "E302"),
    ("min-number-and-quantity", "define f = min(weight, ‸2)\n", "E303"),
    ("min-date-and-number", "define f = min(birth_date, ‸2)\n", "E201"),
    ("function-of-a-condition", "define f = ln(‸consent)\n", "E201"),
    ("builtin-redefined", "‸define sqrt(x: number) = x\n", "E005"),
    ("function-misspelt", 'I1 "x"\n  rule ‸sqr(ratio) > 2\n', "E101"),
    ("int-range", 'I1 "x"\n  rule krenning >= ‸5\n', "E401"),
    ("empty-range", "fact k2: ‸integer 4..0\n", "E402"),
    ("empty-between", 'I1 "x"\n  rule ‸hb between 9 g/dL and 8 g/dL\n', "E402"),
    ("bp-pair-on-number", 'I1 "x"\n  rule krenning < ‸140/90\n', "E601"),
    ("written-division", 'I1 "x"\n  rule krenning < ‸5 / 10\n', "E601"),
    ("bp-vs-number", 'I1 "x"\n  rule 140/90 = ‸90/140\n', "E602"),
    (
        "window-ends",
        'I1 "x"\n  rule ‸birth_date between krenning and 2 weeks before enrollment\n',
        "E603",
    ),
    ("date-of-anchor", 'I1 "x"\n  rule birth_date before date of ‸enrollment\n', "E604"),
    ("assumption", '‸assume "A gap in the text, closed by the author."\n', "W001"),
    ("assumption-value", '‸assume cutoff = 3 mg/dL because "no unit given"\n', "W001"),
    ("unused", "‸fact unused_fact: boolean\n", "W101"),
    ("kinds-partly-coded", '‸codes prior.a: atc "L01BC06"\n', "W102"),
    ("header-conflict", 'I1 "x"\n  rule age > ‸18 years\n', "W201"),
    ("dual-disagrees", 'I1 "x"\n  rule hb < ‸5.0 mmol/L (9.0 g/dL)\n', "W301"),
    ("never-true", 'I1 "x"\n  rule krenning > ‸4\n', "W401"),
    ("number-too-long", 'I1 "x"\n  rule hb < ‸9999999999999999 g/dL\n', "E901"),
    (
        "too-complex",
        '‸I1 "x"\n  rule ' + "any prior with (" * 21 + "kind = a" + ")" * 21 + "\n",
        "E903",
    ),
    ("import-not-allowed", '‸import "/etc/passwd"\n', "E904"),
    ("unit-dropped", 'I1 "Ratio < 3 mg/dL"\n  rule ratio < ‸3\n', "W601"),
]


def _locate(text: str) -> tuple[str, int, int]:
    index = text.index(MARK)
    before = text[:index]
    line = before.count("\n") + 1
    column = index - (before.rfind("\n") + 1) + 1
    return text.replace(MARK, ""), line, column


def test_prelude_is_clean() -> None:
    a = analyse_text(PRELUDE, "rules.crit")
    assert a.ok, [d.message for d in a.diagnostics]
    assert [d.code for d in a.diagnostics] == []


@pytest.mark.parametrize(("name", "addition", "code"), CASES, ids=[c[0] for c in CASES])
def test_rule(name: str, addition: str, code: str) -> None:
    text, line, column = _locate(PRELUDE + addition)
    a = analyse_text(text, HERE)
    at = [(d.code, d.span.line, d.span.column) for d in a.diagnostics]
    assert (code, line, column) in at, at
    if code.startswith("E"):
        errors = [d for d in a.diagnostics if d.is_error]
        assert len(errors) == 1, [(d.code, d.message) for d in errors]


def test_every_code_has_a_case() -> None:
    covered = {c for _, _, c in CASES} | {"W002", "E008", "E009"}  # see the tests below
    covered |= {"E902"}  # 1,000 levels of nesting: tests/test_security.py
    assert set(CODES) - covered == set()


def test_empty_file() -> None:
    for text in ("", "# a comment only\n\n"):
        a = analyse_text(text)
        assert [(d.code, d.span.line, d.span.column) for d in a.diagnostics if d.is_error] == [
            ("E009", 1, 1)
        ]


def test_missing_header() -> None:
    a = analyse_text('fact x: boolean\ninclusion criteria\nI1 "x"\n  rule x\n')
    assert [(d.code, d.span.line, d.span.column) for d in a.diagnostics] == [("W002", 1, 1)]


def test_all_problems_in_one_run() -> None:
    addition = 'I1 "x"\n  rule hemoglobin < 8 g/dL\nI2 "y"\n  rule crcl < 50 mg/dL\n'
    addition += 'I3 "z"\n  rule sex = femal\n'
    a = analyse_text(PRELUDE + addition)
    assert [d.code for d in a.diagnostics if d.is_error] == ["E101", "E302", "E102"]


def test_several_syntax_errors_reported() -> None:
    addition = 'I1 "x"\n  rule hb < ) 5 g/dL\nI2 "y"\n  rule consent and\nI3 "z"\n  rule consent\n'
    a = analyse_text(PRELUDE + addition)
    lines = [d.span.line for d in a.diagnostics if d.code == "E001"]
    assert len(lines) == 2 and lines[0] < lines[1]


def test_did_you_mean_and_hint() -> None:
    a = analyse_text(PRELUDE + 'I1 "x"\n  rule hbb < 8 g/dL\n')
    (d,) = [d for d in a.diagnostics if d.is_error]
    assert d.hint == "did you mean `hb`?"


def test_cascade_suppressed() -> None:
    a = analyse_text(PRELUDE + 'I1 "x"\n  rule sexx = male\n')
    assert [d.code for d in a.diagnostics if d.is_error] == ["E101"]


def test_bilirubin_unit_missing_message_names_fact_unit() -> None:
    a = analyse_text(PRELUDE + 'I1 "x"\n  rule bili > 3\n')
    (d,) = [d for d in a.diagnostics if d.is_error]
    assert "`bili` is in mg/dL" in d.message and "3 mg/dL" in d.hint


def test_library_with_more_than_codes() -> None:
    a = analyse_text(PRELUDE + 'import "fixtures/library-with-fact.crit"\n', HERE)
    (d,) = [d for d in a.diagnostics if d.is_error]
    assert (d.code, d.span.line, d.span.column) == ("E008", 3, 1)
    assert d.span.path.endswith("library-with-fact.crit")


def test_library_codes_bind_declared_facts() -> None:
    a = analyse_text(PRELUDE + 'import "fixtures/library-with-fact.crit"\n', HERE)
    assert a.result is not None
    assert [c.value for c in a.result.bindings["hb"]] == ["718-7"]


def test_builtin_functions_did_you_mean_and_units() -> None:
    a = analyse_text(PRELUDE + 'I1 "x"\n  rule sqr(ratio) > 2 and lg10(ratio) > 1\n')
    hints = [d.hint for d in a.diagnostics if d.code == "E101"]
    assert hints == ["did you mean `sqrt`?", "did you mean `log10`?"]
    a = analyse_text(PRELUDE + "define f = cbrt(weight)\n")
    (d,) = [d for d in a.diagnostics if d.is_error]
    assert d.code == "E313" and "a quantity in kg" in d.message
    assert "`cbrt((... in kg))`" in (d.hint or "")
    # min / max of quantities: the first operand's unit; of dates: a date
    a = analyse_text(
        PRELUDE + "define f = min(weight, 150 [lb_av])\ndefine g = max(birth_date, 2000-01-01)\n"
        'inclusion criteria\nI9 "x"\n  rule f < 70 kg and g before enrollment\n'
        "    and pow(ratio, 2) > sqrt(ratio)\n"
    )
    assert a.ok, [(d.code, d.message) for d in a.diagnostics if d.is_error]


def test_age_not_defined_hints_the_usual_definition() -> None:
    """`age` is not built in: E101 and the header's W201 say how every protocol defines it."""
    text = PRELUDE.replace("define age = elapsed_years(birth_date, enrollment)\n", "")
    text += '  rule consent\nI1 "adult"\n  rule age >= 18 years\n'
    diags = analyse_text(text, HERE).diagnostics
    e101 = [d for d in diags if d.code == "E101"]
    assert e101 and all(
        "define age = elapsed_years(birth_date, enrollment)" in (d.hint or "") for d in e101
    )
    w201 = [d for d in diags if d.code == "W201"]
    assert w201 and "(age is not built in)" in (w201[0].hint or "")
