"""`critlang render`: Markdown and one self-contained HTML page."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from critlang.frontend import analyse_file, analyse_text
from critlang.render import html_page, markdown
from helpers import ROOT, TRIAL, screenshot

CURRENT = analyse_file(TRIAL / "current.crit").result
assert CURRENT is not None


def test_markdown_has_every_criterion_text_and_assumption() -> None:
    md = markdown(CURRENT)
    for _, c in CURRENT.protocol.criteria:
        shown = c.text.replace("&", "&amp;").replace("<", "&lt;").replace("_", "\\_")
        assert f"### {c.id}\n\n> {shown}\n" in md
    assert "Haemoglobin is below 5.0 mmol/L (8.0 g/dL)" in md  # both units
    assert "Platelet count is below 75 x10^9/L (75 x10^3/mm3)" in md
    assert "is within 4 weeks before Planned start of PRRT (arm 2)" in md  # window in words
    assert md.count("⚠") == 4 + sum(len(c.assumptions) for _, c in CURRENT.protocol.criteria)
    assert "Applies only when:\n\n- arm is arm 2" in md


def test_markdown_escapes_raw_html_and_markup() -> None:
    text = (
        'protocol "X <b>"\n  title "a | b"\n'
        'fact x: boolean\n  label "<img src=x onerror=alert(1)>"\n'
        'inclusion criteria\nI1 "<script>alert(1)</script> & *bold* [link](http://e) `c`"\n'
        '  rule x\n  note "<iframe src=evil>"\n'
    )
    checked = analyse_text(text).result
    assert checked is not None
    md = markdown(checked)
    assert "<" not in md.replace("&lt;", "")  # no raw HTML reaches the page
    assert "> &lt;script>alert(1)&lt;/script> &amp; \\*bold\\* \\[link\\](http://e) \\`c\\`" in md
    assert "- &lt;img src=x onerror=alert(1)>" in md
    assert "*Note:* &lt;iframe src=evil>" in md
    assert "# X &lt;b>: a \\| b" in md


def test_committed_renderings_are_current() -> None:
    for version in ("current", "previous"):
        checked = analyse_file(TRIAL / f"{version}.crit").result
        assert checked is not None
        committed = (ROOT / "docs" / f"nct05610826-{version}.md").read_text()
        assert committed == markdown(checked), f"re-run critlang render for {version}"


def test_html_escapes_and_is_self_contained() -> None:
    text = 'fact x: boolean\ninclusion criteria\nI1 "<script>alert(1)</script> & more"\n  rule x\n'
    checked = analyse_text(text).result
    assert checked is not None
    page = html_page(checked)
    assert "<script>" not in page and "&lt;script&gt;" in page and "&amp; more" in page
    assert "http://" not in page and "https://" not in page and "src=" not in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed here")
def test_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    page, png = tmp_path / "trial.html", tmp_path / "trial.png"
    proc = subprocess.run(
        [sys.executable, "-m", "critlang", "render", str(TRIAL / "current.crit"), "-o", str(page)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    screenshot(page, png, tmp_path / "profile")
    assert png.exists() and png.stat().st_size > 20_000  # a page, not a blank image


def test_html_review_page_has_windows_dictionary_definitions_glance_and_provenance() -> None:
    import hashlib

    from critlang import __version__

    page = html_page(CURRENT)
    # at a glance: every criterion linked to its card
    for _, c in CURRENT.protocol.criteria:
        assert f'<a href="#{c.id}">{c.id}</a>' in page and f'id="{c.id}"' in page
    # look-back windows said where they apply
    e8 = page[page.index('id="E8"') : page.index('id="E9"')]
    assert "Haemoglobin: measured within 28 days before the enrollment date" in e8
    # data dictionary: label, unit, window, codes
    assert "<td>Haemoglobin<br><code>hemoglobin</code></td><td>quantity in g/dL</td>" in page
    assert "loinc 718-7" in page
    # definitions in words a clinician reads
    assert (
        "<b>cockcroft gault of (age, weight, creatinine, sex)</b> = (140 − age [years]) × "
        "weight [kg] ÷ (72 × creatinine [mg/dL]) × (0.85 if Sex is female, otherwise 1), "
        "in mL/min" in page
    )
    # provenance footer
    digest = hashlib.sha256((TRIAL / "current.crit").read_bytes()).hexdigest()
    assert f"SHA-256 <code>{digest}</code>" in page
    assert f"NCT05610826 version 2 of 2023-04-01, by critlang {__version__}" in page
    # print: each criterion kept whole
    assert ".crit,tr,.assume{break-inside:avoid}" in page
