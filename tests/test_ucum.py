"""UCUM conformance against the official functional tests (in ../shared when present)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal
from fractions import Fraction

import pytest

from critlang.ucum import is_valid, ucum_unit
from critlang.units import UnitError, conversion_factor, describe
from helpers import SHARED

TESTS = SHARED / "data" / "ucum" / "UcumFunctionalTests.xml"
needs_shared = pytest.mark.skipif(
    not TESTS.exists(), reason=f"{TESTS} is absent (the shared data is not beside the project)"
)


def _cases(section: str) -> list[dict[str, str]]:
    root = ET.parse(TESTS).getroot()
    node = root.find(section)
    assert node is not None
    return [dict(c.attrib) for c in node.findall("case")]


def _significant(text: str) -> int:
    digits = text.lower().split("e")[0].replace("-", "").replace(".", "").lstrip("0")
    return max(1, len(digits))


def _agrees(got: Fraction, expected: str, value: str) -> bool:
    """Equal to the outcome at its significant figures, as far as the input carries them.

    An exact input ("1") is held to the outcome's figures up to double precision (15); a
    measured one ("6.3") to its own figures, as the file's note on precision asks.
    """
    exact = "." not in value and "e" not in value.lower()
    figures = min(_significant(expected), 15 if exact else _significant(value))
    rounded = f"{float(got):.{figures}g}"
    want = f"{float(Decimal(expected)):.{figures}g}"
    return Decimal(rounded) == Decimal(want)


@needs_shared
def test_validation_agreement() -> None:
    cases = _cases("validation")
    wrong = [(c["id"], c["unit"]) for c in cases if is_valid(c["unit"]) != (c["valid"] == "true")]
    agreement = 1 - len(wrong) / len(cases)
    print(f"UCUM validation: {len(cases) - len(wrong)}/{len(cases)} agree; differ: {wrong}")
    assert len(cases) == 529
    assert agreement >= 0.99, wrong


@needs_shared
def test_all_conversions() -> None:
    cases = _cases("conversion")
    failed = []
    for c in cases:
        src, dst = ucum_unit(c["srcUnit"]), ucum_unit(c["dstUnit"])
        k = conversion_factor(src, dst)
        if k is None or not _agrees(Fraction(c["value"]) * k, c["outcome"], c["value"]):
            failed.append((c["id"], c["srcUnit"], c["dstUnit"]))
    print(f"UCUM conversion: {len(cases) - len(failed)}/{len(cases)} pass; failed: {failed}")
    assert len(cases) == 30 and failed == []


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("10*3/uL", "a count per volume"),
        ("mL/min/{1.73_m2}", "a clearance per 1.73 m2 body surface"),
        ("mL/min", "a clearance (volume per time)"),
        ("[IU]/L", "an activity concentration (IU per volume)"),
        ("g/dL", "a mass concentration"),
        ("umol/L", "a substance concentration"),
        ("{cells}/uL", "a count per volume"),
    ],
)
def test_clinical_codes(code: str, words: str) -> None:
    assert describe(ucum_unit(code).dims) == words


def test_holes_closed() -> None:
    """International units stay apart from counts; per-BSA clearance from absolute."""
    assert conversion_factor(ucum_unit("[IU]/L"), ucum_unit("/L")) is None
    assert conversion_factor(ucum_unit("mL/min/{1.73_m2}"), ucum_unit("mL/min")) is None
    assert conversion_factor(ucum_unit("10*3/uL"), ucum_unit("10*9/L")) == 1
    assert not is_valid("10+3/ul")


def test_general_codes_through_ucumvert() -> None:
    mmhg = ucum_unit("mm[Hg]")
    assert float(conversion_factor(mmhg, ucum_unit("kPa"))) == pytest.approx(0.133322)
    with pytest.raises(UnitError):
        ucum_unit("furlongs/fortnight")
