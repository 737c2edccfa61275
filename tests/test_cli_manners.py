"""CLI manners: closed pipes, help texts, mistyped flags, file errors in words."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from critlang.cli import build_parser, main
from helpers import ROOT, TRIAL

CURRENT = TRIAL / "current.crit"
PREVIOUS = TRIAL / "previous.crit"
PATIENT = TRIAL / "examples" / "ineligible_hb_8_0_g_dl.json"
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def run(*args: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "critlang", *args],
        capture_output=True,
        text=True,
        check=False,
        env=ENV,
    )
    assert "Traceback" not in proc.stderr
    return proc.returncode, proc.stdout + proc.stderr


def _bundle(tmp: Path) -> Path:
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1960-05-01", "gender": "male"}
    data = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient}]}
    path = tmp / "bundle.json"
    path.write_text(json.dumps(data))
    return path


def _commands(tmp: Path) -> dict[str, list[str]]:
    data = str(_bundle(tmp))
    return {
        "check": ["check", "--verbose", str(TRIAL)],
        "eval": [
            "eval",
            "--as-of",
            "2026-11-27",
            "--details",
            str(CURRENT),
            str(TRIAL / "examples"),
        ],
        "screen": ["screen", "--as-of", "2026-11-27", str(CURRENT), data],
        "fmt": ["fmt", "--diff", str(PREVIOUS)],
        "test": ["test", str(TRIAL)],
        "render": ["render", str(CURRENT)],
        "diff": ["diff", str(PREVIOUS), str(CURRENT)],
        "impact": ["impact", "--as-of", "2026-11-27", str(PREVIOUS), str(CURRENT), data],
        "help": ["--help"],
    }


def test_closed_pipe_is_quiet_for_every_command(tmp_path: Path) -> None:
    """`critlang ... | head -1`: the reader closes the pipe; no traceback, no complaint."""
    for name, args in _commands(tmp_path).items():
        proc = subprocess.Popen(
            [sys.executable, "-m", "critlang", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
        )
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # as `head -1` does once it has its line (here: before any)
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=600)
        assert "Traceback" not in err and "BrokenPipe" not in err, (name, err)
        assert "Exception ignored" not in err, (name, err)
        # killed by SIGPIPE (-13), or exited as such (141); 0/1 if it finished writing first
        assert code in (0, 1, -13, 141), (name, code, err)


def test_a_closed_pipe_never_loses_the_files_asked_for(tmp_path: Path) -> None:
    """`critlang screen ... --patients out.jsonl 2>&1 | head -3`: the reader leaves at the
    first diagnostics, yet every file the command writes is written, whole (realfhir7
    F13: dying on SIGPIPE lost --patients in half the runs)."""
    data = str(_bundle(tmp_path))
    expected = tmp_path / "expected.jsonl"
    args = ["screen", "--as-of", "2026-11-27", str(CURRENT), data]
    done = subprocess.run(
        [sys.executable, "-m", "critlang", *args, "--patients", str(expected)],
        capture_output=True,
        env=ENV,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for run in range(3):
        out = tmp_path / f"cut{run}.jsonl"
        report = tmp_path / f"cut{run}.html"
        files = ["--patients", str(out), "--report", str(report)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "critlang", *args, *files],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=ENV,
        )
        assert proc.stdout is not None
        proc.stdout.close()  # `2>&1 | head -0`: both streams closed before any line
        assert proc.wait(timeout=600) in (0, 141)
        assert out.read_bytes() == expected.read_bytes()
        assert report.read_text().rstrip().endswith("</html>")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_full_disk_on_standard_output_is_an_io_error_for_every_command(tmp_path: Path) -> None:
    """`critlang ... > /dev/full`: exit 2 with the problem in words, never "internal error"."""
    for name, args in _commands(tmp_path).items():
        if name in ("help", "fmt"):
            continue  # argparse prints --help itself; `fmt --diff` of a formatted file: nothing
        with open("/dev/full", "w") as full:
            proc = subprocess.run(
                [sys.executable, "-m", "critlang", *args],
                stdout=full,
                stderr=subprocess.PIPE,
                text=True,
                env=ENV,
                check=False,
            )
        assert proc.returncode == 2, (name, proc.returncode, proc.stderr)
        assert "cannot write the output: no space left on the device" in proc.stderr, name
        assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr, name
        assert "Exception ignored" not in proc.stderr, (name, proc.stderr)


def test_closed_pipe_in_process_returns_141(monkeypatch: pytest.MonkeyPatch) -> None:
    class Closed:
        def write(self, _: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self) -> int:
            raise ValueError("no file")

    monkeypatch.setattr(sys, "stdout", Closed())
    assert main(["render", str(CURRENT)]) == 141


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    ap = build_parser()
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_positional_described_and_every_command_has_an_example() -> None:
    parsers = _subparsers()
    assert set(parsers) >= {"check", "eval", "screen", "fmt", "test", "render", "diff", "impact"}
    for name, parser in parsers.items():
        positionals = [a for a in parser._actions if not a.option_strings]
        assert positionals, name
        for a in positionals:
            assert a.help and len(a.help) > 10, (name, a.dest)
        assert parser.epilog and parser.epilog.startswith("examples:\n  critlang " + name), name
        text = parser.format_help()
        assert "examples:" in text and f"critlang {name} " in text


def test_mistyped_flag_shows_that_commands_usage() -> None:
    code, out = run("eval", "--formt", "json", str(CURRENT), str(PATIENT))
    assert code == 2
    assert "usage: critlang eval " in out
    assert "unrecognized argument: --formt; did you mean --format?" in out
    assert "{check,eval" not in out  # not the top-level usage
    code, out = run("screen", "--as_of", "2021-01-01", str(CURRENT), str(PATIENT))
    assert code == 2 and "usage: critlang screen " in out and "did you mean --as-of?" in out


def test_file_errors_in_words(tmp_path: Path) -> None:
    code, out = run("eval", str(tmp_path), str(PATIENT))
    assert code == 2 and f"{tmp_path}: cannot read: is a folder, not a file" in out
    assert "Errno" not in out
    code, out = run("eval", str(CURRENT), str(tmp_path / "nope.json"))
    assert code == 2 and "no such file or folder" in out and "Errno" not in out
    code, out = run("render", str(tmp_path), "-o", str(tmp_path / "x.html"))
    assert code == 2 and "is a folder, not a file" in out and "Errno" not in out
    code, out = run("render", str(CURRENT), "-o", str(tmp_path))
    assert code == 2 and "cannot write: is a folder, not a file" in out and "Errno" not in out
    code, out = run("diff", str(tmp_path), str(CURRENT))
    assert code == 2 and "is a folder, not a file" in out and "Errno" not in out


@pytest.mark.parametrize("suffix", [".HTML", ".htm", ".Html"])
def test_render_html_by_suffix_any_case(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"page{suffix}"
    assert main(["render", str(CURRENT), "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_expected_verdict_must_be_a_verdict_word(tmp_path: Path) -> None:
    # an absolute "protocol" path is refused (docs/security.md): give the example a tree
    (tmp_path / ".git").mkdir()  # the tree imports may resolve in (frontend.import_roots)
    (tmp_path / "lib").mkdir()
    (tmp_path / "trial" / "examples").mkdir(parents=True)
    for lib in (TRIAL.parent / "lib").glob("*.crit"):
        (tmp_path / "lib" / lib.name).write_bytes(lib.read_bytes())
    (tmp_path / "trial" / "current.crit").write_bytes(CURRENT.read_bytes())
    data = json.loads(PATIENT.read_text())
    data.pop("protocol", None)
    data["expect"] = {"verdict": "inelligible", "criteria": {"E8": "met", "E1": "false"}}
    f = tmp_path / "trial" / "examples" / "typo.json"
    f.write_text(json.dumps(data))
    code, out = run("test", str(f))
    assert code == 1 and "FAIL" in out
    assert "expect.verdict 'inelligible' is not a verdict: use one of eligible, " in out
    assert "expect.criteria.E1 'false' is not a status" in out


def test_check_summarises_assumptions_and_verbose_gives_them_whole() -> None:
    code, out = run("check", str(CURRENT))
    assert code == 0
    assert "8 assumptions the protocol does not state (warning W001; full text with " in out
    where = 1 + next(
        i for i, x in enumerate(CURRENT.read_text().splitlines()) if x.startswith("assume ki67")
    )
    line = next(x for x in out.splitlines() if "`ki67_cutoff`" in x)
    assert line.startswith(f"  {CURRENT}:{where}: `ki67_cutoff`: The inclusion text is cut off")
    # no code frames for assumptions: the one frame is the trial's W102 (therapy kinds
    # without codes), a finding rather than an assumption
    assert sum("^^^" in x for x in out.splitlines()) == 1 and "warning W102" in out
    code, verbose = run("check", "--verbose", str(CURRENT))
    assert code == 0 and "warning W001: assumption `ki67_cutoff`" in verbose and "^^^" in verbose
    assert "\x1b[" not in out + verbose  # no colour when piped


def test_check_lists_errors_before_warnings(tmp_path: Path) -> None:
    f = tmp_path / "p.crit"
    f.write_text(
        'protocol "X"\nassume "first"\nfact a: boolean\ninclusion criteria\nI1 "x"\n  rule b\n'
    )
    code, out = run("check", str(f))
    assert code == 1
    assert out.index("error E101") < out.index("warning W002") < out.index("1 assumption")


def test_help_and_version_load_no_parser() -> None:
    code = (
        "import io, contextlib, sys\n"
        "from critlang.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--version']); main(['eval', '--help'])\n"
        "print(sorted(m for m in ('lark', 'critlang.nodes', 'pint', 'z3') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=ENV
    )
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("command", ["screen", "ingest"])
def test_a_data_file_named_twice_is_refused(tmp_path: Path, command: str) -> None:
    """Named twice (or directly and through its folder, or by a link), a Bundle's patients
    would be counted twice: refused, saying which file."""
    folder = tmp_path / "d"
    folder.mkdir()
    bundle = folder / "b.json"
    bundle.write_text('{"resourceType":"Bundle","type":"collection","entry":[]}')
    (tmp_path / "link.json").symlink_to(bundle)
    extra = ["-o", str(tmp_path / "c.duckdb")] if command == "ingest" else []
    for names in ([bundle, bundle], [folder, bundle], [bundle, tmp_path / "link.json"]):
        args = [command, "--as-of", "2026-11-27", *extra, str(CURRENT), *map(str, names)]
        code, out = run(*args)
        assert code == 2 and "named more than once" in out, (names, out)


def test_a_closed_standard_error_is_no_internal_error(tmp_path: Path) -> None:
    """`critlang screen ... 2>&-`: Python starts with sys.stderr None; the command runs
    and prints its result (breaker7 F14: exit 70, 'NoneType' has no attribute 'isatty')."""
    import os

    data = str(_bundle(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "critlang", "screen", "--as-of", "2026-11-27", str(CURRENT), data],
        stdout=subprocess.PIPE,
        env=ENV,
        preexec_fn=lambda: os.close(2),  # a closed fd 2, as the shell gives with 2>&-
        check=False,
    )
    assert proc.returncode == 0
    assert b"patients screened" in proc.stdout


def test_every_file_of_a_data_folder_is_read_or_counted(tmp_path: Path, capsys) -> None:
    """b.JSON is JSON; a .gz or extensionless file is an unusable file with why, in the
    reading line and under `read` in --format json (breaker7 F16, F18)."""
    folder = tmp_path / "data"
    folder.mkdir()
    bundle = _bundle(tmp_path).read_bytes()
    (folder / "a.json").write_bytes(bundle)
    (folder / "b.JSON").write_bytes(bundle.replace(b'"p1"', b'"q1"'))
    (folder / "c.json.gz").write_bytes(b"\x1f\x8b")
    (folder / "notes").write_text("x")
    args = ["screen", "--as-of", "2026-11-27", "--format", "json", str(CURRENT), str(folder)]
    assert main(args) == 0
    read = json.loads(capsys.readouterr().out)["read"]
    assert read["files"] == 4 and read["patients"] == 2
    assert read["unusable_files"] == [
        {"path": str(folder / "c.json.gz"), "why": "compressed: not read (decompress it first)"},
        {
            "path": str(folder / "notes"),
            "why": "not read: only .json, .ndjson and .jsonl files of a folder are read",
        },
    ]


def test_an_output_never_overwrites_an_input(tmp_path: Path, capsys) -> None:
    """`--patients data.json` over the data file is refused before any work (breaker7
    F15), as are a missing folder and a table that is neither CSV nor JSON Lines."""
    data = _bundle(tmp_path)
    before = data.read_bytes()
    base = ["screen", "--as-of", "2026-11-27", str(CURRENT), str(data)]
    assert main([*base, "--patients", str(data)]) == 2
    assert data.read_bytes() == before
    assert "a file this command reads" in capsys.readouterr().err
    assert main([*base, "--report", str(CURRENT)]) == 2
    assert main([*base, "--patients", str(tmp_path / "no" / "x.csv")]) == 2
    assert not (tmp_path / "no").exists()
    assert main([*base, "--patients", str(tmp_path / "x.xlsx")]) == 2
    same = str(tmp_path / "x.csv")
    assert main([*base, "--patients", same, "--attrition", same]) == 2
    assert "is the --patients output" in capsys.readouterr().err


ANCHORED = """protocol "A"
  title "a protocol date"
  version "1"
  date 2024-01-01
anchor visit_1 "Visit 1"
fact hemoglobin: quantity g/dL
  measured within 14 days before visit_1
codes hemoglobin: loinc "718-7"
inclusion criteria
I1 "haemoglobin"
  rule hemoglobin >= 9 g/dL
"""


def test_screen_takes_protocol_dates_for_fhir_patients(tmp_path: Path, capsys) -> None:
    """FHIR data hold no protocol dates: `--anchor visit_1=...` gives them, in screen and
    in ingest (author7 F8: every criterion measured from visit 1 stayed unknown)."""
    protocol = tmp_path / "a.crit"
    protocol.write_text(ANCHORED)
    bundle = json.loads(_bundle(tmp_path).read_text())
    bundle["entry"].append(
        {
            "resource": {
                "resourceType": "Observation",
                "id": "h1",
                "status": "final",
                "subject": {"reference": "Patient/p1"},
                "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                "effectiveDateTime": "2024-03-10",
                "valueQuantity": {"value": 10, "unit": "g/dL"},
            }
        }
    )
    data = tmp_path / "b.json"
    data.write_text(json.dumps(bundle))
    out = tmp_path / "p.jsonl"
    base = ["screen", "--as-of", "2024-03-01", str(protocol), str(data), "--patients", str(out)]
    for anchor, status in [([], "unknown"), (["--anchor", "visit_1=2024-03-15"], "met"),
                           (["--anchor", "visit_1=2024-04-15"], "unknown")]:  # fmt: skip
        assert main([*base, *anchor]) == 0
        assert json.loads(out.read_text())["criteria"]["I1"] == status, anchor
    # ingest stores it (the SQL back end has no look-back from another anchor: the
    # window is measured from the screening date there)
    plain = tmp_path / "plain.crit"
    plain.write_text(ANCHORED.replace("  measured within 14 days before visit_1\n", ""))
    cohort = tmp_path / "c.duckdb"
    ingest = ["ingest", "--as-of", "2024-03-01", "--anchor", "visit_1=2024-03-15"]
    assert main([*ingest, str(plain), str(data), "-o", str(cohort)]) == 0
    import duckdb

    with duckdb.connect(str(cohort), read_only=True) as db:
        days = db.sql("select value from critlang_facts where fact = '@visit_1'").fetchall()
    assert days == [(float(dt.date(2024, 3, 15).toordinal()),)]
    capsys.readouterr()
    for bad, says in [
        ("visit_2=2024-03-15", "not an anchor of the protocol (its anchors: visit_1)"),
        ("visit_1=2024-02-30", "not a date"),
        ("visit_1", "write NAME=YYYY-MM-DD"),
        ("enrollment=2024-03-15", "use --as-of"),
    ]:
        assert main([*base, "--anchor", bad]) == 2
        assert says in capsys.readouterr().err


def test_a_byte_order_mark_is_ignored_in_json_and_ndjson(tmp_path: Path, capsys) -> None:
    """RFC 8259 section 8.1: a parser may ignore a UTF-8 BOM; Windows tools write one
    (breaker7 F17: the NDJSON file's first line was lost and the patient decided)."""
    bundle = json.loads(_bundle(tmp_path).read_text())
    patient = bundle["entry"][0]["resource"]
    for name, text in [
        ("b.json", json.dumps(bundle)),
        ("p.ndjson", json.dumps(patient) + "\n"),
    ]:
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + text.encode())
        assert (
            main(["screen", "--as-of", "2026-11-27", "--format", "json", str(CURRENT), str(path)])
            == 0
        )
        read = json.loads(capsys.readouterr().out)["read"]
        assert (read["patients"], read["unusable_files"], read["entry_problems"]) == (1, [], [])


def test_a_native_record_with_two_as_of_dates_is_refused(tmp_path: Path, capsys) -> None:
    """The evaluation date decides every window: two of them are a conflict, never the
    last by key order (breaker7 F6)."""
    path = tmp_path / "r.json"
    path.write_text('{"id": "x", "as_of": "2020-01-01", "as_of": "2026-11-27", "facts": {}}')
    main(["eval", str(CURRENT), str(path)])
    assert "two different `as_of` dates" in capsys.readouterr().err
