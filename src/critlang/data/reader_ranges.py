"""Reference ranges in the native record reader: which of a value's reported ranges is
this patient's (a base of reader.py's `Reader`, through reader_quantity).

A record's `reference_range` is one object or a list of them (docs/patients.md,
"Reference ranges"): `{"low", "high", "unit", "type", "applies_to", "age"}`, as
fhir_observation.py writes FHIR R4 Observation.referenceRange ("If there are multiple
reference ranges, they should be distinguished by appliesTo / age / type"). A range
applies when its `type` is absent or `normal` (referencerange-meaning), its `applies_to`
(an AND of populations, R4 Observation.referenceRange.appliesTo) names the patient's sex,
and its `age` holds the patient's age on the value's date. The ranges that apply or may
apply decide when they agree; otherwise the limits are unknown, with a diagnostic. The
order of the ranges never decides anything.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from typing import Any

from ..units import Unit, conversion_factor, parse_unit
from .values import When, _one, parse_when, strict_number

# Age units (R4 Age: a UCUM unit of time, age-1) and how far each one reaches
_MONTHS = {"a": 12, "mo": 1}
_DAYS = {"wk": 7, "d": 1}


def _and(parts: list[bool | None]) -> bool | None:
    """Kleene AND: False when any part is, True when all are, else unknown."""
    if False in parts:
        return False
    return True if all(p is True for p in parts) else None


def _shift(day: dt.date, amount: Fraction, unit: str) -> dt.date | None:
    """day + an age (`18 a`, `6 mo`, `40 wk`); None when it cannot be placed exactly."""
    from ..backends.runtime import add_months

    try:
        if unit in _MONTHS and amount.denominator == 1:
            months = int(amount) * _MONTHS[unit]
            return dt.date.fromordinal(add_months(day.toordinal(), months))
        if unit in _DAYS and (amount * _DAYS[unit]).denominator == 1:
            return day + dt.timedelta(days=int(amount * _DAYS[unit]))
    except (OverflowError, ValueError):
        return None
    return None


class RangeReading:
    """A base of `Reader` (through QuantityReading); uses its `problem`, `unit` and the
    patient's `patient_sex` and `patient_birth` (Reader.sex_and_birth)."""

    problem: Any
    unit: Any
    patient_sex: str | None
    patient_birth: When | None
    range_why: str | None = None  # why the last reference_range gave no limits

    def range_problem(self, fact: str, text: str) -> None:
        """A diagnostic that leaves the reference limits unknown; kept as the reason."""
        self.problem(fact, text)
        self.range_why = text

    def reference_range(
        self,
        fact: str,
        raw: Any,
        value_unit: Unit,
        want: Unit,
        molar: Fraction | None,
        date: Any,
    ) -> tuple[Fraction | None, Fraction | None] | None:
        """(low, high) in `value_unit` of the range that is this patient's, or None (with
        a diagnostic) when it cannot be told: the limits are then unknown."""
        items = raw if isinstance(raw, list) else [raw]
        self.range_why = None
        try:
            when: When | None = parse_when(_one(date)) if date is not None else None
        except ValueError:
            when = None
        chosen: dict[tuple[Fraction | None, Fraction | None], list[str]] = {}
        excluded: list[str] = []
        sure = False  # a range that surely applies
        for i, item in enumerate(items):
            label = f"range {i + 1}" if len(items) > 1 else "the reference range"
            if not isinstance(item, dict):
                self.range_problem(
                    fact, "`reference_range` must be an object with low, high, unit (or a list)"
                )
                return None
            item = {k: _one(v) for k, v in item.items()}
            applies, why = self.applies(item, when)
            if applies is False:
                excluded.append(f"{_limits_text(item)} ({why})")
                continue
            limits = self.range_limits(fact, item, value_unit, want, molar)
            if limits is None:
                self.problem(fact, f"{label} cannot be read: the reference limits are unknown")
                return None
            note = _limits_text(item) + ("" if applies else f" (perhaps: {why})")
            chosen.setdefault(limits, []).append(note)
            sure = sure or applies is True
        if chosen and not sure:
            # only ranges that may apply: none is surely this patient's normal range (a
            # population given as text, an age that cannot be checked, a type that is not
            # a referencerange-meaning code such as "therapeutic"): never used as if it
            # were (realfhir7 F5, breaker7 F8)
            shown = "; ".join(n for notes in chosen.values() for n in notes)
            self.range_problem(
                fact,
                f"the reported reference range may not be this patient's ({shown}): the "
                "reference limits are unknown (FHIR Observation.referenceRange: appliesTo, "
                "age and type say whom a range is for)",
            )
            return None
        if not chosen:
            self.range_problem(
                fact,
                f"no reported reference range applies to this patient ({'; '.join(excluded)}): "
                "the reference limits are unknown",
            )
            return None
        if len(chosen) > 1:
            shown = "; ".join(n for notes in chosen.values() for n in notes)
            self.range_problem(
                fact,
                f"{sum(map(len, chosen.values()))} reference ranges may apply to this patient "
                f"and differ ({shown}): which one is unknown, and so are the reference limits "
                "(FHIR Observation.referenceRange: told apart by type, appliesTo and age; "
                "their order decides nothing)",
            )
            return None
        return next(iter(chosen))

    def number_range(
        self, fact: str, raw: Any, date: Any
    ) -> tuple[Fraction | None, Fraction | None] | None:
        """The reference range of a plain number's value (the INR: R4 Observation
        .referenceRange of a valueQuantity whose unit is the number 1), as
        `reference_range`: (low, high), or None after a diagnostic. A limit's unit must be
        the number 1 too ({INR}, INR, 1, none; reader._unity): a range in seconds is a
        prothrombin time's, not this number's."""
        from .reader import _unity  # the same test of "the number 1" as the value's

        items = raw if isinstance(raw, list) else [raw]
        plain = []
        for item in items:
            if isinstance(item, dict):
                unit = _one(item.get("unit"))
                if unit not in (None, "") and not _unity(unit):
                    self.problem(
                        fact,
                        f"the reference range's unit {str(unit)[:20]!r} is not a plain number "
                        "like the value: the reference limits are unknown",
                    )
                    return None
                item = {k: v for k, v in item.items() if k != "unit"}
            plain.append(item)
        one = parse_unit("1")
        return self.reference_range(
            fact, plain if isinstance(raw, list) else plain[0], one, one, None, date
        )

    def applies(self, item: dict[str, Any], when: When | None) -> tuple[bool | None, str]:
        """Whether a range is this patient's normal range: True, False, None (cannot
        tell), with the reason when not True."""
        parts: list[bool | None] = []
        reasons: list[str] = []
        kind = item.get("type")
        if kind is not None:
            if kind == "normal":
                parts.append(True)
            elif isinstance(kind, str) and not kind.startswith("?"):
                parts.append(False)
                reasons.append(f"type {kind}, not the normal range")
            else:
                parts.append(None)
                # text only ("therapeutic") or a code of another system: not a
                # referencerange-meaning code (breaker7 F8)
                reasons.append(
                    f"type {str(kind).lstrip('?')[:60]!r} is no referencerange-meaning code "
                    "(text only, or another system): whether it is the normal range cannot "
                    "be told"
                )
        populations = item.get("applies_to")
        if populations is not None:
            for p in populations if isinstance(populations, list) else [populations]:
                if p in ("female", "male"):
                    if self.patient_sex is None:
                        parts.append(None)
                        reasons.append(f"for {p} patients; the sex is not known")
                    else:
                        parts.append(p == self.patient_sex)
                        reasons.append(f"for {p} patients")
                else:
                    parts.append(None)
                    who = str(p).lstrip("?")[:60]
                    reasons.append(f"applies to {who}, which critlang cannot tell")
        age = item.get("age")
        if age is not None:
            ok = self.age_applies(age, when)
            parts.append(ok)
            if ok is not True:
                unknown = "" if ok is False else "; the age then is not known"
                reasons.append(f"for ages {_age_text(age)}{unknown}")
        result = _and(parts)
        return result, "; ".join(reasons)

    def age_applies(self, age: Any, when: When | None) -> bool | None:
        """Whether the patient's age on the value's date lies in `age` (low and high
        included, R4 Range); None when the birth date, the date or the age is unknown."""
        birth = self.patient_birth
        if not isinstance(age, dict) or birth is None or when is None or when.partial:
            return None
        day = when.first
        parts: list[bool | None] = []
        for key in ("low", "high"):
            q = _one(age.get(key))
            if q is None:
                continue
            if not isinstance(q, dict):
                return None
            try:
                amount = strict_number(_one(q.get("value")))
            except ValueError:
                return None
            unit = _one(q.get("unit"))
            first, last = _shift(birth.first, amount, unit), _shift(birth.last, amount, unit)
            if first is None or last is None:
                return None
            if key == "low":  # reached that age by the day: surely, surely not, or perhaps
                parts.append(True if last <= day else False if first > day else None)
            else:
                parts.append(True if first >= day else False if last < day else None)
        return _and(parts)

    def range_limits(
        self, fact: str, item: dict[str, Any], value_unit: Unit, want: Unit, molar: Any
    ) -> tuple[Fraction | None, Fraction | None] | None:
        """A range's low and high in the value's unit; None after a diagnostic."""
        if item.get("units_differ") is not None:
            shown = ", ".join(str(u) for u in item["units_differ"])
            self.range_problem(
                fact,
                f"reference range {_limits_text(item)}: its low and high have different "
                f"units ({shown}): the reference limits are unknown",
            )
            return None
        if item.get("unitless") is True and not (value_unit.dims == () and value_unit.factor == 1):
            # a FHIR Quantity with neither unit nor code is unitless (R4 Quantity, UCUM
            # "1"): only a unitless value may use it (breaker7 F10)
            self.range_problem(
                fact,
                f"reference range {_limits_text(item)} has no unit (a limit without unit "
                f"or code is unitless), but the value is in {value_unit.text}: the "
                "reference limits are unknown (a limit without unit is never guessed)",
            )
            return None
        rr_unit = (
            self.unit(fact, item["unit"], want) if isinstance(item.get("unit"), str) else value_unit
        )
        f = conversion_factor(rr_unit, value_unit, molar) if rr_unit else None
        if f is None:
            self.range_problem(fact, "the reference range's unit does not fit the value's")
            return None
        out: list[Fraction | None] = []
        for key in ("low", "high"):
            raw = item.get(key)
            if raw is None:
                out.append(None)
                continue
            try:
                out.append(strict_number(raw) * f)
            except ValueError as exc:
                self.range_problem(fact, f"reference range {key}: {exc}")
                return None
        if out[0] is None and out[1] is None:
            return None
        low, high = out
        # R4 Observation.referenceRange: low <= high; "10-0 U/L" made 3 x ULN zero and
        # excluded every patient with a value. An upper limit of 0 or below with no
        # negative lower one is no range of a measured quantity either (a base excess
        # range, -2 to 2 mmol/L, stays)
        if high is not None and high <= 0 and (low is None or low >= 0):
            self.range_problem(
                fact, f"reference range {_limits_text(item)} is not a range of values"
            )
            return None
        if low is not None and high is not None and low > high:
            self.range_problem(fact, f"reference range {_limits_text(item)}: low is above high")
            return None
        return low, high


def _limits_text(item: dict[str, Any]) -> str:
    unit = item.get("unit") if isinstance(item.get("unit"), str) else ""
    low, high = item.get("low"), item.get("high")
    if low is not None and high is not None:
        text = f"{low}-{high}"
    elif high is not None:
        text = f"up to {high}"
    else:
        text = f"at least {low}"
    return f"{text} {unit}".strip()


def _age_text(age: Any) -> str:
    if not isinstance(age, dict):
        return str(age)[:40]

    def one(q: Any) -> str:
        q = _one(q)
        if not isinstance(q, dict):
            return "?"
        unit = q.get("unit") or q.get("code")
        return f"{q.get('value')} {unit}" if unit else f"{q.get('value')} (no unit)"

    low, high = age.get("low"), age.get("high")
    if low is not None and high is not None:
        return f"{one(low)} to {one(high)}"
    return f"from {one(low)}" if low is not None else f"up to {one(high)}"
