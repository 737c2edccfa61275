"""The parser a command runs: the grammar's LALR(1) tables (parse_tables.py, generated from
Lark's own parser by `lalr.write_tables`) driven here without importing Lark.

Importing Lark, loading its tables and building its contextual lexer (one alternation
regex compiled per parser state) took ~100 ms of every `critlang eval`. This module does
what Lark does, step for step, with the data Lark computed:

- lexing: in each parser state, the terminals Lark's `ContextualLexer` allows there, tried
  in the order of Lark's alternation (a regex alternation at a fixed position returns its
  first alternative that matches, so trying them one by one in that order gives the same
  token), skipping those that cannot start with the text's character (`_at`); each
  terminal's pattern is compiled once, not once per state. A keyword that
  the state's NAME also matches becomes that keyword (Lark's "unless" callback);
- parsing: Lark's shift/reduce loop over the same tables;
- the tree: Lark's `ParseTreeBuilder` for this parser's options (anonymous tokens filtered,
  `_rules` inlined, `?rules` with one child replaced by it, positions propagated).

Trees and tokens duck-type Lark's (`data`, `children`, `meta`; tokens are `str` with
`type` and positions), so the AST builder reads either. On any input this parser rejects,
`parse` raises `Rejected` and the caller lets Lark parse it, for Lark's own error (syntax
errors are reported from Lark's exceptions). tests/test_lalr_runtime.py compares trees and
tokens with Lark's on every criteria file in the repository and on generated programs.
"""

from __future__ import annotations

import re
from typing import Any

from . import parse_tables as T


class Rejected(Exception):
    """The text does not parse (or the tables are stale): ask Lark, for its diagnosis."""


class Token(str):
    """A token, as Lark's: the text, its terminal's name and its positions."""

    __slots__ = ("column", "end_column", "end_line", "end_pos", "line", "start_pos", "type")

    type: str
    start_pos: int
    line: int
    column: int
    end_line: int
    end_column: int
    end_pos: int

    @property
    def value(self) -> str:
        return str(self)


class Meta:
    """A subtree's positions, as Lark's `Meta`: (line, column, offset) where it starts and
    ends, and where its first and last children's containers do (Lark's `container_*`,
    which differ once a `?rule` hands its only child up)."""

    __slots__ = ("container_end", "container_start", "empty", "end", "start")

    start: tuple[int, int, int]
    end: tuple[int, int, int]
    container_start: tuple[int, int, int]
    container_end: tuple[int, int, int]

    def __init__(self) -> None:
        self.empty = True

    line = property(lambda self: self.start[0])
    column = property(lambda self: self.start[1])
    start_pos = property(lambda self: self.start[2])
    end_line = property(lambda self: self.end[0])
    end_column = property(lambda self: self.end[1])
    end_pos = property(lambda self: self.end[2])
    container_line = property(lambda self: self.container_start[0])
    container_column = property(lambda self: self.container_start[1])
    container_start_pos = property(lambda self: self.container_start[2])
    container_end_line = property(lambda self: self.container_end[0])
    container_end_column = property(lambda self: self.container_end[1])
    container_end_pos = property(lambda self: self.container_end[2])


class Tree:
    """A subtree, as Lark's: the rule's (or alias's) name, children and positions."""

    __slots__ = ("children", "data", "meta")

    def __init__(self, data: str, children: list[Any]) -> None:
        self.data = data
        self.children = children
        self.meta = Meta()

    def __repr__(self) -> str:
        return f"Tree({self.data!r}, {self.children!r})"


_new_token = str.__new__
# per lexer (a set of terminals allowed in some parser states), in Lark's order: the
# literal a terminal is, or None and its compiled pattern's `match`; and its name
_Scanner = tuple[tuple[str | None, Any, str], ...]
_scanners: dict[int, _Scanner] = {}
_compiled: dict[str, Any] = {}  # terminal name -> its compiled pattern's match


def _scanner(lexer: int) -> _Scanner:
    found = _scanners.get(lexer)
    if found is None:
        entries = []
        for name in T.LEXERS[lexer][0]:
            literal, regexp = T.PATTERNS[name]
            match = None
            if literal is None:
                match = _compiled.get(name)
                if match is None:
                    match = _compiled[name] = re.compile(regexp).match
            entries.append((literal, match, name))
        found = _scanners[lexer] = tuple(entries)
    return found


# per lexer: the character at the position -> its terminals that can match there
_by_char: list[dict[str, _Scanner]] = [{} for _ in T.LEXERS]


def _at(lexer: int, char: str) -> _Scanner:
    """The terminals of `lexer` that can match at `char`, in Lark's order: a literal that
    starts with it, a pattern whose first characters (T.FIRST, ASCII) hold it or any
    pattern at a non-ASCII character. Skipping the others changes no token: every match
    is at least one character long and starts with the text's character (~6 of 7
    attempts were misses)."""
    found = []
    for entry in _scanners.get(lexer) or _scanner(lexer):
        literal, _, name = entry
        if literal is not None:
            if literal[0] != char:
                continue
        elif char < "\x80":
            first = T.FIRST.get(name)
            if first is not None and char not in first:
                continue
        found.append(entry)
    entries = _by_char[lexer][char] = tuple(found)
    return entries


def _reduce(rule: tuple[Any, ...], children: list[Any]) -> Any:
    """Lark's tree builder for one rule: filter, inline, expand a single child, position."""
    _, _, name, expand1, include = rule
    if include is None:
        kept = children
    else:
        kept = []
        for i, inline in include:
            if inline:
                if kept:
                    kept += children[i].children
                else:
                    kept = children[i].children
            else:
                kept.append(children[i])
    res = kept[0] if expand1 and len(kept) == 1 else Tree(name, kept)
    if type(res) is not Tree:
        return res
    # Lark's PropagatePositions: a subtree spans from its first child's container to its
    # last's (anonymous tokens count: they are filtered after this). Every non-empty meta
    # has its containers set, and a token is its own container.
    for c in children:
        if type(c) is Token:
            first = (c.line, c.column, c.start_pos)
            break
        if not c.meta.empty:
            first = c.meta.container_start
            break
    else:
        return res  # no child has a position (and so no last one either)
    for c in reversed(children):
        if type(c) is Token:
            last = (c.end_line, c.end_column, c.end_pos)
            break
        if not c.meta.empty:
            last = c.meta.container_end
            break
    meta = res.meta
    if meta.empty:
        meta.start = first
        meta.end = last
        meta.empty = False
    meta.container_start = first
    meta.container_end = last
    return res


def parse(text: str) -> Tree:
    """The parse tree of `text`, as Lark's parser gives it. Raises Rejected where Lark
    would raise a syntax error."""
    actions = T.ACTIONS
    rules = T.RULES
    lexer_of = T.STATE_LEXER
    lexers = T.LEXERS
    ignore = T.IGNORE
    newline = T.NEWLINE
    by_char = _by_char
    states = [T.START_STATE]
    values: list[Any] = []
    pos, line, line_start, end = 0, 1, 0, len(text)
    while True:
        # lex one token with the lexer of the current state (Lark's ContextualLexer)
        tok: Token | None = None
        while pos < end:
            lexer = lexer_of[states[-1]]
            entries = by_char[lexer].get(text[pos])
            if entries is None:
                entries = _at(lexer, text[pos])
            # the name of the terminal that matched is read after the loop
            for literal, match, name in entries:  # noqa: B007
                if literal is not None:
                    if text.startswith(literal, pos):
                        value = literal
                        break
                else:
                    m = match(text, pos)
                    if m is not None:
                        value = m.group()
                        break
            else:
                raise Rejected
            start, start_line, column = pos, line, pos - line_start + 1
            if name in newline:
                count = value.count("\n")
                if count:
                    line += count
                    line_start = pos + value.rindex("\n") + 1
            pos += len(value)
            if name in ignore:
                continue
            unless = lexers[lexer][1].get(name)
            tok = _new_token(Token, value)
            tok.type = unless.get(value, name) if unless is not None else name
            tok.start_pos, tok.line, tok.column = start, start_line, column
            tok.end_line, tok.end_column, tok.end_pos = line, pos - line_start + 1, pos
            break
        kind = tok.type if tok is not None else "$END"
        # feed it: reduce as often as the tables say, then shift (or accept at the end)
        while True:
            action = actions[states[-1]].get(kind)
            if action is None:
                raise Rejected
            if action >= 0:
                if tok is None:
                    raise Rejected  # Lark never shifts the end marker
                states.append(action)
                values.append(tok)
                break
            rule = rules[-1 - action]
            size = rule[1]
            if size:
                children = values[-size:]
                del states[-size:]
                del values[-size:]
            else:
                children = []
            values.append(_reduce(rule, children))
            goto = actions[states[-1]][rule[0]]
            states.append(goto)
            if tok is None and goto == T.END_STATE:
                return values[-1]  # type: ignore[no-any-return]
