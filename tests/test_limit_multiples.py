"""`k x ULN` / `k x LLN` on the boundary (sqltest7 finding 1).

The bound is the product of a protocol factor and a reported (or default) limit. In
floating point 1.5 x 1.1 is 1.6500000000000001, so creatinine 1.65 mg/dL was not
`>= 1.5 x ULN`. The product is computed exactly from the limit and rounded once
(python_normalise.limit_products; ingest writes it for SQL; the interpreter is exact):
a value exactly on the bound is on it, and a value a float below it stays below. The
compiled evaluator, the reference interpreter, the explanation and DuckDB must give the
same, expected, statuses, for several factor / limit pairs and in another unit.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from critlang.backends.python import compile_protocol
from critlang.backends.sql import compile_sql
from critlang.backends.sql.engines import DuckDB
from critlang.data.ingest import ingest_records
from critlang.data.records import read_record
from critlang.evaluate import Evaluator, run_compiled
from critlang.frontend import analyse_text
from critlang.interpreter import Interpreter

AS_OF = dt.date(2026, 11, 27)

PROTOCOL = """protocol "LIMITS"
  title "x ULN on the boundary"
  version "1"
  date 2026-01-01
  sex all
  healthy volunteers no

fact creat: quantity mg/dL
  label "Creatinine"
  reference range reported
fact alt: quantity U/L
  label "ALT"
  reference range reported
fact ggt: quantity U/L
  label "GGT"
  reference range reported
fact tsh: quantity mIU/L
  label "TSH"
  reference range reported
fact ast: quantity U/L
  label "AST"
  reference range 0 U/L to 3 U/L

inclusion criteria

I1 "creatinine at least 1.5 x ULN"
  rule creat >= 1.5 x ULN
I2 "ALT above 1.1 x ULN"
  rule alt > 1.1 x ULN
I3 "GGT at most 2.5 x ULN"
  rule ggt <= 2.5 x ULN
I4 "TSH at least 3 x LLN"
  rule tsh >= 3 x LLN
I5 "AST at least 1.2 x ULN (the protocol's range)"
  rule ast >= 1.2 x ULN
"""


def _q(value: Any, unit: str, low: Any = None, high: Any = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"value": value, "unit": unit, "date": "2026-11-20"}
    if low is not None:
        entry["reference_range"] = {"low": low, "high": high, "unit": unit}
    return entry


# (patient, expected statuses I1..I5): each fact exactly on its bound, just off it, and
# recorded in another unit than the protocol's (ukat/L: 1 ukat/L = 60 U/L, exact)
CASES: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    (  # 1.65 = 1.5 x 1.1; 110 = 1.1 x 100 (not above); 100 = 2.5 x 40; 0.3 = 3 x 0.1; 3.6
        {
            "creat": _q(1.65, "mg/dL", 0.5, 1.1),
            "alt": _q(110, "U/L", 10, 100),
            "ggt": _q(100, "U/L", 8, 40),
            "tsh": _q(0.3, "mIU/L", 0.1, 4),
            "ast": _q(3.6, "U/L"),
        },
        ("met", "not met", "met", "met", "met"),
    ),
    (  # a float below / above each bound
        {
            "creat": _q(1.6499999999999997, "mg/dL", 0.5, 1.1),
            "alt": _q(110.00000000000001, "U/L", 10, 100),
            "ggt": _q(100.00000000000001, "U/L", 8, 40),
            "tsh": _q(0.29999999999999993, "mIU/L", 0.1, 4),
            "ast": _q(3.5999999999999996, "U/L"),
        },
        ("not met", "met", "not met", "not met", "not met"),
    ),
    (  # in another unit: 0.1 x 60 = 6 U/L ULN; 6.6 U/L = 1.1 x 6; 1.8333 ukat/L ...
        {
            "creat": _q(1.65, "mg/dL", "0.50", "1.10"),
            "alt": _q(0.11, "ukat/L", 0.01, 0.1),
            "ggt": _q(0.25, "ukat/L", 0.02, 0.1),
            "tsh": _q(0.3, "mIU/L", 0.1, 4),
            "ast": _q(0.06, "ukat/L"),
        },
        ("met", "not met", "met", "met", "met"),
    ),
]


def _statuses(tmp_path: Path) -> list[tuple[tuple[str, ...], ...]]:
    a = analyse_text(PROTOCOL)
    assert a.result is not None and a.ok, [d.message for d in a.diagnostics]
    compiled = compile_protocol(a.result)
    interpreter = Interpreter(a.result)
    evaluator = Evaluator(compiled, explain=True)
    records = [(f"p{i}", {"id": f"p{i}", "facts": f}) for i, (f, _) in enumerate(CASES)]
    path = tmp_path / "limits.duckdb"
    ingest_records(compiled, records, path, AS_OF)
    engine = DuckDB(path)
    try:
        rows = engine.run(compile_sql(compiled, AS_OF)).patients
    finally:
        engine.close()
    words = {True: "met", False: "not met", None: "unknown"}
    out = []
    for (name, data), row in zip(records, rows, strict=True):
        record = read_record(a.result, data, AS_OF, name)
        _, compiled_statuses = run_compiled(compiled, compiled.normalise(record))
        _, ref_statuses, _ = interpreter.run(record)
        explained = tuple(c.status for c in evaluator.evaluate(record).criteria)
        compiled_words = tuple(words[s] for s in compiled_statuses)
        ref_words = tuple(words[s] for s in ref_statuses)
        out.append((compiled_words, ref_words, explained, tuple(row[3:-1])))
    return out


def test_multiples_of_limits_are_exact_on_the_boundary(tmp_path: Path) -> None:
    got = _statuses(tmp_path)
    for (_, expected), engines in zip(CASES, got, strict=True):
        compiled, reference, explained, sql = engines
        assert compiled == expected
        assert reference == expected
        assert explained == expected
        assert sql == expected


def test_explanation_shows_the_rounded_bound(tmp_path: Path) -> None:
    from critlang.cli import main

    crit = tmp_path / "p.crit"
    crit.write_text(PROTOCOL)
    rec = tmp_path / "p.json"
    import json

    rec.write_text(json.dumps({"id": "p", "facts": CASES[0][0]}))
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main(["eval", "--as-of", AS_OF.isoformat(), "--details", str(crit), str(rec)])
    text = buf.getvalue()
    assert "= 1.5 × 1.1 mg/dL = 1.65 mg/dL" in text
    assert "1.6500000000000001" not in text
