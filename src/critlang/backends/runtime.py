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

    A Range (a birth date known to the year or month, an ongoing end) gives the Range of
    possible values: the completed years are monotonic in both days, so the bounds come
    from the bounds (an infinite one stays infinite).
    """
    if start is None or end is None:
        return None
    if start.__class__ is Range or end.__class__ is Range:
        s, e = _span(start), _span(end)
        # an unbounded side (an ongoing end: no latest day) leaves that side unbounded
        finite = math.isfinite
        low = _years(int(s.hi), int(e.lo)) if finite(s.hi) and finite(e.lo) else -_INF
        high = _years(int(s.lo), int(e.hi)) if finite(s.lo) and finite(e.hi) else _INF
        if low == high:
            return low
        return _made(low, high, False, False)
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
    if x.__class__ is Range:  # both bounds; a rounded bound may be reached: closed,
        # except an open 0 (rounding never makes a value that is not 0 zero)
        lo, hi = sig(x.lo), sig(x.hi)  # type: ignore[union-attr]
        return Range(lo, hi, x.lo_open and lo == 0, x.hi_open and hi == 0)  # type: ignore
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
    as an interval"): interval arithmetic over the extended reals, each end keeping
    whether it is reached (`_product`, `_inverse`); a divisor that may be zero, or a
    result unbounded on both sides, is unknown (None).
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
        o = _span(other)
        # a bound of a sum is reached only when both bounds it adds are
        return _made(
            self.lo + o.lo, self.hi + o.hi, self.lo_open or o.lo_open, self.hi_open or o.hi_open
        )

    __radd__ = __add__

    def __sub__(self, other: object) -> Range | None:
        return self + (-_span(other))

    def __rsub__(self, other: object) -> Range | None:
        return (-self) + other

    def __mul__(self, other: object) -> Range | None:
        return _product(self, _span(other))

    __rmul__ = __mul__

    def __truediv__(self, other: object) -> Range | None:
        inv = _inverse(_span(other))
        return None if inv is None else _product(self, inv)

    def __rtruediv__(self, other: object) -> Range | None:
        inv = _inverse(self)
        return None if inv is None else _product(_span(other), inv)


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


def _made(lo: float, hi: float, lo_open: bool, hi_open: bool) -> Range | None:
    """A result interval; unbounded on both sides it says nothing: unknown (None).
    An infinite end is never reached: its flag is kept False, as `censored` writes it."""
    if lo == -_INF and hi == _INF:
        return None
    return Range(lo, hi, lo_open and lo != -_INF, hi_open and hi != _INF)


def _reached(x: float, is_open: bool) -> bool:
    return not is_open and math.isfinite(x)


def _product(a: Range, b: Range) -> Range | None:
    """{x * y : x in a, y in b}, ends possibly infinite.

    The bounds are among the products of the ends (x * y is linear in each factor), with
    0 x inf = 0: a factor that may be 0 keeps the product 0 whatever the other. A bound
    is reached when two reached ends give it, or a reached 0 end does (0 times any value
    of the other); an open or infinite end only approaches it (docs/patients.md).
    """
    ends = []
    for x, rx in ((a.lo, _reached(a.lo, a.lo_open)), (a.hi, _reached(a.hi, a.hi_open))):
        for y, ry in ((b.lo, _reached(b.lo, b.lo_open)), (b.hi, _reached(b.hi, b.hi_open))):
            p = 0.0 if x == 0 or y == 0 else x * y
            ends.append((p, (rx and ry) or (x == 0 and rx) or (y == 0 and ry)))
    lo = min(p for p, _ in ends)
    hi = max(p for p, _ in ends)
    lo_open = not any(r for p, r in ends if p == lo)
    hi_open = not any(r for p, r in ends if p == hi)
    return _made(lo, hi, lo_open, hi_open)


def _holds_zero(r: Range) -> bool:
    above = r.hi > 0 or (r.hi == 0 and not r.hi_open)
    return (r.lo < 0 or (r.lo == 0 and not r.lo_open)) and above


def _recip(x: float, from_below: bool) -> float:
    """1 / x at an end of a range that excludes 0: 1 / +-inf is 0; 1 / 0 is the infinity
    the end approaches (an open 0 low end of a positive range: +inf; high end: -inf)."""
    if x == 0:
        return _INF if from_below else -_INF
    return 1 / x


def _inverse(r: Range) -> Range | None:
    """{1 / x : x in r}; None (unknown) when r may hold 0: the divisor may be zero.

    1 / x decreases on each side of 0, so the ends swap, each keeping its openness; an
    infinite end gives 0 approached but never reached: (2, inf) gives (0, 0.5)."""
    if _holds_zero(r):
        return None
    lo, hi = _recip(r.hi, False), _recip(r.lo, True)
    lo_open = r.hi_open or not math.isfinite(r.hi) or r.hi == 0
    hi_open = r.lo_open or not math.isfinite(r.lo) or r.lo == 0
    return _made(lo, hi, lo_open, hi_open)


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


def alt_product(values: tuple[object, ...]) -> list[tuple[object, ...]] | None:
    """Every combination of the values' possibilities (an unknown value is one unknown
    possibility: the form decides what it means); None past MAX_CHOICES."""
    combos: list[tuple[object, ...]] = [()]
    for v in values:
        combos = [(*c, x) for c in combos for x in _options(v)]
        if len(combos) > MAX_CHOICES:
            return None
    return combos


def agreed(results: list[object]) -> object:
    """A condition decided when every combination gave the same answer, else unknown."""
    first = results[0]
    return first if all(r is first for r in results) else None


def future_items(
    as_of: Any, dates: tuple[str, ...], fields: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The two hypothetical items of future_events.py: every date field in `dates` any
    day up to the evaluation date (day number `as_of`) and every other field unknown;
    then every field unknown. None without an evaluation date."""
    if as_of is None:
        return []
    past: dict[str, Any] = dict.fromkeys(fields)
    past.update({name: Range(-math.inf, as_of) for name in dates})
    return [past, dict.fromkeys(fields)]


def only_future(results: list[object]) -> bool:
    """future_events.only_future over the body's statuses on the two items."""
    return len(results) == 2 and results[0] is False and results[1] is not False


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
    "alt_product": alt_product,
    "agreed": agreed,
    "future_items": future_items,
    "only_future": only_future,
}

# The built-in functions (functions.py) live in runtime_math.py, which builds on the
# Range and Alt above and adds its exports to EXPORTS: imported last, so that those names
# exist when it reads them (in either import order).
from . import runtime_math  # noqa: E402, F401
