"""Patient records in critlang's native JSON format, read against one protocol.

A record is validated fact by fact. A value that cannot be used (malformed, a unit of
the wrong dimension, too old for its look-back window) becomes *unknown* with a
diagnostic naming the fact; nothing is guessed and the rest of the record is still used.
The format is described by `patient.schema.json` (shipped in the package) and
docs/patients.md.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..checker import ENROLLMENT, CheckResult
from ..scales import conversion, other_scale
from ..typesys import (
    BoolT,
    DateT,
    EnumT,
    ErrorT,
    IntT,
    ListT,
    NumberT,
    PressureT,
    QuantT,
    ScaleT,
    Type,
)
from ..ucum import read_unit
from ..units import Unit, UnitError, conversion_factor, describe, parse_unit

SCHEMA_PATH = Path(__file__).with_name("patient.schema.json")


@dataclass(frozen=True)
class Observation:
    """One usable value of a fact, exact, with where it came from."""

    value: Any  # Fraction (quantity, number), int, str (category), bool, date, or list
    unit: Unit | None = None  # as recorded (quantities); conversion happens later
    date: dt.date | None = None
    source: str | None = None
    low: Fraction | None = None  # reference range, in `unit`
    high: Fraction | None = None

    def shown(self) -> str:
        """The value as recorded, for explanations."""
        if isinstance(self.value, tuple):  # a blood pressure: systolic/diastolic
            sd = "/".join("?" if v is None else _decimal(v) for v in self.value)
            text = f"{sd} {self.unit.text}" if self.unit else sd
        elif isinstance(self.value, Fraction):
            v = _decimal(self.value)
            text = f"{v} {self.unit.text}" if self.unit and self.unit.text else v
        elif isinstance(self.value, list):
            text = _items(self.value)
        elif isinstance(self.value, bool):
            text = "yes" if self.value else "no"
        else:
            text = str(self.value)
        if self.date:
            text += f" on {self.date.isoformat()}"
        if self.source:
            text += f" ({self.source})"
        return text


def _items(items: list[dict[str, Any]]) -> str:
    """A list fact for explanations: its items' known fields, the first few of them."""

    def field(v: Any) -> str:
        if isinstance(v, Observation):
            return v.shown()
        if isinstance(v, dt.date):
            return v.isoformat()
        return str(v)

    parts = [
        ", ".join(f"{k} {field(v)}" for k, v in item.items() if v is not None) or "(empty)"
        for item in items[:3]
    ]
    more = f"; and {len(items) - 3} more" if len(items) > 3 else ""
    return (f"{len(items)} item(s): " + "; ".join(parts) + more) if items else "none"


def _decimal(x: Fraction) -> str:
    if x.denominator == 1:
        return str(x.numerator)
    return f"{float(x):.10g}"


@dataclass(frozen=True)
class RecordProblem:
    """A per-fact diagnostic about a patient record (the fact is then unknown)."""

    path: str
    fact: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.fact}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "fact": self.fact, "message": self.message}


@dataclass
class Record:
    id: str
    path: str
    facts: dict[str, Observation | None]  # every fact the protocol declares
    anchors: dict[str, dt.date | None]
    why_unknown: dict[str, str] = field(default_factory=dict)  # fact -> reason
    problems: list[RecordProblem] = field(default_factory=list)


class RecordError(ValueError):
    """The file is not a patient record at all (not JSON, not an object)."""


def fact_types(checked: CheckResult) -> dict[str, Type]:
    """Every fact a record can hold, with the header's arms as the fact `arm`."""
    return checked.record_types


class _Reader:
    def __init__(self, checked: CheckResult, path: str, as_of: dt.date) -> None:
        self.c = checked
        self.path = path
        self.as_of = as_of
        self.problems: list[RecordProblem] = []
        self.why: dict[str, str] = {}

    def problem(self, fact: str, message: str) -> None:
        self.problems.append(RecordProblem(self.path, fact, message))
        self.why.setdefault(fact, message)

    # ------------------------------------------------------------------ scalars
    def number(self, fact: str, raw: Any) -> Fraction | None:
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            self.problem(fact, f"value {raw!r} is not a number")
            return None
        try:
            value = Fraction(str(raw).strip())
        except (ValueError, ZeroDivisionError, OverflowError):
            self.problem(fact, f"value {raw!r} is not a number")
            return None
        if value and not Fraction(1, 10**100) < abs(value) < 10**100:
            # no clinical value is this large or small; converting it could overflow a float
            self.problem(fact, f"value {raw!r} is out of any plausible range")
            return None
        return value

    def date(self, fact: str, raw: Any) -> dt.date | None:
        if isinstance(raw, str):
            try:
                return dt.date.fromisoformat(raw[:10])
            except ValueError:
                pass
        self.problem(fact, f"{raw!r} is not a date (YYYY-MM-DD)")
        return None

    def scalar(self, fact: str, t: Type, raw: Any) -> Any:
        """A plain value of kind t, or None after reporting why it is unusable."""
        if raw is None:
            return None
        if isinstance(t, BoolT):
            if isinstance(raw, bool):
                return raw
            self.problem(fact, f"{raw!r} is not yes/no (true or false)")
            return None
        if isinstance(t, DateT):
            return self.date(fact, raw)
        if isinstance(t, (EnumT, ScaleT)):
            if isinstance(raw, str) and raw in t.positions:
                return raw
            close = difflib.get_close_matches(str(raw), t.members, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.problem(fact, f"{raw!r} is not one of {', '.join(t.members)}{hint}")
            return None
        if isinstance(t, IntT):
            v = self.number(fact, raw)
            if v is None:
                return None
            if v.denominator != 1 or not t.low <= v <= t.high:
                self.problem(fact, f"{raw!r} is not a whole number from {t.low} to {t.high}")
                return None
            return int(v)
        if isinstance(t, NumberT):
            return self.number(fact, raw)
        raise AssertionError(t)

    # ------------------------------------------------------------------ facts
    def entries(self, raw: Any) -> list[Any]:
        return raw if isinstance(raw, list) else [raw]

    def observation(self, fact: str, t: Type, raw: Any) -> Observation | None:
        if isinstance(t, ListT):
            return self.list_fact(fact, t, raw)
        entries = self.entries(raw)
        if len(entries) > 1:
            decided, fast = self.newest_usable(fact, t, entries)
            if decided:
                return fast
        # one entry, or none usable in the window: read all, for the reasons and diagnostics
        candidates: list[Observation] = []
        for entry in entries:
            obs = self.one(fact, t, entry)
            if obs is not None:
                candidates.append(obs)
        if not candidates:
            return None
        return self.pick(fact, candidates)

    def newest_usable(
        self, fact: str, t: Type, entries: list[Any]
    ) -> tuple[bool, Observation | None]:
        """Many dated values (an EHR's lab history): read newest first, inside the window,
        and stop at the first usable one instead of reading them all.

        Returns (decided, value); not decided sends the caller to read every entry.
        """
        dates = [e.get("date") if isinstance(e, dict) else None for e in entries]
        if not all(isinstance(d, str) and _ISO_DAY.match(d) for d in dates):
            return False, None
        low, high = "", "9999-12-31"
        info = self.c.facts.get(fact)
        look = info.lookback if info else None
        if look is not None and look.quantity is not None:
            anchor = self.anchor_date(look.anchor or ENROLLMENT)
            if anchor is None:
                return False, None
            start = window_start(anchor, look.quantity.value, parse_unit(look.quantity.unit))
            low, high = start.isoformat(), anchor.isoformat()
            if not any(low <= d[:10] <= high for d in dates):  # type: ignore[index]
                newest = max(d[:10] for d in dates)  # type: ignore[index]
                if newest > high:
                    self.why[fact] = f"the only value(s) are dated after {look.anchor} ({newest})"
                else:
                    self.why[fact] = (
                        f"too old: the newest value is from {newest}, more than "
                        f"{look.quantity.text} before {look.anchor} ({high})"
                    )
                return True, None
        inside = [e for e, d in zip(entries, dates, strict=True) if low <= d[:10] <= high]  # type: ignore[index]
        inside.sort(key=lambda e: e["date"], reverse=True)
        before = len(self.problems)
        for entry in inside:
            obs = self.one(fact, t, entry)
            if obs is not None and obs.date is not None:
                return True, obs
        del self.problems[before:]  # the full reading reports them once
        return False, None

    def one(self, fact: str, t: Type, entry: Any) -> Observation | None:
        meta: dict[str, Any] = {}
        if isinstance(t, PressureT):
            return self.pressure(fact, t, entry)
        if isinstance(entry, dict):
            meta = entry
            if "value" not in entry:
                self.problem(fact, "an entry has no `value`")
                return None
            raw = entry["value"]
        else:
            raw = entry
        when = self.date(fact, meta["date"]) if meta.get("date") is not None else None
        if meta.get("date") is not None and when is None:
            return None
        source = meta.get("source") if isinstance(meta.get("source"), str) else None
        if isinstance(t, QuantT):
            return self.quantity(fact, t, raw, meta, when, source)
        if isinstance(t, NumberT) and meta.get("unit") not in (None, "", "1"):
            self.problem(fact, f"a plain number was expected, but it has a unit {meta['unit']!r}")
            return None
        value = self.scalar(fact, t, raw)
        if value is None:
            if raw is None:
                return None
            return None
        return Observation(value, None, when, source)

    def quantity(
        self,
        fact: str,
        t: QuantT,
        raw: Any,
        meta: dict[str, Any],
        when: dt.date | None,
        source: str | None,
    ) -> Observation | None:
        if raw is None:
            return None
        value = self.number(fact, raw)
        if value is None:
            return None
        unit_text = meta.get("unit")
        if not isinstance(unit_text, str) or not unit_text.strip():
            self.problem(
                fact,
                f"{raw!r} has no unit; {fact} is recorded in units like {t.unit.text} "
                "(a value without unit is never guessed)",
            )
            return None
        unit = self.unit(fact, unit_text, t.unit)
        if unit is None:
            return None
        info = self.c.facts.get(fact)
        molar = info.molar_mass if info else None
        # a unit conversion (exact UCUM factor, or the molar mass), else a clinical scale
        # the fact declares (or a UCUM temperature scale); else the value is refused
        convert = conversion(unit, t.unit, molar, info.scales if info else ())
        if convert is None:
            extra = " and no molar mass is declared" if molar is None else ""
            if other_scale(unit, t.unit):
                extra = (
                    ": another clinical scale, not a unit conversion; the fact declares no "
                    f"`convert {unit_text.strip()} to {t.unit.text} as A x + B source ...`"
                )
            self.problem(
                fact,
                f"unit {unit_text!r} is {describe(unit.dims)}, but {fact} is "
                f"{describe(t.unit.dims)} ({t.unit.text}){extra}",
            )
            return None
        low = high = None
        rr = meta.get("reference_range")
        if isinstance(rr, dict):
            rr_unit = (
                self.unit(fact, rr["unit"], t.unit) if isinstance(rr.get("unit"), str) else unit
            )
            f = conversion_factor(rr_unit, unit, molar) if rr_unit else None
            if f is None:
                self.problem(fact, "the reference range's unit does not fit the value's")
            else:
                for key in ("low", "high"):
                    if rr.get(key) is not None:
                        v = self.number(fact, rr[key])
                        if v is not None:
                            if key == "low":
                                low = v * f
                            else:
                                high = v * f
        elif rr is not None:
            self.problem(fact, "`reference_range` must be an object with low, high, unit")
        if convert.source is not None:
            # another scale: the value is converted here, once, into the fact's unit, and
            # says so (explanations show the recorded value and the equation's source)
            recorded = f"{_decimal(value)} {unit_text.strip()}"
            value, unit = convert(value), t.unit
            low = None if low is None else convert(low)
            high = None if high is None else convert(high)
            if convert.slope < 0:
                low, high = high, low
            note = f"from {recorded} by {convert.source}"
            source = f"{source}; {note}" if source else note
        return Observation(value, unit, when, source, low, high)

    def pressure(self, fact: str, t: PressureT, entry: Any) -> Observation | None:
        """A blood pressure: `{"systolic": 120, "diastolic": 80, "unit": "mm[Hg]", "date": ...}`.

        FHIR vital signs carry it as one Observation (LOINC 85354-9, blood pressure panel)
        with two components, 8480-6 systolic and 8462-4 diastolic, each a valueQuantity in
        UCUM `mm[Hg]`. One part may be missing; that part is then unknown.
        """
        if not isinstance(entry, dict):
            self.problem(fact, "a blood pressure is an object with systolic, diastolic and unit")
            return None
        parts = [entry.get(k) for k in ("systolic", "diastolic")]
        if all(p is None for p in parts):
            self.problem(fact, "a blood pressure needs `systolic` or `diastolic`")
            return None
        values = [None if p is None else self.number(fact, p) for p in parts]
        if any(v is None and p is not None for v, p in zip(values, parts, strict=True)):
            return None
        # an arterial pressure is never below zero, and the systolic is by definition the
        # peak of the cycle: a negative part or a diastolic above the systolic is a sign
        # slip or swapped components, which would otherwise decide `bp < 140/90` wrongly
        if any(v is not None and v < 0 for v in values):
            self.problem(fact, "a blood pressure part is negative; no pressure is read")
            return None
        if values[0] is not None and values[1] is not None and values[1] > values[0]:
            self.problem(
                fact,
                f"the diastolic above the systolic ({_decimal(values[0])}/"
                f"{_decimal(values[1])}): the parts look swapped; neither is used",
            )
            return None
        unit_text = entry.get("unit")
        if not isinstance(unit_text, str) or not unit_text.strip():
            self.problem(fact, "a blood pressure needs its unit (mm[Hg]); it is never guessed")
            return None
        unit = self.unit(fact, unit_text, t.unit)
        if unit is None:
            return None
        if conversion_factor(unit, t.unit) is None:
            self.problem(fact, f"unit {unit_text!r} is {describe(unit.dims)}, not a pressure")
            return None
        when = self.date(fact, entry["date"]) if entry.get("date") is not None else None
        if entry.get("date") is not None and when is None:
            return None
        source = entry.get("source") if isinstance(entry.get("source"), str) else None
        return Observation(tuple(values), unit, when, source)

    def unit(self, fact: str, text: str, want: Unit | None = None) -> Unit | None:
        """A unit as written or as a UCUM code (FHIR's `valueQuantity.code`), for a fact
        in `want`: one unit system with criteria files (units.parse_unit, ucum.read_unit)."""
        try:
            return read_unit(text, want)
        except UnitError as exc:
            self.problem(fact, f"{exc.message}{' (' + exc.hint + ')' if exc.hint else ''}")
            return None

    def pick(self, fact: str, candidates: list[Observation]) -> Observation | None:
        """The newest value inside the look-back window (or the newest, without one)."""
        info = self.c.facts.get(fact)
        look = info.lookback if info else None
        if look is None or look.quantity is None:
            dated = [o for o in candidates if o.date is not None]
            return max(dated, key=lambda o: o.date) if dated else candidates[-1]
        anchor = self.anchor_date(look.anchor or ENROLLMENT)
        if anchor is None:
            self.why[fact] = f"the look-back window needs the {look.anchor} date"
            return None
        start = window_start(anchor, look.quantity.value, parse_unit(look.quantity.unit))
        undated = [o for o in candidates if o.date is None]
        if undated and len(undated) == len(candidates):
            self.problem(fact, f"no date given; it must be measured within {look.quantity.text}")
            return None
        inside = [o for o in candidates if o.date is not None and start <= o.date <= anchor]
        if inside:
            return max(inside, key=lambda o: o.date)  # type: ignore[arg-type,return-value]
        dated = [o for o in candidates if o.date is not None]
        newest = max(dated, key=lambda o: o.date)  # type: ignore[arg-type,return-value]
        if newest.date and newest.date > anchor:
            self.why[fact] = (
                f"the only value(s) are dated after {look.anchor} ({newest.date.isoformat()})"
            )
        else:
            self.why[fact] = (
                f"too old: the newest value is from {newest.date.isoformat()}, more than "
                f"{look.quantity.text} before {look.anchor} ({anchor.isoformat()})"
            )
        return None

    def anchor_date(self, name: str) -> dt.date | None:
        return self.anchors.get(name)

    def list_fact(self, fact: str, t: ListT, raw: Any) -> Observation | None:
        if not isinstance(raw, list):
            self.problem(fact, "a list was expected")
            return None
        items: list[dict[str, Any]] = []
        for i, element in enumerate(raw):
            if not isinstance(element, dict):
                self.problem(fact, f"item {i + 1} is not an object")
                items.append({name: None for name, _ in t.fields})
                continue
            item: dict[str, Any] = {}
            for name, ftype in t.fields:
                label = f"{fact}[{i + 1}].{name}"
                if isinstance(ftype, QuantT):
                    v = element.get(name)
                    meta = v if isinstance(v, dict) else {"value": v}
                    obs = (
                        None
                        if v is None
                        else self.quantity(label, ftype, meta.get("value"), meta, None, None)
                    )
                    item[name] = obs
                else:
                    item[name] = self.scalar(label, ftype, element.get(name))
            extra = sorted(set(element) - {name for name, _ in t.fields})
            if extra:
                self.problem(fact, f"item {i + 1} has fields this protocol does not use: {extra}")
            items.append(item)
        return Observation(items)

    def read(self, data: Any) -> Record:
        if not isinstance(data, dict):
            raise RecordError("a patient record is a JSON object")
        if isinstance(data.get("resourceType"), str) and "facts" not in data:
            # FHIR resources are read by data/fhir.py (Resource.resourceType), never as a
            # record with no facts: that would be "undetermined, needs everything" in silence
            raise RecordError(
                f"this is a FHIR {data['resourceType']}, not a critlang patient record; "
                "read FHIR data with `critlang screen PROTOCOL DATA...`"
            )
        pid = data.get("id")
        pid = str(pid) if isinstance(pid, (str, int)) else Path(self.path).stem
        raw_anchors = data.get("anchors") or {}
        if not isinstance(raw_anchors, dict):
            self.problem("anchors", "`anchors` must be an object of dates")
            raw_anchors = {}
        self.anchors: dict[str, dt.date | None] = {}
        for name in self.c.anchors:
            raw = raw_anchors.get(name)
            self.anchors[name] = self.date(f"anchor {name}", raw) if raw is not None else None
        self.anchors[ENROLLMENT] = self.as_of
        raw_facts = data.get("facts") or {}
        if not isinstance(raw_facts, dict):
            self.problem("facts", "`facts` must be an object")
            raw_facts = {}
        facts: dict[str, Observation | None] = {}
        for name, t in fact_types(self.c).items():
            if isinstance(t, ErrorT):
                continue
            raw = raw_facts.get(name)
            if raw is None:
                facts[name] = None
                self.why.setdefault(name, "not in the record")
                continue
            facts[name] = self.observation(name, t, raw)
            if facts[name] is None:
                self.why.setdefault(name, "no usable value")
        return Record(pid, self.path, facts, self.anchors, self.why, self.problems)


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@lru_cache(maxsize=1024)
def window_start(anchor: dt.date, amount: Fraction, unit: Unit) -> dt.date:
    """The first day of a look-back window of `amount unit` ending at `anchor`."""
    from ..backends.runtime import add_months

    months = amount * unit.factor  # calendar units are in months
    try:
        if unit.dims == (("[calendar]", 1),):
            return dt.date.fromordinal(max(1, add_months(anchor.toordinal(), -int(months))))
        days = amount * unit.factor / 86400
        return anchor - dt.timedelta(days=int(days))
    except OverflowError:
        # a window reaching before 0001-01-01 holds every date there is
        return dt.date.min


def read_record(checked: CheckResult, data: Any, as_of: dt.date, path: str = "<record>") -> Record:
    return _Reader(checked, path, as_of).read(data)


def load_record(checked: CheckResult, path: str | Path, as_of: dt.date) -> Record:
    """Raises RecordError (or OSError) when the file is not a usable record at all."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RecordError(f"not valid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise RecordError(f"not UTF-8 text: {exc}") from exc
    return read_record(checked, data, as_of, str(path))
