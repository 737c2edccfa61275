"""The Lark LALR parser object for the grammar: loaded from tables shipped in the package,
or built from the grammar (docs/security.md: no parser cache on disk); and the tables of
the parser commands run (lalr_runtime.py, parse_tables.py), generated from it.

Lark is imported when a Lark parser is wanted (syntax errors, `fmt`, tests), not to parse
a file that parses: that costs a command ~100 ms.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import lark

_PACKAGED = Path(__file__).with_name("critlang.lark")
_IN_REPO = Path(__file__).resolve().parents[2] / "grammar" / "critlang.lark"


def grammar_path() -> Path:
    """The grammar shipped in the package, or the repository's when running from source."""
    return _PACKAGED if _PACKAGED.exists() else _IN_REPO


# The LALR tables built from the grammar, shipped in the package as JSON (plain data,
# loaded without pickle: a parser cache in a shared temp folder would let whoever writes
# it first run code in every later process). Loading them takes ~30 ms where building
# takes ~600 ms. `write_tables()` regenerates them; a test fails when they are stale, and
# until then the parser is built in memory from the grammar (correct, only slower).
TABLES = Path(__file__).with_name("grammar_tables.json")


def _grammar_text() -> str:
    return grammar_path().read_text(encoding="utf-8")


def _grammar_hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _build(**options: Any) -> lark.Lark:
    import lark

    return lark.Lark(
        _grammar_text(),
        parser="lalr",
        strict=False,  # the grammar is proven conflict-free in strict mode by a test
        propagate_positions=True,
        maybe_placeholders=False,
        **options,
    )


def _int_keys(pairs: list[tuple[str, Any]]) -> dict[Any, Any]:
    # JSON keys are strings; Lark's state and memo tables are keyed by integers
    return {int(k) if k.isdigit() else k: v for k, v in pairs}


def _load_tables(**options: Any) -> lark.Lark | None:
    """The shipped tables if they were built from the current grammar, else None."""
    import lark

    try:
        saved = json.loads(TABLES.read_text(encoding="utf-8"), object_pairs_hook=_int_keys)
        if saved.get("grammar_sha256") != _grammar_hash(_grammar_text()):
            return None
        return lark.Lark._load_from_dict(saved["data"], saved["memo"], **options)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, lark.exceptions.LarkError):
        return None  # missing or from another Lark version: build instead


def tables_json() -> str:
    """The parser tables for the current grammar, as the JSON `TABLES` holds."""
    import lark

    built = _build()
    data, memo = built.memo_serialize([lark.lexer.TerminalDef, lark.grammar.Rule])
    saved = {
        "grammar_sha256": _grammar_hash(_grammar_text()),
        "lark": lark.__version__,
        "data": data,
        "memo": memo,
    }
    return json.dumps(saved, sort_keys=True, separators=(",", ":")) + "\n"


def write_tables() -> None:
    """Regenerate the shipped tables after a grammar change:
    `python -c "from critlang.lalr import write_tables; write_tables()"`."""
    TABLES.write_text(tables_json(), encoding="utf-8")
    RUNTIME_TABLES.write_text(runtime_tables_source(), encoding="utf-8")


def lark_parser(**options: Any) -> lark.Lark:
    """A Lark LALR parser for the grammar (`options`: e.g. lexer_callbacks)."""
    return _load_tables(**options) or _build(**options)


def build_strict() -> lark.Lark:
    """Build in Lark's strict mode (no conflicts, no terminal collisions); used by tests."""
    import lark

    return lark.Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        strict=True,
        propagate_positions=True,
    )


# ------------------------------------------------------------------ the runtime's tables

RUNTIME_TABLES = Path(__file__).with_name("parse_tables.py")


@cache
def runtime_tables_fresh() -> bool:
    """Whether parse_tables.py was generated from the current grammar (else the commands
    parse with Lark: correct, only slower)."""
    from . import parse_tables

    try:
        return _grammar_text() == parse_tables.GRAMMAR
    except (OSError, UnicodeDecodeError):
        return False


def runtime_tables_source() -> str:
    """parse_tables.py for the current grammar: what lalr_runtime.py needs of Lark's parser
    (its LALR tables, the terminals each state's contextual lexer tries in order, its
    keyword callbacks, the tree builder's choices per rule), as plain Python literals."""
    import lark
    from lark.lexer import PatternStr, UnlessCallback
    from lark.parse_tree_builder import _should_expand

    built = lark_parser()  # from the shipped JSON tables: the same state numbers
    frontend = built.parser
    table = frontend.parser.parser.parse_table
    conf = built.lexer_conf
    assert conf.g_regex_flags == 0 and not conf.use_bytes and not conf.callbacks
    assert not built.options.keep_all_tokens and not built.options.maybe_placeholders
    assert built.options.propagate_positions is True and built.options.postlex is None
    assert set(table.start_states) == {"start"} and len(table.states) == max(table.states) + 1

    rules: list[Any] = []
    rule_number: dict[Any, int] = {}
    for state in sorted(table.states):
        for _, (action, arg) in sorted(table.states[state].items()):
            if action.name == "Reduce" and arg not in rule_number:
                rule_number[arg] = len(rules)
                rules.append(arg)
    actions = []
    for state in sorted(table.states):
        row = {}
        for symbol, (action, arg) in sorted(table.states[state].items()):
            row[symbol] = arg if action.name == "Shift" else -1 - rule_number[arg]
        actions.append(row)
    rule_rows = []
    for rule in rules:
        assert not rule.options.keep_all_tokens and not rule.options.template_source
        include = [
            (i, _should_expand(sym))
            for i, sym in enumerate(rule.expansion)
            if not (sym.is_term and sym.filter_out)
        ]
        needs_filter = len(include) < len(rule.expansion) or any(x for _, x in include)
        rule_rows.append(
            (
                rule.origin.name,
                len(rule.expansion),
                rule.alias or rule.origin.name,
                bool(rule.options.expand1 and not rule.alias),
                tuple(include) if needs_filter else None,
            )
        )

    lexers: list[Any] = []
    lexer_number: dict[str, int] = {}
    state_lexer = []
    newline: set[str] = set()
    for state in sorted(table.states):
        basic = frontend.lexer.lexers[state]
        assert basic.ignore_types == frozenset(conf.ignore)
        scanner = basic.scanner  # Lark's own choice of terminals and their order
        unless = {}
        for name, callback in basic.callback.items():
            assert isinstance(callback, UnlessCallback)
            words: dict[str, str] = {}
            for t in callback.scanner.terminals:
                assert isinstance(t.pattern, PatternStr) and not t.pattern.flags
                words.setdefault(t.pattern.value, t.name)
            unless[name] = words
        lexer = (tuple(t.name for t in scanner.terminals), unless)
        newline |= basic.newline_types
        key = repr(lexer)
        if key not in lexer_number:
            lexer_number[key] = len(lexers)
            lexers.append(lexer)
        state_lexer.append(lexer_number[key])
    # a literal terminal matches where the text starts with it (its regexp is the
    # escaped string, compiled without flags: the same test)
    patterns = {
        t.name: (t.pattern.value, None)
        if isinstance(t.pattern, PatternStr)
        else (None, t.pattern.to_regexp())
        for t in built.terminals
    }
    assert not any(t.pattern.flags for t in built.terminals)
    first = {name: first_chars(regexp) for name, (_, regexp) in patterns.items() if regexp}

    out = [
        '"""Generated by `critlang.lalr.write_tables()` from the grammar and Lark '
        f"{lark.__version__}: do not edit.",
        "",
        "The tables lalr_runtime.py drives (plain data). A test fails when they are stale;",
        'until they are regenerated the parser falls back to Lark (correct, only slower)."""',
        "",
        f"GRAMMAR = {_grammar_text()!r}",
        f"START_STATE = {table.start_states['start']!r}",
        f"END_STATE = {table.end_states['start']!r}",
        f"IGNORE = frozenset({sorted(conf.ignore)!r})",
        f"NEWLINE = frozenset({sorted(newline)!r})",
        f"PATTERNS = {dict(sorted(patterns.items()))!r}",
        f"FIRST = {dict(sorted(first.items()))!r}",
        f"RULES = {tuple(rule_rows)!r}",
        f"LEXERS = {tuple(lexers)!r}",
        f"STATE_LEXER = {tuple(state_lexer)!r}",
        f"ACTIONS = {tuple(actions)!r}",
        "",
    ]
    return "\n".join(out)


# ------------------------------------------------------------------ first characters


def first_chars(regexp: str) -> str | None:
    """The ASCII characters a match of `regexp` can start with (sorted), or None when any
    character may (a negated class, `.`, a back reference, flags, or what this does not
    know). Lark's terminals never match the empty string, so every match has a first
    character: the runtime lexer tries a pattern only at a character of this set, or at a
    non-ASCII one. A superset is always safe; tests/test_lalr_runtime.py checks it."""
    import re._parser as sre  # generation time only (the tables' writer)

    found, _ = _first_of(sre.parse(regexp).data)
    return None if found is None else "".join(sorted(found))


def _first_of(items: Any) -> tuple[set[str] | None, bool]:
    """(first characters, or None for any; whether the sequence can match empty)."""
    out: set[str] = set()
    for op, av in items:
        found, empty = _first_item(str(op), av)
        if found is None:
            return None, False
        out |= found
        if not empty:
            return out, False
    return out, True


def _first_item(op: str, av: Any) -> tuple[set[str] | None, bool]:
    import re

    ascii_ = [chr(i) for i in range(128)]
    if op == "LITERAL":
        return ({chr(av)} if av < 128 else set()), False
    if op == "IN":  # a character class: ask `re` which ASCII characters it holds
        parts = []
        for kind, value in av:
            kind = str(kind)
            if kind == "LITERAL":
                parts.append(re.escape(chr(value)))
            elif kind == "RANGE":
                parts.append(f"{re.escape(chr(value[0]))}-{re.escape(chr(value[1]))}")
            elif kind == "NEGATE":
                parts.insert(0, "^")
            elif kind == "CATEGORY":
                codes = {"DIGIT": r"\d", "NOT_DIGIT": r"\D", "SPACE": r"\s"}
                codes |= {"NOT_SPACE": r"\S", "WORD": r"\w", "NOT_WORD": r"\W"}
                parts.append(codes[str(value).removeprefix("CATEGORY_")])
            else:
                return None, False
        cls = re.compile("[" + "".join(parts) + "]")
        return {c for c in ascii_ if cls.fullmatch(c)}, False
    if op == "SUBPATTERN":
        _, add_flags, del_flags, sub = av
        return (None, False) if add_flags or del_flags else _first_of(sub.data)
    if op == "ATOMIC_GROUP":
        return _first_of(av.data)
    if op == "BRANCH":
        out: set[str] = set()
        empty = False
        for sub in av[1]:
            found, sub_empty = _first_of(sub.data)
            if found is None:
                return None, False
            out |= found
            empty = empty or sub_empty
        return out, empty
    if op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, _, sub = av
        found, empty = _first_of(sub.data)
        return found, (low == 0 or empty)
    if op in ("AT", "ASSERT", "ASSERT_NOT"):  # zero-width: what follows comes first
        return set(), True
    return None, False  # ANY, NOT_LITERAL, GROUPREF, ...: any character
