"""One report object for every problem, rendered as text (with a code frame) or JSON.

Phases return lists of `Diagnostic`; only the CLI prints them. Every code has a
one-paragraph explanation in docs/errors.md (a test keeps the two in step).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from .frozen_classes import field, frozen
from .source import SourceFile, Span


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


# code -> short title. Errors start with E, warnings with W.
CODES: dict[str, str] = {
    "E001": "syntax error",
    "E002": "criterion without a rule",
    "E003": "clause given twice",
    "E004": "duplicate criterion id",
    "E005": "name declared twice",
    "E006": "invalid header value",
    "E007": "import not found",
    "E008": "library holds more than code bindings",
    "E009": "empty file",
    "E101": "unknown name",
    "E102": "unknown category",
    "E103": "unknown field",
    "E104": "wrong number of arguments",
    "E105": "definition refers to itself",
    "E201": "wrong kind of value",
    "E202": "comparison not defined for this kind of value",
    "E203": "not a list",
    "E204": "no reference range",
    "E205": "branches of different kinds",
    "E301": "unknown unit",
    "E302": "units of different dimensions",
    "E303": "number without a unit",
    "E304": "mass and substance concentration without a molar mass",
    "E305": "calendar and fixed durations mixed",
    "E306": "value already has a unit",
    "E307": "not a duration",
    "E310": "unit out of bounds",
    "E311": "threshold on another clinical scale",
    "E312": "scale conversion cannot be used",
    "E313": "a unit where a function takes a plain number",
    "E401": "value outside the declared range",
    "E402": "empty range",
    "E601": "a written division read as a threshold",
    "E602": "blood pressure used wrongly",
    "E603": "window ends not written durations",
    "E604": "`date of` a non-fact",
    "E901": "number too long",
    "E902": "nested too deeply",
    "E903": "too complex to compile",
    "E904": "import not allowed",
    "W001": "assumption",
    "W002": "header field missing",
    "W101": "unused declaration",
    "W102": "list kinds partly bound to codes",
    "W201": "header and criteria disagree",
    "W301": "dual-unit threshold disagrees",
    "W401": "comparison can never be true",
    "W601": "plain number against a threshold the protocol writes with a unit",
}


@frozen
class Diagnostic:
    severity: Severity
    code: str
    message: str
    span: Span
    label: str = ""  # short text under the caret
    notes: tuple[str, ...] = ()
    hint: str = ""
    # secondary spans ("first declared here"), with their labels
    related: tuple[tuple[Span, str], ...] = field(default=())

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.span.path, self.span.start, self.span.end, self.code)

    def to_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "title": CODES.get(self.code, ""),
            "message": self.message,
            "path": self.span.path,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "label": self.label,
            "notes": list(self.notes),
            "hint": self.hint,
            "related": [
                {"path": s.path, "line": s.line, "column": s.column, "label": lab}
                for s, lab in self.related
            ],
        }


def error(code: str, message: str, span: Span, **kw: object) -> Diagnostic:
    return Diagnostic(Severity.ERROR, code, message, span, **kw)  # type: ignore[arg-type]


def warning(code: str, message: str, span: Span, **kw: object) -> Diagnostic:
    return Diagnostic(Severity.WARNING, code, message, span, **kw)  # type: ignore[arg-type]


def sorted_diagnostics(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Deterministic order: by file, then position, then code; exact duplicates dropped."""
    return sorted(set(diags), key=lambda d: (*d.sort_key(), d.message))


FRAME_WIDTH = 120  # characters of a source line a code frame shows


def _frame(source: SourceFile | None, span: Span, label: str) -> list[str]:
    if source is None:
        return []
    text = source.line_text(span.line)
    gutter = " " * len(str(span.line))
    end_col = span.end_column if span.end_line == span.line else len(text) + 1
    column = span.column
    if len(text) > FRAME_WIDTH:
        # a very long line (generated, or pasted without breaks) is shown as a window around
        # the span, cut with "...", never whole (thousands of characters in a terminal)
        start = max(0, min(column - 1 - FRAME_WIDTH // 3, len(text) - FRAME_WIDTH))
        stop = start + FRAME_WIDTH
        head, tail = ("..." if start else ""), ("..." if stop < len(text) else "")
        column = column - start + len(head)
        end_col = min(end_col - start, FRAME_WIDTH + 1) + len(head)
        text = head + text[start:stop] + tail
    width = max(1, end_col - column)
    # tabs keep their width so the caret lines up
    pad = "".join("\t" if c == "\t" else " " for c in text[: column - 1])
    lines = [f"{gutter} |", f"{span.line} | {text}", f"{gutter} | {pad}{'^' * width}"]
    if label:
        lines[-1] += f" {label}"
    return lines


def render_text(diag: Diagnostic, sources: Mapping[str, SourceFile]) -> str:
    lines = [f"{diag.span}: {diag.severity.value} {diag.code}: {diag.message}"]
    lines += _frame(sources.get(diag.span.path), diag.span, diag.label)
    for span, label in diag.related:
        lines.append(f"  {span}: {label}")
        lines += ["  " + x for x in _frame(sources.get(span.path), span, "")]
    lines += [f"  = note: {n}" for n in diag.notes]
    if diag.hint:
        lines.append(f"  = hint: {diag.hint}")
    return "\n".join(lines)


def summary(diags: Iterable[Diagnostic]) -> str:
    diags = list(diags)
    errors = sum(d.is_error for d in diags)
    warnings = len(diags) - errors
    return f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _one_line(text: str, width: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def render_report(
    diags: Iterable[Diagnostic],
    sources: Mapping[str, SourceFile],
    verbose: bool = False,
) -> list[str]:
    """`critlang check` output for writers: blocks of text, errors first.

    Errors come first, then warnings other than assumptions, each with its code frame;
    assumptions (W001) follow as one line each, the reader's checklist, with the full
    text and frame under `verbose`. Order within each group is file then position.
    """
    diags = list(diags)
    errors = [d for d in diags if d.is_error]
    assumptions = [d for d in diags if not d.is_error and d.code == "W001"]
    others = [d for d in diags if not d.is_error and d.code != "W001"]
    blocks = [render_text(d, sources) for d in (*errors, *others)]
    if assumptions and verbose:
        blocks += [render_text(d, sources) for d in assumptions]
    elif assumptions:
        lines = [
            f"{_plural(len(assumptions), 'assumption')} the protocol does not state "
            "(warning W001; full text with --verbose):"
        ]
        for d in assumptions:
            where = f"{d.span.path}:{d.span.line}"
            lines.append(
                f"  {where}: {_one_line(d.message.removeprefix('assumption').lstrip(': '))}"
            )
        blocks.append("\n".join(lines))
    return blocks


_STYLES = (
    (" error ", "bold red"),
    (" warning ", "bold yellow"),
    ("= hint:", "cyan"),
    ("= note:", "cyan"),
)


def print_report(blocks: list[str], footer: str, stream: object, color: bool) -> None:
    """Print the blocks; on a terminal, severities and hints in colour (rich).

    Colour never changes the text: piped or redirected output is the plain text,
    byte for byte, and rich is imported only when colour is wanted.
    """
    if not color:
        for b in blocks:
            print(b, file=stream)  # type: ignore[call-overload]
            print(file=stream)  # type: ignore[call-overload]
        print(footer, file=stream)  # type: ignore[call-overload]
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(file=stream, highlight=False, soft_wrap=True)  # type: ignore[arg-type]
    for b in blocks:
        text = Text(b)
        for word, style in _STYLES:
            text.highlight_words([word], style)
        text.highlight_regex(r"\^+", "bold magenta")
        console.print(text)
        console.print()
    style = "bold red" if " failed" in footer else "bold green"
    console.print(Text(footer, style=style))
