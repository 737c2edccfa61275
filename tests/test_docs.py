from __future__ import annotations

import re

from critlang.diagnostics import CODES
from helpers import ROOT


def test_every_code_is_explained_once() -> None:
    text = (ROOT / "docs" / "errors.md").read_text()
    documented = re.findall(r"^## ([EW]\d{3}): (.+)$", text, re.M)
    assert [c for c, _ in documented] == sorted(CODES), "docs/errors.md and CODES differ"
    for code, title in documented:
        assert title == CODES[code], code


def test_the_plausibility_table_in_the_docs_is_the_one_the_reader_uses() -> None:
    from critlang.data.values import PLAUSIBLE

    text = (ROOT / "docs" / "patients.md").read_text()
    section = text.split("### Physiological plausibility", 1)[1].split("###", 1)[0]
    documented = {}
    for codes, limits, _ in re.findall(r"^\| ([0-9][^|]*) \| ([^|]+) \| (.+) \|$", section, re.M):
        for code in codes.split(", "):
            documented[code] = limits.strip()
    expected = {
        code: f"{p.low} to {p.high}{' ' + p.unit if p.unit else ''}"
        for code, p in PLAUSIBLE.items()
    }
    assert documented == expected
