"""Cold start: `critlang eval` of one patient in a fresh process, as a user runs it.

Measures, interleaved in one run on this machine, whole processes of
  (a) `critlang eval --as-of 2026-11-27 <trial> <one patient>`: the console script beside
      this interpreter when it is installed (a pip-installed venv), else `python -m critlang`;
  (b) `python -c pass`: the interpreter starting and doing nothing;
  (c) `python -c "import json"`: starting and importing one small stdlib package;
and prints the median (and fastest) wall time and CPU time (user + system) of each, and a/b.
The target is a median of at most 0.15 s for (a). CPU time is the steadier figure on a
shared machine: wall time includes waiting for a core.

Bytecode caches are written first (a warm-up run of each command without
PYTHONDONTWRITEBYTECODE), so the runs measure an installed package, not compiling it.

    python bench/bench_coldstart.py [RUNS]
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRIAL = ROOT / "protocols" / "nct05610826"
PATIENT = TRIAL / "examples" / "ineligible_hb_8_0_g_dl.json"
TARGET = 0.15  # seconds, median of whole processes (issue 12)


def critlang_command() -> list[str]:
    """The installed console script beside this interpreter, else `python -m critlang`."""
    script = Path(sys.executable).with_name("critlang")
    return [str(script)] if script.exists() else [sys.executable, "-m", "critlang"]


def commands() -> dict[str, list[str]]:
    return {
        "critlang eval": [
            *critlang_command(),
            "eval",
            "--as-of",
            "2026-11-27",
            str(TRIAL / "current.crit"),
            str(PATIENT),
        ],
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import json'": [sys.executable, "-c", "import json"],
    }


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def main(runs: int = 21) -> dict[str, float]:
    cmds = commands()
    env = dict(os.environ)
    warm = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for argv in cmds.values():  # write the bytecode caches (where the package is writable)
        _run(argv, warm)
    wall: dict[str, list[float]] = {name: [] for name in cmds}
    cpu: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(runs):  # interleaved: machine noise hits all alike
        for name, argv in cmds.items():
            w, c = _run(argv, env)
            wall[name].append(w)
            cpu[name].append(c)
    print(f"{runs} runs of each, interleaved; critlang as `{' '.join(critlang_command())}`")
    print(f"{'':26} {'wall median':>12} {'wall min':>9} {'cpu median':>11} {'cpu min':>8}")
    figures: dict[str, float] = {}
    for name in cmds:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        figures[name] = w
        figures[name + " cpu"] = c
        print(f"{name:26} {w:11.3f}s {min(wall[name]):8.3f}s {c:10.3f}s {min(cpu[name]):7.3f}s")
    a, b = figures["critlang eval"], figures["python -c pass"]
    figures["ratio"] = a / b
    figures["cpu ratio"] = figures["critlang eval cpu"] / figures["python -c pass cpu"]
    met = "met" if a <= TARGET else "NOT met"
    print(f"critlang eval / python -c pass = {a / b:.1f} (cpu {figures['cpu ratio']:.1f})")
    print(f"median {a:.3f} s: target <= {TARGET} s {met}")
    return figures


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 21)
