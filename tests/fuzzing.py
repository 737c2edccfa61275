"""Fuzzing machinery shared by tests/test_fuzz.py (a fixed sample in CI) and
bench/fuzz_campaign.py (long campaigns): structure-aware mutation of the real protocols,
of FHIR resources and of native patient records, run through the command-line entry
point, with the checks every case must pass.

A case is a seed: `mutate_protocol(text, random.Random(seed))` is deterministic, so any
finding is replayed by its seed.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import io
import json
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from critlang import cli
from critlang.data.records import read_record
from critlang.evaluate import EvaluationFault, run_compiled
from critlang.frontend import analyse_file
from critlang.interpreter import Interpreter
from critlang.parser import _items
from helpers import ROOT, SHARED, TRIAL

PROTOCOLS = sorted(p for p in (ROOT / "protocols").rglob("*.crit"))
EXAMPLES = sorted((TRIAL / "examples").glob("*.json"))
SYNTHEA = SHARED / "data" / "synthea-r4"
AS_OF = "2026-11-27"
# CPU seconds per command (process time, so a loaded machine does not count): a linear
# phase takes well under one on these inputs, an exponential or quadratic one minutes
SECONDS_PER_CASE = 30.0

HOSTILE_NUMBERS = [
    "0", "1", "0.0", "9" * 16, "9" * 400, "9" * 4301, "0." + "0" * 20 + "1",
    "999999999999999", "1.000000000000001", "00000000000000000000001", "4", "-1",
]  # fmt: skip
HOSTILE_UNITS = [
    "mg/dL", "mmol/L", "x10^9/L", "g/L", "%", "years", "weeks", "months", "days", "kg",
    "mg^9999999", "10^300/L", "x10^-999/L", "mL/min/{1.73_m2}", "[iU]/L", "{tot}", "m2",
    "mg/dL/mg/dL", "s", "h", "ug", "kg/m2", "mol", "g/mol",
]  # fmt: skip
HOSTILE_DATES = ["0001-01-01", "9999-12-31", "2024-02-30", "2024-02-29", "1900-01-01"]
HOSTILE_LINES = [
    'import "/proc/self/environ"',
    'import "/dev/urandom"',
    'import "../../../../../../etc/passwd.crit"',
    'import "../lib/common-labs.crit"',
    'import "current.crit"',
    "define d0 = 1\n" + "".join(f"define d{i} = d{i - 1} + d{i - 1}\n" for i in range(1, 30)),
    "fact zz: enum {" + ", ".join(f"m{i}" for i in range(3000)) + "}",
    "fact zz: quantity mg/dL\n  measured within 2100 years before enrollment",
    "anchor zz",
    'assume zz = 3 mg/dL because "x"',
    "#" * 5000,
    '"' * 3,
    "\x00",
    "\ufeff",
]
WRAPS = [
    "not ({})",
    "({}) or ({})",
    "({}) and not ({})",
    "(" * 200 + "{}" + ")" * 200,
    "(" * 1100 + "{}" + ")" * 1100,
    "({} unless {})",
    "({} or {}) and ({} or {})",
]


@dataclass
class Outcome:
    argv: list[str]
    code: int
    out: str
    err: str
    seconds: float

    def problems(self) -> list[str]:
        """What is wrong with this run (empty when it is sound)."""
        found = []
        if self.code == cli.EXIT_INTERNAL:
            found.append(f"internal error: {self.err.strip()[-300:]}")
        if "Traceback" in self.out + self.err:
            found.append("traceback printed")
        if self.seconds > SECONDS_PER_CASE:
            found.append(f"slow: {self.seconds:.1f} CPU s")
        if self.code not in (0, 1, 2):
            found.append(f"exit code {self.code}")
        return found


def run_cli(*argv: str) -> Outcome:
    """critlang ARGV in this process, output captured."""
    out, err = io.StringIO(), io.StringIO()
    start = time.process_time()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return Outcome(list(argv), code, out.getvalue(), err.getvalue(), time.process_time() - start)


# ---------------------------------------------------------------- protocol mutation

_NUMBER = re.compile(r"(?<![\w.^])\d+(?:\.\d+)?")
_UNIT = re.compile(r"(?<=\d) ?((?:x10\^-?\d+)?[A-Za-z%/][A-Za-z0-9%/^.{}_\[\]]*)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NAME = re.compile(r"\b[a-z_][a-z0-9_]{2,}\b")
_RULE = re.compile(r"^(\s*(?:rule|applies if) )(.+)$", re.M)


def _sub_one(pattern: re.Pattern[str], text: str, rnd: random.Random, new: Any) -> str:
    found = list(pattern.finditer(text))
    if not found:
        return text
    m = rnd.choice(found)
    group = 1 if pattern.groups else 0
    replacement = new(m.group(group)) if callable(new) else new
    return text[: m.start(group)] + replacement + text[m.end(group) :]


def mutate_protocol(text: str, rnd: random.Random, rounds: int = 0) -> str:
    """One to three structure-aware edits of a criteria file: hostile ones, or (half the
    time) ones that keep it well-typed, so that many mutants check clean and the two
    evaluators are compared on them."""
    table = _BENIGN if rnd.random() < 0.5 else _MUTATIONS
    for _ in range(rounds or rnd.randint(1, 3)):
        text = table[rnd.randrange(len(table))](text, rnd)
    return text


def _items_of(text: str) -> list[tuple[int, int]]:
    return [(s, e) for s, e, _ in _items(text)]


def _drop_item(text: str, rnd: random.Random) -> str:
    items = _items_of(text)
    if not items:
        return text
    s, e = rnd.choice(items)
    return text[:s] + text[e:]


def _duplicate_item(text: str, rnd: random.Random) -> str:
    items = _items_of(text)
    if not items:
        return text
    s, e = rnd.choice(items)
    at = rnd.choice(items)[0]
    return text[:at] + text[s:e] + text[at:]


def _swap_items(text: str, rnd: random.Random) -> str:
    items = _items_of(text)
    if len(items) < 2:
        return text
    (s1, e1), (s2, e2) = sorted(rnd.sample(items, 2))
    return text[:s1] + text[s2:e2] + text[e1:s2] + text[s1:e1] + text[e2:]


def _number(text: str, rnd: random.Random) -> str:
    return _sub_one(_NUMBER, text, rnd, rnd.choice(HOSTILE_NUMBERS))


def _unit(text: str, rnd: random.Random) -> str:
    return _sub_one(_UNIT, text, rnd, rnd.choice(HOSTILE_UNITS))


def _date(text: str, rnd: random.Random) -> str:
    return _sub_one(_DATE, text, rnd, rnd.choice(HOSTILE_DATES))


def _name(text: str, rnd: random.Random) -> str:
    names = sorted(set(_NAME.findall(text)))
    return _sub_one(_NAME, text, rnd, rnd.choice(names)) if names else text


def _wrap_rule(text: str, rnd: random.Random) -> str:
    rules = list(_RULE.finditer(text))
    if not rules:
        return text
    m = rnd.choice(rules)
    other = rnd.choice(rules).group(2)
    shape = rnd.choice(WRAPS)
    parts = [m.group(2), other] * 2
    return text[: m.start(2)] + shape.format(*parts[: shape.count("{}")]) + text[m.end(2) :]


def _widen_rule(text: str, rnd: random.Random) -> str:
    """A rule or-ed with itself hundreds of times, or a deep else-chain."""
    rules = list(_RULE.finditer(text))
    if not rules:
        return text
    m = rnd.choice(rules)
    body = m.group(2)
    wide = " or ".join([f"({body})"] * rnd.choice([2, 50, 330]))
    return text[: m.start(2)] + wide + text[m.end(2) :]


def _insert_line(text: str, rnd: random.Random) -> str:
    items = _items_of(text)
    at = rnd.choice(items)[0] if items else len(text)
    return text[:at] + rnd.choice(HOSTILE_LINES) + "\n" + text[at:]


def _truncate(text: str, rnd: random.Random) -> str:
    return text[: rnd.randrange(len(text) + 1)]


def _splice_char(text: str, rnd: random.Random) -> str:
    at = rnd.randrange(len(text) + 1)
    return text[:at] + rnd.choice(SPLICED) + text[at:]


SPLICED = [*'(){}",.:=<>#\n\t x^/-*+', "\x00", "é", "µ"]


_COMPARE = re.compile(r"(?<=\s)(<=|>=|<|>)(?=\s)")
_JUNCTION = re.compile(r"(?<=\s)(and|or)(?=\s)")


def _plausible_number(text: str, rnd: random.Random) -> str:
    """A threshold moved: scaled by a small factor, same form."""

    def move(old: str) -> str:
        value = float(old) * rnd.choice([0.5, 0.9, 1.1, 2, 10])
        return str(int(value)) if "." not in old else f"{value:.2f}"

    return _sub_one(_NUMBER, text, rnd, move)


def _compare_op(text: str, rnd: random.Random) -> str:
    return _sub_one(_COMPARE, text, rnd, rnd.choice(["<", "<=", ">", ">="]))


def _junction(text: str, rnd: random.Random) -> str:
    return _sub_one(_JUNCTION, text, rnd, lambda old: "or" if old == "and" else "and")


_BENIGN = [_plausible_number, _compare_op, _junction, _wrap_rule, _widen_rule, _swap_items]

_MUTATIONS = [
    _drop_item, _duplicate_item, _swap_items, _number, _number, _unit, _unit, _date, _name,
    _name, _wrap_rule, _wrap_rule, _widen_rule, _insert_line, _truncate, _splice_char,
]  # fmt: skip


# ---------------------------------------------------------------- JSON mutation

HOSTILE_VALUES: list[Any] = [
    None, True, 5, -1, 0, 1e308, -1e308, "1e99999999", "9" * 4301, "", "x", [], {}, [[[]]],
    "0001-01-01", "9999-12-31", "2024-02-30", "\udcff", "NaN", "Infinity", {"value": "5"},
    {"value": 1e400}, {"coding": [{"code": ["a"]}]},
]  # fmt: skip


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def mutate_json(value: Any, rnd: random.Random, rounds: int = 0) -> Any:
    """Edits anywhere in a JSON value: replace, delete, wrap in a list, nest deeply
    (on a deep stack: the values it makes are thousands of levels deep)."""
    return cli._run_deep(lambda: _mutate_json(value, rnd, rounds))


def _mutate_json(value: Any, rnd: random.Random, rounds: int) -> Any:
    value = copy.deepcopy(value)
    for _ in range(rounds or rnd.randint(1, 4)):
        paths = list(_paths(value, ()))
        if not paths:
            return value
        path = rnd.choice(paths)
        kind = rnd.randrange(5)
        if kind == 0 or not path:
            new = rnd.choice(HOSTILE_VALUES)
        elif kind == 1:
            new = _nested(rnd.choice([10, 200, 5000]))
        elif kind == 2:
            new = [_get(value, path)]
        elif kind == 3:
            new = {"x": _get(value, path)}
        else:
            _delete(value, path)
            continue
        value = _set(value, path, new)
    return value


def _paths(value: Any, here: tuple[Any, ...]) -> Any:
    yield here
    if len(here) > 40:
        return  # inside a deeply nested value already
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*here, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:20]):
            yield from _paths(v, (*here, i))


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        value = value[k]
    return value


def _set(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    _get(value, path[:-1])[path[-1]] = new
    return value


def _delete(value: Any, path: tuple[Any, ...]) -> None:
    if path:
        del _get(value, path[:-1])[path[-1]]


def dump_json(value: Any) -> bytes:
    """JSON text, lone surrogates written as invalid UTF-8 bytes (a broken extract)."""
    text = cli._run_deep(lambda: json.dumps(value, ensure_ascii=False, allow_nan=True))
    return text.encode("utf-8", errors="surrogateescape")


def fhir_resources(limit: int = 3) -> list[Path]:
    """A few Synthea bundles from ../shared (empty when absent)."""
    if not SYNTHEA.is_dir():
        return []
    return sorted(SYNTHEA.glob("*.json"))[:limit]


def small_bundle(path: Path, rnd: random.Random, keep: int = 40) -> dict[str, Any]:
    """A bundle cut to its Patient and `keep` other entries (mutation stays fast)."""
    bundle = json.loads(path.read_text(encoding="utf-8"))
    entries = bundle.get("entry", [])
    patients = [e for e in entries if e.get("resource", {}).get("resourceType") == "Patient"]
    others = [e for e in entries if e not in patients]
    bundle["entry"] = patients + rnd.sample(others, min(keep, len(others)))
    return bundle


# ---------------------------------------------------------------- the cases


@dataclass
class Finding:
    kind: str  # "protocol", "record", "fhir", "grammar"
    seed: int
    problems: list[str]
    argv: list[str] = field(default_factory=list)
    input: str = ""


def copy_protocols(folder: Path) -> Path:
    """The protocols tree copied under `folder` (mutants sit beside their originals, so
    relative imports resolve; the copy's lib/ is passed as a library directory)."""
    import shutil

    target = folder / "protocols"
    if not target.exists():
        shutil.copytree(ROOT / "protocols", target)
    return target


def protocol_case(seed: int, folder: Path) -> tuple[list[Finding], bool]:
    """Mutate one of the real protocols; check, eval, render and fmt it; compare the two
    evaluators when it checks clean. Returns findings and whether the mutant was clean."""
    rnd = random.Random(seed)
    tree = copy_protocols(folder)
    source = rnd.choice(PROTOCOLS)
    text = mutate_protocol(source.read_text(encoding="utf-8"), rnd)
    target = tree / source.relative_to(ROOT / "protocols").parent / f"mutant-{seed}.crit"
    target.write_text(text, encoding="utf-8", errors="surrogatepass")
    lib = ["--library", str(tree / "lib")]
    examples = [str(e) for e in EXAMPLES[:5]]
    findings: list[Finding] = []
    try:
        outcomes = [
            run_cli("check", *lib, "--format", "json", str(target)),
            run_cli("eval", *lib, "--as-of", AS_OF, "--format", "json", str(target), *examples),
            run_cli("fmt", "--diff", str(target)),
            run_cli("render", *lib, str(target)),
        ]
        for o in outcomes:
            if o.problems():
                findings.append(Finding("protocol", seed, o.problems(), o.argv, text))
        clean = outcomes[0].code == 0
        if clean:
            problems = compare_evaluators(target, tree / "lib")
            if problems:
                findings.append(Finding("protocol", seed, problems, ["compare"], text))
    finally:
        target.unlink(missing_ok=True)
    return findings, clean


def compare_evaluators(path: Path, library: Path) -> list[str]:
    """Compiled vs reference interpreter on every example patient."""
    from critlang import frontend

    frontend.library_paths[:] = [library]

    def run() -> list[str]:
        analysis = analyse_file(path)
        if not analysis.ok or analysis.result is None or analysis.compiled is None:
            return [] if not analysis.ok else ["checked clean but did not compile"]
        interpreter = Interpreter(analysis.result)
        problems = []
        for example in EXAMPLES:
            data = json.loads(example.read_text(encoding="utf-8"))
            as_of = dt.date.fromisoformat(data.get("as_of", AS_OF))
            try:
                record = read_record(analysis.result, data, as_of, str(example))
                compiled = run_compiled(analysis.compiled, analysis.compiled.normalise(record))
                reference = interpreter.run(record)[:2]
            except EvaluationFault as exc:
                problems.append(f"{example.name}: {exc}")
                continue
            except Exception as exc:
                problems.append(f"{example.name}: {type(exc).__name__}: {exc}")
                continue
            if compiled != reference:
                problems.append(f"{example.name}: compiled {compiled} != interpreter {reference}")
        return problems

    return cli._run_deep(run)


def record_case(seed: int, folder: Path) -> list[Finding]:
    """Mutate an example patient record and evaluate it against the trial."""
    rnd = random.Random(seed)
    example = rnd.choice(EXAMPLES)
    data = mutate_json(json.loads(example.read_text(encoding="utf-8")), rnd)
    path = folder / f"record-{seed}.json"
    path.write_bytes(dump_json(data))
    o = run_cli(
        "eval", "--as-of", AS_OF, "--format", "json", str(TRIAL / "current.crit"), str(path)
    )
    path.unlink()
    return [Finding("record", seed, o.problems(), o.argv, path.name)] if o.problems() else []


def fhir_case(seed: int, folder: Path, bundles: list[Path]) -> list[Finding]:
    """Mutate resources of a (cut-down) Synthea bundle, as a Bundle or as NDJSON."""
    if not bundles:
        return []
    rnd = random.Random(seed)
    bundle = small_bundle(rnd.choice(bundles), rnd)
    entries = bundle["entry"]
    for _ in range(rnd.randint(1, 3)):
        if entries:
            i = rnd.randrange(len(entries))
            entries[i] = mutate_json(entries[i], rnd, rounds=rnd.randint(1, 3))
    if rnd.random() < 0.1:
        bundle = mutate_json(bundle, rnd, rounds=1)
    if rnd.random() < 0.5:
        path = folder / f"fhir-{seed}.json"
        path.write_bytes(dump_json(bundle))
    else:
        path = folder / f"fhir-{seed}.ndjson"
        lines = [dump_json(e.get("resource", e) if isinstance(e, dict) else e) for e in entries]
        if rnd.random() < 0.3:
            lines.insert(rnd.randrange(len(lines) + 1), b"\xff\xfe{not json")
        path.write_bytes(b"\n".join(lines) + b"\n")
    o = run_cli("screen", "--as-of", AS_OF, str(TRIAL / "current.crit"), str(path))
    path.unlink()
    return [Finding("fhir", seed, o.problems(), o.argv, path.name)] if o.problems() else []
