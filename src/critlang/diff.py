"""`critlang diff`: what an amendment changes, in the author's terms and in who may enter.

Criteria are matched by id (a removed and an added criterion with the same rule are a
rename). For each changed criterion the edit is described (threshold, window, categories,
condition), then classified with z3 over three verdicts (semantics/): every fact may be
unknown, and the verdict is eligible, ineligible or undetermined exactly as the compiled
evaluator decides it. Two questions are asked separately:
- the decided population: does some patient go from ineligible to eligible (widened) or
  back (narrowed)?
- the undetermined patients: does some patient's verdict move between decided and
  undetermined ("now needs `cycle`")?
For a changed criterion, every other criterion must clear the patient in both versions,
so that the verdict moves because of this change. "Unchanged" is a proof (unsatisfiable)
for all three verdicts, never a sample. Every witness is built from the solver's model
within plausible ranges, carries the evaluation date it was solved for, and is
re-evaluated by the compiled evaluators of both versions before it is shown; a candidate
that does not really move is dropped and a targeted search takes over, reporting how many
patients it tried.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import itertools
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import z3

from . import nodes as n
from .backends.python import compile_protocol
from .checker import CheckResult
from .formatter import expr as formula
from .semantics import Encoder, Protocol, Solver, Space, Witness, evaluate_record, plan_lists
from .typesys import BoolT, DateT, EnumT, ListT, QuantT, ScaleT
from .units import parse_unit

EDITORIAL = re.compile(r"editorial|typo|wording|format|spelling|clarif", re.I)
DECIDED = ("eligible", "ineligible")


@dataclass
class Effect:
    """How a change moves the verdicts."""

    classification: str  # decided population: unchanged, widened, narrowed, both, undecided
    proof: str  # how it was established
    widening: Witness | None = None  # ineligible -> eligible
    narrowing: Witness | None = None  # eligible -> ineligible
    searched: int = 0  # patients tried by the fallback search
    # undetermined patients: unchanged, changes, undecided
    undetermined: str = "unchanged"
    now_undetermined: Witness | None = None  # decided -> undetermined
    now_decided: Witness | None = None  # undetermined -> decided
    # what the solver ruled out holds only for lists of up to this many items
    # (semantics/lists.py); None: for lists of any length (or there are none)
    lists_up_to: int | None = None

    @property
    def unchanged(self) -> bool:
        return self.classification == "unchanged" and self.undetermined == "unchanged"


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
    as_of: dt.date
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
        self.space.slots = plan_lists([old, new])
        self.p_old = Protocol(Encoder(old, self.space))
        self.p_new = Protocol(Encoder(new, self.space))
        self.compiled_old = compile_protocol(old)
        self.compiled_new = compile_protocol(new)
        self.solver = Solver(self.space, [old, new])
        self.tried = 0
        self.timeouts: list[str] = []

    def verdicts(self, record: dict[str, Any]) -> tuple[tuple[str, str], list[str]]:
        """Both versions' verdicts as `critlang eval` gives them, and the facts missing."""
        vo, mo = evaluate_record(self.old, self.compiled_old, record, self.as_of)
        vn, mn = evaluate_record(self.new, self.compiled_new, record, self.as_of)
        self.tried += 1
        return (vo, vn), sorted(set(mo) | set(mn))

    def witness(self, goal: Any, want: Any, what: str) -> tuple[str, Witness | None]:
        """Solve for a move, turn the model into a record, check it really moves.

        `want(old, new)` says whether a pair of verdicts is the move asked for."""
        status, model, _ = self.solver.solve(goal)
        if model is None:
            if status == "unknown":
                self.timeouts.append(what)
            return status, None
        record, implausible = self.solver.record(model)
        got, missing = self.verdicts(record)
        if want(*got):
            return "sat", Witness(record, got, missing, implausible)
        found = self.search(record, want)
        return ("sat" if found else "unconfirmed"), found

    def search(self, start: dict[str, Any], want: Any) -> Witness | None:
        """Targeted search from a candidate: vary each fact at and around the values
        the protocols compare it with, one fact at a time, then in pairs."""
        names = sorted(name for name, t in self.space.types.items() if not isinstance(t, ListT))
        variants = {name: _variants(self, name, start) for name in names}
        names = [name for name in names if variants[name]]

        def attempt(record: dict[str, Any]) -> Witness | None:
            got, missing = self.verdicts(record)
            return Witness(record, got, missing) if want(*got) else None

        for name in names:
            for value in variants[name]:
                record = copy.deepcopy(start)
                record["facts"][name] = value
                if (w := attempt(record)) is not None:
                    return w
        for a, b in itertools.islice(itertools.combinations(names, 2), 200):
            for va in variants[a][:4]:
                for vb in variants[b][:4]:
                    record = copy.deepcopy(start)
                    record["facts"][a], record["facts"][b] = va, vb
                    if (w := attempt(record)) is not None:
                        return w
        return None


def _variants(v: _Versions, name: str, start: dict[str, Any]) -> list[Any]:
    t = v.space.types.get(name)
    current = start["facts"].get(name)
    out: list[Any] = [None]  # unknown
    if isinstance(t, QuantT):
        values = {Fraction(x) for x in v.space.thresholds.get(name, ())}
        values |= {x * Fraction(99, 100) for x in values} | {x * Fraction(101, 100) for x in values}
        for x in sorted(values):
            entry = dict(current) if isinstance(current, dict) else {"unit": t.unit.text}
            entry["value"] = float(x)
            entry.setdefault("date", v.as_of.isoformat())
            out.append(entry)
    elif isinstance(t, BoolT):
        out += [True, False]
    elif isinstance(t, (EnumT, ScaleT)):
        out += list(v.space.members.get(name, t.members))
    elif isinstance(t, DateT):
        days = (0, 27, 29, 200, 400, 800)
        out += [(v.as_of - dt.timedelta(days=d)).isoformat() for d in days]
    return out


# ---------------------------------------------------------------------- the diff


def _proof_words(space: Space, bound: int | None) -> str:
    parts = ["proven by z3 over three verdicts (any fact may be unknown)"]
    if bound is not None:
        parts.append(
            f"for lists of up to {bound} items only (a longer list under `majority of`, or "
            "with more items than the encoding holds, is not covered)"
        )
    elif space.bounded:
        parts.append("for lists of any length")
    if space.abstracted:
        parts.append("with " + ", ".join(sorted(space.abstracted)) + " abstracted (sound)")
    return ", ".join(parts)


def _effect(v: _Versions, others: Any, what: str) -> Effect:
    vo, vn = v.p_old.verdict, v.p_new.verdict
    before = v.tried
    goals = [
        z3.And(others, vo.ineligible, vn.eligible),
        z3.And(others, vo.eligible, vn.ineligible),
        z3.And(others, z3.Not(vo.undetermined), vn.undetermined),
        z3.And(others, vo.undetermined, z3.Not(vn.undetermined)),
    ]
    ws, widening = v.witness(
        goals[0], lambda a, b: (a, b) == ("ineligible", "eligible"), f"{what}: gains"
    )
    ns, narrowing = v.witness(
        goals[1], lambda a, b: (a, b) == ("eligible", "ineligible"), f"{what}: losses"
    )
    us, now_open = v.witness(
        goals[2],
        lambda a, b: a in DECIDED and b == "undetermined",
        f"{what}: now undetermined",
    )
    ds, now_decided = v.witness(
        goals[3],
        lambda a, b: a == "undetermined" and b in DECIDED,
        f"{what}: now decided",
    )
    # what was ruled out (unsat) over bounded lists holds only up to that length
    ruled_out = [g for g, st in zip(goals, (ws, ns, us, ds), strict=True) if st == "unsat"]
    bound = v.space.list_bound(*ruled_out) if ruled_out else None
    searched = v.tried - before
    if ws == ns == "unsat":
        cls = "unchanged"
    elif widening and narrowing:
        cls = "both"
    elif widening and ns == "unsat":
        cls = "widened"
    elif narrowing and ws == "unsat":
        cls = "narrowed"
    else:
        cls = "undecided"
    if us == ds == "unsat":
        und = "unchanged"
    elif now_open or now_decided:
        und = "changes"
    else:
        und = "undecided"
    if cls == "unchanged" and und == "unchanged":
        return Effect(cls, _proof_words(v.space, bound), lists_up_to=bound)
    proof = "witness patients re-checked by both compiled evaluators"
    if bound is not None:
        proof += f"; what no patient does is proven for lists of up to {bound} items only"
    if "undecided" in (cls, und):
        answers = "/".join((ws, ns, us, ds))
        proof = (
            f"not established: the solver answered {answers} (gains/losses/now undetermined/"
            f"now decided; 'unknown' is a timeout, 'unconfirmed' a candidate that did not "
            f"move when re-checked); targeted search tried {searched} patients"
        )
    return Effect(
        cls, proof, widening, narrowing, searched, und, now_open, now_decided, lists_up_to=bound
    )


def _same_meaning(old: CheckResult, new: CheckResult) -> bool:
    """Whether everything a verdict reads is equal (nodes compare without their source
    spans): each criterion's id, section, rule and condition, the definitions, facts,
    anchors, assumptions and code bindings, and the header but for its title, version,
    date and amendment notes."""

    def rules(c: CheckResult) -> list[Any]:
        # the order of criteria decides nothing (the verdict combines them all)
        return sorted(
            ((k, x.id, x.rule, x.applies) for k, x in c.protocol.criteria), key=lambda r: r[1]
        )

    def header(c: CheckResult) -> Any:
        h = c.protocol.header
        if h is None:
            return None
        return (h.sex, h.minimum_age, h.maximum_age, h.healthy_volunteers, h.tolerance, h.arms)

    def facts(c: CheckResult) -> dict[str, Any]:
        return {name: info.node for name, info in c.facts.items()}

    return (
        rules(old) == rules(new)
        and header(old) == header(new)
        and old.defines == new.defines
        and facts(old) == facts(new)
        and old.anchors == new.anchors
        and old.assumed == new.assumed
        and old.bindings == new.bindings
        and old.item_bindings == new.item_bindings
    )


def _same_status(v: _Versions, old_id: str, new_id: str) -> Any:
    so, sn = v.p_old.statuses[old_id], v.p_new.statuses[new_id]
    return z3.And(so.met == sn.met, so.not_met == sn.not_met, so.unknown == sn.unknown)


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
        if kind != k2:
            details.append(f"moved from the {kind} to the {k2} criteria")
        if c.applies != c2.applies:
            if c.applies is None and c2.applies is not None:
                details.append(f"now only when {formula(c2.applies)}")
            elif c2.applies is None:
                details.append("now for every patient (the condition was removed)")
            else:
                details += _describe(c.applies, c2.applies)  # type: ignore[arg-type]
        if c.rule is not None and c2.rule is not None and c.rule != c2.rule:
            details += _describe(c.rule, c2.rule)
        others = z3.And(v.p_old.clear_except(cid), v.p_new.clear_except(cid))
        effect = _effect(v, others, cid)
        kind_word = "changed"
        if effect.unchanged:
            differs = z3.Not(_same_status(v, cid, cid))
            same_bound = v.space.list_bound(differs)
            if kind == k2 and v.solver.check(differs) == "unsat":
                if same_bound is None:
                    kind_word = "rewritten"
                    details.append("no change of meaning (proven for known and unknown facts)")
                else:  # not "rewritten": that claims the same meaning for every patient
                    details.append(
                        f"no change of meaning for lists of up to {same_bound} items (proven "
                        "for known and unknown facts; longer lists are not covered)"
                    )
            else:
                details.append(
                    "the criterion itself now decides differently, but no patient's verdict "
                    "changes: other criteria decide those patients in both versions"
                )
        changes.append(Change(cid, kind_word, k2, details, effect))
    for rid in removed:
        kind, _ = old_crits[rid]
        effect = _effect(v, z3.And(v.p_old.clear_except(rid), v.p_new.clear_except(None)), rid)
        changes.append(Change(rid, "removed", kind, [], effect))
    for aid in added:
        kind, _ = new_crits[aid]
        effect = _effect(v, z3.And(v.p_old.clear_except(None), v.p_new.clear_except(aid)), aid)
        changes.append(Change(aid, "added", kind, [], effect))
    if _same_meaning(old, new):
        # nothing a verdict reads differs (a new version number, reworded texts): no
        # proof to search for (author8 F8: such a diff ran for minutes on list windows)
        overall = Effect("unchanged", "the rules, definitions, facts, codes and header match")
    else:
        overall = _effect(v, z3.BoolVal(True), "whole protocol")
    h = new.protocol.header
    notes = list(h.amendment_notes) if h else []
    result = DiffResult(
        old.source.path,
        new.source.path,
        as_of,
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
    if notes and all(EDITORIAL.search(x) for x in notes) and not overall.unchanged:
        result.warnings.append(
            "the amendment notes claim editorial changes only, but the verdicts change "
            f"(decided population {overall.classification}; undetermined patients "
            f"{overall.undetermined})"
        )
    order = {c.id: i for i, (_, c) in enumerate(new.protocol.criteria)}
    order.update(
        {c.id: i + 0.5 for i, (_, c) in enumerate(old.protocol.criteria) if c.id not in order}
    )
    result.changes.sort(key=lambda ch: (order.get(ch.id, 1e9), ch.id))
    result.solver_notes = solver_notes(v.space, v.timeouts)
    return result


def solver_notes(space: Space, timeouts: list[str]) -> list[str]:
    """What the encoding covers, and every rule or question it could not decide, with why."""
    scope = ["any fact may be unknown"]
    if space.bounded:
        scope.append(space.lists_note())
    if space.abstracted:
        scope.append("abstracted (sound): " + ", ".join(sorted(space.abstracted)))
    out = ["z3 encoding: " + "; ".join(scope)]
    for cid, why in sorted(set(space.unsupported)):
        out.append(f"{cid}: not modelled ({why}); taken as any outcome, so it is never proven")
    for what in timeouts:
        out.append(f"{what}: the solver did not finish in time (no answer either way)")
    return out


# ---------------------------------------------------------------------- output

WORDS = {
    "unchanged": "decided population unchanged",
    "widened": "widens the eligible population (some patients gain)",
    "narrowed": "narrows the eligible population (some patients lose)",
    "both": "both widens and narrows (some patients gain, some lose)",
    "undecided": "effect on the decided population not established",
}
UNDETERMINED_WORDS = {
    "unchanged": "undetermined patients unchanged",
    "changes": "undetermined changes (some verdicts move between decided and undetermined)",
    "undecided": "effect on undetermined patients not established",
}


def headline(e: Effect) -> str:
    scope = f" for lists of up to {e.lists_up_to} items" if e.lists_up_to is not None else ""
    if e.unchanged:
        return f"verdicts unchanged{scope} (eligible, ineligible and undetermined)"
    out = f"{WORDS[e.classification]}; {UNDETERMINED_WORDS[e.undetermined]}"
    return out + (f" (what no patient does: proven{scope})" if scope else "")


def witness_lines(label: str, w: Witness) -> list[str]:
    """A witness as printed: what it shows, then the complete record on one line."""
    import json

    old, new = w.verdicts
    head = f"    a patient who {label} ({old} -> {new})"
    if w.missing:
        head += ", unknown: " + ", ".join(w.missing)
    if w.implausible:
        head += "; outside the plausible range: " + ", ".join(w.implausible)
    return [head + ":", "      " + json.dumps(w.record, sort_keys=True, ensure_ascii=False)]


def _labelled(e: Effect) -> list[tuple[str, Witness | None]]:
    return [
        ("gains", e.widening),
        ("loses", e.narrowing),
        ("becomes undetermined", e.now_undetermined),
        ("becomes decided", e.now_decided),
    ]


def render_text(r: DiffResult, old: CheckResult, new: CheckResult) -> str:
    lines = [f"critlang diff {r.old_path} -> {r.new_path}  (as of {r.as_of.isoformat()})"]
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
            head += f": {headline(ch.effect)}"
        lines.append(head)
        lines += [f"    {d}" for d in ch.details]
        if ch.effect is None:
            continue
        lines.append(f"    how: {ch.effect.proof}")
        for label, w in _labelled(ch.effect):
            if w is not None:
                lines += witness_lines(label, w)
    lines.append("")
    lines.append(f"whole protocol: {headline(r.overall)}")
    lines.append(f"    how: {r.overall.proof}")
    for label, w in _labelled(r.overall):
        if w is not None:
            lines += witness_lines(label, w)
    lines += [f"    solver: {x}" for x in r.solver_notes]
    return "\n".join(lines)


def _witness_json(w: Witness | None) -> dict[str, Any] | None:
    if w is None:
        return None
    return {
        "record": w.record,
        "verdicts": {"old": w.verdicts[0], "new": w.verdicts[1]},
        "missing": w.missing,
        "implausible": w.implausible,
    }


def to_json(r: DiffResult) -> dict[str, Any]:
    def effect(e: Effect | None) -> dict[str, Any] | None:
        if e is None:
            return None
        return {
            "classification": e.classification,
            "undetermined": e.undetermined,
            "proof": e.proof,
            "searched": e.searched,
            "lists_up_to": e.lists_up_to,
            "widening_witness": e.widening.record if e.widening else None,
            "narrowing_witness": e.narrowing.record if e.narrowing else None,
            "witnesses": {label: _witness_json(w) for label, w in _labelled(e) if w is not None},
        }

    return {
        "old": r.old_path,
        "new": r.new_path,
        "as_of": r.as_of.isoformat(),
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
