"""`critlang fmt`: canonical, idempotent, meaning-preserving; grammar-driven properties."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import lark
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

from critlang.backends.python import compile_protocol
from critlang.data.records import read_record
from critlang.formatter import format_source
from critlang.frontend import analyse_text
from critlang.parser import grammar_path, parse
from critlang.source import SourceFile
from helpers import ROOT, TRIAL

PROTOCOL_FILES = sorted((ROOT / "protocols").rglob("*.crit"))


def fmt(text: str, path: str = "f.crit") -> str:
    out, diags = format_source(SourceFile(path, text))
    assert out is not None, diags
    return out


@pytest.mark.parametrize("path", PROTOCOL_FILES, ids=lambda p: p.name)
def test_committed_files_are_formatted(path: Path) -> None:
    text = path.read_text()
    assert fmt(text, str(path)) == text


def test_comments_texts_numbers_kept() -> None:
    src = (
        "# top\n\nfact hb: quantity g/dL  # trailing\n"
        'inclusion criteria\nI1 "Hb \\"low\\" <8.000 g/dL"\n'
        "  # inside\n  rule hb < 8.000 g/dL   or    hb > 25.0 g/dL\n"
    )
    out = fmt(src)
    assert "# top" in out and "# trailing" in out and "# inside" in out
    assert "8.000 g/dL" in out and "25.0 g/dL" in out
    assert 'I1 "Hb \\"low\\" <8.000 g/dL"' in out
    assert "  rule hb < 8.000 g/dL or hb > 25.0 g/dL" in out
    assert fmt(out) == out


def test_author_parentheses_kept_and_needed_ones_added() -> None:
    out = fmt(
        'fact a: boolean\nfact b: boolean\ninclusion criteria\nI1 "t"\n  rule (a and b) or a\n'
    )
    assert "rule (a and b) or a" in out


def test_long_rule_breaks_at_top_level_or() -> None:
    cond = " or ".join(f"hb < {i} g/dL" for i in range(1, 12))
    out = fmt(f'fact hb: quantity g/dL\ninclusion criteria\nI1 "t"\n  rule {cond}\n')
    lines = [line for line in out.splitlines() if line.startswith("    or ")]
    assert len(lines) == 10 and fmt(out) == out


def test_long_nested_group_breaks_one_operand_per_line() -> None:
    """A parenthesised `and` group inside a long `or` is broken too (it was joined into
    one 240-character line), indented one step deeper, same AST, idempotent."""
    names = [f"condition_number_{i:02d}_is_present" for i in range(6)]
    decls = "".join(f"fact {x}: boolean\n" for x in names)
    a, b, c, d, e, f = names
    src = (
        f'{decls}inclusion criteria\nI1 "t"\n'
        f"  rule ({a} and {b} and {c})\n    or ({d} and ({e} or {f}))\n"
    )
    out = fmt(src)
    rule = out[out.index("  rule") :].splitlines()
    assert rule == [
        f"  rule ({a}",
        f"      and {b}",
        f"      and {c})",
        f"    or ({d}",
        f"      and ({e} or {f}))",  # fits: not broken further
    ]
    assert all(len(line) <= 100 for line in out.splitlines())
    assert fmt(out) == out
    before, _ = parse(SourceFile("f.crit", src))
    after, _ = parse(SourceFile("f.crit", out))
    assert before is not None and after is not None
    assert before.criteria == after.criteria


def test_list_field_unit_before_closing_brace() -> None:
    """Found by the grammar-driven property test: `{x: quantity kg}` must not lex `kg}`."""
    src = "fact x: list of {a: number, b: quantity kg }\n"
    out = fmt(src)
    assert out == "fact x: list of {a: number, b: quantity kg}\n"
    assert parse(SourceFile("f.crit", out))[0] == parse(SourceFile("f.crit", src))[0]


def test_syntax_errors_are_reported_not_formatted() -> None:
    out, diags = format_source(SourceFile("bad.crit", "fact x boolean\n"))
    assert out is None and diags[0].code == "E001"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "critlang", *args], capture_output=True, text=True, check=False
    )


def test_cli_check_and_diff(tmp_path: Path) -> None:
    f = tmp_path / "messy.crit"
    f.write_text('fact   x :boolean\ninclusion criteria\nI1 "t" rule   x\n')
    proc = run("fmt", "--check", str(tmp_path))
    assert proc.returncode == 1 and f"would reformat {f}" in proc.stdout
    proc = run("fmt", "--diff", str(f))
    assert proc.returncode == 0 and "+fact x: boolean" in proc.stdout
    assert f.read_text().startswith("fact   x")  # --diff writes nothing
    assert run("fmt", str(f)).returncode == 0
    assert f.read_text() == 'fact x: boolean\ninclusion criteria\nI1 "t"\n  rule x\n'
    assert run("fmt", "--check", str(f)).returncode == 0


# ---------------------------------------------------------------------- properties

GRAMMAR = lark.Lark(grammar_path().read_text(), parser="lalr", propagate_positions=True)
EXPLICIT = {
    "NAME": st.sampled_from(["x", "hb", "sex", "arm", "lesions", "kind", "female", "G2"]),
    "STRING": st.sampled_from(['"t"', '"a \\"q\\""', '""', '"# not a comment"']),
    "QUANTITY": st.sampled_from(
        ["8.0 g/dL", "75x10^9/L", "2000/mm3", "4 weeks", "50 %", "12 months", "1.20 mg/dL"]
    ),
    "UNIT": st.sampled_from(["kg", "mg/dL", "mL/min", "years"]),
    "NUMBER": st.sampled_from(["1", "0.85", "20", "3.50"]),
    "SIGNED_INT": st.sampled_from(["0", "4", "-1"]),
    "DATE": st.sampled_from(["2024-01-31", "2024-02-30"]),
    "CRIT_ID": st.sampled_from(["I1", "E2", "IN-3"]),
    "COMMENT": st.sampled_from(["# c", "#"]),
    "WS": st.sampled_from([" ", "\n", "  ", "\n\n"]),
}
PROGRAMS = from_lark(GRAMMAR, explicit=EXPLICIT)


@settings(max_examples=2500, deadline=None, suppress_health_check=list(HealthCheck))
@given(PROGRAMS)
def test_generated_programs(src: str) -> None:
    """Never anything but diagnostics; parse(fmt(p)) == parse(p); fmt is idempotent."""
    a = analyse_text(src, "gen.crit")
    assert all(d.code[0] in "EW" for d in a.diagnostics)
    before, _ = parse(SourceFile("gen.crit", src))
    if before is None:
        return
    out = fmt(src, "gen.crit")
    after, diags = parse(SourceFile("gen.crit", out))
    assert after == before, (src, out, diags)
    assert fmt(out, "gen.crit") == out


@pytest.mark.parametrize("name", ["current.crit", "previous.crit"])
def test_same_verdicts_after_fmt(name: str) -> None:
    """Random patients: the formatted protocol decides exactly as the original."""
    sys.path.insert(0, str(ROOT / "bench"))
    from patients import generate

    text = (TRIAL / name).read_text()
    messy = "\n".join(
        "      rule   " + line[7:].replace(" or ", "  or\n     ")
        if line.startswith("  rule ")
        else line
        for line in text.splitlines()
    )
    original = analyse_text(messy, str(TRIAL / name)).result
    formatted = analyse_text(fmt(messy, str(TRIAL / name)), str(TRIAL / name)).result
    assert original is not None and formatted is not None
    assert original.protocol == formatted.protocol
    c1, c2 = compile_protocol(original), compile_protocol(formatted)
    as_of = dt.date(2026, 11, 27)
    for patient in generate(500, seed=7):
        r1 = read_record(original, patient, as_of)
        r2 = read_record(formatted, patient, as_of)
        assert c1.evaluate(c1.normalise(r1)) == c2.evaluate(c2.normalise(r2))
