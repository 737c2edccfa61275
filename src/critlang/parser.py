"""Parse criteria files: the grammar's LALR parser builds a tree, `_ToAst` turns it into
nodes. A file that parses is parsed by lalr_runtime.py (Lark's tables and semantics,
without importing Lark: a command starts ~100 ms sooner); one that does not is parsed
again by Lark, whose exceptions syntax_errors.py turns into diagnostics.

Syntax errors become diagnostics. After the first error the file is re-parsed one
top-level item at a time (the rest blanked out, so lines and columns stay true), so a
file with several broken items gets one diagnostic per item, not just the first.

This module is the entry point (parse, to_ast, the item-by-item re-parse); the AST
builder is in ast_builder.py, syntax-error messages and hints in syntax_errors.py.
"""

from __future__ import annotations

import bisect
import re
from functools import cache
from typing import TYPE_CHECKING

from . import lalr_runtime
from . import nodes as n
from .ast_builder import MAX_DEPTH, _ToAst, _TooDeep
from .diagnostics import Diagnostic, error
from .lalr import build_strict, grammar_path, lark_parser, runtime_tables_fresh, write_tables
from .source import SourceFile

if TYPE_CHECKING:
    import lark

__all__ = [
    "build_strict",
    "grammar_path",
    "lark_parser",
    "parse",
    "parse_text",
    "salvage",
    "to_ast",
    "write_tables",
]


@cache
def _lark() -> lark.Lark:
    return lark_parser()


# the patterns of this module serve files with syntax errors: compiled (by `re`, which
# keeps them) when first used, not at every start
_ITEM_START = (
    r"(?m)^[ \t]*(?:(protocol|fact|define|anchor|assume|inclusion|exclusion|import|codes)\b"
    r"|([A-Z]+-?[0-9]+[a-z]?)[ \t]+\")"
)


def _items(text: str) -> list[tuple[int, int, int | None]]:
    """(start, end, offset of the governing section line) for each top-level item."""
    starts = [(m.start(), m.group(1)) for m in re.finditer(_ITEM_START, text)]
    items: list[tuple[int, int, int | None]] = []
    section: int | None = None
    for i, (start, word) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        if word in ("inclusion", "exclusion"):
            section = start
            line_end = text.find("\n", start)
            end = len(text) if line_end < 0 else min(end, line_end)
            items.append((start, end, None))
        elif word is None:
            items.append((start, end, section))
        else:
            section = None if word != "protocol" else section
            items.append((start, end, None))
    return items


_NOT_NEWLINE = r"[^\n]"


def _blank_before(text: str, start: int, keep: tuple[int, int] | None) -> str:
    """The text from `start` on, everything before blanked (lines and columns stay
    true) except the span `keep` (the governing section line)."""
    if keep is None:
        return re.sub(_NOT_NEWLINE, " ", text[:start]) + text[start:]
    a, b = keep
    blank = re.sub(_NOT_NEWLINE, " ", text[:a]), re.sub(_NOT_NEWLINE, " ", text[b:start])
    head = blank[0] + text[a:b] + blank[1]
    return head + text[start:]


def _all_syntax_errors(source: SourceFile, first: Diagnostic) -> list[Diagnostic]:
    """One diagnostic per broken item, in time linear in the file's size.

    An LALR parser stops at the first token that cannot continue a valid prefix, so
    every item before the error is sound. The parse restarts at the item after the one
    the error falls in (with its section line; what comes before is blanked, in C, so
    lines and columns stay true) and runs to the next error: each part of the file is
    parsed about once, not once per item.
    """
    from lark.exceptions import UnexpectedInput

    from .syntax_errors import _syntax_diagnostic

    found = {(first.span.start, first.message): first}
    parser = _lark()
    text = source.text
    items = _items(text)
    if not items:
        return [first]
    starts = [start for start, _, _ in items]
    first_token = [
        start + len(text[start:end]) - len(text[start:end].lstrip()) for start, end, _ in items
    ]

    def restart_after(pos: int, done: int) -> int:
        j = max(0, bisect.bisect_right(starts, pos) - 1)
        # an error on an item's first token is the previous item ending too early
        nxt = j if pos <= first_token[j] else j + 1
        return max(nxt, done + 1)

    r = restart_after(first.span.start, -1)
    while r < len(items):
        keep = None
        section = items[r][2]
        if section is not None:
            line_end = text.find("\n", section)
            keep = (section, len(text) if line_end < 0 else line_end)
        parsed = _blank_before(text, items[r][0], keep)
        try:
            parser.parse(parsed)
        except UnexpectedInput as exc:
            d = _syntax_diagnostic(exc, source, parsed)
            found.setdefault((d.span.start, d.message), d)
            r = restart_after(d.span.start, r)
        else:
            break
    return sorted(found.values(), key=lambda d: d.span.start)


def _broken_items(text: str, errors: list[Diagnostic]) -> list[tuple[int, int]]:
    """The (start, end) of each top-level item a syntax error falls in (an error on an
    item's first token is the previous item ending too early, as `_all_syntax_errors`)."""
    items = _items(text)
    starts = [start for start, _, _ in items]
    out: set[tuple[int, int]] = set()
    for d in errors:
        j = bisect.bisect_right(starts, d.span.start) - 1
        if j < 0:
            return [(0, len(text))]  # before the first item: nothing is sound
        first = (
            starts[j]
            + len(text[starts[j] : items[j][1]])
            - len(text[starts[j] : items[j][1]].lstrip())
        )
        if d.span.start <= first and j > 0:
            j -= 1
        out.add((items[j][0], items[j][1]))
    return sorted(out)


_WORD = r"[A-Za-z_][A-Za-z0-9_]*"


def salvage(source: SourceFile, errors: list[Diagnostic]) -> tuple[n.Protocol | None, set[str]]:
    """The protocol without the items that have syntax errors (blanked: lines and columns
    stay true), so that the other checks still run on what did parse; with the words of
    the broken items (names they may declare or use, which the caller must not call
    unknown). None when the rest does not parse either (a broken section line)."""
    from lark.exceptions import UnexpectedInput

    text = source.text
    broken = _broken_items(text, errors)
    words: set[str] = set()
    parts: list[str] = []
    done = 0
    for start, end in broken:
        words.update(re.findall(_WORD, text[start:end]))
        parts += [text[done:start], re.sub(_NOT_NEWLINE, " ", text[start:end])]
        done = end
    parts.append(text[done:])
    try:
        tree = _lark().parse("".join(parts))
    except UnexpectedInput:
        return None, words
    protocol, problems = to_ast(tree, SourceFile(source.path, "".join(parts)))
    return (protocol if not problems else None), words


def to_ast(
    tree: lark.Tree | lalr_runtime.Tree, source: SourceFile
) -> tuple[n.Protocol | None, list[Diagnostic]]:
    """The AST of a parse tree, or None and the limits it exceeds (E901, E902)."""
    builder = _ToAst(source)
    try:
        protocol = builder.transform(tree)
    except _TooDeep as exc:
        start = getattr(exc.meta, "start_pos", 0)
        return None, [
            error(
                "E902",
                "nested too deeply",
                source.span(start, start),
                label=f"more than {MAX_DEPTH} levels of nesting",
                hint="split the expression into named definitions (`define`)",
            )
        ]
    if builder.problems:
        return None, builder.problems
    return protocol, []


def parse(source: SourceFile) -> tuple[n.Protocol | None, list[Diagnostic]]:
    """Parse one file. Returns the AST (None on syntax errors) and the diagnostics."""
    if runtime_tables_fresh():
        try:
            return to_ast(lalr_runtime.parse(source.text), source)
        except lalr_runtime.Rejected:
            pass  # Lark says why
    from lark.exceptions import UnexpectedInput

    from .syntax_errors import _syntax_diagnostic

    try:
        tree = _lark().parse(source.text)
    except UnexpectedInput as exc:
        first = _syntax_diagnostic(exc, source)
        return None, _all_syntax_errors(source, first)
    return to_ast(tree, source)


def parse_text(text: str, path: str = "<text>") -> tuple[n.Protocol | None, list[Diagnostic]]:
    return parse(SourceFile(path, text))
