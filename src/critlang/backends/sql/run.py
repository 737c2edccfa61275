"""`critlang screen --engine duckdb|postgres|spark`: a cohort file through an engine,
into the same Screening (attrition table, per-patient rows) the Python engine gives.

The attrition counts come from the engine (SQL aggregates), the per-patient rows too;
"most often missing" is not computed by the SQL engines (docs/scale.md).
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ...data.records import CONFLICT
from ...screen import AttritionRow, PatientRow, Screening
from ..python import Compiled
from .compiler import attrition_column, compile_sql
from .engines import DuckDB, EngineResult, Postgres, Spark
from .values import Layout

ENGINES = ("duckdb", "postgres", "spark")


class CohortError(ValueError):
    """The cohort file cannot be screened with this protocol or date (message says why)."""


class _Rows(Sequence[PatientRow]):
    """The engine's per-patient rows, made PatientRows only when someone reads them."""

    def __init__(
        self,
        rows: list[tuple[Any, ...]],
        paths: dict[int, str],
        count: int,
        problems: dict[int, list[str]] | None = None,
    ) -> None:
        self.rows = rows
        self.paths = paths
        self.problems = problems or {}  # pid -> "fact: why", as ingest wrote them
        self.count = count  # the patients screened, also when their rows were not fetched

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._row(r) for r in self.rows[i]]
        return self._row(self.rows[i])

    def __iter__(self) -> Iterator[PatientRow]:
        return (self._row(r) for r in self.rows)

    def _row(self, r: tuple[Any, ...]) -> PatientRow:
        dead = ["patient: deceased: never eligible"] if r[-1] == 1 else []  # 2: perhaps
        problems = dead + self.problems.get(r[0], [])
        return PatientRow(str(r[1]), self.paths.get(r[0], ""), r[2], tuple(r[3:-1]), [], problems)


class SqlScreening(Screening):
    counts: dict[str, int]
    # patients with conflicting candidates for a fact a list condition reads from the
    # patient row (SqlProtocol.unweighed): SQL leaves what reads it unknown where the
    # Python engine may decide (docs/scale.md; sqltest7 finding 5). Other conflicts are
    # weighed world by world as in Python (backends/sql/worlds.py)
    conflicted: int = 0

    def verdicts(self) -> dict[str, int]:
        return {v: self.counts[f"v_{v}"] for v in ("eligible", "ineligible", "undetermined")}

    def missing_counts(self) -> list[tuple[str, int]]:
        return []


def check_cohort(compiled: Compiled, meta: dict[str, str], as_of: dt.date | None) -> dt.date:
    """The date to screen as of; CohortError when the cohort was read for other facts
    or, from FHIR, as of another date."""
    from ...data.ingest_signature import signature_mismatch

    if "facts" not in meta:
        raise CohortError("not a cohort written by `critlang ingest` (no critlang_meta)")
    wrong = signature_mismatch(compiled, meta)
    if wrong:
        raise CohortError(
            "the cohort was ingested for facts or anchors declared differently ("
            + ", ".join(wrong[:8])
            + (", ..." if len(wrong) > 8 else "")
            + f"; ingested with {meta.get('protocol')}): run `critlang ingest` with this protocol"
        )
    read_as_of = meta.get("as_of") or None
    if read_as_of is None:
        if as_of is None:
            raise CohortError("the cohort has no reading date: give --as-of")
        return as_of
    if as_of is not None and as_of.isoformat() != read_as_of:
        raise CohortError(
            f"the cohort's records were read as of {read_as_of} (what is picked, look-back "
            f"windows, condition abatement and deaths depend on it); screen it --as-of "
            f"{read_as_of} or ingest it again --as-of {as_of.isoformat()}"
        )
    return dt.date.fromisoformat(read_as_of)


def screen_cohort(
    compiled: Compiled,
    cohort: Path,
    engine: str,
    as_of: dt.date | None,
    dsn: str | None = None,
    patients: bool = True,
) -> SqlScreening:
    """Screen a cohort file (`critlang ingest`) on an engine. Raises CohortError,
    SqlUnsupported, and the engine's own errors (the CLI reports them)."""
    local = DuckDB(cohort)
    try:
        meta = local.meta() if _has_meta(local) else {}
        day = check_cohort(compiled, meta, as_of)
        # on DuckDB, the per-patient tables ingest wrote where they hold what the query
        # reads (values.py); the other engines are given the facts table
        stored = Layout.from_meta(meta) if engine == "duckdb" else None
        query = compile_sql(compiled, day, stored)
        paths = (
            dict(local.con.execute("SELECT pid, path FROM critlang_patients").fetchall())
            if patients
            else {}
        )
        problems: dict[int, list[str]] = {}
        if patients:  # each patient's reading problems, as the Python engine lists them
            rows = local.con.execute(
                # in the order ingest wrote them (rowid), which is the Python engine's
                "SELECT pid, fact, problem FROM critlang_facts WHERE problem IS NOT NULL "
                "ORDER BY pid, rowid"
            ).fetchall()
            for pid, fact, why in rows:
                problems.setdefault(pid, []).append(f"{fact}: {why}")
        conflicted = 0
        if query.unweighed:  # conflicts a list condition reads: unknown in SQL (worlds.py)
            marks = sorted(f + CONFLICT for f in query.unweighed)
            (conflicted,) = local.con.execute(
                "SELECT COUNT(DISTINCT pid) FROM critlang_facts WHERE fact IN "
                f"({', '.join('?' for _ in marks)})",
                marks,
            ).fetchone()
        if engine == "duckdb":
            result = local.run(query, patients)
    finally:
        local.close()
    if engine == "postgres":
        if not dsn:
            raise CohortError("--engine postgres needs --dsn")
        pg = Postgres(dsn)
        try:
            pg.load(cohort)
            result = pg.run(query, patients)
        finally:
            pg.close()
    elif engine == "spark":
        spark = Spark()
        with tempfile.TemporaryDirectory(prefix="critlang-spark-") as work:
            spark.load(cohort, Path(work))
            result = spark.run(query, patients)
    screening = _screening(compiled, day, result, paths, problems)
    screening.conflicted = int(conflicted or 0)
    if meta.get("absent_means_no"):  # ingested in feasibility mode: said, as screen says
        screening.absent_means_no = json.loads(meta["absent_means_no"])
    return screening


def _has_meta(engine: DuckDB) -> bool:
    names = {
        r[0]
        for r in engine.con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    return {"critlang_meta", "critlang_facts", "critlang_patients"} <= names


def _screening(
    compiled: Compiled,
    as_of: dt.date,
    result: EngineResult,
    paths: dict[int, str],
    problems: dict[int, list[str]] | None = None,
) -> SqlScreening:
    a = result.attrition
    s = SqlScreening(as_of, [c.id for c in compiled.criteria])
    s.counts = a
    s.patients = _Rows(result.patients, paths, a["patients"], problems)  # type: ignore[assignment]
    s.deceased = a.get("deceased", 0)
    s.maybe_deceased = a.get("maybe_deceased", 0)
    for crit in compiled.criteria:
        s.attrition.append(
            AttritionRow(
                crit.id,
                crit.section,
                *(a[attrition_column(crit.id, j)] for j in range(6)),
            )
        )
    return s
