"""Screening benchmark: `critlang screen` of the shared Synthea bundles vs `json.load`.

Both are measured as whole processes, as a user runs them, in the same run (interleaved,
best of each): process A is `python -c` that `json.load`s every file (the standard
library merely reading the data), process B is `python -m critlang screen --as-of
2021-03-31 protocols/nct05610826/current.crit DATA` (start-up, protocol compilation,
reading, evaluation and the attrition table included), with its default `--jobs` (the
cores this process may use) and again with `--jobs 1` (one process, as `json.load` runs).
Target: B / A <= 1.0. The package's bytecode is written first (as an installation does),
so that B does not compile critlang's modules at every start when the environment says
PYTHONDONTWRITEBYTECODE.

    python bench/bench_screen.py [DATA_DIR] [--rounds N]
"""

from __future__ import annotations

import argparse
import compileall
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = ROOT / "protocols" / "nct05610826" / "current.crit"
DATA = ROOT.parent / "shared" / "data" / "synthea-r4"
AS_OF = "2021-03-31"
LOAD = (
    "import json, sys\n"
    "from pathlib import Path\n"
    "for f in sorted(Path(sys.argv[1]).glob('*.json')):\n"
    "    with f.open('rb') as fh:\n"
    "        json.load(fh)\n"
)


def _run(argv: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t


def main(data: Path = DATA, rounds: int = 5) -> dict[str, float]:
    load_cmd = [sys.executable, "-c", LOAD, str(data)]
    screen_cmd = [
        sys.executable,
        "-m",
        "critlang",
        "screen",
        "--as-of",
        AS_OF,
        str(PROTOCOL),
        str(data),
    ]
    compileall.compile_dir(ROOT / "src", quiet=1)
    load = screen_time = single = float("inf")
    for _ in range(rounds):  # interleaved, best of each: all see the same machine load
        load = min(load, _run(load_cmd))
        screen_time = min(screen_time, _run(screen_cmd))
        single = min(single, _run([*screen_cmd, "--jobs", "1"]))
    files = sorted(data.glob("*.json"))
    size = sum(f.stat().st_size for f in files) / 1e6
    print(f"{len(files)} bundles, {size:.0f} MB, whole processes, best of {rounds}")
    print(f"python: json.load every file   {load:7.3f} s")
    print(f"critlang screen                {screen_time:7.3f} s   ({os.cpu_count()} cores)")
    print(f"critlang screen --jobs 1       {single:7.3f} s")
    print(f"ratio = {screen_time / load:.2f}   (target <= 1.0); --jobs 1: {single / load:.2f}")
    return {
        "load": load,
        "screen": screen_time,
        "ratio": screen_time / load,
        "single": single,
        "single_ratio": single / load,
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", type=Path, default=DATA)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    main(a.data, a.rounds)
