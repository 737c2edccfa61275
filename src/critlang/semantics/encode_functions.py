"""The built-in functions (functions.py) in the z3 encoding.

- `min`, `max`: exact, with If; known when every operand is (runtime_math).
- `pow`, `sqrt`, `cbrt`, `ln`, `exp`, `log10`: uninterpreted functions of their
  arguments (equal inputs, equal outputs: the same formula means the same in both
  versions of a protocol), so a proof that needs their values finds a candidate that the
  caller re-checks with the compiled evaluators, and says it cannot decide when none is
  real; never a wrong "equivalent". Whether the value is known is exact where the domain
  decides it (sqrt: x >= 0; ln, log10: x > 0; cbrt: always, a double's cube root is never
  out of range) and otherwise an uninterpreted predicate of the arguments too (exp, pow:
  overflow). True facts bound the abstraction: a square root is never negative, e ** x
  is positive, a cube root has the sign of x.
"""

from __future__ import annotations

from typing import Any

import z3

from .. import nodes as n
from ..functions import ORDERING
from .logic import TRUE, Val, several


def _real(v: Any) -> Any:
    return z3.ToReal(v) if z3.is_int(v) else v


class FunctionEncoding:
    def math(self, e: n.Call, env: dict[str, Any]) -> Val:
        vals = [self.value(a, env) for a in e.args]  # type: ignore[attr-defined]
        if not any(v.alts for v in vals):
            return self.math_one(e, [v.v for v in vals], [v.k for v in vals])
        # every combination of the possibilities (runtime_math._lifted)
        combos: list[tuple[Any, list[Any]]] = [(TRUE, [])]
        for v in vals:
            combos = [(z3.And(g, h), [*xs, x]) for g, xs in combos for h, x in v.options()]
        k = z3.And(*[v.k for v in vals])
        alts = []
        for g, xs in combos:
            r = self.math_one(e, xs, [TRUE] * len(xs))
            alts.append((g, r.v))
            k = z3.And(k, z3.Implies(g, r.k))
        return several(k, alts)

    def math_one(self, e: n.Call, xs: list[Any], ks: list[Any]) -> Val:
        known = z3.And(*ks)
        if e.func in ORDERING:
            if any(not z3.is_int(x) for x in xs):
                xs = [_real(x) for x in xs]
            out = xs[0]
            for x in xs[1:]:
                out = z3.If(x < out, x, out) if e.func == "min" else z3.If(x > out, x, out)
            return Val(out, known)
        args = [_real(x) for x in xs]
        sorts = [z3.RealSort()] * len(args)
        fn = z3.Function(f"|{e.func}|", *sorts, z3.RealSort())
        out = fn(*args)
        x = args[0]
        if e.func == "sqrt":
            ok = x >= 0
            self.s.constraints.append(z3.Implies(ok, out >= 0))  # type: ignore[attr-defined]
        elif e.func in ("ln", "log10"):
            ok = x > 0
        elif e.func == "cbrt":
            ok = TRUE
            self.s.constraints.append(  # type: ignore[attr-defined]
                z3.And(
                    z3.Implies(x > 0, out > 0),
                    z3.Implies(x < 0, out < 0),
                    z3.Implies(x == 0, out == 0),
                )
            )
        else:  # exp, pow: out of range for some arguments, which is not modelled
            ok = z3.Function(f"|{e.func} defined|", *sorts, z3.BoolSort())(*args)
            if e.func == "exp":
                self.s.constraints.append(z3.Implies(ok, out > 0))  # type: ignore[attr-defined]
        self.s.abstracted.add(f"{e.func} (a function of its arguments)")  # type: ignore[attr-defined]
        return Val(out, z3.And(known, ok))
