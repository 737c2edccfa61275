"""The built-in functions (functions.py) in SQL, as backends/runtime_math.py computes
them on plain values: NULL when an operand is NULL, outside the domain or out of range.

Every guard is a CASE tested before the function is reached: PostgreSQL raises an error
for SQRT(-1), LN(0), POWER(0, -1), POWER(-8, 1/3.) and EXP(1000) where Python says
unknown, and DuckDB's LEAST / GREATEST skip NULLs where an unknown operand makes the
value unknown. Constant operands are computed here (PostgreSQL folds constant calls when
planning, before any CASE could protect them). A value known only as an interval is read
as a plain value, so a criterion reading one is unknown in SQL (Expressions.name,
`plain_reads`): SQL never decides what Python decides only by interval reasoning.
"""

from __future__ import annotations

from sqlglot import exp

from ... import nodes as n
from ...functions import ORDERING, OUT_OF_RANGE, UNDERFLOW
from ..runtime_math import EXPORT_NAME, MATH_EXPORTS
from .base import CompilerBase
from .calendar import const_of, num
from .sqltree import is_null, null, paren

# |y * ln|x|| above this: e ** 700 is past 1e300 and e ** -700 below 1e-300, so the result
# is out of range anyway; no engine is asked to compute it (PostgreSQL would raise)
_EXPONENT_LIMIT = 700.0


def _when(*pairs: tuple[exp.Expression, exp.Expression], default: exp.Expression) -> exp.Case:
    return exp.Case(ifs=[exp.If(this=c, true=v) for c, v in pairs], default=default)


def _cmp(cls: type, a: exp.Expression, b: exp.Expression) -> exp.Expression:
    return cls(this=a.copy(), expression=b.copy())


class Functions(CompilerBase):
    def math(self, e: n.Call) -> exp.Expression:
        target = self.carrier(e.args[0]) if e.func in ORDERING else None
        args = [self.let(self.value(a, target)) for a in e.args]  # type: ignore[attr-defined]
        rounded = id(e) in self.rounded
        consts = [const_of(a) for a in args]
        if all(c is not None for c in consts):
            r = MATH_EXPORTS[EXPORT_NAME[e.func]](rounded, *consts)  # type: ignore[operator]
            return null() if r is None else num(r)
        if e.func in ORDERING:
            cls = exp.Least if e.func == "min" else exp.Greatest
            value = cls(this=args[0].copy(), expressions=[a.copy() for a in args[1:]])
            nulls = [is_null(a) for a in args if const_of(a) is None]
            return self.let(_when((exp.or_(*nulls, copy=False), null()), default=value))
        x = args[0]
        zero = num(0)
        if e.func == "pow":
            y = args[1]
            t = exp.Mul(this=y.copy(), expression=exp.Ln(this=exp.Abs(this=x.copy())))
            raw: exp.Expression = _when(
                (exp.or_(is_null(x), is_null(y), copy=False), null()),
                (exp.and_(_cmp(exp.EQ, x, zero), _cmp(exp.LT, y, zero), copy=False), null()),
                (_cmp(exp.EQ, x, zero), exp.Pow(this=x.copy(), expression=y.copy())),
                (
                    exp.and_(
                        _cmp(exp.LT, x, zero),
                        _cmp(exp.NEQ, y, exp.Floor(this=y.copy())),
                        copy=False,
                    ),
                    null(),
                ),
                (_cmp(exp.GT, exp.Abs(this=paren(t)), num(_EXPONENT_LIMIT)), null()),
                default=exp.Pow(this=x.copy(), expression=y.copy()),
            )
        else:
            outside = {
                "sqrt": _cmp(exp.LT, x, zero),
                "ln": _cmp(exp.LTE, x, zero),
                "log10": _cmp(exp.LTE, x, zero),
                "exp": _cmp(exp.GT, exp.Abs(this=x.copy()), num(_EXPONENT_LIMIT)),
            }.get(e.func)
            call = {
                "sqrt": lambda: exp.Sqrt(this=x.copy()),
                "cbrt": lambda: exp.Cbrt(this=x.copy()),
                "ln": lambda: exp.Ln(this=x.copy()),
                "log10": lambda: exp.Anonymous(this="LOG10", expressions=[x.copy()]),
                "exp": lambda: exp.Exp(this=x.copy()),
            }[e.func]()
            pairs = [(is_null(x), null())]
            if outside is not None:
                pairs.append((outside, null()))
            raw = _when(*pairs, default=call)
        r = self.let(raw)
        # out of range (functions.OUT_OF_RANGE, UNDERFLOW): unknown, as runtime_math._fits
        size = exp.Abs(this=r.copy())
        out_of_range = exp.or_(
            _cmp(exp.GT, size, num(OUT_OF_RANGE)),
            exp.and_(_cmp(exp.NEQ, r, zero), _cmp(exp.LT, size, num(UNDERFLOW)), copy=False),
            copy=False,
        )
        result = r.copy()
        if rounded:
            from .sqltree import sig_sql

            result = sig_sql(result)
        return self.let(_when((is_null(r), null()), (out_of_range, null()), default=result))
