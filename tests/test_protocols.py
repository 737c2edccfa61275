"""Every protocol under protocols/: checks clean, and every example patient gives its
expected verdict and statuses with the compiled evaluator, agreed by the reference
interpreter (issue 10 item 7: the real trials that exercise the language's forms)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from critlang.backends.python import compile_protocol
from critlang.backends.runtime import NA
from critlang.data.records import read_record
from critlang.evaluate import Evaluator
from critlang.frontend import analyse_file
from critlang.interpreter import Interpreter
from helpers import ROOT

PROTOCOLS = sorted(p.parent for p in (ROOT / "protocols").glob("*/current.crit"))
EXAMPLES = sorted(
    (proto, ex) for proto in PROTOCOLS for ex in sorted((proto / "examples").glob("*.json"))
)
WORDS = {True: "met", False: "not met", None: "unknown"}


def test_six_trials_from_different_fields() -> None:
    ids = {p.name for p in PROTOCOLS}
    assert {
        "nct05610826",  # oncology (PanNET, PRRT)
        "nct01206062",  # cardiology (SPRINT)
        "nct02084004",  # endocrinology (type 2 diabetes)
        "nct05471050",  # haematology (ITP)
        "nct00995904",  # paediatrics (asthma)
        "nct01593293",  # oncology (elderly NSCLC)
    } <= ids
    for proto in PROTOCOLS:
        assert len(list((proto / "examples").glob("*.json"))) >= 10, proto.name


_cache: dict[Path, tuple] = {}


def _protocol(proto: Path):
    if proto not in _cache:
        analysis = analyse_file(proto / "current.crit")
        assert analysis.result is not None and analysis.ok, [
            str(d) for d in analysis.diagnostics if d.is_error
        ]
        compiled = compile_protocol(analysis.result)
        _cache[proto] = (analysis.result, Evaluator(compiled))
    return _cache[proto]


@pytest.mark.parametrize("proto", PROTOCOLS, ids=[p.name for p in PROTOCOLS])
def test_protocol_checks_clean(proto: Path) -> None:
    analysis = analyse_file(proto / "current.crit")
    errors = [d for d in analysis.diagnostics if d.is_error]
    assert not errors
    # every warning is an author's assumption, not a problem left behind; but the trial
    # binds codes for three of its nine therapy kinds, a gap W102 keeps in view (the others
    # have no code this repository can cite; tests/test_trial.py names them)
    allowed = {"W001", "W102"} if proto.name == "nct05610826" else {"W001"}
    assert {d.code for d in analysis.diagnostics} <= allowed


@pytest.mark.parametrize(
    "proto, example", EXAMPLES, ids=[f"{p.name}/{e.stem}" for p, e in EXAMPLES]
)
def test_example(proto: Path, example: Path) -> None:
    checked, evaluator = _protocol(proto)
    data = json.loads(example.read_text())
    record = read_record(checked, data, dt.date.fromisoformat(data["as_of"]), str(example))
    result = evaluator.evaluate(record)
    expect = data["expect"]
    assert result.verdict == expect["verdict"]
    statuses = result.statuses()
    for cid, status in expect["criteria"].items():
        assert statuses[cid] == status, cid
    if result.per_arm:
        return
    verdict, raw, _ = Interpreter(checked).run(record)
    assert verdict == result.verdict
    words = ["not applicable" if s is NA else WORDS[s] for s in raw]
    assert words == [c.status for c in result.criteria]
