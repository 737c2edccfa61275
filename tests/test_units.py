from __future__ import annotations

from fractions import Fraction

import pytest

from critlang.units import (
    UnitError,
    conversion_factor,
    describe,
    parse_unit,
    resolve_with_pint,
    table_atoms,
)


def value_in(value: str, src: str, dst: str, molar_mass: Fraction | None = None) -> Fraction:
    f = conversion_factor(parse_unit(src), parse_unit(dst), molar_mass)
    assert f is not None, (src, dst)
    return Fraction(value) * f


@pytest.mark.parametrize(
    ("value", "src", "dst", "expected"),
    [
        ("2000", "/mm3", "x10^9/L", "2"),  # WBC threshold of the trial, both ways exact
        ("75", "x10^3/mm3", "x10^9/L", "75"),  # platelets
        ("75", "x10^3/uL", "x10^9/L", "75"),
        ("75", "10*3/uL", "x10^9/L", "75"),  # UCUM spelling
        ("8.0", "g/dL", "g/L", "80"),
        ("1", "mg/dL", "mg/L", "10"),
        ("1", "mmol/L", "umol/L", "1000"),
        ("4", "weeks", "days", "28"),
        ("2", "years", "months", "24"),
        ("20", "%", "", "0.2"),
        ("1", "mL/min", "L/h", "0.06"),
    ],
)
def test_exact_conversions(value: str, src: str, dst: str, expected: str) -> None:
    dst_unit = dst or "%"
    if dst == "":
        assert Fraction(value) * parse_unit(src).factor == Fraction(expected)
    else:
        assert value_in(value, src, dst_unit) == Fraction(expected)


def test_equal_thresholds_compare_equal_exactly() -> None:
    a = Fraction(2000) * parse_unit("/mm3").factor
    b = Fraction(2) * parse_unit("x10^9/L").factor
    assert a == b and isinstance(a, Fraction)


def test_molar_mass_conversion_haemoglobin() -> None:
    # 8.0 g/dL of haemoglobin at 16114 g/mol (haem monomer) is 4.9646 mmol/L
    mmol = value_in("8.0", "g/dL", "mmol/L", Fraction(16114))
    assert mmol == Fraction(80, 16114) * 1000
    assert abs(float(mmol) - 4.9646) < 1e-4
    # and back
    assert value_in(str(float(mmol)), "mmol/L", "g/dL", Fraction(16114)) == pytest.approx(8.0)


def test_mass_and_substance_need_molar_mass() -> None:
    assert conversion_factor(parse_unit("mg/dL"), parse_unit("umol/L")) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("mL/min", "mL/min/1.73m2"),  # absolute vs BSA-normalised clearance
        ("IU/L", "g/L"),  # international units convert to nothing
        ("IU", ""),
        ("months", "days"),  # calendar vs fixed durations
        ("years", "weeks"),
        ("mg/dL", "mL/min"),
    ],
)
def test_distinct_dimensions(a: str, b: str) -> None:
    ub = parse_unit(b) if b else parse_unit("%")
    assert conversion_factor(parse_unit(a), ub) is None


def test_bsa_spellings_agree() -> None:
    u1, u2 = parse_unit("mL/min/1.73m2"), parse_unit("mL/min/{1.73_m2}")
    assert u1.dims == u2.dims and u1.factor == u2.factor
    assert describe(u1.dims) == "a clearance per 1.73 m2 body surface"


@pytest.mark.parametrize(
    ("text", "hint"), [("mgg/dL", "did you mean `mg`?"), ("mg//dL", ""), ("mg/", ""), ("/", "")]
)
def test_bad_units(text: str, hint: str) -> None:
    with pytest.raises(UnitError) as exc:
        parse_unit(text)
    if hint:
        assert exc.value.hint == hint


def test_unit_table_matches_pint() -> None:
    """The pre-resolved atom table (which saves importing pint) is pint's own answer."""
    from critlang.unit_table import ATOMS

    assert sorted(ATOMS) == table_atoms()
    for name, (num, den, dims) in ATOMS.items():
        assert resolve_with_pint(name) == (Fraction(num, den), dims), name


@pytest.mark.parametrize(
    "text",
    [
        "{Log_copies}/mL",
        "{Log_IU}/mL",
        "{log10copies}/mL",
        "log10 IU/mL",
        "Log IU/mL",
        "lg(copies)/mL",
    ],
)
def test_log_transformed_results_are_refused(text: str) -> None:
    """LOINC's [Log #/volume] viral loads: 4.3 {Log_copies}/mL is 10^4.3 copies/mL; as
    UCUM (an annotation is unity) it would read 4.3 /mL and pass `< 50 copies/mL`."""
    with pytest.raises(UnitError) as exc:
        parse_unit(text)
    assert "is a logarithm (log10) of a count" in exc.value.message


@pytest.mark.parametrize("text", ["copies/mL", "{copies}/mL", "{cells}/uL", "{catalogue}/mL"])
def test_count_annotations_are_counts(text: str) -> None:
    assert parse_unit(text).dims == parse_unit("/mL").dims
    assert value_in("50", text, "/L") == (50_000 if "mL" in text else 50_000_000)


@pytest.mark.parametrize(
    ("mc", "u"),
    [
        ("mcg/L", "ug/L"),
        ("mcmol/L", "umol/L"),
        ("/mcL", "/uL"),
        ("10*3/mcL", "10*3/uL"),
        ("x10^3/mcL", "x10^3/uL"),
        ("mcL-1", "uL-1"),
        ("mcg/dL", "ug/dL"),
    ],
)
def test_mc_is_micro_inside_any_unit(mc: str, u: str) -> None:
    """ISMP's `mc` for micro, documented for mcg/mcL/mcmol, inside a unit too (breaker7
    F19: mcg/L and /mcL were refused); shown as written."""
    a, b = parse_unit(mc), parse_unit(u)
    assert (a.factor, a.dims, a.text) == (b.factor, b.dims, mc)
