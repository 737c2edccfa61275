"""Explanations, part 6: a criterion over conflicting values (two values of one fact at
the same instant; docs/patients.md, "Time"). The compiled evaluator weighs each
combination of candidates as a "world" and keeps the status they all agree on, else
unknown (backends/python.py, `_with_candidates`); the explanation walks each world the
same way and says so: every candidate with its clauses, and that they agree, or that they
disagree, naming which candidate gives which status.
"""

from __future__ import annotations

import itertools
from typing import Any

from .backends.runtime import NA
from .data.records import Observation, Record
from .explain_words import Clause
from .frozen_classes import replace

_WORD = {True: "met", False: "not met", None: "unknown", NA: "not applicable"}


def worlds(
    names: list[str], f: dict[str, Any], record: Record, deps: frozenset[str]
) -> list[tuple[list[tuple[str, Observation]], dict[str, Any], Record]] | None:
    """Each combination of the candidates of the conflicted facts `deps` reads: the
    candidates, the evaluator's input and the record in that world; None without any.

    `names` are the conflicted facts in the order `Compiled.normalise` put them under "#"
    (sorted, those the protocol reads), so the i-th option list is the i-th fact's."""
    extra = f.get("#")
    if extra is None or not extra[0]:
        return None
    options = list(zip(names, extra[0], strict=True))
    mine = [(name, opts) for name, opts in options if name in deps]
    if not mine:
        return None
    out = []
    choices = [list(zip(opts, record.alternatives[name], strict=True)) for name, opts in mine]
    for combo in itertools.product(*choices):
        g = dict(f)
        facts = dict(record.facts)
        picked = []
        for (name, _), (keys, obs) in zip(mine, combo, strict=True):
            g.update(keys)
            facts[name] = obs
            picked.append((name, obs))
        out.append((picked, g, replace(record, facts=facts)))
    return out


def weighed(
    picked: list[list[tuple[str, Observation]]], clauses: list[Clause], label: Any
) -> Clause:
    """One clause over the worlds: the status they agree on, else unknown."""
    first = clauses[0].value
    value = first if all(c.value is first for c in clauses) else None
    facts = list(dict.fromkeys(label(name) for combo in picked for name, _ in combo))
    what = " and ".join(facts)
    rows = []
    for combo, c in zip(picked, clauses, strict=True):
        given = " and ".join(f"{label(name)} {obs.shown()}" for name, obs in combo)
        rows.append(Clause(c.value, f"with {given}: {_WORD[c.value]}", [c], "world"))
    if value is not None or all(c.value is None for c in clauses):
        text = f"conflicting values of {what}, each weighed: all {len(clauses)} give {_WORD[value]}"
    else:
        split = "; ".join(
            " and ".join(obs.shown() for _, obs in combo) + f" gives {_WORD[c.value]}"
            for combo, c in zip(picked, clauses, strict=True)
        )
        text = f"conflicting values of {what} disagree ({split}), so this is unknown"
    return Clause(value, text, rows, "worlds")
