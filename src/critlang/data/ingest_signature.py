"""What a cohort file's facts table depends on: the protocol's signature (each fact's
declared type, unit, molar mass, code bindings and reading rules; the anchors), stored
in `critlang_meta` by ingest and compared by `critlang screen COHORT.duckdb`
(backends/sql/run.check_cohort). Split from ingest.py (module size)."""

from __future__ import annotations

import json
from typing import Any

from ..backends.python import Compiled
from ..checker import ENROLLMENT


def protocol_signature(compiled: Compiled) -> dict[str, str]:
    """What the facts table depends on: each fact's declared type (with unit), molar mass
    and code bindings. A protocol whose signature differs needs its own ingest."""
    c = compiled.checked
    facts: dict[str, Any] = {}
    for name, t in sorted(c.record_types.items()):
        info = c.facts.get(name)
        facts[name] = {
            "type": repr(t),
            "molar_mass": str(info.molar_mass) if info and info.molar_mass else None,
            "codes": sorted(f"{code.system}:{code.value}" for code in c.bindings.get(name, [])),
            # what the reader applies while reading (the look-back window, reference
            # ranges, `convert` equations, `history`, plausible ranges): all but the
            # label and the sources' wording
            "reading": _reading_options(info.node) if info else [],
            "items": sorted(
                f"{member}={code.system}:{code.value}"
                for (fact, member), codes in c.item_bindings.items()
                if fact == name
                for code in codes
            ),
        }
    return {
        "protocol": str(c.source.path),
        "facts": json.dumps(facts, sort_keys=True),
        "anchors": json.dumps(sorted(a for a in c.anchors if a != ENROLLMENT)),
    }


def _reading_options(node: Any) -> list[str]:
    out = []
    for o in node.options:
        if o.kind in ("label", "source"):
            continue
        text = None if o.kind in ("molar_mass", "convert") else o.text  # a source's words
        parts = [o.kind, text, o.anchor, *o.units, *o.coefficients]
        for q in (o.quantity, o.high):
            if q is not None:
                parts += [str(q.value), q.unit]
        out.append("|".join("" if p is None else str(p) for p in parts))
    return sorted(out)


def signature_mismatch(compiled: Compiled, stored: dict[str, str]) -> list[str]:
    """Facts whose declaration differs from the one the table was ingested for, and
    anchors declared by one protocol only ("anchor surgery"): a record's anchor dates
    are read at ingest only for the anchors then declared, so a new one would be
    unknown for every patient, without a word (sqltest7 finding 3)."""
    signature = protocol_signature(compiled)
    mine = json.loads(signature["facts"])
    theirs = json.loads(stored.get("facts", "{}"))
    wrong = sorted(name for name, sig in mine.items() if theirs.get(name) != sig)
    anchors = set(json.loads(signature["anchors"]))
    read = set(json.loads(stored.get("anchors", "[]")))
    return wrong + [f"anchor {a}" for a in sorted(anchors ^ read)]


# ---------------------------------------------------------------------- sources
