"""Byte-for-byte check of the FHIR reading path: screen and ingest outputs of two trees.

Runs, as whole processes with `PYTHONPATH=<tree>/src`, for every protocol in protocols/:
`critlang screen --as-of 2021-03-31 PROTOCOL DATA --patients out.csv` (stdout and CSV),
the same with `--absent-means-no conditions,medications --format json`, and
`critlang ingest` of one protocol (every table dumped, rows sorted). The outputs go
to OUT; `--against DIR` compares them with a run of another tree, file for file.

    python bench/compare_outputs.py OUT [--tree DIR] [--against DIR] [--jobs N]

TREE is copied first (without .git) and its copy run, so that editing the tree while the
processes run (about 4 minutes) changes nothing.

A performance change to the reading path must leave every file identical (it changes
how fast, never what is read).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "synthea-r4"
AS_OF = "2021-03-31"
INGESTED = "nct05610826"


def _run(tree: Path, args: list[str], out: Path, name: str, jobs: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "critlang", *args, "--jobs", jobs],
        capture_output=True,
        env=env,
        cwd=out,  # outputs named relative to it, so two runs print the same paths
    )
    (out / f"{name}.stdout").write_bytes(proc.stdout)
    (out / f"{name}.stderr").write_bytes(proc.stderr)
    (out / f"{name}.rc").write_text(f"{proc.returncode}\n")


def _dump_cohort(cohort: Path, out: Path) -> None:
    import duckdb

    con = duckdb.connect(str(cohort), read_only=True)
    try:
        for (table,) in con.execute(
            "SELECT table_name FROM information_schema.tables ORDER BY 1"
        ).fetchall():
            rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
            # rows sorted: DuckDB may store a table built in parallel in any order
            with (out / f"ingest.{table}.txt").open("w") as f:
                for line in sorted(repr(row) for row in rows):
                    f.write(line + "\n")
    finally:
        con.close()


def produce(tree: Path, out: Path, data: Path, jobs: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    # the protocols of this checkout for both trees: only the reading code differs
    for crit in sorted((ROOT / "protocols").glob("*/current.crit")):
        name = crit.parent.name
        csv = f"{name}.csv"
        _run(
            tree,
            ["screen", "--as-of", AS_OF, str(crit), str(data), "--patients", csv],
            out,
            name,
            jobs,
        )
        feas = f"{name}.absent.jsonl"
        _run(
            tree,
            [
                "screen",
                "--as-of",
                AS_OF,
                "--absent-means-no",
                "conditions,medications",
                "--format",
                "json",
                str(crit),
                str(data),
                "--patients",
                feas,
            ],
            out,
            f"{name}.absent",
            jobs,
        )
    cohort = out / "cohort.duckdb"
    cohort.unlink(missing_ok=True)
    crit = ROOT / "protocols" / INGESTED / "current.crit"
    _run(
        tree,
        ["ingest", "--as-of", AS_OF, str(crit), str(data), "-o", cohort.name],
        out,
        "ingest",
        jobs,
    )
    _dump_cohort(cohort, out)
    cohort.unlink()


def compare(a: Path, b: Path) -> list[str]:
    names = sorted({p.name for p in a.iterdir()} | {p.name for p in b.iterdir()})
    return [
        n
        for n in names
        if not (a / n).exists()
        or not (b / n).exists()
        or not filecmp.cmp(a / n, b / n, shallow=False)
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--tree", type=Path, default=ROOT)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--against", type=Path)
    ap.add_argument("--jobs", default="1")
    a = ap.parse_args()
    if not a.data.is_dir():
        print(f"no data at {a.data}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "tree"
        shutil.copytree(a.tree.resolve(), copy, ignore=shutil.ignore_patterns(".git"))
        produce(copy, a.out.resolve(), a.data.resolve(), a.jobs)
    if a.against is None:
        return 0
    diff = compare(a.out, a.against)
    for n in diff:
        print(f"DIFFERS: {n}")
    print(f"{len(list(a.out.iterdir()))} files compared, {len(diff)} differ")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
