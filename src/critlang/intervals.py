"""Interval values for the reference interpreter, written apart from runtime.Range.

The interpreter is the differential oracle of the compiled evaluator, so it does its own
interval reasoning: exact endpoints (Fractions, pint quantities, dates), None for an
unbounded side. The rules are the documented ones (docs/patients.md, "Values known as an
interval"): a comparison is True when it holds for every value of the interval, False when
for none, else unknown; arithmetic with an exact value moves the bounds (monotonic), two
intervals combine only when both are bounded (closed result), a possibly-zero divisor is
unknown; an ongoing exposure's end meets `before A` windows as if it ended at A.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
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
    """a op b where a or b is an interval; None when it cannot be bounded."""
    if not isinstance(b, Iv):  # interval op exact value
        return _with_exact(op, a, b, left=True)
    if not isinstance(a, Iv):
        return _with_exact(op, b, a, left=False)
    if not (a.bounded and b.bounded):
        return None
    if op == "+":
        return Iv(a.lo + b.lo, a.hi + b.hi)
    if op == "-":
        return Iv(a.lo - b.hi, a.hi - b.lo)
    if op == "/":
        if _sign(b.lo) <= 0 <= _sign(b.hi):
            return None
        b = Iv(1 / b.hi, 1 / b.lo)
    products = [x * y for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
    return Iv(min(products), max(products))


def _sign(x: Any) -> int:
    m = getattr(x, "magnitude", x)
    return (m > 0) - (m < 0)


def _with_exact(op: str, iv: Iv, x: Any, left: bool) -> Any:
    if op == "+":
        return iv.map(lambda v: v + x)
    if op == "-":
        return iv.map(lambda v: v - x) if left else iv.map(lambda v: x - v, increasing=False)
    if op == "*":
        s = _sign(x)
        if s == 0:
            return Iv(0 * (iv.any_end()) * x, 0 * iv.any_end() * x)
        return iv.map(lambda v: v * x, increasing=s > 0)
    # division
    if left:
        s = _sign(x)
        if s == 0:
            return None
        return iv.map(lambda v: v / x, increasing=s > 0)
    if not iv.bounded or _sign(iv.lo) <= 0 <= _sign(iv.hi):
        return None
    inverse = Iv(1 / iv.hi, 1 / iv.lo)
    return _with_exact("*", inverse, x, left=True)
