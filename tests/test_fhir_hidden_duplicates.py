"""Duplicate JSON keys inside resources, whichever copy comes last (issue 9 item 2;
breaker7 F2, F4, F5, F17): a copy that names a bound code, a subject, a version's meta
given twice is a conflict, unknown with a diagnostic naming the key and its path, in both
key orders; Bundles and NDJSON; `ingest` + `screen --engine duckdb` agree with `screen`.

RFC 8259 section 4: names "SHOULD be unique" and software receiving others is
"unpredictable"; FHIR R4 json.html gives each element once."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from critlang.cli import main

PROTOCOL = """protocol "T-DUP"
  title "duplicate keys"
  version "1"
  date 2026-01-01
  sex all
  healthy volunteers no

fact hemoglobin: quantity g/dL
  measured within 28 days before enrollment
fact cirrhosis: boolean
  history current
fact prior_therapies: list of {kind: enum {capecitabine, octreotide}, start: date, end: date}

codes hemoglobin: loinc "718-7"
codes cirrhosis: snomed "19943007"
codes prior_therapies.capecitabine: atc "L01BC06"
codes prior_therapies.octreotide: atc "H01CB02"

inclusion criteria
I1 "Haemoglobin at least 9 g/dL"
  rule hemoglobin >= 9 g/dL
exclusion criteria
E1 "Cirrhosis"
  rule cirrhosis
E2 "Capecitabine within 4 weeks"
  rule any prior_therapies with (kind = capecitabine and end within 4 weeks before enrollment)
"""
AS_OF = "2026-11-27"
LOINC = '"system":"http://loinc.org"'
SUBJECT = '"subject":{"reference":"Patient/p1"}'


def _patient(pid: str) -> str:
    return f'{{"resourceType":"Patient","id":"{pid}","birthDate":"1970-01-01"}}'


def _hb(
    value: float, rid: str, date: str, code: str = "", subject: str = SUBJECT, extra: str = ""
) -> str:
    code = code or f'{{"coding":[{{{LOINC},"code":"718-7"}}]}}'
    return (
        f'{{"resourceType":"Observation","id":"{rid}","status":"final","code":{code},'
        f'{subject},"effectiveDateTime":"{date}"{extra},"valueQuantity":{{"value":{value},'
        '"unit":"g/dL","system":"http://unitsofmeasure.org","code":"g/dL"}}'
    )


OLD_HB = _hb(12, "h1", "2026-11-20")  # usable, older: it decides only if nothing hides
OTHER_CODE = f'{{"coding":[{{{LOINC},"code":"1234-5"}}]}}'
HB_CODE = f'{{"coding":[{{{LOINC},"code":"718-7"}}]}}'

HB_CODE_TWICE = _hb(7, "h2", "2026-11-25", code="@1").replace('"code":@1', '"code":@1,"code":@2')
CODING_CODE_TWICE = _hb(
    7, "h2", "2026-11-25", code=f'{{"coding":[{{{LOINC},"code":@1,"code":@2}}]}}'
)
TYPE_TWICE = _hb(7, "h2", "2026-11-25").replace(
    '"resourceType":"Observation"', '"resourceType":@1,"resourceType":@2'
)
VALUE_TWICE = _hb(7, "h2", "2026-11-25").replace(
    '"valueQuantity":', '"valueQuantity":{"value":7,"unit":"g/dL"},"valueQuantity":'
)
DATE_TWICE = _hb(7, "h2", "@1").replace(
    '"effectiveDateTime":"@1"', '"effectiveDateTime":@1,"effectiveDateTime":@2'
)
STATUS_TWICE = _hb(7, "h2", "2026-11-25").replace('"status":"final"', '"status":@1,"status":@2')
CONDITION_CODE_TWICE = (
    '{"resourceType":"Condition","id":"c1","clinicalStatus":{"coding":[{"system":'
    '"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]},'
    '"code":@1,"code":@2,' + SUBJECT + "}"
)
CIRRHOSIS = '{"coding":[{"system":"http://snomed.info/sct","code":"19943007"}]}'
OTHER_CONDITION = '{"coding":[{"system":"http://snomed.info/sct","code":"38341003"}]}'
STATEMENT_TWICE = (
    '{"resourceType":"MedicationStatement","id":"s1","status":"completed",'
    '"medicationCodeableConcept":@1,"medicationCodeableConcept":@2,' + SUBJECT + ","
    '"effectivePeriod":{"start":"2026-11-01","end":"2026-11-20"}}'
)
CAPECITABINE = '{"coding":[{"system":"http://www.whocc.no/atc","code":"L01BC06"}]}'
OMEPRAZOLE = '{"coding":[{"system":"http://www.whocc.no/atc","code":"A02BC01"}]}'

# (resource with @1 and @2, first copy, second copy, criterion, key and path named)
# fmt: off
HIDING = {
    "code": (HB_CODE_TWICE, HB_CODE, OTHER_CODE, "I1", "'code' at code"),
    "coding.code": (
        CODING_CODE_TWICE, '"718-7"', '"1234-5"', "I1", "'code' at code.coding[0].code"
    ),
    "resourceType": (
        TYPE_TWICE, '"Observation"', '"Basic"', "I1", "'resourceType' at resourceType"
    ),
    "effectiveDateTime": (
        DATE_TWICE, '"2026-11-25"', '"2026-10-01"', "I1", "'effectiveDateTime' at effectiveDateTime"
    ),
    "status": (STATUS_TWICE, '"final"', '"entered-in-error"', "I1", "'status' at status"),
    "condition code": (
        CONDITION_CODE_TWICE, CIRRHOSIS, OTHER_CONDITION, "E1", "'code' at code"
    ),
    "medicationCodeableConcept": (
        STATEMENT_TWICE, CAPECITABINE, OMEPRAZOLE, "E2",
        "'medicationCodeableConcept' at medicationCodeableConcept",
    ),
}
# fmt: on


@pytest.fixture
def protocol(tmp_path: Path) -> Path:
    p = tmp_path / "p.crit"
    p.write_text(PROTOCOL)
    return p


def _bundle(*resources: str) -> str:
    entries = ",".join(f'{{"resource":{r}}}' for r in resources)
    return f'{{"resourceType":"Bundle","type":"collection","entry":[{entries}]}}'


def _write(tmp_path: Path, layout: str, *resources: str) -> Path:
    if layout == "bundle":
        p = tmp_path / "b.json"
        p.write_text(_bundle(*resources))
    else:
        p = tmp_path / "b.ndjson"
        p.write_text("".join(r + "\n" for r in resources))
    return p


def _screen(tmp_path: Path, protocol: Path, data: Path, *extra: str) -> dict[str, dict]:
    out = tmp_path / "out.jsonl"
    args = ["screen", "--as-of", AS_OF, *extra, "--patients", str(out), str(protocol), str(data)]
    assert main(args) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return {row["patient"]: row for row in rows}


def _duckdb(tmp_path: Path, protocol: Path, data: Path, *extra: str) -> dict[str, dict]:
    """The same data through `ingest` and `screen --engine duckdb` (one reading path)."""
    cohort = tmp_path / "c.duckdb"
    cohort.unlink(missing_ok=True)
    ingest = ["ingest", "--as-of", AS_OF, *extra, str(protocol), str(data), "-o", str(cohort)]
    assert main(ingest) == 0
    out = tmp_path / "sql.jsonl"
    args = ["screen", "--engine", "duckdb", "--patients", str(out), str(protocol), str(cohort)]
    assert main(args) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return {row["patient"]: row for row in rows}


ABSENT = ("--absent-means-no", "conditions,medications")


@pytest.mark.parametrize("layout", ["bundle", "ndjson"])
@pytest.mark.parametrize("order", ["bound first", "bound last"])
@pytest.mark.parametrize("case", sorted(HIDING))
def test_a_copy_given_twice_leaves_what_it_may_be_unknown_in_both_orders(
    tmp_path: Path, protocol: Path, layout: str, order: str, case: str
) -> None:
    """The last copy used to decide: with the bound (or newer, or final) copy first, a
    newer Hb 7 was not a haemoglobin (Hb 12 decided: met), an active cirrhosis not a
    cirrhosis, capecitabine in the window not capecitabine. Either copy may be meant."""
    text, bound, other, criterion, named = HIDING[case]
    first, second = (bound, other) if order == "bound first" else (other, bound)
    resource = text.replace("@1", first).replace("@2", second)
    assert resource.count(named.split("'")[1]) >= 2
    data = _write(tmp_path, layout, _patient("p1"), OLD_HB, resource)
    rows = _screen(tmp_path, protocol, data, *ABSENT)
    row = rows["p1"]
    assert row["criteria"][criterion] == "unknown", row
    assert row["verdict"] == "undetermined"
    assert any(f"duplicate JSON keys {named}" in p for p in row["problems"]), row["problems"]
    sql = _duckdb(tmp_path, protocol, data, *ABSENT)["p1"]
    assert (sql["verdict"], sql["criteria"]) == (row["verdict"], row["criteria"])


@pytest.mark.parametrize("layout", ["bundle", "ndjson"])
def test_a_value_given_twice_in_a_newer_lab_is_unknown(
    tmp_path: Path, protocol: Path, layout: str
) -> None:
    resource = VALUE_TWICE
    data = _write(tmp_path, layout, _patient("p1"), OLD_HB, resource)
    row = _screen(tmp_path, protocol, data)["p1"]
    assert row["criteria"]["I1"] == "unknown"
    assert any("'valueQuantity' at valueQuantity" in p for p in row["problems"])


def test_clean_data_is_read_as_before(tmp_path: Path, protocol: Path) -> None:
    """No duplicate: nothing is marked; the newer Hb 7 decides (not met), in both layouts."""
    for layout in ("bundle", "ndjson"):
        data = _write(tmp_path, layout, _patient("p1"), OLD_HB, _hb(7, "h2", "2026-11-25"))
        row = _screen(tmp_path, protocol, data, *ABSENT)["p1"]
        assert row["criteria"] == {"I1": "not met", "E1": "not met", "E2": "not met"}
        assert row["problems"] == []


def test_a_copy_hiding_a_bound_code_in_an_unbound_type_is_found(
    tmp_path: Path, protocol: Path
) -> None:
    """A resource whose last copies make it of no bound code and of a type critlang does
    not read (`Basic` with code 1234-5) is still examined: its text names 718-7."""
    resource = TYPE_TWICE.replace("@1", '"Observation"').replace("@2", '"Basic"')
    resource = resource.replace('"code":{"coding"', '"code":' + HB_CODE + ',"code":{"coding"', 1)
    resource = resource.replace('"code":"718-7"}]}}', '"code":"1234-5"}]}}', 1)
    data = _write(tmp_path, "bundle", _patient("p1"), OLD_HB, resource)
    row = _screen(tmp_path, protocol, data)["p1"]
    assert row["criteria"]["I1"] == "unknown", row


@pytest.mark.parametrize("layout", ["bundle", "ndjson"])
def test_an_escaped_bound_code_does_not_evade_the_check(
    tmp_path: Path, protocol: Path, layout: str
) -> None:
    """`"718\\u002d7"` is 718-7 (RFC 8259 section 7): text with an escape is examined."""
    resource = HB_CODE_TWICE.replace("@1", HB_CODE.replace("718-7", "718\\u002d7")).replace(
        "@2", OTHER_CODE
    )
    data = _write(tmp_path, layout, _patient("p1"), OLD_HB, resource)
    row = _screen(tmp_path, protocol, data)["p1"]
    assert row["criteria"]["I1"] == "unknown", row
    assert any("duplicate JSON keys 'code' at code" in p for p in row["problems"])


@pytest.mark.parametrize("layout", ["bundle", "ndjson"])
@pytest.mark.parametrize("twice", ["subject", "subject.reference"])
@pytest.mark.parametrize("order", ["p1 first", "p2 first"])
def test_a_subject_given_twice_may_be_any_patients_of_the_file(
    tmp_path: Path, protocol: Path, layout: str, twice: str, order: str
) -> None:
    """breaker7 F2: the resource went to the patient named last; the one named first was
    decided without it (a newer Hb 7 ignored; an active cirrhosis read as no)."""
    a, b = ("Patient/p1", "Patient/p2") if order == "p1 first" else ("Patient/p2", "Patient/p1")
    if twice == "subject":
        subject = f'"subject":{{"reference":"{a}"}},"subject":{{"reference":"{b}"}}'
    else:
        subject = f'"subject":{{"reference":"{a}","reference":"{b}"}}'
    hb = _hb(7, "h2", "2026-11-25", subject=subject)
    cirrhosis = CONDITION_CODE_TWICE.replace('"code":@1,"code":@2,' + SUBJECT, "")
    cirrhosis = cirrhosis.replace(",}", f',"code":{CIRRHOSIS},{subject}}}')
    assert cirrhosis.count('"subject"') == (2 if twice == "subject" else 1)
    older = [OLD_HB, OLD_HB.replace("p1", "p2").replace('"h1"', '"h3"')]
    data = _write(tmp_path, layout, _patient("p1"), _patient("p2"), *older, hb, cirrhosis)
    rows = _screen(tmp_path, protocol, data, *ABSENT)
    for pid in ("p1", "p2"):
        row = rows[pid]
        assert row["criteria"]["I1"] == "unknown" and row["criteria"]["E1"] == "unknown", row
        assert any("subject is given twice" in p for p in row["problems"]), row["problems"]
    sql = _duckdb(tmp_path, protocol, data, *ABSENT)
    assert {p: (r["verdict"], r["criteria"]) for p, r in sql.items()} == {
        p: (r["verdict"], r["criteria"]) for p, r in rows.items()
    }


HISTORY = """{"resourceType":"Bundle","type":"history","entry":[
{"resource":PATIENT,"request":{"method":"PUT","url":"Patient/p1"}},
{"resource":V1,"request":{"method":"PUT","url":"Observation/hb"}},
{"resource":V2,"request":{"method":"PUT","url":"Observation/hb"}}]}"""


@pytest.mark.parametrize(
    "meta",
    [
        '"meta":{"versionId":"2"},"meta":{"versionId":"0"}',
        '"meta":{"versionId":"0"},"meta":{"versionId":"2"}',
        '"meta":{"versionId":"2","versionId":"0"}',
        '"meta":{"versionId":"0","versionId":"2"}',
    ],
)
def test_a_version_with_its_meta_given_twice_cannot_be_ordered(
    tmp_path: Path, protocol: Path, meta: str
) -> None:
    """breaker7 F5: v2 (Hb 7) with `meta` twice was demoted to "an earlier version" and
    the superseded Hb 12 decided. Which version is newest cannot be told: none is used
    (docs/fhir.md, versions whose order cannot be told)."""
    v1 = _hb(12, "hb", "2026-11-20", extra=',"meta":{"versionId":"1"}')
    v2 = _hb(7, "hb", "2026-11-25", extra="," + meta)
    text = HISTORY.replace("PATIENT", _patient("p1")).replace("V1", v1).replace("V2", v2)
    data = tmp_path / "h.json"
    data.write_text(text)
    row = _screen(tmp_path, protocol, data)["p1"]
    assert row["criteria"]["I1"] == "unknown", row
    assert any("meta twice" in p for p in row["problems"]), row["problems"]
    sql = _duckdb(tmp_path, protocol, data)["p1"]
    assert sql["criteria"]["I1"] == "unknown"


@pytest.mark.parametrize("line", ["truncated", "not JSON"])
def test_an_unreadable_ndjson_line_naming_a_bound_code_may_be_any_patients(
    tmp_path: Path, protocol: Path, capsys: pytest.CaptureFixture[str], line: str
) -> None:
    """breaker7 F17: a truncated line (a newer Hb 7 of p1, or of anyone) was lost with a
    word on standard error only; every patient of the export was decided without it."""
    hb = _hb(7, "h2", "2026-11-25")
    broken = hb[:-40] if line == "truncated" else hb.replace('"status"', "status")
    cirrhosis = CONDITION_CODE_TWICE.replace('"code":@1,"code":@2,', f'"code":{CIRRHOSIS},')
    data = tmp_path / "x.ndjson"
    older = [OLD_HB, OLD_HB.replace("p1", "p2").replace('"h1"', '"h3"')]
    data.write_text("\n".join([_patient("p1"), _patient("p2"), *older, broken, cirrhosis[:30]]))
    rows = _screen(tmp_path, protocol, data, *ABSENT)
    for pid in ("p1", "p2"):
        row = rows[pid]
        assert row["criteria"]["I1"] == "unknown", row
        assert any("x.ndjson line 5 (not readable)" in p for p in row["problems"]), row
    # the cut cirrhosis line names no whole bound code: it hides nothing
    assert all(r["criteria"]["E1"] == "not met" for r in rows.values())
    sql = _duckdb(tmp_path, protocol, data, *ABSENT)
    assert {p: r["criteria"] for p, r in sql.items()} == {p: r["criteria"] for p, r in rows.items()}


def test_the_prefilter_is_exact_on_spellings() -> None:
    """fhir_bound: a bound code as a `code` member is found however JSON spaces it; an
    escape makes the text undecidable on bytes (examined); other codes are not found."""
    from critlang.data.fhir_bound import bound_codes_in, bound_search, may_hold

    codes = frozenset({"718-7", "718", "19943007"})
    search = bound_search(codes)
    assert search(b'{"code":"718-7"}') and search(b'{"code" :\n "718"}')
    assert search(b'{"code":"19943007"}')
    assert not search(b'{"code":"718-77"}') and not search(b'{"code":"1718-7"}')
    assert not search(b'{"display":"718-7"}')  # codes are read from `code` members only
    assert may_hold(b'{"c\\u006fde":"718-7"}', codes)
    assert not may_hold(b'{"code":"2160-0"}', codes)
    assert bound_codes_in(b'{"code":"718\\u002d7", "x": "19943007"', codes) == {
        "718-7",
        "19943007",
    }


@pytest.mark.parametrize(
    ("text", "paths"),
    [
        ('{"a":1,"a":2}', ("a",)),
        ('{"s":{"reference":"x","reference":"y"}}', ("s.reference",)),
        ('{"code":{"coding":[{"code":"1"},{"code":"2","code":"3"}]}}', ("code.coding[1].code",)),
        ('{"a":"\\u00e9","b":{"v":2.50,"v":2.50}}', ("b.v",)),
        ('{"a":"\\u00e9","b":{"v":2.50}}', ()),
        ('{"b":{"v":"x"},"v":"x"}', ()),
    ],
)
def test_examine_names_the_path_of_each_duplicate(text: str, paths: tuple[str, ...]) -> None:
    from critlang.data.fhir_decode import Resource
    from critlang.data.fhir_duplicates import examine

    r = Resource(resourceType="Observation", raw_=msgspec.Raw(text.encode()))
    assert examine(r, frozenset({"1", "3"})) == paths
    if paths:
        assert r.malformed is not None and f"at {paths[0]}" in r.malformed
    else:
        assert r.malformed is None


@pytest.mark.parametrize("layout", ["bundle", "array", "ndjson"])
def test_a_file_read_loosely_still_has_its_duplicates_found(
    tmp_path: Path, protocol: Path, layout: str
) -> None:
    """One resource without its R4 datatypes (`"birthDate": 5`) sends the file (or line) to
    the loose reading, which built resources from plain JSON values: the copies were gone
    before any check. Each resource keeps its text there too."""
    bad = _patient("p9").replace('"1970-01-01"', "5")
    hidden = HB_CODE_TWICE.replace("@1", HB_CODE).replace("@2", OTHER_CODE)
    hidden = hidden.replace('"status":"final"', '"status":"final","issued":5,"focus":7')
    resources = (_patient("p1"), bad, OLD_HB, hidden)
    if layout == "array":
        data = tmp_path / "a.json"
        data.write_text("[" + ",".join(resources) + "]")
    else:
        data = _write(tmp_path, layout, *resources)
    row = _screen(tmp_path, protocol, data)["p1"]
    assert row["criteria"]["I1"] == "unknown", row
    assert any("duplicate JSON keys 'code' at code" in p for p in row["problems"]), row
