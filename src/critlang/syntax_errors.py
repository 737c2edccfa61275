"""Parsing: syntax errors as diagnostics, in words (what was expected, the
unclosed bracket, near-miss keywords, non-ASCII operators), with hints.

Used by `parse` (parser.py), which re-parses item by item after the first error.
"""

from __future__ import annotations

import re

from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .diagnostics import Diagnostic, error
from .source import SourceFile

# Words people read in "expected ..." lists, instead of terminal names.
_TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": 'a quoted text ("...")',
    "QUANTITY": "a number with a unit (e.g. 8.0 g/dL)",
    "NUMBER": "a number",
    "SIGNED_INT": "a whole number",
    "DATE": "a date (YYYY-MM-DD)",
    "UNIT": "a unit (e.g. mg/dL)",
    "PRESSURE_PAIR": "a blood pressure (e.g. 140/90 mmHg)",
    "LATER_EARLIER": "`later` or `earlier`",
    "CRIT_ID": "a criterion id (e.g. I1, E7)",
    "COMPOP": "a comparison (<, <=, >, >=, =, !=)",
    "ADDOP": "+ or -",
    "MULOP": "* or /",
    "LPAR": "(",
    "RPAR": ")",
    "LBRACE": "{",
    "RBRACE": "}",
    "COMMA": ",",
    "COLON": ":",
    "EQUAL": "=",
    "LESSTHAN": "<",
    "DOT": ".",
    "$END": "end of file",
}


def _describe_expected(expected: set[str]) -> str:
    words = []
    for name in sorted(expected):
        if name in _TERMINAL_WORDS:
            words.append(_TERMINAL_WORDS[name])
        elif name.isupper() and not name.startswith("__"):
            words.append(f"`{name.lower().replace('_', ' ')}`")
    words = sorted(set(words))
    if len(words) > 8:
        return ", ".join(words[:8]) + ", ..."
    return ", ".join(words)


_ASCII_FOR = {"≥": ">=", "≤": "<=", "≠": "!=", "⩾": ">=", "⩽": "<=", "−": "-", "–": "-", "÷": "/"}

# words of the language: a name followed by one of these is not a name with a space
_KEYWORDS = frozenset(
    [
        "and",
        "or",
        "not",
        "if",
        "else",
        "unless",
        "in",
        "as",
        "to",
        "of",
        "with",
        "before",
        "after",
        "within",
        "than",
        "more",
        "less",
        "between",
        "is",
        "x",
        "source",
        "reported",
        "because",
        "then",
        "rule",
        "applies",
        "note",
        "assumption",
        "label",
        "fact",
        "define",
        "anchor",
        "assume",
        "import",
        "codes",
        "inclusion",
        "exclusion",
        "criteria",
        "any",
        "all",
        "no",
        "majority",
        "at",
        "least",
        "first",
        "available",
        "measured",
        "normal",
        "range",
        "ULN",
        "LLN",
    ]
)


def _item_start(text: str, pos: int) -> int:
    """Where the top-level item around pos starts (its first line is not indented)."""
    line = text.rfind("\n", 0, pos) + 1
    while line > 0 and (line >= len(text) or text[line] in " \t\n#"):
        line = text.rfind("\n", 0, line - 1) + 1
    return line


def _unclosed_bracket(text: str, pos: int) -> int | None:
    """The last `(` of the item before pos that no `)` closes (texts, comments skipped)."""
    opened: list[int] = []
    i = _item_start(text, max(pos - 1, 0))  # a token opening a line ends the item before
    while i < pos:
        c = text[i]
        if c == '"':
            end = text.find('"', i + 1)
            i = pos if end < 0 else end + 1
            continue
        if c == "#":
            end = text.find("\n", i)
            i = pos if end < 0 else end
            continue
        if c == "(":
            opened.append(i)
        elif c == ")" and opened:
            opened.pop()
        i += 1
    return opened[-1] if opened else None


def _word_before(text: str, pos: int) -> str | None:
    """The name just before pos on the same line, separated by blanks (not a keyword)."""
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)[ \t]+$", text[max(0, pos - 200) : pos])
    if m is None or m.group(1) in _KEYWORDS:
        return None
    return m.group(1)


def _syntax_diagnostic(
    exc: UnexpectedInput, source: SourceFile, parsed: str | None = None
) -> Diagnostic:
    """One E001 report; `parsed` is the text the parser saw when it differs (an item
    re-parsed alone, the rest blanked), for finding the bracket left open."""
    pos = getattr(exc, "pos_in_stream", None)
    if isinstance(exc, UnexpectedToken) and exc.token.start_pos is not None:
        tok = exc.token
        if tok.type == "$END":
            span = source.span(len(source.text), len(source.text))
            found = "the end of the file"
        else:
            span = source.span(tok.start_pos, tok.end_pos)  # type: ignore[arg-type]
            found = f"`{tok}`"
        expected = _describe_expected(set(exc.expected))
        start = tok.start_pos if tok.type != "$END" else len(source.text)
        seen = source.text if parsed is None else parsed
        unclosed = _unclosed_bracket(seen, start) if "RPAR" in exc.expected else None
        if unclosed is not None:
            # the real spot is the bracket never closed, not where the parser gave up
            return error(
                "E001",
                "this bracket is never closed",
                source.span(unclosed, unclosed + 1),
                label="opened here",
                related=((span, f"the condition ends here, at {found}"),),
                hint="close it with `)` where the group ends",
            )
        hint = ""
        line_start = source.text.rfind("\n", 0, start) + 1
        window = re.search(r"\b(?:within|than)[ \t]+[0-9][^\n]*$", source.text[line_start:start])
        negated = re.search(
            r"(\w+)[ \t]+not[ \t]+(?:less|more)[ \t]+than"
            r"[ \t]+(\S+)[ \t]+(\S+)[ \t]+(before|after)",
            source.text[line_start : source.text.find("\n", start) % (len(source.text) + 1)],
        )
        if str(tok) in ("less", "more") and negated:
            # "not less than 12 weeks before" negates a whole window: say where `not` goes
            subject, amount, unit, side = negated.groups()
            hint = (
                f"`not` goes before the whole condition: `not ({subject} {tok} than "
                f"{amount} {unit} {side} ...)` (docs/language.md, Time windows)"
            )
        elif {"BEFORE", "AFTER"} <= set(exc.expected) and window:
            hint = f"say which side of the date: `... before {tok}` or `... after {tok}`"
        elif (
            tok.type in ("NAME", "UNIT")  # the contextual lexer may call a word a unit
            and str(tok).isidentifier()
            and (prev := _word_before(source.text, start)) is not None
        ):
            hint = f"a name is one word: write `{prev}_{tok}` (and declare it so)"
        elif tok.type == "NUMBER" and "QUANTITY" in exc.expected:
            hint = f"write the unit right after the number, e.g. `{tok} mg/dL`"
        elif tok.type == "NAME" and "STRING" in exc.expected:
            hint = 'put the text in double quotes: "..."'
        elif tok.type in {"NAME", "QUANTIFIER"} and "CRIT_ID" in exc.expected:
            hint = "criterion ids are capital letters then a number, e.g. I1 or E12"
        return error(
            "E001",
            f"unexpected {found}",
            span,
            label=f"expected {expected}" if expected else "not expected here",
            hint=hint,
        )
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream
        char = source.text[pos] if pos < len(source.text) else ""
        hint = ""
        if char == '"':
            hint = "a text must close with a double quote on the same line"
        elif char in _ASCII_FOR:
            hint = f"write `{_ASCII_FOR[char]}` instead of `{char}`"
        return error(
            "E001",
            f"unexpected character `{char}`",
            source.span(pos, pos + 1),
            label="not allowed here",
            hint=hint,
        )
    if isinstance(exc, UnexpectedEOF):
        end = len(source.text)
        return error("E001", "the file ends too early", source.span(end, end))
    pos = pos or 0
    return error("E001", str(exc).splitlines()[0], source.span(pos, pos))
