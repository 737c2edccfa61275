"""Scale benchmarks, each step timed as a whole process where a user runs a process.

    python bench/bench_scale.py ingest 10000 100000   # replicated Synthea -> NDJSON -> ingest
    python bench/bench_scale.py ingest 2000 --baseline OLD/src --runs 2  # and old code, in turn
    python bench/bench_scale.py sql 1000000           # facts generated in DuckDB, screened
    python bench/bench_scale.py cohort 1000000 c.duckdb  # only generate (and keep) a cohort
    python bench/bench_scale.py screen c.duckdb 3 [OLD/src]  # `critlang screen` on it, 3 runs

ingest: the 390 shared Synthea bundles (../shared/data/synthea-r4 next to this
checkout: the command exits 1 without them) are replicated (patient ids and
references renamed) into one NDJSON file per resource type until N patients, then
`critlang ingest` runs as a separate process: wall time, patients/s and its peak
resident memory (wait4 rusage).

sql: N patients generated straight into the facts table by DuckDB SQL (every fact of
the trial, values spread over its thresholds, lab histories, lists; one INSERT); then
the per-patient tables `critlang ingest` writes after the facts (backends/sql/values.py),
timed on their own as the ingest-time work they are; then `critlang screen` on the
cohort (DuckDB, reading the per-patient tables) as a whole process, and in the same
run the Python evaluator on the same table (rows read from DuckDB, each fact picked as
the query picks it, then the compiled `evaluate`), on a sample of the patients,
reported per patient; up to 200,000 patients, `critlang screen` once more on the same
cohort without the per-patient tables (the query's pick and pivot over the facts rows).
Each line gives the load average: figures taken under load are the machine's.

cohort / screen: the same generated cohort (facts and per-patient tables) written to a
file that is kept, then `critlang screen` on it run again and again (wall time, CPU
seconds of the process, peak RSS, load average each), to measure the screening alone
where generating the cohort takes minutes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "synthea-r4"
PROTOCOL = ROOT / "protocols" / "nct05610826" / "current.crit"
AS_OF = dt.date(2021, 3, 31)
sys.path.insert(0, str(ROOT / "src"))


def run(cmd: list[str], src: Path = ROOT / "src") -> tuple[float, int, str]:
    """(seconds, peak RSS in MiB, stdout) of a child process (its CPU seconds: `LAST`),
    critlang imported from `src`."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = p.stdout.read().decode() if p.stdout else ""
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        err = p.stderr.read().decode() if p.stderr else ""
        raise SystemExit(f"{cmd} failed: {err[-2000:]}")
    LAST["cpu"] = usage.ru_utime + usage.ru_stime
    return wall, usage.ru_maxrss // 1024, out


LAST: dict[str, float] = {}


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def replicate(count: int, folder: Path) -> None:
    """NDJSON of `count` patients: the Synthea bundles again and again, renamed."""
    bundles = sorted(SHARED.glob("*.json"))
    if not bundles:
        raise SystemExit(
            f"no Synthea bundles in {SHARED} (the shared data folder next to this "
            "checkout: ../shared/data/synthea-r4)"
        )
    sources = [json.loads(b.read_bytes()) for b in bundles]
    handles: dict[str, Any] = {}
    try:
        for i in range(count):
            bundle = sources[i % len(sources)]
            suffix = f"-r{i}"
            for entry in bundle.get("entry", []):
                r = entry.get("resource") or {}
                kind = r.get("resourceType", "Other")
                text = json.dumps(r, separators=(",", ":"))
                if kind == "Patient":
                    pid = r.get("id", "")
                    text = text.replace(f'"id":"{pid}"', f'"id":"{pid}{suffix}"', 1)
                else:
                    # every reference to a patient or a resource of this bundle is renamed
                    text = text.replace('"reference":"urn:uuid:', '"reference":"Patient/')
                    text = _rename_refs(text, suffix)
                fh = handles.get(kind)
                if fh is None:
                    fh = handles[kind] = (folder / f"{kind}.ndjson").open("w")
                fh.write(text + "\n")
    finally:
        for fh in handles.values():
            fh.close()


def _rename_refs(text: str, suffix: str) -> str:
    out = []
    for part in text.split('"reference":"Patient/'):
        if out:
            end = part.index('"')
            part = part[:end] + suffix + part[end:]
        out.append(part)
    return '"reference":"Patient/'.join(out)


def bench_ingest(sizes: list[int], baseline: Path | None = None, runs: int = 1) -> None:
    """`critlang ingest` of N replicated patients as a whole process: wall time,
    patients/s, CPU seconds and peak RSS; with `baseline` (another tree's src), that
    code on the same files in the same run, turn by turn, and the ratios."""
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="critlang-bench-") as tmp:
            folder = Path(tmp) / "ndjson"
            folder.mkdir()
            replicate(n, folder)
            mb = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
            out = Path(tmp) / "cohort.duckdb"
            cmd = [sys.executable, "-m", "critlang", "ingest", "--as-of", AS_OF.isoformat(),
                   str(PROTOCOL), str(folder), "-o", str(out)]  # fmt: skip
            trees = [("this", ROOT / "src")] + ([("baseline", baseline)] if baseline else [])
            cpu: dict[str, list[float]] = {name: [] for name, _ in trees}
            for _ in range(runs):
                for name, src in trees:
                    out.unlink(missing_ok=True)
                    wall, rss, text = run(cmd, src)
                    cpu[name].append(LAST["cpu"])
                    print(
                        f"ingest {n} patients ({mb:.0f} MiB NDJSON), {name}: {wall:.1f} s, "
                        f"{n / wall:.0f} patients/s, CPU {LAST['cpu']:.2f} s "
                        f"({n / LAST['cpu']:.0f} patients per CPU second), peak RSS {rss} MiB; "
                        f"{load()}; {text.strip().splitlines()[-1]}",
                        flush=True,
                    )
            if baseline:
                best = {name: min(times) for name, times in cpu.items()}
                print(f"ingest {n}: CPU baseline / this {best['baseline'] / best['this']:.2f}")


GENERATE = """
CREATE TABLE critlang_patients AS
  SELECT i::INTEGER AS pid, 'P' || i AS id, 'generated' AS path, NULL::VARCHAR AS deceased
  FROM range(1, {n} + 1) t(i);
"""


def generate_cohort(n: int, path: Path) -> None:
    """N patients' facts straight into the table, with DuckDB's random()."""
    import duckdb

    from critlang.backends.python import compile_protocol
    from critlang.data.ingest import COLUMNS, protocol_signature
    from critlang.frontend import analyse_file
    from critlang.typesys import BoolT, DateT, EnumT, IntT, ListT, NumberT, QuantT, ScaleT

    checked = analyse_file(PROTOCOL).result
    assert checked is not None
    compiled = compile_protocol(checked)
    con = duckdb.connect(str(path))
    con.execute("SET enable_progress_bar = false")
    con.execute("SELECT setseed(0.42)")
    con.execute(GENERATE.format(n=n))
    cols = ", ".join(f"{c} {k}" for c, k in COLUMNS if c != "pid")
    con.execute(f"CREATE TABLE critlang_facts (pid INTEGER, {cols})")
    today = AS_OF.toordinal()
    names = [c for c, _ in COLUMNS]

    selects: list[str] = []

    def insert(select: str) -> None:
        selects.append(select)

    base = "FROM critlang_patients WHERE random() < 0.9"
    for name, t in checked.record_types.items():
        null_row = {c: "NULL" for c in names}
        row = dict(null_row, pid="pid", fact=f"'{name}'", seq="0")
        if isinstance(t, (QuantT, NumberT)):
            # thresholds of the trial lie inside these spreads
            row["value"] = "round(random() * 400) / 10"
            row["day"] = f"{today} - CAST(floor(random() * 40) AS INTEGER)"
            if name in ("fasting_glucose", "prothrombin_time"):
                row["low"], row["high"] = "7.0", "13.5"
            for seq in (0, 1):  # a lab history of two values
                row["seq"] = str(seq)
                insert("SELECT " + ", ".join(row[c] for c in names) + " " + base)
            continue
        if isinstance(t, ListT):
            row["value"] = "2"
            insert("SELECT " + ", ".join(row[c] for c in names) + " " + base)
            for item in (0, 1):
                irow = dict(row, item=str(item), value="NULL")
                insert("SELECT " + ", ".join(irow[c] for c in names) + " " + base)
                for fname, ft in t.fields:
                    frow = dict(irow, field=f"'{fname}'")
                    if isinstance(ft, EnumT):
                        m = ", ".join(f"'{x}'" for x in ft.members)
                        k = len(ft.members)
                        pick = f"1 + CAST(floor(random() * {k}) AS INTEGER)"
                        frow["text"] = f"list_element([{m}], {pick})"
                    elif isinstance(ft, DateT):
                        frow["value"] = f"{today} - floor(random() * 800)"
                    elif isinstance(ft, IntT):
                        frow["value"] = f"{ft.low} + floor(random() * {ft.high - ft.low + 1})"
                    else:
                        frow["value"] = "CASE WHEN random() < 0.5 THEN 1 ELSE 0 END"
                    insert("SELECT " + ", ".join(frow[c] for c in names) + " " + base)
            continue
        if isinstance(t, ScaleT):
            k = len(t.members)
            row["value"] = f"floor(random() * {k})"
            row["text"] = "NULL"
        elif isinstance(t, EnumT):
            m = ", ".join(f"'{x}'" for x in t.members)
            row["text"] = (
                f"list_element([{m}], 1 + CAST(floor(random() * {len(t.members)}) AS INTEGER))"
            )
        elif isinstance(t, BoolT):
            row["value"] = "CASE WHEN random() < 0.2 THEN 1 ELSE 0 END"
        elif isinstance(t, DateT):
            row["value"] = f"{today} - floor(random() * 30000)"
        elif isinstance(t, IntT):
            row["value"] = f"{t.low} + floor(random() * {t.high - t.low + 1})"
        insert("SELECT " + ", ".join(row[c] for c in names) + " " + base)
    # one statement: DuckDB runs the parts in parallel (one INSERT each: 5x slower)
    con.execute(f"INSERT INTO critlang_facts ({', '.join(names)}) " + " UNION ALL ".join(selects))
    con.execute("CREATE TABLE critlang_meta (key VARCHAR, value VARCHAR)")
    meta = protocol_signature(compiled)
    meta["as_of"] = AS_OF.isoformat()
    con.executemany("INSERT INTO critlang_meta VALUES (?, ?)", sorted(meta.items()))
    con.close()


BUILD = """
import datetime as dt, sys, time
from critlang.backends.python import compile_protocol
from critlang.backends.sql.engines import connect_duckdb
from critlang.backends.sql.values import write_values
from critlang.frontend import analyse_file
compiled = compile_protocol(analyse_file(sys.argv[1]).result)
con = connect_duckdb(sys.argv[2])
write_values(con, compiled, dt.date.fromisoformat(sys.argv[3]))
con.close()
"""


def build_values(path: Path) -> tuple[float, int]:
    """The per-patient tables written into a generated cohort, as `critlang ingest` writes
    them after its facts (a process of its own: seconds, peak RSS in MiB)."""
    wall, rss, _ = run([sys.executable, "-c", BUILD, str(PROTOCOL), str(path), AS_OF.isoformat()])
    return wall, rss


def python_on_table(path: Path, sample: int) -> tuple[float, int]:
    """The Python evaluator on the first `sample` patients of the table: seconds, count."""
    import duckdb

    from critlang.backends.python import compile_protocol
    from critlang.data.records import window_start
    from critlang.frontend import analyse_file
    from critlang.typesys import BoolT, DateT, EnumT, ListT, ScaleT
    from critlang.units import parse_unit

    checked = analyse_file(PROTOCOL).result
    assert checked is not None
    compiled = compile_protocol(checked)
    types = checked.record_types
    windows = {}
    for name, info in checked.facts.items():
        look = info.lookback
        if look is not None and look.quantity is not None:
            start = window_start(AS_OF, look.quantity.value, parse_unit(look.quantity.unit))
            windows[name] = (start.toordinal(), AS_OF.toordinal())
    start_time = time.perf_counter()
    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute(
        "SELECT pid, fact, seq, item, field, value, text, day, low, high FROM critlang_facts "
        f"WHERE problem IS NULL AND pid <= {sample} ORDER BY pid"
    ).fetchall()
    count = 0
    i = 0
    while i < len(rows):
        pid = rows[i][0]
        j = i
        while j < len(rows) and rows[j][0] == pid:
            j += 1
        f: dict[str, Any] = {k: None for k in compiled.normalisers}
        for name in compiled.ranged:
            f[name + "#low"] = f[name + "#high"] = None
        for key, *_ in compiled.products:
            f[key] = None
        best: dict[str, tuple[Any, ...]] = {}
        items: dict[str, dict[int, dict[str, Any]]] = {}
        for r in rows[i:j]:
            _, fact, seq, item, field, value, text, day, low, high = r
            t = types.get(fact)
            if isinstance(t, ListT):
                if item is None:
                    items.setdefault(fact, {})
                elif field is not None:
                    ft = dict(t.fields)[field]
                    v = text if isinstance(ft, EnumT) and not isinstance(ft, ScaleT) else value
                    if isinstance(ft, BoolT):
                        v = value != 0
                    elif isinstance(ft, DateT):
                        v = int(value)
                    items.setdefault(fact, {}).setdefault(item, {})[field] = v
                continue
            w = windows.get(fact)
            if w is not None and (day is None or not w[0] <= day <= w[1]):
                continue
            key = (day is None, -(day or 0), seq)
            if fact not in best or key < best[fact][0]:
                best[fact] = (key, value, text, low, high)
        for fact, (_, value, text, low, high) in best.items():
            t = types.get(fact)
            v = text if isinstance(t, EnumT) and not isinstance(t, ScaleT) else value
            f[fact] = (value != 0) if isinstance(t, BoolT) else v
            if isinstance(t, DateT) or fact.startswith("@"):
                f[fact] = int(value)
            if fact in compiled.ranged:
                f[fact + "#low"], f[fact + "#high"] = low, high
                # `k x ULN` as the query computes it from such a table (pivot.py)
                for key, name, which, factor in compiled.products:
                    limit = high if which == "high" else low
                    if name == fact and limit is not None:
                        f[key] = float(factor) * limit
        for fact, its in items.items():
            t = types[fact]
            assert isinstance(t, ListT)
            f[fact] = [{fn: it.get(fn) for fn, _ in t.fields} for _, it in sorted(its.items())]
        f["@enrollment"] = AS_OF.toordinal()
        for a in checked.anchors:
            f.setdefault("@" + a, None)
        compiled.evaluate(f)
        count += 1
        i = j
    con.close()
    return time.perf_counter() - start_time, count


def bench_sql(n: int, sample: int = 100_000, facts_up_to: int = 200_000) -> None:
    with tempfile.TemporaryDirectory(prefix="critlang-bench-") as tmp:
        path = Path(tmp) / "cohort.duckdb"
        t = time.perf_counter()
        generate_cohort(n, path)
        print(
            f"generated {n} patients into the facts table in {time.perf_counter() - t:.1f} s "
            f"({load()})"
        )
        secs, rss = build_values(path)
        print(
            f"per-patient tables built from the facts table (ingest-time work, "
            f"backends/sql/values.py): {secs:.1f} s, {LAST['cpu']:.1f} CPU s, peak RSS {rss} MiB "
            f"({load()})"
        )
        cmd = [sys.executable, "-m", "critlang", "screen", str(PROTOCOL), str(path)]
        wall, rss, out = run(cmd)
        print(
            f"critlang screen (DuckDB, per-patient tables), {n} patients: {wall:.2f} s whole "
            f"process, {LAST['cpu']:.1f} CPU s, peak RSS {rss} MiB ({load()})"
        )
        print("\n".join("  " + line for line in out.splitlines()[:3]))
        secs, count = python_on_table(path, min(sample, n))
        per = secs / count
        print(
            f"Python evaluator on the same table: {count} patients in {secs:.1f} s "
            f"({per * 1e6:.0f} us a patient; {per * n:.0f} s for {n}) ({load()})"
        )
        print(f"ratio Python / DuckDB for {n} patients: {per * n / wall:.1f}")
        if n <= facts_up_to:  # the same cohort screened from the facts rows, for comparison
            import duckdb

            con = duckdb.connect(str(path))
            con.execute("DELETE FROM critlang_meta WHERE key = 'values'")
            con.close()
            wall_facts, rss, _ = run(cmd)
            print(
                f"critlang screen (DuckDB, facts table: pick and pivot), {n} patients: "
                f"{wall_facts:.2f} s whole process, {LAST['cpu']:.1f} CPU s, peak RSS {rss} MiB "
                f"({load()}); ratio facts / per-patient tables {wall_facts / wall:.1f}"
            )


def keep_cohort(n: int, path: Path) -> None:
    """Generate a cohort of `n` patients into `path` (replaced) with its per-patient tables."""
    path.unlink(missing_ok=True)
    t = time.perf_counter()
    generate_cohort(n, path)
    print(f"generated {n} patients in {time.perf_counter() - t:.1f} s ({load()})")
    secs, rss = build_values(path)
    print(
        f"per-patient tables: {secs:.1f} s, {LAST['cpu']:.1f} CPU s, peak RSS {rss} MiB ({load()})"
    )


def screen_runs(path: Path, runs: int, baseline: Path | None = None) -> None:
    """`critlang screen PROTOCOL path` as a whole process, `runs` times; with `baseline`
    (another critlang's src folder, e.g. an earlier commit's `git archive`), that one
    too, run by run in turn, and the ratios of the medians."""
    cmd = [sys.executable, "-m", "critlang", "screen", str(PROTOCOL), str(path)]
    # as an installed critlang runs: with its modules' bytecode cached (pip compiles it;
    # PYTHONDONTWRITEBYTECODE, set on the shared machines, made every start compile
    # critlang again: some 0.5 CPU s); the first run writes the cache and is not counted
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sources = {"this": ROOT / "src"} | ({"baseline": baseline} if baseline else {})
    for src in sources.values():
        run(cmd, src)
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in sources}
    for _ in range(runs):
        for name, src in sources.items():
            before = load()
            wall, rss, out = run(cmd, src)
            figures[name].append((wall, LAST["cpu"]))
            screened = next((ln for ln in out.splitlines() if "patients" in ln), "").strip()
            print(
                f"{name}: critlang screen {path.name}: {wall:.2f} s whole process, "
                f"{LAST['cpu']:.2f} CPU s, peak RSS {rss} MiB (before: {before}; after: "
                f"{load()}) {screened}",
                flush=True,
            )
    if baseline:
        med = {k: sorted(v)[len(v) // 2] for k, v in figures.items()}
        cpu = {k: sorted(c for _, c in v)[len(v) // 2] for k, v in figures.items()}
        print(
            f"baseline / this, medians: wall {med['baseline'][0] / med['this'][0]:.2f}, "
            f"CPU {cpu['baseline'] / cpu['this']:.2f}"
        )


def parse_args(argv: list[str]) -> Any:
    """`ingest N...`, `sql N`, `cohort N PATH` or `screen PATH [RUNS] [BASELINE]`;
    `--help` prints the module's description and starts nothing (sqltest7 finding 9);
    no benchmark is chosen by default."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="bench_scale.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="what", required=True, metavar="{ingest,sql,cohort,screen}")
    ing = sub.add_parser("ingest", help=f"replicated Synthea (needs {SHARED}) -> ingest")
    ing.add_argument("sizes", nargs="*", type=int, default=[10_000, 100_000], metavar="N")
    ing.add_argument("--baseline", type=Path, metavar="OLD_SRC", help="another tree's src")
    ing.add_argument("--runs", type=int, default=1, metavar="RUNS")
    sql = sub.add_parser("sql", help="facts generated in DuckDB, then screened")
    sql.add_argument("size", nargs="?", type=int, default=1_000_000, metavar="N")
    keep = sub.add_parser("cohort", help="generate a cohort file and keep it")
    keep.add_argument("size", type=int, metavar="N")
    keep.add_argument("path", type=Path, metavar="PATH")
    scr = sub.add_parser("screen", help="critlang screen on a kept cohort, RUNS times")
    scr.add_argument("path", type=Path, metavar="PATH")
    scr.add_argument("runs", nargs="?", type=int, default=3, metavar="RUNS")
    scr.add_argument("baseline", nargs="?", type=Path, default=None, metavar="BASELINE_SRC")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args(sys.argv[1:])
    if args.what == "ingest":
        bench_ingest(args.sizes, args.baseline, args.runs)
    elif args.what == "cohort":
        keep_cohort(args.size, args.path)
    elif args.what == "screen":
        screen_runs(args.path, args.runs, args.baseline)
    else:
        bench_sql(args.size)
