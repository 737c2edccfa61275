"""The `critlang` command, checking and formatting: `check`, `fmt`, `test` (example
patients) and `render`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .cli_inputs import (
    _expand,
    _load_protocol,
    _usable,
    analyse_file,
    os_error_words,
)
from .diagnostics import Severity, render_text, summary

if TYPE_CHECKING:
    from .frontend import Analysis


def _cmd_check(args: argparse.Namespace) -> int:
    files = _usable(_expand(args.paths))
    if files is None:
        return 2
    analyses: list[Analysis] = []
    for f in files:
        try:
            analyses.append(analyse_file(f))
        except (OSError, UnicodeDecodeError) as exc:
            print(f"critlang: {f}: cannot read: {os_error_words(exc)}", file=sys.stderr)
            return 2
    diags = [d for a in analyses for d in a.diagnostics]
    if args.strict:
        diags = [
            d if d.is_error else type(d)(**{**d.__dict__, "severity": Severity.ERROR})
            for d in diags
        ]
    failed = any(d.is_error for d in diags)
    if args.format == "json":
        out = {
            "files": [str(a.source.path) for a in analyses],
            "ok": not failed,
            "diagnostics": [d.to_dict() for d in diags],
        }
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        from .diagnostics import print_report, render_report

        sources = {s.path: s for a in analyses for s in (a.source, *a.libraries)}
        verdict = "failed" if failed else "ok"
        print_report(
            render_report(diags, sources, verbose=args.verbose),
            f"checked {len(analyses)} file(s): {summary(diags)}: {verdict}",
            sys.stdout,
            color=sys.stdout.isatty() and not os.environ.get("NO_COLOR"),
        )
    return 1 if failed else 0


def _cmd_fmt(args: argparse.Namespace) -> int:
    import difflib

    from .formatter import format_source
    from .source import SourceFile

    files = _usable(_expand(args.paths))
    if files is None:
        return 2
    changed: list[Path] = []
    failed = False
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"critlang: {f}: cannot read: {os_error_words(exc)}", file=sys.stderr)
            return 2
        source = SourceFile(str(f), text)
        formatted, diags = format_source(source)
        if formatted is None:
            failed = True
            for d in diags:
                print(render_text(d, {source.path: source}), file=sys.stderr)
            continue
        if formatted == text:
            continue
        changed.append(f)
        if args.diff:
            sys.stdout.writelines(
                difflib.unified_diff(
                    text.splitlines(keepends=True),
                    formatted.splitlines(keepends=True),
                    fromfile=str(f),
                    tofile=f"{f} (formatted)",
                )
            )
        elif not args.check:
            f.write_text(formatted, encoding="utf-8")
    if args.check:
        for f in changed:
            print(f"would reformat {f}")
        print(f"{len(changed)} file(s) would be reformatted, {len(files) - len(changed)} unchanged")
        return 1 if changed or failed else 0
    if not args.diff:
        print(f"{len(changed)} file(s) reformatted, {len(files) - len(changed)} unchanged")
    return 1 if failed else 0


def _cmd_test(args: argparse.Namespace) -> int:
    from .examples import Runner, coverage_text, discover

    files = _usable(discover(args.paths))
    if files is None:
        return 2
    given = tuple(Path(p) for p in args.paths if Path(p).is_dir())
    runner = Runner(coverage=args.coverage, given=given)
    passed = failed = 0
    for f in files:
        case = runner.run(f)
        print(f"{'PASS' if case.passed else 'FAIL'} {f}")
        for m in case.messages:
            print(f"    {m}")
        passed += case.passed
        failed += not case.passed
    if args.coverage:
        for report in runner.coverage_reports():
            print()
            print(coverage_text(report))
    print()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def _cmd_render(args: argparse.Namespace) -> int:
    from .render import html_page, markdown

    analysis, code = _load_protocol(args.protocol)
    if analysis is None:
        return code
    assert analysis.result is not None
    html = args.output and Path(args.output).suffix.lower() in (".html", ".htm")
    fmt = args.format or ("html" if html else "markdown")
    text = html_page(analysis.result) if fmt == "html" else markdown(analysis.result)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"critlang: {args.output}: cannot write: {os_error_words(exc)}", file=sys.stderr)
            return 2
    else:
        sys.stdout.write(text)
    return 0
