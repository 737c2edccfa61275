"""Checker soundness found by a first-time protocol author (author6's findings 2, 7, 8, 9, 13).

Sub-day durations against calendar dates (E307), the header's sex (W201), whole-year ages
(no false W201), temperatures on two scales by absolute difference (W301), and the E304
hint on a list field.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from critlang.diagnostics import Diagnostic
from critlang.frontend import analyse_text

HEAD = 'protocol "X"\n  title "t"\n  version "1"\n  date 2024-01-01\n'


def diags(text: str) -> list[Diagnostic]:
    return analyse_text(HEAD + text, "x.crit").diagnostics


def found(text: str, code: str) -> list[Diagnostic]:
    return [d for d in diags(text) if d.code == code]


# ---------------------------------------------------------------- sub-day durations (E307)

WINDOW = 'fact t: date\ninclusion criteria\nI1 "x"\n  rule {rule}\n'


@pytest.mark.parametrize(
    ("rule", "whole", "shorter"),
    [
        ("t within 72 hours before enrollment", "3 days", "2 days"),
        ("t within 1 min before enrollment", "1 day", "0 days"),
        ("t within 0.5 days before enrollment", "1 day", "0 days"),
        ("t within 1.5 days before enrollment", "2 days", "1 day"),
        ("t within 48 h before enrollment", "2 days", "1 day"),  # whole days, still hours
        ("t within 30 s after enrollment", "1 day", "0 days"),
        ("t more than 36 h before enrollment", "2 days", "1 day"),
        ("t between 12 h and 3 days before enrollment", "1 day", "0 days"),
        ("t within 0.5 weeks before enrollment", "4 days", "3 days"),
    ],
)
def test_sub_day_windows_are_refused_with_whole_day_readings(
    rule: str, whole: str, shorter: str
) -> None:
    (d,) = found(WINDOW.format(rule=rule), "E307")
    assert "is not a whole number of days" in d.message
    assert f"write `{whole}` or `{shorter}`" in (d.hint or "")
    assert "`assumption`" in (d.hint or "")


def test_72_hours_hint_states_both_readings_in_hours() -> None:
    (d,) = found(WINDOW.format(rule="t within 72 hours before enrollment"), "E307")
    assert (d.span.line, d.span.column) == (8, 17)
    assert "may be up to 96 hours earlier" in (d.hint or "")
    assert "at most 72 hours" in (d.hint or "")


@pytest.mark.parametrize(
    "rule",
    [
        "t within 3 days before enrollment",
        "t within 2 weeks before enrollment",
        "t within 1 d before enrollment",
        "t within 6 months before enrollment",
        "t within 0 days before enrollment",
    ],
)
def test_whole_day_windows_stay_clean(rule: str) -> None:
    assert [d.code for d in diags(WINDOW.format(rule=rule)) if d.is_error] == []


def test_sub_day_look_back_is_refused() -> None:
    text = (
        "fact hb: quantity g/dL\n  measured within 36 h before enrollment\n"
        'inclusion criteria\nI1 "x"\n  rule hb > 8 g/dL\n'
    )
    (d,) = found(text, "E307")
    assert "look-back window" in d.message and (d.span.line, d.span.column) == (6, 19)
    text = text.replace("36 h", "1.5 months")
    (d,) = found(text, "E307")
    assert "whole number of months" in d.message
    assert found(text.replace("1.5 months", "2 days"), "E307") == []


# ---------------------------------------------------------------- the header's sex (W201)

SEX_FACT = "fact sex: enum {female, male}\n"


def sex_w201(rule: str, header: str = "female", section: str = "inclusion") -> list[str]:
    text = (
        f"  sex {header}\n{SEX_FACT}fact pregnant: boolean\n{section} criteria\n"
        f'C1 "x"\n  rule {rule}\n'
    )
    return [d.message for d in found(text, "W201")]


def test_header_sex_not_enforced_is_w201() -> None:
    (m,) = sex_w201("not pregnant")
    assert m == "the header's sex (female) is not enforced by any criterion"
    (m,) = sex_w201("not pregnant", header="male")
    assert m == "the header's sex (male) is not enforced by any criterion"


def test_header_sex_without_a_sex_fact_says_how_to_declare_it() -> None:
    text = '  sex female\nfact pregnant: boolean\ninclusion criteria\nI1 "x"\n  rule not pregnant\n'
    (d,) = found(text, "W201")
    assert (d.span.line, d.span.column) == (5, 3)
    assert "`rule sex = female`" in (d.hint or "")
    assert "fact sex: enum {female, male}" in (d.hint or "")


@pytest.mark.parametrize(
    ("rule", "section"),
    [
        ("sex = female", "inclusion"),
        ("female = sex and not pregnant", "inclusion"),
        ("sex != male", "inclusion"),
        ("sex in {female}", "inclusion"),
        ("sex not in {male}", "inclusion"),
        ("not (sex = male)", "inclusion"),
        ("sex = male", "exclusion"),
        ("pregnant or sex != female", "exclusion"),
    ],
)
def test_header_sex_enforced(rule: str, section: str) -> None:
    assert sex_w201(rule, section=section) == []


def test_header_sex_not_enforced_by_a_condition_or_an_alternative() -> None:
    # `or` in an inclusion lets men in; an `applies if` criterion does not hold for all
    assert len(sex_w201("sex = female or pregnant")) == 1
    assert len(sex_w201("sex = male and pregnant", section="exclusion")) == 1


def test_header_sex_contradicted() -> None:
    messages = sex_w201("sex = male")
    assert "C1 leaves out female patients, but the registry header says sex female" in messages
    messages = sex_w201("sex = female", section="exclusion")
    assert "C1 excludes female patients, but the registry header says sex female" in messages


def test_header_sex_all_needs_nothing() -> None:
    assert sex_w201("not pregnant", header="all") == []


# ---------------------------------------------------------------- whole-year ages (W201)

AGE = (
    "  minimum age 15 years\n  maximum age 26 years\nfact birth_date: date\n"
    "define age = elapsed_years(birth_date, enrollment)\n"
)


def age_w201(rule: str, section: str = "inclusion", define: str = AGE) -> list[str]:
    text = f'{define}{section} criteria\nC1 "age"\n  rule {rule}\n'
    return [d.message for d in found(text, "W201")]


@pytest.mark.parametrize(
    "rule",
    [
        "age > 14 years and age < 27 years",
        "age between 15 years and 26 years",
        "age >= 15 years and age <= 26 years",
        "age > 14.5 years and age < 26.5 years",
        "age >= 180 months and age < 324 months",
    ],
)
def test_whole_year_age_bounds_equal_to_the_header(rule: str) -> None:
    assert age_w201(rule) == []


def test_whole_year_exclusions_equal_to_the_header() -> None:
    assert age_w201("age <= 14 years or age >= 27 years", "exclusion") == []
    assert age_w201("age < 15 years or age > 26 years", "exclusion") == []


def test_whole_year_ages_still_catch_real_conflicts() -> None:
    (m,) = age_w201("age > 16 years and age <= 26 years")
    assert m.startswith("C1 requires age > 16 years, stricter than the header")
    (m,) = age_w201("age > 15 years and age <= 26 years")  # the boundary, said so
    assert "patients aged exactly 15 years are left out" in m
    (m,) = age_w201("age >= 15 years and age < 28 years")
    assert m.startswith("C1 allows ages the header excludes")
    # excluding under-14s leaves the header's 15 unenforced; `> 26` is the maximum
    (m,) = age_w201("age > 26 years or age < 14 years", "exclusion")
    assert m == "the header's minimum age (15 years) is not enforced by any inclusion criterion"


def test_fractional_age_fact_is_not_read_on_whole_years() -> None:
    # a recorded age may be 14.7 years: `age > 14` then differs from `age >= 15`
    fact = "  minimum age 15 years\n  maximum age 26 years\nfact age: quantity years\n"
    messages = age_w201("age > 14 years and age < 27 years", define=fact)
    assert len(messages) == 2 and all("allows ages the header excludes" in m for m in messages)


# ---------------------------------------------------------------- temperatures (W301)

TEMP = (
    "fact temperature: quantity {unit}\n"
    'exclusion criteria\nE1 "Fever"\n  rule temperature >= {pair}\n'
)


@pytest.mark.parametrize(
    ("unit", "pair", "warned"),
    [
        ("Cel", "38.0 Cel (101.0 [degF])", True),  # 38.33 Cel: another fever definition
        ("Cel", "38 Cel (101 [degF])", True),  # 0.33 Cel > half of 1 [degF] (0.28 Cel)
        ("Cel", "38.0 Cel (100.4 [degF])", False),  # exact
        ("Cel", "38.3 Cel (101 [degF])", False),  # IDSA: 0.03 Cel apart
        ("Cel", "38.3 Cel (101.0 [degF])", False),
        ("Cel", "37.8 Cel (100.0 [degF])", False),
        ("Cel", "38 Cel (100 [degF])", False),  # within 0.5 [degF], 100 is written to 1 degF
        ("Cel", "0.5 Cel (33 [degF])", False),  # near 0 Cel a relative test would fail
        ("Cel", "0.5 Cel (34.0 [degF])", True),
        ("[degF]", "100.4 [degF] (38.0 Cel)", False),
        ("[degF]", "101.0 [degF] (38.0 Cel)", True),
        ("Cel", "38.0 Cel (311.15 K)", False),
        ("Cel", "38.0 Cel (311.5 K)", True),
    ],
)
def test_temperature_pairs_compare_absolute_differences(unit: str, pair: str, warned: bool) -> None:
    w301 = found(TEMP.format(unit=unit, pair=pair), "W301")
    assert bool(w301) == warned, [d.message for d in w301]


def test_temperature_w301_message_gives_degrees() -> None:
    (d,) = found(TEMP.format(unit="Cel", pair="38.0 Cel (101.0 [degF])"), "W301")
    assert d.message == (
        "38.0 Cel and 101.0 [degF] differ by 0.33 Cel (tolerance for temperatures: 0.1 Cel)"
    )


def test_relative_tolerance_still_applies_to_other_units() -> None:
    text = 'fact weight: quantity kg\ninclusion criteria\nI1 "x"\n  rule weight < {pair}\n'
    assert found(text.format(pair="220 lb (99.79 kg)"), "W301") == []
    assert found(text.format(pair="220 lb (98 kg)"), "W301")


# ---------------------------------------------------------------- molar mass on a list (E304)

GLUCOSE = (
    "fact fpg: list of {value: quantity mg/dL, taken: date}\n"
    'exclusion criteria\nE1 "x"\n  rule at least 2 of fpg with (value > 240 mg/dL (13.3 mmol/L))\n'
)


def test_e304_on_a_list_field_gives_a_hint_that_can_be_followed() -> None:
    (d,) = found(GLUCOSE, "E304")
    assert "declare the analyte's molar mass on the fact" not in (d.hint or "")
    assert "a list's field has no molar mass" in (d.hint or "")
    assert "write the threshold in mg/dL only" in (d.hint or "")
    # following the hint checks clean
    assert [x.code for x in diags(GLUCOSE.replace(" (13.3 mmol/L)", ""))] == []


def test_molar_mass_on_a_list_says_why() -> None:
    text = GLUCOSE.replace(
        "taken: date}\n", 'taken: date}\n  molar mass 180.156 g/mol source "PubChem CID 5793"\n'
    )
    (d,) = found(text, "E201")
    assert d.message == "a list has no molar mass: only a quantity fact can have one"


def test_e304_on_a_fact_keeps_the_molar_mass_hint() -> None:
    text = 'fact glucose: quantity mg/dL\ninclusion criteria\nI1 "x"\n  rule glucose < 13 mmol/L\n'
    (d,) = found(text, "E304")
    assert "declare the analyte's molar mass on the fact" in (d.hint or "")


def test_an_age_at_consent_enforces_the_header() -> None:
    """The header's age limits hold for an age taken at another date (author7 F14:
    DAPA-CKD "aged >= 18 years at the time of consent"); a time since another date
    (years since diagnosis) is not an age."""
    at_consent = (
        "  minimum age 15 years\n  maximum age 26 years\nfact birth_date: date\n"
        'anchor consent "Consent"\n'
        "define age_at_consent = elapsed_years(birth_date, consent)\n"
    )
    rule = "age_at_consent >= 15 years and age_at_consent <= 26 years"
    assert age_w201(rule, define=at_consent) == []
    (m,) = age_w201("age_at_consent > 16 years and age_at_consent <= 26 years", define=at_consent)
    assert m.startswith("C1 requires age > 16 years, stricter than the header")
    since = at_consent.replace("birth_date", "diagnosis_date")
    rule = "age_at_consent >= 15 years and age_at_consent <= 26 years"
    assert len(age_w201(rule, define=since)) == 2  # not an age: both limits unenforced


def test_sex_and_birth_date_choose_reported_ranges_so_they_are_used() -> None:
    """W101 must not advise removing the facts that choose among a result's reported
    reference ranges (FHIR referenceRange.appliesTo / age; author7 F13)."""
    text = (
        "fact sex: enum {female, male}\nfact birth_date: date\n"
        "fact creat: quantity mg/dL\n  reference range reported\n"
        'codes sex: fhir "Patient.gender"\ncodes birth_date: fhir "Patient.birthDate"\n'
        'inclusion criteria\nI1 "creatinine"\n  rule creat <= 1.5 x ULN\n'
    )
    assert found(text, "W101") == []
    fixed = text.replace("  reference range reported\n", "").replace("1.5 x ULN", "1.5 mg/dL")
    names = sorted(d.message.split("`")[1] for d in found(fixed, "W101"))
    assert names == ["birth_date", "sex"]


def test_a_protocols_own_codes_replace_the_librarys(tmp_path: Path) -> None:
    """A library binding is a default: the protocol's own `codes egfr` (CKD-EPI) is not
    extended by the library's MDRD code (author7 F4); unbound facts keep the library's."""
    from critlang.frontend import analyse_file

    (tmp_path / "lib.crit").write_text('codes egfr: loinc "33914-3"\ncodes creat: loinc "2160-0"\n')
    proto = tmp_path / "p.crit"
    proto.write_text(
        HEAD
        + 'import "lib.crit"\nfact egfr: quantity mL/min/{1.73_m2}\nfact creat: quantity mg/dL\n'
        'codes egfr: loinc "62238-1"\n'
        'inclusion criteria\nI1 "x"\n  rule egfr >= 25 mL/min/{1.73_m2} and creat < 2 mg/dL\n'
    )
    checked = analyse_file(proto).result
    assert checked is not None and checked.ok, checked and checked.diagnostics
    bound = {f: [c.value for c in codes] for f, codes in checked.bindings.items()}
    assert bound == {"egfr": ["62238-1"], "creat": ["2160-0"]}
