"""The built-in functions for generated code (functions.py): min, max, pow, sqrt, cbrt,
ln, exp, log10 over the runtime's values.

A value is a float (a date: an int day number), None (unknown), a `Range` (known only
to lie in an interval) or an `Alt` (several possibilities). Every function is unknown
when an operand is; a possibility of an Alt is computed on its own and the results
gathered (`choice`, as `alt_op` does); an interval maps to an interval exactly: min and
max are monotone in every operand, and pow (for a fixed exponent), sqrt, cbrt, ln, exp
and log10 are monotone on their domain (docs/language.md, "Built-in functions").

Outside a domain, or out of range (functions.OUT_OF_RANGE, functions.UNDERFLOW), the
value is unknown. `rounded`: the call ends a formula (nodes.arithmetic_roots), so the
result goes through `sig`, as an arithmetic root does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..functions import OUT_OF_RANGE, UNDERFLOW
from .runtime import EXPORTS, Alt, Range, _made, _options, _span, choice, sig

_INF = math.inf


def _fits(r: float) -> float | None:
    """A result a double carries with full precision, else None (functions.py)."""
    a = abs(r)
    if a > OUT_OF_RANGE or (a != 0 and a < UNDERFLOW) or r != r:
        return None
    return r


def _lifted(point: Callable[..., Any], ranged: Callable[..., Any], rounded: bool, args: Any) -> Any:
    for a in args:
        if a is None:
            return None
    if any(a.__class__ is Alt for a in args):
        combos: list[tuple[Any, ...]] = [()]
        for a in args:
            combos = [(*c, x) for c in combos for x in _options(a)]
            if len(combos) > 64:  # runtime.MAX_CHOICES
                return None
        return choice(*(_one(point, ranged, rounded, c) for c in combos))
    return _one(point, ranged, rounded, args)


def _one(point: Callable[..., Any], ranged: Callable[..., Any], rounded: bool, args: Any) -> Any:
    r = ranged(*args) if any(a.__class__ is Range for a in args) else point(*args)
    return sig(r) if rounded and r is not None else r


# ---------------------------------------------------------------------- min, max


def _least(*xs: Any) -> Any:
    return min(xs)


def _most(*xs: Any) -> Any:
    return max(xs)


def _r_least(*xs: Any) -> Range | None:
    """{min(x1, ..., xn)}: from the least low end to the least high end. The low end is
    reached when an operand reaches it; the high end when every operand whose high end
    it is reaches it (the others then have values at or above it)."""
    rs = [_span(x) for x in xs]
    lo, hi = min(r.lo for r in rs), min(r.hi for r in rs)
    lo_open = not any(r.lo == lo and not r.lo_open for r in rs)
    hi_open = any(r.hi == hi and r.hi_open for r in rs)
    return _made(lo, hi, lo_open, hi_open)


def _r_most(*xs: Any) -> Range | None:
    rs = [_span(x) for x in xs]
    lo, hi = max(r.lo for r in rs), max(r.hi for r in rs)
    lo_open = any(r.lo == lo and r.lo_open for r in rs)
    hi_open = not any(r.hi == hi and not r.hi_open for r in rs)
    return _made(lo, hi, lo_open, hi_open)


def m_min(rounded: bool, *args: Any) -> Any:
    """min(a, b, ...); operands already in one unit (the first operand's)."""
    return _lifted(_least, _r_least, rounded, args)


def m_max(rounded: bool, *args: Any) -> Any:
    return _lifted(_most, _r_most, rounded, args)


# ---------------------------------------------------------------------- one argument


def _sqrt(x: float) -> float | None:
    return _fits(math.sqrt(x)) if x >= 0 else None


def _cbrt(x: float) -> float | None:
    return _fits(math.cbrt(x))


def _ln(x: float) -> float | None:
    return _fits(math.log(x)) if x > 0 else None


def _log10(x: float) -> float | None:
    return _fits(math.log10(x)) if x > 0 else None


def _exp(x: float) -> float | None:
    try:
        r = math.exp(x)
    except OverflowError:
        return None
    return None if r == 0 else _fits(r)  # 0.0: underflow (e^x is never 0)


# the smallest argument each function takes, and whether that end itself is allowed
_DOMAIN: dict[str, tuple[float, bool]] = {
    "sqrt": (0.0, True),
    "cbrt": (-_INF, True),
    "ln": (0.0, False),
    "log10": (0.0, False),
    "exp": (-_INF, True),
}
# each function's limit at an infinite end or at the open low end of its domain
_LIMITS: dict[str, dict[float, float]] = {
    "sqrt": {_INF: _INF},
    "cbrt": {_INF: _INF, -_INF: -_INF},
    "ln": {_INF: _INF, 0.0: -_INF},
    "log10": {_INF: _INF, 0.0: -_INF},
    "exp": {_INF: _INF, -_INF: 0.0},
}
_POINT: dict[str, Callable[[float], float | None]] = {
    "sqrt": _sqrt,
    "cbrt": _cbrt,
    "ln": _ln,
    "log10": _log10,
    "exp": _exp,
}


def _increasing(name: str, r: Range) -> Range | None:
    """The image of r under an increasing function: each end mapped, keeping whether it
    is reached; an end where the function has only a limit (an infinite end, the open 0
    of ln) gives that limit, never reached. None when r leaves the domain."""
    low, closed_ok = _DOMAIN[name]
    if r.lo < low or (r.lo == low and not r.lo_open and not closed_ok):
        return None
    ends = []
    for x, is_open in ((r.lo, r.lo_open), (r.hi, r.hi_open)):
        limits = _LIMITS[name]
        if not math.isfinite(x) or (x == low and x in limits and not closed_ok):
            ends.append((limits[x], True))
            continue
        y = _POINT[name](x)
        if y is None:
            return None
        ends.append((y, is_open))
    (lo, lo_open), (hi, hi_open) = ends
    return _made(lo, hi, lo_open, hi_open)


def _one_arg(name: str) -> Callable[[bool, Any], Any]:
    point = _POINT[name]

    def ranged(x: Range) -> Range | None:
        return _increasing(name, x)

    def fn(rounded: bool, x: Any) -> Any:
        return _lifted(point, ranged, rounded, (x,))

    fn.__name__ = f"m_{name}"
    fn.__doc__ = f"{name}(x) over the runtime's values (module docstring)."
    return fn


m_sqrt = _one_arg("sqrt")
m_cbrt = _one_arg("cbrt")
m_ln = _one_arg("ln")
m_log10 = _one_arg("log10")
m_exp = _one_arg("exp")


# ---------------------------------------------------------------------- pow


def _pow(x: float, y: float) -> float | None:
    """x ** y: 0 ** 0 is 1 (as SQL POWER and C pow), 0 to a negative power and a
    negative base to a non-integer power are outside the domain."""
    if x == 0:
        if y < 0:
            return None
        return 1.0 if y == 0 else 0.0
    if x < 0 and not float(y).is_integer():
        return None
    try:
        r = math.pow(x, y)
    except (OverflowError, ValueError):
        return None
    return None if r == 0 else _fits(r)  # 0.0 from a non-zero base: underflow


def _r_pow(x: Any, y: Any) -> Range | None:
    """{a ** b : a in x, b in y}.

    A fixed exponent: a ** b is increasing in a >= 0 for b > 0 and decreasing in a > 0 for
    b < 0, so the ends map (and swap), keeping whether they are reached. A base that may
    be negative is unknown (the image is not an interval end by end). An exponent known
    as an interval: over a bounded base above 0 and a bounded exponent, b * ln(a) is
    bilinear, so the extremes are among the four corners; the ends are taken as reached
    (closed: a looser claim, never a wrong one).
    """
    if y.__class__ is Range:
        xs, ys = _span(x), y
        if not (xs.lo > 0 and math.isfinite(xs.hi) and ys.bounded()):
            return None
        corners = [_pow(a, b) for a in (xs.lo, xs.hi) for b in (ys.lo, ys.hi)]
        if any(c is None for c in corners):
            return None
        return Range(min(corners), max(corners))  # type: ignore[type-var]
    if y == 0:
        return 1.0  # type: ignore[return-value]
    if x.lo < 0:
        return None
    if y > 0:
        lo = 0.0 if x.lo == 0 else _pow(x.lo, y)
        hi = _INF if not math.isfinite(x.hi) else _pow(x.hi, y)
        if lo is None or hi is None:
            return None
        return _made(lo, hi, x.lo_open, x.hi_open)
    if x.lo == 0 and not x.lo_open:
        return None  # 0 to a negative power
    lo = 0.0 if not math.isfinite(x.hi) else _pow(x.hi, y)
    hi = _INF if x.lo == 0 else _pow(x.lo, y)
    if lo is None or hi is None:
        return None
    return _made(lo, hi, x.hi_open or not math.isfinite(x.hi), x.lo_open)


def m_pow(rounded: bool, x: Any, y: Any) -> Any:
    return _lifted(_pow, _r_pow, rounded, (x, y))


MATH_EXPORTS: dict[str, object] = {
    "m_min": m_min,
    "m_max": m_max,
    "m_pow": m_pow,
    "m_sqrt": m_sqrt,
    "m_cbrt": m_cbrt,
    "m_ln": m_ln,
    "m_exp": m_exp,
    "m_log10": m_log10,
}
# the export generated code calls for each built-in function (functions.MATH)
EXPORT_NAME: dict[str, str] = {name[2:]: name for name in MATH_EXPORTS}
EXPORTS.update(MATH_EXPORTS)
