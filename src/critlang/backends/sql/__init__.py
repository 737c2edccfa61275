"""The SQL back end: a checked protocol as one query over the facts table.

`compiler` builds the query as a sqlglot tree (any dialect), `calendar` the calendar
arithmetic it needs, `engines` runs it on DuckDB, PostgreSQL or Spark. The facts table
is written by `critlang.data.ingest`.
"""

from .compiler import FACTS, PATIENTS, SqlProtocol, SqlUnsupported, compile_sql

DIALECTS = ("duckdb", "postgres", "spark")

__all__ = ["DIALECTS", "FACTS", "PATIENTS", "SqlProtocol", "SqlUnsupported", "compile_sql"]
