"""What generated evaluator code may touch: the names in EXPORTS, nothing else.

Compiled criteria run with `__builtins__` emptied and these names in scope. Values are
plain: floats in the fact's declared unit, ints for grades and dates (day numbers),
strings for categories, None for unknown. Per-patient code never sees pint.

A value known only to lie in an interval is a `Range` (see its docstring): a censored
lab value ("< 1.5", FHIR Quantity.comparator), a date known to the year or month, an
age computed from such a date, an ongoing therapy's end. Plain values stay plain, so
the common case pays nothing; generated code routes a Range to the functions below.
"""

from __future__ import annotations

import datetime as dt
import math
from functools import lru_cache
from typing import Any


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


def add_months(day: Any, months: int) -> Any:
    """Day number shifted by calendar months (a Range: both bounds; monotonic)."""
    if day.__class__ is Range:
        return _r_add_months(day, months)
    return _add_months(day, months)


@lru_cache(maxsize=8192)  # the same anchors recur across patients (enrollment, windows)
def _add_months(day: int, months: int) -> int:
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


def elapsed_years(start: Any, end: Any) -> Any:
    """Completed calendar years from start to end (an age); None when either is unknown.

    A Range (a birth date known to the year or month) gives the Range of possible ages:
    the completed years are monotonic in both days, so the bounds come from the bounds.
    """
    if start is None or end is None:
        return None
    if start.__class__ is Range or end.__class__ is Range:
        s, e = _span(start), _span(end)
        if not (s.bounded() and e.bounded()):
            return None
        low = _years(int(s.hi), int(e.lo))
        high = _years(int(s.lo), int(e.hi))
        return low if low == high else Range(low, high)
    return _years(start, end)


def _years(start: int, end: int) -> float:
    a, b = dt.date.fromordinal(start), dt.date.fromordinal(end)
    years = b.year - a.year - ((b.month, b.day) < (a.month, a.day))
    return float(years)


def sig(x: Any) -> Any:
    """Round a formula's final value to 12 significant digits.

    A formula (e.g. Cockcroft-Gault) is rounded where it ends (nodes.arithmetic_roots), so
    that a value exactly on a threshold in exact arithmetic is on it in floating point too;
    the reference interpreter applies the same rule to its exact result.
    """
    if x.__class__ is Range:  # both bounds; a rounded bound may be reached: closed
        lo, hi = sig(x.lo), sig(x.hi)  # type: ignore[union-attr]
        return Range(lo, hi)  # type: ignore[arg-type]
    if x is None or x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.12g}")


_INF = math.inf


class Range:
    """A value known only to lie between lo and hi (floats; -inf / inf: unbounded).

    lo_open / hi_open: the bound itself is excluded ("< 1.5" is (-inf, 1.5), open at 1.5).
    ongoing: an exposure that has not ended (docs/patients.md, "Ongoing therapies").

    Comparisons are three-valued: True when every value in the range satisfies them,
    False when none does, None otherwise. Arithmetic (docs/patients.md, "Values known
    as an interval"): with an exact number, by monotonicity (the bounds move, openness
    kept); with another Range only when both are bounded (closed result, conservative);
    anything else, or a divisor that may be zero, is unknown (None).
    """

    __slots__ = ("hi", "hi_open", "lo", "lo_open", "ongoing")

    def __init__(
        self,
        lo: float,
        hi: float,
        lo_open: bool = False,
        hi_open: bool = False,
        ongoing: bool = False,
    ) -> None:
        self.lo, self.hi, self.lo_open, self.hi_open = lo, hi, lo_open, hi_open
        self.ongoing = ongoing

    def __repr__(self) -> str:
        left = "(" if self.lo_open else "["
        right = ")" if self.hi_open else "]"
        return f"Range{left}{self.lo}, {self.hi}{right}"

    def bounded(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)

    # three-valued comparisons; a plain number is the closed range [x, x]
    def __lt__(self, other: object) -> bool | None:  # type: ignore[override]
        return _less(self, _span(other), strict=True)

    def __le__(self, other: object) -> bool | None:  # type: ignore[override]
        return _less(self, _span(other), strict=False)

    def __gt__(self, other: object) -> bool | None:  # type: ignore[override]
        return _less(_span(other), self, strict=True)

    def __ge__(self, other: object) -> bool | None:  # type: ignore[override]
        return _less(_span(other), self, strict=False)

    def __eq__(self, other: object) -> bool | None:  # type: ignore[override]
        o = _span(other)
        le, ge = _less(self, o, strict=False), _less(o, self, strict=False)
        if le is False or ge is False:
            return False
        if self.lo == self.hi == o.lo == o.hi:
            return True
        return None

    def __ne__(self, other: object) -> bool | None:  # type: ignore[override]
        eq = self.__eq__(other)
        return None if eq is None else not eq

    def __hash__(self) -> int:  # memo keys (needs.py); equal fields, equal hash
        return hash((Range, self.lo, self.hi, self.lo_open, self.hi_open, self.ongoing))

    def __neg__(self) -> Range:
        return Range(-self.hi, -self.lo, self.hi_open, self.lo_open)

    def __add__(self, other: object) -> Range | None:
        if isinstance(other, Range):
            if not (self.bounded() and other.bounded()):
                return None
            return Range(self.lo + other.lo, self.hi + other.hi)
        x = float(other)  # type: ignore[arg-type]
        return Range(self.lo + x, self.hi + x, self.lo_open, self.hi_open)

    __radd__ = __add__

    def __sub__(self, other: object) -> Range | None:
        return self + (-other)  # type: ignore[operator]

    def __rsub__(self, other: object) -> Range | None:
        return (-self) + other

    def __mul__(self, other: object) -> Range | None:
        if isinstance(other, Range):
            if not (self.bounded() and other.bounded()):
                return None
            p = [a * b for a in (self.lo, self.hi) for b in (other.lo, other.hi)]
            return Range(min(p), max(p))
        x = float(other)  # type: ignore[arg-type]
        if x == 0:
            return Range(0.0, 0.0)
        if x > 0:
            return Range(self.lo * x, self.hi * x, self.lo_open, self.hi_open)
        return Range(self.hi * x, self.lo * x, self.hi_open, self.lo_open)

    __rmul__ = __mul__

    def __truediv__(self, other: object) -> Range | None:
        if isinstance(other, Range):
            inv = _inverse(other)
            return None if inv is None else self * inv
        x = float(other)  # type: ignore[arg-type]
        if x == 0:
            return None
        if x > 0:
            return Range(self.lo / x, self.hi / x, self.lo_open, self.hi_open)
        return Range(self.hi / x, self.lo / x, self.hi_open, self.lo_open)

    def __rtruediv__(self, other: object) -> Range | None:
        if _inverse(self) is None:
            return None
        x = float(other)  # type: ignore[arg-type]
        if x == 0:
            return Range(0.0, 0.0)
        lo, hi = (x / self.hi, x / self.lo) if x > 0 else (x / self.lo, x / self.hi)
        return Range(lo, hi)


def _span(x: object) -> Range:
    return x if isinstance(x, Range) else Range(x, x)  # type: ignore[arg-type]


def _less(a: Range, b: Range, strict: bool) -> bool | None:
    """Is every a below b (True), none (False), or some (None)? `strict`: a < b, else a <= b."""
    # all of a below all of b
    if a.hi < b.lo or (a.hi == b.lo and (not strict or a.hi_open or b.lo_open)):
        return True
    # no a below any b: a.lo >= b.hi (strict), a.lo > b.hi (non-strict, or touching open)
    if a.lo > b.hi or (a.lo == b.hi and (strict or a.lo_open or b.hi_open)):
        return False
    return None


def _inverse(r: Range) -> Range | None:
    """1 / r for a bounded range that excludes zero (else None: the divisor may be zero)."""
    if not r.bounded() or r.lo <= 0 <= r.hi:
        return None
    return Range(1 / r.hi, 1 / r.lo)


def is_range(x: object) -> bool:
    return x.__class__ is Range


def kleene_and(*values: bool | None) -> bool | None:
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def r_between(x: Any, lo: Any, hi: Any) -> bool | None:
    """lo <= x <= hi, three-valued (any of them a Range)."""
    return kleene_and(_less(_span(lo), _span(x), False), _less(_span(x), _span(hi), False))


def r_in_range(x: Any, lo: float | None, hi: float | None) -> bool | None:
    """A value inside its reference range (either limit may be absent)."""
    return kleene_and(
        True if lo is None else _less(_span(lo), _span(x), False),
        True if hi is None else _less(_span(x), _span(hi), False),
    )


def r_window(kind: str, before: bool, d: Any, a: Any, edge: Any) -> bool | None:
    """A time window test where a date (day number) is a Range.

    An ongoing exposure's end (Range.ongoing) meets `before A` windows as if it ended at A:
    exposure that lasts up to A or beyond is at least as recent as one that ended at A, so
    it never looks better (docs/patients.md, "Ongoing therapies").
    """
    d, a, edge = _span(d), _span(a), _span(edge)
    if before and d.ongoing:
        d = Range(min(d.lo, a.lo), min(d.hi, a.hi))
    if before:
        if kind == "within":  # edge <= d <= a
            return kleene_and(_less(edge, d, False), _less(d, a, False))
        if kind == "more":  # d < edge
            return _less(d, edge, True)
        return kleene_and(_less(edge, d, True), _less(d, a, False))  # edge < d <= a
    if kind == "within":  # a <= d <= edge
        return kleene_and(_less(a, d, False), _less(d, edge, False))
    if kind == "more":  # d > edge
        return _less(edge, d, True)
    return kleene_and(_less(a, d, False), _less(d, edge, True))  # a <= d < edge


def _r_add_months(day: Range, months: int) -> Range:
    lo = day.lo if not math.isfinite(day.lo) else add_months(int(day.lo), months)
    hi = day.hi if not math.isfinite(day.hi) else add_months(int(day.hi), months)
    return Range(lo, hi, day.lo_open, day.hi_open)


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
    "Range": Range,
    "r_between": r_between,
    "r_in_range": r_in_range,
    "r_window": r_window,
    "len": len,
    "choice": choice,
    "alt_op": alt_op,
    "alt_map": alt_map,
    "alt_call": alt_call,
    "decided": decided,
}
