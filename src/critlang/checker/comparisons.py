"""Comparisons pass: units, dimensions, integer ranges, dual-unit thresholds, arithmetic."""

from __future__ import annotations

from fractions import Fraction

from .. import nodes as n
from ..scales import Affine, conversion, other_scale
from ..source import Span
from ..typesys import (
    NUMERIC,
    BoolT,
    EnumT,
    ErrorT,
    IntT,
    ListT,
    NumberT,
    QuantT,
    ScaleT,
    Type,
    same_kind,
)
from ..ucum import temperature_conversion
from ..units import (
    CALENDAR,
    TIME,
    Unit,
    conversion_factor,
    describe,
    mass_substance_pair,
    mul_dims,
    parse_unit,
)
from .result import (
    DualCheck,
    FactInfo,
    Ref,
)


class ComparisonsPass:
    def dimension_error(
        self,
        span: Span,
        want: Unit,
        got: Unit,
        against: str,
        fact: FactInfo | None = None,
        subject: n.Expr | None = None,
    ) -> None:
        if other_scale(got, want, fact):
            declared = conversion(got, want, None, fact.scales if fact else ())
            self.err(
                "E311",
                f"`{got.text}` is on another clinical scale than {against} ({want.text})"
                + (f": {describe(got.dims)}" if not declared else ""),
                span,
                label="not a unit conversion",
                hint=f"write the threshold in {want.text}, as the protocol gives it; the "
                f"other scale may follow in parentheses: `N {want.text} (M {got.text})`"
                + (
                    ""
                    if declared
                    else f"; a value recorded in {got.text} is read only if the fact declares "
                    f'`convert {got.text} to {want.text} as A x + B source "..."`'
                ),
            )
            return
        if {want.dims, got.dims} == {TIME, CALENDAR}:
            self.err(
                "E305",
                f"`{got.text}` is {describe(got.dims)} but {against} is {describe(want.dims)}",
                span,
                label="calendar and fixed durations do not mix",
                hint="months and years vary in length: write both in days/weeks or both in "
                "months/years",
            )
            return
        if mass_substance_pair(want, got):
            field = subject is not None and self.r.refs.get(id(subject), Ref("", "")).kind == (
                "field"
            )
            self.err(
                "E304",
                f"`{got.text}` is {describe(got.dims)} but {against} is {describe(want.dims)}",
                span,
                label="a list's field has no molar mass" if field else "needs a molar mass",
                hint=(
                    # a molar mass belongs to a quantity fact; a list's fields have none
                    # (records of the list are read in the field's unit only)
                    f"a list's field has no molar mass, so {got.text} cannot be checked or "
                    f"converted here: write the threshold in {want.text} only (keep the other "
                    "unit in the criterion's text), or declare the analyte as its own "
                    '`quantity` fact with `molar mass ... source "..."`'
                    if field
                    else "declare the analyte's molar mass on the fact: "
                    '`molar mass 113.12 g/mol source "..."`'
                ),
            )
            return
        self.err(
            "E302",
            f"`{got.text}` is {describe(got.dims)}, but {against} is in {want.text} "
            f"({describe(want.dims)})",
            span,
            label="wrong dimension",
            hint=(
                # mEq <-> mmol needs the ion's valence (ucum.py, `eq`): a scale declaration
                f"an equivalent is a mole of charge (1 mmol = z mEq for valence z): declare "
                f'`convert {got.text} to {want.text} as A x + 0 source "..."` on the fact '
                "(A = 1/z for mmol)"
                if any(d == "[eq]" for d, _ in (*got.dims, *want.dims))
                else f"write this in a unit like {want.text}"
            ),
        )

    def subject_fact(self, e: n.Expr) -> FactInfo | None:
        if isinstance(e, n.Name) and self.r.refs.get(id(e), Ref("", "")).kind == "fact":
            return self.r.facts[e.name]
        return None

    def compare(
        self,
        op: str,
        left: n.Expr,
        right: n.Expr,
        span: Span,
        scope: dict,
        check_subject: bool = True,
    ) -> None:
        lt = self.expr(left, scope) if check_subject else self.r.types.get(id(left), ErrorT())
        rt = self.expr(right, scope, expected=lt)
        if isinstance(lt, ErrorT) or isinstance(rt, ErrorT):
            return
        if isinstance(rt, (EnumT, ScaleT)) and not isinstance(lt, (EnumT, ScaleT)):
            lt, rt, left, right = rt, lt, right, left  # "female = sex"
        if isinstance(lt, QuantT) and isinstance(right, n.DualQuantityLit):
            self.dual(left, lt, right)
            return
        if isinstance(lt, QuantT) and isinstance(rt, QuantT):
            if not lt.unit.same_dimension(rt.unit):
                fact = self.subject_fact(left)
                if not (mass_substance_pair(lt.unit, rt.unit) and fact and fact.molar_mass):
                    self.dimension_error(
                        right.span, lt.unit, rt.unit, self.subject_words(left), fact, left
                    )
            return
        if isinstance(lt, QuantT) and isinstance(rt, NUMERIC):
            self.err(
                "E303",
                f"this number has no unit, but {self.subject_words(left)} is in {lt.unit.text}",
                right.span,
                label="unit missing",
                hint=f"write the unit: `{getattr(right, 'text', '...')} {lt.unit.text}`"
                + (
                    "; if the protocol text gives none, say which you chose in an `assume`"
                    if isinstance(right, n.NumberLit)
                    else ""
                ),
            )
            return
        if isinstance(lt, NUMERIC) and isinstance(rt, QuantT):
            self.err(
                "E303",
                f"{self.subject_words(left)} is a plain number, but this has a unit "
                f"({rt.unit.text})",
                right.span,
                label="unexpected unit",
                hint="declare the fact as `quantity UNIT` or drop the unit",
            )
            return
        if isinstance(lt, IntT) and isinstance(right, n.NumberLit):
            self.int_range(op, lt, right)
            return
        if isinstance(lt, NUMERIC) and isinstance(rt, NUMERIC):
            return
        if isinstance(lt, EnumT) and op not in ("=", "!="):
            self.err(
                "E202",
                f"`{op}` needs an order, but {lt.describe()} has none",
                span,
                hint="use `=`, `!=` or `in {...}`; declare a `scale` if the categories are ordered",
            )
            return
        if isinstance(lt, BoolT) and isinstance(rt, BoolT) and op not in ("=", "!="):
            self.err("E202", f"`{op}` is not defined for yes/no values", span)
            return
        if isinstance(lt, ListT):
            self.err(
                "E202",
                "a list cannot be compared directly",
                left.span,
                hint="use `any/all/no ... with (...)`",
            )
            return
        if not same_kind(lt, rt):
            self.err(
                "E201",
                f"cannot compare {lt.describe()} with {rt.describe()}",
                right.span,
                label="wrong kind of value",
            )

    def subject_words(self, e: n.Expr) -> str:
        if isinstance(e, n.Name):
            return f"`{e.name}`"
        if isinstance(e, n.Call):
            return f"`{e.func}(...)`"
        return "the left side"

    def int_range(self, op: str, t: IntT, lit: n.NumberLit) -> None:
        v = lit.value
        if v.denominator != 1 or not (t.low <= v <= t.high):
            self.err(
                "E401",
                f"{lit.text} is outside the declared range {t.low}..{t.high}",
                lit.span,
                label="impossible value",
            )
            return
        never = (op == ">" and v == t.high) or (op == "<" and v == t.low)
        if never:
            self.warn(
                "W401",
                f"`{op} {lit.text}` can never be true: the declared range is {t.low}..{t.high}",
                lit.span,
            )

    def dual(self, left: n.Expr, lt: QuantT, lit: n.DualQuantityLit) -> None:
        fact = self.subject_fact(left)
        molar = fact.molar_mass if fact else None
        values = []
        for part in (lit.primary, lit.secondary):
            t = self.r.types.get(id(part))
            if not isinstance(t, QuantT):
                return  # unknown unit, already reported
            # the primary is the value applied: only a unit conversion may reach it; the
            # secondary is only checked, also through a declared scale or a temperature
            if part is lit.primary:
                f = conversion_factor(t.unit, lt.unit, molar)
                c = None if f is None else Affine(f, Fraction(0))
            else:
                c = conversion(t.unit, lt.unit, molar, fact.scales if fact else ())
            if c is None:
                self.dimension_error(
                    part.span, lt.unit, t.unit, self.subject_words(left), fact, left
                )
            values.append(None if c is None else c(part.value))
        a, b = values
        if a is None or b is None:
            return
        kelvin = kelvin_size(lt.unit)
        if kelvin is not None:
            self.temperature_pair(lit, lt, a, b, kelvin)
            return
        rel = abs(a - b) / abs(a) if a else abs(b)
        self.r.dual_checks.append(DualCheck(lit, a, b, rel))
        if rel > self.tolerance:
            self.disagree(
                lit,
                lt,
                b,
                f"{float(rel) * 100:.2g}% (tolerance {float(self.tolerance) * 100:.2g}%)",
            )

    def temperature_pair(
        self, lit: n.DualQuantityLit, lt: QuantT, a: Fraction, b: Fraction, kelvin: Fraction
    ) -> None:
        """W301 for a temperature written on two scales, by absolute difference.

        A temperature is on an interval scale (Cel, [degF]: UCUM special units with an
        offset), so a relative difference means nothing (0.33 Cel is 0.88 % of 38 Cel and
        100 % of 0.33 Cel). The pair agrees when the two differ by at most 0.1 K (0.1 Cel,
        0.18 [degF]) or by half a unit of the second value's last written digit (101 [degF]
        stands for 100.5 to 101.5): 38.0 Cel (100.4 [degF]) and 38.3 Cel (101 [degF]) agree,
        38.0 Cel (101.0 [degF]) does not (two published fever thresholds)."""
        second = self.r.types.get(id(lit.secondary))
        digit = _last_digit(lit.secondary.number_text)
        second_k = kelvin_size(second.unit) if isinstance(second, QuantT) else None
        allowed = max(TEMPERATURE_TOLERANCE, digit / 2 * (second_k or 0))
        apart = abs(a - b) * kelvin
        rel = abs(a - b) / abs(a) if a else abs(b)
        self.r.dual_checks.append(DualCheck(lit, a, b, rel))
        if apart <= allowed:
            return
        self.disagree(
            lit,
            lt,
            b,
            f"{float(abs(a - b)):.2g} {lt.unit.text} (tolerance for temperatures: "
            f"{float(allowed / kelvin):.2g} {lt.unit.text})",
        )

    def disagree(self, lit: n.DualQuantityLit, lt: QuantT, b: Fraction, by: str) -> None:
        """W301: the two values of a dual-unit threshold differ by `by` (beyond tolerance)."""
        self.warn(
            "W301",
            f"{lit.primary.text} and {lit.secondary.text} differ by {by}",
            lit.span,
            label="the first value is the one applied",
            notes=(f"{lit.secondary.text} is {float(b):.4g} {lt.unit.text}",),
            hint="check both values against the protocol; the first one decides",
        )

    def arith(self, e: n.Arith, scope: dict) -> Type:
        a = self.expr(e.left, scope)
        b = self.expr(e.right, scope)
        if isinstance(a, ErrorT) or isinstance(b, ErrorT):
            return ErrorT()
        for side, t in ((e.left, a), (e.right, b)):
            if not isinstance(t, (*NUMERIC, QuantT)):
                return self.err("E201", f"cannot do arithmetic on {t.describe()}", side.span)
        if e.op in "+-":
            if isinstance(a, QuantT) and isinstance(b, QuantT):
                if not a.unit.same_dimension(b.unit):
                    self.dimension_error(e.right.span, a.unit, b.unit, "the left side")
                    return ErrorT()
                return a
            if isinstance(a, QuantT) or isinstance(b, QuantT):
                q = a if isinstance(a, QuantT) else b
                return self.err(
                    "E303",
                    f"cannot add a plain number to a quantity in {q.unit.text}",  # type: ignore[union-attr]
                    e.span,
                    hint="take the number out first: `(x in UNIT)`",
                )
            return NumberT()
        if isinstance(a, QuantT) or isinstance(b, QuantT):
            ua = a.unit if isinstance(a, QuantT) else Unit("", Fraction(1), ())
            ub = b.unit if isinstance(b, QuantT) else Unit("", Fraction(1), ())
            sign = 1 if e.op == "*" else -1
            dims = mul_dims(ua.dims, ub.dims, sign)
            factor = ua.factor * ub.factor**sign
            text = f"{ua.text or '1'}{e.op}{ub.text or '1'}"
            return QuantT(Unit(text, factor, dims))
        return NumberT()


# Temperatures written on two scales agree within 0.1 K (= 0.1 Cel = 0.18 [degF]): fever
# thresholds are written to a tenth of a degree Celsius (37.8, 38.0, 38.3), and thermometers
# display that step; or within the written precision of the second value, if larger.
TEMPERATURE_TOLERANCE = Fraction(1, 10)


def kelvin_size(u: Unit) -> Fraction | None:
    """How many kelvin one step of `u` is, when `u` is a temperature; else None."""
    if u.dims == (("[temperature]", 1),):
        return u.factor
    if len(u.dims) != 1 or not u.dims[0][0].startswith("[scale:"):
        return None  # no temperature scale (temperature_conversion would say None too)
    # "K" is read from UCUM's essence file (~15 ms): parsed when a scale is met, not at
    # import, so that a command comparing no temperatures never reads that file
    step = temperature_conversion(u, parse_unit("K"))
    return None if step is None else step[0]


def _last_digit(number_text: str) -> Fraction:
    """The size of the last written digit: 1 for "101", 1/10 for "100.4"."""
    mantissa = number_text.lower().split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return Fraction(1, 10**decimals)
