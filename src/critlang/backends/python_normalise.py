"""Python back end, part 1 of 3: normalisers, a record's observations as the plain
values the compiled `evaluate(f)` reads (numbers in the fact's declared unit, dates as
day numbers, partial dates and censored values as `runtime.Range`).

Used by `Compiled.normalise` (backends/python.py) and by the SQL back end's ingest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any

from .. import nodes as n
from ..checker import CheckResult
from ..data.records import Bound, Observation, Ongoing, PartialDate
from ..data.signs import never_negative
from ..data.values import float_holds
from ..typesys import DateT, IntT, ListT, NumberT, PressureT, QuantT, ScaleT, Type
from ..units import Unit, conversion_factor, parse_unit
from . import runtime


def _range_limits(obs: Observation | None, checked: CheckResult, name: str) -> tuple[Any, Any]:
    """The reference limits (low, high) `x ULN` and `within normal range` read, as floats
    in the fact's declared unit (None: unknown)."""
    low, high = _exact_limits(obs, checked, name)
    return (None if low is None else float(low), None if high is None else float(high))


def limit_key(name: str, limit: str, factor: Fraction) -> str:
    """The record key of `factor x ULN` (limit "ULN") or `x LLN` of fact `name`: the
    product computed exactly, then rounded once (`name#high*3/2`)."""
    return f"{name}#{'high' if limit == 'ULN' else 'low'}*{factor}"


def limit_products(checked: CheckResult) -> tuple[tuple[str, str, str, Fraction], ...]:
    """(key, fact, "low"/"high", factor) for every `factor x ULN/LLN` the protocol reads.

    1.5 x ULN of a range up to 1.2 is 1.8: in floats 1.5 * 1.2 is 1.7999999999999998,
    below a recorded 1.8 (a wrong "not met" on the boundary). The product is therefore
    made from the exact limit, once, and rounded to the float nearest to it, as every
    literal threshold is; both back ends read it."""
    out = set()
    for e in checked.protocol.walk():
        if isinstance(e, n.CompareRef) and isinstance(e.left, n.Name):
            which = "high" if e.limit == "ULN" else "low"
            out.add(
                (
                    limit_key(e.left.name, e.limit, e.factor.value),
                    e.left.name,
                    which,
                    e.factor.value,
                )
            )
    return tuple(sorted(out))


def limit_product(
    obs: Observation | None, checked: CheckResult, name: str, which: str, factor: Fraction
) -> float | None:
    """float(factor x the limit), exact until that one rounding; None when unknown."""
    low, high = _exact_limits(obs, checked, name)
    limit = high if which == "high" else low
    return None if limit is None else float(factor * limit)


def _exact_limits(
    obs: Observation | None, checked: CheckResult, name: str
) -> tuple[Fraction | None, Fraction | None]:
    info = checked.facts[name]
    t = info.type
    if not isinstance(t, (QuantT, NumberT)):
        return None, None
    low = high = None
    unit = None
    if obs is not None and obs.range_unknown:
        # ranges were reported but none is surely this patient's (data/reader_ranges.py):
        # unknown, never the protocol's default in their place
        return None, None
    if isinstance(t, NumberT):  # the INR's reported range (reader_ranges.number_range)
        return (None, None) if obs is None else (obs.low, obs.high)
    if obs is not None and (obs.low is not None or obs.high is not None):
        low, high, unit = obs.low, obs.high, obs.unit
    else:
        default = info.node.option("refrange")
        if default is not None and default.quantity and default.high:
            low, high = default.quantity.value, default.high.value
            unit = parse_unit(default.quantity.unit)
            hu = parse_unit(default.high.unit)
            high = high * (conversion_factor(hu, unit, info.molar_mass) or 1)
    if unit is None:
        return None, None
    k = conversion_factor(unit, t.unit, info.molar_mass)
    if k is None:
        return None, None
    return (None if low is None else low * k, None if high is None else high * k)


def censored(bound: float, comparator: str, floor: float = -math.inf) -> runtime.Range:
    """A censored value (FHIR Quantity.comparator, a modifier element) as the Range of
    values it stands for; the other side is unbounded (nothing is assumed about it) but
    for `floor`: 0 for a quantity that is never negative (data/signs.py), "< 1.5 mg/dL"
    is then 0 to 1.5, 0 included."""
    inf = float("inf")
    if comparator in ("<", "<="):
        return runtime.Range(floor, bound, False, comparator == "<")
    return runtime.Range(bound, inf, comparator == ">", False)


def inexact(x: float, comparator: str | None, floor: float = -math.inf) -> runtime.Range:
    """A recorded decimal a float cannot hold (data.values.float_holds), `x` its nearest
    float: the open interval between x's neighbouring floats, which holds the exact value
    and decides a comparison exactly when the threshold's float is not x itself (float
    rounding is monotonic). So 99.99999999999999999 never meets `>= 100` as 100 would.
    A censored bound widens the same way on its open side."""
    inf = float("inf")
    lo, hi = math.nextafter(x, -inf), math.nextafter(x, inf)
    if comparator in ("<", "<="):
        return runtime.Range(floor, hi, False, True)
    if comparator in (">", ">="):
        return runtime.Range(lo, inf, True, False)
    return runtime.Range(lo, hi, True, True)


def _quantity_normaliser(
    t: QuantT, molar: Fraction | None, codes: Iterable[Any] = ()
) -> Callable[[Any], Any]:
    cache: dict[Unit, float | Fraction] = {}
    floor = 0.0 if never_negative(t.unit, codes) else -math.inf

    def conv(obs: Observation | None) -> Any:
        if obs is None:
            return None
        assert obs.unit is not None
        k = cache.get(obs.unit)
        if k is None:
            factor = conversion_factor(obs.unit, t.unit, molar)
            assert factor is not None  # the loader refused other units
            k = cache[obs.unit] = factor
        if not float_holds(obs.value):
            return inexact(float(obs.value * k), obs.comparator, floor)
        if obs.comparator is not None:  # the bound converts like a value (k > 0)
            return censored(float(obs.value * k), obs.comparator, floor)
        return float(obs.value * k)  # exact product, rounded once

    return conv


def _day(v: Any) -> Any:
    """A date as a day number; a partial date or an ongoing end as a runtime.Range."""
    if v is None:
        return None
    if isinstance(v, PartialDate):
        return runtime.Range(v.first.toordinal(), v.last.toordinal())
    if isinstance(v, Ongoing):
        return runtime.Range(v.since.toordinal(), float("inf"), ongoing=True)
    return v.toordinal()


def _plain_number(v: Any) -> Any:
    if isinstance(v, Fraction) and not float_holds(v):
        return inexact(float(v), None)
    return float(v)


def _number(obs: Observation, floor: float = -math.inf) -> Any:
    """A plain number; a censored or inexact one from `floor` (data/signs.py:
    number_never_negative)."""
    if isinstance(obs.value, Fraction) and not float_holds(obs.value):
        return inexact(float(obs.value), obs.comparator, floor)
    if obs.comparator is not None:
        return censored(float(obs.value), obs.comparator, floor)
    return float(obs.value)


def _scalar_normaliser(t: Type, molar: Fraction | None = None) -> Callable[[Any], Any]:
    if isinstance(t, QuantT):
        qconv = _quantity_normaliser(t, molar)
        return lambda v: qconv(v) if isinstance(v, Observation) else None
    if isinstance(t, NumberT):
        return lambda v: None if v is None else _plain_number(v)
    if isinstance(t, ScaleT):
        index = {m: i for i, m in enumerate(t.members)}
        return lambda v: None if v is None else index[v]
    if isinstance(t, DateT):
        return _day
    if isinstance(t, IntT):
        return lambda v: None if v is None else int(v)
    return lambda v: v  # bool, category string


def _pressure_normaliser(t: PressureT) -> Callable[[Observation | None], Any]:
    """(systolic, diastolic) as floats in mm[Hg], each None when not recorded, a censored
    part (records.Bound) as the runtime.Range of values it stands for, from 0 (an
    arterial pressure is never negative: data/signs.py)."""

    def part(v: Any, k: Fraction) -> Any:
        if v is None:
            return None
        if isinstance(v, Bound):  # the bound converts like a value (k > 0)
            return censored(float(v.value * k), v.comparator, 0.0)
        return float(v * k)

    def conv(obs: Observation | None) -> tuple[Any, Any] | None:
        if obs is None:
            return None
        assert obs.unit is not None
        k = conversion_factor(obs.unit, t.unit)
        assert k is not None  # the reader refused other units
        return tuple(part(v, k) for v in obs.value)  # type: ignore[return-value]

    return conv


def _normaliser(
    t: Type, molar: Fraction | None, codes: Iterable[Any] = (), nonnegative: bool = False
) -> Callable[[Observation | None], Any]:
    """The fact's normaliser; `nonnegative`: a number fact never below 0 (data/signs.py)."""
    if isinstance(t, QuantT):
        return _quantity_normaliser(t, molar, codes)
    if isinstance(t, PressureT):
        return _pressure_normaliser(t)
    if isinstance(t, ListT):
        fields = [(name, _scalar_normaliser(ft)) for name, ft in t.fields]

        def conv_list(obs: Observation | None) -> list[dict[str, Any]] | None:
            if obs is None:
                return None
            return [{name: c(item.get(name)) for name, c in fields} for item in obs.value]

        return conv_list
    if isinstance(t, NumberT):
        floor = 0.0 if nonnegative else -math.inf
        return lambda obs: None if obs is None else _number(obs, floor)
    inner = _scalar_normaliser(t)
    return lambda obs: None if obs is None else inner(obs.value)
