"""Three-valued conditions and possibly-unknown values as z3 terms (semantics/encode.py).

A condition is a pair of z3 booleans (t, f): "definitely met", "definitely not met";
neither is unknown. A value is (v, k): the value and whether it is known, with the
possibilities of a conditional whose condition is unknown (runtime.Alt). The operators
follow the compiled evaluator's (backends/runtime.py): Kleene and/or, `decided`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import z3

TRUE = z3.BoolVal(True)
FALSE = z3.BoolVal(False)


@dataclass(frozen=True)
class TV:
    """A three-valued condition: t (definitely met), f (definitely not met)."""

    t: Any
    f: Any

    @property
    def unknown(self) -> Any:
        return z3.And(z3.Not(self.t), z3.Not(self.f))

    def negate(self) -> TV:
        return TV(self.f, self.t)


@dataclass(frozen=True)
class Val:
    """A value and whether it is known (None in the compiled code when not).

    A conditional whose condition is unknown has several possible values (runtime.Alt):
    `alts` lists them as (guard, value), a guard saying the possibility is open; `v` is
    then the first open one. `k` is "every possibility known" (runtime.choice)."""

    v: Any
    k: Any
    alts: tuple[tuple[Any, Any], ...] = ()

    def options(self) -> tuple[tuple[Any, Any], ...]:
        return self.alts or ((TRUE, self.v),)


MAX_ALTERNATIVES = 16  # beyond this a rule is reported as not modelled


def several(k: Any, alts: list[tuple[Any, Any]]) -> Val:
    """A value from its possibilities (one possibility: a plain value)."""
    if len(alts) == 1 and z3.is_true(z3.simplify(alts[0][0])):
        return Val(alts[0][1], k)
    if len(alts) > MAX_ALTERNATIVES:
        raise Unsupported(f"more than {MAX_ALTERNATIVES} possible values of a conditional")
    first = alts[-1][1]
    for g, v in reversed(alts[:-1]):
        first = z3.If(g, v, first)
    return Val(first, k, tuple(alts))


def plain(x: Val) -> Val:
    """One value where one is needed (runtime.decided): possibilities that differ are
    unknown."""
    if not x.alts:
        return x
    agree = [
        z3.Implies(z3.And(g1, g2), v1 == v2)
        for i, (g1, v1) in enumerate(x.alts)
        for g2, v2 in x.alts[i + 1 :]
    ]
    return Val(x.v, z3.And(x.k, *agree))


def tv_of(x: Val) -> TV:
    x = plain(x)
    return TV(z3.And(x.k, x.v), z3.And(x.k, z3.Not(x.v)))


def val_of(c: TV) -> Val:
    return Val(c.t, z3.Or(c.t, c.f))


def kleene_and(a: TV, b: TV) -> TV:
    return TV(z3.And(a.t, b.t), z3.Or(a.f, b.f))


def kleene_or(a: TV, b: TV) -> TV:
    return TV(z3.Or(a.t, b.t), z3.And(a.f, b.f))


class Unsupported(Exception):
    """A form the encoding does not model; the caller abstracts the rule and says so."""


def relation(op: str, a: Any, b: Any) -> Any:
    return {
        "<": lambda: a < b,
        "<=": lambda: a <= b,
        ">": lambda: a > b,
        ">=": lambda: a >= b,
        "=": lambda: a == b,
        "!=": lambda: a != b,
    }[op]()
