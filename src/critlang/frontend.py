"""Parse and check in one call: what every command starts with."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from . import nodes as n
from .checker import CheckResult, check
from .diagnostics import Diagnostic, error, sorted_diagnostics
from .frozen_classes import field, mutable
from .parser import parse, salvage
from .source import MAX_SOURCE_BYTES, SourceFile, read_source

SUFFIX = ".crit"


@mutable
class Analysis:
    source: SourceFile
    result: CheckResult | None  # None when the file did not parse
    diagnostics: list[Diagnostic] = field(default_factory=list)
    libraries: list[SourceFile] = field(default_factory=list)  # imported files
    compiled: Any = None  # backends.python.Compiled, for a protocol without errors

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


# Directories besides the protocol's tree that imports may read from: `--library DIR`
# on the command line, or CRITLANG_LIBRARY (directories separated by os.pathsep).
LIBRARY_ENV = "CRITLANG_LIBRARY"
library_paths: list[Path] = []


def import_roots(protocol_path: str | Path) -> list[Path]:
    """Where imports of this protocol may resolve (docs/security.md, "Imports").

    The protocol's tree: the top of the git work tree holding the protocol file, or the
    protocol's own folder outside git. Then the declared library directories.
    """
    folder = Path(protocol_path).resolve().parent
    tree = next((d for d in (folder, *folder.parents) if (d / ".git").exists()), folder)
    declared = [*library_paths]
    declared += [Path(p) for p in os.environ.get(LIBRARY_ENV, "").split(os.pathsep) if p]
    return [tree, *(d.resolve() for d in declared)]


def _within(path: Path, roots: list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


_MISSING = "no such file"


def _resolve_import(imp: n.Import, base: Path, roots: list[Path]) -> tuple[Path | None, str]:
    return resolve_criteria_file(imp.path, base, roots)


def resolve_criteria_file(text: str, base: Path, roots: list[Path]) -> tuple[Path | None, str]:
    """The criteria file a path names (relative to `base`, then to the library roots), or
    None and why it may not be read: the import rule of docs/security.md."""
    name = Path(text)
    if name.is_absolute() or text.startswith("~") or name.suffix != SUFFIX:
        return None, f"an import names a {SUFFIX} file by a relative path"
    candidates = [base / name] + [r / name for r in roots[1:]]
    target = next((c for c in candidates if c.exists()), candidates[0])
    real = target.resolve()  # symlinks followed: where the bytes really are
    if not _within(real, roots):
        return None, "outside the protocol's tree and the library directories"
    try:
        info = real.stat()
    except OSError:
        return None, _MISSING
    if not stat.S_ISREG(info.st_mode):
        return None, "not a regular file"
    if info.st_size > MAX_SOURCE_BYTES:
        return None, f"larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MiB"
    return real, ""


def _libraries(
    protocol: n.Protocol, source: SourceFile, seen: set[Path], roots: list[Path]
) -> tuple[list[n.Codes], list[Diagnostic], list[SourceFile]]:
    """Code bindings from the files a protocol imports (recursively), with diagnostics.

    Only regular .crit files inside the roots are read (at most MAX_SOURCE_BYTES), and
    a file that does not parse as criteria is never quoted: one diagnostic at the
    import says where its first syntax error is.
    """
    codes: list[n.Codes] = []
    diags: list[Diagnostic] = []
    files: list[SourceFile] = []
    base = Path(source.path).parent
    for imp in protocol.of_type(n.Import):
        path, why = _resolve_import(imp, base, roots)
        if path is None:
            diags.append(
                error(
                    "E007" if why == _MISSING else "E904",
                    f"cannot import `{imp.path}`: {why}",
                    imp.span,
                    hint=f"import .crit files of the protocol's tree, or add a library "
                    f"directory with --library DIR or {LIBRARY_ENV}",
                )
            )
            continue
        if path in seen:
            continue
        seen.add(path)
        try:
            lib_source = SourceFile(str(base / imp.path), read_source(path))
        except UnicodeDecodeError:
            diags.append(error("E007", f"cannot read `{imp.path}`: not UTF-8 text", imp.span))
            continue
        except OSError as exc:
            reason = exc.strerror or str(exc)
            diags.append(error("E007", f"cannot read `{imp.path}`: {reason}", imp.span))
            continue
        lib, lib_diags = parse(lib_source)
        if lib is None:
            first = min(lib_diags, key=lambda d: d.span.start)
            diags.append(
                error(
                    "E007",
                    f"`{imp.path}` is not a criteria file: {first.code} at line "
                    f"{first.span.line}, column {first.span.column}",
                    imp.span,
                    hint=f"run `critlang check {imp.path}` to see its errors",
                )
            )
            continue
        files.append(lib_source)
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
        sub_codes, sub_diags, sub_files = _libraries(lib, lib_source, seen, roots)
        codes += sub_codes
        diags += sub_diags
        files += sub_files
    return codes, diags, files


def analyse_source(source: SourceFile) -> Analysis:
    protocol, diags = parse(source)
    if protocol is None:
        return Analysis(source, None, sorted_diagnostics([*diags, *_checks_beside(source, diags)]))
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
    roots = import_roots(source.path)
    library, lib_diags, lib_files = _libraries(protocol, source, set(), roots)
    result = check(protocol, source, library)
    compiled, limit_diags = _compile(result) if result.ok else (None, [])
    all_diags = sorted_diagnostics([*diags, *lib_diags, *result.diagnostics, *limit_diags])
    return Analysis(source, result, all_diags, lib_files, compiled)


def _checks_beside(source: SourceFile, errors: list[Diagnostic]) -> list[Diagnostic]:
    """The checker's errors on the items that parsed, beside syntax errors: a writer sees
    an unknown name, a wrong unit or a duplicate id in one pass, not after fixing the
    syntax. Names the broken items mention are not called unknown (they may declare them)."""
    if not errors or any(d.code != "E001" for d in errors):
        return []  # only syntax errors (limits exceeded leave no tree to salvage)
    protocol, words = salvage(source, errors)
    if protocol is None or not protocol.criteria:
        return []
    library, _, _ = _libraries(protocol, source, set(), import_roots(source.path))
    out = []
    for d in check(protocol, source, library).diagnostics:
        name = source.text[d.span.start : d.span.end]
        if d.is_error and not (d.code in ("E101", "E102", "E103") and name in words):
            out.append(d)
    return out


def _compile(result: CheckResult) -> tuple[Any, list[Diagnostic]]:
    """The compiled protocol, or E903 where the generated code exceeds Python's limits.

    Checking compiles, so that nothing that checks clean can fail to compile.
    """
    from .backends.python import TooComplex, compile_protocol

    try:
        return compile_protocol(result), []
    except TooComplex as exc:
        source = result.source
        span = source.whole()
        for _, c in result.protocol.criteria:
            if exc.line is not None and c.span.line <= exc.line <= c.span.end_line:
                span = c.id_span
        return None, [
            error(
                "E903",
                "too complex to compile",
                span,
                label=f"the generated code exceeds a limit of Python's ({exc.reason})",
                hint="nest fewer conditions inside each other: name parts with `define`",
            )
        ]


def analyse_text(text: str, path: str = "<text>") -> Analysis:
    return analyse_source(SourceFile(path, text))


def analyse_file(path: str | Path) -> Analysis:
    """Raises OSError (SourceTooLarge past MAX_SOURCE_BYTES) / UnicodeDecodeError for
    unreadable files; the CLI reports those."""
    text = read_source(path)
    return analyse_source(SourceFile(str(path), text))
