"""Criterion statuses and the protocol verdict, three-valued, as the evaluator decides them.

A criterion's status is met / not met / unknown / not applicable (backends/python.py,
`_Codegen.criterion`): with an `applies if` condition, a false condition makes it not
applicable; an unknown condition leaves it unknown unless the rule clears the patient
either way (an inclusion met, an exclusion not met). The verdict (`_Codegen.verdict`):
ineligible when an inclusion is not met or an exclusion met, else undetermined when a
status is unknown, else eligible. With arms (evaluate.py, `Evaluator.evaluate`): when the
record has no arm and a criterion depends on it, the patient is evaluated once per arm;
one common verdict stands, otherwise the verdict is undetermined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import z3

from .. import nodes as n
from ..backends.python import _dependencies
from .encode import FALSE, TRUE, TV, Encoder, Unsupported


@dataclass(frozen=True)
class Status:
    """One criterion's status as z3 booleans (exactly one holds)."""

    id: str
    section: str
    met: Any
    not_met: Any
    unknown: Any
    na: Any
    rule: TV
    applies: TV | None

    @property
    def blocks(self) -> Any:
        """The criterion makes the patient ineligible."""
        return self.not_met if self.section == "inclusion" else self.met

    @property
    def clears(self) -> Any:
        """Neither blocks nor leaves the verdict open."""
        return z3.And(z3.Not(self.blocks), z3.Not(self.unknown))


@dataclass(frozen=True)
class Verdict:
    eligible: Any
    ineligible: Any
    undetermined: Any

    def of(self, word: str) -> Any:
        return {
            "eligible": self.eligible,
            "ineligible": self.ineligible,
            "undetermined": self.undetermined,
        }[word]


def status(enc: Encoder, section: str, c: n.Criterion) -> Status:
    """The status of a criterion; a rule the encoding cannot model becomes a free status
    (any outcome), the same free status in every version where the rule is the same."""
    assert c.rule is not None
    try:
        rule = enc.cond(c.rule, {})
        applies = enc.cond(c.applies, {}) if c.applies is not None else None
    except Unsupported as exc:
        enc.s.unsupported.append((c.id, str(exc)))
        enc.s.abstracted.add(f"{c.id}: {exc}")
        key = ("free", repr((c.rule, c.applies)), enc.arm)
        t = enc.var((*key, "t"), lambda: z3.Bool(f"|free-t:{c.id}:{len(enc.s.vars)}|"))
        f = enc.var((*key, "f"), lambda: z3.Bool(f"|free-f:{c.id}:{len(enc.s.vars)}|"))
        enc.s.constraints.append(z3.Not(z3.And(t, f)))
        rule, applies = TV(t, f), None
    if applies is None:
        return Status(c.id, section, rule.t, rule.f, rule.unknown, FALSE, rule, None)
    harmless = rule.t if section == "inclusion" else rule.f
    open_ = z3.Or(
        z3.And(applies.unknown, z3.Not(harmless)),
        z3.And(applies.t, rule.unknown),
    )
    met = z3.And(z3.Not(applies.f), z3.Not(open_), rule.t)
    not_met = z3.And(z3.Not(applies.f), z3.Not(open_), rule.f)
    return Status(c.id, section, met, not_met, open_, applies.f, rule, applies)


def statuses(enc: Encoder) -> dict[str, Status]:
    return {c.id: status(enc, kind, c) for kind, c in enc.c.protocol.criteria}


def plain_verdict(sts: dict[str, Status]) -> Verdict:
    bad = z3.Or(FALSE, *[s.blocks for s in sts.values()])
    open_ = z3.Or(FALSE, *[s.unknown for s in sts.values()])
    return Verdict(z3.And(z3.Not(bad), z3.Not(open_)), bad, z3.And(z3.Not(bad), open_))


class Protocol:
    """One version's statuses and verdict over a shared Space."""

    def __init__(self, enc: Encoder) -> None:
        self.enc = enc
        self.statuses = statuses(enc)
        c = enc.c
        h = c.protocol.header
        self.arms = [a.name for a in h.arms] if h is not None and h.arms else []
        self.on_arm = {
            crit.id for _, crit in c.protocol.criteria if "arm" in _dependencies(c, crit)
        }
        self.per_arm: list[dict[str, Status]] = []
        if self.arms and self.on_arm:
            for name in self.arms:
                arm_enc = enc.for_arm(enc.member_index("arm", name))
                self.per_arm.append(
                    {
                        crit.id: status(arm_enc, kind, crit)
                        if crit.id in self.on_arm
                        else self.statuses[crit.id]
                        for kind, crit in c.protocol.criteria
                    }
                )
        self.verdict = self.verdict_without(set())

    def verdict_without(self, dropped: set[str]) -> Verdict:
        """The verdict as the evaluator would give it were `dropped` not in the protocol."""
        base = plain_verdict({i: s for i, s in self.statuses.items() if i not in dropped})
        if not self.per_arm or not (self.on_arm - dropped):
            return base
        per_arm = [
            plain_verdict({i: s for i, s in sts.items() if i not in dropped})
            for sts in self.per_arm
        ]
        known = self.enc.s.known("arm")
        agree = {
            w: z3.And(*[v.of(w) for v in per_arm])
            for w in ("eligible", "ineligible", "undetermined")
        }
        eligible = z3.If(known, base.eligible, agree["eligible"])
        ineligible = z3.If(known, base.ineligible, agree["ineligible"])
        return Verdict(eligible, ineligible, z3.And(z3.Not(eligible), z3.Not(ineligible)))

    def clear_except(self, cid: str | None) -> Any:
        """Every other criterion clears the patient (base evaluation)."""
        return z3.And(TRUE, *[s.clears for i, s in self.statuses.items() if i != cid])
