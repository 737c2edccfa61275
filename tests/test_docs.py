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
