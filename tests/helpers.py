"""Paths shared by the tests."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRIAL = ROOT / "protocols" / "nct05610826"
SHARED = ROOT.parent / "shared"


def screenshot(page: Path, png: Path, profile: Path) -> None:
    """A headless Chromium screenshot of a local page (no network, a fresh profile)."""
    import subprocess

    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1100,1800",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )


def write_fhir(folder: Path, files: Iterable[tuple[str, Any]]) -> list[Path]:
    """Writes test inputs: bytes or text as given, a list of resources under a `.ndjson`
    name one per line, anything else as one JSON document; the paths in that order."""
    import json

    paths = []
    for name, content in files:
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        elif name.endswith(".ndjson"):
            path.write_text("".join(json.dumps(r) + "\n" for r in content))
        else:
            path.write_text(json.dumps(content))
        paths.append(path)
    return paths


# hemoglobin, a current condition and a therapy list, bound to codes: the declarations the
# FHIR reading tests share (Bundles, servers, resources of other files)
HB_CIRRHOSIS_CAPECITABINE = """\
fact hemoglobin: quantity g/dL
  measured within 28 days before enrollment
fact cirrhosis: boolean
  history current
fact prior_therapies: list of {kind: enum {capecitabine}, start: date, end: date}

codes hemoglobin: loinc "718-7"
codes cirrhosis: snomed "19943007"
codes prior_therapies.capecitabine: atc "L01BC06"
"""

STATUS_WORDS = {True: "met", False: "not met", None: "unknown"}


def duckdb_rows(compiled: Any, records: list[tuple[str, Any]], db: Path, as_of: Any) -> list[Any]:
    """Ingest native `records` ((name, data) pairs) into `db` and screen them on DuckDB:
    the per-patient rows (name, verdict, ..., each criterion's status word, ...)."""
    from critlang.backends.sql import compile_sql
    from critlang.backends.sql.engines import DuckDB
    from critlang.data.ingest import ingest_records

    ingest_records(compiled, records, db, as_of)
    engine = DuckDB(db)
    try:
        return engine.run(compile_sql(compiled, as_of)).patients
    finally:
        engine.close()


class TwoEvaluators:
    """One protocol text, checked and run by both evaluators (the compiled code and the
    interpreter), which the tests hold to the same answer (cel-python style).

    `statuses(record)` gives the verdict and the per-criterion statuses (True, False,
    None or NA) after asserting the two evaluators agree on both; `explain(record)` the
    explaining evaluator's result."""

    def __init__(self, text: str, name: str) -> None:
        from critlang.backends.python import compile_protocol
        from critlang.evaluate import Evaluator
        from critlang.frontend import analyse_text
        from critlang.interpreter import Interpreter

        checked = analyse_text(text, name).result
        assert checked is not None and checked.ok, checked and checked.diagnostics
        self.checked = checked
        self.compiled = compile_protocol(checked)
        self.interpreter = Interpreter(checked)
        self.evaluator = Evaluator(self.compiled)
        self.ids = [c.id for _, c in checked.protocol.criteria]

    def statuses(self, record: Any) -> tuple[str, tuple[Any, ...]]:
        from critlang.evaluate import run_compiled

        verdict, compiled = run_compiled(self.compiled, self.compiled.normalise(record))
        ref_verdict, ref, _ = self.interpreter.run(record)
        assert (verdict, compiled) == (ref_verdict, ref)
        return verdict, compiled

    def status(self, record: Any, criterion: str) -> Any:
        return self.statuses(record)[1][self.ids.index(criterion)]
