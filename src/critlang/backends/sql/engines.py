"""Run a compiled protocol's query on an engine: DuckDB (embedded), PostgreSQL, Spark.

Each engine returns the per-patient rows (pid, id, verdict, statuses...) in patient
order and the attrition row, both computed by the engine from the same sqlglot tree
written in its dialect.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlglot import exp

from ...data.ingest import COLUMNS, PATIENT_COLUMNS
from .compiler import FACTS, PATIENTS, SqlProtocol, as_words


@dataclass
class EngineResult:
    patients: list[tuple[Any, ...]]  # (pid, id, verdict, status...) ordered by pid
    attrition: dict[str, int]


RESULTS = "critlang_result"  # the per-patient rows, kept for the attrition query


def _ordered(query: SqlProtocol, dialect: str) -> str:
    """The stored rows (codes) as the words `screen` prints, in patient order."""
    table = exp.to_table(RESULTS)
    return as_words(table, query.criteria).order_by("pid", copy=False).sql(dialect)


def _codes(query: SqlProtocol, dialect: str) -> str:
    # written as it stands: the generator's defensive copy of the whole tree cost as
    # much as writing it (measured); no dialect's preprocessing changes these trees
    return query.codes.sql(dialect, copy=False)


def _attrition_dict(names: list[str], row: tuple[Any, ...]) -> dict[str, int]:
    return {name: int(v or 0) for name, v in zip(names, row, strict=True)}


MEMORY_FRACTION = 0.5  # of the machine's RAM, for DuckDB's buffer manager


def duckdb_memory_limit() -> str | None:
    """Half the physical memory (DuckDB's own default is 80%, too much for one process
    on a machine others share; above the limit it spills to disk, as it did at 1,000,000
    patients: docs/scale.md), or None where the size cannot be read."""
    import os

    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    return f"{max(256, int(total * MEMORY_FRACTION) >> 20)}MB"


def connect_duckdb(path: Path | str, read_only: bool = False) -> Any:
    """A DuckDB connection to a cohort file, its memory limited (duckdb_memory_limit)."""
    import duckdb

    limit = duckdb_memory_limit()
    config = {"memory_limit": limit} if limit else {}
    return duckdb.connect(str(path), read_only=read_only, config=config)


class DuckDB:
    """The embedded engine, on a cohort file written by `critlang ingest`."""

    dialect = "duckdb"

    def __init__(self, path: Path | str, read_only: bool = True) -> None:
        self.con = connect_duckdb(path, read_only)

    def meta(self) -> dict[str, str]:
        return dict(self.con.execute("SELECT key, value FROM critlang_meta").fetchall())

    def run(self, query: SqlProtocol, patients: bool = True) -> EngineResult:
        # the per-patient rows are written to a table first, also when they are not
        # fetched: the attrition query over the query itself inlines each status into
        # its every use (minutes instead of a fraction of a second at 100,000 patients)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {RESULTS} AS " + _codes(query, "duckdb"))
        rows = self.con.execute(_ordered(query, self.dialect)).fetchall() if patients else []
        cur = self.con.execute(query.attrition(RESULTS).sql(dialect=self.dialect))
        names = [d[0] for d in cur.description]
        return EngineResult(rows, _attrition_dict(names, cur.fetchone()))

    def close(self) -> None:
        self.con.close()


class Postgres:
    """A PostgreSQL server (psycopg 3). `load` copies a DuckDB cohort into it."""

    dialect = "postgres"

    def __init__(self, dsn: str) -> None:
        import psycopg

        # no server-side prepared statements: `SELECT * FROM critlang_result` returns other
        # columns for each protocol, and a plan psycopg prepared after five runs would
        # refuse them ("cached plan must not change result type")
        self.con = psycopg.connect(dsn, autocommit=True, prepare_threshold=None)
        # The compiled query is one large expression tree: PostgreSQL's LLVM JIT (on by
        # default where the server has it) spent minutes compiling it for a 1,000-patient
        # cohort that runs in seconds without it (measured, test_sql).
        self.con.execute("SET jit = off")

    def load(self, cohort: Path | str) -> None:
        """Replace the server's critlang tables by the cohort file's (COPY, streamed)."""
        import duckdb

        src = duckdb.connect(str(cohort), read_only=True)
        try:
            with self.con.cursor() as cur:
                for table, cols in ((PATIENTS, PATIENT_COLUMNS), (FACTS, COLUMNS)):
                    cur.execute(f"DROP TABLE IF EXISTS {table}")
                    types = {"DOUBLE": "DOUBLE PRECISION"}
                    cur.execute(
                        f"CREATE TABLE {table} ("
                        + ", ".join(f"{n} {types.get(k, k)}" for n, k in cols)
                        + ")"
                    )
                    names = ", ".join(n for n, _ in cols)
                    res = src.execute(f"SELECT {names} FROM {table}")
                    with cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                        while batch := res.fetchmany(50_000):
                            for row in batch:
                                copy.write_row(row)
                cur.execute(f"CREATE INDEX ON {FACTS} (pid, fact)")
                cur.execute(f"ANALYZE {FACTS}")
                cur.execute(f"ANALYZE {PATIENTS}")
        finally:
            src.close()

    def run(self, query: SqlProtocol, patients: bool = True) -> EngineResult:
        with self.con.cursor() as cur:
            rows: list[tuple[Any, ...]] = []
            cur.execute(f"DROP TABLE IF EXISTS {RESULTS}")
            cur.execute(f"CREATE TEMP TABLE {RESULTS} AS " + _codes(query, self.dialect))
            if patients:
                cur.execute(_ordered(query, self.dialect))
                rows = list(cur.fetchall())
            cur.execute(query.attrition(RESULTS).sql(dialect=self.dialect))
            names = [d.name for d in cur.description or ()]
            row = cur.fetchone()
            assert row is not None
            return EngineResult(rows, _attrition_dict(names, row))

    def close(self) -> None:
        self.con.close()


class Spark:
    """Spark SQL in local mode (pyspark); the cohort is read from Parquet files
    exported from the DuckDB cohort file."""

    dialect = "spark"

    def __init__(self, session: Any = None) -> None:
        if session is None:
            from pyspark.sql import SparkSession

            session = (
                SparkSession.builder.master("local[2]")
                .appName("critlang")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.shuffle.partitions", "4")
                .config("spark.sql.session.timeZone", "UTC")
                .getOrCreate()
            )
        self.spark = session

    def load(self, cohort: Path | str, workdir: Path) -> None:
        import duckdb

        src = duckdb.connect(str(cohort), read_only=True)
        try:
            for table in (PATIENTS, FACTS):
                out = workdir / f"{table}.parquet"
                src.execute(f"COPY {table} TO '{_sql_path(out)}' (FORMAT parquet)")
                self.spark.read.parquet(str(out)).createOrReplaceTempView(table)
        finally:
            src.close()

    def run(self, query: SqlProtocol, patients: bool = True) -> EngineResult:
        rows: list[tuple[Any, ...]] = []
        result = self.spark.sql(_codes(query, self.dialect)).cache()
        result.createOrReplaceTempView(RESULTS)
        if patients:
            rows = [tuple(r) for r in self.spark.sql(_ordered(query, self.dialect)).collect()]
        df = self.spark.sql(query.attrition(RESULTS).sql(dialect=self.dialect))
        row = df.collect()[0]
        return EngineResult(rows, _attrition_dict(list(df.columns), tuple(row)))

    def close(self) -> None:
        pass


def _sql_path(path: Path) -> str:
    text = str(path)
    if "'" in text:
        raise ValueError(f"{text}: a path with a quote cannot be given to COPY")
    return text
