"""Explanations, part 1: the clause tree and the words shared by every explainer part
(numbers, dates, operators, values known only as an interval).

A value known only as an interval is a `runtime.Range` (a censored lab value, a partial
date, an age from one, an ongoing therapy's end; docs/patients.md, "Values known as an
interval"). It is shown as the interval it stands for ("below 2 x10^9/L", "52-53") and a
comparison over it says why the interval decides: every value of it holds, none does, or
some do and some do not.
"""

from __future__ import annotations

import datetime as dt
import math
from fractions import Fraction
from typing import Any

from .backends.runtime import Alt, Range
from .frozen_classes import field, mutable

OPS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "=": "=", "!=": "≠"}
# an operator in words, for "every value below 2 is below 3"
OP_WORDS = {
    "<": "below",
    "<=": "at most",
    ">": "above",
    ">=": "at least",
    "=": "equal to",
    "==": "equal to",
    "!=": "other than",
}
MARK = {True: "✓", False: "✗", None: "?"}


class Unsupported(Exception):
    """A node form the walker does not know: the explanation falls back."""


@mutable
class Clause:
    value: bool | None
    text: str
    children: list[Clause] = field(default_factory=list)
    kind: str = "leaf"  # leaf / and / or / not / unless / implies / list / applies / worlds / world
    notes: list[str] = field(default_factory=list)
    source: str = ""  # the clause as written in the rule
    flip: bool = False  # a `no ... with` list: the items that matter are the true ones
    item: int = 0  # a list item's clause: its number, from 1


@mutable
class Val:
    """A value with how to show it: `shown` in words, `derived` lines for its inputs."""

    value: Any
    shown: str
    derived: list[str] = field(default_factory=list)


def num(x: float | Fraction, digits: int = 4) -> str:
    x = float(x)
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.{digits}g}"


def distinct(a: float, b: float) -> tuple[str, str]:
    """Two numbers shown with enough digits that unequal ones never look equal."""
    for digits in range(4, 13):
        sa, sb = num(a, digits), num(b, digits)
        if a == b or sa != sb:
            return sa, sb
    return repr(a), repr(b)


def is_range(x: Any) -> bool:
    return x.__class__ is Range


def apply(op: str, a: Any, b: Any) -> bool | None:
    """`a op b`, three-valued when either side is a Range (as the compiled code)."""
    if isinstance(a, Alt) or isinstance(b, Alt):  # several possibilities: runtime.alt_op
        from .backends.runtime import alt_op, decided

        return decided(alt_op("==" if op == "=" else op, a, b))  # type: ignore[return-value]
    return {
        "<": lambda: a < b,
        "<=": lambda: a <= b,
        ">": lambda: a > b,
        ">=": lambda: a >= b,
        "=": lambda: a == b,
        "==": lambda: a == b,
        "!=": lambda: a != b,
    }[op]()


def span_words(x: Any, unit: str = "", digits: int = 4) -> str:
    """A number or an interval in words: "3.2", "below 2", "at least 4", "52-53"."""
    u = f" {unit}" if unit else ""
    if isinstance(x, Alt):
        return " or ".join(span_words(v, unit, digits) for v in x)
    if not is_range(x):
        return f"{num(x, digits)}{u}"
    lo, hi = x.lo, x.hi
    if math.isinf(lo) and math.isinf(hi):
        return "any value"
    if math.isinf(lo) or (lo == 0 and not x.lo_open and 0 < hi < math.inf):
        # a censored "< 1.5" of a quantity never negative (data/signs.py) is 0 to 1.5:
        # "below 1.5" says it, as recorded
        return f"{'below' if x.hi_open else 'at most'} {num(hi, digits)}{u}"
    if math.isinf(hi):
        return f"{'above' if x.lo_open else 'at least'} {num(lo, digits)}{u}"
    if lo == hi:
        return f"{num(lo, digits)}{u}"
    if x.lo_open and x.hi_open and math.nextafter(math.nextafter(lo, hi), hi) == hi:
        # python_normalise.inexact: a recorded decimal a float cannot hold
        mid = math.nextafter(lo, hi)
        return f"about {num(mid, 17)}{u} (more digits than a float holds)"
    return f"{num(lo, digits)}-{num(hi, digits)}{u}"


def why_interval(op: str, a: Any, b: Any, value: bool | None, unit: str = "") -> str:
    """Why an interval decides a comparison (or leaves it open), in words:
    "every value below 2 x10^9/L is below 3 x10^9/L"."""
    w = OP_WORDS[op]
    d = _digits(a, b)
    if is_range(a) and not is_range(b):
        aw, bw = span_words(a, unit, d), span_words(b, unit, d)
        if value is True:
            return f"every value {aw} is {w} {bw}"
        if value is False:
            return f"no value {aw} is {w} {bw}"
        return f"a value {aw} may or may not be {w} {bw}"
    aw, bw = span_words(a, unit, d), span_words(b, unit, d)
    if value is True:
        return f"{aw} is {w} {bw} for every possible value"
    if value is False:
        return f"{aw} is {w} {bw} for no possible value"
    return f"{aw} may or may not be {w} {bw}"


def _digits(*xs: Any) -> int:
    """Enough significant digits that unequal ends and thresholds never look equal
    ("below 4.9996 is below 5", not "below 5 is below 5")."""
    ends = []
    for x in xs:
        for v in (x.lo, x.hi) if is_range(x) else x if isinstance(x, Alt) else (x,):
            if isinstance(v, (int, float)) and math.isfinite(v):
                ends.append(float(v))
    for digits in range(4, 13):
        shown: dict[str, float] = {}
        if all(shown.setdefault(num(v, digits), v) == v for v in ends):
            return digits
    return 12


def day_text(x: Any) -> str:
    """A day number (or an interval of them) as a date in words."""
    if x is None:
        return "unknown"
    if not is_range(x):
        return dt.date.fromordinal(int(x)).isoformat()
    lo, hi = x.lo, x.hi
    if math.isinf(hi) and not math.isinf(lo):
        return f"{dt.date.fromordinal(int(lo)).isoformat()} or later"
    if math.isinf(lo) and not math.isinf(hi):
        return f"{dt.date.fromordinal(int(hi)).isoformat()} or earlier"
    if math.isinf(lo):
        return "any day"
    a, b = dt.date.fromordinal(int(lo)).isoformat(), dt.date.fromordinal(int(hi)).isoformat()
    return a if a == b else f"between {a} and {b}"


def merge(*lists: list[str]) -> list[str]:
    """The lines of `lists` in order, each once (a shared input is explained once)."""
    return list(dict.fromkeys(line for lines in lists for line in lines))
