"""Feasibility mode (`--absent-means-no conditions,medications`, docs/fhir.md) and the
open world of therapy lists read from FHIR.

- `absent_facts(checked, kinds, warnings) -> {fact: "no"}`: the facts whose absence from
  the data counts as "no" (False, or an empty list), a warning for each list that cannot
  be read as complete.
- `open_lists(checked, absent, facts, problems, path, unread)`: appends to each therapy
  list read from resources the item that stands for those the data do not record.
"""

from __future__ import annotations

from typing import Any

from ..checker import CheckResult
from ..typesys import BoolT, ListT
from .records import RecordProblem


def absent_facts(
    checked: CheckResult, kinds: frozenset[str], warnings: list[str]
) -> dict[str, Any]:
    """Facts whose absence counts as "no" in feasibility mode, with that "no".

    conditions: yes/no facts bound to codes (read from Condition and Procedure).
    medications: list facts with a `kind` field, only when every kind has codes
    (otherwise an empty list would deny therapies no code could have shown), and
    lists without `kind` bound to codes as a whole.
    """
    out: dict[str, Any] = {}
    if "conditions" in kinds:
        for fact in sorted(checked.bindings):
            info = checked.facts.get(fact)
            if info is not None and isinstance(info.type, BoolT):
                out[fact] = False
    if "medications" in kinds:
        bound: dict[str, set[str]] = {}
        for fact, member in checked.item_bindings:
            bound.setdefault(fact, set()).add(member)
        for fact in sorted(bound):
            t = checked.facts[fact].type
            kinds_t = dict(t.fields).get("kind") if isinstance(t, ListT) else None
            members = set(getattr(kinds_t, "members", ()))
            if members and members <= bound[fact]:
                out[fact] = []
            else:
                missing = ", ".join(sorted(members - bound[fact]))
                warnings.append(
                    f"{fact}: absence is not taken as 'no' (no codes for kinds {missing})"
                )
        # a list without `kind` bound as a whole (`codes sglt2: atc ...`): its codes
        # are all it can hold, so their absence is complete too
        for fact in sorted(checked.bindings):
            t = checked.facts[fact].type if fact in checked.facts else None
            if isinstance(t, ListT) and "kind" not in dict(t.fields):
                out[fact] = []
    return out


def open_lists(
    checked: CheckResult,
    absent: dict[str, Any],
    facts: dict[str, Any],
    problems: list[RecordProblem],
    path: str,
    unread: bool,
) -> None:
    """A list read from resources shows the therapies the data record, not that there
    are no others: one item with nothing known stands for those (open world), so a
    rule needing their absence (`no ... with`, `all ...`) stays unknown, while one
    found item can still decide `any ... with`. Under `--absent-means-no medications`
    (every kind bound to codes, no unread Medication) the list is read as complete."""
    for fact, value in facts.items():
        info = checked.facts.get(fact)
        if info is None or not isinstance(info.type, ListT) or not isinstance(value, list):
            continue
        if fact in absent and not unread:
            continue
        value.append({})
        problems.append(
            RecordProblem(
                path,
                fact,
                f"the data show {len(value) - 1} item(s); others they do not record may "
                "exist, so what needs their absence stays unknown "
                "(--absent-means-no medications reads the list as complete)",
            )
        )
