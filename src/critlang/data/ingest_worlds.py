"""A patient's conflicting candidate values as facts-table rows, one set per world.

The Python evaluator weighs conflicting candidates (data/reader.py `distinct`, two
values at one instant, say) by evaluating every combination of them, one candidate per
conflicting fact (a "world": backends/python.py `_with_candidates`), and keeps for each
criterion the status every world gives, else unknown. So that the SQL back end gives
the same statuses, `critlang ingest` writes each world's candidates: per world number
`w` (the `seq` column) and conflicting fact, the candidate's value row under the fact
name `fact#world` (and `fact#high*3/2#world`, `fact#nolimits#world` where the candidate
has them), as ingest writes a picked value. backends/sql/worlds.py evaluates the
criteria once per world and combines the statuses as `_with_candidates` does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from ..typesys import ListT
from .records import Observation, Record


def worlds(record: Record, types: dict[str, object]) -> Iterator[tuple[int, str, Observation]]:
    """(world number, fact, candidate) for every combination of the record's conflicting
    scalar facts' candidates, in the order Compiled.normalise weighs them (facts by
    name, candidates in the reader's order). The reader caps the combinations
    (reader.MAX_WORLDS); a list's alternatives (a duplicate JSON key) stay a conflict
    mark (every criterion reading the list unknown in SQL)."""
    names = sorted(
        name for name in record.alternatives if name in types and not isinstance(types[name], ListT)
    )
    choices = [record.alternatives[name] for name in names]
    for w, world in enumerate(itertools.product(*choices)):
        for name, obs in zip(names, world, strict=True):
            yield w, name, obs
