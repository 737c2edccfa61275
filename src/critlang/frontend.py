"""Parse and check in one call: what every command starts with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .checker import CheckResult, check
from .diagnostics import Diagnostic, sorted_diagnostics
from .parser import parse
from .source import SourceFile


@dataclass
class Analysis:
    source: SourceFile
    result: CheckResult | None  # None when the file did not parse
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def analyse_source(source: SourceFile) -> Analysis:
    protocol, diags = parse(source)
    if protocol is None:
        return Analysis(source, None, sorted_diagnostics(diags))
    result = check(protocol, source)
    return Analysis(source, result, sorted_diagnostics([*diags, *result.diagnostics]))


def analyse_text(text: str, path: str = "<text>") -> Analysis:
    return analyse_source(SourceFile(path, text))


def analyse_file(path: str | Path) -> Analysis:
    """Raises OSError / UnicodeDecodeError for unreadable files; the CLI reports those."""
    text = Path(path).read_text(encoding="utf-8")
    return analyse_source(SourceFile(str(path), text))
