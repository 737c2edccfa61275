"""The Lark LALR parser object for the grammar: loaded from tables shipped in the package,
or built from the grammar (docs/security.md: no parser cache on disk)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

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
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _build(**options: Any) -> lark.Lark:
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
    try:
        saved = json.loads(TABLES.read_text(encoding="utf-8"), object_pairs_hook=_int_keys)
        if saved.get("grammar_sha256") != _grammar_hash(_grammar_text()):
            return None
        return lark.Lark._load_from_dict(saved["data"], saved["memo"], **options)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, lark.exceptions.LarkError):
        return None  # missing or from another Lark version: build instead


def tables_json() -> str:
    """The parser tables for the current grammar, as the JSON `TABLES` holds."""
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


def lark_parser(**options: Any) -> lark.Lark:
    """A Lark LALR parser for the grammar (`options`: e.g. lexer_callbacks)."""
    return _load_tables(**options) or _build(**options)


def build_strict() -> lark.Lark:
    """Build in Lark's strict mode (no conflicts, no terminal collisions); used by tests."""
    return lark.Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        strict=True,
        propagate_positions=True,
    )
