"""Which edge a `before` form with a calendar step needs (backends/runtime_calendar.py).

A month or year step is added to the earlier date of the pair (CQL date arithmetic), so
a form before its anchor A tests add_months(S, D) against A: `within`, `more than`,
`S at least D before A` negated (`<`, `>=`) and a period's window start test
add_months(S, D) >= A (edge `lo`); `less than`, `at least` (`<=`, `>`) test
add_months(S, D) <= A (edge `hi`). Shared by every back end so that they agree.
"""

from __future__ import annotations

from . import nodes as n


def edge_side(e: n.Expr) -> str:
    """`lo` or `hi` for a Window or a DateBound (the module docstring)."""
    if isinstance(e, n.Window):
        return "hi" if e.kind == "less" else "lo"
    if isinstance(e, n.DateBound):
        return "hi" if e.op in ("<=", ">") else "lo"
    return "lo"
