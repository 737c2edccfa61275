"""Breaker findings from a coordinator's reading of the CLI (issue 12): each is a regression."""

from __future__ import annotations

from pathlib import Path

import pytest

from critlang.cli import main
from helpers import TRIAL

CURRENT = TRIAL / "current.crit"


def test_test_command_given_a_protocol_says_it_is_not_an_example(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `critlang test current.crit` printed the JSON decoder's
    # "Expecting value: line 1 column 1 (char 0)"; it should say what to pass instead.
    code = main(["test", str(CURRENT)])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 1
    assert "Expecting value" not in text
    assert "criteria file, not an example patient" in text


def test_test_command_invalid_json_names_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"as_of": "2026-01-01",\n  "expect": }\n', encoding="utf-8")
    code = main(["test", str(bad)])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 1
    assert "not valid JSON (line 2, column" in text
    assert "char " not in text


def test_eval_given_a_protocol_as_patient_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    # `critlang eval current.crit current.crit` printed "not valid JSON: Expecting value:
    # line 1 column 1 (char 0)".
    main(["eval", str(CURRENT), str(CURRENT)])
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Expecting value" not in text
    assert "criteria file, not a patient record" in text


def test_eval_invalid_json_patient_names_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "p.json"
    bad.write_text('{"sex": "male",\n "age": }\n', encoding="utf-8")
    main(["eval", str(CURRENT), str(bad)])
    out = capsys.readouterr()
    text = out.out + out.err
    assert "not valid JSON (line 2, column" in text
    assert "(char " not in text


def test_funnel_draws_deceased_as_their_own_step() -> None:
    # screen --report on Synthea (as of 2021-03-31): 81 deceased patients were drawn as a drop
    # at I1 (390 -> 309) while I1's table row showed 0 not met; they need their own step.
    from critlang.report import _funnel

    rows = [{"criterion": "I1", "not_ruled_out": 309, "passed_so_far": 0}]
    svg = _funnel(rows, 390, deceased=81)
    assert "alive: 309 not ruled out" in svg
    assert svg.index("alive") < svg.index(">I1<")
    assert "alive" not in _funnel(rows, 309)
