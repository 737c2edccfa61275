"""The runtime parser (lalr_runtime.py) against Lark's: the same tree, token for token and
position for position, on every criteria file in the repository, on generated programs
and on mutants of them; it rejects exactly what Lark rejects (and then Lark reports)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import lark
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.extra.lark import from_lark

from critlang import lalr, lalr_runtime, parse_tables
from critlang.ast_builder import _ToAst
from critlang.parser import grammar_path, parse_text
from test_format import EXPLICIT

ROOT = Path(__file__).resolve().parents[1]
LARK = lalr.lark_parser()
PROGRAMS = from_lark(
    lark.Lark(grammar_path().read_text(), parser="lalr", propagate_positions=True),
    explicit=EXPLICIT,
)
TOKEN = ("type", "start_pos", "line", "column", "end_line", "end_column", "end_pos")
META = (
    *("empty", "line", "column", "start_pos", "end_line", "end_column", "end_pos"),
    *("container_line", "container_column", "container_start_pos"),
    *("container_end_line", "container_end_column", "container_end_pos"),
)


def shape(tree: Any) -> Any:
    """A tree as plain data: every token's text, type and positions, every subtree's rule
    and positions (Lark's `container_*` too)."""
    if isinstance(tree, str):
        return ("token", str(tree), *(getattr(tree, a) for a in TOKEN))
    meta = tuple(getattr(tree.meta, a, "unset") for a in META)
    return (tree.data, meta, tuple(shape(c) for c in tree.children))


def both(text: str) -> tuple[Any, Any]:
    try:
        theirs = shape(LARK.parse(text))
    except lark.exceptions.UnexpectedInput:
        theirs = "syntax error"
    try:
        ours = shape(lalr_runtime.parse(text))
    except lalr_runtime.Rejected:
        ours = "syntax error"
    return theirs, ours


CRIT_FILES = sorted(p for p in ROOT.rglob("*.crit") if ".git" not in p.parts)


def test_the_tables_are_generated_from_the_current_grammar() -> None:
    assert lalr.runtime_tables_fresh(), (
        "grammar changed: regenerate the tables with "
        '`python -c "from critlang.lalr import write_tables; write_tables()"`'
    )
    assert lalr.RUNTIME_TABLES.read_text(encoding="utf-8") == lalr.runtime_tables_source()


@pytest.mark.parametrize("path", CRIT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_same_tree_as_lark_on_every_criteria_file(path: Path) -> None:
    theirs, ours = both(path.read_text(encoding="utf-8"))
    assert theirs != "syntax error"
    assert ours == theirs


def test_there_are_criteria_files_to_compare() -> None:
    assert len(CRIT_FILES) >= 8


def test_the_first_characters_of_each_pattern_are_a_superset() -> None:
    """The lexer skips a pattern at an ASCII character outside its first characters
    (parse_tables.FIRST): no text starting with such a character matches it. Texts: what
    follows each token of every criteria file (16 characters of its line, a fixed sample
    of 2,000) after every ASCII character."""
    import re

    assert lalr.first_chars(r"(?:ab|c?d)+") == "acd"
    assert lalr.first_chars(r"(?!x)[^a]") is None  # a negated class: any character
    assert lalr.first_chars(r"\s*(?=q)z") == "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f z"
    rests = {
        text[i : min(j, i + 16)]
        for path in CRIT_FILES
        for text in [path.read_text(encoding="utf-8")]
        for i in range(1, len(text))
        if text[i - 1] in ' \t\n("' or text[i - 1].isalnum() != text[i].isalnum()
        for j in [text.find("\n", i)]
        if j > i
    }
    rests |= {"10^9/L", "5 mmol/L", "120/80 mmHg", '"a b"', "x10^9/L", "earlier", "-3"}
    follows = sorted({r[1:] for r in rests})
    follows = random.Random(12).sample(follows, min(2000, len(follows)))
    for name, (literal, regexp) in parse_tables.PATTERNS.items():
        if literal is not None:
            continue
        first = parse_tables.FIRST[name]
        assert first == lalr.first_chars(regexp)
        if first is None:
            continue
        match = re.compile(regexp).match
        assert any(match(r) for r in rests if r[0] in first), name  # the set is not empty
        for char in (chr(i) for i in range(128)):
            if char not in first:
                hit = next((rest for rest in follows if match(char + rest)), None)
                assert hit is None, (name, char, hit)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(PROGRAMS)
def test_same_tree_as_lark_on_generated_programs(program: str) -> None:
    theirs, ours = both(program)
    assert ours == theirs


def _mutants(text: str, count: int, seed: int) -> list[str]:
    """Deletions, duplications and swaps of short spans: keywords cut in half, brackets
    left open, quantities glued to names, tokens in states that do not take them."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        t = text
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(t))
            j = min(len(t), i + rng.randint(1, 12))
            kind = rng.randrange(4)
            if kind == 0:
                t = t[:i] + t[j:]
            elif kind == 1:
                t = t[:i] + t[i:j] + t[i:]
            elif kind == 2:
                k = rng.randrange(len(t))
                t = t[:k] + t[i:j] + t[k:]
            else:
                t = t[:i] + rng.choice([" ", "\n", "(", ")", '"', "x", "-", "#", "é", "≥"]) + t[i:]
        out.append(t)
    return out


@pytest.mark.parametrize("seed", range(int(os.environ.get("FUZZ_CASES", "4"))))
def test_same_verdict_and_tree_as_lark_on_mutants(seed: int) -> None:
    text = (ROOT / "protocols" / "nct05610826" / "current.crit").read_text(encoding="utf-8")
    outcomes = []
    for mutant in _mutants(text, 60, seed):
        theirs, ours = both(mutant)
        assert ours == theirs, mutant
        outcomes.append(theirs == "syntax error")
    assert any(outcomes) and not all(outcomes)  # both kinds were compared


def test_keywords_and_names_split_as_lark_splits_them() -> None:
    # a keyword that NAME also matches is the keyword only where the state takes it
    for text in (
        'fact all: boolean\ninclusion criteria\nI1 "t"\n  rule all\n',
        'fact x: quantity mg\ninclusion criteria\nI1 "t"\n  rule x > 2 x ULN\n',
        'fact x: quantity mg\ninclusion criteria\nI1 "t"\n  rule x > 2 xULN\n',
        'fact x: list of {a: date}\ninclusion criteria\nI1 "t"\n'
        "  rule any x with (x.a before 2020-01-01)\n",
        "",
        "# only a comment\n",
    ):
        theirs, ours = both(text)
        assert ours == theirs, text


def test_every_subtree_the_tables_build_has_a_builder_method() -> None:
    # a `?rule` without an alias only ever hands its single child up (else the AST
    # builder would meet a subtree it has no method for)
    for origin, _, name, expand1, include in parse_tables.RULES:
        if name.startswith("_") or hasattr(_ToAst, name):
            continue
        kept = include if include is not None else [None]
        assert expand1 and len(kept) == 1, (origin, name)


def test_syntax_errors_are_still_lark_s_diagnostics() -> None:
    protocol, diags = parse_text('inclusion criteria\nI1 "t"\n  rule x >= (1\n')
    assert protocol is None
    assert [d.code for d in diags] == ["E001"]
    assert "(" in diags[0].message or "bracket" in (diags[0].label or "") + diags[0].message


def test_stale_tables_parse_with_lark(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "protocols" / "lib" / "common-labs.crit").read_text(encoding="utf-8")
    expected = parse_text(text)
    monkeypatch.setattr(lalr, "_grammar_text", lambda: "another grammar")
    lalr.runtime_tables_fresh.cache_clear()
    try:
        assert not lalr.runtime_tables_fresh()

        def refuse(text: str) -> None:
            raise AssertionError("the runtime parser ran on stale tables")

        monkeypatch.setattr(lalr_runtime, "parse", refuse)
        assert parse_text(text) == expected
    finally:
        lalr.runtime_tables_fresh.cache_clear()


def test_a_file_that_parses_loads_no_lark() -> None:
    code = (
        "import sys\n"
        "from critlang.frontend import analyse_file\n"
        f"a = analyse_file({str(ROOT / 'protocols' / 'nct05610826' / 'current.crit')!r})\n"
        "assert a.ok\n"
        "print('lark' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert proc.stdout.strip() == "False"
