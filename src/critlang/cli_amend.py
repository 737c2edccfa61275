"""The `critlang` command, amendments and proofs: `diff` and `impact` (two protocol
versions, files or path@gitrev) and `lint`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cli_inputs import (
    _as_of,
    _expand,
    _usable,
    analyse_file,
    os_error_words,
    refuse_unusable,
)
from .diagnostics import render_text

if TYPE_CHECKING:
    from .frontend import Analysis


_REVISION = r"[A-Za-z0-9][A-Za-z0-9._/~^{}@-]*"  # compiled when first used


def _read_version(spec: str) -> tuple[Analysis | None, str]:
    """A protocol version: a file, or `path@gitrev` read from git (imports from the tree)."""
    import subprocess

    from .frontend import analyse_text

    path, _, rev = spec.partition("@")
    if not rev or Path(spec).is_file():
        try:
            return analyse_file(spec if Path(spec).is_file() else path), ""
        except (OSError, UnicodeDecodeError) as exc:
            return None, f"{path}: cannot read: {os_error_words(exc)}"
    # A revision is never an option to git (`path@--output=FILE` would write a file):
    # it must look like a revision, and is resolved to a commit id before use.
    if rev.startswith("-") or not re.fullmatch(_REVISION, rev):
        return None, f"{spec}: {rev!r} is not a git revision"
    p = Path(path).resolve()
    try:
        top = subprocess.run(
            ["git", "-C", str(p.parent), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        rel = p.relative_to(Path(top)).as_posix()
        commit = subprocess.run(
            [
                "git",
                "-C",
                top,
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                f"{rev}^{{commit}}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if not re.fullmatch(r"[0-9a-f]{40,64}", commit):
            return None, f"{spec}: {rev!r} is not a commit"
        text = subprocess.run(
            ["git", "-C", top, "show", f"{commit}:{rel}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (subprocess.CalledProcessError, ValueError, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        return None, f"{spec}: cannot read from git: {detail.strip()}"
    return analyse_text(text, str(p)), ""


def _two_versions(args: argparse.Namespace) -> tuple[Any, Any, int]:
    versions = []
    for spec in (args.old, args.new):
        analysis, problem = _read_version(spec)
        if analysis is None:
            print(f"critlang: {problem}", file=sys.stderr)
            return None, None, 2
        if refuse_unusable(analysis, spec):
            return None, None, 1
        versions.append(analysis.result)
    return versions[0], versions[1], 0


def _cmd_diff(args: argparse.Namespace) -> int:
    from .diff import diff, to_json
    from .diff import render_text as render_diff

    old, new, code = _two_versions(args)
    if code:
        return code
    h = new.protocol.header
    try:
        as_of = (
            _as_of(args.as_of) if args.as_of else (h.date if h and h.date else dt.date(2026, 1, 1))
        )
    except argparse.ArgumentTypeError as exc:
        print(f"critlang: {exc}", file=sys.stderr)
        return 2
    result = diff(old, new, as_of)
    if args.witnesses:
        out = Path(args.witnesses)
        out.mkdir(parents=True, exist_ok=True)
        for ch in result.changes:
            for label, w in (
                ("gains", ch.effect and ch.effect.widening),
                ("loses", ch.effect and ch.effect.narrowing),
                ("now-undetermined", ch.effect and ch.effect.now_undetermined),
                ("now-decided", ch.effect and ch.effect.now_decided),
            ):
                if w:
                    record = dict(w.record, id=f"{ch.id}-{label}")  # carries its own as_of
                    (out / f"{ch.id}-{label}.json").write_text(json.dumps(record, indent=2) + "\n")
    if args.format == "json":
        print(json.dumps(to_json(result), indent=2, ensure_ascii=False))
    else:
        print(render_diff(result, old, new))
    return 0


def _cmd_lint(args: argparse.Namespace) -> int:
    from .lint import LEVELS, lint
    from .lint import render_text as render_lint

    files = _usable(_expand(args.paths))
    if files is None:
        return 2
    try:
        fixed = _as_of(args.as_of) if args.as_of else None
    except argparse.ArgumentTypeError as exc:
        print(f"critlang: {exc}", file=sys.stderr)
        return 2
    fail_at = LEVELS["warning" if args.strict else args.fail_on]
    findings = []
    status = 0
    linted = 0
    for path in files:
        try:
            first = analyse_file(path)
        except (OSError, UnicodeDecodeError) as exc:
            print(f"critlang: {path}: cannot read: {exc}", file=sys.stderr)
            status = 2
            continue
        p = first.result.protocol if first.result is not None else None
        if p is not None and p.header is None and not p.criteria:
            continue  # a library of code bindings: nothing to lint on its own
        if not first.ok or first.result is None:
            sources = {first.source.path: first.source}
            for d in first.diagnostics:
                if d.is_error:
                    print(render_text(d, sources), file=sys.stderr)
            print(
                f"critlang: {path}: the protocol has errors; run `critlang check`", file=sys.stderr
            )
            status = max(status, 1)
            continue
        h = first.result.protocol.header
        as_of = fixed or (h.date if h and h.date else dt.date(2026, 1, 1))
        findings += lint(first.result, as_of)
        linted += 1
    if args.format == "json":
        print(json.dumps([f.to_dict() for f in findings], indent=2, ensure_ascii=False))
    elif findings:
        print(render_lint(findings))
    elif linted:  # silence would not tell the author that lint ran (author7 F18)
        print(f"no findings: {linted} protocol{'s' if linted > 1 else ''} linted")
    if any(LEVELS[f.severity] >= fail_at for f in findings):
        status = max(status, 1)
    return status


def _cmd_impact(args: argparse.Namespace) -> int:
    from .backends.python import compile_protocol
    from .data.fhir import Extractor, data_files
    from .data.fhir_input import read_groups
    from .screen import impact, impact_text

    old, new, code = _two_versions(args)
    if code:
        return code
    try:
        as_of = _as_of(args.as_of)
    except argparse.ArgumentTypeError as exc:
        print(f"critlang: {exc}", file=sys.stderr)
        return 2
    skipped: list[tuple[str, str]] = []
    files = _usable(data_files(args.data, skipped))
    if files is None:
        return 2
    for path, why in skipped:  # files of the data folders that are not read
        print(f"critlang: {path}: unusable: {why}", file=sys.stderr)
    result = impact(
        compile_protocol(old),
        compile_protocol(new),
        read_groups(files),
        Extractor(old),
        Extractor(new),
        as_of,
    )
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(impact_text(result, args.old, args.new))
    return 0
