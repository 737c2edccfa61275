"""`critlang lint`: each finding kind on a small protocol that triggers it and one that
does not; every witness re-checked by `critlang eval` (a subprocess, no --as-of)."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from critlang.frontend import analyse_text
from critlang.lint import SEVERITY, TITLES, lint
from helpers import ROOT, TRIAL

HEAD = 'protocol "T"\n  date 2024-05-01\n'


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "critlang", *args], capture_output=True, text=True, check=False
    )


def run_lint(tmp: Path, text: str, name: str = "p.crit") -> tuple[int, list[dict]]:
    path = tmp / name
    path.write_text(text)
    proc = cli("lint", str(path), "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    findings = json.loads(proc.stdout)
    for f in findings:
        if f["witness"] is not None:
            assert_shows(path, f)
    return proc.returncode, findings


def assert_shows(protocol: Path, finding: dict) -> None:
    """The witness, evaluated by `critlang eval` with its own as_of, shows the finding."""
    record = finding["witness"]
    wpath = protocol.parent / f"witness-{finding['code']}-{finding['line']}.json"
    wpath.write_text(json.dumps(record))
    proc = cli("eval", str(protocol), str(wpath), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (e,) = json.loads(proc.stdout)
    assert e["as_of"] == record["as_of"]
    statuses = {c["id"]: c["status"] for c in e["criteria"]}
    for cid, word in re.findall(r"(\b[IE]\d+) (met|not met)", finding["shows"]):
        assert statuses[cid] == word, (finding, statuses)
    verdict = re.search(r"verdict (\w+)", finding["shows"])
    assert verdict and e["verdict"] == verdict.group(1)


def codes(findings: list[dict]) -> list[str]:
    return [f["code"] for f in findings]


FACTS = """fact hb: quantity g/dL
fact platelets: quantity x10^9/L
fact ldl: quantity mg/dL
fact hba1c: quantity %
fact birth_date: date
fact sex: enum {female, male}
define age = elapsed_years(birth_date, enrollment)
"""


def protocol(inclusions: str, exclusions: str = "", header: str = "") -> str:
    text = HEAD + header + FACTS + "inclusion criteria\n" + inclusions
    if exclusions:
        text += "exclusion criteria\n" + exclusions
    return text


def test_unsatisfiable_protocol(tmp_path: Path) -> None:
    rc, found = run_lint(
        tmp_path,
        protocol('I1 "a"\n  rule hb < 10 g/dL\nI2 "b"\n  rule hb > 12 g/dL\n'),
    )
    assert rc == 1 and codes(found) == ["L101"]  # each can be met, not both
    assert found[0]["criteria"] == ["I1", "I2"] and found[0]["severity"] == "error"
    rc, found = run_lint(
        tmp_path, protocol('I1 "a"\n  rule hb < 12 g/dL\nI2 "b"\n  rule hb > 10 g/dL\n')
    )
    assert rc == 0 and found == []


def test_conditional_inclusion_never_met(tmp_path: Path) -> None:
    text = protocol('I1 "a"\n  applies if sex = female\n  rule hb < 10 g/dL and hb > 12 g/dL\n')
    rc, found = run_lint(tmp_path, text)
    assert rc == 1 and codes(found) == ["L102"] and found[0]["criteria"] == ["I1"]
    rc, found = run_lint(
        tmp_path, protocol('I1 "a"\n  applies if sex = female\n  rule hb > 10 g/dL\n')
    )
    assert rc == 0 and found == []


def test_exclusion_never_met(tmp_path: Path) -> None:
    inc = 'I1 "a"\n  rule platelets > 50 x10^9/L\n'
    rc, found = run_lint(tmp_path, protocol(inc, 'E1 "x"\n  rule hb < 5 g/dL and hb > 6 g/dL\n'))
    assert rc == 0 and codes(found) == ["L103"]  # a warning: exit 0 without --strict
    proc = cli("lint", str(tmp_path / "p.crit"), "--strict")
    assert proc.returncode == 1 and "L103 warning" in proc.stdout
    rc, found = run_lint(tmp_path, protocol(inc, 'E1 "x"\n  rule hb < 5 g/dL\n'))
    assert found == []


def test_redundant_exclusion(tmp_path: Path) -> None:
    inc = 'I1 "LDL below 190"\n  rule ldl < 190 mg/dL\n'
    _, found = run_lint(tmp_path, protocol(inc, 'E1 "LDL above 200"\n  rule ldl > 200 mg/dL\n'))
    assert codes(found) == ["L111"]
    assert found[0]["criteria"] == ["E1", "I1"]
    assert "already ineligible by I1" in found[0]["message"]
    assert "with and without E1 are equal" in found[0]["proof"]
    _, found = run_lint(tmp_path, protocol(inc, 'E1 "Anaemia"\n  rule hb < 8 g/dL\n'))
    assert found == []
    # an inclusion whose failures an exclusion all catches is redundant the other way
    _, found = run_lint(tmp_path, protocol(inc, 'E1 "LDL above 150"\n  rule ldl > 150 mg/dL\n'))
    assert [(f["code"], f["criteria"]) for f in found] == [("L111", ["I1", "E1"])]
    assert "every patient who fails it is already ineligible by E1" in found[0]["message"]


def test_overlapping_boundaries_ldl(tmp_path: Path) -> None:
    inc = 'I1 "LDL below 190"\n  rule ldl < 190 mg/dL\n'
    _, found = run_lint(tmp_path, protocol(inc, 'E1 "LDL above 189"\n  rule ldl > 189 mg/dL\n'))
    (f,) = [x for x in found if x["code"] == "L121"]
    assert "a patient at 189.5 mg/dL is both included by I1 and excluded by E1" in f["message"]
    assert f["witness"]["facts"]["ldl"] == {"value": 189.5, "unit": "mg/dL", "date": "2024-05-01"}
    assert f["shows"] == "I1 met, E1 met (verdict ineligible)"
    _, found = run_lint(tmp_path, protocol(inc, 'E1 "LDL above 160"\n  rule ldl > 160 mg/dL\n'))
    assert "L121" not in codes(found) and "L122" not in codes(found)  # far apart: deliberate


def test_near_miss_boundaries_hba1c(tmp_path: Path) -> None:
    inc = 'I1 "HbA1c below 8.0"\n  rule hba1c < 8.0 %\n'
    _, found = run_lint(tmp_path, protocol(inc, 'E1 "HbA1c above 8 %"\n  rule hba1c > 8 %\n'))
    (f,) = [x for x in found if x["code"] == "L122"]
    assert "a patient at exactly 8 % fails I1 but escapes E1" in f["message"]
    assert f["witness"]["facts"]["hba1c"]["value"] == 8
    assert f["shows"] == "I1 not met, E1 not met (verdict ineligible)"
    # the same boundary said twice (complementary) is no boundary finding
    _, found = run_lint(tmp_path, protocol(inc, 'E1 "HbA1c 8 % or more"\n  rule hba1c >= 8 %\n'))
    assert "L121" not in codes(found) and "L122" not in codes(found)


def test_dead_sub_clause(tmp_path: Path) -> None:
    rule = "hb < 10 g/dL or (hb < 10 g/dL and platelets < 100 x10^9/L)"
    _, found = run_lint(
        tmp_path, protocol('I1 "a"\n  rule ldl < 190 mg/dL\n', f'E1 "x"\n  rule {rule}\n')
    )
    dead = [f for f in found if f["code"] == "L131"]
    assert any("`hb < 10 g/dL and platelets < 100 x10^9/L`" in f["message"] for f in dead)
    rule = "hb < 10 g/dL or platelets < 100 x10^9/L"
    _, found = run_lint(
        tmp_path, protocol('I1 "a"\n  rule ldl < 190 mg/dL\n', f'E1 "x"\n  rule {rule}\n')
    )
    assert found == []


def test_no_proof_about_a_criterion_lint_does_not_model(tmp_path: Path) -> None:
    """A criterion the encoding cannot model (here: a sum of three 3-way conditionals) is
    one free status: no clause of it may be called dead (author7 F2: `cirrhosis` was
    "never affecting" a rule it decides), only L190 is said."""
    points = "\n".join(
        f"define p{i} = (1 if hb < {i} g/dL else (2 if hb <= {i + 1} g/dL else 3))"
        for i in (7, 8, 9)
    )
    text = protocol(
        'I1 "cirrhosis and a score of 5 or more"\n  rule cirrhosis and score >= 5\n'
    ).replace(
        "inclusion criteria",
        f"fact cirrhosis: boolean\n{points}\ndefine score = p7 + p8 + p9\ninclusion criteria",
    )
    _, found = run_lint(tmp_path, text)
    assert codes(found) == ["L190"], found
    assert "I1 is not modelled" in found[0]["message"]


def test_header_age_conflict_with_an_exclusion(tmp_path: Path) -> None:
    inc = 'I1 "adult"\n  rule age >= 18 years\n'
    header = "  minimum age 18 years\n"
    _, found = run_lint(tmp_path, protocol(inc, 'E1 "x"\n  rule age <= 18 years\n', header))
    (f,) = [x for x in found if x["code"] == "L141"]
    assert "no patient aged 18 years can be eligible: E1 rules them out" in f["message"]
    assert f["shows"] == "verdict ineligible" and f["witness"] is not None
    _, found = run_lint(tmp_path, protocol(inc, 'E1 "x"\n  rule age < 18 years\n', header))
    assert "L141" not in codes(found)


def test_header_sex_conflict(tmp_path: Path) -> None:
    header = "  sex female\n"
    _, found = run_lint(tmp_path, protocol('I1 "men"\n  rule sex = male\n', "", header))
    (f,) = [x for x in found if x["code"] == "L141"]
    assert "no female patient can be eligible: I1 rules them out" in f["message"]
    _, found = run_lint(tmp_path, protocol('I1 "women"\n  rule sex = female\n', "", header))
    assert found == []


def test_quantity_like_plain_number(tmp_path: Path) -> None:
    text = HEAD + 'fact weight: number\ninclusion criteria\nI1 "w"\n  rule weight > 50\n'
    _, found = run_lint(tmp_path, text)
    assert codes(found) == ["L151"] and "quantity usually reported in kg" in found[0]["message"]
    text = HEAD + 'fact inr: number\ninclusion criteria\nI1 "w"\n  rule inr < 1.5\n'
    _, found = run_lint(tmp_path, text)
    assert found == []


def test_trial_lints_clean_apart_from_real_findings() -> None:
    proc = cli("lint", str(TRIAL), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    got = sorted((Path(f["path"]).name, f["code"], tuple(f["criteria"])) for f in found)
    # E1 restates the negation of I2 (grade 3, poor differentiation or Ki-67 > 20 %);
    # E4 (all lesions without uptake) only excludes patients that fail I4 (a majority
    # of lesions with Krenning >= 2). Both are in the registry text.
    assert got == [
        ("current.crit", "L111", ("E1", "I2")),
        ("current.crit", "L111", ("E4", "I4")),
        ("previous.crit", "L111", ("E1", "I2")),
        ("previous.crit", "L111", ("E4", "I4")),
    ]


def test_every_code_is_documented() -> None:
    text = (ROOT / "docs" / "errors.md").read_text()
    documented = dict(re.findall(r"^## (L\d{3}): (.+)$", text, re.M))
    assert documented == TITLES
    for code, severity in SEVERITY.items():
        assert f"Severity: {severity}" in text.split(f"## {code}:")[1].split("\n## ")[0]
    lint_doc = (ROOT / "docs" / "lint.md").read_text()
    for code in TITLES:
        assert code in lint_doc


def test_library_and_bad_paths(tmp_path: Path) -> None:
    proc = cli("lint", str(ROOT / "protocols" / "lib"))
    assert proc.returncode == 0 and proc.stdout == ""
    proc = cli("lint", str(tmp_path / "missing.crit"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("limit", ["10", "12"])
def test_lint_api_is_deterministic(limit: str) -> None:
    text = protocol(f'I1 "a"\n  rule hb < {limit} g/dL\n', 'E1 "x"\n  rule hb > 11 g/dL\n')
    a = analyse_text(text, "p.crit").result
    first = [f.to_dict() for f in lint(a, dt.date(2024, 5, 1))]
    second = [f.to_dict() for f in lint(a, dt.date(2024, 5, 1))]
    assert first == second


def test_text_output_says_when_nothing_was_found(tmp_path: Path) -> None:
    """Silence would not tell the author that lint ran (author7 F18)."""
    path = tmp_path / "p.crit"
    path.write_text(protocol('I1 "a"\n  rule ldl < 190 mg/dL\n'))
    proc = cli("lint", str(path))
    assert (proc.returncode, proc.stdout) == (0, "no findings: 1 protocol linted\n"), proc.stderr
