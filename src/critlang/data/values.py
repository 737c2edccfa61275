"""Reading single values of a patient record strictly: numbers, FHIR dates and times,
partial dates, duplicate JSON keys, physiological plausibility.

Each reader returns the value or raises `ValueError` with the wording the record reader
reports as a per-fact diagnostic. Nothing here guesses: "19/2", "1_0", "120/80", "1e99999"
and 4,300-digit integers are not numbers; "2026-11-20T08:00" (a time without an offset) is
not a FHIR dateTime.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import re
from fractions import Fraction
from typing import Any

from ..frozen_classes import frozen

# --------------------------------------------------------------------------- numbers
# A JSON-style decimal (RFC 8259 section 6 number, a leading "+" and ".5" refused too):
# no fractions ("19/2"), no digit separators ("1_0"), no pairs ("120/80"), no "inf"/"nan".
# (`re` compiles it when first used: a record's numbers are mostly JSON numbers)
_NUMBER = r"-?(0|[1-9][0-9]{0,39})(\.[0-9]{1,40})?([eE][+-]?[0-9]{1,3})?"
LIMIT = Fraction(10) ** 100  # no clinical value is this large (or, inverted, this small)


def strict_number(raw: Any) -> Fraction:
    """A JSON number or a numeric string, exactly; ValueError saying why not."""
    if isinstance(raw, BadNumber):
        raise ValueError(f"{raw.text[:40]!r} is not a usable number ({raw.why})")
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str, Fraction)):
        raise ValueError(f"value {_short(raw)} is not a number")
    if isinstance(raw, Fraction):  # a JSON decimal a float cannot hold (exact_number)
        value = raw
    elif isinstance(raw, float):
        if raw != raw or raw in (float("inf"), float("-inf")):
            raise ValueError(f"value {raw!r} is not a finite number")
        value = Fraction(repr(raw))  # the decimal written in the file, not the binary float
    elif isinstance(raw, int):
        if abs(raw) >= LIMIT:
            raise ValueError("value is out of any plausible range (more than 100 digits)")
        value = Fraction(raw)
    else:
        if not re.fullmatch(_NUMBER, raw):
            raise ValueError(f"value {_short(raw)} is not a number")
        value = Fraction(raw)
    if value and not 1 / LIMIT < abs(value) < LIMIT:
        raise ValueError(f"value {_short(raw)} is out of any plausible range")
    return value


def exact_number(text: str) -> float | Fraction:
    """A JSON number's text as the decoders' `parse_float` / `float_hook`: a float when
    the float holds what is written (its shortest form reads back as the same decimal,
    always so for up to 15 significant digits), else the exact decimal as a Fraction,
    so that "99.99999999999999999" is never read as 100 (FHIR R4 datatypes.html#decimal:
    precision is significant; docs/patients.md, "Units")."""
    value = float(text)
    if len(text) < 16 or value in (float("inf"), float("-inf")):
        return value
    if repr(value) == text:
        # the float's shortest form is the text itself, so it reads back as that very
        # decimal: the usual case (writers print floats in their shortest form), decided
        # without building two Fractions (the test below gives the same answer)
        return value
    exact = Fraction(text)
    return value if Fraction(repr(value)) == exact else exact


def float_holds(value: Fraction) -> bool:
    """Whether the float nearest to a recorded decimal reads back as that decimal: if
    not, the value has more digits than a float holds and may not be compared as the
    float (the evaluators read it as the open interval between the neighbouring floats:
    backends/python_normalise.inexact, interpreter.inexact)."""
    if value.denominator == 1 and abs(value.numerator) < 2**53:
        return True
    return Fraction(repr(float(value))) == value


def _short(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


@frozen
class BadNumber:
    """A JSON number the decoder would overflow on (kept as text, refused when read)."""

    text: str
    why: str


@frozen
class Duplicate:
    """A JSON object key given more than once, with every value in file order.

    JSON (RFC 8259 section 4) leaves duplicate names undefined; the record reader treats
    them as conflicting values, never as "the last one wins".
    """

    values: tuple[Any, ...]


def _one(raw: Any) -> Any:
    """A scalar given twice with the same value is that value; else the Duplicate."""
    if isinstance(raw, Duplicate) and all(v == raw.values[0] for v in raw.values):
        return raw.values[0]
    return raw


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            prev = out[key]
            before = prev.values if isinstance(prev, Duplicate) else (prev,)
            out[key] = Duplicate((*before, value))
        else:
            out[key] = value
    return out


def _int(text: str) -> Any:
    if len(text.lstrip("-")) > 100:
        return BadNumber(text, "more than 100 digits")
    return int(text)


def _float(text: str) -> Any:
    value = exact_number(text)
    if value in (float("inf"), float("-inf")):
        return BadNumber(text, "overflows")
    return value


def _constant(text: str) -> Any:
    return BadNumber(text, "not a JSON number")  # NaN, Infinity: Python extensions


def loads(text: str) -> Any:
    """json.loads that keeps duplicate keys (as Duplicate) and refuses numbers it would
    overflow on or that JSON does not have, instead of failing or silently rounding."""
    return json.loads(
        text,
        object_pairs_hook=_pairs,
        parse_int=_int,
        parse_float=_float,
        parse_constant=_constant,
    )


# --------------------------------------------------------------------------- dates
# FHIR R4 `date` and `dateTime` (datatypes.html#date, #dateTime): YYYY, YYYY-MM, YYYY-MM-DD,
# or a full date with a time; "If hours and minutes are specified, a time zone SHALL be
# populated". Seconds are optional here (the brief's native format allows hh:mm).
_WHEN = re.compile(
    r"(?P<y>[0-9]{4})(-(?P<m>0[1-9]|1[0-2])(-(?P<d>0[1-9]|[12][0-9]|3[01])"
    r"(T(?P<H>[01][0-9]|2[0-3]):(?P<M>[0-5][0-9])(:(?P<S>[0-5][0-9]|60)(?P<f>\.[0-9]+)?)?"
    r"(?P<z>Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00))?)?)?"
)


@frozen
class When:
    """A FHIR date or dateTime as recorded.

    first, last: the calendar days it may be (equal for a full date); day: the calendar
    day in the value's own offset (None for a partial date); instant: the UTC instant of
    a dateTime with a time (None for a date without one).
    """

    text: str
    first: dt.date
    last: dt.date
    instant: dt.datetime | None = None

    @property
    def day(self) -> dt.date | None:
        return self.first if self.first == self.last else None

    @property
    def partial(self) -> bool:
        return self.first != self.last


def parse_when(raw: Any) -> When:
    """A FHIR date/dateTime; ValueError with the accepted forms when it is not one."""
    if not isinstance(raw, str) or not (m := _WHEN.fullmatch(raw)):
        raise ValueError(
            f"{_short(raw)} is not a date (YYYY, YYYY-MM, YYYY-MM-DD or "
            "YYYY-MM-DDThh:mm[:ss[.fff]] with Z or an offset +hh:mm)"
        )
    year = int(m["y"])
    if year == 0:
        raise ValueError(f"{raw!r} is not a date (year 0)")
    if m["m"] is None:
        return When(raw, dt.date(year, 1, 1), dt.date(year, 12, 31))
    month = int(m["m"])
    if m["d"] is None:
        last = calendar.monthrange(year, month)[1]
        return When(raw, dt.date(year, month, 1), dt.date(year, month, last))
    try:
        day = dt.date(year, month, int(m["d"]))
    except ValueError:
        raise ValueError(f"{raw!r} is not a date (no such day)") from None
    if m["H"] is None:
        return When(raw, day, day)
    second = min(int(m["S"] or 0), 59)  # a leap second is the last second of its minute
    # any number of fractional digits is valid (R4 dateTime regex `(\.[0-9]+)?`): cut to
    # microseconds, never rounded (rounding .9999999 up would cross into the next second)
    frac = m["f"] or ""
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    zone = m["z"]
    if zone == "Z":
        tz = dt.UTC
    else:
        sign = 1 if zone[0] == "+" else -1
        tz = dt.timezone(sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    local = dt.datetime(year, month, day.day, int(m["H"]), int(m["M"]), second, micro, tz)
    try:
        instant = local.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"{raw!r} is outside the calendar in UTC") from None
    return When(raw, day, day, instant)


# --------------------------------------------------------------------------- plausibility
@frozen
class Plausible:
    low: Fraction
    high: Fraction
    unit: str  # critlang unit text; "" for a plain number
    source: str


# Values outside these limits are not measurements of a living patient but entry or unit
# errors: the fact becomes unknown with a diagnostic. Keyed by LOINC code (the fact's
# `codes ... loinc` bindings). The limits are deliberately far outside anything reported
# as survived, so that no real value is refused; where no published extreme is cited, the
# row says "assumption" and gives the reasoning.
PLAUSIBLE: dict[str, Plausible] = {}


def _add(codes: tuple[str, ...], low: int, high: int, unit: str, source: str) -> None:
    for code in codes:
        PLAUSIBLE[code] = Plausible(Fraction(low), Fraction(high), unit, source)


_add(
    ("29463-7", "3141-9"),
    0,
    700,
    "kg",
    "heaviest person recorded, 635 kg (Jon Brower Minnoch; Guinness World Records)",
)
_add(
    ("8302-2",),
    0,
    300,
    "cm",
    "tallest person recorded, 272 cm (Robert Wadlow; Guinness World Records)",
)
_add(
    ("2345-7", "2339-0", "1558-6"),
    0,
    5000,
    "mg/dL",
    "highest blood glucose survived, 2656 mg/dL (147.6 mmol/L; Guinness World Records, 2008)",
)
_add(
    ("718-7", "59260-0"),
    0,
    30,
    "g/dL",
    "assumption: above 30 g/dL blood could not flow (haematocrit ~90%); polycythaemia "
    "case reports stay below 26 g/dL",
)
_add(
    ("777-3", "26515-7"),
    0,
    10000,
    "x10^9/L",
    "assumption: 10x the highest thrombocytosis in case reports (~4000 x10^9/L)",
)
_add(
    ("6690-2", "26464-8"),
    0,
    2000,
    "x10^9/L",
    "assumption: twice the highest hyperleukocytosis in leukaemia case reports (~1000 x10^9/L)",
)
_add(
    ("2160-0", "38483-4", "14682-9"),
    0,
    100,
    "mg/dL",
    "assumption: about 3x the highest creatinine in renal-failure case reports (~35 mg/dL)",
)
_add(
    ("1975-2", "14631-6"),
    0,
    150,
    "mg/dL",
    "assumption: about 1.5x the highest bilirubin in case reports (~100 mg/dL)",
)
_add(
    ("1751-7",),
    0,
    15,
    "g/dL",
    "assumption: 2.5x the upper reference limit of serum albumin (5.5 g/dL); "
    "total serum protein rarely exceeds 12 g/dL",
)
_add(
    ("6301-6",),
    0,
    100,
    "",
    "assumption: coagulometers report INR up to about 20; 100 leaves room for any method",
)
_add(
    ("5902-2",),
    0,
    1000,
    "s",
    "assumption: coagulometers stop measuring prothrombin time after about 2-5 minutes",
)
_add(
    ("4548-4", "17856-6", "4549-2", "17855-8"),
    1,
    25,
    "%",
    "assumption: HbA1c assays report about 4-18 % (NGSP) and the highest case reports stay "
    "near 20 %; an IFCC value in mmol/mol labelled % (20-200) is beyond it (author8 F9)",
)
_add(
    ("59261-8",),
    0,
    250,
    "mmol/mol",
    "25 % NGSP through the IFCC-NGSP master equation (NGSP = 0.09148 IFCC + 2.152; "
    "Hoelzel et al., Clin Chem 2004;50:166-74) is 250 mmol/mol",
)
_add(
    ("8636-3", "8634-8"),
    150,
    1000,
    "ms",
    "assumption: the human QT interval (corrected or not) lies about 250-700 ms, extreme "
    "long-QT case reports below 800 ms; a value in seconds labelled ms (0.48) is below it",
)
