"""When a clinical event happened, from any R4 choice type of its time element.

`event_span(r, element, birth) -> Span | None` reads `onset[x]` / `abatement[x]` (Condition),
`performed[x]` (Procedure) or `effective[x]` (MedicationStatement, MedicationAdministration)
in every R4 choice type: dateTime, Period, Age, Range, string, boolean. The result is the
span of calendar days the event may have begun on (first..last; a full date is one day, a
partial date its month or year, an Age the year of life it names, from the birth date);
None when the element is absent. Raises `Unusable` with the reason when the value cannot be
placed in time: an invalid date (R4 datatypes.html#dateTime: "Dates SHALL be valid dates",
a time needs an offset), a string, an Age without a birth date or not in a UCUM unit of
time (R4 Age, age-1). Dates are never compared as text.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from .fhir_decode import Period, Resource
from .fhir_observation import Unusable
from .fhir_period import reversed_period
from .values import When, parse_when

UCUM = "http://unitsofmeasure.org"
# R4 Age (age-1): a UCUM unit of time; calendar units are added on the calendar
_DAYS = {"d": 1.0, "wk": 7.0, "h": 1 / 24, "min": 1 / 1440, "s": 1 / 86400}
_MONTHS = {"a": 12, "mo": 1}


class NotYet(Unusable):
    """An event recorded as having happened is dated after the screening date: it had not
    happened then, so it is not used (and, unlike an unreadable one, hides nothing)."""


@dataclass(frozen=True)
class Span:
    """The calendar days an event may have happened on, inclusive, and how it was given."""

    first: dt.date
    last: dt.date
    text: str


def when(element: str, raw: Any) -> When:
    """A FHIR date/dateTime element, or Unusable naming the element."""
    try:
        return parse_when(raw)
    except ValueError as exc:
        raise Unusable(f"{element}: {exc}") from None


def event_span(r: Resource, element: str, birth: When | None) -> Span | None:
    """The days `element`[x] of r may fall on (its start, for a Period); see the module."""
    text = getattr(r, f"{element}DateTime", None)
    if text is not None:
        w = when(f"{element}DateTime", text)
        return Span(w.first, w.last, w.text)
    period = _period(r, element)
    if period is not None:
        if period.start is not None:
            w = when(f"{element}Period.start", period.start)
            if period.end is not None:
                when(f"{element}Period.end", period.end)
                reversed_ = reversed_period(f"{element}Period", period.start, period.end)
                if reversed_ is not None:
                    raise Unusable(reversed_)
            return Span(w.first, w.last, w.text)
        if period.end is not None:  # begun on or before its end, on a day not given
            end = when(f"{element}Period.end", period.end)
            return Span(dt.date.min, end.last, f"by {end.text}")
        return None
    age = getattr(r, f"{element}Age", None)
    if age is not None:
        first, last = _age_days(f"{element}Age", age, birth)
        return Span(first, last, f"at age {_shown(age)}")
    rng = getattr(r, f"{element}Range", None)
    if rng is not None:
        if not isinstance(rng, dict) or (rng.get("low") is None and rng.get("high") is None):
            raise Unusable(f"{element}Range has neither low nor high")
        first = _age_days(f"{element}Range.low", rng["low"], birth)[0] if rng.get("low") else None
        last = _age_days(f"{element}Range.high", rng["high"], birth)[1] if rng.get("high") else None
        return Span(first or dt.date.min, last or dt.date.max, f"at age range {_shown(rng)}")
    string = getattr(r, f"{element}String", None)
    if string is not None:
        text = str(string)[:40]
        raise Unusable(f"{element}String {text!r} is text critlang cannot place in time")
    return None


def _period(r: Resource, element: str) -> Period | None:
    if element == "onset":
        raw = r.onsetPeriod
        if raw is None:
            return None
        if not isinstance(raw, dict) or not all(
            isinstance(raw.get(k), (str, type(None))) for k in ("start", "end")
        ):
            raise Unusable("onsetPeriod is not a Period")
        return Period(raw.get("start"), raw.get("end"))
    return getattr(r, f"{element}Period", None)


def _age_days(element: str, age: Any, birth: When | None) -> tuple[dt.date, dt.date]:
    """The days an age (a Quantity of time) may name: from birth + value up to the day
    before birth + value + 1 unit (an age of 60 a is the 61st year of life)."""
    if not isinstance(age, dict):
        raise Unusable(f"{element} is not an Age")
    value, code, system = age.get("value"), age.get("code"), age.get("system")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise Unusable(f"{element} value {value!r} is not a non-negative JSON number")
    if system not in (UCUM, None) or (code not in _DAYS and code not in _MONTHS):
        raise Unusable(f"{element} is not in a UCUM unit of time (a, mo, wk, d, h, min)")
    if birth is None:
        raise Unusable(f"{element} needs the patient's birth date, which is not known")
    try:
        if code in _MONTHS:
            k = _MONTHS[code]
            first = _add_months(birth.first, math.floor(value * k))
            last = _add_months(birth.last, math.ceil((value + 1) * k)) - dt.timedelta(days=1)
        else:
            k_days = _DAYS[code]
            first = birth.first + dt.timedelta(days=math.floor(value * k_days))
            last = birth.last + dt.timedelta(days=math.ceil((value + 1) * k_days))
    except (OverflowError, ValueError):
        raise Unusable(f"{element} {_shown(age)} is outside the calendar") from None
    return first, last


def _add_months(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    for d in (day.day, 30, 29, 28):  # the 31st of a shorter month: its last day
        try:
            return dt.date(year, month, d)
        except ValueError:
            if year > dt.MAXYEAR:
                raise
    raise ValueError(day)


def _shown(value: Any) -> str:
    if isinstance(value, dict) and "value" in value:
        return f"{value.get('value')} {value.get('code') or value.get('unit') or ''}".strip()
    if isinstance(value, dict):
        return "-".join(_shown(value[k]) for k in ("low", "high") if value.get(k))
    return str(value)[:40]


def past_event(span: Span, as_of: dt.date, verb: str) -> None:
    """Unusable when an event recorded as having happened may lie after the screening
    date: it had not happened then (or is impossible), so it is not used."""
    if span.first > as_of:
        raise NotYet(f"{verb} {span.text}, after the screening date {as_of.isoformat()}: not used")
    if span.last > as_of:
        raise Unusable(
            f"{verb} {span.text}, perhaps after the screening date {as_of.isoformat()}: not used"
        )
