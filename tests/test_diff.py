"""`critlang diff`: classification, witnesses that really flip, proofs of no change."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from critlang.backends.python import compile_protocol
from critlang.data.records import read_record
from critlang.diff import diff, to_json
from critlang.frontend import analyse_file, analyse_text
from helpers import ROOT, TRIAL

AS_OF = dt.date(2023, 4, 1)
CURRENT_TEXT = (TRIAL / "current.crit").read_text()


def checked(text: str, name: str = "amended.crit"):
    a = analyse_text(text, str(TRIAL / name))
    assert a.ok and a.result is not None, [d.message for d in a.diagnostics if d.is_error]
    return a.result


def amend(old: str, new: str) -> object:
    assert CURRENT_TEXT.count(old) == 1, old
    return diff(checked(CURRENT_TEXT), checked(CURRENT_TEXT.replace(old, new)), AS_OF)


def assert_flips(result, old_checked, new_checked) -> None:
    """Every witness, re-evaluated here independently, really changes verdict."""
    co, cn = compile_protocol(old_checked), compile_protocol(new_checked)
    witnesses = [
        (w, want)
        for ch in [*result.changes, None]
        for e in [ch.effect if ch else result.overall]
        if e is not None
        for w, want in (
            (e.widening, ("ineligible", "eligible")),
            (e.narrowing, ("eligible", "ineligible")),
        )
        if w is not None
    ]
    assert witnesses
    for w, want in witnesses:
        got = tuple(
            c.evaluate(c.normalise(read_record(k, w.record, AS_OF)))[0]
            for k, c in ((old_checked, co), (new_checked, cn))
        )
        assert got == want


def test_trial_versions() -> None:
    old = analyse_file(TRIAL / "previous.crit").result
    new = analyse_file(TRIAL / "current.crit").result
    r = diff(old, new, AS_OF)
    by_id = {c.id: c for c in r.changes}
    assert set(by_id) == {"I6", "E2", "E3"}  # nothing else is reported as a change
    assert by_id["I6"].effect.classification == "both"
    assert "now only when arm = arm_2" in by_id["I6"].details
    assert any(
        "before enrollment` -> `end within 4 weeks before prrt_start`" in d
        for d in by_id["I6"].details
    )
    assert by_id["E2"].effect.classification == "widened"
    assert by_id["E3"].effect.classification == "widened"
    assert r.overall.classification == "both"
    assert r.notes == ["Quality Unit language added", "editorial changes"] and not r.warnings
    assert_flips(r, old, new)
    tace = by_id["E2"].effect.widening.record["facts"]["prior_therapies"]
    assert [t["kind"] for t in tace] == ["tace"] or [t["kind"] for t in tace] == ["tae"]


def test_tightened_threshold_narrows() -> None:
    r = amend("platelets < 75 x10^9/L (75 x10^3/mm3)", "platelets < 100 x10^9/L (100 x10^3/mm3)")
    (ch,) = r.changes
    assert ch.id == "E8" and ch.effect.classification == "narrowed"
    assert (
        "platelets threshold 75 x10^9/L (75 x10^3/mm3) -> 100 x10^9/L (100 x10^3/mm3)" in ch.details
    )
    new = checked(
        CURRENT_TEXT.replace(
            "platelets < 75 x10^9/L (75 x10^3/mm3)", "platelets < 100 x10^9/L (100 x10^3/mm3)"
        )
    )
    assert_flips(r, checked(CURRENT_TEXT), new)
    platelets = float(ch.effect.narrowing.record["facts"]["platelets"]["value"])
    assert 75 <= platelets < 100


def test_equal_threshold_in_other_unit_is_proven_unchanged() -> None:
    r = amend("platelets < 75 x10^9/L (75 x10^3/mm3)", "platelets < 75000/mm3")
    (ch,) = r.changes
    assert ch.kind == "rewritten" and ch.effect.classification == "unchanged"
    assert ch.effect.proof.startswith("proven by z3")
    assert any("(the same value in another unit)" in d for d in ch.details)
    assert r.overall.classification == "unchanged" and r.overall.widening is None


def test_moved_window_both_ways() -> None:
    r = amend(
        "end within 12 months before enrollment)",
        "end within 6 months before enrollment)",
    )
    (ch,) = r.changes
    assert ch.id == "E3" and ch.effect.classification == "widened"
    assert any("window" in d for d in ch.details)


def test_reordered_and_reformatted_is_no_change() -> None:
    e5 = (
        'E5 "Liver tumor burden > 50% (as defined by CT or MRI)"\n'
        "  rule liver_tumour_burden > 50 %\n"
    )
    e14 = (
        'E14 "Prior external-beam radiation to more than 25% of the bone marrow."\n'
        "  rule bone_marrow_irradiated > 25 %\n"
    )
    assert e5 in CURRENT_TEXT and e14 in CURRENT_TEXT
    moved = CURRENT_TEXT.replace(e5, "").replace(
        e14, e14 + "\n" + e5.replace(" > 50 %", "   >   50 %")
    )
    r = diff(checked(CURRENT_TEXT), checked(moved), AS_OF)
    assert r.changes == [] and r.overall.classification == "unchanged"


def test_reworded_text_only() -> None:
    r = amend('E12 "Pregnancy or lactation."', 'E12 "Pregnant or breastfeeding."')
    (ch,) = r.changes
    assert ch.kind == "reworded" and ch.effect is None


def test_added_and_removed_and_editorial_warning() -> None:
    text = CURRENT_TEXT.replace('  amendment note "Quality Unit language added"\n', "").replace(
        'E17 "No signed informed consent."\n  rule not informed_consent_signed\n', ""
    )
    r = diff(checked(CURRENT_TEXT), checked(text), AS_OF)
    (ch,) = r.changes
    assert (ch.id, ch.kind, ch.effect.classification) == ("E17", "removed", "widened")
    assert any("editorial changes only" in w for w in r.warnings)
    assert any("amends version 1, but the old file is version 2" in w for w in r.warnings)


def test_cli_text_json_and_git(tmp_path: Path) -> None:
    args = [
        sys.executable,
        "-m",
        "critlang",
        "diff",
        str(TRIAL / "previous.crit"),
        str(TRIAL / "current.crit"),
    ]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "whole protocol: both widens and narrows" in proc.stdout
    proc = subprocess.run(
        [*args, "--format", "json", "--witnesses", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    data = json.loads(proc.stdout)
    assert [c["id"] for c in data["changes"]] == ["I6", "E2", "E3"]
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [
        "E2-gains.json",
        "E2-now-undetermined.json",
        "E3-gains.json",
        "I6-gains.json",
        "I6-loses.json",
        "I6-now-decided.json",
        "I6-now-undetermined.json",
    ]
    # each witness file reproduces its move with `critlang eval` and no --as-of
    for path in sorted(tmp_path.glob("*.json")):
        record = json.loads(path.read_text())
        assert record["as_of"] == "2023-04-01"
        got = []
        for version in ("previous.crit", "current.crit"):
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "critlang",
                    "eval",
                    str(TRIAL / version),
                    str(path),
                    "--format",
                    "json",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            got.append(json.loads(out.stdout)[0]["verdict"])
        moves = {
            "gains": [["ineligible", "eligible"]],
            "loses": [["eligible", "ineligible"]],
            "now-undetermined": [["eligible", "undetermined"], ["ineligible", "undetermined"]],
            "now-decided": [["undetermined", "eligible"], ["undetermined", "ineligible"]],
        }[path.stem.split("-", 1)[1]]
        assert got in moves, (path.name, got)
    same = subprocess.run(
        [
            sys.executable,
            "-m",
            "critlang",
            "diff",
            f"{TRIAL / 'current.crit'}@HEAD",
            str(TRIAL / "current.crit"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if "not a git repository" in same.stderr:
        pytest.skip("not inside a git checkout")
    assert same.returncode == 0, same.stderr
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "critlang",
            "diff",
            f"{TRIAL / 'current.crit'}@no-such-rev",
            str(TRIAL / "current.crit"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_json_shape() -> None:
    r = amend("platelets < 75 x10^9/L (75 x10^3/mm3)", "platelets < 100 x10^9/L (100 x10^3/mm3)")
    data = to_json(r)
    assert data["overall"]["classification"] == "narrowed"
    assert data["changes"][0]["effect"]["narrowing_witness"]["facts"]


def test_impact_on_a_small_cohort(tmp_path: Path) -> None:
    def bundle(pid: str, meds: list[dict]) -> dict:
        patient = {
            "resourceType": "Patient",
            "id": pid,
            "birthDate": "1960-01-01",
            "gender": "male",
        }
        return {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in (patient, *meds)],
        }

    capecitabine = {
        "resourceType": "MedicationStatement",
        "id": "m1",
        "status": "completed",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.whocc.no/atc", "code": "L01BC06"}]
        },
        "subject": {"reference": "Patient/a"},
        "effectivePeriod": {"start": "2023-01-01", "end": "2023-06-01"},
    }
    (tmp_path / "a.json").write_text(json.dumps(bundle("a", [capecitabine])))
    (tmp_path / "b.json").write_text(json.dumps(bundle("b", [])))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "critlang",
            "impact",
            "--as-of",
            "2026-01-15",
            "--format",
            "json",
            str(TRIAL / "previous.crit"),
            str(TRIAL / "current.crit"),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["patients"] == 2 and data["unchanged"] == 1
    assert data["changes"] == [
        {"from": "ineligible", "to": "undetermined", "count": 1, "patients": ["a"]}
    ]
    assert data["criteria"]["E3"] == ["a"]


def test_renamed_criterion() -> None:
    r = amend('E15 "Current spontaneous', 'E18 "Current spontaneous')
    (ch,) = r.changes
    assert (ch.id, ch.kind, ch.new_id) == ("E15", "renamed", "E18")
    assert r.overall.classification == "unchanged"


def test_change_masked_by_other_criteria() -> None:
    """E1's Ki-67 cut-off moved to 25%: patients at 20-25% are still kept out by I2."""
    r = amend("or ki67 > 20 %", "or ki67 > 25 %")
    (ch,) = r.changes
    assert (ch.id, ch.kind, ch.effect.classification) == ("E1", "changed", "unchanged")
    assert "ki67 threshold 20 % -> 25 %" in ch.details
    assert any("no patient's verdict changes" in d for d in ch.details)


def test_a_new_version_number_alone_is_unchanged_without_a_proof_search() -> None:
    # author8 F8: a no-op amendment ran for minutes on list windows from an anchor
    r = amend('version "', 'version "9.')
    assert r.changes == [] and r.overall.unchanged
    assert r.overall.proof == "the rules, definitions, facts, codes and header match"
    # a changed label is not such a match: the whole protocol is proven unchanged instead
    label = CURRENT_TEXT.split('label "', 1)[1].split('"', 1)[0]
    r = amend(f'label "{label}"', f'label "{label} (relabelled)"')
    assert (
        r.overall.unchanged
        and r.overall.proof != "the rules, definitions, facts, codes and header match"
    )
