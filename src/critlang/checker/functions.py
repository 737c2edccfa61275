"""Functions pass: types of calls to the built-in mathematical functions (functions.py).

`min` / `max` take two or more operands of one kind: plain numbers, quantities of one
dimension (converted exactly into the first operand's unit, as `+` does) or dates; the
result is of that kind (a quantity in the first operand's unit). `pow`, `sqrt`, `cbrt`,
`ln`, `exp`, `log10` take plain numbers only and give a plain number: a quantity with a
unit is refused (E313), since the power or logarithm of a unit has no clinical meaning
and an empirical formula is written on numbers in stated units (docs/language.md).
"""

from __future__ import annotations

from .. import nodes as n
from ..functions import ARITY, ORDERING
from ..typesys import NUMERIC, DateT, ErrorT, NumberT, QuantT, Type


class FunctionsPass:
    def math_call(self, e: n.Call, scope: dict) -> Type:
        types = [self.expr(a, scope) for a in e.args]  # type: ignore[attr-defined]
        if e.func in ORDERING:
            return self.ordering(e, types)
        want = ARITY[e.func]
        if len(e.args) != want:
            shape = "x, y" if want == 2 else "x"
            return self.err(  # type: ignore[attr-defined,no-any-return]
                "E104",
                f"`{e.func}` takes {want} value(s), {len(e.args)} given",
                e.span,
                hint=f"write `{e.func}({shape})`",
            )
        failed = False
        for a, t in zip(e.args, types, strict=True):
            if isinstance(t, ErrorT):
                failed = True
            elif isinstance(t, QuantT):
                failed = True
                self.err(  # type: ignore[attr-defined]
                    "E313",
                    f"`{e.func}` takes a plain number, but this is {t.describe()}",
                    a.span,
                    label="has a unit",
                    hint=f"take its number out in a stated unit: `{e.func}((... in "
                    f"{t.unit.text}))`; give the result its unit with `(... as UNIT)`",
                )
            elif not isinstance(t, NUMERIC):
                failed = True
                self.err(  # type: ignore[attr-defined]
                    "E201",
                    f"`{e.func}` takes a plain number, not {t.describe()}",
                    a.span,
                )
        return ErrorT() if failed else NumberT()

    def ordering(self, e: n.Call, types: list[Type]) -> Type:
        if len(e.args) < 2:
            return self.err(  # type: ignore[attr-defined,no-any-return]
                "E104",
                f"`{e.func}` takes two or more values, {len(e.args)} given",
                e.span,
                hint=f"write `{e.func}(a, b)`",
            )
        if any(isinstance(t, ErrorT) for t in types):
            return ErrorT()
        first, first_arg = types[0], e.args[0]
        failed = False
        for a, t in zip(e.args[1:], types[1:], strict=True):
            if isinstance(first, QuantT) and isinstance(t, QuantT):
                if not first.unit.same_dimension(t.unit):
                    self.dimension_error(a.span, first.unit, t.unit, "the first operand")  # type: ignore[attr-defined]
                    failed = True
            elif isinstance(first, QuantT) or isinstance(t, QuantT):
                q = first if isinstance(first, QuantT) else t
                self.err(  # type: ignore[attr-defined]
                    "E303",
                    f"`{e.func}` of a plain number and a quantity in {q.unit.text}",  # type: ignore[union-attr]
                    a.span if isinstance(first, QuantT) else first_arg.span,
                    hint="give both the unit, or take the number out first: `(x in UNIT)`",
                )
                failed = True
            elif isinstance(first, NUMERIC) and isinstance(t, NUMERIC):
                pass  # numbers
            elif isinstance(first, DateT) and isinstance(t, DateT):
                pass  # dates
            else:
                self.err(  # type: ignore[attr-defined]
                    "E201",
                    f"`{e.func}` needs values of one kind (numbers, quantities or dates): "
                    f"{first.describe()} and {t.describe()}",
                    a.span,
                )
                failed = True
        if failed:
            return ErrorT()
        if isinstance(first, NUMERIC):
            return NumberT()
        if isinstance(first, (QuantT, DateT)):
            return first
        return self.err(  # type: ignore[attr-defined,no-any-return]
            "E201",
            f"`{e.func}` needs numbers, quantities or dates, not {first.describe()}",
            first_arg.span,
        )
