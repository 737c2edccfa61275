"""`critlang diff`: what an amendment changes, in the author's terms and in who may enter.

Criteria are matched by id (a removed and an added criterion with the same rule are a
rename). For each changed criterion the edit is described (threshold, window, categories,
condition), then classified with z3 (semantics.py): does some patient clear it under one
version and not the other, while clearing every other criterion in both, so that the
verdict itself flips? "Unchanged" is a proof (unsatisfiable), never a sample. Every
"widened" or "narrowed" comes with a witness patient, built from the solver's model and
re-evaluated by the compiled evaluators of both versions before it is shown; a candidate
that does not really flip is dropped and a targeted search takes over, reporting how many
patients it tried.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import z3

from . import nodes as n
from .backends.python import compile_protocol
from .checker import CheckResult
from .data.records import read_record
from .formatter import expr as formula
from .semantics import LIST_BOUND, Encoder, Space
from .typesys import BoolT, DateT, EnumT, IntT, ListT, NumberT, QuantT, ScaleT
from .units import parse_unit

TIMEOUT_MS = 20_000
EDITORIAL = re.compile(r"editorial|typo|wording|format|spelling|clarif", re.I)


@dataclass
class Witness:
    record: dict[str, Any]
    old_verdict: str
    new_verdict: str


@dataclass
class Effect:
    """How a change moves the eligible population."""

    classification: str  # unchanged, widened, narrowed, both, undecided
    proof: str  # how it was established
    widening: Witness | None = None
    narrowing: Witness | None = None
    searched: int = 0  # patients tried by the fallback search


@dataclass
class Change:
    id: str
    kind: str  # added, removed, renamed, changed, reworded, rewritten
    section: str
    details: list[str] = field(default_factory=list)
    effect: Effect | None = None
    new_id: str | None = None


@dataclass
class DiffResult:
    old_path: str
    new_path: str
    changes: list[Change]
    overall: Effect
    notes: list[str]  # the new version's amendment notes
    amends: str | None
    warnings: list[str] = field(default_factory=list)
    solver_notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------- describing edits


def _pairs(a: n.Node, b: n.Node) -> list[tuple[n.Node, n.Node]]:
    """The smallest differing subtrees of two expressions of the same shape."""
    if a == b:
        return []
    atomic = (n.QuantityLit, n.DualQuantityLit, n.NumberLit, n.Window, n.Member)
    if type(a) is not type(b) or isinstance(a, atomic):
        return [(a, b)]
    if isinstance(a, n.Compare) and isinstance(b, n.Compare) and a.left == b.left:
        return [(a, b)]  # described as "SUBJECT threshold OLD -> NEW"
    scalar_a, scalar_b = _scalars(a), _scalars(b)
    kids_a, kids_b = list(a.children()), list(b.children())
    if scalar_a != scalar_b or len(kids_a) != len(kids_b):
        return [(a, b)]
    out: list[tuple[n.Node, n.Node]] = []
    for x, y in zip(kids_a, kids_b, strict=True):
        out += _pairs(x, y)
    return out


_LITERALS = (n.QuantityLit, n.DualQuantityLit, n.NumberLit)


def _same_value(a: n.Expr, b: n.Expr) -> bool:
    """Two literals that are the same threshold (exactly, after unit conversion)."""
    pa = a.primary if isinstance(a, n.DualQuantityLit) else a
    pb = b.primary if isinstance(b, n.DualQuantityLit) else b
    if isinstance(pa, n.NumberLit) and isinstance(pb, n.NumberLit):
        return pa.value == pb.value
    if isinstance(pa, n.QuantityLit) and isinstance(pb, n.QuantityLit):
        ua, ub = parse_unit(pa.unit), parse_unit(pb.unit)
        return ua.dims == ub.dims and pa.value * ua.factor == pb.value * ub.factor
    return False


def _scalars(node: n.Node) -> dict[str, Any]:
    """The fields that are not sub-expressions (operators, names, category lists)."""
    out = {}
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if not f.compare or isinstance(value, n.Node):
            continue
        if isinstance(value, tuple) and any(isinstance(x, n.Node) for x in value):
            continue
        out[f.name] = value
    return out


def _text(node: n.Node) -> str:
    if isinstance(node, n.Expr):
        return formula(node)
    return repr(node)


def _describe(old: n.Expr, new: n.Expr) -> list[str]:
    out = []
    for a, b in _pairs(old, new):
        if isinstance(a, n.Compare) and isinstance(b, n.Compare):
            subject = formula(a.left)
            if a.op == b.op and isinstance(a.right, _LITERALS) and isinstance(b.right, _LITERALS):
                same = _same_value(a.right, b.right)
                note = " (the same value in another unit)" if same else ""
                out.append(f"{subject} threshold {_text(a.right)} -> {_text(b.right)}{note}")
            else:
                out.append(f"`{_text(a)}` -> `{_text(b)}`")
            continue
        if isinstance(a, (n.QuantityLit, n.DualQuantityLit)) and isinstance(
            b, (n.QuantityLit, n.DualQuantityLit)
        ):
            note = " (the same value in another unit)" if _same_value(a, b) else ""
            out.append(f"threshold {_text(a)} -> {_text(b)}{note}")
        elif isinstance(a, n.Window) and isinstance(b, n.Window):
            out.append(f"window `{_text(a)}` -> `{_text(b)}`")
        elif isinstance(a, n.Member) and isinstance(b, n.Member):
            out.append(f"categories {{{', '.join(a.members)}}} -> {{{', '.join(b.members)}}}")
        else:
            out.append(f"`{_text(a)}` -> `{_text(b)}`")
    return out


# ---------------------------------------------------------------------- witnesses


class _Versions:
    def __init__(self, old: CheckResult, new: CheckResult, as_of: dt.date) -> None:
        self.old, self.new = old, new
        self.as_of = as_of
        self.space = Space(as_of)
        self.enc_old = Encoder(old, self.space)
        self.enc_new = Encoder(new, self.space)
        self.compiled_old = compile_protocol(old)
        self.compiled_new = compile_protocol(new)
        self.pass_old = {c.id: self.enc_old.passes(c, k) for k, c in old.protocol.criteria}
        self.pass_new = {c.id: self.enc_new.passes(c, k) for k, c in new.protocol.criteria}
        self.elig_old = z3.And(*self.pass_old.values())
        self.elig_new = z3.And(*self.pass_new.values())
        self.tried = 0

    def verdicts(self, record: dict[str, Any]) -> tuple[str, str]:
        out = []
        for checked, compiled in ((self.old, self.compiled_old), (self.new, self.compiled_new)):
            r = read_record(checked, record, self.as_of)
            out.append(compiled.evaluate(compiled.normalise(r))[0])
        self.tried += 1
        return out[0], out[1]

    def solve(self, *goal: Any) -> tuple[str, z3.ModelRef | None]:
        s = z3.Solver()
        s.set("timeout", TIMEOUT_MS)
        s.add(*self.space.constraints, *goal)
        result = s.check()
        if result != z3.sat:
            return ("unsat" if result == z3.unsat else "unknown"), None
        # prefer a plausible patient (recent dates, adult age, no negative amounts)
        s.push()
        s.add(*self.plausible())
        if s.check() == z3.sat:
            return "sat", s.model()
        s.pop()
        s.check()
        return "sat", s.model()

    def plausible(self) -> list[Any]:
        today = self.as_of.toordinal()
        out = []
        for key, var in self.space.vars.items():
            if z3.is_int(var) and key[0] == "anchor":
                out += [var >= today, var <= today + 365]  # planned dates lie ahead
            elif z3.is_int(var) and key[0] == "edge":
                out += [var >= today - 3 * 365, var <= today + 365]
            elif z3.is_int(var) and self._is_date(key):
                out += [var >= today - 3 * 365, var <= today]  # recorded events are past
            elif key[0] == "age":
                out += [var >= 18, var <= 90]
            elif z3.is_real(var) and key[0] in ("fact", "list", "limit"):
                out.append(var >= 0)
            elif key[0] == "known":
                out.append(var)  # recorded facts: formulas behind `first available` not needed
        return out

    def _is_date(self, key: tuple[Any, ...]) -> bool:
        if key[0] == "fact":
            return isinstance(self.space.types.get(key[1]), DateT)
        if key[0] == "list":
            t = self.space.types.get(key[1])
            return isinstance(t, ListT) and isinstance(t.field(key[3]), DateT)
        return False

    def record(self, model: z3.ModelRef) -> dict[str, Any]:
        """A complete patient record from a model (values in the declared units)."""
        facts: dict[str, Any] = {}
        anchors: dict[str, str] = {}
        day = self.as_of.isoformat()
        for key, var in self.space.vars.items():
            kind = key[0]
            if kind == "fact":
                name = key[1]
                known = self.space.vars.get(("known", name))
                if known is not None and z3.is_false(model.eval(known, model_completion=True)):
                    continue
                facts[name] = self._value(name, self.space.types[name], var, model, day)
            elif kind == "anchor":
                anchors[key[1]] = _date(model, var)
            elif kind == "list" and key[3] == "present":
                name, i = key[1], key[2]
                if z3.is_true(model.eval(var, model_completion=True)):
                    t = self.space.types[name]
                    assert isinstance(t, ListT)
                    item = {
                        fname: self._field(
                            f"{name}.{fname}", ft, self.space.vars[("list", name, i, fname)], model
                        )
                        for fname, ft in t.fields
                    }
                    facts.setdefault(name, []).append(item)
                else:
                    facts.setdefault(name, [])
        for key, birth_fact in self.space.ages.items():
            years = model.eval(self.space.vars[key], model_completion=True).as_long()
            facts[birth_fact] = _years_before(self.as_of, years).isoformat()
        for (_, name, which), var in [
            (k, v) for k, v in self.space.vars.items() if k[0] == "limit"
        ]:
            entry = facts.get(name)
            t = self.space.types.get(name)
            if isinstance(entry, dict) and isinstance(t, QuantT):
                rr = entry.setdefault("reference_range", {"unit": t.unit.text})
                value = _rational(model.eval(var, model_completion=True)) / t.unit.factor
                rr["low" if which == "LLN" else "high"] = _decimal(value)
        return {"id": "witness", "facts": facts, "anchors": anchors}

    def _value(self, name: str, t: Any, var: Any, model: z3.ModelRef, day: str) -> Any:
        v = model.eval(var, model_completion=True)
        if isinstance(t, QuantT):
            value = _rational(v) / t.unit.factor
            return {"value": _decimal(value), "unit": t.unit.text, "date": day}
        if isinstance(t, NumberT):
            return {"value": _decimal(_rational(v)), "date": day}
        return self._field(name, t, var, model)

    def _field(self, key: str, t: Any, var: Any, model: z3.ModelRef) -> Any:
        v = model.eval(var, model_completion=True)
        if isinstance(t, BoolT):
            return z3.is_true(v)
        if isinstance(t, DateT):
            return _date(model, var)
        if isinstance(t, IntT):
            return v.as_long()
        if isinstance(t, (EnumT, ScaleT)):
            names = self.space.members[key]
            return names[v.as_long()]
        if isinstance(t, (QuantT, NumberT)):
            return _decimal(_rational(v))
        raise AssertionError(t)

    def witness(self, goal: Any, want: tuple[str, str]) -> tuple[str, Witness | None]:
        """Solve for a flip, turn the model into a record, and check it really flips."""
        status, model = self.solve(goal)
        if model is None:
            return status, None
        record = self.record(model)
        got = self.verdicts(record)
        if got == want:
            return "sat", Witness(record, *got)
        found = self.search(record, want)
        return ("sat" if found else "unconfirmed"), found

    def search(self, start: dict[str, Any], want: tuple[str, str]) -> Witness | None:
        """Targeted search from a candidate: vary each fact at and around the values
        the protocols compare it with, one fact at a time, then in pairs."""
        import copy
        import itertools

        names = sorted(name for name, t in self.space.types.items() if not isinstance(t, ListT))
        variants: dict[str, list[Any]] = {name: _variants(self, name, start) for name in names}
        names = [name for name in names if variants[name]]
        for name in names:
            for value in variants[name]:
                record = copy.deepcopy(start)
                record["facts"][name] = value
                if self.verdicts(record) == want:
                    return Witness(record, *want)
        for a, b in itertools.islice(itertools.combinations(names, 2), 400):
            for va in variants[a][:6]:
                for vb in variants[b][:6]:
                    record = copy.deepcopy(start)
                    record["facts"][a], record["facts"][b] = va, vb
                    if self.verdicts(record) == want:
                        return Witness(record, *want)
        return None


def _variants(v: _Versions, name: str, start: dict[str, Any]) -> list[Any]:
    t = v.space.types.get(name)
    current = start["facts"].get(name)
    out: list[Any] = []
    if isinstance(t, QuantT):
        values = {Fraction(0)}
        for checked in (v.old, v.new):
            for node in checked.protocol.walk():
                if isinstance(node, n.QuantityLit):
                    u = parse_unit(node.unit)
                    if u.dims == t.unit.dims:
                        base = node.value * u.factor / t.unit.factor
                        values |= {base, base * Fraction(99, 100), base * Fraction(101, 100)}
        for x in sorted(values):
            entry = dict(current) if isinstance(current, dict) else {"unit": t.unit.text}
            entry["value"] = _decimal(x)
            entry.setdefault("date", v.as_of.isoformat())
            out.append(entry)
    elif isinstance(t, BoolT):
        out = [True, False]
    elif isinstance(t, (EnumT, ScaleT)):
        out = list(v.space.members.get(name, t.members))
    elif isinstance(t, DateT):
        days = (0, 27, 29, 200, 400, 800, 9000)
        out = [(v.as_of - dt.timedelta(days=d)).isoformat() for d in days]
    return out


def _rational(v: Any) -> Fraction:
    if z3.is_int_value(v):
        return Fraction(v.as_long())
    if z3.is_rational_value(v):
        return Fraction(v.numerator_as_long(), v.denominator_as_long())
    if z3.is_algebraic_value(v):
        return Fraction(v.approx(12).as_decimal(12).rstrip("?"))
    raise ValueError(f"not a number: {v}")


def _decimal(x: Fraction) -> str:
    if x.denominator == 1:
        return str(x.numerator)
    d = x.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1:  # a terminating decimal: written exactly
        digits = 0
        y = x
        while y.denominator != 1:
            y *= 10
            digits += 1
        return f"{float(x):.{digits}f}" if digits < 15 else str(float(x))
    return f"{float(x):.9g}"


def _date(model: z3.ModelRef, var: Any) -> str:
    return dt.date.fromordinal(model.eval(var, model_completion=True).as_long()).isoformat()


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


# ---------------------------------------------------------------------- the diff


def _proof_words(space: Space) -> str:
    parts = ["proven by z3"]
    if space.bounded:
        parts.append(f"for lists of up to {LIST_BOUND} items")
    if space.abstracted:
        parts.append("with " + ", ".join(sorted(space.abstracted)) + " abstracted (sound)")
    return ", ".join(parts)


def _effect(v: _Versions, p_old: Any, p_new: Any, others: Any) -> Effect:
    widen_goal = z3.And(others, z3.Not(p_old), p_new)
    narrow_goal = z3.And(others, p_old, z3.Not(p_new))
    before = v.tried
    ws, widening = v.witness(widen_goal, ("ineligible", "eligible"))
    ns, narrowing = v.witness(narrow_goal, ("eligible", "ineligible"))
    searched = v.tried - before
    if ws == "unsat" and ns == "unsat":
        return Effect("unchanged", _proof_words(v.space))
    if widening and narrowing:
        cls = "both"
    elif widening and ns == "unsat":
        cls = "widened"
    elif narrowing and ws == "unsat":
        cls = "narrowed"
    else:
        cls = "undecided"
    proof = "witness patients re-checked by both compiled evaluators"
    if cls == "undecided":
        proof = (
            f"not proven: the solver answered {ws}/{ns} (widen/narrow); "
            f"targeted search tried {searched} patients"
        )
    return Effect(cls, proof, widening, narrowing, searched)


def diff(old: CheckResult, new: CheckResult, as_of: dt.date) -> DiffResult:
    v = _Versions(old, new, as_of)
    old_crits = {c.id: (k, c) for k, c in old.protocol.criteria}
    new_crits = {c.id: (k, c) for k, c in new.protocol.criteria}
    changes: list[Change] = []
    removed = [i for i in old_crits if i not in new_crits]
    added = [i for i in new_crits if i not in old_crits]
    for rid in list(removed):
        kind, c = old_crits[rid]
        for aid in list(added):
            k2, c2 = new_crits[aid]
            if k2 == kind and c2.rule == c.rule and c2.applies == c.applies:
                changes.append(Change(rid, "renamed", kind, [f"{rid} -> {aid}"], new_id=aid))
                removed.remove(rid)
                added.remove(aid)
                break
    for cid, (kind, c) in old_crits.items():
        if cid not in new_crits:
            continue
        k2, c2 = new_crits[cid]
        if (c.rule, c.applies, kind) == (c2.rule, c2.applies, k2):
            if c.text != c2.text:
                changes.append(
                    Change(cid, "reworded", kind, ["protocol text reworded; rule unchanged"])
                )
            continue
        details = []
        if c.text != c2.text:
            details.append("protocol text changed")
        if c.applies != c2.applies:
            if c.applies is None and c2.applies is not None:
                details.append(f"now only when {formula(c2.applies)}")
            elif c2.applies is None:
                details.append("now for every patient (the condition was removed)")
            else:
                details += _describe(c.applies, c2.applies)  # type: ignore[arg-type]
        if c.rule is not None and c2.rule is not None and c.rule != c2.rule:
            details += _describe(c.rule, c2.rule)
        others = z3.And(
            *[p for i, p in v.pass_old.items() if i != cid],
            *[p for i, p in v.pass_new.items() if i != cid],
        )
        effect = _effect(v, v.pass_old[cid], v.pass_new[cid], others)
        kind_word = "changed"
        if effect.classification == "unchanged":
            alone, _ = v.solve(z3.Xor(v.pass_old[cid], v.pass_new[cid]))
            if alone == "unsat":
                kind_word = "rewritten"
                details.append("no change of meaning")
            else:
                details.append(
                    "the criterion itself now decides differently, but no patient's verdict "
                    "changes: other criteria decide those patients in both versions"
                )
        changes.append(Change(cid, kind_word, k2, details, effect))
    for rid in removed:
        kind, _ = old_crits[rid]
        others = z3.And(*[p for i, p in v.pass_old.items() if i != rid], v.elig_new)
        effect = _effect(v, v.pass_old[rid], z3.BoolVal(True), others)
        changes.append(Change(rid, "removed", kind, [], effect))
    for aid in added:
        kind, _ = new_crits[aid]
        others = z3.And(v.elig_old, *[p for i, p in v.pass_new.items() if i != aid])
        effect = _effect(v, z3.BoolVal(True), v.pass_new[aid], others)
        changes.append(Change(aid, "added", kind, [], effect))
    overall = _effect(v, v.elig_old, v.elig_new, z3.BoolVal(True))
    h = new.protocol.header
    notes = list(h.amendment_notes) if h else []
    result = DiffResult(
        old.source.path,
        new.source.path,
        changes,
        overall,
        notes,
        h.amends if h else None,
    )
    old_h = old.protocol.header
    if h and h.amends and old_h and old_h.version and h.amends != old_h.version:
        result.warnings.append(
            f"the new version says it amends version {h.amends}, but the old file is "
            f"version {old_h.version}"
        )
    if notes and all(EDITORIAL.search(x) for x in notes) and overall.classification != "unchanged":
        result.warnings.append(
            "the amendment notes claim editorial changes only, but the eligible population "
            f"changes ({overall.classification})"
        )
    order = {c.id: i for i, (_, c) in enumerate(new.protocol.criteria)}
    order.update(
        {c.id: i + 0.5 for i, (_, c) in enumerate(old.protocol.criteria) if c.id not in order}
    )
    result.changes.sort(key=lambda ch: (order.get(ch.id, 1e9), ch.id))
    scope = [f"lists of up to {LIST_BOUND} items"] if v.space.bounded else []
    if v.space.abstracted:
        scope.append("abstracted (sound): " + ", ".join(sorted(v.space.abstracted)))
    result.solver_notes.append("z3 encoding: " + ("; ".join(scope) or "exact"))
    return result


# ---------------------------------------------------------------------- output

WORDS = {
    "unchanged": "eligible population unchanged",
    "widened": "widens the eligible population (some patients gain)",
    "narrowed": "narrows the eligible population (some patients lose)",
    "both": "both widens and narrows (some patients gain, some lose)",
    "undecided": "effect not established",
}


def _relevant(record: dict[str, Any], checked: CheckResult, cid: str) -> dict[str, Any]:
    """The witness facts a criterion reads, for the text report."""
    from .backends.python import _dependencies

    crit = next((c for _, c in checked.protocol.criteria if c.id == cid), None)
    if crit is None:
        return record["facts"]
    deps = _dependencies(checked, crit)
    facts = {k: v for k, v in record["facts"].items() if k in deps}
    anchors = {k: v for k, v in record["anchors"].items() if "@" + k in deps}
    return {**facts, **({"anchors": anchors} if anchors else {})}


def render_text(r: DiffResult, old: CheckResult, new: CheckResult) -> str:
    import json

    lines = [f"critlang diff {r.old_path} -> {r.new_path}"]
    if r.amends or r.notes:
        lines.append(
            f"amends version {r.amends or '(not stated)'}; amendment notes: "
            + ("; ".join(r.notes) if r.notes else "(none)")
        )
    lines += [f"warning: {w}" for w in r.warnings]
    if not r.changes:
        lines.append("no criterion changed")
    for ch in r.changes:
        lines.append("")
        head = f"{ch.id} ({ch.section}) {ch.kind}"
        if ch.effect is not None:
            head += f": {WORDS[ch.effect.classification]}"
        lines.append(head)
        lines += [f"    {d}" for d in ch.details]
        if ch.effect is None:
            continue
        lines.append(f"    how: {ch.effect.proof}")
        for label, w in (("gains", ch.effect.widening), ("loses", ch.effect.narrowing)):
            if w is None:
                continue
            checked = new if ch.kind != "removed" else old
            facts = json.dumps(_relevant(w.record, checked, ch.id), sort_keys=True)
            lines.append(f"    a patient who {label} ({w.old_verdict} -> {w.new_verdict}): {facts}")
    lines.append("")
    lines.append(f"whole protocol: {WORDS[r.overall.classification]}")
    lines.append(f"    how: {r.overall.proof}")
    lines += [f"    solver: {x}" for x in r.solver_notes]
    return "\n".join(lines)


def to_json(r: DiffResult) -> dict[str, Any]:
    def effect(e: Effect | None) -> dict[str, Any] | None:
        if e is None:
            return None
        return {
            "classification": e.classification,
            "proof": e.proof,
            "searched": e.searched,
            "widening_witness": e.widening.record if e.widening else None,
            "narrowing_witness": e.narrowing.record if e.narrowing else None,
        }

    return {
        "old": r.old_path,
        "new": r.new_path,
        "amends": r.amends,
        "amendment_notes": r.notes,
        "warnings": r.warnings,
        "changes": [
            {
                "id": c.id,
                "new_id": c.new_id,
                "kind": c.kind,
                "section": c.section,
                "details": c.details,
                "effect": effect(c.effect),
            }
            for c in r.changes
        ],
        "overall": effect(r.overall),
        "solver": r.solver_notes,
    }
