"""What generated evaluator code may touch: the names in EXPORTS, nothing else.

Compiled criteria run with `__builtins__` emptied and these names in scope. Values are
plain: floats in the fact's declared unit, ints for grades and dates (day numbers),
strings for categories, None for unknown. Per-patient code never sees pint.
"""

from __future__ import annotations

import datetime as dt
import math
from functools import lru_cache


class _NotApplicable:
    """Status of a conditional criterion whose condition is false (e.g. arm 1 for an arm-2 rule)."""

    _instance: _NotApplicable | None = None

    def __new__(cls) -> _NotApplicable:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NA"

    def __reduce__(self) -> str:
        return "NA"


NA = _NotApplicable()

# protocol verdicts, as the generated `evaluate` returns them
ELIGIBLE = "eligible"
INELIGIBLE = "ineligible"
UNDETERMINED = "undetermined"


@lru_cache(maxsize=8192)  # the same anchors recur across patients (enrollment, windows)
def add_months(day: int, months: int) -> int:
    """Day number shifted by calendar months, the day clamped (Mar 31 - 1 month = Feb 28/29)."""
    d = dt.date.fromordinal(day)
    total = d.year * 12 + (d.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    if not 1 <= year <= 9999:
        return day + round(months * 30.436875)  # out of the calendar's range: approximate
    last = _days_in_month(year, month)
    return dt.date(year, month, min(d.day, last)).toordinal()


def _days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (dt.date(year, month + 1, 1) - dt.date(year, month, 1)).days


def elapsed_years(start: int | None, end: int | None) -> float | None:
    """Completed calendar years from start to end (an age); None when either is unknown."""
    if start is None or end is None:
        return None
    a, b = dt.date.fromordinal(start), dt.date.fromordinal(end)
    years = b.year - a.year - ((b.month, b.day) < (a.month, a.day))
    return float(years)


def sig(x: float | None) -> float | None:
    """Round a formula's final value to 12 significant digits.

    A formula (e.g. Cockcroft-Gault) is rounded where it ends (nodes.arithmetic_roots), so
    that a value exactly on a threshold in exact arithmetic is on it in floating point too;
    the reference interpreter applies the same rule to its exact result.
    """
    if x is None or x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.12g}")


class Alt(tuple):
    """The possible values of a conditional whose condition is unknown (all known, distinct).

    `platelets < (100 x10^9/L if cycle = 1 else 75 x10^9/L)` with the cycle unknown: the
    threshold is Alt((100.0, 75.0)); a comparison over it is decided when every
    possibility gives the same answer (Kleene's strong logic lifted to values).
    """

    __slots__ = ()


# At most this many possibilities are followed; beyond it a value is unknown (None).
# The reference interpreter applies the same bound, so both evaluators agree.
MAX_CHOICES = 64


def choice(*values: object) -> object:
    """One value, or Alt of the distinct possibilities; None when any is unknown."""
    out: list[object] = []
    for v in values:
        if v is None:
            return None
        for x in v if isinstance(v, Alt) else (v,):
            if x not in out:
                out.append(x)
    if len(out) > MAX_CHOICES:
        return None
    return out[0] if len(out) == 1 else Alt(out)


def _options(v: object) -> tuple[object, ...]:
    return tuple(v) if isinstance(v, Alt) else (v,)


_OPS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: None if b == 0 else a / b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def alt_op(op: str, a: object, b: object, rounded: bool = False) -> object:
    """A binary operation (arithmetic or comparison) over possibly several values."""
    if a is None or b is None:
        return None
    f = _OPS[op]
    results = []
    for x in _options(a):
        for y in _options(b):
            r = f(x, y)
            results.append(sig(r) if rounded and r is not None else r)
    return choice(*results)


def alt_map(a: object, scale: float) -> object:
    """Each possibility times a constant (unit conversion, negation with -1)."""
    if a is None:
        return None
    return choice(*(x * scale for x in _options(a)))


def alt_call(fn: object, f: object, *args: object) -> object:
    """A formula called with some arguments that have several possible values (an unknown
    argument is passed on as unknown: the formula decides what that means)."""
    combos: list[tuple[object, ...]] = [()]
    for a in args:
        combos = [(*c, x) for c in combos for x in _options(a)]
        if len(combos) > MAX_CHOICES:
            return None
    return choice(*(fn(f, *c) for c in combos))  # type: ignore[operator]


def decided(v: object) -> object:
    """A condition's value: possibilities that disagree are unknown."""
    return None if isinstance(v, Alt) else v


EXPORTS: dict[str, object] = {
    "NA": NA,
    "ELIGIBLE": ELIGIBLE,
    "INELIGIBLE": INELIGIBLE,
    "UNDETERMINED": UNDETERMINED,
    "add_months": add_months,
    "elapsed_years": elapsed_years,
    "sig": sig,
    "len": len,
    "choice": choice,
    "alt_op": alt_op,
    "alt_map": alt_map,
    "alt_call": alt_call,
    "decided": decided,
}
