"""Byte-for-byte check of what `critlang` prints: the outputs of two source trees.

Runs, as whole processes with `PYTHONPATH=SRC` (from this repository's root, on its
protocols): `critlang eval` of every example patient under protocols/*/examples, one
process per patient, as text and `--format json`; `eval` of each examples folder against
each protocol version (text and JSON, with and without `--details`, `--arm 2`, today's
date); `check` (text, JSON, `--verbose`) and `test` of every protocol folder; `--help`,
`--version`, usage errors and mistyped flags of every command; unreadable inputs. Each
command's exit code, stdout and stderr go to one file in OUT; `--against DIR` compares
them with a run of another tree, file for file.

    python bench/compare_cli_outputs.py SRC OUT [--against DIR] [--jobs N]

A start-up change (docs/performance.md, "Cold start") must leave every file identical.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import filecmp
import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("check", "eval", "screen", "ingest", "sql", "fmt", "test", "render", "diff")
COMMANDS += ("lint", "impact")
AS_OF = ("--as-of", "2026-11-27")


def command_lines() -> list[list[str]]:
    jobs: list[list[str]] = [["--help"], [], ["nonsense"], ["--version"], ["evl"]]
    for c in COMMANDS:
        jobs += [[c, "--help"], [c], [c, "--no-such-flag", "x"], [c, "--form", "json", "x"]]
    for folder in sorted(p for p in (ROOT / "protocols").iterdir() if p.is_dir()):
        rel = str(folder.relative_to(ROOT))
        jobs += [["check", rel], ["check", "--format", "json", rel], ["check", "--verbose", rel]]
        jobs += [["test", rel]]
        examples = folder / "examples"
        if not examples.is_dir():
            continue
        ex = str(examples.relative_to(ROOT))
        for crit in sorted(folder.glob("*.crit")):
            c = str(crit.relative_to(ROOT))
            for fmt in ("text", "json"):
                jobs += [["eval", *AS_OF, "--format", fmt, c, ex]]
                jobs += [["eval", *AS_OF, "--details", "--format", fmt, c, ex]]
            if crit.name != "current.crit":
                continue
            for patient in sorted(examples.glob("*.json")):
                p = str(patient.relative_to(ROOT))
                jobs += [["eval", *AS_OF, c, p], ["eval", *AS_OF, "--format", "json", c, p]]
            jobs += [["eval", c, ex], ["eval", "--arm", "2", *AS_OF, c, ex]]
    trial = "protocols/nct05610826"
    jobs += [
        ["eval", *AS_OF, "no/such.crit", "x.json"],
        ["eval", "protocols/", "x.json"],
        ["eval", "--as-of", "2026-13-01", f"{trial}/current.crit", f"{trial}/examples/"],
        ["eval", f"{trial}/current.crit", "no/such.json"],
    ]
    return jobs


def run(argv: list[str], src: str, out: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "COLUMNS")}
    env["PYTHONPATH"] = src
    proc = subprocess.run(
        [sys.executable, "-m", "critlang", *argv], cwd=ROOT, env=env, capture_output=True
    )
    name = hashlib.sha1(" ".join(argv).encode()).hexdigest()[:12]
    head = f"$ {' '.join(argv)}\nexit {proc.returncode}\n--stdout\n".encode()
    (out / name).write_bytes(head + proc.stdout + b"--stderr\n" + proc.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", help="the source tree's src folder (PYTHONPATH)")
    ap.add_argument("out", type=Path, help="where the outputs go (one file per command)")
    ap.add_argument("--against", type=Path, help="the outputs of another tree to compare")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = command_lines()
    with cf.ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda argv: run(argv, str(Path(args.src).resolve()), args.out), jobs))
    print(f"{len(jobs)} commands")
    if args.against is None:
        return 0
    names = sorted({p.name for p in args.out.iterdir()} | {p.name for p in args.against.iterdir()})
    _, differ, missing = filecmp.cmpfiles(args.out, args.against, names, shallow=False)
    for name in differ + missing:
        first = (args.out / name).read_text(errors="replace").split("\n")[0]
        print(f"differs: {first}")
    print("identical" if not differ and not missing else f"{len(differ + missing)} differ")
    return 1 if differ or missing else 0


if __name__ == "__main__":
    sys.exit(main())
