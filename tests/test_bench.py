"""The benchmark scripts run (on a small sample); their timings are not asserted here."""

from __future__ import annotations

import sys

from helpers import ROOT

sys.path.insert(0, str(ROOT / "bench"))


def test_eval_benchmark_runs(capsys) -> None:
    import bench_eval

    figures = bench_eval.main(n=200, interpreted=20, rounds=1)
    out = capsys.readouterr().out
    assert "a/b = " in out and "c/a = " in out
    assert set(figures) == {"a", "b", "c", "a/b", "c/a"}


def test_coldstart_benchmark_runs(capsys) -> None:
    import bench_coldstart

    figures = bench_coldstart.main(runs=1)
    out = capsys.readouterr().out
    assert "critlang eval / python -c pass = " in out and "target <= 0.15 s" in out
    assert figures["critlang eval"] > figures["python -c pass"] > 0
    assert {"ratio", "cpu ratio", "python -c 'import json'"} <= set(figures)


def test_handwritten_baseline_matches_compiled_on_examples() -> None:
    import datetime as dt
    import json

    from handwritten import evaluate

    from critlang.backends.python import compile_protocol
    from critlang.data.records import read_record
    from critlang.frontend import analyse_file

    checked = analyse_file(ROOT / "protocols" / "nct05610826" / "current.crit").result
    compiled = compile_protocol(checked)
    for path in sorted((ROOT / "protocols" / "nct05610826" / "examples").glob("*.json")):
        data = json.loads(path.read_text())
        f = compiled.normalise(read_record(checked, data, dt.date.fromisoformat(data["as_of"])))
        assert evaluate(f) == compiled.evaluate(f)[0], path


def test_screen_benchmark_runs(capsys) -> None:
    import bench_screen
    import pytest

    if not bench_screen.DATA.exists():
        pytest.skip(f"{bench_screen.DATA} is absent (the shared data is not beside the project)")
    figures = bench_screen.main(rounds=1)
    assert "ratio = " in capsys.readouterr().out
    assert set(figures) == {"load", "screen", "ratio", "single", "single_ratio"}
