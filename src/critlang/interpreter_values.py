"""The reference interpreter's possible values: one value, or the distinct values an
expression below an undecided conditional may have (`Choices`), and exact rounding.

Part of the reference interpreter (interpreter.py), written apart from the compiled
runtime (runtime.Alt, runtime.sig) so that the two can be tested against each other.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction
from typing import Any

_CTX = Context(prec=60)

# A conditional with an unknown condition stands for both branch values; a comparison over
# it is decided when every combination agrees. At most this many combinations are
# followed (beyond: unknown); the compiled runtime uses the same bound.
MAX_CHOICES = 64


class Choices(tuple):
    """The distinct possible values of an expression below an undecided conditional."""

    __slots__ = ()


def possible(*values: Any) -> Any:
    """One value, Choices of several, or None when any possibility is unknown."""
    out: list[Any] = []
    for v in values:
        if v is None:
            return None
        for x in v if isinstance(v, Choices) else (v,):
            if not any(same(x, y) for y in out):
                out.append(x)
    if len(out) > MAX_CHOICES:
        return None
    return out[0] if len(out) == 1 else Choices(out)


def same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # pint refuses to compare quantities of different dimensions
        return False


def combinations(*values: Any, keep_unknown: bool = False) -> list[tuple[Any, ...]] | None:
    """Every combination of the values' possibilities; None when one is unknown, unless
    `keep_unknown` (a formula's arguments: the formula decides what unknown means)."""
    combos: list[tuple[Any, ...]] = [()]
    for v in values:
        if v is None and not keep_unknown:
            return None
        combos = [(*c, x) for c in combos for x in (v if isinstance(v, Choices) else (v,))]
        if len(combos) > MAX_CHOICES:
            return None
    return combos


def kleene(
    stop: bool, left: tuple[bool | None, Any], right: tuple[bool | None, Any]
) -> tuple[bool | None, Any]:
    """Strong Kleene or (stop True) / and (stop False), with the deciding sub-expression."""
    (a, ad), (b, bd) = left, right
    if a is stop:
        return stop, ad
    if b is stop:
        return stop, bd
    if a is None:
        return None, ad
    if b is None:
        return None, bd
    return (not stop), bd


def options(v: Any) -> tuple[Any, ...]:
    return tuple(v) if isinstance(v, Choices) else (v,)


def one(v: Any) -> Any:
    """Where one value is needed, several possibilities are unknown."""
    return None if isinstance(v, Choices) else v


def exact_sig(x: Fraction) -> Fraction:
    """Exact value rounded to 12 significant digits (the compiled code's `sig`)."""
    if x == 0:
        return x
    d = _CTX.divide(Decimal(x.numerator), Decimal(x.denominator))
    exp = d.adjusted() - 11
    return Fraction(d.quantize(Decimal(1).scaleb(exp), rounding=ROUND_HALF_EVEN))
