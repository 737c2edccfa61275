"""The trial NCT05610826, both versions: clean, assumptions listed, units verified."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import pytest

from critlang.frontend import analyse_file, analyse_text
from helpers import TRIAL

FILES = ["current.crit", "previous.crit"]


@pytest.mark.parametrize("name", FILES)
def test_checks_clean_with_assumptions_as_warnings(name: str) -> None:
    a = analyse_file(TRIAL / name)
    assert a.ok, [(d.code, d.message) for d in a.diagnostics if d.is_error]
    codes = {d.code for d in a.diagnostics}
    assert codes == {"W001", "W102"}, codes
    # the therapies' kinds the protocol binds to codes are three of nine: FHIR data can
    # show only those (issue 12 item 3)
    (w102,) = [d.message for d in a.diagnostics if d.code == "W102"]
    assert w102 == (
        "`prior_therapies`: kinds chemotherapy, targeted_therapy, other_systemic, yttrium_90, "
        "tace, tae have no codes, while somatostatin_analogue, capecitabine, temozolomide do"
    )
    messages = " ".join(d.message for d in a.diagnostics)
    for topic in ("Ki-", "Krenning", "T-Bilirubin", "Older than 18", "majority"):
        assert topic in messages


def test_every_criterion_is_encoded() -> None:
    current = analyse_file(TRIAL / "current.crit").result
    previous = analyse_file(TRIAL / "previous.crit").result
    assert current and previous
    ids = [c.id for _, c in current.protocol.criteria]
    assert ids == [f"I{i}" for i in range(1, 7)] + [f"E{i}" for i in range(1, 18)]
    assert [c.id for _, c in previous.protocol.criteria] == ids
    h = current.protocol.header
    assert h is not None
    assert (h.identifier, h.sex, h.healthy_volunteers) == ("NCT05610826", "all", False)
    assert h.minimum_age is not None and h.minimum_age.text == "18 years"
    assert h.amendment_notes == ("Quality Unit language added", "editorial changes")
    assert h.amends == "1"


def test_versions_differ_only_in_i6_e2_e3() -> None:
    cur = analyse_file(TRIAL / "current.crit").result
    old = analyse_file(TRIAL / "previous.crit").result
    assert cur and old
    changed = {
        c1.id
        for (_, c1), (_, c2) in zip(cur.protocol.criteria, old.protocol.criteria, strict=True)
        if c1 != c2
    }
    assert changed == {"I6", "E2", "E3"}


def test_dual_unit_pairs_verified() -> None:
    r = analyse_file(TRIAL / "current.crit").result
    assert r is not None
    checks = {c.literal.primary.unit: c for c in r.dual_checks}
    hb = checks["mmol/L"]
    # 5.0 mmol/L of haemoglobin is 8.057 g/dL at 16114 g/mol: within the 1% tolerance
    assert hb.primary == Fraction(5) * Fraction(16114) / 10000
    assert hb.secondary == Fraction(8)
    assert Fraction(0) < hb.relative_difference < Fraction(1, 100)
    wbc = [c for c in r.dual_checks if c.literal.secondary.unit == "/mm3"]
    plt = [c for c in r.dual_checks if c.literal.secondary.unit == "x10^3/mm3"]
    assert len(wbc) == 1 and wbc[0].relative_difference == 0 and wbc[0].primary == 2
    assert len(plt) == 1 and plt[0].relative_difference == 0 and plt[0].primary == 75


def test_tight_tolerance_flags_haemoglobin() -> None:
    text = (TRIAL / "current.crit").read_text()
    text = text.replace("dual unit tolerance 1 %", "dual unit tolerance 0.5 %")
    a = analyse_text(text, str(TRIAL / "tight.crit"))
    assert [d.message for d in a.diagnostics if d.code == "W301"] == [
        "5.0 mmol/L and 8.0 g/dL differ by 0.71% (tolerance 0.5%)"
    ]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("rule liver_tumour_burden > 50 %", "rule liver_tumour_burden > 50 mg/dL"),
        ("rule creatinine_clearance < 50 mL/min", "rule creatinine_clearance < 50 mL/min/1.73m2"),
        ("platelets < 75 x10^9/L (75 x10^3/mm3)", "platelets < 75 g/L (75 x10^3/mm3)"),
        ("fact albumin: quantity g/dL", "fact albumin: quantity mmol/L"),
    ],
)
def test_unit_swap_in_trial_gives_one_clear_error(old: str, new: str) -> None:
    text = (TRIAL / "current.crit").read_text()
    assert text.count(old) == 1
    mutated = text.replace(old, new)
    a = analyse_text(mutated, str(TRIAL / "swapped.crit"))
    errors = [d for d in a.diagnostics if d.is_error]
    assert len(errors) == 1, [(d.code, d.message) for d in errors]
    (d,) = errors
    assert d.code in {"E302", "E304"}
    # the diagnostic points into the edited line
    line = mutated[: mutated.index(new)].count("\n") + 1
    assert d.span.line == line or "albumin" in old


def test_header_conflict_on_literal_reading_of_i5() -> None:
    text = (
        (TRIAL / "current.crit").read_text().replace("rule age >= 18 years", "rule age > 18 years")
    )
    a = analyse_text(text, str(TRIAL / "literal.crit"))
    (w,) = [d for d in a.diagnostics if d.code == "W201"]
    assert "aged exactly 18 years are left out" in w.message


def test_trial_files_name_sources_for_molar_masses() -> None:
    text = (TRIAL / "current.crit").read_text()
    for m in re.finditer(r"molar mass [^\n]*", text):
        assert 'source "' in m.group(0)


def test_files_exist() -> None:
    assert all((TRIAL / f).exists() for f in FILES)
    assert isinstance(TRIAL, Path)
