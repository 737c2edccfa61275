"""The built-in functions of the expression language: names, arities and meaning.

One table for every phase: the checker types calls from it, the back ends (compiled
Python, the reference interpreter, explanations, SQL, z3) implement each name, and
docs/language.md ("Built-in functions") documents the same rules.

- `min(a, b, ...)`, `max(a, b, ...)`: operands of one kind (plain numbers, quantities of
  one dimension converted exactly into the first operand's unit, or dates); unknown when
  any operand is unknown.
- `pow(x, y)`, `sqrt(x)`, `cbrt(x)`, `ln(x)`, `exp(x)`, `log10(x)`: on plain numbers only
  (an empirical formula takes its numbers out with `(x in UNIT)` and gives the result its
  unit with `(... as UNIT)`). Outside a function's domain (a negative square root, the
  logarithm of 0 or less, 0 to a negative power, a negative base to a non-integer power)
  or out of range (a result beyond OUT_OF_RANGE in size, or a non-zero result smaller
  than UNDERFLOW) the value is unknown, never an error.
"""

from __future__ import annotations

ORDERING = ("min", "max")
TRANSCENDENTAL = ("pow", "sqrt", "cbrt", "ln", "exp", "log10")
MATH = (*ORDERING, *TRANSCENDENTAL)

# number of arguments; min and max take two or more
ARITY: dict[str, int] = {"pow": 2, "sqrt": 1, "cbrt": 1, "ln": 1, "exp": 1, "log10": 1}

DESCRIPTIONS: dict[str, str] = {
    "min": "the smallest operand (two or more, of one kind)",
    "max": "the largest operand (two or more, of one kind)",
    "pow": "x to the power y",
    "sqrt": "the square root (x >= 0)",
    "cbrt": "the cube root (any sign)",
    "ln": "the natural logarithm (x > 0)",
    "exp": "e to the power x",
    "log10": "the base-10 logarithm (x > 0)",
}

# Results a double cannot carry with its full precision are unknown in every back end
# (Python floats, the interpreter's exact decimals, SQL DOUBLE): beyond 1e300 in size
# (exp(700) would overflow later arithmetic), or non-zero and below 1e-300 (subnormal
# doubles lose digits, exact decimals do not: the two evaluators would disagree).
OUT_OF_RANGE = 1e300
UNDERFLOW = 1e-300


def undefined_why(name: str) -> str:
    """Why a call with known arguments has no value, for explanations."""
    return {
        "sqrt": "outside its domain (a negative number has no square root) or out of range",
        "ln": "outside its domain (the logarithm needs a number above 0)",
        "log10": "outside its domain (the logarithm needs a number above 0)",
        "exp": "out of range (beyond 1e300, or below 1e-300)",
        "cbrt": "out of range",
        "pow": "outside its domain (0 to a negative power, or a negative number to a "
        "non-integer power) or out of range (beyond 1e300, or below 1e-300)",
    }.get(name, "an operand is an interval it cannot bound")
