"""The `critlang` command. Exit codes: 0 clean, 1 problems in the input, 2 usage or I/O."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .diagnostics import Severity, render_text, summary
from .frontend import Analysis, analyse_file

SUFFIX = ".crit"


def _expand(paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Files as given, folders searched for *.crit, in a stable order."""
    files: list[Path] = []
    problems: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.rglob(f"*{SUFFIX}"))
            if not found:
                problems.append(f"{p}: no {SUFFIX} files in this folder")
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            problems.append(f"{p}: no such file or folder")
    return files, problems


def _cmd_check(args: argparse.Namespace) -> int:
    files, problems = _expand(args.paths)
    for msg in problems:
        print(f"critlang: {msg}", file=sys.stderr)
    if problems:
        return 2
    analyses: list[Analysis] = []
    for f in files:
        try:
            analyses.append(analyse_file(f))
        except (OSError, UnicodeDecodeError) as exc:
            print(f"critlang: {f}: cannot read: {exc}", file=sys.stderr)
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
        sources = {a.source.path: a.source for a in analyses}
        for d in diags:
            print(render_text(d, sources))
            print()
        verdict = "failed" if failed else "ok"
        print(f"checked {len(analyses)} file(s): {summary(diags)}: {verdict}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="critlang",
        description="Eligibility criteria as a checked language.",
    )
    ap.add_argument("--version", action="version", version=f"critlang {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser(
        "check",
        help="check criteria files for name, type and unit errors",
        description="Check criteria files (or folders of *.crit files). "
        "Exit 0: clean; 1: errors found (or warnings, with --strict); 2: usage or I/O problem.",
    )
    c.add_argument("paths", nargs="+", metavar="PATH")
    c.add_argument("--format", choices=("text", "json"), default="text")
    c.add_argument("--strict", action="store_true", help="treat warnings as errors")
    c.set_defaults(func=_cmd_check)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    ap = build_parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
