"""The `critlang` command. Exit codes: 0 clean, 1 problems in the input, 2 usage or I/O,
70 an internal error (a bug: one line asking for a report; the traceback with --debug).

Each command imports the phases it needs when it runs, so that `critlang check` starts
without loading the compiler, the FHIR reader, pint or z3.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import __version__
from .diagnostics import Severity, render_text, summary

if TYPE_CHECKING:
    from .frontend import Analysis
from .source import find_files

SUFFIX = ".crit"


def os_error_words(exc: BaseException) -> str:
    """An I/O problem in words (never `[Errno 21] ...`): what is wrong with the path."""
    import errno

    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.start} cannot be decoded)"
    if not isinstance(exc, OSError):
        return str(exc)
    words = {
        errno.EISDIR: "is a folder, not a file",
        errno.ENOENT: "no such file or folder",
        errno.ENOTDIR: "a part of the path is not a folder",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOSPC: "no space left on the device",
        errno.EROFS: "the file system is read-only",
        errno.ENAMETOOLONG: "the name is too long",
        errno.ELOOP: "too many symbolic links",
    }
    return words.get(exc.errno or 0) or (exc.strerror or str(exc)).lower()


def analyse_file(path: str | Path) -> Analysis:
    """The front end, imported when a command needs it: `--help` loads no parser."""
    from .frontend import analyse_file as analyse

    return analyse(path)


def _expand(paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Criteria files as given, folders searched for *.crit."""
    return find_files(tuple(paths), (SUFFIX,))


def _usable(found: tuple[list[Path], list[str]]) -> list[Path] | None:
    """The files found, or None after saying why the paths are unusable (exit 2)."""
    files, problems = found
    for msg in problems:
        print(f"critlang: {msg}", file=sys.stderr)
    return None if problems else files


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


def _load_protocol(path: str) -> tuple[Analysis | None, int]:
    """Analyse a protocol for eval; (analysis, 0) or (None, exit code) after reporting."""
    try:
        a = analyse_file(path)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"critlang: {path}: cannot read: {os_error_words(exc)}", file=sys.stderr)
        return None, 2
    if not a.ok:
        sources = {a.source.path: a.source}
        for d in a.diagnostics:
            if d.is_error:
                print(render_text(d, sources), file=sys.stderr)
        print(f"critlang: {path}: the protocol has errors; run `critlang check`", file=sys.stderr)
        return None, 1
    if a.result is not None and not a.result.protocol.criteria:
        print(f"critlang: {path}: the protocol has no criteria", file=sys.stderr)
        return None, 1
    return a, 0


def _protocol_and_date(args: argparse.Namespace) -> tuple[Analysis | None, dt.date, int]:
    """The checked protocol and the --as-of date; (None, _, exit code) after reporting."""
    analysis, code = _load_protocol(args.protocol)
    if analysis is None:
        return None, dt.date.min, code
    try:
        return analysis, _as_of(args.as_of), 0
    except argparse.ArgumentTypeError as exc:
        print(f"critlang: {exc}", file=sys.stderr)
        return None, dt.date.min, 2


def _as_of(text: str | None) -> dt.date:
    if text is None:
        return dt.date.today()
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--as-of {text!r} is not a date (YYYY-MM-DD)") from exc
    if not AS_OF_RANGE[0] <= day <= AS_OF_RANGE[1]:
        # birth dates, look-back windows and witnesses reach centuries around the
        # screening date; Python's calendar ends at years 1 and 9999 (docs/security.md)
        low, high = (d.isoformat() for d in AS_OF_RANGE)
        raise argparse.ArgumentTypeError(f"--as-of {text}: give a date from {low} to {high}")
    return day


AS_OF_RANGE = (dt.date(1900, 1, 1), dt.date(2199, 12, 31))


def _own_as_of(path: Path, default: dt.date) -> dt.date:
    """A record's own evaluation date (`"as_of"`, as witnesses carry it), else the default.

    `--as-of` wins when given; an unreadable or malformed file is left to the reader."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return dt.date.fromisoformat(data["as_of"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return default


def _cmd_eval(args: argparse.Namespace) -> int:
    from .backends.python import compile_protocol
    from .data.records import RecordError, load_record
    from .evaluate import EvaluationFault, Evaluator, render_details
    from .evaluate import render_text as render_evaluation

    analysis, as_of, code = _protocol_and_date(args)
    if analysis is None or analysis.result is None:
        return code
    h = analysis.result.protocol.header
    arms = [a.name for a in h.arms] if h is not None else []
    if args.arm is not None and args.arm not in arms:
        print(f"critlang: --arm {args.arm!r}: the protocol's arms are {arms}", file=sys.stderr)
        return 2
    compiled = analysis.compiled or compile_protocol(analysis.result)
    evaluator = Evaluator(compiled)
    files, problems = _expand_patients(args.patients)
    for msg in problems:
        print(f"critlang: {msg}", file=sys.stderr)
    results = []
    status = 0 if not problems else 2
    for f in files:
        try:
            day = as_of if args.as_of else _own_as_of(f, as_of)
            record = load_record(analysis.result, f, day, args.refuse_preliminary)
        except OSError as exc:
            print(f"critlang: {f}: cannot read: {os_error_words(exc)}", file=sys.stderr)
            status = 2
            continue
        except RecordError as exc:
            print(f"critlang: {f}: unusable patient record: {exc}", file=sys.stderr)
            status = 2
            continue
        try:
            results.append(evaluator.evaluate(record, args.arm))
        except EvaluationFault as exc:
            print(f"critlang: {exc}", file=sys.stderr)
            status = 2
    if args.format == "json":
        print(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
    else:
        for i, r in enumerate(results):
            if i:
                print("\n" + "-" * 72 + "\n")
            print(render_evaluation(r, compiled))
            if args.details:
                print(render_details(r))
    return status


def _cmd_screen(args: argparse.Namespace) -> int:
    from .backends.python import compile_protocol
    from .data.fhir import ABSENT_KINDS, Extractor, Tally, data_files, read_fhir
    from .evaluate import EvaluationFault
    from .screen import (
        attrition_csv,
        attrition_text,
        patients_csv,
        patients_jsonl,
        reading_details,
        screen,
        write,
    )

    analysis, as_of, code = _protocol_and_date(args)
    if analysis is None or analysis.result is None:
        return code
    engine = args.engine or (
        "duckdb" if all(d.endswith(".duckdb") for d in args.data) else "python"
    )
    if engine != "python":
        return _screen_sql(args, analysis, engine)
    absent = [k.strip() for k in (args.absent_means_no or "").split(",") if k.strip()]
    wrong = [k for k in absent if k not in ABSENT_KINDS]
    if wrong:
        print(
            f"critlang: --absent-means-no takes {' and/or '.join(ABSENT_KINDS)}, "
            f"not {', '.join(wrong)}",
            file=sys.stderr,
        )
        return 2
    files = _usable(data_files(args.data))
    if files is None:
        return 2
    compiled = analysis.compiled or compile_protocol(analysis.result)
    extractor = Extractor(analysis.result, absent)
    import gc

    # what start-up built (parser, nodes, compiled code) lives to the end: the collector
    # need not scan it again and again while the cohort's short-lived objects come and go
    gc.freeze()
    for warning in extractor.warnings:
        print(f"critlang: warning: {warning}", file=sys.stderr)
    tally = Tally()
    tty = sys.stderr.isatty()
    total = len(files)

    def progress(done: int) -> None:
        if tty and (done % 10 == 0 or done == total):
            width = 30
            filled = min(width, width * done // max(total, 1))
            bar = "#" * filled + "." * (width - filled)
            print(f"\rscreening [{bar}] {done} patients", end="", file=sys.stderr, flush=True)

    try:
        patients = read_fhir(files, extractor, as_of, tally)
        # a per-patient JSON Lines table carries each criterion's explanation
        explain = bool(args.patients) and Path(args.patients).suffix in (".jsonl", ".ndjson")
        result = screen(compiled, patients, as_of, progress, tally, extractor, explain)
    except EvaluationFault as exc:
        print(f"critlang: {exc}", file=sys.stderr)
        return 2
    if tty:
        print(file=sys.stderr)
    for line in reading_details(tally):
        print(f"critlang: {line}", file=sys.stderr)
    if not result.patients:
        print(attrition_text(result))
        print("critlang: no usable patient was read", file=sys.stderr)
        return 2
    if args.patients:
        out = Path(args.patients)
        text = (
            patients_jsonl(result) if out.suffix in (".jsonl", ".ndjson") else patients_csv(result)
        )
        try:
            write(out, text)
        except OSError as exc:
            print(f"critlang: {out}: cannot write: {os_error_words(exc)}", file=sys.stderr)
            return 2
    from .report import html_report, report_data

    data_names = [str(f) for f in files]
    try:
        if args.attrition:
            write(Path(args.attrition), attrition_csv(result))
        if args.report:
            write(Path(args.report), html_report(compiled, result, data_names))
    except OSError as exc:
        print(f"critlang: cannot write: {os_error_words(exc)}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(report_data(compiled, result, data_names), indent=2, ensure_ascii=False))
    else:
        print(attrition_text(result))
    return 0


def _screen_sql(args: argparse.Namespace, analysis: Analysis, engine: str) -> int:
    """`screen --engine duckdb|postgres|spark` on a cohort file from `critlang ingest`."""
    from .backends.python import compile_protocol
    from .backends.sql import SqlUnsupported
    from .backends.sql.run import CohortError, screen_cohort
    from .screen import attrition_csv, attrition_text, patients_csv, patients_jsonl, write

    assert analysis.result is not None
    if len(args.data) != 1 or not args.data[0].endswith(".duckdb"):
        print(
            f"critlang: --engine {engine} screens one cohort file (.duckdb) written by "
            "`critlang ingest`",
            file=sys.stderr,
        )
        return 2
    cohort = Path(args.data[0])
    if not cohort.is_file():
        print(f"critlang: {cohort}: no such cohort file", file=sys.stderr)
        return 2
    if args.absent_means_no:
        print("critlang: --absent-means-no applies when reading FHIR: give it to `critlang "
              "ingest`", file=sys.stderr)  # fmt: skip
        return 2
    compiled = compile_protocol(analysis.result)
    as_of = _as_of(args.as_of) if args.as_of else None
    try:
        result = screen_cohort(
            compiled, cohort, engine, as_of, args.dsn, patients=bool(args.patients)
        )
    except (CohortError, SqlUnsupported) as exc:
        print(f"critlang: {cohort}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the engine's own errors (connection, Java, I/O)
        print(f"critlang: --engine {engine}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if args.patients:
        out = Path(args.patients)
        text = (
            patients_jsonl(result) if out.suffix in (".jsonl", ".ndjson") else patients_csv(result)
        )
        write(out, text)
    if args.attrition:
        write(Path(args.attrition), attrition_csv(result))
    print(attrition_text(result))
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from .backends.python import compile_protocol
    from .data.fhir import ABSENT_KINDS, Extractor, data_files
    from .data.ingest import ingest_fhir

    analysis, as_of, code = _protocol_and_date(args)
    if analysis is None or analysis.result is None:
        return code
    out = Path(args.output)
    if out.suffix != ".duckdb":
        print(f"critlang: -o {out}: the cohort is a DuckDB file (*.duckdb)", file=sys.stderr)
        return 2
    absent = [k.strip() for k in (args.absent_means_no or "").split(",") if k.strip()]
    wrong = [k for k in absent if k not in ABSENT_KINDS]
    if wrong:
        print(f"critlang: --absent-means-no takes {' and/or '.join(ABSENT_KINDS)}", file=sys.stderr)
        return 2
    files = _usable(data_files(args.data))
    if files is None:
        return 2
    compiled = compile_protocol(analysis.result)
    extractor = Extractor(analysis.result, absent)
    import gc

    gc.freeze()  # start-up objects live to the end (see _cmd_screen)
    from .backends.sql import SqlUnsupported

    try:
        count = ingest_fhir(compiled, files, out, as_of, extractor)
    except OSError as exc:
        print(f"critlang: -o {out}: {exc}", file=sys.stderr)
        return 2
    except SqlUnsupported as exc:
        print(f"critlang: {exc}", file=sys.stderr)
        return 1
    print(f"{count} patients read as of {as_of.isoformat()} into {out}")
    return 0


def _cmd_sql(args: argparse.Namespace) -> int:
    from .backends.python import compile_protocol
    from .backends.sql import SqlUnsupported, compile_sql

    analysis, as_of, code = _protocol_and_date(args)
    if analysis is None or analysis.result is None:
        return code
    try:
        query = compile_sql(compile_protocol(analysis.result), as_of)
    except SqlUnsupported as exc:
        print(f"critlang: {exc}", file=sys.stderr)
        return 1
    text = query.attrition().sql(args.dialect, pretty=True) if args.attrition else None
    try:
        print((text or query.sql(args.dialect, pretty=True)) + ";")
        sys.stdout.flush()
    except BrokenPipeError:  # `critlang sql ... | head`: the reader left, not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


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
    runner = Runner(coverage=args.coverage)
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


_REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/~^{}@-]*")


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
    if rev.startswith("-") or not _REVISION.fullmatch(rev):
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
        if not analysis.ok:
            sources = {analysis.source.path: analysis.source}
            for d in analysis.diagnostics:
                if d.is_error:
                    print(render_text(d, sources), file=sys.stderr)
            print(f"critlang: {spec}: the protocol has errors", file=sys.stderr)
            return None, None, 1
        if analysis.result is not None and not analysis.result.protocol.criteria:
            print(f"critlang: {spec}: the protocol has no criteria", file=sys.stderr)
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
    if args.format == "json":
        print(json.dumps([f.to_dict() for f in findings], indent=2, ensure_ascii=False))
    elif findings:
        print(render_lint(findings))
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
    files = _usable(data_files(args.data))
    if files is None:
        return 2
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


def _expand_patients(paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Patient records as given, folders searched (not below) for *.json."""
    return find_files(tuple(paths), (".json",), recursive=False)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions keep their line breaks, so the examples read as typed."""


def _command(
    sub: Any, name: str, help: str, description: str, examples: Sequence[str]
) -> argparse.ArgumentParser:
    """A subcommand whose help ends with typed examples."""
    epilog = "examples:\n" + "\n".join(f"  {x}" for x in examples)
    return sub.add_parser(  # type: ignore[no-any-return]
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=_Formatter,
    )


_TRIAL = "protocols/nct05610826"
_PATIENT = f"{_TRIAL}/examples/ineligible_hb_8_0_g_dl.json"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="critlang",
        description="Eligibility criteria as a checked language.",
        epilog="`critlang COMMAND --help` describes each command, with examples.",
    )
    ap.add_argument("--version", action="version", version=f"critlang {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    c = _command(
        sub,
        "check",
        "check criteria files for name, type and unit errors",
        "Check criteria files (or folders of *.crit files). "
        "Exit 0: clean; 1: errors found (or warnings, with --strict); 2: usage or I/O problem.",
        [f"critlang check {_TRIAL}/", f"critlang check --strict {_TRIAL}/current.crit"],
    )
    c.add_argument(
        "paths", nargs="+", metavar="PATH", help="a criteria file, or a folder searched for *.crit"
    )
    c.add_argument("--format", choices=("text", "json"), default="text")
    c.add_argument("--strict", action="store_true", help="treat warnings as errors")
    c.add_argument("--verbose", action="store_true", help="print every assumption's full text")
    c.set_defaults(func=_cmd_check)
    e = _command(
        sub,
        "eval",
        "evaluate patient records against a protocol",
        "Evaluate patients (native JSON records, files or folders) against a "
        "protocol: verdict first, then the deciding criteria, then the unknowns. "
        "Exit 0 for any verdict; 1: errors in the protocol; 2: unusable input.",
        [
            f"critlang eval --as-of 2026-11-27 {_TRIAL}/current.crit {_PATIENT}",
            f"critlang eval --format json --details {_TRIAL}/current.crit {_TRIAL}/examples/",
        ],
    )
    e.add_argument("protocol", metavar="PROTOCOL", help="the criteria file (.crit)")
    e.add_argument(
        "patients",
        nargs="+",
        metavar="PATIENT",
        help="a patient record (.json, see docs/patients.md), or a folder of them",
    )
    e.add_argument("--format", choices=("text", "json"), default="text")
    e.add_argument(
        "--as-of", metavar="YYYY-MM-DD", help="enrollment/screening date (default: today)"
    )
    e.add_argument("--arm", help="evaluate as randomised to this arm")
    e.add_argument(
        "--details", action="store_true", help="explain every criterion, not only the deciding ones"
    )
    e.add_argument(
        "--refuse-preliminary",
        action="store_true",
        help="do not use values with status preliminary (FHIR Observation.status)",
    )
    e.set_defaults(func=_cmd_eval)
    sc = _command(
        sub,
        "screen",
        "screen a cohort of FHIR R4 data against a protocol",
        "Screen every patient in FHIR R4 Bundles or NDJSON files (files or "
        "folders) and print the attrition table. Exit 0 on success; 1: errors in the "
        "protocol; 2: unusable input.",
        [
            f"critlang screen --as-of 2021-03-31 {_TRIAL}/current.crit ../shared/data/synthea-r4/",
            f"critlang screen --report report.html --patients out.csv {_TRIAL}/current.crit DATA/",
        ],
    )
    sc.add_argument("protocol", metavar="PROTOCOL", help="the criteria file (.crit)")
    sc.add_argument(
        "data",
        nargs="+",
        metavar="DATA",
        help="FHIR R4 Bundles (.json) or NDJSON files, or folders searched for them",
    )
    sc.add_argument("--as-of", metavar="YYYY-MM-DD", help="screening date (default: today)")
    sc.add_argument(
        "--patients", metavar="FILE", help="write the per-patient table (.csv or .jsonl)"
    )
    sc.add_argument("--attrition", metavar="FILE", help="write the attrition table as CSV")
    sc.add_argument(
        "--report",
        metavar="FILE",
        help="write the screening report: one self-contained HTML page (funnel chart, "
        "coverage per fact, most often missing, provenance)",
    )
    sc.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="json: the report's content (attrition, coverage, missing, provenance) for tools",
    )
    sc.add_argument(
        "--absent-means-no",
        metavar="KINDS",
        help="feasibility mode: coded facts of these kinds (conditions, medications; "
        "comma-separated) that no resource shows count as 'no' (the table says so)",
    )
    sc.add_argument(
        "--engine",
        choices=("python", "duckdb", "postgres", "spark"),
        help="where to evaluate: python (FHIR files; the default for them) or, on a cohort "
        "file from `critlang ingest`, duckdb (its default), postgres or spark",
    )
    sc.add_argument("--dsn", help="PostgreSQL connection string for --engine postgres")
    sc.set_defaults(func=_cmd_screen)
    ig = _command(
        sub,
        "ingest",
        "read FHIR R4 data into a cohort file (DuckDB) of normalised facts",
        "Read FHIR R4 Bundles or NDJSON (files or folders) with the protocol's "
        "code bindings, exactly as `screen` reads them, into a DuckDB file of facts in the "
        "protocol's declared units, for `screen --engine` (docs/scale.md).",
        [
            f"critlang ingest --as-of 2021-03-31 {_TRIAL}/current.crit ../shared/data/synthea-r4/"
            " -o cohort.duckdb",
            f"critlang screen {_TRIAL}/current.crit cohort.duckdb",
        ],
    )
    ig.add_argument("protocol", metavar="PROTOCOL", help="the criteria file (.crit)")
    ig.add_argument(
        "data", nargs="+", metavar="DATA", help="FHIR R4 Bundles or NDJSON files, or folders"
    )
    ig.add_argument("-o", "--output", required=True, metavar="COHORT.duckdb")
    ig.add_argument("--as-of", metavar="YYYY-MM-DD", help="reading date (default: today)")
    ig.add_argument(
        "--absent-means-no",
        metavar="KINDS",
        help="as for screen: coded facts of these kinds that no resource shows count as 'no'",
    )
    ig.set_defaults(func=_cmd_ingest)
    sq = _command(
        sub,
        "sql",
        "print the protocol as one SQL query over the facts tables",
        "Compile the protocol to SQL for a warehouse holding the tables "
        "critlang_patients and critlang_facts (docs/scale.md): one row per patient with the "
        "verdict and every criterion's status; --attrition gives the attrition counts.",
        [f"critlang sql --dialect postgres --as-of 2021-03-31 {_TRIAL}/current.crit"],
    )
    sq.add_argument("protocol", metavar="PROTOCOL", help="the criteria file (.crit)")
    sq.add_argument("--dialect", choices=("duckdb", "postgres", "spark"), default="duckdb")
    sq.add_argument("--as-of", metavar="YYYY-MM-DD", help="screening date (default: today)")
    sq.add_argument("--attrition", action="store_true", help="the attrition query instead")
    sq.set_defaults(func=_cmd_sql)
    fm = _command(
        sub,
        "fmt",
        "rewrite criteria files in the canonical layout",
        "Format criteria files (or folders of *.crit files) in place. Comments, "
        "protocol texts, numbers and units are kept as written. Exit 1 with --check when a "
        "file would change, or when a file has syntax errors.",
        [f"critlang fmt --check {_TRIAL}/", f"critlang fmt --diff {_TRIAL}/current.crit"],
    )
    fm.add_argument(
        "paths", nargs="+", metavar="PATH", help="a criteria file, or a folder searched for *.crit"
    )
    fm.add_argument("--check", action="store_true", help="list files that would change")
    fm.add_argument("--diff", action="store_true", help="show the changes, write nothing")
    fm.set_defaults(func=_cmd_fmt)
    te = _command(
        sub,
        "test",
        "run example patients against their expected outcomes",
        'Run example patients (JSON records with an "expect" object, found in '
        "the given files or folders) and compare verdicts and criteria with the expectation. "
        "Exit 1 when any example fails.",
        [f"critlang test {_TRIAL}/", f"critlang test --coverage {_TRIAL}/examples/"],
    )
    te.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help='an example patient (.json with an "expect" object), or a folder of them',
    )
    te.add_argument(
        "--coverage",
        action="store_true",
        help="report which criteria and sub-clauses the examples made both true and false",
    )
    te.set_defaults(func=_cmd_test)
    re_ = _command(
        sub,
        "render",
        "the criteria in plain words, as Markdown or a self-contained HTML page",
        "Render a protocol for review: header, criteria with their verbatim "
        "text, rules in plain words, assumptions highlighted.",
        [
            f"critlang render {_TRIAL}/current.crit",
            f"critlang render -o review.html {_TRIAL}/current.crit",
        ],
    )
    re_.add_argument("protocol", metavar="PROTOCOL", help="the criteria file (.crit)")
    re_.add_argument("--format", choices=("markdown", "html"))
    re_.add_argument("-o", "--output", metavar="FILE", help="write here (.html or .htm gives HTML)")
    re_.set_defaults(func=_cmd_render)
    di = _command(
        sub,
        "diff",
        "what an amendment changes, criterion by criterion, with witness patients",
        "Compare two protocol versions (files, or path@gitrev). Each changed "
        "criterion is described and classified (population unchanged, widened, narrowed, "
        "both) with z3; every widening or narrowing comes with a witness patient checked by "
        "both compiled evaluators. Dates are relative to --as-of (default: the new "
        "version's header date).",
        [
            f"critlang diff {_TRIAL}/previous.crit {_TRIAL}/current.crit",
            f"critlang diff {_TRIAL}/current.crit@HEAD~1 {_TRIAL}/current.crit",
        ],
    )
    di.add_argument("old", metavar="OLD", help="the earlier version: a file or path@gitrev")
    di.add_argument("new", metavar="NEW", help="the later version: a file or path@gitrev")
    di.add_argument("--format", choices=("text", "json"), default="text")
    di.add_argument("--as-of", metavar="YYYY-MM-DD")
    di.add_argument("--witnesses", metavar="DIR", help="write each witness patient as JSON here")
    di.set_defaults(func=_cmd_diff)
    li = _command(
        sub,
        "lint",
        "find contradictions, gaps, dead and redundant criteria (proven with z3)",
        "Lint protocols (files or folders of *.crit files): criteria that can "
        "never be met, redundant criteria, overlapping or near-miss boundaries between "
        "inclusions and exclusions, dead sub-clauses, header conflicts, quantity-like plain "
        "numbers. Each finding has a code (docs/errors.md) and, where a patient shows it, a "
        "witness re-checked by the compiled evaluator. Exit 1 when a finding is at or above "
        "--fail-on (default: error; --strict: warning); 2: unusable input.",
        [f"critlang lint {_TRIAL}/", f"critlang lint --format json --strict {_TRIAL}/current.crit"],
    )
    li.add_argument(
        "paths", nargs="+", metavar="PATH", help="criteria files, or folders searched for *.crit"
    )
    li.add_argument("--format", choices=("text", "json"), default="text")
    li.add_argument("--strict", action="store_true", help="fail on warnings too")
    li.add_argument("--fail-on", choices=("error", "warning", "info"), default="error")
    li.add_argument(
        "--as-of", metavar="YYYY-MM-DD", help="evaluation date (default: the header's date)"
    )
    li.set_defaults(func=_cmd_lint)
    im = _command(
        sub,
        "impact",
        "screen a cohort with two protocol versions and report who changes verdict",
        "Screen FHIR data with OLD and NEW (files or path@gitrev) and report how "
        "many patients change verdict, in which direction, due to which criteria.",
        [
            f"critlang impact --as-of 2021-03-31 {_TRIAL}/previous.crit {_TRIAL}/current.crit "
            "../shared/data/synthea-r4/"
        ],
    )
    im.add_argument("old", metavar="OLD", help="the earlier version: a file or path@gitrev")
    im.add_argument("new", metavar="NEW", help="the later version: a file or path@gitrev")
    im.add_argument(
        "data",
        nargs="+",
        metavar="DATA",
        help="FHIR R4 Bundles (.json) or NDJSON files, or folders searched for them",
    )
    im.add_argument("--as-of", metavar="YYYY-MM-DD", help="screening date (default: today)")
    im.add_argument("--format", choices=("text", "json"), default="text")
    im.set_defaults(func=_cmd_impact)
    return ap


T = TypeVar("T")

# sysexits.h EX_SOFTWARE: "an internal software error has been detected". Not 1 (the
# protocol has errors) nor 2 (usage or I/O), so scripts can tell a bug from bad input.
EXIT_INTERNAL = 70
# The passes after the parser recurse over the syntax tree (up to parser.MAX_DEPTH
# levels); commands run in a thread whose stack and recursion limit fit that depth.
_STACK_BYTES = 512 * 1024 * 1024
_RECURSION_LIMIT = 60_000


def _run_deep(fn: Callable[[], T]) -> T:
    """fn() on a thread with a deep stack; its exception, if any, re-raised here."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # re-raised in the calling thread
            outcome["error"] = exc

    # the limit is per interpreter: raised while the worker runs (the calling thread
    # only waits), restored after, so no thread with a small stack recurses that deep
    limit = sys.getrecursionlimit()
    previous = threading.stack_size()
    try:
        sys.setrecursionlimit(max(limit, _RECURSION_LIMIT))
        threading.stack_size(_STACK_BYTES)
        worker = threading.Thread(target=target, name="critlang", daemon=True)
        worker.start()
        threading.stack_size(previous)
        worker.join()
    finally:
        threading.stack_size(previous)
        sys.setrecursionlimit(limit)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def _parse(ap: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse; a mistyped flag is reported with its command's usage, and a near miss named."""
    import difflib

    args, extra = ap.parse_known_args(argv)
    if not extra:
        return args
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = sub.choices[args.command]
    flags = [o for a in parser._actions for o in a.option_strings]
    word = extra[0]
    close = difflib.get_close_matches(word.split("=")[0], flags, n=1)
    hint = f"; did you mean {close[0]}?" if close and word.startswith("-") else ""
    parser.error(f"unrecognized argument{'s' if len(extra) > 1 else ''}: {' '.join(extra)}{hint}")
    raise AssertionError  # parser.error exits


def main(argv: Sequence[str] | None = None) -> int:
    ap = build_parser()
    for command in ap._subparsers._group_actions[0].choices.values():  # type: ignore[union-attr]
        command.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="on an internal error, print the traceback",
        )
        command.add_argument(
            "--library",
            action="append",
            metavar="DIR",
            default=argparse.SUPPRESS,
            help="a directory imports may read .crit files from (besides the protocol's "
            "tree; repeatable; also CRITLANG_LIBRARY)",
        )
    ap.add_argument(
        "--debug", action="store_true", help="on an internal error, print the traceback"
    )
    ap.add_argument("--library", action="append", metavar="DIR", default=[], help=argparse.SUPPRESS)
    try:
        args = _parse(ap, argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    from . import frontend  # lazily: `--help` and `--version` load no parser

    frontend.library_paths[:] = [Path(d) for d in args.library]
    try:
        return _run_deep(lambda: int(args.func(args)))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # not a bug: the reader went away
        return _closed_pipe()
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        print(
            f"critlang: internal error ({type(exc).__name__}): this is a bug in critlang; "
            "please report it with the command and its input "
            f"(rerun with --debug for the traceback). Exit {EXIT_INTERNAL}.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _closed_pipe() -> int:
    """The reader went away (`critlang eval ... | head -1`): stop quietly.

    As the Python documentation advises (signal module, "Note on SIGPIPE"): point stdout
    at devnull so that the interpreter's final flush does not fail again, and exit as a
    process killed by SIGPIPE would (128 + 13).
    """
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (tests capture it)
        pass
    return 141


def run() -> None:
    """The console entry point: a closed pipe ends the process quietly, for every command."""
    import signal

    if hasattr(signal, "SIGPIPE"):  # POSIX: die silently on a closed pipe, as cat and grep do
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())


if __name__ == "__main__":
    run()
