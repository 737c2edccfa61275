"""`critlang lint` and `critlang diff` as whole processes, against `critlang check`.

Measured in one run on this machine, best of R, wall-clock and CPU (children's user +
system time, which load from other processes does not inflate):
  - the trial (NCT05610826): lint current.crit, diff previous.crit current.crit;
  - a generated protocol of N criteria (bench/gen_protocol.py): lint, and diff against a
    version with three thresholds moved.
The baseline is `critlang check` on the same file in the same run (the cost of starting
Python and checking; lint and diff add the z3 work): the ratios are what to compare
between machines.

    python bench/bench_lint.py [N] [R]
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_protocol import generate

ROOT = Path(__file__).resolve().parents[1]
TRIAL = ROOT / "protocols" / "nct05610826"


def run(*args: str) -> tuple[float, float]:
    """(wall, cpu) seconds of one `critlang ...` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "critlang", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode in (0, 1), proc.stderr
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def best(repeats: int, *args: str) -> tuple[float, float]:
    runs = [run(*args) for _ in range(repeats)]
    return min(w for w, _ in runs), min(c for _, c in runs)


def main(n: int = 60, repeats: int = 3) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        gen = Path(tmp) / "gen.crit"
        text = generate(n, 0)
        gen.write_text(text)
        moved = Path(tmp) / "gen-moved.crit"
        lines = text.splitlines()
        changed = 0
        for i, line in enumerate(lines):
            if changed < 3 and line.startswith("  rule ") and " < " in line:
                lines[i] = line.replace(" < ", " <= ", 1)
                changed += 1
        moved.write_text("\n".join(lines) + "\n")
        figures = {
            "check trial": best(repeats, "check", str(TRIAL / "current.crit")),
            "lint trial": best(repeats, "lint", str(TRIAL / "current.crit")),
            "diff trial": best(
                repeats, "diff", str(TRIAL / "previous.crit"), str(TRIAL / "current.crit")
            ),
            f"check gen{n}": best(repeats, "check", str(gen)),
            f"lint gen{n}": best(repeats, "lint", str(gen)),
            f"diff gen{n}": best(repeats, "diff", str(gen), str(moved)),
        }
    for name, (wall, cpu) in figures.items():
        base = figures["check trial" if "trial" in name else f"check gen{n}"]
        print(f"{name:16s} wall {wall:6.2f} s  cpu {cpu:6.2f} s  cpu/check = {cpu / base[1]:5.2f}")
    return figures


if __name__ == "__main__":
    main(*(int(x) for x in sys.argv[1:3]))
