"""The reference interpreter's built-in functions (functions.py), written apart from
backends/runtime_math.py so that the two can be tested against each other.

Exact where exactness is possible (min, max, an integer power of a fraction), else in
60-digit decimals (sqrt, cbrt, ln, exp, log10, non-integer powers): far past a double's
17 digits, so after the 12-significant-digit rounding where a formula ends
(interpreter_values.exact_sig, runtime.sig) the two evaluators agree. Intervals (Iv,
None for an unbounded side) map end by end through the monotone functions; the domain
and range rules are functions.py's.
"""

from __future__ import annotations

from decimal import Context, Decimal
from fractions import Fraction
from typing import Any

from .functions import OUT_OF_RANGE, UNDERFLOW
from .intervals import Iv, as_iv

_CTX = Context(prec=60)
_BIG = Fraction(OUT_OF_RANGE)  # the same double the compiled runtime compares with
_TINY = Fraction(UNDERFLOW)
_EXACT_POWER = 1000  # integer exponents up to this size are computed exactly


def _dec(x: Fraction) -> Decimal:
    return _CTX.divide(Decimal(x.numerator), Decimal(x.denominator))


def _fits(r: Fraction) -> Fraction | None:
    a = abs(r)
    if a > _BIG or (a != 0 and a < _TINY):
        return None
    return r


def _exp_of(t: Decimal) -> Fraction | None:
    """e ** t, or None when it is out of range (e ** 700 > 1e300; e ** -700 < 1e-300)."""
    if abs(t) > 700:
        return None
    return _fits(Fraction(_CTX.exp(t)))


def sqrt(x: Fraction) -> Fraction | None:
    if x < 0:
        return None
    return _fits(Fraction(_CTX.sqrt(_dec(x))))


def cbrt(x: Fraction) -> Fraction | None:
    if x == 0:
        return Fraction(0)
    r = _exp_of(_CTX.ln(_dec(abs(x))) / 3)
    return None if r is None else (r if x > 0 else -r)


def ln(x: Fraction) -> Fraction | None:
    if x <= 0:
        return None
    return _fits(Fraction(_CTX.ln(_dec(x))))


def log10(x: Fraction) -> Fraction | None:
    if x <= 0:
        return None
    return _fits(Fraction(_CTX.log10(_dec(x))))


def exp(x: Fraction) -> Fraction | None:
    return _exp_of(_dec(x))


def pow_(x: Fraction, y: Fraction) -> Fraction | None:
    """x ** y: 0 ** 0 = 1; 0 to a negative power, a negative base to a non-integer
    power: outside the domain."""
    if x == 0:
        if y < 0:
            return None
        return Fraction(1) if y == 0 else Fraction(0)
    integer = y.denominator == 1
    if x < 0 and not integer:
        return None
    if integer and abs(y) <= _EXACT_POWER:
        return _fits(x ** int(y))
    r = _exp_of(_dec(y) * _CTX.ln(_dec(abs(x))))
    if r is None:
        return None
    return -r if x < 0 and int(y) % 2 else r


POINT = {"sqrt": sqrt, "cbrt": cbrt, "ln": ln, "log10": log10, "exp": exp}


# ---------------------------------------------------------------------- intervals


def least(values: list[Any]) -> Any:
    """min over values, any of them an interval: the least low end (reached when an
    operand reaches it) to the least high end (reached when every operand having it
    as its high end reaches it)."""
    if not any(isinstance(v, Iv) for v in values):
        return min(values)
    ivs = [as_iv(v) for v in values]
    if any(i.lo is None for i in ivs):
        lo, lo_open = None, False
    else:
        lo = min(i.lo for i in ivs)
        lo_open = not any(i.lo == lo and not i.lo_open for i in ivs)
    highs = [i for i in ivs if i.hi is not None]
    if not highs:
        hi, hi_open = None, False
    else:
        hi = min(i.hi for i in highs)
        hi_open = any(i.hi == hi and i.hi_open for i in highs)
    return _result(lo, hi, lo_open, hi_open)


def most(values: list[Any]) -> Any:
    if not any(isinstance(v, Iv) for v in values):
        return max(values)
    ivs = [as_iv(v) for v in values]
    if any(i.hi is None for i in ivs):
        hi, hi_open = None, False
    else:
        hi = max(i.hi for i in ivs)
        hi_open = not any(i.hi == hi and not i.hi_open for i in ivs)
    lows = [i for i in ivs if i.lo is not None]
    if not lows:
        lo, lo_open = None, False
    else:
        lo = max(i.lo for i in lows)
        lo_open = any(i.lo == lo and i.lo_open for i in lows)
    return _result(lo, hi, lo_open, hi_open)


def _result(lo: Any, hi: Any, lo_open: bool, hi_open: bool) -> Iv | None:
    if lo is None and hi is None:
        return None  # no bound at all: unknown
    return Iv(lo, hi, lo_open and lo is not None, hi_open and hi is not None)


def one_arg(name: str, x: Any) -> Any:
    """name(x), x a Fraction or an interval of Fractions (None: unknown)."""
    f = POINT[name]
    if not isinstance(x, Iv):
        return f(x)
    # the domain's low end: sqrt from 0 (reached), ln and log10 above 0
    if name in ("sqrt", "ln", "log10"):
        if x.lo is None or x.lo < 0:
            return None
        if x.lo == 0 and not x.lo_open and name != "sqrt":
            return None
    if x.lo is None:  # exp tends to 0 (never reached); cbrt has no lower bound
        lo, lo_open = (Fraction(0), True) if name == "exp" else (None, False)
    elif x.lo == 0 and name in ("ln", "log10"):
        lo, lo_open = None, False  # the open 0 end: unbounded below
    else:
        lo, lo_open = f(x.lo), x.lo_open
        if lo is None:
            return None
    if x.hi is None:
        hi, hi_open = None, False
    else:
        hi, hi_open = f(x.hi), x.hi_open
        if hi is None:
            return None
    return _result(lo, hi, lo_open, hi_open)


def power(x: Any, y: Any) -> Any:
    """x ** y, either an interval (runtime_math._r_pow states the same rules)."""
    if isinstance(y, Iv):
        xs = as_iv(x)
        if xs.lo is None or xs.lo <= 0 or xs.hi is None or not y.bounded:
            return None
        corners = [pow_(a, b) for a in (xs.lo, xs.hi) for b in (y.lo, y.hi)]
        if any(c is None for c in corners):
            return None
        return Iv(min(corners), max(corners))  # type: ignore[type-var]
    if not isinstance(x, Iv):
        return pow_(x, y)
    if y == 0:
        return Fraction(1)
    if x.lo is None or x.lo < 0:
        return None
    if y > 0:
        lo = pow_(x.lo, y)
        hi = None if x.hi is None else pow_(x.hi, y)
        if lo is None or (x.hi is not None and hi is None):
            return None
        return _result(lo, hi, x.lo_open, x.hi_open)
    if x.lo == 0 and not x.lo_open:
        return None
    lo = Fraction(0) if x.hi is None else pow_(x.hi, y)
    hi = None if x.lo == 0 else pow_(x.lo, y)
    if lo is None or (x.lo != 0 and hi is None):
        return None
    return _result(lo, hi, x.hi_open or x.hi is None, x.lo_open)


def call(name: str, args: tuple[Any, ...]) -> Any:
    """One combination of known arguments (the interpreter handles unknown and Choices)."""
    if name == "min":
        return least(list(args))
    if name == "max":
        return most(list(args))
    if name == "pow":
        return power(args[0], args[1])
    return one_arg(name, args[0])
