"""`critlang lint`: contradictions, gaps, dead and redundant criteria, proven with z3.

Every question is asked of the three-valued encoding (semantics/): any fact may be
unknown, and statuses and verdicts are those the compiled evaluator computes. A finding
names the criteria involved, says what is wrong in plain words and, where a patient
shows it, carries a witness record that the compiled evaluator has re-checked (the
witness carries the `as_of` it was solved for, so `critlang eval` reproduces it).
A finding that rests on a proof says so; a question the solver could not settle is an
L190 note naming the rule and why, never a silent pass.

Kinds, codes and severities (docs/errors.md, docs/lint.md):
  L101 error    no patient can be eligible
  L102 error    an inclusion criterion can never be met
  L103 warning  an exclusion criterion can never be met
  L111 warning  a criterion never changes a verdict (redundant), with the proof
  L121 warning  inclusion and exclusion boundaries on one fact overlap
  L122 warning  inclusion and exclusion boundaries on one fact miss each other
  L131 warning  a sub-clause never affects its criterion (dead clause)
  L141 warning  the header's sex or age range admits patients the criteria never can
  L151 warning  a plain-number fact whose name suggests a quantity is compared with
                thresholds
  L190 info     a question the solver could not decide, and why
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import z3

from . import nodes as n
from .backends.python import Compiled, compile_protocol
from .checker import CheckResult
from .data.records import read_record
from .evaluate import Evaluator
from .lint_boundaries import BoundaryChecks
from .semantics import Encoder, Protocol, Solver, Space, Status, plan_lists
from .semantics.plausible import TABLE
from .typesys import EnumT, NumberT
from .units import parse_unit

SEVERITY = {
    "L101": "error",
    "L102": "error",
    "L103": "warning",
    "L111": "warning",
    "L121": "warning",
    "L122": "warning",
    "L131": "warning",
    "L141": "warning",
    "L151": "warning",
    "L190": "info",
}
TITLES = {
    "L101": "no patient can be eligible",
    "L102": "inclusion criterion can never be met",
    "L103": "exclusion criterion can never be met",
    "L111": "redundant criterion",
    "L121": "overlapping boundaries",
    "L122": "near-miss boundaries",
    "L131": "dead sub-clause",
    "L141": "header conflicts with the criteria",
    "L151": "quantity-like plain number compared with thresholds",
    "L190": "not decided",
}
LEVELS = {"info": 0, "warning": 1, "error": 2}


@dataclass
class Finding:
    code: str
    criteria: list[str]
    message: str
    path: str
    line: int
    column: int
    proof: str = ""
    witness: dict[str, Any] | None = None
    shows: str = ""  # what the compiled evaluator says about the witness
    # a proof over lists of at most this many items only (semantics/lists.py); None:
    # the finding holds for lists of any length (or there are none)
    lists_up_to: int | None = None

    @property
    def severity(self) -> str:
        return SEVERITY[self.code]

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "kind": TITLES[self.code],
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "criteria": self.criteria,
            "message": self.message,
            "proof": self.proof,
            "witness": self.witness,
            "shows": self.shows,
            "lists_up_to": self.lists_up_to,
        }


@dataclass
class _Linter(BoundaryChecks):
    checked: CheckResult
    as_of: dt.date
    findings: list[Finding] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.space = Space(self.as_of)
        # a clause check adds the criterion's copy without the clause (dead_below)
        self.space.slots = plan_lists([self.checked], clause_copies=True)
        self.enc = Encoder(self.checked, self.space)
        self.p = Protocol(self.enc)
        self.solver = Solver(self.space, [self.checked])
        self.compiled: Compiled = compile_protocol(self.checked)
        self.evaluator = Evaluator(self.compiled, explain=False)
        self.crits = {c.id: (k, c) for k, c in self.checked.protocol.criteria}
        self.path = self.checked.source.path

    # ------------------------------------------------------------------ helpers
    def add(
        self, code: str, crits: list[str], message: str, node: n.Node | None, **kw: Any
    ) -> None:
        span = node.span if node is not None else None
        line, col = (span.line, span.column) if span is not None and span.line else (1, 1)
        self.findings.append(Finding(code, crits, message, self.path, line, col, **kw))

    def check(self, *goal: Any) -> str:
        return self.solver.check(*goal)

    def proven(
        self, code: str, crits: list[str], says: str, why: str, proof: str, node: Any, *about: Any
    ) -> None:
        """A finding resting on an unsat answer about `about`: when the encoding of its
        lists is bounded (semantics/lists.py), the headline and the proof say so."""
        bound = self.space.list_bound(*about)
        if bound is not None:
            says += f" for lists of up to {bound} items"
            proof += (
                f"; lists of up to {bound} items only: a longer list (under `majority of`, "
                "or more items than the encoding holds) is not covered"
            )
        elif self.space.bounded:
            proof += "; lists of any length (each list condition needs only the items encoded)"
        self.add(
            code, crits, says + (f": {why}" if why else ""), node, proof=proof, lists_up_to=bound
        )

    def statuses_of(self, record: dict[str, Any]) -> tuple[str, dict[str, str]]:
        r = read_record(self.checked, record, self.as_of)
        e = self.evaluator.evaluate(r)
        return e.verdict, {c.id: c.status for c in e.criteria}

    def witness(self, goal: Any, want: Any) -> tuple[dict[str, Any] | None, str]:
        """A plausible patient for the goal, re-checked: (record, what eval shows)."""
        _, model, _ = self.solver.solve(goal)
        if model is None:
            return None, ""
        record, _ = self.solver.record(model, "lint-witness")
        verdict, sts = self.statuses_of(record)
        shows = want(verdict, sts)
        return (record, shows) if shows else (None, "")

    def undecided(self, what: str, node: n.Node | None, cids: list[str]) -> None:
        self.add(
            "L190",
            cids,
            f"{what}: the solver did not finish in time; this question is not decided",
            node,
        )

    # ------------------------------------------------------------------ the checks
    def run(self) -> list[Finding]:
        for cid, why in sorted(set(self.space.unsupported)):
            self.add(
                "L190",
                [cid],
                f"{cid} is not modelled ({why}): no finding about it is proven",
                self.crits[cid][1] if cid in self.crits else None,
            )
        if self.satisfiable():
            self.never_met()
            self.redundant()
            self.boundaries()
            self.dead_clauses()
            self.header()
        self.number_facts()
        self.findings.sort(key=lambda f: (f.line, f.column, f.code, f.criteria))
        return self.findings

    def satisfiable(self) -> bool:
        r = self.check(self.p.verdict.eligible)
        if r == "unsat":
            blockers = self.core([s.clears for s in self.p.statuses.values()], [])
            self.proven(
                "L101",
                blockers,
                "no patient can be eligible",
                f"{', '.join(blockers)} cannot all be cleared by one patient"
                if blockers
                else "the criteria contradict each other",
                "z3: the verdict `eligible` is unsatisfiable",
                self.crits[blockers[0]][1] if blockers else self.checked.protocol,
                self.p.verdict.eligible,
            )
            self.never_met()  # name the inclusions that alone rule everyone out
            return False
        if r == "unknown":
            self.undecided("whether any patient can be eligible", self.checked.protocol, [])
        return True

    def core(self, clears: list[Any], extra: list[Any], skip: set[str] | None = None) -> list[str]:
        """The criteria whose clearing conflicts (an unsat core over per-criterion switches)."""
        s = z3.Solver()
        s.set("timeout", 5000)
        s.add(*self.space.constraints, *extra)
        switches = []
        for cid in self.p.statuses:
            if skip and cid in skip:
                continue
            lit = z3.Bool(f"|clear:{cid}|")
            s.add(z3.Implies(lit, self.p.statuses[cid].clears))
            switches.append(lit)
        if s.check(*switches) != z3.unsat:
            return []
        names = {str(x) for x in s.unsat_core()}
        return [cid for cid in self.p.statuses if f"|clear:{cid}|" in names]

    def never_met(self) -> None:
        for cid, st in self.p.statuses.items():
            kind, c = self.crits[cid]
            r = self.check(st.met)
            if r == "unknown":
                self.undecided(f"whether {cid} can be met", c, [cid])
            if r != "unsat":
                continue
            code = "L102" if kind == "inclusion" else "L103"
            effect = (
                "so no patient can be eligible"
                if kind == "inclusion"
                else "so it never excludes anyone"
            )
            self.proven(
                code,
                [cid],
                f"{cid} can never be met, whatever the patient's facts",
                effect,
                "z3: `met` is unsatisfiable for this criterion",
                c,
                st.met,
            )

    def redundant(self) -> None:
        """Exclusions first (an exclusion restating a failed inclusion is the usual
        case), then inclusions; a criterion found redundant counts as removed for the
        next, so two criteria that restate each other give one finding, not two."""
        dropped: set[str] = set()
        order = [i for i in self.p.statuses if self.crits[i][0] == "exclusion"]
        order += [i for i in self.p.statuses if self.crits[i][0] == "inclusion"]
        for cid in order:
            st = self.p.statuses[cid]
            kind, c = self.crits[cid]
            others = [s for i, s in self.p.statuses.items() if i != cid and i not in dropped]
            # quick test: a patient whom only this criterion blocks shows it matters
            if self.check(st.blocks, *[z3.Not(s.blocks) for s in others]) != "unsat":
                continue
            before = self.p.verdict_without(dropped)
            without = self.p.verdict_without(dropped | {cid})
            same = z3.And(
                before.eligible == without.eligible,
                before.ineligible == without.ineligible,
            )
            r = self.check(z3.Not(same))
            if r == "unknown":
                self.undecided(f"whether {cid} is redundant", c, [cid])
            if r != "unsat":
                continue
            cover = self.core([], [st.blocks], skip=dropped | {cid})
            if kind == "exclusion":
                why = "every patient it excludes is already ineligible"
            else:
                why = "every patient who fails it is already ineligible"
            if cover:
                why += " by " + ", ".join(cover)
            dropped.add(cid)
            self.proven(
                "L111",
                [cid, *cover],
                f"{cid} never changes a verdict",
                why,
                f"z3: the verdicts with and without {cid} are equal for every patient, any "
                "fact known or unknown",
                c,
                *[x for x in [self.local_cover(cid, cover)] if x is not None] or [same],
            )

    def local_cover(self, cid: str, cover: list[str]) -> Any:
        """A proof of redundancy that names only the criterion and its cover, when one
        holds: in every evaluation (as recorded, and per arm), wherever it blocks a cover
        criterion blocks, and wherever it is unknown a cover criterion blocks or is
        unknown; each plain verdict, and so their per-arm combination, is then the same
        without it. Its list bound is that of these criteria only, not of the whole
        protocol. None: no such proof."""
        if not cover:
            return None
        parts = []
        for sts in [self.p.statuses, *self.p.per_arm]:
            st, cv = sts[cid], [sts[i] for i in cover]
            parts.append(z3.Implies(st.blocks, z3.Or(*[s.blocks for s in cv])))
            parts.append(z3.Implies(st.unknown, z3.Or(*[z3.Or(s.blocks, s.unknown) for s in cv])))
        goal = z3.Not(z3.And(*parts))
        return goal if self.check(goal) == "unsat" else None

    # ------------------------------------------------------------------ dead clauses
    def dead_clauses(self) -> None:
        # a criterion the encoding cannot model is one free status whatever its clauses
        # (semantics/verdict.status), so "the same without this clause" would be proven
        # of every clause: nothing is said about it beyond its L190
        free = {cid for cid, _ in self.space.unsupported}
        for cid, (kind, c) in self.crits.items():
            if cid in free:
                continue
            for clause in (c.applies, c.rule):
                if clause is not None:
                    self.dead_below(cid, kind, c, clause)

    def dead_below(self, cid: str, kind: str, c: n.Criterion, e: n.Expr) -> None:
        """Each operand of and/or/unless, outermost first: is the criterion the same
        without it (the operator replaced by its other operand)? A dead operand's own
        operands are not reported again."""
        if isinstance(e, (n.And, n.Or)):
            sides = [(e.left, e.right), (e.right, e.left)]
        elif isinstance(e, n.Unless):
            sides = [(e.exception, e.rule)]
        elif isinstance(e, n.Not):
            self.dead_below(cid, kind, c, e.operand)
            return
        elif isinstance(e, n.Quantified):
            self.dead_below(cid, kind, c, e.body)
            return
        else:
            return
        dead = set()
        for sub, other in sides:
            if self.dead(cid, kind, c, e, sub, other):
                dead.add(id(sub))
                break  # with one side gone the other is the whole: not dead as well
        for sub, _ in sides:
            if id(sub) not in dead:
                self.dead_below(cid, kind, c, sub)
        if isinstance(e, n.Unless) and id(e.exception) not in dead:
            self.dead_below(cid, kind, c, e.rule)

    def dead(
        self, cid: str, kind: str, c: n.Criterion, parent: n.Expr, sub: n.Expr, other: n.Expr
    ) -> bool:
        from .semantics.verdict import status

        needs = dict(self.space.needs)  # this question's encodings only (lists.py)
        enc = Encoder(self.checked, self.space)
        enc.replace[id(parent)] = other
        # what does not contain the replaced node encodes as before: reuse it
        root = c.applies if c.applies is not None and _within(parent, c.applies) else c.rule
        above = _ancestors(root, parent) if root is not None else set()
        enc.memo = {k: v for k, v in self.enc.memo.items() if k not in above}
        without = status(enc, kind, c)
        st: Status = self.p.statuses[cid]
        same = z3.And(
            st.met == without.met, st.not_met == without.not_met, st.unknown == without.unknown
        )
        try:
            r = self.check(z3.Not(same))
            if r == "unknown":
                self.undecided(f"whether a sub-clause of {cid} matters", sub, [cid])
            if r != "unsat":
                return False
            text = " ".join(self.checked.source.text[sub.span.start : sub.span.end].split())
            self.proven(
                "L131",
                [cid],
                f"in {cid}, `{text}` never affects the criterion",
                f"without it, {cid} is met, not met or unknown for exactly the same patients",
                "z3: the criterion with and without this sub-clause has the same status "
                "for every patient, any fact known or unknown",
                sub,
                same,
            )
            return True
        finally:
            self.space.needs = needs

    # ------------------------------------------------------------------ header
    def header(self) -> None:
        h = self.checked.protocol.header
        if h is None:
            return
        sex_t = self.space.types.get("sex")
        if h.sex in ("female", "male", "all") and isinstance(sex_t, EnumT):
            wanted = ["female", "male"] if h.sex == "all" else [h.sex]
            for sex in wanted:
                if sex not in sex_t.members:
                    continue
                var = self.enc.fact("sex")
                at = z3.And(var.k, var.v == self.enc.member_index("sex", sex))
                self.header_point(
                    at,
                    f"the header admits {'all sexes' if h.sex == 'all' else sex + ' patients'}",
                    f"no {sex} patient can be eligible",
                    h.item_span("sex"),
                    h,
                )
        age = self.age_var()
        if age is None:
            return
        years, known = age
        for key, q in (("minimum", h.minimum_age), ("maximum", h.maximum_age)):
            if q is None:
                continue
            u = parse_unit(q.unit)
            value = q.value * u.factor / 12  # calendar base: months
            if value.denominator != 1:
                continue
            at = z3.And(known, years == int(value))
            self.header_point(
                at,
                f"the header's {key} age is {q.text}",
                f"no patient aged {int(value)} years can be eligible",
                q.span,
                q,
            )

    def header_point(self, at: Any, says: str, but: str, span: Any, node: n.Node) -> None:
        r = self.check(at, self.p.verdict.eligible)
        if r != "unsat":
            return
        blockers = self.core([], [at])
        who = ", ".join(blockers) or "the criteria"
        proof = "z3: `eligible` is unsatisfiable at this header value"
        bound = self.space.list_bound(at, self.p.verdict.eligible)
        if bound is not None:
            but += f" for lists of up to {bound} items"
            proof += f"; lists of up to {bound} items only: a longer list is not covered"
        finding = Finding(
            "L141",
            blockers,
            f"{says}, but {but}: {who} rule{'s' if len(blockers) == 1 else ''} them out",
            self.path,
            span.line or 1,
            span.column or 1,
            proof=proof,
            lists_up_to=bound,
        )
        others = [s.clears for i, s in self.p.statuses.items() if i not in blockers]

        def shows(verdict: str, sts: dict[str, str]) -> str:
            return f"verdict {verdict}" if verdict == "ineligible" else ""

        finding.witness, finding.shows = self.witness(z3.And(at, *others), shows)
        self.findings.append(finding)

    def age_var(self) -> tuple[Any, Any] | None:
        """The completed-years variable of an age at enrollment, and its known flag."""
        for key, (birth, end) in self.space.ages.items():
            if z3.is_int_value(z3.simplify(end)) and z3.simplify(end).as_long() == self.space.today:
                return self.space.vars[key], self.space.known(birth)
        return None

    # ------------------------------------------------------------------ plain numbers
    def number_facts(self) -> None:
        quantity_words = {keys: p for keys, p in TABLE if p.unit}
        compared: dict[str, list[n.Compare]] = {}
        for node in self.checked.protocol.walk():
            if isinstance(node, (n.Compare, n.Between)):
                subject = node.left if isinstance(node, n.Compare) else node.subject
                if isinstance(subject, n.Name):
                    r = self.checked.refs.get(id(subject))
                    if r is not None and r.kind == "fact":
                        compared.setdefault(subject.name, []).append(node)  # type: ignore[arg-type]
        for name, info in sorted(self.checked.facts.items()):
            if not isinstance(info.type, NumberT) or name not in compared:
                continue
            words = set(name.lower().split("_"))
            for keys, p in quantity_words.items():
                if all(k in words for k in keys):
                    node = compared[name][0]
                    cids = sorted(
                        {cid for cid, (_, c) in self.crits.items() if _contains(c, compared[name])}
                    )
                    self.add(
                        "L151",
                        cids,
                        f"`{name}` is a plain number, but its name suggests a quantity usually "
                        f"reported in {p.unit}: its thresholds are compared without units, so a "
                        f"value recorded in another unit is compared as if it were {p.unit}; "
                        f"declare `fact {name}: quantity {p.unit}`",
                        node,
                    )
                    break


# ---------------------------------------------------------------------- tree helpers


def _within(node: n.Node, root: n.Node) -> bool:
    return any(x is node for x in root.walk())


def _ancestors(root: n.Node, target: n.Node) -> set[int]:
    """ids of the nodes on the path from root down to target, both included."""
    path: list[n.Node] = []

    def visit(x: n.Node) -> bool:
        path.append(x)
        if x is target or any(visit(c) for c in x.children()):
            return True
        path.pop()
        return False

    visit(root)
    return {id(x) for x in path}


def _contains(c: n.Criterion, nodes: list[n.Compare]) -> bool:
    ids = {id(x) for x in nodes}
    return any(id(x) in ids for x in c.walk())


def lint(checked: CheckResult, as_of: dt.date) -> list[Finding]:
    """Findings for one checked protocol, sorted by position."""
    return _Linter(checked, as_of).run()


def render_text(findings: list[Finding]) -> str:
    import json

    lines = []
    for f in findings:
        lines.append(
            f"{f.path}:{f.line}:{f.column}: {f.code} {f.severity}: {f.message} [{TITLES[f.code]}]"
        )
        if f.criteria:
            lines.append(f"    criteria: {', '.join(f.criteria)}")
        if f.proof:
            lines.append(f"    how: {f.proof}")
        if f.witness is not None:
            lines.append(f"    witness ({f.shows}, re-checked by the compiled evaluator):")
            lines.append("      " + json.dumps(f.witness, sort_keys=True, ensure_ascii=False))
    return "\n".join(lines)
