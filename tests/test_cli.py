from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from critlang.cli import main
from helpers import TRIAL


def run(*args: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "critlang", *args], capture_output=True, text=True, check=False
    )
    assert "Traceback" not in proc.stderr
    return proc.returncode, proc.stdout + proc.stderr


def test_check_trial_folder_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(TRIAL)]) == 0
    out = capsys.readouterr().out
    assert "checked 2 file(s): 0 errors," in out and out.rstrip().endswith("ok")


def test_strict_fails_on_assumptions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--strict", str(TRIAL / "current.crit")]) == 1
    assert "error W001" in capsys.readouterr().out


def test_errors_exit_1_with_code_frame(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.crit"
    f.write_text('fact crcl: quantity mL/min\ninclusion criteria\nI1 "x"\n  rule crcl < 50 mg/dL\n')
    assert main(["check", str(f)]) == 1
    out = capsys.readouterr().out
    assert f"{f}:4:15: error E302:" in out
    assert "4 |   rule crcl < 50 mg/dL" in out
    assert "  |               ^^^^^^^^ wrong dimension" in out


def test_json_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.crit"
    f.write_text('fact x: boolean\ninclusion criteria\nI1 "x"\n  rule y\n')
    assert main(["check", "--format", "json", str(f)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    codes = [(d["code"], d["line"], d["column"]) for d in data["diagnostics"]]
    assert ("E101", 4, 8) in codes
    assert data["diagnostics"][0]["title"]


def test_usage_and_io_problems_exit_2(tmp_path: Path) -> None:
    assert run("check", str(tmp_path / "missing.crit"))[0] == 2
    assert run("check", str(tmp_path))[0] == 2  # folder with no .crit files
    assert run("frobnicate")[0] == 2
    binary = tmp_path / "bin.crit"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    code, out = run("check", str(binary))
    assert code == 2 and "cannot read" in out


def test_empty_protocol_is_an_error_not_a_crash(tmp_path: Path) -> None:
    f = tmp_path / "empty.crit"
    f.write_text("# only a comment\n\n")
    code, out = run("check", str(f))
    assert code == 1 and "error E009: the file is empty" in out
    patient = TRIAL / "examples" / "ineligible_hb_8_0_g_dl.json"
    code, out = run("eval", str(f), str(patient))
    assert code == 1 and "ELIGIBLE" not in out
    # a library of code bindings is not a protocol either
    lib = tmp_path / "facts-only.crit"
    lib.write_text('protocol "X"\nfact hb: boolean\n')
    code, out = run("eval", str(lib), str(patient))
    assert code == 1 and "the protocol has no criteria" in out


def test_deterministic_output() -> None:
    assert run("check", str(TRIAL)) == run("check", str(TRIAL))
