"""Generated Python: warning-free for every protocol and for generated programs, flat however
deep or long the criteria, and deciding exactly like the reference interpreter.

Programs are generated over a fixed data dictionary from every expression form, negative
literals, conditionals with unknown conditions, blood pressure pairs and the date windows
included; patients put dates at and around each window's edges.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from critlang.backends.python import FILENAME_PREFIX, compile_protocol
from critlang.data.records import read_record
from critlang.frontend import analyse_file, analyse_text
from critlang.interpreter import Interpreter
from helpers import ROOT

AS_OF = dt.date(2024, 6, 1)
ANCHOR = dt.date(2024, 5, 1)
PROTOCOL_FILES = sorted((ROOT / "protocols").rglob("*.crit"))

DICTIONARY = """\
fact n: number
fact m: number
fact q: quantity mg/dL
fact r: quantity mg/dL
fact b: boolean
fact c: integer 1..3
fact d: date
fact e: date
fact bp: blood pressure
fact l: list of {start: date, end: date, v: quantity mg/dL}
anchor a
"""


def compile_strict(checked: Any) -> Any:
    """Compile with every warning an error (SyntaxWarning, DeprecationWarning, ...)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return compile_protocol(checked)


@pytest.mark.parametrize("path", PROTOCOL_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_protocol_compiles_without_warnings(path: Path) -> None:
    checked = analyse_file(path).result
    assert checked is not None
    if not checked.ok:
        pytest.skip("a library of code bindings, no criteria")
    compiled = compile_strict(checked)
    # the source really is what ran: compiling it again warns about nothing either
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compile(compiled.source_code, FILENAME_PREFIX + str(path) + ">", "exec")


# ---------------------------------------------------------------- generated programs

NUM_LEAVES = ["n", "m", "1.5", "0", "-1.5", "-n", "- -2", "c"]
Q_LEAVES = ["q", "r", "2 mg/dL", "0.5 mg/dL", "-(q)", "(q - r)"]
DATES = ["d", "e", "a", "date of q", "enrollment"]
OPS = ["<", "<=", ">", ">=", "=", "!="]
DURATIONS = ["14 days", "4 weeks", "12 weeks", "1 month", "3 months"]


def num(depth: int) -> st.SearchStrategy[str]:
    leaf = st.sampled_from(NUM_LEAVES)
    if depth <= 0:
        return leaf
    sub = num(depth - 1)
    return st.one_of(
        leaf,
        st.builds(lambda x, op, y: f"({x} {op} {y})", sub, st.sampled_from("+-*/"), sub),
        st.builds(lambda x: f"-{x}", sub),
        st.builds(lambda x, k, y: f"({x} if {k} else {y})", sub, cond(depth - 1), sub),
        st.builds(lambda x, y: f"first available ({x}, {y})", sub, sub),
    )


def quantity(depth: int) -> st.SearchStrategy[str]:
    leaf = st.sampled_from(Q_LEAVES)
    if depth <= 0:
        return leaf
    sub = quantity(depth - 1)
    return st.one_of(
        leaf,
        st.builds(lambda x, k, y: f"({x} if {k} else {y})", sub, cond(depth - 1), sub),
        st.builds(lambda x, y: f"({x} + {y})", sub, sub),
        st.builds(lambda x: f"(({x} in mg/dL) * 2 as mg/dL)", sub),
    )


def window(depth: int) -> st.SearchStrategy[str]:
    s, a, dur = st.sampled_from(DATES), st.sampled_from(DATES), st.sampled_from(DURATIONS)
    return st.one_of(
        st.builds(lambda x, t, y: f"{x} at least {t} before {y}", s, dur, a),
        st.builds(lambda x, t, y: f"{x} at least {t} after {y}", s, dur, a),
        st.builds(
            lambda x, w, y: f"{x} no {w} than {y}", s, st.sampled_from(["later", "earlier"]), a
        ),
        st.builds(lambda x, w, y: f"{x} on or {w} {y}", s, st.sampled_from(["before", "after"]), a),
        st.builds(
            lambda x, lo, hi, w, y: f"{x} between {lo} and {hi} {w} {y}",
            s,
            st.sampled_from(["2", "2 weeks", "0 days"]),
            st.sampled_from(["6 weeks", "14 days"]),
            st.sampled_from(["before", "after"]),
            a,
        ),
        st.builds(lambda x, t, y: f"{x} within {t} before {y}", s, dur, a),
        st.builds(lambda x, y, z: f"{x} to {y} ongoing at {z}", s, s, a),
        st.builds(lambda x, y, t, z: f"{x} to {y} overlaps {t} before {z}", s, s, dur, a),
    )


def compare(x: str, op: str, y: str) -> str:
    """`x op y`; an integer fact against a literal outside its range is a check error (E401),
    so `c` meets a literal only through arithmetic."""
    if x == "c" and y in ("1.5", "0", "-1.5"):
        x = "(c * 1)"
    return f"{x} {op} {y}"


def cond(depth: int) -> st.SearchStrategy[str]:
    leaves = st.one_of(
        st.just("b"),
        st.builds(compare, num(0), st.sampled_from(OPS), num(0)),
        st.builds(
            lambda op, s, d: f"bp {op} {s}/{d} mmHg",
            st.sampled_from(OPS),
            st.sampled_from([120, 140, 160]),
            st.sampled_from([80, 90, 100]),
        ),
        window(0),
        st.builds(lambda x: f"{x} is known", st.sampled_from(["n", "q", "bp", "date of q"])),
    )
    if depth <= 0:
        return leaves
    sub = cond(depth - 1)
    return st.one_of(
        leaves,
        st.builds(compare, num(depth - 1), st.sampled_from(OPS), num(depth - 1)),
        st.builds(lambda op, y: f"q {op} {y}", st.sampled_from(OPS), quantity(depth - 1)),
        st.builds(lambda x, y: f"({x} and {y})", sub, sub),
        st.builds(lambda x, y: f"({x} or {y})", sub, sub),
        st.builds(lambda x: f"not ({x})", sub),
        st.builds(lambda x, y: f"({x} implies {y})", sub, sub),
        st.builds(lambda x, y: f"(if {x} then {y})", sub, sub),
        st.builds(lambda x, y: f"({x} unless {y})", sub, sub),
        st.builds(lambda x, y, k: f"({x} if {k} else {y})", sub, sub, sub),
        st.builds(
            lambda q, w: f"{q} l with (v > 1 mg/dL and {w})",
            st.sampled_from(["any", "all", "no"]),
            st.sampled_from(
                [
                    "start to end overlaps 4 weeks before a",
                    "end at least 2 weeks before a",
                    "start on or after a",
                ]
            ),
        ),
    )


@st.composite
def programs(draw: Any) -> str:
    rules = draw(st.lists(cond(2), min_size=1, max_size=4))
    sections = []
    for i, rule in enumerate(rules):
        kind = draw(st.sampled_from(["inclusion", "exclusion"]))
        sections.append(f'{kind} criteria\nC{i + 1} "generated"\n  rule {rule}\n')
    return DICTIONARY + "".join(sections)


def around(base: dt.date, draw: Any) -> str:
    """A recorded date at or near a window's edge from `base` (the anchor, or the evaluation
    date), never after the evaluation date: the reader refuses a recorded future as impossible."""
    base = draw(st.sampled_from([base, AS_OF]))
    edges = [0, 14, 28, 30, 31, 42, 84, 92]
    offset = draw(st.sampled_from(edges)) + draw(st.sampled_from([-1, 0, 0, 1]))
    day = base + dt.timedelta(days=draw(st.sampled_from([-1, 1])) * offset)
    if day > AS_OF:
        day = AS_OF - (day - AS_OF)
    return day.isoformat()


@st.composite
def patients(draw: Any) -> dict[str, Any]:
    def maybe(value: Any) -> Any:
        return None if draw(st.integers(0, 5)) == 0 else value

    def number() -> str:
        return str(draw(st.sampled_from([-2, -1.5, 0, 1, 1.5, 2, 3])))

    def mg() -> dict[str, Any]:
        return {
            "value": draw(st.sampled_from([0, 0.5, 1, 2, 2.5, 4])),
            "unit": "mg/dL",
            "date": around(ANCHOR, draw),
        }

    facts = {
        "n": maybe(number()),
        "m": maybe(number()),
        "q": maybe(mg()),
        "r": maybe(mg()),
        "b": maybe(draw(st.booleans())),
        "c": maybe(draw(st.integers(1, 3))),
        "d": maybe(around(ANCHOR, draw)),
        "e": maybe(around(ANCHOR, draw)),
        "bp": maybe(
            {
                "systolic": maybe(draw(st.sampled_from([119, 120, 139, 140, 141, 160, 161]))),
                "diastolic": maybe(draw(st.sampled_from([79, 80, 89, 90, 91, 100, 101]))),
                "unit": "mm[Hg]",
            }
        ),
        "l": maybe(
            [
                {
                    "start": maybe(around(ANCHOR, draw)),
                    "end": maybe(around(ANCHOR, draw)),
                    "v": maybe(mg()),
                }
                for _ in range(draw(st.integers(0, 3)))
            ]
        ),
    }
    facts = {k: v for k, v in facts.items() if v is not None}
    for item in facts.get("l") or []:  # a period ends after it starts (else impossible data)
        if item["start"] and item["end"] and item["start"] > item["end"]:
            item["start"], item["end"] = item["end"], item["start"]
    if "bp" in facts and facts["bp"]["systolic"] is None and facts["bp"]["diastolic"] is None:
        del facts["bp"]
    anchors = {"a": ANCHOR.isoformat()} if draw(st.integers(0, 5)) else {}
    return {"facts": facts, "anchors": anchors}


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(programs(), st.lists(patients(), min_size=1, max_size=6))
def test_generated_programs_compile_cleanly_and_agree(
    src: str, people: list[dict[str, Any]]
) -> None:
    a = analyse_text(src, "generated.crit")
    assert a.result is not None and a.ok, (src, [d.message for d in a.diagnostics if d.is_error])
    compiled = compile_strict(a.result)
    interpreter = Interpreter(a.result)
    for person in people:
        record = read_record(a.result, person, AS_OF)
        assert not record.problems, record.problems
        got = compiled.evaluate(compiled.normalise(record))
        ref_verdict, ref_statuses, _ = interpreter.run(record)
        assert got == (ref_verdict, ref_statuses), (src, person)


# ---------------------------------------------------------------- depth and width (issue 14)


def _deep(rule: str, extra: str = "") -> Any:
    a = analyse_text(
        DICTIONARY + extra + f'inclusion criteria\nI1 "deep"\n  rule {rule}\n', "deep.crit"
    )
    assert a.result is not None and a.ok, [d.message for d in a.diagnostics if d.is_error][:3]
    compiled = compile_strict(a.result)
    record = read_record(a.result, {"facts": {"n": "1", "b": True}, "anchors": {}}, AS_OF)
    return compiled.evaluate(compiled.normalise(record))


def test_hundred_first_available_options_compile() -> None:
    options = ", ".join(["m"] * 99 + ["n"])
    assert _deep(f"first available ({options}) = 1") == ("eligible", (True,))


def test_ninety_nine_nested_conditionals_compile() -> None:
    value = "n"
    for _ in range(99):
        value = f"(m if b else {value})"
    assert _deep(f"{value} = 1") == ("undetermined", (None,))  # m unknown, b true


def test_long_chains_of_costly_terms_compile() -> None:
    terms = " or ".join(["(n * 2) > 5"] * 329 + ["(n * 2) = 2"])
    assert _deep(terms) == ("eligible", (True,))
