"""Evaluate patients against a compiled protocol: verdicts, unknowns, explanations.

The compiled evaluator decides. `explain.Explainer` says why, clause by clause, with the
values used (no pint: explanations start cheaply), and `needs.Needs` says which unknown
facts could still change an undetermined verdict, by probing the compiled evaluator.
When the record has no randomisation arm and some criterion depends on it, the
patient is evaluated once per arm and the verdict says what each arm would need.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

from . import nodes as n
from .backends.python import FILENAME_PREFIX, Compiled, Criterion
from .backends.runtime import ELIGIBLE, INELIGIBLE, NA, UNDETERMINED
from .data.records import Record
from .explain import Explainer, deciding_sources, reasons
from .frozen_classes import field, mutable, replace
from .future_events import past_date_fields
from .needs import Needs, Slot
from .typesys import QuantT
from .units import conversion_factor

STATUS_WORDS = {True: "met", False: "not met", None: "unknown", NA: "not applicable"}


def status_word(status: Any) -> str:
    return STATUS_WORDS[status]


class EvaluationFault(RuntimeError):
    """A fault inside generated code, located in the criteria file."""


@mutable
class CriterionResult:
    id: str
    section: str
    text: str
    status: str  # met / not met / unknown / not applicable
    missing: list[str] = field(default_factory=list)  # facts that could decide it
    rule: str = ""
    decided_by: str = ""  # the rule's deciding clauses, as written
    values: dict[str, str] = field(default_factory=dict)
    explanation: list[str] = field(default_factory=list)  # the clauses, with values used

    @property
    def deciding(self) -> bool:
        """Does this criterion make the patient ineligible?"""
        if self.section == "inclusion":
            return self.status == "not met"
        return self.status == "met"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "section": self.section,
            "status": self.status,
            "text": self.text,
            "rule": self.rule,
            "decided_by": self.decided_by,
            "explanation": self.explanation,
            "values": self.values,
            "missing": self.missing,
        }


@mutable
class Evaluation:
    patient: str
    path: str
    as_of: dt.date
    verdict: str
    criteria: list[CriterionResult]
    missing: list[str]  # facts that could still change an undetermined verdict
    problems: list[str]
    arm: str | None = None
    per_arm: dict[str, Evaluation] = field(default_factory=dict)

    def statuses(self) -> dict[str, str]:
        return {c.id: c.status for c in self.criteria}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "patient": self.patient,
            "path": self.path,
            "as_of": self.as_of.isoformat(),
            "verdict": self.verdict,
            "arm": self.arm,
            "criteria": [c.to_dict() for c in self.criteria],
            "missing": self.missing,
            "problems": self.problems,
        }
        if self.per_arm:
            out["per_arm"] = {
                arm: {"verdict": e.verdict, "statuses": e.statuses(), "missing": e.missing}
                for arm, e in self.per_arm.items()
            }
        return out


def run_compiled(compiled: Compiled, f: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """Call the generated evaluator; a fault in it is reported at the criteria line."""
    try:
        return compiled.evaluate(f)
    except Exception as exc:
        import traceback  # only on a fault

        tb = traceback.extract_tb(sys.exc_info()[2])
        lines = [fr.lineno for fr in tb if fr.filename.startswith(FILENAME_PREFIX) and fr.lineno]
        where = compiled.criteria_line(lines[-1]) if lines else None
        path = compiled.checked.source.path
        raise EvaluationFault(
            f"{path}:{where or '?'}: evaluation failed: {type(exc).__name__}: {exc}"
        ) from exc


def _known(record: Record, dep: str) -> bool:
    if dep.startswith("@"):
        return record.anchors.get(dep[1:]) is not None
    return record.facts.get(dep) is not None


def _why(record: Record, slot: Slot | str) -> str:
    key = slot.key if isinstance(slot, Slot) else slot
    if key.startswith("@"):
        return f"anchor date {key[1:]} (not given)"
    if "#" in key:
        obs = record.facts.get(key.split("#")[0])
        if getattr(obs, "range_unknown", False):
            # reported, but not used: say why (realfhir7 F10)
            why = getattr(obs, "range_why", None) or "none can be used"
            return f"{slot} (reported, not used: {why})"
        if obs is None:  # the limits come with the value: say so, not "not reported"
            return f"{slot} (comes with the {key.split('#')[0]} value, which is unknown)"
        return f"{slot} (not reported with the value)"
    if isinstance(slot, Slot) and slot.index is not None:
        obs = record.facts.get(key)
        items = obs.value if obs is not None and isinstance(obs.value, list) else []
        value = items[slot.index].get(slot.field) if slot.index < len(items) else None
        if value is not None:  # a partial date, an ongoing end: known only within bounds
            return f"{slot} (known only as {value}: a precise value may decide)"
        # a value the record gives but the reader refused (no unit, a start after the
        # evaluation date) is not "not in the record": say why (author7 F15)
        item = f"{key}[{slot.index + 1}]"
        for p in record.problems:
            if p.fact in (str(slot), item):
                return f"{slot} (not used: {p.message})"
        return f"{slot} (not in the record)"
    if key in record.alternatives:
        shown = "; ".join(o.shown() for o in record.alternatives[key])
        return f"{slot} (conflicting values: {shown})"
    obs = record.facts.get(key)
    if obs is not None:  # a censored value, a partial date
        return f"{slot} (known only as {obs.shown()}: a precise value may decide)"
    return f"{slot} ({record.why_unknown.get(key, 'unknown')})"


class Evaluator:
    def __init__(self, compiled: Compiled, explain: bool = True) -> None:
        self.compiled = compiled
        self.explain = explain
        self.explainer = Explainer(compiled) if explain else None
        self._needs: Needs | None = None
        h = compiled.checked.protocol.header
        self.arms = [a.name for a in h.arms] if h is not None else []
        self.arm_dependent = any("arm" in c.facts for c in compiled.criteria)

    @property
    def needs(self) -> Needs:
        """Built on first use: only an undetermined verdict asks what it needs."""
        if self._needs is None:
            self._needs = Needs(self.compiled)
        return self._needs

    def evaluate(self, record: Record, arm: str | None = None) -> Evaluation:
        if arm is not None:
            record = _with_arm(record, arm)
        recorded_arm = record.facts.get("arm")
        if self.arms and self.arm_dependent and recorded_arm is None:
            per_arm = {a: self._one(_with_arm(record, a)) for a in self.arms}
            verdicts = {e.verdict for e in per_arm.values()}
            base = self._one(record)
            if len(verdicts) == 1:
                base.verdict = verdicts.pop()
                if base.verdict != UNDETERMINED:
                    base.missing = []
            else:  # what the patient needs depends on the arm
                base.verdict = UNDETERMINED
                base.missing = sorted({*base.missing, "arm"})
            base.per_arm = per_arm
            return base
        return self._one(record)

    def _one(self, record: Record) -> Evaluation:
        f = self.compiled.normalise(record)
        verdict, statuses = run_compiled(self.compiled, f)
        needed: list[Slot] = self.needs.find(f) if verdict == UNDETERMINED else []
        results: list[CriterionResult] = []
        for crit, status in zip(self.compiled.criteria, statuses, strict=True):
            results.append(self._result(crit, status, record, f, needed))
        missing = sorted(dict.fromkeys(self._asked(record, s) for s in needed))
        if verdict == UNDETERMINED and record.deceased is None:
            # a partial date of death that may fall before the evaluation date (records.py)
            missing = sorted({*missing, "deceased"})
        if verdict == UNDETERMINED and not missing:
            # never an undetermined verdict that names nothing: the open inputs read
            undecided = [
                c for c, s in zip(self.compiled.criteria, statuses, strict=True) if s is None
            ]
            missing = sorted(
                {
                    str(slot)
                    for c in undecided
                    for slot in self.needs.slots(f, c.facts, self.compiled.criteria.index(c))
                }
                or {d for c in undecided for d in c.facts if not _known(record, d)}
                or {w for c in undecided for w in self._later(c)}
                or {c.id for c in undecided}
            )
        arm_obs = record.facts.get("arm")
        return Evaluation(
            patient=record.id,
            path=record.path,
            as_of=record.anchors.get("enrollment") or dt.date.min,
            verdict=verdict,
            criteria=results,
            missing=missing if verdict == UNDETERMINED else [],
            problems=[str(p) for p in record.problems],
            arm=str(arm_obs.value) if arm_obs is not None else None,
        )

    def _asked(self, record: Record, slot: Slot) -> str:
        """What to ask for a needed slot: the anchor a fact's look-back window is measured
        from when that date is not known (the values may all be in the record: a
        coordinator enters the date, never re-draws the labs; author8 F11), else the slot."""
        info = self.compiled.checked.facts.get(slot.key.split("#")[0])
        look = info.lookback if info is not None else None
        if look is not None and look.quantity is not None and look.anchor is not None:
            if record.anchors.get(look.anchor) is None:
                return f"@{look.anchor}"
        return str(slot)

    def _later(self, crit: Criterion) -> set[str]:
        """The lists of crit's conditions that only an event after the evaluation date
        could meet (future_events.py): what such a criterion waits for."""
        checked = self.compiled.checked
        return {
            f"{x.list_name} (an item dated after the evaluation date)"
            for x in crit.node.walk()
            if isinstance(x, n.Quantified) and past_date_fields(checked, x)
        }

    def _result(
        self,
        crit: Criterion,
        status: Any,
        record: Record,
        f: dict[str, Any],
        needed: list[Slot],
    ) -> CriterionResult:
        src = self.compiled.checked.source.text
        node = crit.node
        rule = node.rule
        r = CriterionResult(
            crit.id,
            crit.section,
            node.text,
            status_word(status),
            rule=src[rule.span.start : rule.span.end] if rule is not None else "",
        )
        if status is None:
            mine = [s for s in needed if s.key.split("#")[0] in crit.facts]
            if not mine:
                # a decided verdict (not probed: it cannot change), or nothing of this
                # criterion's could move the verdict: its open inputs, never nothing
                mine = self.needs.slots(f, crit.facts, self.compiled.criteria.index(crit))
            r.missing = [_why(record, s) for s in mine] or [
                _why(record, d) for d in sorted(crit.facts) if not _known(record, d)
            ]
        if self.explainer is not None:
            clause = self.explainer.explain(node, status, f, record)
            if clause is not None:
                r.explanation = reasons(clause, status)
                r.decided_by = "; ".join(deciding_sources(clause, status))
            r.values = self._values(crit, record)
        return r

    def _values(self, crit: Criterion, record: Record) -> dict[str, str]:
        out: dict[str, str] = {}
        for dep in sorted(crit.facts):
            if dep.startswith("@"):
                day = record.anchors.get(dep[1:])
                out[dep[1:]] = day.isoformat() if day else "unknown (not given)"
                continue
            obs = record.facts.get(dep)
            if obs is None and dep in record.alternatives:  # weighed one by one
                shown = "; ".join(o.shown() for o in record.alternatives[dep])
                out[dep] = f"conflicting values: {shown}"
                continue
            if obs is None:
                out[dep] = f"unknown ({record.why_unknown.get(dep, 'not in the record')})"
                continue
            text = obs.shown()
            info = self.compiled.checked.facts.get(dep)
            if info is not None and isinstance(info.type, QuantT) and obs.unit is not None:
                if obs.unit.text != info.type.unit.text:
                    k = conversion_factor(obs.unit, info.type.unit, info.molar_mass)
                    bound = f"{obs.comparator} " if obs.comparator else ""  # censored
                    if k is not None:
                        text += f" = {bound}{float(obs.value * k):.4g} {info.type.unit.text}"
            out[dep] = text
        return out


def _with_arm(record: Record, arm: str) -> Record:
    from .data.records import Observation

    facts = dict(record.facts)
    facts["arm"] = Observation(arm)
    return replace(record, facts=facts)  # keeps conflicts and the deceased flag


# ---------------------------------------------------------------------- rendering

_VERDICT_WORDS = {
    ELIGIBLE: "ELIGIBLE",
    INELIGIBLE: "INELIGIBLE",
    UNDETERMINED: "UNDETERMINED",
}


def render_text(e: Evaluation, compiled: Compiled) -> str:
    h = compiled.checked.protocol.header
    proto = f"{h.identifier} version {h.version}" if h else compiled.checked.source.path
    lines = [f"{e.patient}: {_VERDICT_WORDS[e.verdict]}  (as of {e.as_of.isoformat()}, {proto})"]
    if e.per_arm:
        lines.append("  arm not known yet; by arm:")
        for arm, sub in e.per_arm.items():
            if sub.verdict == INELIGIBLE:
                why = "fails " + ", ".join(c.id for c in sub.criteria if c.deciding)
            elif sub.verdict == UNDETERMINED:
                why = "needs " + ", ".join(sub.missing)
            else:
                why = "all criteria pass"
            lines.append(f"    {arm}: {_VERDICT_WORDS[sub.verdict]} ({why})")
    deciding = [c for c in e.criteria if c.deciding]
    unknown = [c for c in e.criteria if c.status == "unknown"]
    if deciding:
        lines.append("")
        lines.append("Deciding criteria:")
        for c in deciding:
            lines += _criterion_lines(c)
    if e.verdict == ELIGIBLE:
        inc = sum(1 for c in e.criteria if c.section == "inclusion" and c.status == "met")
        na = sum(1 for c in e.criteria if c.status == "not applicable")
        exc = sum(1 for c in e.criteria if c.section == "exclusion")
        lines.append("")
        lines.append(
            f"All {inc} applicable inclusion criteria met; none of the {exc} exclusion "
            f"criteria met" + (f"; {na} not applicable" if na else "") + "."
        )
    if e.verdict == UNDETERMINED and e.missing:
        lines.append("")
        lines.append("Needs (any of these could change the verdict): " + ", ".join(e.missing))
    if unknown:
        lines.append("")
        lines.append("Unknown:")
        for c in unknown:
            lines.append(f"  {c.id} {c.section}: {_short(c.text)}")
            for m in c.missing:
                lines.append(f"      needs {m}")
    if e.problems:
        lines.append("")
        # a problem does not always leave its fact unknown (an older value may decide when
        # the one set aside hides nothing): say only what was set aside (breaker7 F7)
        lines.append("Record problems (values or resources that could not be used):")
        lines += [f"  {p}" for p in e.problems]
    return "\n".join(lines)


def render_details(e: Evaluation) -> str:
    """Every criterion, for reviewers (`--details`)."""
    lines = ["", "All criteria:"]
    for c in e.criteria:
        lines += _criterion_lines(c)
    return "\n".join(lines)


def _short(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _criterion_lines(c: CriterionResult) -> list[str]:
    word = {"met": "met", "not met": "NOT met", "unknown": "unknown"}.get(c.status, c.status)
    if c.section == "exclusion" and c.status == "met":
        word = "met (excludes)"
    out = [f"  {c.id} {c.section} {word}: {_short(c.text)}"]
    out.append(f"      rule: {' '.join(c.rule.split())}")
    if c.explanation:
        out += [f"      {line}" for line in c.explanation]
    else:  # the explainer could not follow this rule: the values read, as recorded
        out += [f"      {name} = {value}" for name, value in c.values.items()]
    return out
