"""Screen a cohort: every patient through the compiled evaluator, and the attrition table.

The attrition table follows the inclusion-rule report of cohort tools: for each
criterion in protocol order, how many patients met it, failed it, were unknown or not
applicable, and how many remained after applying the criteria up to it: "passed" counts
patients who cleared every criterion so far, "not ruled out" also keeps those whose
status is still unknown.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .backends.python import Compiled
from .data.reader import deceased_state
from .data.records import MAYBE_DECEASED, RecordProblem, preliminary_notes, read_record
from .evaluate import Evaluator, run_compiled, status_word
from .needs import Needs

if TYPE_CHECKING:  # names for annotations: `screen` on a cohort file reads no FHIR
    from .data.fhir import Extractor, FhirPatient, Tally
    from .data.fhir_input import PatientResources


@dataclass
class PatientRow:
    id: str
    path: str
    verdict: str
    statuses: tuple[str, ...]
    missing: list[str]
    problems: list[str]
    # per criterion id, what `critlang eval --format json` says of it (screen --patients .jsonl)
    explanations: dict[str, dict[str, Any]] | None = None
    deceased: bool = False  # ruled out before any criterion (the "(deceased)" row)
    maybe_deceased: bool = False  # may have died: not past the "(deceased)" row, not out
    # FHIR: the patient's server base (None when not known) and nested Bundle ("" for the
    # file's own), for matching references across files and Bundles (screen_elsewhere.py)
    base: str | None = None
    bundle: str = ""

    def to_dict(self, ids: list[str]) -> dict[str, Any]:
        out = {
            "patient": self.id,
            "path": self.path,
            "verdict": self.verdict,
            "criteria": dict(zip(ids, self.statuses, strict=True)),
            "missing": self.missing,
            "problems": self.problems,
        }
        if self.explanations is not None:
            out["explanations"] = self.explanations
        return out


@dataclass
class AttritionRow:
    id: str
    section: str
    met: int = 0
    not_met: int = 0
    unknown: int = 0
    not_applicable: int = 0
    passed: int = 0  # cleared every criterion up to and including this one
    not_ruled_out: int = 0  # cleared or still unknown


@dataclass
class Screening:
    as_of: dt.date
    criteria: list[str]
    patients: list[PatientRow] = field(default_factory=list)
    attrition: list[AttritionRow] = field(default_factory=list)
    coverage: dict[str, int] = field(default_factory=dict)  # fact -> patients with a value
    tally: Tally | None = None
    absent_means_no: dict[str, list[str]] = field(default_factory=dict)  # kind -> facts
    deceased: int = 0
    # may have died by the screening date (a partial or conflicting date of death): not
    # eligible yet, and not past the "(deceased)" row, as with an unknown criterion
    maybe_deceased: int = 0
    shared_ids: int = 0  # patients whose id another file's patient also has

    def verdicts(self) -> dict[str, int]:
        out = {"eligible": 0, "ineligible": 0, "undetermined": 0}
        for p in self.patients:
            out[p.verdict] += 1
        return out

    def missing_counts(self) -> list[tuple[str, int]]:
        counts: dict[str, int] = {}
        for p in self.patients:
            for m in p.missing:
                counts[m] = counts.get(m, 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def deceased(native: dict[str, Any], as_of: dt.date) -> str | None:
    """Why the record says the patient had died by `as_of` (Patient.deceased[x]):
    "perhaps: ..." when it may have (a partial date, values that disagree), else None.
    The record reader's reading (data/reader.deceased_state), for ingest's patient table."""
    raw = native.get("deceased")
    state, why = deceased_state(raw, as_of)
    if state is True:
        if raw is True:
            return "deceased (Patient.deceasedBoolean)"
        return f"deceased on {str(raw)[:10]} (Patient.deceasedDateTime)"
    if state is None:
        return f"{MAYBE_DECEASED}{why}"
    return None


def screen(
    compiled: Compiled,
    patients: Iterable[FhirPatient],
    as_of: dt.date,
    progress: Callable[[int], None] | None = None,
    tally: Tally | None = None,
    extractor: Extractor | None = None,
    explain: bool = False,
    flag_shared: bool = True,
) -> Screening:
    """Every patient through the compiled evaluator. A deceased patient is ineligible
    whatever the criteria say, and its problems say so. `explain`: each patient row also
    carries every criterion's explanation, as `critlang eval` gives it (values used, derived
    values, deciding clauses, what is missing)."""
    checked = compiled.checked
    crits = compiled.criteria
    result = Screening(as_of, [c.id for c in crits], tally=tally)
    if extractor is not None:
        for fact, no in extractor.absent_facts.items():
            kind = "medications" if isinstance(no, list) else "conditions"
            result.absent_means_no.setdefault(kind, []).append(fact)
    rows = [AttritionRow(c.id, c.section) for c in crits]
    # the statuses that clear each criterion (an inclusion met, an exclusion not met)
    clears = clearing(compiled)
    needs = Needs(compiled)
    explainer = Evaluator(compiled) if explain else None
    result.coverage = {name: 0 for name in checked.facts}
    for i, data in enumerate(patients, 1):
        record = read_record(checked, data.record, as_of, data.path)
        record.problems = [*data.problems, *record.problems]
        for problem in data.problems:
            # a fact the data gave only in resources set aside (not taken, not done,
            # begun after the screening date) is in the record: say why it is unknown
            if record.why_unknown.get(problem.fact) == "not in the record":
                record.why_unknown[problem.fact] = problem.message
        f = compiled.normalise(record)
        verdict, raw = run_compiled(compiled, f)
        dead = deceased(data.record, as_of) if record.deceased is True else None
        if dead is not None:
            result.deceased += 1
            verdict = "ineligible"
            # said once, in screen's words (the reader's own line says the same)
            record.problems = [p for p in record.problems if p.fact != "deceased"]
            dead_problem = RecordProblem(data.path, "patient", f"{dead}: never eligible")
            record.problems.insert(0, dead_problem)
        maybe_dead = dead is None and record.deceased is None
        result.maybe_deceased += maybe_dead
        statuses = tuple(status_word(s) for s in raw)
        for name in result.coverage:
            result.coverage[name] += record.facts.get(name) is not None
        missing: set[str] = set()
        if verdict == "undetermined":
            # what could change it, decided by the compiled evaluator (needs.py)
            missing = {str(slot) for slot in needs.find(f)}
            if not missing:
                for crit, s in zip(crits, raw, strict=True):
                    if s is None:
                        missing.update(d for d in crit.facts if _unknown(record, d))
        result.patients.append(
            PatientRow(
                record.id,
                data.path,
                verdict,
                statuses,
                sorted(missing) if verdict == "undetermined" else [],
                [f"{p.fact}: {p.message}" for p in record.problems] + preliminary_notes(record),
                _explanations(explainer, record) if explainer is not None else None,
            )
        )
        result.patients[-1].deceased = dead is not None
        result.patients[-1].maybe_deceased = maybe_dead
        result.patients[-1].base = getattr(data, "base", None)
        result.patients[-1].bundle = getattr(data, "bundle", "")
        count_row(rows, clears, statuses, dead is None, maybe=maybe_dead)
        if progress is not None:
            progress(i)
    result.attrition = rows
    if flag_shared:  # (screen_jobs.py does it once the parts are merged)
        flag_shared_ids(result)
    return result


def _explanations(evaluator: Evaluator, record: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for c in evaluator.evaluate(record).criteria:
        d = c.to_dict()
        out[c.id] = {
            k: d[k] for k in ("decided_by", "explanation", "values", "missing") if d.get(k)
        }
    return out


def clearing(compiled: Compiled) -> list[set[str]]:
    """Per criterion, the statuses that clear it (an inclusion met, an exclusion not met)."""
    return [
        {"not applicable", "met" if c.section == "inclusion" else "not met"}
        for c in compiled.criteria
    ]


def count_row(
    rows: list[AttritionRow],
    clears: list[set[str]],
    statuses: tuple[str, ...],
    alive: bool,
    sign: int = 1,
    *,
    maybe: bool = False,
) -> None:
    """Adds one patient's statuses to the attrition rows (sign -1 takes them back).

    `maybe`: the patient may have died by the screening date: not past the "(deceased)"
    row (so never "passed so far", which ends at the eligible count), but not ruled out
    either, like an unknown status."""
    ruled_in = alive
    passed = alive and not maybe
    for row, clear, status in zip(rows, clears, statuses, strict=True):
        if status == "met":
            row.met += sign
        elif status == "not met":
            row.not_met += sign
        elif status == "unknown":
            row.unknown += sign
        else:
            row.not_applicable += sign
        cleared = status in clear
        passed = passed and cleared
        ruled_in = ruled_in and (cleared or status == "unknown")
        row.passed += sign * passed
        row.not_ruled_out += sign * ruled_in


def flag_shared_ids(result: Screening) -> None:
    """Patients of different files with one id are screened apart, never merged (their
    data may disagree), and each says so: FHIR ids are unique on one server (R4 Resource.id),
    so either the files come from several sources or one person was split."""
    paths: dict[str, set[str]] = {}
    for p in result.patients:
        paths.setdefault(p.id, set()).add(p.path)
    for p in result.patients:
        others = sorted(paths[p.id] - {p.path})
        if others:
            result.shared_ids += 1
            p.problems.append(
                f"patient: the id {p.id!r} also names a patient in {', '.join(others)}; "
                "screened as separate patients (check whether they are one person)"
            )


def _unknown(record: Any, dep: str) -> bool:
    if dep.startswith("@"):
        return record.anchors.get(dep[1:]) is None
    return record.facts.get(dep) is None


# ---------------------------------------------------------------------- output


def patients_csv(s: Screening) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["patient", "path", "verdict", *s.criteria, "missing", "problems"])
    for p in s.patients:
        missing = ";".join(p.missing)
        w.writerow([_safe(p.id), _safe(p.path), p.verdict, *p.statuses, missing, len(p.problems)])
    return buf.getvalue()


def _safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP "CSV injection"): text from
    the data that starts with = + - @ or a tab/return is written after a quote mark."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def patients_jsonl(s: Screening) -> str:
    return "".join(json.dumps(p.to_dict(s.criteria), ensure_ascii=False) + "\n" for p in s.patients)


ATTRITION_COLUMNS = (
    "criterion",
    "section",
    "met",
    "not met",
    "unknown",
    "not applicable",
    "passed so far",
    "not ruled out",
)


def attrition_csv(s: Screening) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(ATTRITION_COLUMNS)
    for label, passed, left in _lead_rows(s):
        w.writerow([label, "", "", "", "", "", passed, left])
    for r in s.attrition:
        w.writerow(
            [
                r.id,
                r.section,
                r.met,
                r.not_met,
                r.unknown,
                r.not_applicable,
                r.passed,
                r.not_ruled_out,
            ]
        )
    return buf.getvalue()


def reading_lines(t: Tally) -> list[str]:
    """What was read, in numbers that add up (files, resources, patients)."""
    unusable = len(t.unusable_files)
    unassigned = sum(t.unassigned.values())
    not_used = sum(t.not_used.values())
    lines = [
        f"read {t.files} files ({t.files - unusable} usable, {unusable} unusable), "
        f"{t.resources} FHIR resources ({t.assigned} assigned to patients, "
        # Medication resources are about no patient: read for the therapies naming them
        + (f"{t.medications} Medication resources, " if t.medications else "")
        + f"{unassigned} unassigned"
        # versions, deleted resources, copies, conflicts (fhir_bundles.py)
        + (f", {not_used} not used" if not_used else "")
        + f"), {t.patients} patients"
        + (f" ({t.native_records} native records)" if t.native_records else "")
    ]
    if t.not_resources:
        lines.append(f"  {t.not_resources} entries or lines are not FHIR resources")
    if t.nested_bundles:
        lines.append(f"  {t.nested_bundles} Bundles inside Bundles, read as Bundles of their own")
    from .data.fhir_input import LONE  # the FHIR reader: imported where it is read

    lone = sum(why.endswith(LONE) for _, why in t.unusable_files)
    if lone:
        lines.append(
            f"  unusable: {lone} JSON files of single resources and no Patient: each is read "
            'on its own; give them as NDJSON lines (docs/fhir.md, "One resource a file")'
        )
    for reason, count in sorted(t.unassigned.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  unassigned: {count} because {reason}")
    for reason, count in sorted(t.not_used.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  not used: {count} because {reason}")
    return lines


def reading_details(t: Tally) -> list[str]:
    """For standard error: every unusable file and entry, examples of unassigned ones."""
    out = [f"{path}: unusable: {why}" for path, why in t.unusable_files]
    out += t.entry_problems
    for reason in sorted(t.examples):
        out.append(f"unassigned ({reason}): " + "; ".join(t.examples[reason]))
    for reason in sorted(t.not_used_examples):
        out.append(f"not used ({reason}): " + "; ".join(t.not_used_examples[reason]))
    return out


def _lead_rows(s: Screening) -> list[tuple[str, int, int]]:
    """The rows before the criteria, (label, passed so far, not ruled out): every patient
    read, then, when some are or may be deceased, those left (a deceased patient is ruled
    out before any criterion: each criterion's row then shows only what it ruled out; one
    who may have died has not passed this row but is not ruled out, like an unknown
    status)."""
    n = len(s.patients)
    rows = [("(start)", n, n)]
    if s.deceased or s.maybe_deceased:
        rows.append(("(deceased)", n - s.deceased - s.maybe_deceased, n - s.deceased))
    return rows


def attrition_text(s: Screening) -> str:
    n = len(s.patients)
    lines = reading_lines(s.tally) if s.tally is not None else []
    lines.append(f"{n} patients screened as of {s.as_of.isoformat()}")
    for kind, facts in sorted(s.absent_means_no.items()):
        lines.append(f"absent {kind} count as no (--absent-means-no {kind}): {', '.join(facts)}")
    if s.deceased:
        lines.append(f"{s.deceased} deceased patients are ineligible whatever the criteria")
    if s.maybe_deceased:
        lines.append(
            f"{s.maybe_deceased} patients may have died by then (a partial or conflicting "
            "date of death): not eligible, not past the (deceased) row"
        )
    if s.shared_ids:
        lines.append(
            f"{s.shared_ids} patients share their id with a patient of another file: "
            "screened separately (see their problems)"
        )
    head = "  ".join(f"{c:>14}" for c in ATTRITION_COLUMNS[2:])
    lines.append(f"{'criterion':<10}{'section':<11}{head}")
    for label, passed, left in _lead_rows(s):
        lines.append(
            f"{label:<10}{'':<11}"
            + "  ".join(f"{'':>14}" for _ in range(4))
            + f"  {passed:>14}  {left:>14}"
        )
    for r in s.attrition:
        cells = [r.met, r.not_met, r.unknown, r.not_applicable, r.passed, r.not_ruled_out]
        lines.append(f"{r.id:<10}{r.section:<11}" + "  ".join(f"{c:>14}" for c in cells))
    v = s.verdicts()
    lines.append("")
    lines.append(
        f"eligible {v['eligible']}, ineligible {v['ineligible']}, undetermined {v['undetermined']}"
    )
    top = s.missing_counts()[:8]
    if top:
        lines.append("most often missing: " + ", ".join(f"{name} ({count})" for name, count in top))
    return "\n".join(lines)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------- impact


@dataclass
class Impact:
    as_of: dt.date
    patients: int = 0
    # (old verdict, new verdict) -> patient ids, only where the verdict changed
    moves: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # criterion id -> ids of patients whose status on it changed (with a changed verdict)
    because: dict[str, list[str]] = field(default_factory=dict)
    unchanged: int = 0
    texts: dict[str, str] = field(default_factory=dict)  # criterion id -> protocol text (new)

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "patients": self.patients,
            "unchanged": self.unchanged,
            "changes": [
                {"from": a, "to": b, "count": len(ids), "patients": ids}
                for (a, b), ids in sorted(self.moves.items())
            ],
            "criteria": {cid: ids for cid, ids in sorted(self.because.items())},
            "texts": {cid: self.texts[cid] for cid in sorted(self.because) if cid in self.texts},
        }


def impact(
    old: Compiled,
    new: Compiled,
    patients: Iterable[PatientResources],
    old_extractor: Extractor,
    new_extractor: Extractor,
    as_of: dt.date,
) -> Impact:
    """Screen one cohort with two versions and say who changes verdict, and why."""
    result = Impact(as_of)
    result.texts = {c.id: c.node.text for c in (*old.criteria, *new.criteria)}
    for data in patients:
        outcomes = []
        for compiled, extractor in ((old, old_extractor), (new, new_extractor)):
            native = extractor.patient(data, as_of).record
            record = read_record(compiled.checked, native, as_of, data.path)
            verdict, raw = run_compiled(compiled, compiled.normalise(record))
            # as `screen` decides it: deceased, ineligible; perhaps deceased (a partial
            # date of death), not eligible yet but not ineligible for it (run_compiled)
            if record.deceased is True:
                verdict = "ineligible"
            statuses = {c.id: status_word(s) for c, s in zip(compiled.criteria, raw, strict=True)}
            outcomes.append((verdict, statuses, record.id))
        (v_old, s_old, pid), (v_new, s_new, _) = outcomes
        result.patients += 1
        if v_old == v_new:
            result.unchanged += 1
            continue
        result.moves.setdefault((v_old, v_new), []).append(pid)
        for cid in sorted(set(s_old) | set(s_new)):
            if s_old.get(cid) != s_new.get(cid):
                result.because.setdefault(cid, []).append(pid)
    return result


def impact_text(r: Impact, old_path: str, new_path: str) -> str:
    lines = [
        f"impact of {old_path} -> {new_path}",
        f"{r.patients} patients as of {r.as_of.isoformat()}: "
        f"{r.patients - r.unchanged} change verdict, {r.unchanged} do not",
    ]
    for (a, b), ids in sorted(r.moves.items()):
        shown = ", ".join(ids[:10]) + (", ..." if len(ids) > 10 else "")
        lines.append(f"  {a} -> {b}: {len(ids)} ({shown})")
    if r.because:
        lines.append("criteria whose status changed for them:")
        for cid, ids in sorted(r.because.items()):
            text = r.texts.get(cid, "")
            text = text if len(text) <= 80 else text[:77] + "..."
            share = f" ({100 * len(ids) / r.patients:.1f} % of the cohort)" if r.patients else ""
            lines.append(f"  {cid}: {len(ids)}{share}" + (f"  {text}" if text else ""))
    return "\n".join(lines)
