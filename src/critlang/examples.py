"""`critlang test`: example patients with expected outcomes, kept beside a protocol.

An example is a patient record (docs/patients.md) with three more keys:

    "protocol": "../current.crit",      the protocol it is for, relative to the file
    "as_of": "2026-11-27",              the screening date it was written for
    "expect": {"verdict": "ineligible", "criteria": {"E8": "met"}}

Each example is evaluated with the compiled evaluator and compared with its
expectation; a failure names the criterion that differs and the values used. With
coverage on, the reference interpreter records every value each sub-clause took, and
the report lists the criteria and sub-clauses no example made true, or none false.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import nodes as n
from .backends.python import Compiled, compile_protocol
from .checker import CheckResult
from .data.records import RecordError, read_record
from .evaluate import Evaluator
from .frontend import Analysis, analyse_file, import_roots, resolve_criteria_file
from .interpreter import Interpreter
from .source import find_files
from .typesys import BoolT


class ExampleError(ValueError):
    """An example file that cannot be run (not JSON, no expectation, no protocol)."""


@dataclass
class CaseResult:
    path: Path
    passed: bool
    messages: list[str] = field(default_factory=list)


@dataclass
class Coverage:
    """Values seen per condition node of one protocol, across its examples."""

    checked: CheckResult
    seen: dict[int, set[bool | None]] = field(default_factory=dict)

    def rows(self) -> list[tuple[str, str, bool, bool]]:
        """(criterion id, sub-clause text, seen true, seen false), in protocol order."""
        src = self.checked.source.text
        out = []
        for _, c in self.checked.protocol.criteria:
            for clause in c.clauses:
                if clause.expr is None:
                    continue
                for node in clause.expr.walk():
                    if not isinstance(node, n.Expr) or not isinstance(
                        self.checked.types.get(id(node)), BoolT
                    ):
                        continue
                    values = self.seen.get(id(node), set())
                    text = " ".join(src[node.span.start : node.span.end].split())
                    label = f"{clause.kind}: {text}" if node is clause.expr else text
                    out.append((c.id, label, True in values, False in values))
        return out


def _in_git(folder: Path) -> bool:
    return any((d / ".git").exists() for d in (folder, *folder.parents))


def example_roots(example: Path, rel: str, given: tuple[Path, ...] = ()) -> list[Path]:
    """Where an example's `"protocol": rel` may be (the import rule, docs/security.md): the
    git work tree holding the example. Outside git, the protocol's own tree is its folder,
    so a protocol whose folder holds the example (`examples/*.json` naming
    `../current.crit`) is in reach, and so is anything in the folder given to
    `critlang test` that holds the example; else only the example's own folder. Then the
    library directories."""
    roots = import_roots(example)
    folder = example.resolve().parent
    if _in_git(folder):
        return roots
    named = (example.parent / rel).resolve().parent
    holders = [g for g in (*given, named) if g == folder or g in folder.parents]
    if holders:
        return [min(holders, key=lambda p: len(p.parts)), *roots[1:]]
    return roots


def _protocol_for(example: Path, data: dict[str, Any], given: tuple[Path, ...] = ()) -> Path:
    rel = data.get("protocol")
    if isinstance(rel, str):
        # the import rule (docs/security.md): a .crit file of the example's tree
        path, why = resolve_criteria_file(rel, example.parent, example_roots(example, rel, given))
        if path is None:
            if not _in_git(example.resolve().parent) and why.startswith("outside"):
                why += (
                    " (outside git: the folder given to `critlang test`, or the protocol's "
                    "folder): keep the example inside the protocol's folder (e.g. in "
                    "`examples/`), run `critlang test` on a folder holding both, work inside "
                    "a git repository, or pass --library DIR"
                )
            raise ExampleError(f'"protocol": {rel!r}: {why}')
        return path
    candidates = sorted(example.parent.parent.glob("*.crit")) + sorted(
        example.parent.glob("*.crit")
    )
    if len(candidates) == 1:
        return candidates[0].resolve()
    raise ExampleError('say which protocol it is for: "protocol": "../NAME.crit"')


def discover(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Example files: given JSON files, or every JSON with "expect" under given folders."""
    files, problems = find_files(tuple(paths), (".json",))
    given = {Path(p) for p in paths}
    examples = [
        f
        for f in files
        if f in given or '"expect"' in f.read_text(encoding="utf-8", errors="ignore")
    ]
    if files and not examples:
        problems.append(f'{", ".join(paths)}: no example patients (JSON files with "expect")')
    return examples, problems


_VERDICTS = ("eligible", "ineligible", "undetermined")
_STATUSES = ("met", "not met", "unknown", "not applicable")


def _expectation_problems(expect: dict[str, Any]) -> list[str]:
    """An expectation that is not a verdict (or status) word cannot pass or fail: say so."""
    out: list[str] = []
    verdict = expect.get("verdict")
    if verdict not in _VERDICTS:
        out.append(
            f"expect.verdict {verdict!r} is not a verdict: use one of {', '.join(_VERDICTS)}"
        )
    criteria = expect.get("criteria") or {}
    if not isinstance(criteria, dict):
        return [*out, "expect.criteria must be an object of criterion id: status"]
    for cid, want in criteria.items():
        if want not in _STATUSES:
            out.append(
                f"expect.criteria.{cid} {want!r} is not a status: use one of "
                + ", ".join(_STATUSES)
            )
    return out


class Runner:
    def __init__(self, coverage: bool = False, given: tuple[Path, ...] = ()) -> None:
        self.coverage = coverage
        # the folders given to `critlang test`, resolved: the tree outside git
        self.given = tuple(p.resolve() for p in given)
        self.protocols: dict[Path, tuple[Analysis, Compiled | None, Evaluator | None]] = {}
        self.tracers: dict[Path, Interpreter] = {}

    def protocol(self, path: Path) -> tuple[Analysis, Compiled | None, Evaluator | None]:
        if path not in self.protocols:
            analysis = analyse_file(path)
            if analysis.ok and analysis.result is not None:
                compiled = compile_protocol(analysis.result)
                self.protocols[path] = (analysis, compiled, Evaluator(compiled))
                if self.coverage:
                    tracer = Interpreter(analysis.result)
                    tracer.trace = {}
                    self.tracers[path] = tracer
            else:
                self.protocols[path] = (analysis, None, None)
        return self.protocols[path]

    def run(self, example: Path) -> CaseResult:
        if example.suffix.lower() == ".crit":
            # A protocol given where an example is expected: say what to pass instead of
            # the JSON decoder's "Expecting value: line 1 column 1 (char 0)".
            return CaseResult(
                example,
                False,
                [
                    "this is a criteria file, not an example patient: give the example "
                    ".json files or their folder (e.g. protocols/<trial>/examples/)"
                ],
            )
        try:
            text = example.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return CaseResult(
                example,
                False,
                [f"cannot read this example: {getattr(exc, 'strerror', None) or exc}"],
            )
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            return CaseResult(
                example,
                False,
                [
                    f"this example is not valid JSON (line {exc.lineno}, column {exc.colno}:"
                    f" {exc.msg})"
                ],
            )
        try:
            if not isinstance(data, dict) or not isinstance(data.get("expect"), dict):
                raise ExampleError('no "expect" object')
            proto_path = _protocol_for(example, data, self.given)
            as_of = dt.date.fromisoformat(str(data.get("as_of")))
        except (OSError, ValueError) as exc:
            return CaseResult(example, False, [f"cannot run this example: {exc}"])
        try:
            analysis, _, evaluator = self.protocol(proto_path)
        except (OSError, UnicodeDecodeError) as exc:
            return CaseResult(example, False, [f"cannot read {proto_path}: {exc}"])
        if evaluator is None or analysis.result is None:
            return CaseResult(example, False, [f"{proto_path} has errors: run critlang check"])
        try:
            record = read_record(analysis.result, data, as_of, str(example))
        except RecordError as exc:
            return CaseResult(example, False, [str(exc)])
        result = evaluator.evaluate(record)
        if self.coverage:
            self.tracers[proto_path].run(record)
        expect = data["expect"]
        wrong = _expectation_problems(expect)
        if wrong:
            return CaseResult(example, False, wrong)
        messages: list[str] = []
        if result.verdict != expect.get("verdict"):
            messages.append(f"verdict: expected {expect.get('verdict')}, got {result.verdict}")
        by_id = {c.id: c for c in result.criteria}
        for cid, want in (expect.get("criteria") or {}).items():
            got = by_id.get(cid)
            if got is None:
                messages.append(f"{cid}: no such criterion in {proto_path.name}")
                continue
            if got.status != want:
                messages.append(f"{cid}: expected {want}, got {got.status}")
                messages.append(f"    rule: {' '.join(got.rule.split())}")
                if got.decided_by:
                    messages.append(f"    decided by: {got.decided_by}")
                messages += [f"    {name} = {value}" for name, value in got.values.items()]
        return CaseResult(example, not messages, messages)

    def coverage_reports(self) -> list[Coverage]:
        return [
            Coverage(self.protocols[path][0].result, tracer.trace or {})  # type: ignore[arg-type]
            for path, tracer in sorted(self.tracers.items())
        ]


def coverage_text(cov: Coverage) -> str:
    rows = cov.rows()
    lines = [f"clause coverage of {cov.checked.source.path}:"]
    by_crit: dict[str, list[tuple[str, bool, bool]]] = {}
    for cid, text, t, f in rows:
        by_crit.setdefault(cid, []).append((text, t, f))
    both = sum(1 for _, _, t, f in rows if t and f)
    for cid, items in by_crit.items():
        rule = items[0]
        mark = (
            "both ways"
            if rule[1] and rule[2]
            else ("only true" if rule[1] else "only false" if rule[2] else "never decided")
        )
        lines.append(f"  {cid}: {mark}")
        for text, t, f in items:
            if not (t and f):
                missing = (
                    "never true"
                    if not t and f
                    else "never false"
                    if t and not f
                    else ("never decided")
                )
                lines.append(f"      {missing}: {text}")
    lines.append(f"{both} of {len(rows)} clauses seen both true and false")
    return "\n".join(lines)
