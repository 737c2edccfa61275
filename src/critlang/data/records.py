"""Patient records in critlang's native JSON format, read against one protocol.

A record is validated fact by fact. A value that cannot be used (malformed, a unit of
the wrong dimension, too old for its look-back window) becomes *unknown* with a
diagnostic naming the fact; nothing is guessed and the rest of the record is still used.
The format is described by `patient.schema.json` (shipped in the package) and
docs/patients.md.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Context, Decimal
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from ..checker import CheckResult
from ..frozen_classes import field, frozen, mutable
from ..typesys import Type
from ..units import Unit
from .values import loads

SCHEMA_PATH = Path(__file__).with_name("patient.schema.json")

# the SQL facts-table row marking a fact with conflicting candidate values (data/ingest.py)
CONFLICT = "#conflict"
# facts-table rows of one combination ("world") of a patient's conflicting candidates,
# `seq` the world's number: `fact#world`, `fact#high*3/2#world` (data/ingest_worlds.py)
WORLD = "#world"
# the facts-table row marking a value whose reported reference ranges leave its limits
# unknown (data/reader_ranges.py): `x ULN` and `within normal range` are then unknown,
# never the protocol's default range in their place
NOLIMITS = "#nolimits"
# how ingest's patient table says a patient may have died by the screening date
MAYBE_DECEASED = "perhaps: "


@frozen
class PartialDate:
    """A date known to the year or the month (FHIR `date` "1968", "2007-11"): any day
    from first to last (last clamped to the evaluation date for past events)."""

    first: dt.date
    last: dt.date
    text: str

    def __str__(self) -> str:
        return f"{self.text} (day not recorded)"


class Bound(NamedTuple):
    """A blood-pressure part known only as a bound: a component's valueQuantity with a
    comparator (FHIR R4 Quantity.comparator, a modifier element: "> 170" is not 170),
    read as a censored plain value is (docs/patients.md, Censored values)."""

    comparator: str  # <, <=, >, >=
    value: Fraction

    def __str__(self) -> str:
        return f"{self.comparator}{_decimal(self.value)}"


def part_text(v: Any) -> str:
    """A blood-pressure part as recorded: "?" when unknown, "> 170" when censored."""
    return "?" if v is None else str(v) if isinstance(v, Bound) else _decimal(v)


@frozen
class Ongoing:
    """The end of an exposure that has not ended by the evaluation date `since`: recorded
    as "ongoing", or as a (planned) end after the evaluation date."""

    since: dt.date
    text: str

    def __str__(self) -> str:
        return "ongoing" if self.text == "ongoing" else f"ongoing (planned end {self.text})"


@frozen
class Observation:
    """One usable value of a fact, exact, with where it came from."""

    value: Any  # Fraction (quantity, number), int, str, bool, date, PartialDate, or list
    unit: Unit | None = None  # as recorded (quantities); conversion happens later
    date: dt.date | None = None  # calendar day in the value's own offset (windows)
    source: str | None = None
    low: Fraction | None = None  # reference range, in `unit`
    high: Fraction | None = None
    comparator: str | None = None  # FHIR Quantity.comparator: the value is only a bound
    instant: dt.datetime | None = None  # UTC, when the date has a time (ordering)
    stamp: str | None = None  # the date/time as recorded, when it has a time
    status: str | None = None  # FHIR Observation.status, when given
    # reference ranges were reported but none can be chosen for this patient (several
    # that may apply and differ, none that applies, or unreadable): low and high are
    # unknown, and the protocol's default range is not used in their place
    range_unknown: bool = False
    range_why: str | None = None  # why, when range_unknown (explanations and `needs`)

    def shown(self) -> str:
        """The value as recorded, for explanations ("< 1.5 x10^9/L on ...")."""
        if isinstance(self.value, tuple):  # a blood pressure: systolic/diastolic
            sd = "/".join(part_text(v) for v in self.value)
            text = f"{sd} {self.unit.text}" if self.unit else sd
        elif isinstance(self.value, Fraction):
            v = _decimal(self.value)
            if self.comparator:
                v = f"{self.comparator} {v}"
            text = f"{v} {self.unit.text}" if self.unit and self.unit.text else v
        elif isinstance(self.value, list):
            text = _items(self.value)
        elif isinstance(self.value, bool):
            text = "yes" if self.value else "no"
        else:
            text = str(self.value)
        if self.stamp:
            text += f" on {self.stamp}"
        elif self.date:
            text += f" on {self.date.isoformat()}"
        if self.source:
            text += f" ({self.source})"
        if self.status == "preliminary":
            text += " [preliminary]"
        return text

    def same_value(self) -> str:
        """What two candidates must share to be one value (not a conflict): the value in
        base units (exact), so 8 g/dL and 80 g/L, or 2 x10^9/L and 2000 /mm3, are one."""
        u = self.unit
        if u is not None and isinstance(self.value, tuple):  # a blood pressure, in base units
            return repr((tuple(_scaled(v, u.factor) for v in self.value), u.dims))
        if u is not None and isinstance(self.value, Fraction):
            k = u.factor

            def base(x: Fraction | None) -> Fraction | None:
                return None if x is None else x * k

            limits = (base(self.low), base(self.high), self.range_unknown)
            return repr((base(self.value), u.dims, self.comparator, limits))
        return repr((self.value, self.unit, self.comparator, self.low, self.high))


def _scaled(v: Any, k: Fraction) -> Any:
    """A blood-pressure part times k (a bound keeps its comparator)."""
    if isinstance(v, Bound):
        return Bound(v.comparator, v.value * k)
    return None if v is None else v * k


def _items(items: list[dict[str, Any]]) -> str:
    """A list fact for explanations: its items' known fields, the first few of them."""

    def field(v: Any) -> str:
        if isinstance(v, Observation):
            return v.shown()
        if isinstance(v, dt.date):
            return v.isoformat()
        return str(v)  # also PartialDate, Ongoing

    parts = [
        ", ".join(f"{k} {field(v)}" for k, v in item.items() if v is not None) or "(empty)"
        for item in items[:3]
    ]
    more = f"; and {len(items) - 3} more" if len(items) > 3 else ""
    return (f"{len(items)} item(s): " + "; ".join(parts) + more) if items else "none"


def _decimal(x: Fraction) -> str:
    """A value as recorded: every digit of a decimal (99.99999999999999999 is never
    shown as 100); a value with no finite decimal (converted from another scale) to
    10 significant digits."""
    if x.denominator == 1:
        return str(x.numerator)
    short = f"{float(x):.10g}"
    if Fraction(short) == x:
        return short
    d = x.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d != 1:
        return short
    digits = len(str(x.numerator)) + len(str(x.denominator)) + 2
    exact = Context(prec=digits).divide(Decimal(x.numerator), Decimal(x.denominator))
    return format(exact, "f")


@frozen
class RecordProblem:
    """A per-fact diagnostic about a patient record (the fact is then unknown)."""

    path: str
    fact: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.fact}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "fact": self.fact, "message": self.message}


@mutable
class Record:
    id: str
    path: str
    facts: dict[str, Observation | None]  # every fact the protocol declares
    anchors: dict[str, dt.date | None]
    why_unknown: dict[str, str] = field(default_factory=dict)  # fact -> reason
    problems: list[RecordProblem] = field(default_factory=list)
    # conflicting candidates of a fact (its `facts` entry is then None): evaluated one by
    # one, a criterion keeps the status they all agree on
    alternatives: dict[str, list[Observation]] = field(default_factory=dict)
    # FHIR Patient.deceased[x] as of the evaluation date: True, False, None (perhaps)
    deceased: bool | None = False


def preliminary_notes(record: Record) -> list[str]:
    """One line per fact whose value used is preliminary (FHIR Observation.status), for
    outputs that list what a verdict rests on (screen --patients)."""
    out = []
    for name, obs in sorted(record.facts.items()):
        if obs is not None and obs.status == "preliminary":
            out.append(f"{name}: preliminary value used ({obs.shown()})")
    for name, candidates in sorted(record.alternatives.items()):
        if any(o.status == "preliminary" for o in candidates):
            out.append(f"{name}: a preliminary value among the conflicting candidates")
    return out


class RecordError(ValueError):
    """The file is not a patient record at all (not JSON, not an object)."""


def fact_types(checked: CheckResult) -> dict[str, Type]:
    """Every fact a record can hold, with the header's arms as the fact `arm`."""
    return checked.record_types


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@lru_cache(maxsize=1024)
def window_start(anchor: dt.date, amount: Fraction, unit: Unit) -> dt.date:
    """The first day of a look-back window of `amount unit` ending at `anchor`: for
    calendar months and years the first day d with d + amount >= anchor, the step added
    to the earlier date and clamped to the month's end, as every `within ... before` form
    counts it (backends/runtime_calendar.py; docs/language.md, Time windows): a value of
    2026-02-28 is not within 1 month before 2026-03-31 (2026-02-28 + 1 month = 03-28)."""
    from ..backends.runtime_calendar import months_back

    months = amount * unit.factor  # calendar units are in months
    try:
        if unit.dims == (("[calendar]", 1),):
            return dt.date.fromordinal(max(1, months_back(anchor.toordinal(), int(months), "lo")))
        days = amount * unit.factor / 86400
        return anchor - dt.timedelta(days=int(days))
    except OverflowError:
        # a window reaching before 0001-01-01 holds every date there is
        return dt.date.min


def read_record(
    checked: CheckResult,
    data: Any,
    as_of: dt.date,
    path: str = "<record>",
    refuse_preliminary: bool = False,
) -> Record:
    """A record (parsed JSON, as `values.loads` or json.loads gives it) read against a
    protocol. Raises RecordError only when `data` is not a record at all."""
    from .reader import Reader  # the reader builds the classes above

    return Reader(checked, path, as_of, refuse_preliminary).read(data)


def load_record(
    checked: CheckResult, path: str | Path, as_of: dt.date, refuse_preliminary: bool = False
) -> Record:
    """Raises RecordError (or OSError) when the file is not a usable record at all."""
    if Path(path).suffix.lower() == ".crit":
        # the protocol given twice (or in the patient's place): say so in words
        raise RecordError(
            "this is a criteria file, not a patient record: give the protocol first, "
            "then the patient .json files"
        )
    try:
        data = loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RecordError(
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    except UnicodeDecodeError as exc:
        raise RecordError(f"not UTF-8 text: {exc}") from exc
    except RecursionError:
        raise RecordError("not a usable record: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. a number the decoder refuses
        raise RecordError(f"not valid JSON: {exc}") from exc
    return read_record(checked, data, as_of, str(path), refuse_preliminary)
