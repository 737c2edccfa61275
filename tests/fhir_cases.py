"""FHIR test cases written as a Bundle or as NDJSON, screened by the Python path and
through `ingest` and DuckDB (the shared builders of the real-world FHIR tests)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from critlang.cli import main

FORMS = ["bundle", "ndjson-reversed"]


def write(tmp_path: Path, form: str, rows: list[Any]) -> Path:
    """rows as a Bundle or NDJSON (a dict is a resource; a str a raw JSON resource)."""
    texts = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    if form.endswith("reversed"):
        texts.reverse()
    if form.startswith("bundle"):
        data = tmp_path / "b.json"
        entries = ",".join('{"resource": ' + t + "}" for t in texts)
        data.write_text(
            '{"resourceType": "Bundle", "type": "collection", "entry": [' + entries + "]}"
        )
    else:
        data = tmp_path / "b.ndjson"
        data.write_text("".join(t + "\n" for t in texts))
    return data


def screen(
    tmp_path: Path, form: str, rows: list[Any], protocol: str, flags=(), as_of: str = "2024-06-01"
) -> dict:
    (tmp_path / "p.crit").write_text(protocol)
    data = write(tmp_path, form, rows)
    out = tmp_path / "out.jsonl"
    argv = ["screen", "--as-of", as_of, *flags, str(tmp_path / "p.crit"), str(data)]
    assert main([*argv, "--patients", str(out)]) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    return row


def duckdb_row(
    tmp_path: Path, form: str, rows: list[Any], protocol: str, flags=(), as_of: str = "2024-06-01"
) -> dict:
    """The same through `ingest` and the DuckDB engine: its --patients CSV row."""
    pytest.importorskip("duckdb")
    (tmp_path / "p.crit").write_text(protocol)
    data = write(tmp_path, form, rows)
    cohort, out = tmp_path / "c.duckdb", tmp_path / "sql.csv"
    cohort.unlink(missing_ok=True)
    crit = str(tmp_path / "p.crit")
    assert main(["ingest", "--as-of", as_of, *flags, "-o", str(cohort), crit, str(data)]) == 0
    assert main(["screen", "--as-of", as_of, crit, str(cohort), "--patients", str(out)]) == 0
    (row,) = list(csv.DictReader(out.open()))
    return row


def said(row: dict, fact: str, text: str) -> bool:
    return any(p.startswith(f"{fact}:") and text in p for p in row["problems"])
