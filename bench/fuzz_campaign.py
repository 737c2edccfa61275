"""A long fuzzing campaign (issue 14): `python bench/fuzz_campaign.py --cases 2000`.

Runs the cases of tests/fuzzing.py for seeds START..START+CASES (protocol mutants through
check/eval/fmt/render with the two evaluators compared on clean ones, mutated patient
records through eval, mutated FHIR bundles and NDJSON through screen when ../shared is
present) and writes every finding, with its seed, as JSON lines. A finding is replayed
by its seed: `protocol_case(seed, folder)` and friends are deterministic.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import fuzzing as fz


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--start", type=int, default=1000)
    ap.add_argument("--out", default="fuzz-findings.jsonl")
    ap.add_argument("--kinds", default="protocol,record,fhir")
    args = ap.parse_args()
    kinds = set(args.kinds.split(","))
    bundles = fz.fhir_resources(20) if "fhir" in kinds else []
    counts = {"protocol": 0, "clean protocol": 0, "record": 0, "fhir": 0, "findings": 0}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, open(args.out, "w", encoding="utf-8") as out:
        folder = Path(tmp)
        for seed in range(args.start, args.start + args.cases):
            found: list[fz.Finding] = []
            if "protocol" in kinds:
                f, clean = fz.protocol_case(seed, folder)
                found += f
                counts["protocol"] += 1
                counts["clean protocol"] += clean
            if "record" in kinds:
                found += fz.record_case(seed, folder)
                counts["record"] += 1
            if bundles:
                found += fz.fhir_case(seed, folder, bundles)
                counts["fhir"] += 1
            if (seed - args.start) % 10 == 9:  # progress, so a stopped campaign still tells
                elapsed = round(time.perf_counter() - start)
                print(json.dumps({**counts, "seconds": elapsed}), file=sys.stderr, flush=True)
            for f in found:
                counts["findings"] += 1
                row = {"kind": f.kind, "seed": f.seed, "problems": f.problems, "argv": f.argv}
                out.write(json.dumps(row) + "\n")
                out.flush()
                print(f"seed {seed} {f.kind}: {f.problems[0][:160]}", file=sys.stderr)
    counts["seconds"] = round(time.perf_counter() - start)
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
