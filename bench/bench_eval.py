"""Per-patient evaluation benchmark for NCT05610826 (current version).

Measures, in one run on this machine, over N generated patients:
  (a) the compiled evaluator on pre-normalised records,
  (b) a hand-written Python function (bench/handwritten.py) on the same records,
  (c) the reference interpreter (pint quantities, exact fractions) on the same patients,
and prints a/b and c/a, then the cold start of `critlang eval` (bench_coldstart.py).

    python bench/bench_eval.py [N]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_coldstart
from handwritten import evaluate as handwritten
from patients import AS_OF, ROOT, generate

from critlang.backends.python import compile_protocol
from critlang.data.records import read_record
from critlang.frontend import analyse_file
from critlang.interpreter import Interpreter

PROTOCOL = ROOT / "protocols" / "nct05610826" / "current.crit"


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(n: int = 10_000, interpreted: int = 500, rounds: int = 5) -> dict[str, float]:
    checked = analyse_file(PROTOCOL).result
    assert checked is not None
    compiled = compile_protocol(checked)
    raw = generate(n)
    records = [read_record(checked, p, AS_OF) for p in raw]
    normalised = [compiled.normalise(r) for r in records]

    # the baseline must decide exactly like the compiled code, or the comparison is void
    compiled_verdicts = [compiled.evaluate(f)[0] for f in normalised]
    hand_verdicts = [handwritten(f) for f in normalised]
    disagree = sum(a != b for a, b in zip(compiled_verdicts, hand_verdicts, strict=True))
    assert disagree == 0, f"hand-written baseline disagrees on {disagree} patients"
    mix = {v: compiled_verdicts.count(v) for v in sorted(set(compiled_verdicts))}

    evaluate = compiled.evaluate
    interp = Interpreter(checked)
    sample = records[:interpreted]
    # interleaved rounds, best of each: machine noise hits all three alike
    a = b = c = float("inf")
    for _ in range(rounds):
        a = min(a, best_of(1, lambda: [evaluate(f) for f in normalised]) / n)
        b = min(b, best_of(1, lambda: [handwritten(f) for f in normalised]) / n)
        c = min(c, best_of(1, lambda: [interp.run(r) for r in sample]) / len(sample))
    load = best_of(1, lambda: [compiled.normalise(read_record(checked, p, AS_OF)) for p in raw]) / n

    print(f"patients: {n} (verdicts {mix}); interpreter on {len(sample)}")
    print(f"(a) compiled evaluator      {a * 1e6:9.2f} us/patient")
    print(f"(b) hand-written Python     {b * 1e6:9.2f} us/patient")
    print(f"(c) reference interpreter   {c * 1e6:9.2f} us/patient")
    print(f"    record load + normalise {load * 1e6:9.2f} us/patient (not part of a, b)")
    print(f"a/b = {a / b:.2f}   (target <= 1.2)")
    print(f"c/a = {c / a:.0f}   (target >= 200)")
    print("cold start (bench/bench_coldstart.py):")
    bench_coldstart.main(runs=5)
    return {"a": a, "b": b, "c": c, "a/b": a / b, "c/a": c / a}


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
