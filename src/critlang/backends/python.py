"""Compile a checked protocol to Python source, then to one `evaluate(f)` function.

Like Jinja2's code generator: the AST is written out as Python statements, `compile()`d
and run in a namespace holding only `runtime.EXPORTS` and constants made here, with a
map from generated lines back to criteria lines. Every unit conversion is folded into
a constant at this point, so evaluating a patient is float, int and string work only.

Nothing from the criteria file is pasted into the code: names become generated local
names (`v12`), strings appear only as `repr()` literals used as dictionary keys or
category values, and sets are constants built here and passed in the namespace.

The compiled `evaluate(f)` takes a dict of normalised values (see `normalise`):
facts by name, anchors as "@name" (day numbers), reference limits as "name#low" and
"name#high", and returns (verdict, statuses) with statuses True / False / None / NA
in protocol order.

This module is the entry point (Compiled, compile_protocol, the conflict-weighing
wrapper); the back end's other parts are python_normalise.py (record values ->
the plain values `evaluate` reads), python_codegen.py (the code generator: state,
values, the module) and python_conditions.py (its conditions).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from .. import nodes as n
from ..checker import CheckResult
from ..data.records import Observation, Record, fact_types
from ..data.signs import number_never_negative
from ..frozen_classes import field, mutable
from . import runtime
from .python_codegen import _Codegen
from .python_normalise import _normaliser, _range_limits, limit_product, limit_products
from .python_slices import Slices

FILENAME_PREFIX = "<critlang "


@mutable
class Criterion:
    id: str
    section: str  # "inclusion" / "exclusion"
    node: n.Criterion
    facts: frozenset[str]  # facts (and anchors, as "@name") the criterion depends on


@mutable
class Compiled:
    checked: CheckResult
    source_code: str
    evaluate: Callable[[dict[str, Any]], tuple[str, tuple[Any, ...]]]
    criteria: list[Criterion]
    line_map: dict[int, int]  # generated line -> criteria file line
    normalisers: dict[str, Callable[[Observation | None], Any]] = field(default_factory=dict)
    ranged: tuple[str, ...] = ()
    dated: tuple[str, ...] = ()  # facts whose value's own date a rule reads (`date of x`)
    generated: Callable[[dict[str, Any]], tuple[str, tuple[Any, ...]]] | None = None  # raw
    slices: Slices | None = None  # one criterion's status alone (python_slices.py)
    # `k x ULN` products, exact until rounded once (python_normalise.limit_products)
    products: tuple[tuple[str, str, str, Fraction], ...] = ()

    def status(self, f: dict[str, Any], index: int) -> Any:
        """Criterion `index`'s status for f: `evaluate(f)[1][index]`, computing only it."""
        if self.slices is None:
            return self.evaluate(f)[1][index]
        return self.slices.status(f, index)

    def criteria_line(self, generated_line: int) -> int | None:
        """The criteria-file line a generated line came from (for runtime faults)."""
        best = None
        for g, c in sorted(self.line_map.items()):
            if g <= generated_line:
                best = c
        return best

    def normalise(self, record: Record) -> dict[str, Any]:
        """A record's exact observations as the plain values `evaluate` reads.

        Conflicting candidate values (record.alternatives) travel under the key "#" with
        the deceased flag, as (per fact: the candidates' keys and values, deceased); the
        wrapper made by `compile_protocol` evaluates each combination of candidates.
        """
        f: dict[str, Any] = {}
        for name, conv in self.normalisers.items():
            f[name] = conv(record.facts.get(name))
        for name in self.dated:
            obs = record.facts.get(name)
            day = obs.date if obs is not None else None
            f[name + "@date"] = day.toordinal() if day is not None else None
        for name in self.ranged:
            obs = record.facts.get(name)
            low, high = _range_limits(obs, self.checked, name)
            f[name + "#low"] = low
            f[name + "#high"] = high
        for key, name, which, factor in self.products:
            f[key] = limit_product(record.facts.get(name), self.checked, name, which, factor)
        for name, day in record.anchors.items():
            f["@" + name] = day.toordinal() if day else None
        if record.alternatives or record.deceased is not False:
            alternatives = []
            for name, candidates in sorted(record.alternatives.items()):
                if name not in self.normalisers:
                    continue
                options = []
                for obs in candidates:
                    keys = {name: self.normalisers[name](obs)}
                    if name in self.dated:
                        keys[name + "@date"] = obs.date.toordinal() if obs.date else None
                    if name in self.ranged:
                        low, high = _range_limits(obs, self.checked, name)
                        keys[name + "#low"], keys[name + "#high"] = low, high
                    for key, fact, which, factor in self.products:
                        if fact == name:
                            keys[key] = limit_product(obs, self.checked, name, which, factor)
                    options.append(keys)
                alternatives.append(options)
            f["#"] = (alternatives, record.deceased)
        return f


def _dependencies(checked: CheckResult, crit: n.Criterion) -> frozenset[str]:
    """Facts and anchors ("@name") a criterion reads, through definitions too."""
    out: set[str] = set()
    seen: set[str] = set()

    def visit(node: n.Node) -> None:
        for x in node.walk():
            if isinstance(x, n.Name):
                r = checked.refs.get(id(x))
                if r is None:
                    continue
                if r.kind in ("fact", "arm"):
                    out.add(r.name)
                elif r.kind == "anchor":
                    out.add("@" + r.name)
                elif r.kind == "define" and r.name not in seen:
                    seen.add(r.name)
                    visit(checked.defines[r.name].body)
            elif isinstance(x, n.Call) and x.func in checked.defines:
                if x.func not in seen:
                    seen.add(x.func)
                    visit(checked.defines[x.func].body)
            elif isinstance(x, n.Quantified):
                out.add(x.list_name)
            elif isinstance(x, (n.DateOf, n.Attribute)):
                out.add(x.fact if isinstance(x, n.DateOf) else x.obj)

    visit(crit)
    return frozenset(out)


class TooComplex(Exception):
    """The generated code exceeds a limit of Python's compiler.

    `line` is the criteria-file line the failing generated line came from (or None).
    """

    def __init__(self, line: int | None, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


def compile_protocol(checked: CheckResult) -> Compiled:
    """Compile a protocol that checked without errors."""
    assert checked.ok, "compile only checked protocols"
    criteria = [
        Criterion(c.id, kind, c, _dependencies(checked, c)) for kind, c in checked.protocol.criteria
    ]
    gen = _Codegen(checked)
    source = gen.module(criteria)
    filename = f"{FILENAME_PREFIX}{checked.source.path}>"
    try:
        code = compile(source, filename, "exec")
    except (SyntaxError, RecursionError, MemoryError) as exc:
        # Python's own limits (100 levels of indentation, 20 nested loops): the front
        # end turns this into E903 at check time, so a clean check always compiles
        line = gen_line = getattr(exc, "lineno", None)
        if gen_line is not None:
            line = max((c for g, c in gen.line_map.items() if g <= gen_line), default=None)
        raise TooComplex(line, f"{type(exc).__name__}: {getattr(exc, 'msg', exc)}") from exc
    namespace: dict[str, Any] = {"__builtins__": {}}
    namespace.update(runtime.EXPORTS)
    namespace.update(gen.consts)
    exec(code, namespace)
    sections = tuple(c.section for c in criteria)
    types = fact_types(checked)
    normalisers = {
        name: _normaliser(
            t,
            checked.facts[name].molar_mass if name in checked.facts else None,
            checked.bindings.get(name, ()),
            number_never_negative(checked, name),
        )
        for name, t in types.items()
    }
    ranged = tuple(name for name, info in checked.facts.items() if info.has_reference_range)
    dated = tuple(sorted({x.fact for x in checked.protocol.walk() if isinstance(x, n.DateOf)}))
    return Compiled(
        checked,
        source,
        _with_candidates(namespace["evaluate"], sections),
        criteria,
        gen.line_map,
        normalisers,
        ranged,
        dated,
        namespace["evaluate"],
        Slices(source, namespace, filename),
        limit_products(checked),
    )


MAX_WORLDS = 64  # combinations of conflicting candidates weighed; the reader caps them


def verdict_of(sections: tuple[str, ...], statuses: tuple[Any, ...]) -> str:
    """The protocol verdict from per-criterion statuses (as the generated code decides)."""
    bad = any(
        (s is False if kind == "inclusion" else s is True)
        for kind, s in zip(sections, statuses, strict=True)
    )
    if bad:
        return runtime.INELIGIBLE
    return runtime.UNDETERMINED if any(s is None for s in statuses) else runtime.ELIGIBLE


def combine(results: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """Per criterion: the status every candidate world agrees on, else unknown."""
    return tuple(s[0] if all(x is s[0] for x in s) else None for s in zip(*results, strict=True))


def deceased_verdict(verdict: str, deceased: bool | None) -> str:
    """A deceased patient is never eligible (FHIR Patient.deceased[x], a modifier: the
    record says so); one that may be deceased (a partial date of death) is not eligible
    yet."""
    if deceased is True:
        return runtime.INELIGIBLE
    if deceased is None and verdict == runtime.ELIGIBLE:
        return runtime.UNDETERMINED
    return verdict


def _with_candidates(
    raw: Callable[[dict[str, Any]], tuple[str, tuple[Any, ...]]], sections: tuple[str, ...]
) -> Callable[[dict[str, Any]], tuple[str, tuple[Any, ...]]]:
    """`evaluate` that weighs conflicting values: one run per combination of candidates,
    each criterion keeping the status they all agree on (else unknown). A record without
    conflicts (the common case) costs one dictionary lookup more."""

    def evaluate(f: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
        extra = f.get("#")
        if extra is None:
            return raw(f)
        alternatives, deceased = extra
        if alternatives:
            results = []
            for world in itertools.product(*alternatives):
                g = dict(f)
                for keys in world:
                    g.update(keys)
                results.append(raw(g)[1])
            statuses = combine(results)
            verdict = verdict_of(sections, statuses)
        else:
            verdict, statuses = raw(f)
        return deceased_verdict(verdict, deceased), statuses

    return evaluate
