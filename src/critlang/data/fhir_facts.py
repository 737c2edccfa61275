"""Two shapes of a patient's facts read from FHIR (fhir.Extractor): what a resource
naming a member twice leaves unknown, and entries in an order file order cannot decide.

    hidden_facts(r, index, facts, st) -> None
    canonical(entries: list) -> None   (sorted in place)
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..typesys import BoolT, ListT
from .fhir_decode import Resource, unusable
from .fhir_observation import trusted_time
from .fhir_status import Target, hidden_targets
from .records import RecordProblem


def hidden_facts(
    r: Resource, index: dict[tuple[str, str], list[Target]], facts: dict[str, Any], st: Any
) -> None:
    """A resource naming a member twice whose copies name bound codes (`r.hidden_`,
    fhir_duplicates.examine; RFC 8259 section 4, R4 json.html): which copy holds is file
    order, so it may be of any of those facts, of any type, with any value. For each fact
    it names, an unusable resource that may be the newest (docs/fhir.md): a per-fact
    diagnostic and a dated marker (undated when its date is given twice), an unknown
    state for a yes/no fact, an item of no known kind or dates for a list. `facts`: the
    protocol's fact declarations; `st`: fhir._State."""
    label = f"{r.resourceType}/{r.id}" if r.id else f"{r.resourceType} (no id)"
    why = f"{label} {unusable(r.malformed or '')}"
    for fact in sorted({f for f, _ in hidden_targets(r, index)}):
        st.problems.append(RecordProblem(st.path, fact, why))
        info = facts.get(fact)
        if info is None:
            continue
        if isinstance(info.type, ListT):
            names = {name for name, _ in info.type.fields}
            st.facts.setdefault(fact, []).append({"kind": None} if "kind" in names else {})
        elif isinstance(info.type, BoolT):
            st.conditions.setdefault(fact, []).append(("unknown", label))
        else:
            try:
                when = trusted_time(r)
            except (msgspec.ValidationError, msgspec.DecodeError):
                when = None
            st.unread.setdefault(fact, []).append({"source": label, "date": when})


def canonical(entries: list[Any]) -> None:
    """Entries of one fact in an order that does not depend on file order: by date and
    source (resource type and id), and by their whole content where those tie."""
    try:
        keys = [(str(e.get("date") or e.get("start") or ""), str(e.get("source"))) for e in entries]
    except AttributeError:
        keys = []
    if keys and len(set(keys)) == len(keys):
        entries[:] = [e for _, e in sorted(zip(keys, entries, strict=True), key=lambda ke: ke[0])]
    else:
        entries.sort(key=_entry_key)


def _entry_key(entry: Any) -> tuple[str, str]:
    if isinstance(entry, dict):
        when = entry.get("date") or entry.get("start") or ""
        return (str(when), repr(sorted(entry.items(), key=lambda kv: kv[0])))
    return ("", repr(entry))
