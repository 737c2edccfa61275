"""Untrusted criteria files (issue 14): one regression test per kind of fault.

Every case runs through the command-line entry point (`critlang.cli.main`), as a user
would, and asserts the exit code and what is (and is not) printed: no traceback, no
echo of a file that is not criteria, a diagnostic with its code.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from critlang import cli, lalr, parser
from critlang.backends.python import compile_protocol
from critlang.evaluate import Evaluator
from critlang.frontend import analyse_text
from critlang.interpreter import Interpreter
from helpers import ROOT, TRIAL

HEADER = """protocol "X"
  date 2024-01-01
fact a: boolean
fact b: boolean
fact x: quantity mg/dL
fact l: list of {k: enum {p, q}, v: integer 0..9}
"""
PATIENT = {
    "id": "p1",
    "facts": {"a": True, "b": False, "x": {"value": 2, "unit": "mg/dL"}, "l": [{"k": "q", "v": 1}]},
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def protocol(rule: str, defines: str = "", extra: str = "") -> str:
    return HEADER + extra + defines + f'inclusion criteria\nI1 "t"\n  rule {rule}\n'


def patient(folder: Path) -> Path:
    return write(folder, "p.json", json.dumps(PATIENT))


# ---------------------------------------------------------------- 1. file access by import

IMPORT = HEADER.replace("{", "{{").replace("}", "}}")
IMPORT += 'import "{}"\ninclusion criteria\nI1 "t"\n  rule a\n'


@pytest.mark.parametrize(
    "target, why",
    [
        ("/proc/self/environ", "relative path"),
        ("/dev/urandom", "relative path"),
        ("/etc/passwd", "relative path"),
        ("../../../../../../etc/passwd.crit", "outside the protocol's tree"),
        ("notes.txt", "relative path"),
    ],
)
def test_import_refuses_files_outside_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str, why: str
) -> None:
    write(tmp_path, "notes.txt", "SECRET=hunter2\n")
    f = write(tmp_path, "p.crit", IMPORT.format(target))
    code, out, _ = run(capsys, "check", str(f))
    assert code == 1
    assert "E904" in out and why in out
    assert "SECRET" not in out and "root:" not in out


def test_import_refuses_symlinks_out_of_the_tree_and_fifos(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = Path(tempfile.mkdtemp())
    write(outside, "secret.crit", 'codes a: loinc "SECRET-1"\n')
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "link.crit").symlink_to(outside / "secret.crit")
    os.mkfifo(tree / "fifo.crit")  # reading it would block for ever
    for name, why in (("link.crit", "outside the protocol's tree"), ("fifo.crit", "regular")):
        f = write(tree, "p.crit", IMPORT.format(name))
        code, out, _ = run(capsys, "check", str(f))
        assert code == 1 and "E904" in out and why in out, out
        assert "SECRET" not in out


def test_import_never_echoes_a_file_that_is_not_criteria(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "lib.crit", "API_KEY=0123456789abcdef\nPASSWORD=letmein\n")
    f = write(tmp_path, "p.crit", IMPORT.format("lib.crit"))
    for fmt in ("text", "json"):
        code, out, _ = run(capsys, "check", "--format", fmt, str(f))
        assert code == 1
        assert "is not a criteria file: E001 at line 1, column 1" in out
        assert "API_KEY" not in out and "letmein" not in out and "0123456789" not in out


def test_import_size_is_capped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with open(tmp_path / "big.crit", "wb") as big:
        big.truncate(parser_limit() + 1)  # sparse: no real 8 MiB written
    f = write(tmp_path, "p.crit", IMPORT.format("big.crit"))
    code, out, _ = run(capsys, "check", str(f))
    assert code == 1 and "E904" in out and "larger than 8 MiB" in out


def parser_limit() -> int:
    from critlang.source import MAX_SOURCE_BYTES

    return MAX_SOURCE_BYTES


def test_import_from_a_declared_library(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = Path(tempfile.mkdtemp())
    write(lib, "labs.crit", 'codes x: loinc "2345-7"\n')
    tree = tmp_path / "tree"
    tree.mkdir()
    f = write(tree, "p.crit", IMPORT.format("labs.crit").replace("rule a", "rule x > 1 mg/dL"))
    code, out, _ = run(capsys, "check", str(f))
    assert code == 1 and "E007" in out and "no such file" in out
    code, out, _ = run(capsys, "check", "--library", str(lib), str(f))
    assert code == 0, out
    monkeypatch.setenv("CRITLANG_LIBRARY", str(lib))
    code, out, _ = run(capsys, "check", str(f))
    assert code == 0, out


def test_the_trial_imports_its_library_from_its_tree(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", str(TRIAL / "current.crit"))
    assert code == 0 and "E904" not in out and "E007" not in out


def test_a_protocol_file_is_read_with_a_size_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open(tmp_path / "big.crit", "wb") as big:
        big.truncate(parser_limit() + 1)
    code, _, err = run(capsys, "check", str(tmp_path / "big.crit"))
    assert code == 2 and "larger than 8 mib" in err.lower()


# ---------------------------------------------------------------- 2. parser cache


def test_parser_tables_are_shipped_for_the_current_grammar() -> None:
    saved = json.loads(lalr.TABLES.read_text(encoding="utf-8"))
    assert saved["grammar_sha256"] == lalr._grammar_hash(lalr._grammar_text()), (
        "grammar changed: regenerate the tables with "
        '`python -c "from critlang.lalr import write_tables; write_tables()"`'
    )
    loaded = lalr._load_tables()
    assert loaded is not None
    built = lalr._build()
    for f in sorted(ROOT.glob("protocols/**/*.crit")):
        text = f.read_text(encoding="utf-8")
        assert loaded.parse(text) == built.parse(text), f


def test_no_parser_cache_in_the_temp_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    lalr.lark_parser().parse(HEADER)
    lalr._build().parse(HEADER)
    assert list(tmp_path.iterdir()) == []  # nothing written, so nothing to unpickle


def test_stale_tables_fall_back_to_building(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lalr, "_grammar_hash", lambda text: "another grammar")
    assert lalr._load_tables() is None
    assert lalr.lark_parser().parse(HEADER) is not None


# ---------------------------------------------------------------- 3. resource exhaustion


@pytest.mark.parametrize(
    "text",
    [
        protocol("x > " + "9" * 4300 + " mg/dL"),
        protocol("x > " + "9" * 400 + " mg/dL"),
        protocol("x > 1." + "1" * 16 + " mg/dL"),
        HEADER.replace("integer 0..9", "integer 0.." + "9" * 4300) + 'inclusion criteria\nI1 "t"\n'
        "  rule a\n",
        protocol("x > 99" + "9" * 30 + " x ULN"),
        protocol("at least " + "9" * 5000 + " of l with (v > 1)"),
    ],
    ids=["4300-digits", "400-digits", "16-decimals", "integer-range", "factor", "count"],
)
def test_huge_numbers_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    code, out, _ = run(capsys, "check", str(write(tmp_path, "p.crit", text)))
    assert code == 1 and "E901" in out and "number too long" in out


def test_fifteen_digit_numbers_are_fine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = protocol("x > 999999999999999.000000000000001 mg/dL")
    code, out, _ = run(capsys, "check", str(write(tmp_path, "p.crit", text)))
    assert code == 0, out


def doubling(prefix: str, base: str, op: str, levels: int) -> str:
    """`define d1 = d0 + d0`, 20 levels in the issue: 2^levels if expanded as a tree."""
    lines = [f"define {prefix}0 = {base}\n"]
    lines += [
        f"define {prefix}{i} = {prefix}{i - 1} {op} {prefix}{i - 1}\n" for i in range(1, levels + 1)
    ]
    return "".join(lines)


def test_self_doubling_definitions_evaluate_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    defines = doubling("d", "x", "+", 40) + doubling("e", "a", "and", 40)
    defines += "define g(y: quantity mg/dL) = d40 + y\n"
    text = protocol("d40 > 1000000000000 mg/dL", defines)
    text += 'I2 "t"\n  rule e40\nI3 "t"\n  rule g(x) > 1 mg/dL\n'
    f = write(tmp_path, "p.crit", text)
    code, out, _ = run(capsys, "eval", "--format", "json", str(f), str(patient(tmp_path)))
    assert code == 0, out
    [result] = json.loads(out)
    assert result["verdict"] == "eligible"
    a = analyse_text(text, str(f))
    assert a.ok and a.compiled is not None
    assert len(a.compiled.source_code) < 20_000  # linear in the definitions
    from critlang.data.records import read_record

    record = read_record(a.result, PATIENT, __import__("datetime").date(2025, 1, 1))
    verdict, statuses, _ = Interpreter(a.result).run(record)
    assert (verdict, statuses) == ("eligible", (True, True, True))


def test_syntax_errors_in_a_large_file_parse_each_part_about_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = "".join(f'I{i} "t"\n  rule x > 1 mg/dL\n' for i in range(10_000))
    broken = {2_000, 5_000, 9_999}
    lines = body.splitlines(keepends=True)
    for i in broken:
        lines[2 * i + 1] = "  rule x > > 1\n"
    text = HEADER + "inclusion criteria\n" + "".join(lines)
    parsed: list[int] = []
    real = parser._lark()

    class Counting:
        def parse(self, t: str) -> object:
            # what was blanked before the restart point (spaces, same length) costs nothing
            parsed.append(len(t.replace(" ", "").replace("\n", "")))
            return real.parse(t)

    monkeypatch.setattr(parser, "_lark", lambda: Counting())
    _, diags = parser.parse_text(text)
    assert [d.span.line for d in diags] == [8 + 2 * i + 1 for i in sorted(broken)]
    size = len(text.replace(" ", "").replace("\n", ""))
    assert sum(parsed) < 3 * size  # linear: was one whole-file parse per item


def test_a_large_enum_checks_in_linear_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    members = [f"m{i}" for i in range(30_000)]
    text = HEADER + "fact big: enum {" + ", ".join(members) + "}\n"
    text += "fact s: scale {" + " < ".join(members) + "}\n"
    text += 'inclusion criteria\nI1 "t"\n  rule big in {' + ", ".join(members) + "}\n"
    text += 'I2 "t"\n  rule s in {' + ", ".join(members) + "}\n"
    code, out, _ = run(capsys, "check", str(write(tmp_path, "p.crit", text)))
    assert code == 0, out[-500:]


# ---------------------------------------------------------------- 4. depth


def nested_conditional_else(n: int) -> str:
    e = "x"
    for _ in range(n):
        e = f"(x if a else {e})"
    return e


def nested_conditional_then(n: int) -> str:
    e = "x"
    for _ in range(n):
        e = f"({e} if a else x)"
    return e


def nested_any(n: int) -> str:
    e = "k = p"
    for _ in range(n):
        e = f"any l with ({e})"
    return e


def nested_alternation(n: int) -> str:
    e = "any l with (k = p)"
    for i in range(n):
        e = f"any l with (k = q) {'and' if i % 2 else 'or'} ({e})"
    return e


WIDE = {
    "or-330": " or ".join(["a", "b", "any l with (k = p)"] * 110),
    "parentheses-490": "(" * 490 + "a" + ")" * 490,
    "first-available-100": "first available(" + ", ".join(["x"] * 100) + ") > 1 mg/dL",
    "else-chain-99": nested_conditional_else(99) + " > 1 mg/dL",
    "arithmetic-500": " + ".join(["x"] * 500) + " > 1 mg/dL",
    "not-990": "not " * 990 + "a",
    "minus-990": "-" * 990 + "x > 1 mg/dL",
}


@pytest.mark.parametrize("name", sorted(WIDE))
def test_deep_or_wide_but_legal_syntax_evaluates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    f = write(tmp_path, "p.crit", protocol(WIDE[name]))
    code, out, _ = run(capsys, "eval", "--format", "json", str(f), str(patient(tmp_path)))
    assert code == 0, out
    assert json.loads(out)[0]["verdict"] == "eligible"


@pytest.mark.parametrize(
    "rule",
    [
        nested_any(21),
        nested_alternation(200),
    ],
    ids=["any-21", "alternation-200"],
)
def test_what_python_cannot_compile_is_refused_at_check_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rule: str
) -> None:
    f = write(tmp_path, "p.crit", protocol(rule))
    code, out, _ = run(capsys, "check", str(f))
    assert code == 1 and "E903" in out and "too complex to compile" in out, out[-800:]
    code, _, err = run(capsys, "eval", str(f), str(patient(tmp_path)))
    assert code == 1 and "E903" in err


def test_nesting_beyond_the_limit_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = "(" * (parser.MAX_DEPTH + 10) + "a" + ")" * (parser.MAX_DEPTH + 10)
    code, out, _ = run(capsys, "check", str(write(tmp_path, "p.crit", protocol(deep))))
    assert code == 1 and "E902" in out and "nested too deeply" in out


@pytest.mark.parametrize(
    "make", [nested_conditional_then, nested_any, nested_alternation, nested_conditional_else]
)
def test_whatever_checks_clean_compiles_and_agrees_with_the_interpreter(make: object) -> None:
    """Programs of growing nesting: each either checks clean, compiles and gives the
    interpreter's answer, or is refused with E903; never a crash in between."""
    import datetime as dt

    from critlang.data.records import read_record

    refused_from = None
    for depth in (1, 2, 5, 10, 19, 20, 25, 40, 49, 50, 60, 98, 150):
        rule = make(depth)  # type: ignore[operator]
        if make in (nested_conditional_then, nested_conditional_else):
            rule += " > 1 mg/dL"
        a = cli._run_deep(lambda r=rule: analyse_text(protocol(r)))  # type: ignore[misc]
        codes = {d.code for d in a.diagnostics if d.is_error}
        if not a.ok:
            assert codes == {"E903"}, codes
            refused_from = refused_from or depth
            continue
        assert refused_from is None, "refused at a smaller depth but not at this one"
        compiled = a.compiled or compile_protocol(a.result)
        record = read_record(a.result, PATIENT, dt.date(2025, 1, 1))
        got = Evaluator(compiled).evaluate(record).verdict
        interpreter = Interpreter(a.result)  # type: ignore[arg-type]
        want = cli._run_deep(lambda r=record, i=interpreter: i.run(r)[0])  # type: ignore[misc]
        assert got == want


# ---------------------------------------------------------------- 5. exit codes, dates


def test_an_internal_error_exits_70_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(args: object) -> int:
        raise KeyError("a bug")

    f = write(tmp_path, "p.crit", protocol("a"))
    monkeypatch.setattr(cli, "_cmd_check", broken)
    code, _, err = run(capsys, "check", str(f))
    assert code == cli.EXIT_INTERNAL == 70
    assert err.count("\n") == 1 and "bug in critlang" in err and "--debug" in err
    assert cli.main(["check", "--debug", str(f)]) == 70
    assert "Traceback" in capsys.readouterr().err
    assert cli.main(["--debug", "check", str(f)]) == 70
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1899-12-31", "2200-01-01"])
def test_as_of_outside_the_supported_range_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], day: str
) -> None:
    patients = str(TRIAL / "examples")
    for argv in (
        ["eval", "--as-of", day, str(TRIAL / "current.crit"), patients],
        ["diff", "--as-of", day, str(TRIAL / "previous.crit"), str(TRIAL / "current.crit")],
    ):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "give a date from 1900-01-01 to 2199-12-31" in err


def test_a_look_back_reaching_before_year_one_holds_every_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = protocol(
        "x > 1 mg/dL",
        extra="fact y: quantity mg/dL\n  measured within 2100 years before enrollment\n",
    ).replace("rule x > 1 mg/dL", "rule y > 1 mg/dL")
    f = write(tmp_path, "p.crit", text)
    record = dict(
        PATIENT, facts=dict(PATIENT["facts"], y={"value": 3, "unit": "mg/dL", "date": "1900-05-01"})
    )  # type: ignore[arg-type]
    p = write(tmp_path, "p.json", json.dumps(record))
    code, out, _ = run(capsys, "eval", "--as-of", "1900-06-01", "--format", "json", str(f), str(p))
    assert code == 0, out
    assert json.loads(out)[0]["verdict"] == "eligible"


@pytest.mark.parametrize("target", ["/etc/passwd", "/dev/urandom", "../../../../etc/x.crit"])
def test_an_example_names_its_protocol_under_the_import_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    example = dict(PATIENT, protocol=target, as_of="2025-01-01", expect={"verdict": "eligible"})
    write(tmp_path, "p.json", json.dumps(example))
    code, out, _ = run(capsys, "test", str(tmp_path / "p.json"))
    assert code == 1 and "FAIL" in out and "root:" not in out


def test_a_very_long_line_is_framed_as_a_window_around_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 3,000-character line is not printed whole: the frame shows about 120 characters
    around the span, cut with "...", and the caret still points at the unknown name."""
    rule = " or ".join(["a"] * 300) + " or zz or " + " or ".join(["a"] * 300)
    code, out, _ = run(capsys, "check", str(write(tmp_path, "p.crit", protocol(rule))))
    assert code == 1
    lines = out.splitlines()
    i = next(k for k, line in enumerate(lines) if "E101" in line)
    shown, caret = lines[i + 2], lines[i + 3]
    assert len(shown) < 140 and shown.count("...") == 2
    at = caret.index("^^")
    assert shown[at : at + 2] == "zz" and "not declared" in caret
