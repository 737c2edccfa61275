"""The `critlang` command. Exit codes: 0 clean, 1 problems in the input, 2 usage or I/O,
70 an internal error (a bug: one line asking for a report; the traceback with --debug).

Each command imports the phases it needs when it runs, so that `critlang check` starts
without loading the compiler, the FHIR reader, pint or z3.

This module holds the argument parser and the entry points (`main`, `run`); the commands
are in cli_check.py (check, fmt, test, render), cli_screen.py (eval, screen, ingest,
sql), cli_amend.py (diff, lint, impact), their shared inputs in cli_inputs.py.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar

from . import __version__
from .cli_amend import _cmd_diff, _cmd_impact, _cmd_lint
from .cli_check import _cmd_check, _cmd_fmt, _cmd_render, _cmd_test
from .cli_screen import _cmd_eval, _cmd_ingest, _cmd_screen, _cmd_sql
from .cli_streams import _closed_pipe, _nowhere, _output_failed, _PipeGuard


def _positive(text: str) -> int:
    """A whole number >= 1 (argparse type: a usage error otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions keep their line breaks, so the examples read as typed."""


class _Parser(argparse.ArgumentParser):
    """argparse's parser, checking each argument's metavar without the terminal's width.

    `add_argument` checks a metavar by formatting it with a fresh help formatter, which
    asks `shutil` for the terminal's width (importing `shutil`, with `bz2` and `lzma`: a few
    milliseconds of every start) though the check never uses it. Help and usage messages
    are formatted as before, at the terminal's width."""

    _checking = False

    def add_argument(self, *args: Any, **kwargs: Any) -> Any:
        self._checking = True
        try:
            return super().add_argument(*args, **kwargs)
        finally:
            self._checking = False

    def _get_formatter(self) -> argparse.HelpFormatter:
        if self._checking:  # only `_format_args` of it is used: no width needed
            return self.formatter_class(prog=self.prog, width=80)
        return super()._get_formatter()


class _NotBuilt:
    """The parser of a command that is not on this command line: not built (a dozen
    parsers with all their arguments took ~10 ms of every start). It is listed, with its
    help, among the choices and in `--help`, and never parses anything (the command is
    always one of the words of the command line)."""

    def add_argument(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_defaults(self, **kwargs: Any) -> None:
        pass


def _subparser(not_built: bool = False, **kwargs: Any) -> Any:
    """The subparsers' `parser_class`: a parser, or none for a command not given."""
    return _NotBuilt() if not_built else _Parser(**kwargs)


def _command(
    sub: Any,
    name: str,
    help: str,
    description: str,
    examples: Sequence[str],
    wanted: Collection[str] | None = None,
) -> Any:
    """A subcommand whose help ends with typed examples; only named and listed, arguments
    not built, when `wanted` (the words of the command line) does not hold its name."""
    if wanted is not None and name not in wanted:
        return sub.add_parser(name, help=help, not_built=True)  # listed, with its help
    epilog = "examples:\n" + "\n".join(f"  {x}" for x in examples)
    return sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=_Formatter,
    )


_TRIAL = "protocols/nct05610826"
_PATIENT = f"{_TRIAL}/examples/ineligible_hb_8_0_g_dl.json"


def build_parser(wanted: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser; with `wanted` (the words of the command line), only the
    commands named there get their arguments (a command is always one of those words)."""
    ap = _Parser(
        prog="critlang",
        description="Eligibility criteria as a checked language.",
        epilog="`critlang COMMAND --help` describes each command, with examples.",
    )
    ap.add_argument("--version", action="version", version=f"critlang {__version__}")
    # prog given: argparse would format the usage (without positionals: "critlang") for it
    sub = ap.add_subparsers(
        dest="command", required=True, metavar="COMMAND", prog="critlang", parser_class=_subparser
    )
    c = _command(
        sub,
        "check",
        "check criteria files for name, type and unit errors",
        "Check criteria files (or folders of *.crit files). "
        "Exit 0: clean; 1: errors found (or warnings, with --strict); 2: usage or I/O problem.",
        [f"critlang check {_TRIAL}/", f"critlang check --strict {_TRIAL}/current.crit"],
        wanted,
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
        wanted,
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
        wanted,
    )
    sc.add_argument("protocol", metavar="PROTOCOL", help="the criteria file (.crit)")
    sc.add_argument(
        "data",
        nargs="+",
        metavar="DATA",
        help="FHIR R4 Bundles (.json) or NDJSON files, or folders searched for them",
    )
    sc.add_argument("--as-of", metavar="YYYY-MM-DD", help="screening date (default: today)")
    sc.add_argument("--anchor", action="append", default=[], metavar="NAME=DATE", help=ANCHOR_HELP)
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
    sc.add_argument(
        "--jobs",
        metavar="N",
        type=_positive,
        help="processes reading FHIR bundles at once (default: the processor cores this "
        "process may use); the output is the same for any N",
    )
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
        wanted,
    )
    ig.add_argument("protocol", metavar="PROTOCOL", help="the criteria file (.crit)")
    ig.add_argument(
        "data", nargs="+", metavar="DATA", help="FHIR R4 Bundles or NDJSON files, or folders"
    )
    ig.add_argument("-o", "--output", required=True, metavar="COHORT.duckdb")
    ig.add_argument("--as-of", metavar="YYYY-MM-DD", help="reading date (default: today)")
    ig.add_argument("--anchor", action="append", default=[], metavar="NAME=DATE", help=ANCHOR_HELP)
    ig.add_argument(
        "--absent-means-no",
        metavar="KINDS",
        help="as for screen: coded facts of these kinds that no resource shows count as 'no'",
    )
    ig.add_argument(
        "--jobs",
        metavar="N",
        type=_positive,
        help="processes reading FHIR bundles at once (default: the processor cores this "
        "process may use); the cohort file is the same for any N",
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
        wanted,
    )
    sq.add_argument("protocol", metavar="PROTOCOL", help="the criteria file (.crit)")
    sq.add_argument("--dialect", choices=("duckdb", "postgres", "spark"), default="duckdb")
    sq.add_argument("--as-of", metavar="YYYY-MM-DD", help="screening date (default: today)")
    sq.add_argument("--attrition", action="store_true", help="the attrition query instead")
    sq.add_argument(
        "--values",
        action="store_true",
        help="first the statements writing the per-patient tables from the facts table (what "
        "`critlang ingest` runs once), then the query reading them instead of the facts",
    )
    sq.set_defaults(func=_cmd_sql)
    fm = _command(
        sub,
        "fmt",
        "rewrite criteria files in the canonical layout",
        "Format criteria files (or folders of *.crit files) in place. Comments, "
        "protocol texts, numbers and units are kept as written. Exit 1 with --check when a "
        "file would change, or when a file has syntax errors.",
        [f"critlang fmt --check {_TRIAL}/", f"critlang fmt --diff {_TRIAL}/current.crit"],
        wanted,
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
        wanted,
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
        wanted,
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
        wanted,
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
        wanted,
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
        wanted,
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
ANCHOR_HELP = (
    "a protocol date for every patient read from FHIR, e.g. visit_1=2024-03-15 (repeatable; "
    "FHIR data hold no protocol dates; a native record's own anchors win)"
)


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
    args, extra = ap.parse_known_args(argv)
    if not extra:
        return args
    import difflib

    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = sub.choices[args.command]
    flags = [o for a in parser._actions for o in a.option_strings]
    word = extra[0]
    close = difflib.get_close_matches(word.split("=")[0], flags, n=1)
    hint = f"; did you mean {close[0]}?" if close and word.startswith("-") else ""
    parser.error(f"unrecognized argument{'s' if len(extra) > 1 else ''}: {' '.join(extra)}{hint}")
    raise AssertionError  # parser.error exits


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    ap = build_parser(wanted=set(words))
    choices = ap._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, command in choices.items():
        if name not in words:
            continue  # not built (see _NotBuilt)
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
    out, err = sys.stdout, sys.stderr
    # a stream closed at start (`2>&-`) is None in Python: written to, it goes nowhere
    sys.stdout, sys.stderr = _PipeGuard(out or _nowhere()), _PipeGuard(err or _nowhere())
    try:
        code = _run_deep(lambda: int(args.func(args)))
        # the reader left (`... 2>&1 | head -3`) but the command went on and wrote
        # every file it was asked for (--patients, --report, -o): exit as a closed pipe
        cut = any(isinstance(s, _PipeGuard) and s.cut for s in (sys.stdout, sys.stderr))
        return 141 if cut and code == 0 else code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # not a bug: the reader went away
        return _closed_pipe()
    except OSError as exc:
        if not _output_failed(exc):
            return _internal(exc, args.debug)
        # a full disk or a failing device under the standard output: an I/O problem (2)
        from .cli_inputs import os_error_words

        print(f"critlang: cannot write the output: {os_error_words(exc)}", file=sys.stderr)
        _closed_pipe()  # the final flush would fail again
        return 2
    except Exception as exc:
        return _internal(exc, args.debug)
    finally:
        for guard in (sys.stdout, sys.stderr):
            if isinstance(guard, _PipeGuard):
                guard.flush()  # a pipe closed after the last write: said here, quietly
        sys.stdout, sys.stderr = out, err


def _internal(exc: BaseException, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exc()
    print(
        f"critlang: internal error ({type(exc).__name__}): this is a bug in critlang; "
        "please report it with the command and its input "
        f"(rerun with --debug for the traceback). Exit {EXIT_INTERNAL}.",
        file=sys.stderr,
    )
    return EXIT_INTERNAL


def run() -> None:
    """The console entry point: a closed pipe ends the process quietly, for every command."""
    # SIGPIPE keeps Python's setting (ignored: a write to a closed pipe raises
    # BrokenPipeError, which _PipeGuard absorbs): dying on it, as cat and grep do, would
    # lose the files a command had yet to write
    sys.exit(main())


if __name__ == "__main__":
    run()
