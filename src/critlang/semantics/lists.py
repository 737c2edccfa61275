"""How many item slots a list gets, and for which list lengths a proof holds.

A list fact is encoded as a fixed number of item slots (encode.py, `Encoder.slots`). A
proof over the slots ("no patient differs", "never met") covers every list length
when a longer list can always be shortened to the slots without changing any list
condition's answer (a small-model argument, per list):
- `any`, `all`, `no`: met, not met and unknown are each shown by at most one item
  (the item that is met, not met or unknown); the other half of each answer ("no item
  is met", "no item is unknown") survives dropping items. Keeping one item per
  condition keeps every answer: need 1.
- `at least N of`: met needs N met items, unknown N items met or unknown; "fewer than
  N met" and "fewer than N met or unknown" survive dropping items: need N.
- `majority of`: the answer is a ratio of the whole list (3 met of 5 is a majority,
  3 of 7 is not): no shorter list stands for a longer one, so a proof holds only for
  lists up to the slot count.
So when the list conditions encoded for a question need at most as many items as the
list has slots, and none is `majority of`, the proof holds for lists of any length; the
needs are counted as the conditions are encoded (Space.needs), per encoding (each arm,
each version, each clause variant of lint counts again). Otherwise the claim must say
"for lists of up to N items" (lint.py and diff.py print it in the headline).

The slot count is chosen before encoding from the protocols' list conditions
(`plan`): as many as the count-based argument needs (an over-estimate where a function
is called with several arguments is harmless; an under-estimate only makes the claim
bounded), and for a `majority of` list enough for a counterexample of a realistic length.
"""

from __future__ import annotations

from typing import Any

import z3

from .. import nodes as n
from ..checker import CheckResult

LIST_BOUND = 3  # the fewest slots a list gets
MAX_SLOTS = 12  # more slots than this make z3 slow; beyond it proofs are bounded
MAJORITY_SLOTS = 7  # slots for a list under `majority of` (at most): proofs are bounded


def need(q: n.Quantified) -> int:
    """Items needed to keep this condition's answer on a shorter list (see above)."""
    if q.quantifier in ("any", "all", "no"):
        return 1
    return q.count or 0  # `at least N of`; `majority of` is never exact (no bound)


def plan(checked: list[CheckResult], clause_copies: bool = False) -> dict[str, int]:
    """Slots per list for encoding these protocols in one Space.

    A list's conditions need, together, the sum of their needs; a criterion that depends
    on the arm is encoded once more per arm (verdict.Protocol), a definition's body once
    per encoding. `clause_copies`: lint also encodes a criterion without one clause next
    to the whole protocol (L131), adding at most that criterion's need once more. A list
    under `majority of` gets 2k+1 slots when its other conditions need k (the usual
    counterexample: a majority beside k items of another kind), at least 3, at most 7."""
    from ..backends.python import _dependencies

    total: dict[str, int] = {}
    other: dict[str, int] = {}  # the needs of conditions that are not `majority of`
    widest: dict[str, int] = {}  # the largest need of one criterion
    for c in checked:
        h = c.protocol.header
        arms = len(h.arms) if h is not None and h.arms else 0
        seen: set[int] = set()

        def add(q: n.Quantified, times: int, into: dict[str, int]) -> None:
            k = need(q) * times
            total[q.list_name] = total.get(q.list_name, 0) + k
            into[q.list_name] = into.get(q.list_name, 0) + need(q)
            if q.quantifier != "majority":
                other[q.list_name] = other.get(q.list_name, 0) + k

        for _, crit in c.protocol.criteria:
            times = 1 + (arms if arms and "arm" in _dependencies(c, crit) else 0)
            own: dict[str, int] = {}
            for node in crit.walk():
                if isinstance(node, n.Quantified):
                    seen.add(id(node))
                    add(node, times, own)
            for name, k in own.items():
                widest[name] = max(widest.get(name, 0), k)
        for node in c.protocol.walk():  # in definitions and functions
            if isinstance(node, n.Quantified) and id(node) not in seen:
                add(node, 1 + arms, {})
    majority = {
        node.list_name
        for c in checked
        for node in c.protocol.walk()
        if isinstance(node, n.Quantified) and node.quantifier == "majority"
    }
    out = {}
    for name, k in total.items():
        if name in majority:
            out[name] = max(LIST_BOUND, min(MAJORITY_SLOTS, 2 * other.get(name, 0) + 1))
        else:
            k += widest.get(name, 0) if clause_copies else 0
            out[name] = max(LIST_BOUND, min(MAX_SLOTS, k))
    return out


def inexact(slots: dict[str, int], needs: dict[str, int], majority: set[str]) -> dict[str, int]:
    """Lists whose proofs hold only up to their slot count: list -> slot count."""
    return {
        name: slots.get(name, LIST_BOUND)
        for name in sorted(set(needs) | majority)
        if name in majority or needs.get(name, 0) > slots.get(name, LIST_BOUND)
    }


def touched(formulas: list[Any], slot_vars: dict[int, str]) -> set[str]:
    """The lists whose item slots appear in these formulas (a walk of the z3 DAG,
    each shared node once)."""
    seen: set[int] = set()
    out: set[str] = set()
    stack = list(formulas)
    while stack:
        e = stack.pop()
        i = e.get_id()
        if i in seen:
            continue
        seen.add(i)
        if i in slot_vars:
            out.add(slot_vars[i])
        elif z3.is_app(e):
            stack.extend(e.children())
    return out
