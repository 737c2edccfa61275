"""The `critlang` command, evaluating and screening: `eval`, `screen` (Python or SQL
engine), `ingest` (FHIR into a cohort file) and `sql`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cli_inputs import (
    _as_of,
    _expand_patients,
    _own_as_of,
    _protocol_and_date,
    _usable,
    anchor_dates,
    os_error_words,
    output_problems,
)

if TYPE_CHECKING:
    from .frontend import Analysis


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


def _outputs_and_anchors(
    args: argparse.Namespace, outputs: dict[str, str | None], inputs: list[Path], analysis: Any
) -> dict[str, str] | None:
    """The --anchor dates, after checking the outputs against the inputs; None after
    saying what is wrong (exit 2), before any work."""
    problems = output_problems(outputs, inputs)
    try:
        anchors = anchor_dates(args.anchor, list(analysis.result.anchors))
    except argparse.ArgumentTypeError as exc:
        problems.append(str(exc))
    for problem in problems:
        print(f"critlang: {problem}", file=sys.stderr)
    return None if problems else anchors


def _cmd_screen(args: argparse.Namespace) -> int:
    analysis, as_of, code = _protocol_and_date(args)
    if analysis is None or analysis.result is None:
        return code
    engine = args.engine or (
        "duckdb" if all(d.endswith(".duckdb") for d in args.data) else "python"
    )
    if engine != "python":
        return _screen_sql(args, analysis, engine)
    # the FHIR reader and the workers only here: a cohort file screened in SQL starts
    # without them
    from .backends.python import compile_protocol
    from .data.fhir import ABSENT_KINDS, Extractor, Tally, data_files
    from .evaluate import EvaluationFault
    from .screen import (
        attrition_csv,
        attrition_text,
        patients_csv,
        patients_jsonl,
        reading_details,
        write,
    )
    from .screen_jobs import default_jobs, screen_files

    absent = [k.strip() for k in (args.absent_means_no or "").split(",") if k.strip()]
    wrong = [k for k in absent if k not in ABSENT_KINDS]
    if wrong:
        print(
            f"critlang: --absent-means-no takes {' and/or '.join(ABSENT_KINDS)}, "
            f"not {', '.join(wrong)}",
            file=sys.stderr,
        )
        return 2
    skipped: list[tuple[str, str]] = []
    files = _usable(data_files(args.data, skipped))
    if files is None:
        return 2
    outputs = {"--patients": args.patients, "--attrition": args.attrition, "--report": args.report}
    anchors = _outputs_and_anchors(args, outputs, [*files, Path(args.protocol)], analysis)
    if anchors is None:
        return 2
    compiled = analysis.compiled or compile_protocol(analysis.result)
    extractor = Extractor(analysis.result, absent, anchors)
    import gc

    # what start-up built (parser, nodes, compiled code) lives to the end: the collector
    # need not scan it again and again while the cohort's short-lived objects come and go
    gc.freeze()
    for warning in extractor.warnings:
        print(f"critlang: warning: {warning}", file=sys.stderr)
    tally = Tally()
    # files of the data folders that are not read: counted as unusable files, named
    tally.files += len(skipped)
    tally.unusable_files += skipped
    tty = sys.stderr.isatty()
    total = len(files)

    shown = [0]

    def progress(done: int) -> None:
        if tty and (done - shown[0] >= 10 or done == total):
            shown[0] = done
            width = 30
            filled = min(width, width * done // max(total, 1))
            bar = "#" * filled + "." * (width - filled)
            print(f"\rscreening [{bar}] {done} patients", end="", file=sys.stderr, flush=True)

    jobs = args.jobs or default_jobs()
    try:
        # a per-patient JSON Lines table carries each criterion's explanation
        explain = bool(args.patients) and Path(args.patients).suffix in (".jsonl", ".ndjson")
        result = screen_files(compiled, files, extractor, as_of, tally, jobs, progress, explain)
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
    if args.absent_means_no or args.anchor:
        flag = "--absent-means-no" if args.absent_means_no else "--anchor"
        print(f"critlang: {flag} applies when reading FHIR: give it to `critlang "
              "ingest`", file=sys.stderr)  # fmt: skip
        return 2
    if args.report or getattr(args, "format", "text") == "json":
        print(
            f"critlang: --report and --format json need the Python engine (screen the FHIR "
            f"data); --engine {engine} gives the attrition table and the per-patient statuses",
            file=sys.stderr,
        )
        return 2
    outputs = {"--patients": args.patients, "--attrition": args.attrition}
    clash = output_problems(outputs, [cohort, Path(args.protocol)])
    for problem in clash:
        print(f"critlang: {problem}", file=sys.stderr)
    if clash:
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
    if not result.counts.get("patients"):  # as the Python screen of no usable patient
        print(attrition_text(result))
        print(f"critlang: {cohort}: the cohort holds no patient", file=sys.stderr)
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
    if result.conflicted:  # where the two engines may differ: said, never silent
        print(
            f"critlang: note: {result.conflicted} patients have conflicting values for a "
            "fact a list condition reads: SQL leaves every criterion reading it unknown, "
            "where the Python engine weighs each value and may decide (docs/scale.md, "
            "'Weaker than Python')",
            file=sys.stderr,
        )
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from .backends.python import compile_protocol
    from .data.fhir import ABSENT_KINDS, Extractor, data_files
    from .data.ingest import NamedElsewhere, ingest_fhir

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
    skipped: list[tuple[str, str]] = []
    files = _usable(data_files(args.data, skipped))
    if files is None:
        return 2
    outputs = {"-o": args.output}
    anchors = _outputs_and_anchors(args, outputs, [*files, Path(args.protocol)], analysis)
    if anchors is None:
        return 2
    compiled = compile_protocol(analysis.result)
    extractor = Extractor(analysis.result, absent, anchors)
    import gc

    gc.freeze()  # start-up objects live to the end (see _cmd_screen)
    from .backends.sql import SqlUnsupported
    from .data.fhir import Tally
    from .screen import reading_details, reading_lines

    tally = Tally()
    tally.files += len(skipped)  # files of the data folders that are not read
    tally.unusable_files += skipped
    try:
        from .screen_jobs import default_jobs

        jobs = args.jobs or default_jobs()
        count = ingest_fhir(compiled, files, out, as_of, extractor, tally, jobs)
    except OSError as exc:
        print(f"critlang: -o {out}: {exc}", file=sys.stderr)
        return 2
    except SqlUnsupported as exc:
        print(f"critlang: {exc}", file=sys.stderr)
        return 1
    except NamedElsewhere as exc:
        print(f"critlang: {exc}", file=sys.stderr)
        return 2
    # what was read and what could not be used, as `screen` says it
    for line in reading_lines(tally):
        print(line)
    for line in reading_details(tally):
        print(f"critlang: {line}", file=sys.stderr)
    if count == 0:  # nothing written (data/ingest.CohortWriter.close)
        kept = " (the existing file is left as it was)" if out.exists() else ""
        print(f"critlang: no usable patient was read; {out} not written{kept}", file=sys.stderr)
        return 2
    print(f"{count} patients read as of {as_of.isoformat()} into {out}")
    return 0


def _cmd_sql(args: argparse.Namespace) -> int:
    from .backends.python import compile_protocol
    from .backends.sql import SqlUnsupported, compile_sql

    analysis, as_of, code = _protocol_and_date(args)
    if analysis is None or analysis.result is None:
        return code
    compiled = compile_protocol(analysis.result)
    statements: list[str] = []
    try:
        if args.values:  # the per-patient tables, then the query over them (docs/scale.md)
            from .backends.sql.values import build_statements

            built, layout = build_statements(compiled, as_of)
            statements = [b.sql(args.dialect, pretty=True) + ";\n" for b in built]
            query = compile_sql(compiled, as_of, layout)
        else:
            query = compile_sql(compiled, as_of)
    except SqlUnsupported as exc:
        print(f"critlang: {exc}", file=sys.stderr)
        return 1
    text = query.attrition().sql(args.dialect, pretty=True) if args.attrition else None
    try:
        print("".join(statements) + (text or query.sql(args.dialect, pretty=True)) + ";")
        sys.stdout.flush()
    except BrokenPipeError:  # `critlang sql ... | head`: the reader left, not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
