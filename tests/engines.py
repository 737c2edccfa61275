"""Real engines for the SQL tests: a PostgreSQL server started here (initdb in a
temporary folder, pg_ctl on a local socket, stopped afterwards) and Spark in local
mode. Each helper returns None with the reason when the engine cannot run here, so the
test skips saying why; .ci/run installs and runs them all."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


@contextmanager
def postgres_server() -> Iterator[tuple[str | None, str]]:
    """(dsn, "") for a fresh server, or (None, why not)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        yield None, "psycopg is not installed (pip install '.[test]')"
        return
    bindir = _pg_bin()
    if bindir is None:
        yield None, "no PostgreSQL server binaries (pg_ctl) on this machine"
        return
    as_root = os.geteuid() == 0
    runner: list[str] = []
    if as_root:  # initdb refuses to run as root: run the server as `postgres`
        if shutil.which("runuser") is None:
            yield None, "running as root without runuser to start PostgreSQL as postgres"
            return
        runner = ["runuser", "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="critlang-pg-"))
    data, sock = folder / "data", folder / "sock"
    sock.mkdir()
    if as_root:
        shutil.chown(folder, "postgres")
        shutil.chown(sock, "postgres")
    started = False
    try:
        subprocess.run(
            [*runner, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
            check=True,
            capture_output=True,
        )
        options = f"-k {sock} -c listen_addresses='' -p 54329 -c fsync=off"
        subprocess.run(
            [*runner, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l",
             str(folder / "log"), "start"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        started = True
        yield f"host={sock} port=54329 user=postgres dbname=postgres", ""
    except (subprocess.CalledProcessError, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        yield None, f"PostgreSQL did not start: {exc} {detail.decode(errors='replace')[:300]}"
    finally:
        if started:
            subprocess.run(
                [*runner, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                capture_output=True,
            )
        shutil.rmtree(folder, ignore_errors=True)


def spark_reason() -> str:
    """Why Spark cannot run here, or ""."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install '.[test]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime (Spark needs Java 17)"
    return ""
