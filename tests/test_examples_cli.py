"""`critlang test`: the trial's examples pass; a wrong expectation fails with the details."""

from __future__ import annotations

import subprocess
import sys

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
