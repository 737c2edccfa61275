"""The z3 semantics of protocols: three-valued encoding, verdicts, witness patients.

encode.py turns rules into three-valued formulas over a shared Space; verdict.py builds
criterion statuses and the verdict as the compiled evaluator decides them; witness.py
solves goals within plausible ranges (plausible.py) and writes models as records. diff.py
and lint.py ask their questions through these.
"""

from .encode import LIST_BOUND, TV, Encoder, Space, Unsupported, Val
from .lists import plan as plan_lists
from .verdict import Protocol, Status, Verdict
from .witness import Solver, Witness, evaluate_record

__all__ = [
    "LIST_BOUND",
    "TV",
    "Encoder",
    "Protocol",
    "Solver",
    "Space",
    "Status",
    "Unsupported",
    "Val",
    "Verdict",
    "Witness",
    "evaluate_record",
    "plan_lists",
]
