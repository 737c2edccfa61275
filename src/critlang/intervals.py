"""Interval values for the reference interpreter, written apart from runtime.Range.

The interpreter is the differential oracle of the compiled evaluator, so it does its own
interval reasoning: exact endpoints (Fractions, pint quantities, dates), None for an
unbounded side. The rules are the documented ones (docs/patients.md, "Values known as an
interval"): a comparison is True when it holds for every value of the interval, False when
for none, else unknown; arithmetic is over the extended line, each end knowing whether it
is reached; a possibly-zero divisor, or a result unbounded on both sides, is unknown; an
ongoing exposure's end meets `before A` windows as if it ended at A.
"""

from __future__ import annotations

from typing import Any

from .frozen_classes import frozen


@frozen
class Iv:
    lo: Any  # None: unbounded below
    hi: Any  # None: unbounded above
    lo_open: bool = False
    hi_open: bool = False
    ongoing: bool = False

    @property
    def bounded(self) -> bool:
        return self.lo is not None and self.hi is not None

    def any_end(self) -> Any:
        """An endpoint, for the unit and dimension checks that need an example value."""
        return self.lo if self.lo is not None else self.hi

    def map(self, f: Any, increasing: bool = True) -> Iv:
        """The image under a monotonic function (decreasing ones swap the sides)."""
        lo = None if self.lo is None else f(self.lo)
        hi = None if self.hi is None else f(self.hi)
        if increasing:
            return Iv(lo, hi, self.lo_open, self.hi_open, self.ongoing)
        return Iv(hi, lo, self.hi_open, self.lo_open)


def as_iv(x: Any) -> Iv:
    return x if isinstance(x, Iv) else Iv(x, x)


def below(a: Iv, b: Iv, strict: bool) -> bool | None:
    """x < y (strict) or x <= y for x in a, y in b: for all pairs, for none, or some."""
    if a.hi is not None and b.lo is not None:
        touching_excluded = a.hi_open or b.lo_open
        if a.hi < b.lo or (a.hi == b.lo and (touching_excluded or not strict)):
            return True
    if a.lo is not None and b.hi is not None:
        touching_excluded = a.lo_open or b.hi_open
        if a.lo > b.hi or (a.lo == b.hi and (strict or touching_excluded)):
            return False
    return None


def compare(op: str, a: Any, b: Any) -> bool | None:
    x, y = as_iv(a), as_iv(b)
    if op == "<":
        return below(x, y, True)
    if op == "<=":
        return below(x, y, False)
    if op == ">":
        return below(y, x, True)
    if op == ">=":
        return below(y, x, False)
    le, ge = below(x, y, False), below(y, x, False)
    if le is False or ge is False:
        equal: bool | None = False
    elif le is True and ge is True:
        equal = True
    else:
        equal = None
    if op == "=":
        return equal
    return None if equal is None else not equal


def both(*values: bool | None) -> bool | None:
    """Kleene and."""
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def arith(op: str, a: Any, b: Any) -> Any:
    """a op b where a or b is an interval (an exact value is a one-point interval); None
    when it cannot be bounded: a divisor that may be zero, or no bound on either side."""
    x, y = as_iv(a), as_iv(b)
    if op == "+":
        return _sum(x, y)
    if op == "-":
        return _sum(x, _negated(y))
    if op == "*":
        return _times(x, y)
    inverse = _reciprocal(y)
    return None if inverse is None else _times(x, inverse)


def _sign(x: Any) -> int:
    m = getattr(x, "magnitude", x)
    return (m > 0) - (m < 0)


def _result(lo: Any, hi: Any, lo_open: bool, hi_open: bool) -> Iv | None:
    """An interval with no bound at all is no information: unknown."""
    if lo is None and hi is None:
        return None
    return Iv(lo, hi, lo_open and lo is not None, hi_open and hi is not None)


def _negated(x: Iv) -> Iv:
    return Iv(
        None if x.hi is None else -x.hi, None if x.lo is None else -x.lo, x.hi_open, x.lo_open
    )


def _sum(x: Iv, y: Iv) -> Iv | None:
    # an end of the sum is reached only when both ends it adds are reached
    lo = None if x.lo is None or y.lo is None else x.lo + y.lo
    hi = None if x.hi is None or y.hi is None else x.hi + y.hi
    return _result(lo, hi, x.lo_open or y.lo_open, x.hi_open or y.hi_open)


@frozen
class _End:
    """An end of an interval in the extended line: side -1 / +1 infinite, 0 finite."""

    side: int
    value: Any
    reached: bool


def _ends(x: Iv) -> tuple[_End, _End]:
    low = _End(-1, None, False) if x.lo is None else _End(0, x.lo, not x.lo_open)
    high = _End(1, None, False) if x.hi is None else _End(0, x.hi, not x.hi_open)
    return low, high


def _times(x: Iv, y: Iv) -> Iv | None:
    """{u * v}: its bounds are products of ends, since u * v is linear in each factor.

    Zero times an infinite end is zero (a zero factor keeps every product at zero). An
    end of the product is reached when two reached ends make it, or one reached zero end
    does (zero times any value of the other interval)."""
    wx, wy = x.any_end(), y.any_end()
    if wx is None or wy is None:
        return None
    zero = wx * wy * 0
    products: list[_End] = []
    for p in _ends(x):
        for q in _ends(y):
            zero_p = p.side == 0 and _sign(p.value) == 0
            zero_q = q.side == 0 and _sign(q.value) == 0
            reached = (p.reached and q.reached) or (zero_p and p.reached) or (zero_q and q.reached)
            if zero_p or zero_q:
                products.append(_End(0, zero, reached))
            elif p.side == 0 and q.side == 0:
                products.append(_End(0, p.value * q.value, reached))
            else:
                sp = p.side or _sign(p.value)
                sq = q.side or _sign(q.value)
                products.append(_End(sp * sq, None, False))

    def before(e: _End, f: _End) -> bool:
        return e.side < f.side or (e.side == f.side == 0 and e.value < f.value)

    low = high = products[0]
    for e in products[1:]:
        low = e if before(e, low) else low
        high = e if before(high, e) else high

    def reached(end: _End) -> bool:
        return any(e.reached and e.side == 0 and e.value == end.value for e in products)

    return _result(
        low.value if low.side == 0 else None,
        high.value if high.side == 0 else None,
        not (low.side == 0 and reached(low)),
        not (high.side == 0 and reached(high)),
    )


def _reciprocal(y: Iv) -> Iv | None:
    """{1 / v : v in y}; None when y may hold zero (a divisor that may be zero).

    1 / v falls on each side of zero, so the ends swap and keep their openness; an
    unbounded end gives zero, approached but never reached; an open zero end gives the
    unbounded side it approaches."""
    reaches_below = y.lo is None or _sign(y.lo) < 0 or (_sign(y.lo) == 0 and not y.lo_open)
    reaches_above = y.hi is None or _sign(y.hi) > 0 or (_sign(y.hi) == 0 and not y.hi_open)
    if reaches_below and reaches_above:
        return None
    w = y.any_end()
    units = getattr(w, "units", None)  # a zero in the reciprocal's unit (pint), else 0
    zero = 0 if units is None else 0 / units
    if y.hi is None:
        lo, lo_open = zero, True
    elif _sign(y.hi) == 0:
        lo, lo_open = None, True
    else:
        lo, lo_open = 1 / y.hi, y.hi_open
    if y.lo is None:
        hi, hi_open = zero, True
    elif _sign(y.lo) == 0:
        hi, hi_open = None, True
    else:
        hi, hi_open = 1 / y.lo, y.lo_open
    return _result(lo, hi, lo_open, hi_open)
