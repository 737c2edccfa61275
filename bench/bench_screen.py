"""Screening benchmark: `critlang screen` of the shared Synthea bundles vs plain json.load.

Both read the same 390 files in the same process; the target is screen <= 1.5 x json.load.
Protocol compilation (once per run) is excluded from both; file reading is in both.

    python bench/bench_screen.py [DATA_DIR]
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path

from critlang.backends.python import compile_protocol
from critlang.data.fhir import Extractor, data_files
from critlang.frontend import analyse_file
from critlang.screen import screen

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = ROOT / "protocols" / "nct05610826" / "current.crit"
DATA = ROOT.parent / "shared" / "data" / "synthea-r4"
AS_OF = dt.date(2021, 3, 31)


def best(rounds: int, fn) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(data: Path = DATA, rounds: int = 5) -> dict[str, float]:
    files, problems = data_files([str(data)])
    assert not problems, problems
    checked = analyse_file(PROTOCOL).result
    assert checked is not None
    compiled = compile_protocol(checked)
    extractor = Extractor(checked)

    def load_all() -> None:
        for f in files:
            with f.open("rb") as fh:
                json.load(fh)

    def screen_all() -> None:
        result = screen(compiled, extractor.patients(files), extractor, AS_OF)
        assert len(result.patients) == len(files)

    load = screen_time = float("inf")
    for _ in range(rounds):  # interleaved, best of each
        load = min(load, best(1, load_all))
        screen_time = min(screen_time, best(1, screen_all))
    size = sum(f.stat().st_size for f in files) / 1e6
    print(f"{len(files)} bundles, {size:.0f} MB")
    print(f"json.load only      {load:7.3f} s")
    print(f"critlang screen     {screen_time:7.3f} s")
    print(f"ratio = {screen_time / load:.2f}   (target <= 1.5)")
    return {"load": load, "screen": screen_time, "ratio": screen_time / load}


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DATA)
