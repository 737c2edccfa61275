"""`critlang test`: the trial's examples pass; a wrong expectation fails with the details."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, TRIAL


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "critlang", *args], capture_output=True, text=True, check=False
    )


def test_trial_examples_pass_with_full_coverage() -> None:
    proc = run("test", "--coverage", str(TRIAL))
    assert proc.returncode == 0, proc.stdout
    n = len(list((TRIAL / "examples").glob("*.json")))
    assert proc.stdout.rstrip().endswith(f"{n} passed, 0 failed")
    assert "90 of 90 clauses seen both true and false" in proc.stdout
    assert "never true" not in proc.stdout and "never false" not in proc.stdout


def test_wrong_expectation_names_criterion_and_values() -> None:
    proc = run("test", str(ROOT / "tests" / "fixtures" / "wrong-expectation"))
    assert proc.returncode == 1
    out = proc.stdout
    assert "FAIL " in out and out.rstrip().endswith("0 passed, 1 failed")
    assert "verdict: expected eligible, got ineligible" in out
    assert "E8: expected not met, got met" in out
    assert "decided by: platelets < 75 x10^9/L (75 x10^3/mm3)" in out
    assert "platelets = 60 x10^9/L on 2026-11-20" in out


def test_unrunnable_example_fails_cleanly(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"expect": {"verdict": "eligible"}, "as_of": "2026-11-27"}')
    proc = run("test", str(bad))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "cannot run this example" in proc.stdout


def _plain_copy(tmp_path: Path) -> Path:
    """protocols/nct01593293 copied into a folder outside any git work tree (its shared
    library import dropped: that library is outside the copy)."""
    if any((d / ".git").exists() for d in (tmp_path, *tmp_path.parents)):
        pytest.skip("the temporary folder is inside a git work tree")
    trial = tmp_path / "trial"
    shutil.copytree(ROOT / "protocols" / "nct01593293", trial)
    text = (trial / "current.crit").read_text()
    (trial / "current.crit").write_text(re.sub(r"(?m)^import .*$", "", text))
    return trial


def test_examples_outside_git_run_from_the_protocol_folder(tmp_path: Path) -> None:
    trial = _plain_copy(tmp_path)
    n = len(list((trial / "examples").glob("*.json")))
    for target in (trial, trial / "examples"):
        proc = run("test", str(target))
        assert proc.stdout.rstrip().endswith(f"{n} passed, 0 failed"), proc.stdout
    proc = run("test", str(trial / "examples" / "age_69.json"))
    assert proc.stdout.rstrip().endswith("1 passed, 0 failed"), proc.stdout


def test_example_outside_the_protocol_folder_says_what_to_do(tmp_path: Path) -> None:
    trial = _plain_copy(tmp_path)
    elsewhere = tmp_path / "other" / "examples"
    elsewhere.mkdir(parents=True)
    data = json.loads((trial / "examples" / "age_69.json").read_text())
    data["protocol"] = "../../trial/current.crit"
    (elsewhere / "age_69.json").write_text(json.dumps(data))
    proc = run("test", str(tmp_path / "other"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "outside the protocol's tree" in proc.stdout
    assert "run `critlang test` on a folder holding both" in proc.stdout
    assert "--library DIR" in proc.stdout
    # given the folder holding both, it runs (with the trial's own examples)
    proc = run("test", str(tmp_path))
    n = len(list((trial / "examples").glob("*.json")))
    assert proc.stdout.rstrip().endswith(f"{n + 1} passed, 0 failed"), proc.stdout
