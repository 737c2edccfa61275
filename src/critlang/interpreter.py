"""The reference interpreter: walks the AST with pint quantities and exact fractions.

Slow on purpose-free grounds: it shares nothing with the compiler but the checked AST
and the record reader, does its own unit handling through pint, its own calendar
arithmetic and its own three-valued logic. Tests demand that it and the compiled
evaluator agree on every patient: it is the differential oracle. It also records, for
each criterion, the sub-clause that decided it, which explanations show.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction
from typing import Any

from . import nodes as n
from .backends.runtime import ELIGIBLE, INELIGIBLE, NA, UNDETERMINED
from .checker import CheckResult, Ref
from .data.records import Observation, Ongoing, PartialDate, Record
from .intervals import Iv, as_iv, both
from .intervals import arith as iv_arith
from .intervals import compare as iv_compare
from .typesys import ListT, QuantT, ScaleT
from .units import _registry, parse_unit, pint_base_unit


def _shift_months(d: dt.date, months: int) -> int:
    """Day number of d shifted by calendar months, the day clamped to the month's end.

    Outside the calendar's years 1-9999 the shift is approximated by the mean month
    (30.436875 days), as the compiled runtime does.
    """
    y, m = divmod(d.year * 12 + d.month - 1 + months, 12)
    if not 1 <= y <= 9999:
        return d.toordinal() + round(months * 30.436875)
    for day in range(d.day, 0, -1):
        try:
            return dt.date(y, m + 1, day).toordinal()
        except ValueError:
            continue
    raise AssertionError(d)  # every month has a 28th


def _completed_years(a: dt.date, b: dt.date) -> int:
    years = b.year - a.year
    if (b.month, b.day) < (a.month, a.day):
        years -= 1
    return years


_CTX = Context(prec=60)


def _sig(x: Fraction) -> Fraction:
    """Exact value rounded to 12 significant digits (the compiled code's `sig`)."""
    if x == 0:
        return x
    d = _CTX.divide(Decimal(x.numerator), Decimal(x.denominator))
    exp = d.adjusted() - 11
    return Fraction(d.quantize(Decimal(1).scaleb(exp), rounding=ROUND_HALF_EVEN))


class Interpreter:
    def __init__(self, checked: CheckResult) -> None:
        self.c = checked
        self.ureg = _registry()
        self._units: dict[tuple[tuple[str, int], ...], Any] = {}
        self.roots = n.arithmetic_roots(checked.protocol)
        # id(condition node) -> values seen, for clause coverage (`critlang test --coverage`)
        self.trace: dict[int, set[bool | None]] | None = None

    # ------------------------------------------------------------------ quantities
    def base_unit(self, dims: tuple[tuple[str, int], ...]) -> Any:
        if dims not in self._units:
            expr = " * ".join(f"{pint_base_unit(d)} ** {e}" for d, e in dims) or "dimensionless"
            self._units[dims] = self.ureg.parse_units(expr)
        return self._units[dims]

    def quantity(self, value: Fraction, unit_text: str) -> Any:
        u = parse_unit(unit_text)
        return self.ureg.Quantity(value * u.factor, self.base_unit(u.dims))

    def from_obs(self, obs: Observation) -> Any:
        assert obs.unit is not None
        q = self.ureg.Quantity(obs.value * obs.unit.factor, self.base_unit(obs.unit.dims))
        return censored(q, obs.comparator)

    def same_dims(self, a: Any, b: Any) -> bool:
        return a.dimensionality == b.dimensionality

    def molar_quantity(self, name: str | None) -> Any:
        if name is None or name not in self.c.facts:
            return None
        m = self.c.facts[name].molar_mass
        return (
            None
            if m is None
            else self.ureg.Quantity(m, self.base_unit((("[mass]", 1), ("[substance]", -1))))
        )

    def align(self, left: Any, right: Any, subject: str | None) -> Any:
        """Right in left's dimension, through the subject's molar mass when needed."""
        if isinstance(left, Iv):
            left = left.any_end()
        if isinstance(right, Iv):
            return right.map(lambda v: self.align(left, v, subject))
        if not hasattr(left, "dimensionality") or not hasattr(right, "dimensionality"):
            return right
        if self.same_dims(left, right):
            return right
        m = self.molar_quantity(subject)
        assert m is not None
        return right * m if self.same_dims(left, right * m) else right / m

    # ------------------------------------------------------------------ evaluation
    def run(self, record: Record) -> tuple[str, tuple[Any, ...], dict[str, n.Expr | None]]:
        """(verdict, statuses, deciding sub-clause per criterion) for one record.

        Conflicting candidates (record.alternatives): every combination is evaluated and
        each criterion keeps the status all of them give, else unknown. A deceased
        patient (record.deceased) is never eligible; a perhaps-deceased one not yet.
        """
        worlds: list[Record] = [record]
        for name in sorted(record.alternatives):
            worlds = [
                replace(w, facts={**w.facts, name: obs}, alternatives={})
                for w in worlds
                for obs in record.alternatives[name]
            ]
        runs = [self.run_one(w) for w in worlds]
        verdict, statuses, deciders = runs[0]
        if len(runs) > 1:
            statuses = tuple(
                column[0] if all(x is column[0] for x in column) else None
                for column in zip(*(r[1] for r in runs), strict=True)
            )
            verdict = self.verdict(statuses)
        if record.deceased is True:
            verdict = INELIGIBLE
        elif record.deceased is None and verdict == ELIGIBLE:
            verdict = UNDETERMINED
        return verdict, statuses, deciders

    def verdict(self, statuses: tuple[Any, ...]) -> str:
        kinds = [k for k, _ in self.c.protocol.criteria]
        bad = any(
            (s is False if k == "inclusion" else s is True)
            for k, s in zip(kinds, statuses, strict=True)
        )
        return INELIGIBLE if bad else UNDETERMINED if any(s is None for s in statuses) else ELIGIBLE

    def run_one(self, record: Record) -> tuple[str, tuple[Any, ...], dict[str, n.Expr | None]]:
        self.record = record
        statuses: list[Any] = []
        deciders: dict[str, n.Expr | None] = {}
        for kind, c in self.c.protocol.criteria:
            status, decider = self.criterion(kind, c)
            statuses.append(status)
            deciders[c.id] = decider
        kinds = [k for k, _ in self.c.protocol.criteria]
        bad = any(
            (s is False if k == "inclusion" else s is True)
            for k, s in zip(kinds, statuses, strict=True)
        )
        verdict = (
            INELIGIBLE if bad else UNDETERMINED if any(s is None for s in statuses) else ELIGIBLE
        )
        return verdict, tuple(statuses), deciders

    def criterion(self, kind: str, c: n.Criterion) -> tuple[Any, n.Expr | None]:
        env: dict[str, Any] = {}
        assert c.rule is not None
        if c.applies is None:
            return self.cond(c.rule, env)
        a, adec = self.cond(c.applies, env)
        if a is False:
            return NA, adec
        r, rdec = self.cond(c.rule, env)
        harmless = kind == "inclusion"
        if a is True or r is harmless:
            return r, rdec
        return None, adec if a is None else rdec

    def fact(self, name: str) -> Any:
        if name == "arm" and name not in self.record.facts:
            return None
        obs = self.record.facts.get(name)
        if obs is None:
            return None
        t = self.c.facts[name].type if name in self.c.facts else None
        if isinstance(t, QuantT):
            # recorded in another dimension (umol/L for a mg/dL fact): via the molar mass
            declared = self.ureg.Quantity(1, self.base_unit(t.unit.dims))
            return self.align(declared, self.from_obs(obs), name)
        if isinstance(t, ListT):
            return obs.value
        if obs.comparator is not None:  # a censored plain number
            return censored(obs.value, obs.comparator)
        return plain(obs.value, self.record.anchors.get("enrollment"))

    def ref(self, e: n.Name) -> Ref:
        return self.c.refs[id(e)]

    def value(self, e: n.Expr, env: dict[str, Any]) -> Any:
        if isinstance(e, n.NumberLit):
            return e.value
        if isinstance(e, n.QuantityLit):
            return self.quantity(e.value, e.unit)
        if isinstance(e, n.DualQuantityLit):
            return self.value(e.primary, env)
        if isinstance(e, n.DateLit):
            return e.value
        if isinstance(e, n.BoolLit):
            return e.value
        if isinstance(e, n.Name):
            r = self.ref(e)
            if r.kind == "member":
                return r.name
            if r.kind in ("param", "field"):
                v = env[r.name]
                if isinstance(v, Observation):
                    return self.from_obs(v)
                return plain(v, self.record.anchors.get("enrollment"))
            if r.kind in ("fact", "arm"):
                return self.fact(r.name)
            if r.kind == "anchor":
                return self.record.anchors.get(r.name)
            if r.kind == "define":
                return self.value(self.c.defines[r.name].body, {})
            if r.kind == "assume":
                return self.value(self.c.assumed[r.name].value, {})
            raise AssertionError(r)
        if isinstance(e, n.Call):
            args = [self.value(a, env) for a in e.args]
            if e.func == "elapsed_years":
                if args[0] is None or args[1] is None:
                    return None
                if isinstance(args[0], Iv) or isinstance(args[1], Iv):
                    born, then = as_iv(args[0]), as_iv(args[1])
                    if not (born.bounded and then.bounded):
                        return None
                    # completed years grow with the end and shrink with the start
                    least = _completed_years(born.hi, then.lo)
                    most = _completed_years(born.lo, then.hi)
                    if least != most:
                        return Iv(
                            self.quantity(Fraction(least), "years"),
                            self.quantity(Fraction(most), "years"),
                        )
                    return self.quantity(Fraction(least), "years")
                return self.quantity(Fraction(_completed_years(args[0], args[1])), "years")
            d = self.c.defines[e.func]
            assert d.params is not None
            inner = {p.name: a for p, a in zip(d.params, args, strict=True)}
            return self.value(d.body, inner)
        if isinstance(e, n.Magnitude):
            q = self.value(e.expr, env)
            if q is None:
                return None
            u = parse_unit(e.unit)

            def magnitude(q: Any) -> Fraction:
                assert q.dimensionality == self.base_unit(u.dims).dimensionality, e.unit
                return Fraction(q.to_base_units().magnitude) / u.factor

            return q.map(magnitude) if isinstance(q, Iv) else magnitude(q)
        if isinstance(e, n.WithUnit):
            x = self.value(e.expr, env)
            if isinstance(x, Iv):
                return x.map(lambda v: self.quantity(Fraction(v), e.unit))
            return None if x is None else self.quantity(Fraction(x), e.unit)
        if isinstance(e, n.Arith):
            a, b = self.value(e.left, env), self.value(e.right, env)
            if a is None or b is None:
                return None
            if isinstance(a, Iv) or isinstance(b, Iv):
                r = iv_arith(e.op, a, b)
                return None if r is None else self.rounded(r, e)
            if e.op == "/" and (b == 0 if not hasattr(b, "magnitude") else b.magnitude == 0):
                return None
            if e.op == "+":
                r = a + b
            elif e.op == "-":
                r = a - b
            elif e.op == "*":
                r = a * b
            else:
                r = a / b
            return self.rounded(r, e)
        if isinstance(e, n.Neg):
            x = self.value(e.operand, env)
            if isinstance(x, Iv):
                return x.map(lambda v: -v, increasing=False)
            return None if x is None else -x
        if isinstance(e, n.Conditional):
            c, _ = self.cond(e.cond, env)
            if c is None:
                return None
            return self.value(e.then if c else e.otherwise, env)
        if isinstance(e, n.FirstAvailable):
            for option in e.options:
                v = self.value(option, env)
                if v is not None:
                    return v
            return None
        v, _ = self.cond(e, env)
        return v

    def rounded(self, r: Any, e: n.Arith) -> Any:
        if id(e) not in self.roots:
            return r
        if isinstance(r, Iv):  # each bound rounded; a rounded bound may be reached
            ends = r.map(lambda v: self.rounded(v, e))
            return Iv(ends.lo, ends.hi)
        t = self.c.types.get(id(e))
        if isinstance(t, QuantT):
            base = Fraction(r.to_base_units().magnitude)
            in_carrier = _sig(base / t.unit.factor)
            return self.ureg.Quantity(in_carrier * t.unit.factor, self.base_unit(t.unit.dims))
        return _sig(Fraction(r))

    # ------------------------------------------------------------------ conditions
    def cond(self, e: n.Expr, env: dict[str, Any]) -> tuple[bool | None, n.Expr | None]:
        """(Kleene value, the sub-expression that decided it); recorded when tracing."""
        value, decider = self._cond(e, env)
        if self.trace is not None:
            self.trace.setdefault(id(e), set()).add(value)
        return value, decider

    def _cond(self, e: n.Expr, env: dict[str, Any]) -> tuple[bool | None, n.Expr | None]:
        if isinstance(e, n.Not):
            v, d = self.cond(e.operand, env)
            return (None if v is None else not v), d
        if isinstance(e, (n.And, n.Or, n.Unless)):
            if isinstance(e, n.Unless):
                a, ad = self.cond(e.rule, env)
                b0, bd = self.cond(e.exception, env)
                b = None if b0 is None else not b0
                stop = False
            else:
                a, ad = self.cond(e.left, env)
                b, bd = self.cond(e.right, env)
                stop = isinstance(e, n.Or)
            if a is stop:
                return stop, ad
            if b is stop:
                return stop, bd
            if a is None:
                return None, ad
            if b is None:
                return None, bd
            return (not stop), bd
        if isinstance(e, n.Compare):
            return self.compare(e, env), e
        if isinstance(e, n.Between):
            x = self.value(e.subject, env)
            lo, hi = self.value(e.low, env), self.value(e.high, env)
            if x is None or lo is None or hi is None:
                return None, e
            subject = self.subject_name(e.subject)
            lo, hi = self.align(x, lo, subject), self.align(x, hi, subject)
            if isinstance(x, Iv) or isinstance(lo, Iv) or isinstance(hi, Iv):
                return both(iv_compare("<=", lo, x), iv_compare("<=", x, hi)), e
            return bool(lo <= x <= hi), e
        if isinstance(e, n.Member):
            x = self.value(e.subject, env)
            if x is None:
                return None, e
            return (x in e.members) != e.negated, e
        if isinstance(e, n.IsKnown):
            return self.value(e.subject, env) is not None, e
        if isinstance(e, n.CompareRef):
            assert isinstance(e.left, n.Name)
            x = self.value(e.left, env)
            low, high = self.limits(e.left.name)
            limit = high if e.limit == "ULN" else low
            if x is None or limit is None:
                return None, e
            if isinstance(x, Iv):
                return iv_compare(e.op, x, limit * e.factor.value), e
            return self.op(e.op, x, limit * e.factor.value), e
        if isinstance(e, n.InNormalRange):
            assert isinstance(e.subject, n.Name)
            x = self.value(e.subject, env)
            low, high = self.limits(e.subject.name)
            if x is None or (low is None and high is None):
                return None, e
            if isinstance(x, Iv):
                return both(
                    True if low is None else iv_compare("<=", low, x),
                    True if high is None else iv_compare("<=", x, high),
                ), e
            return (low is None or low <= x) and (high is None or x <= high), e
        if isinstance(e, n.Window):
            return self.window(e, env), e
        if isinstance(e, n.Order):
            d, a = self.value(e.subject, env), self.value(e.anchor, env)
            if d is None or a is None:
                return None, e
            if isinstance(d, Iv) or isinstance(a, Iv):
                return iv_compare("<" if e.direction == "before" else ">", d, a), e
            return (d < a if e.direction == "before" else d > a), e
        if isinstance(e, n.Quantified):
            return self.quantified(e, env), e
        v = self.value(e, env)
        return v, e

    def subject_name(self, e: n.Expr) -> str | None:
        if isinstance(e, n.Name) and self.c.refs.get(id(e), Ref("", "")).kind == "fact":
            return e.name
        return None

    def op(self, op: str, a: Any, b: Any) -> bool:
        if op == "<":
            return bool(a < b)
        if op == "<=":
            return bool(a <= b)
        if op == ">":
            return bool(a > b)
        if op == ">=":
            return bool(a >= b)
        if op == "=":
            return bool(a == b)
        return bool(a != b)

    def compare(self, e: n.Compare, env: dict[str, Any]) -> bool | None:
        a, b = self.value(e.left, env), self.value(e.right, env)
        if a is None or b is None:
            return None
        t = self.c.types.get(id(e.left))
        if isinstance(t, ScaleT):
            a, b = t.members.index(a), t.members.index(b)
        b = self.align(a, b, self.subject_name(e.left))
        if isinstance(a, Iv) or isinstance(b, Iv):
            return iv_compare(e.op, a, b)
        return self.op(e.op, a, b)

    def limits(self, name: str) -> tuple[Any, Any]:
        """The reference range of a fact, in the fact's declared dimension."""
        obs = self.record.facts.get(name)
        info = self.c.facts[name]
        assert isinstance(info.type, QuantT)
        declared = self.ureg.Quantity(1, self.base_unit(info.type.unit.dims))
        lo = hi = None
        if obs is not None and (obs.low is not None or obs.high is not None):
            unit_text = obs.unit.text if obs.unit else ""
            lo = None if obs.low is None else self.quantity(obs.low, unit_text)
            hi = None if obs.high is None else self.quantity(obs.high, unit_text)
        else:
            default = info.node.option("refrange")
            if default is not None and default.quantity and default.high:
                lo = self.quantity(default.quantity.value, default.quantity.unit)
                hi = self.quantity(default.high.value, default.high.unit)
        return (
            None if lo is None else self.align(declared, lo, name),
            None if hi is None else self.align(declared, hi, name),
        )

    def window(self, e: n.Window, env: dict[str, Any]) -> bool | None:
        d, a = self.value(e.subject, env), self.value(e.anchor, env)
        if d is None or a is None:
            return None
        dur = self.quantity(e.duration.value, e.duration.unit)
        sign = -1 if e.direction == "before" else 1

        def edge_of(a: dt.date) -> Fraction | int:
            if dur.dimensionality == self.base_unit((("[calendar]", 1),)).dimensionality:
                months = Fraction(dur.to_base_units().magnitude)
                assert months.denominator == 1, "fractional months are approximated"
                return _shift_months(a, sign * int(months))
            return a.toordinal() + sign * Fraction(dur.to_base_units().magnitude) / 86400

        if isinstance(d, Iv) or isinstance(a, Iv):
            return self.interval_window(e, as_iv(d), as_iv(a), edge_of)
        edge = edge_of(a)
        # compared as day numbers: an edge may fall outside the calendar (year 1 - 9999)
        d, a = d.toordinal(), a.toordinal()
        if e.direction == "before":
            if e.kind == "within":
                return edge <= d <= a
            if e.kind == "more":
                return d < edge
            return edge < d <= a
        if e.kind == "within":
            return a <= d <= edge
        if e.kind == "more":
            return d > edge
        return a <= d < edge

    def interval_window(self, e: n.Window, d: Iv, a: Iv, edge_of: Any) -> bool | None:
        """A window test where a date is only known as an interval of days.

        An ongoing exposure's end meets `before A` windows as if it ended at A (no later):
        lasting up to A or beyond is at least as recent as ending at A.
        """
        day = lambda x: x if isinstance(x, (int, Fraction)) else x.toordinal()  # noqa: E731
        d, a = d.map(day), a.map(day)
        edge = Iv(
            None if a.lo is None else edge_of(dt.date.fromordinal(a.lo)),
            None if a.hi is None else edge_of(dt.date.fromordinal(a.hi)),
        )
        if e.direction == "before" and d.ongoing:
            lo = a.lo if d.lo is None else min(d.lo, a.lo)
            hi = a.hi if d.hi is None else min(d.hi, a.hi)
            d = Iv(lo, hi)
        if e.direction == "before":
            if e.kind == "within":
                return both(iv_compare("<=", edge, d), iv_compare("<=", d, a))
            if e.kind == "more":
                return iv_compare("<", d, edge)
            return both(iv_compare("<", edge, d), iv_compare("<=", d, a))
        if e.kind == "within":
            return both(iv_compare("<=", a, d), iv_compare("<=", d, edge))
        if e.kind == "more":
            return iv_compare(">", d, edge)
        return both(iv_compare("<=", a, d), iv_compare("<", d, edge))

    def quantified(self, e: n.Quantified, env: dict[str, Any]) -> bool | None:
        items = self.fact(e.list_name)
        if items is None:
            return None
        yes = unknown = no = 0
        for item in items:
            inner = dict(env)
            inner.update(item)
            v, _ = self.cond(e.body, inner)
            if v is None:
                unknown += 1
            elif v:
                yes += 1
            else:
                no += 1
        total = len(items)
        q = e.quantifier
        if q == "any":
            return True if yes else (None if unknown else False)
        if q == "no":
            return False if yes else (None if unknown else True)
        if q == "all":
            return False if no else (None if unknown else True)
        if q == "majority":
            if 2 * yes > total:
                return True
            return False if 2 * (yes + unknown) <= total else None
        k = e.count or 0
        return True if yes >= k else (False if yes + unknown < k else None)


def censored(value: Any, comparator: str | None) -> Any:
    """A recorded value with a FHIR Quantity.comparator: the interval it stands for."""
    if comparator is None:
        return value
    if comparator in ("<", "<="):
        return Iv(None, value, hi_open=comparator == "<")
    return Iv(value, None, lo_open=comparator == ">")


def plain(value: Any, as_of: dt.date | None) -> Any:
    """A partial date or an ongoing end as an interval of dates; other values as they are."""
    if isinstance(value, PartialDate):
        return Iv(value.first, value.last)
    if isinstance(value, Ongoing):
        return Iv(value.since, None, ongoing=True)
    return value
