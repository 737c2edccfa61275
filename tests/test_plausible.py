"""Values a protocol declares impossible, a plain number's reference range, volume fractions.

- A fact's `plausible LOW..HIGH` applies to recorded values (after unit or scale
  conversion): a value outside it is a per-fact diagnostic and unknown, and may hide an
  older value (the "may be the newest" rule), never a verdict. HbA1c "53 %" is an IFCC
  mmol/mol value labelled %.
- `inr <= 1.5 x ULN`: a number's reported reference range (native `reference_range`, FHIR
  referenceRange with a unit-1 quantity) is read.
- A volume fraction is a plain ratio (UCUM: L = dm3, so L/L = 1): haematocrit 0.32 L/L
  is 32 %.

Each case runs through both Python evaluators (compiled and reference interpreter), from
native records and from FHIR, and the SQL back end (DuckDB, facts and values forms) gives
the same statuses.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from critlang.backends.sql import compile_sql
from critlang.backends.sql.engines import DuckDB
from critlang.backends.sql.values import Layout
from critlang.data.fhir import Extractor, Tally, read_fhir
from critlang.data.ingest import ingest_records
from critlang.data.records import read_record
from critlang.evaluate import Evaluator
from critlang.frontend import analyse_text
from helpers import TwoEvaluators, write_fhir

AS_OF = dt.date(2026, 11, 27)
IFCC = "IFCC-NGSP master equation (Hoelzel W et al., Clin Chem 2004;50:166-74)"
PROTOCOL = f"""\
fact hba1c: quantity %
  plausible 3..20 %
  convert mmol/mol to % as 0.09148 x + 2.152 source "{IFCC}"
fact weight: quantity kg
  plausible 20..300 kg
fact inr: number
  plausible 0.5..20
  reference range reported
fact hematocrit: quantity %

codes hba1c: loinc "4548-4"
codes weight: loinc "29463-7"
codes inr: loinc "6301-6"
codes hematocrit: loinc "4544-3"

inclusion criteria
H1 "HbA1c 7-10 %"
  rule hba1c between 7 % and 10 %
W1 "weight below 150 kg"
  rule weight < 150 kg
N1 "INR <= 1.5 x ULN"
  rule inr <= 1.5 x ULN
N2 "INR within the normal range"
  rule inr within normal range
C1 "Haematocrit at least 30 %"
  rule hematocrit >= 30 %
"""
BOTH = TwoEvaluators(PROTOCOL, "plausible.crit")
CHECKED, COMPILED = BOTH.checked, BOTH.compiled
WORDS = {True: "met", False: "not met", None: "unknown"}


def statuses(facts: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Per criterion, the status both Python evaluators give (asserted equal), and the
    record's problems as "fact: message"."""
    record = read_record(CHECKED, {"facts": facts}, AS_OF)
    _, compiled = BOTH.statuses(record)
    out = {i: WORDS[s] for i, s in zip(BOTH.ids, compiled, strict=True)}
    return out, [f"{p.fact}: {p.message}" for p in record.problems]


def q(value: Any, unit: str | None = None, date: str = "2026-11-20", **more: Any) -> dict:
    entry = {"value": value, "date": date, **more}
    if unit is not None:
        entry["unit"] = unit
    return entry


# ---------------------------------------------------------------------- plausible ranges
@pytest.mark.parametrize(
    ("entry", "expected", "words"),
    [
        (q(7.5, "%"), "met", None),
        (q(20, "%"), "not met", None),  # the range's ends are plausible
        (q(3, "%"), "not met", None),
        (q(53, "%"), "unknown", "53 % is outside the plausible range the protocol declares "
         "for hba1c (3..20 %); a value in mmol/mol labelled %?"),
        (q("20.5", "%"), "unknown", "outside the plausible range"),
        (q("2.9", "%"), "unknown", "outside the plausible range"),
        (q(20, "%", comparator=">"), "unknown", "> 20 % is outside"),  # every value it allows
        (q("3.5", "%", comparator="<"), "not met", None),  # 3.2 % is plausible
        (q(58, "mmol/mol"), "met", None),  # 7.45784 %
        (q(530, "mmol/mol"), "unknown", "hba1c: 530 mmol/mol (= 50.6364 %) is outside the "
         "plausible range the protocol declares for hba1c (3..20 %)"),  # an IFCC typo
        (q("6.9", "mmol/mol"), "unknown", "6.9 mmol/mol (= 2.783212 %) is outside"),
    ],
)  # fmt: skip
def test_declared_plausible_range_of_a_quantity(entry, expected, words) -> None:
    got, problems = statuses({"hba1c": entry})
    assert got["H1"] == expected
    hba1c = [p for p in problems if p.startswith("hba1c:")]
    if words is None:
        assert hba1c == []
    else:
        assert len(hba1c) == 1 and words in hba1c[0], hba1c
        assert ("labelled" in hba1c[0]) == (entry.get("unit") == "%")


def test_plausible_range_applies_after_unit_conversion() -> None:
    got, problems = statuses({"weight": q(800, "[lb_av]")})  # 362.87 kg
    assert got["W1"] == "unknown"
    assert problems == [
        "weight: 800 [lb_av] (= 362.873896 kg) is outside the plausible range the "
        "protocol declares for weight (20..300 kg)"
    ]
    assert statuses({"weight": q(300, "lb")})[0]["W1"] == "met"  # 136.08 kg
    assert statuses({"weight": q(330, "lb")})[0]["W1"] == "met"  # 149.685 kg
    assert statuses({"weight": q(331, "lb")})[0]["W1"] == "not met"  # 150.139 kg
    assert statuses({"weight": q(40, "g")})[0]["W1"] == "unknown"  # 0.04 kg: a unit slip


def test_plausible_range_of_a_plain_number() -> None:
    got, problems = statuses({"inr": q(45, reference_range={"low": 0.8, "high": 1.2})})
    assert got["N1"] == got["N2"] == "unknown"
    assert problems == [
        "inr: 45 is outside the plausible range the protocol declares for inr (0.5..20)"
    ]


def test_an_implausible_newest_value_hides_the_older_one() -> None:
    """The same "may be the newest" rule as any unusable value: the older 7.5 % does not
    decide in place of the newer 53 %; an implausible older value hides nothing."""
    newest_bad = [q(53, "%", "2026-11-20"), q(7.5, "%", "2026-10-01")]
    got, problems = statuses({"hba1c": newest_bad})
    assert got["H1"] == "unknown"
    assert any("may be the newest" in p for p in problems), problems
    older_bad = [q(53, "%", "2026-10-01"), q(7.5, "%", "2026-11-20")]
    got, problems = statuses({"hba1c": older_bad})
    assert got["H1"] == "met"
    assert [p for p in problems if "may be the newest" in p] == []


# ---------------------------------------------------------------------- a number's range
@pytest.mark.parametrize(
    ("value", "rr", "n1", "n2"),
    [
        (1.0, {"low": 0.8, "high": 1.2}, "met", "met"),
        ("1.8", {"low": 0.8, "high": 1.2}, "met", "not met"),  # 1.5 x 1.2 is 1.8 exactly
        ("1.81", {"low": 0.8, "high": 1.2}, "not met", "not met"),
        (1.0, {"low": 0.8, "high": 1.2, "unit": "{INR}"}, "met", "met"),
        (1.0, {"high": 1.1, "unit": "1"}, "met", "met"),
        ("0.7", {"low": 0.8, "high": 1.2, "unit": "INR"}, "met", "not met"),
        (1.0, None, "unknown", "unknown"),  # no range reported: no ULN, never guessed
    ],
)
def test_reference_range_of_a_number(value, rr, n1, n2) -> None:
    entry = q(value) if rr is None else q(value, reference_range=rr)
    got, problems = statuses({"inr": entry})
    assert (got["N1"], got["N2"]) == (n1, n2)
    assert problems == []


def test_a_number_range_in_another_unit_is_not_its_range() -> None:
    """A range in seconds is a prothrombin time's, not the INR's: the limits are unknown."""
    got, problems = statuses(
        {"inr": q(1.0, reference_range={"low": 11, "high": 13.5, "unit": "s"})}
    )
    assert (got["N1"], got["N2"]) == ("unknown", "unknown")
    assert problems == [
        "inr: the reference range's unit 's' is not a plain number like the value: the "
        "reference limits are unknown"
    ]


def test_reference_ranges_of_a_number_told_apart_by_sex() -> None:
    ranges = [
        {"low": 0.8, "high": 1.1, "applies_to": ["female"]},
        {"low": 0.8, "high": 1.3, "applies_to": ["male"]},
    ]
    # the protocol binds no Patient.gender: neither range is surely this patient's, so
    # the limits are unknown (1.7 is <= 1.5 x 1.3 but not <= 1.5 x 1.1), as for a quantity
    got, problems = statuses({"inr": q("1.7", reference_range=ranges)})
    assert got["N1"] == "unknown"
    assert any("reference range may not be this patient's" in p for p in problems), problems
    got, _ = statuses({"inr": q("1.6", reference_range=ranges)})
    assert got["N1"] == "unknown"


# ---------------------------------------------------------------------- volume fractions
@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        ("0.32", "L/L", "met"),  # 32 %
        ("0.29", "L/L", "not met"),
        (300, "mL/L", "met"),  # 30 %
        (29, "mL/dL", "not met"),
        ("0.3", "1", "met"),
    ],
)
def test_volume_fraction_is_a_plain_ratio(value, unit, expected) -> None:
    got, problems = statuses({"hematocrit": q(value, unit)})
    assert got["C1"] == expected
    assert problems == []


@pytest.mark.parametrize(
    ("unit", "words"),
    [
        ("mmol/mol", "a substance fraction (like mmol/mol)"),  # another clinical scale
        ("mg/g", "a mass ratio (like mg/g)"),
        ("s/s", "a ratio of like quantities (time)"),
    ],
)
def test_other_ratios_of_like_quantities_stay_refused(unit: str, words: str) -> None:
    got, problems = statuses({"hematocrit": q(320, unit)})
    assert got["C1"] == "unknown"
    assert len(problems) == 1 and words in problems[0], problems


# ---------------------------------------------------------------------- FHIR
LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"


def observation(oid: str, code: str, value: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-11-20T08:00:00Z",
        "valueQuantity": {"system": UCUM, **value},
        **extra,
    }


def fhir_statuses(tmp_path: Path, *resources: dict[str, Any]) -> tuple[dict, list[str]]:
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1960-05-01"}
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in (patient, *resources)],
    }
    paths = write_fhir(tmp_path, [("b.json", bundle)])
    tally = Tally()
    (p,) = list(read_fhir(paths, Extractor(CHECKED), AS_OF, tally))
    assert tally.reconciles(), tally
    return statuses(p.record["facts"])[0], [f"{x.fact}: {x.message}" for x in p.problems]


def test_fhir_values(tmp_path: Path) -> None:
    got, problems = fhir_statuses(
        tmp_path,
        observation("a1c", "4548-4", {"value": 53, "code": "%"}),
        observation(
            "inr",
            "6301-6",
            {"value": 1.7, "code": "{INR}"},
            referenceRange=[
                {"low": {"value": 0.8, "code": "{INR}"}, "high": {"value": 1.2, "code": "{INR}"}}
            ],
        ),
        observation("hct", "4544-3", {"value": 0.32, "code": "L/L"}),
    )
    assert problems == []
    assert got == {"H1": "unknown", "W1": "unknown", "N1": "met", "N2": "not met", "C1": "met"}
    got, _ = fhir_statuses(
        tmp_path,
        observation("a1c", "4548-4", {"value": 58, "code": "mmol/mol"}),
        observation(
            "inr",
            "6301-6",
            {"value": 1.9, "code": "1"},
            referenceRange=[{"low": {"value": 0.8}, "high": {"value": 1.2}}],
        ),
        observation("hct", "4544-3", {"value": 0.28, "code": "L/L"}),
    )
    assert got == {"H1": "met", "W1": "unknown", "N1": "not met", "N2": "not met", "C1": "not met"}


def test_fhir_implausible_value_is_a_diagnostic(tmp_path: Path) -> None:
    patient = {"resourceType": "Patient", "id": "p1"}
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": patient},
            {"resource": observation("a1c", "4548-4", {"value": 53, "code": "%"})},
            {
                "resource": observation(
                    "a1c-old",
                    "4548-4",
                    {"value": 7.5, "code": "%"},
                    effectiveDateTime="2026-10-01",
                )
            },
        ],
    }
    paths = write_fhir(tmp_path, [("b.json", bundle)])
    (p,) = list(read_fhir(paths, Extractor(CHECKED), AS_OF, Tally()))
    record = read_record(CHECKED, p.record, AS_OF)
    messages = [x.message for x in record.problems if x.fact == "hba1c"]
    assert messages[0].startswith("53 % is outside the plausible range"), messages
    assert "may be the newest" in messages[1], messages
    assert record.facts["hba1c"] is None


# ---------------------------------------------------------------------- SQL
PATIENTS: list[dict[str, Any]] = [
    {"hba1c": q(53, "%"), "inr": q(1.0, reference_range={"low": 0.8, "high": 1.2})},
    {"hba1c": q(7.5, "%"), "inr": q("1.8", reference_range={"low": 0.8, "high": 1.2})},
    {"hba1c": [q(53, "%"), q(7.5, "%", "2026-10-01")], "hematocrit": q("0.32", "L/L")},
    {"hba1c": q(58, "mmol/mol"), "inr": q("1.81", reference_range={"high": 1.2, "unit": "1"})},
    {"hba1c": q(530, "mmol/mol"), "hematocrit": q(290, "mL/L"), "weight": q(800, "lb")},
    {"inr": q(45, reference_range={"low": 0.8, "high": 1.2}), "weight": q(330, "lb")},
    {"inr": q(1, reference_range={"low": 11, "high": 13, "unit": "s"})},
    {"inr": q(1), "hematocrit": q(320, "mmol/mol")},
]
EXPECTED = [
    ("undetermined", "unknown", "unknown", "met", "met", "unknown"),
    ("ineligible", "met", "unknown", "met", "not met", "unknown"),
    ("undetermined", "unknown", "unknown", "unknown", "unknown", "met"),
    ("ineligible", "met", "unknown", "not met", "not met", "unknown"),
    ("ineligible", "unknown", "unknown", "unknown", "unknown", "not met"),
    ("undetermined", "unknown", "met", "unknown", "unknown", "unknown"),
    ("undetermined", "unknown", "unknown", "unknown", "unknown", "unknown"),
    ("undetermined", "unknown", "unknown", "unknown", "unknown", "unknown"),
]


def test_sql_gives_the_python_statuses(tmp_path: Path) -> None:
    records = [(f"p{i}", {"id": f"p{i}", "facts": f}) for i, f in enumerate(PATIENTS)]
    path = tmp_path / "c.duckdb"
    ingest_records(COMPILED, records, path, AS_OF)
    engine = DuckDB(path)
    try:
        rows = engine.run(compile_sql(COMPILED, AS_OF)).patients
        wide = compile_sql(COMPILED, AS_OF, Layout.from_meta(engine.meta()))
        assert wide.form == "values"
        assert engine.run(wide).patients == rows
    finally:
        engine.close()
    evaluator = Evaluator(COMPILED, explain=False)
    python = []
    for (name, data), row in zip(records, rows, strict=True):
        e = evaluator.evaluate(read_record(CHECKED, data, AS_OF, name))
        python.append((e.verdict, *(c.status for c in e.criteria)))
        assert python[-1] == tuple(row[2:-1]), name
    assert python == EXPECTED


# ---------------------------------------------------------------------- k x ULN, exactly
ULN = """\
fact bilirubin: quantity mg/dL
  reference range reported
fact inr: number
  reference range reported
fact creatinine: quantity mg/dL
  molar mass 113.12 g/mol source "PubChem CID 588"
  reference range 0.6 mg/dL to 1.2 mg/dL
inclusion criteria
B1 "bilirubin <= 1.5 x ULN"
  rule bilirubin <= 1.5 x ULN
B2 "bilirubin > 1.5 x ULN"
  rule not (bilirubin > 1.5 x ULN)
N1 "INR <= 1.5 x ULN"
  rule inr <= 1.5 x ULN
C1 "creatinine <= 1.5 x ULN (default range)"
  rule creatinine <= 1.5 x ULN
L1 "bilirubin >= 0.5 x LLN"
  rule bilirubin >= 0.5 x LLN
"""
BOUNDARY = [  # each value exactly on k x the limit: 1.5 x 1.2 is 1.8, 0.5 x 0.3 is 0.15
    {
        "bilirubin": q("1.8", "mg/dL", reference_range={"low": "0.3", "high": "1.2"}),
        "inr": q("1.8", reference_range={"high": "1.2"}),
        "creatinine": q("1.8", "mg/dL"),
    },
    {
        "bilirubin": q("0.15", "mg/dL", reference_range={"low": "0.3", "high": "1.2"}),
        "inr": q("0.3", reference_range={"high": "0.2"}),  # 1.5 x 0.2 = 0.3 (0.30000000000000004)
        "creatinine": q("159.1", "umol/L"),  # 1.79980... mg/dL: below 1.8
    },
    {
        "bilirubin": q("1.81", "mg/dL", reference_range={"low": "0.3", "high": "1.2"}),
        "inr": q("1.81", reference_range={"high": "1.2"}),
        "creatinine": q("1.81", "mg/dL"),
    },
]


def test_k_times_uln_on_the_boundary_in_every_back_end(tmp_path: Path) -> None:
    """1.8 <= 1.5 x 1.2 is met: in floats 1.5 * 1.2 is 1.7999999999999998 and the value
    1.8 was "not met" (bilirubin excluded the patient); the product is exact until
    rounded once, in the compiled code, the SQL back end and the explanation."""
    both = TwoEvaluators(ULN, "uln.crit")
    want = [
        ("eligible", True, True, True, True, True),
        ("eligible", True, True, True, True, True),
        ("ineligible", False, False, False, False, True),
    ]
    got = []
    for facts in BOUNDARY:
        record = read_record(both.checked, {"facts": facts}, AS_OF)
        verdict, statuses_ = both.statuses(record)
        got.append((verdict, *statuses_))
    assert got == want
    explained = both.evaluator.evaluate(read_record(both.checked, {"facts": BOUNDARY[0]}, AS_OF))
    text = " ".join(line for c in explained.criteria for line in c.explanation)
    assert "= 1.5 × 1.2 mg/dL = 1.8 mg/dL" in text, text
    assert "1.7999999999999998" not in text
    records = [(f"p{i}", {"id": f"p{i}", "facts": f}) for i, f in enumerate(BOUNDARY)]
    path = tmp_path / "uln.duckdb"
    ingest_records(both.compiled, records, path, AS_OF)
    engine = DuckDB(path)
    try:
        rows = engine.run(compile_sql(both.compiled, AS_OF)).patients
        wide = compile_sql(both.compiled, AS_OF, Layout.from_meta(engine.meta()))
        assert engine.run(wide).patients == rows
    finally:
        engine.close()
    words = {True: "met", False: "not met"}
    assert [tuple(r[2:-1]) for r in rows] == [(v, *(words[s] for s in st)) for v, *st in want]


# ---------------------------------------------------------------------- lists: no molar mass
def test_a_list_field_in_the_other_concentration_kind_says_why_truthfully() -> None:
    """A list's field cannot have a molar mass (docs/language.md): the record diagnostic
    never tells the author to declare one; the item's value is unknown, the other used."""
    both = TwoEvaluators(
        "fact fpg: list of {value: quantity mg/dL, taken: date}\n"
        "exclusion criteria\n"
        'E1 "glucose > 240 mg/dL twice"\n'
        "  rule at least 2 of fpg with (value > 240 mg/dL)\n",
        "list.crit",
    )
    items = [
        {"value": {"value": 14, "unit": "mmol/L"}, "taken": "2026-11-01"},
        {"value": {"value": 250, "unit": "mg/dL"}, "taken": "2026-11-02"},
    ]
    record = read_record(both.checked, {"facts": {"fpg": items}}, AS_OF)
    assert [p.message for p in record.problems] == [
        "unit 'mmol/L' is a substance concentration, but fpg[1].value is a mass "
        "concentration (mg/dL); a list's field has no molar mass, so the two do not convert"
    ]
    assert both.statuses(record) == ("undetermined", (None,))
    items[0]["value"] = {"value": 241, "unit": "mg/dL"}
    record = read_record(both.checked, {"facts": {"fpg": items}}, AS_OF)
    assert both.statuses(record) == ("ineligible", (True,))


def test_uln_on_a_number_without_a_range_hints_what_can_be_written() -> None:
    """E204 on a number: only `reference range reported` can be written (a default range
    `reference range 0.8 to 1.2` needs a unit and does not parse), so the hint says so."""
    a = analyse_text('fact inr: number\ninclusion criteria\nI1 "x"\n  rule inr <= 1.5 x ULN\n')
    (d,) = [d for d in a.diagnostics if d.code == "E204"]
    assert d.hint == (
        "add `reference range reported` (the lab's range comes with each value) to the fact "
        "(a plain number has no default range)"
    )


# ------------------------------------------- the LOINC plausibility table (author8 F9)
TABLE = TwoEvaluators(
    """\
fact hba1c: quantity %
fact qtcf: quantity ms
codes hba1c: loinc "4548-4"
codes qtcf: loinc "8636-3"
inclusion criteria
H1 "HbA1c at most 10.5 %"
  rule hba1c <= 10.5 %
exclusion criteria
Q1 "QTcF above 450 ms"
  rule qtcf > 450 ms
""",
    "table.crit",
)


@pytest.mark.parametrize(
    ("facts", "crit", "expected", "words"),
    [
        ({"qtcf": q("0.48", "ms")}, "Q1", "unknown", "0.48 ms is beyond physiological"),
        ({"qtcf": q(150, "ms")}, "Q1", "not met", None),  # the table's ends are plausible
        ({"qtcf": q(480, "ms")}, "Q1", "met", None),
        ({"qtcf": q("0.48", "s")}, "Q1", "met", None),  # 480 ms in seconds
        ({"qtcf": q(1001, "ms")}, "Q1", "unknown", "1001 ms is beyond physiological"),
        ({"hba1c": q(64, "%")}, "H1", "unknown", "64 % is beyond physiological"),
        ({"hba1c": q(25, "%")}, "H1", "not met", None),
        ({"hba1c": q("0.5", "%")}, "H1", "unknown", "0.5 % is beyond physiological"),
    ],
)
def test_the_loinc_plausibility_table_refuses_unit_errors(facts, crit, expected, words) -> None:
    record = read_record(TABLE.checked, {"facts": facts}, AS_OF)
    status = TABLE.status(record, crit)
    assert WORDS[status] == expected
    said = [p.message for p in record.problems]
    if words is None:
        assert said == []
    else:
        assert any(words in m for m in said), said
