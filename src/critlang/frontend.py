"""Parse and check in one call: what every command starts with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import nodes as n
from .checker import CheckResult, check
from .diagnostics import Diagnostic, error, sorted_diagnostics
from .parser import parse
from .source import SourceFile


@dataclass
class Analysis:
    source: SourceFile
    result: CheckResult | None  # None when the file did not parse
    diagnostics: list[Diagnostic] = field(default_factory=list)
    libraries: list[SourceFile] = field(default_factory=list)  # imported files

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def _libraries(
    protocol: n.Protocol, source: SourceFile, seen: set[Path]
) -> tuple[list[n.Codes], list[Diagnostic], list[SourceFile]]:
    """Code bindings from the files a protocol imports (recursively), with diagnostics."""
    codes: list[n.Codes] = []
    diags: list[Diagnostic] = []
    files: list[SourceFile] = []
    base = Path(source.path).parent
    for imp in protocol.of_type(n.Import):
        path = (base / imp.path).resolve()
        if path in seen:
            continue
        seen.add(path)
        try:
            lib_source = SourceFile(str(base / imp.path), path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            diags.append(error("E007", f"cannot read `{imp.path}`: {exc}", imp.span))
            continue
        files.append(lib_source)
        lib, lib_diags = parse(lib_source)
        diags += lib_diags
        if lib is None:
            continue
        for d in lib.decls:
            if isinstance(d, n.Codes):
                codes.append(d)
            elif not isinstance(d, n.Import):
                diags.append(
                    error(
                        "E008",
                        "a library file may hold only `codes` bindings and imports",
                        d.span,
                        hint="move facts, rules and assumptions into the protocol",
                    )
                )
        sub_codes, sub_diags, sub_files = _libraries(lib, lib_source, seen)
        codes += sub_codes
        diags += sub_diags
        files += sub_files
    return codes, diags, files


def analyse_source(source: SourceFile) -> Analysis:
    protocol, diags = parse(source)
    if protocol is None:
        return Analysis(source, None, sorted_diagnostics(diags))
    if protocol.header is None and not protocol.decls:
        # nothing to check would pass as "ok" and make every patient eligible
        span = source.span(0, min(len(source.text), 1))
        diags = [
            *diags,
            error(
                "E009",
                "the file is empty: no protocol header, declarations or criteria",
                span,
                hint='start with `protocol "NCT..."`, then the facts and the criteria',
            ),
        ]
    library, lib_diags, lib_files = _libraries(protocol, source, set())
    result = check(protocol, source, library)
    all_diags = sorted_diagnostics([*diags, *lib_diags, *result.diagnostics])
    return Analysis(source, result, all_diags, lib_files)


def analyse_text(text: str, path: str = "<text>") -> Analysis:
    return analyse_source(SourceFile(path, text))


def analyse_file(path: str | Path) -> Analysis:
    """Raises OSError / UnicodeDecodeError for unreadable files; the CLI reports those."""
    text = Path(path).read_text(encoding="utf-8")
    return analyse_source(SourceFile(str(path), text))
