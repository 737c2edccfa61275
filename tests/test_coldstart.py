"""What makes `critlang` start fast changes nothing a user sees: the command line is parsed
as before with only the named command's arguments built, and the modules a command does
not need are not loaded (timings: bench/bench_coldstart.py)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from critlang.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]


def _outcome(wanted: set[str] | None, argv: list[str]) -> tuple[object, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result: object = vars(build_parser(wanted).parse_args(argv))
        except SystemExit as exc:
            result = ("exit", exc.code)
    return result, out.getvalue(), err.getvalue()


def test_every_command_is_listed() -> None:
    assert len(COMMANDS) == 11


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        [],
        ["nonsense"],
        ["--version"],
        *([c, "--help"] for c in COMMANDS),
        *([c] for c in COMMANDS),
        *([c, "--no-such-flag", "x"] for c in COMMANDS),
        ["eval", "--as-of", "2026-11-27", "p.crit", "a.json"],
        ["--debug", "check", "p.crit"],
        ["check", "eval"],
    ],
    ids=" ".join,
)
def test_parsing_is_the_same_with_only_the_named_commands_built(argv: list[str]) -> None:
    assert _outcome(set(argv), argv) == _outcome(None, argv)


# modules an evaluation of a patient with a verdict does not need, each of which once
# cost a few milliseconds of every start (docs/performance.md, "Cold start")
NOT_LOADED = (
    "lark",
    "pint",
    "z3",
    "difflib",
    "xml.etree.ElementTree",
    "traceback",
    "dataclasses",  # frozen_classes.py builds its views on first use
    "inspect",
    "ast",  # python_slices.py and needs.py: only for an undetermined patient
    "shutil",  # argparse asks it for the terminal width only to print help (cli._Parser)
)


def test_an_evaluation_loads_none_of_the_modules_it_does_not_need() -> None:
    code = (
        "import io, contextlib, sys\n"
        "from critlang.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['eval', '--as-of', '2026-11-27', sys.argv[1], sys.argv[2]])\n"
        f"print(sorted(m for m in {NOT_LOADED!r} if m in sys.modules))\n"
    )
    trial = ROOT / "protocols" / "nct05610826"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(trial / "current.crit"),
            str(trial / "examples" / "ineligible_hb_8_0_g_dl.json"),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert proc.stdout.strip() == "[]"
