"""Resources in one file that name a patient read from another file.

A Bundle is read on its own (R4 bundle.html: references resolve inside the Bundle), so a
Condition in `conditions_search.json` naming `Patient/sp1` is not sp1's when sp1's Patient
is in `patient_sp1.json`: it is counted as unassigned ("a patient that is not in the
data"). Yet it may well be sp1's (per-type search exports are a common layout), and left
out it can make a wrong verdict: an active cirrhosis that would exclude sp1, a newer lab.
After every file is read, each patient named so by a resource with a bound code in
another file gets every criterion that reads a fact of that code set to unknown (never a
verdict the unread resource could change), the verdict recomputed from the statuses, the
attrition counts moved with it, and a diagnostic naming the resources.
"""

from __future__ import annotations

from .backends.python import Compiled, deceased_verdict, verdict_of
from .data.fhir import Extractor
from .data.fhir_decode import Coding, Concept
from .data.fhir_refs import same_server
from .data.fhir_status import concept_targets
from .evaluate import STATUS_WORDS
from .screen import PatientRow, Screening, clearing, count_row
from .typesys import ListT

DECIDED = ("met", "not met")
_STATUS_VALUES = {word: value for value, word in STATUS_WORDS.items()}


def flag_elsewhere(result: Screening, compiled: Compiled, extractor: Extractor) -> None:
    """Applies the rule above to `result` in place (rows, verdict counts, attrition).

    A resource names a row's patient when the ids are equal and the servers may be one
    (`fhir_refs.same_server`: an absolute `http://b/fhir/Patient/1`, or `Patient/1` from
    an entry whose fullUrl is on server b, is not `http://a/fhir/Patient/1`), and it was
    read from another file, or from another Bundle of the same file (a Bundle nested in
    an entry is read on its own)."""
    tally = result.tally
    if tally is None or not tally.elsewhere:
        return
    named: dict[str, list[tuple[str | None, str, str, str, tuple[tuple[str, str], ...]]]] = {}
    for pid, base, path, inside, label, pairs in tally.elsewhere:
        named.setdefault(pid, []).append((base, path, inside, label, pairs))
    lists = sorted(f for f, no in extractor.absent_facts.items() if isinstance(no, list))
    therapies = lists or sorted(
        f for f, info in compiled.checked.facts.items() if isinstance(info.type, ListT)
    )
    clears = clearing(compiled)
    for row in result.patients:
        found = sorted(
            {
                x
                for x in named.get(row.id, ())
                if same_server(x[0], row.base) and (x[1], x[2]) != (row.path, row.bundle)
            },
            key=lambda x: (x[1], x[2], x[3], x[4], x[0] or ""),
        )
        if not found:
            continue
        facts: dict[str, list[tuple[bool, str]]] = {}
        for _, path, inside, label, pairs in found:
            for system, code in pairs:
                if code == "*":  # a Medication not read: a therapy of any kind
                    hits = therapies
                else:
                    concept = Concept([Coding(system or None, code)])
                    hits = [
                        f for f, _ in concept_targets(concept, extractor.index, extractor.codes)[0]
                    ]
                for fact in hits:
                    here = path == row.path
                    shown = f"{'this file,' if here else path}{inside}: {label}"
                    facts.setdefault(fact, []).append((here, shown))
        if facts:
            _unknown(row, facts, result, compiled, clears)


def _unknown(
    row: PatientRow,
    facts: dict[str, list[tuple[bool, str]]],
    result: Screening,
    compiled: Compiled,
    clears: list[set[str]],
) -> None:
    statuses = list(row.statuses)
    for i, crit in enumerate(compiled.criteria):
        if statuses[i] in DECIDED and facts.keys() & set(crit.facts):
            statuses[i] = "unknown"
    new = tuple(statuses)
    for fact in sorted(facts):
        for here in (False, True):
            shown = sorted({s for h, s in facts[fact] if h == here})
            if not shown:
                continue
            where = "another Bundle of this file" if here else "other files"
            row.problems.append(
                f"{fact}: {len(shown)} resource(s) in {where} name this patient and were not "
                "read (a Bundle or JSON file is read on its own, R4 bundle.html#references), "
                f"so {fact} is unknown: " + "; ".join(shown[:3])
            )
    if new == row.statuses:
        return
    maybe = row.maybe_deceased
    count_row(result.attrition, clears, row.statuses, not row.deceased, -1, maybe=maybe)
    count_row(result.attrition, clears, new, not row.deceased, maybe=maybe)
    row.statuses = new
    if row.deceased:
        return
    # the one verdict rule of the generated code (backends/python.py), from the words back
    values = tuple(_STATUS_VALUES[s] for s in new)
    verdict = verdict_of(tuple(c.section for c in compiled.criteria), values)
    # perhaps deceased: not eligible yet (as the interpreter decides)
    verdict = deceased_verdict(verdict, None if maybe else False)
    if verdict == "undetermined" and row.verdict != "undetermined":
        row.missing = sorted(set(row.missing) | facts.keys())
    row.verdict = verdict
