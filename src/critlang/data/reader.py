"""The native record reader: one fact at a time, every unusable value a diagnostic.

What it decides (docs/patients.md has the user's version):
- which value of a fact is "the" value: the newest inside the look-back window, ordered
  by instant (UTC) for values with a time, by calendar day otherwise; values that cannot
  be ordered (same instant, same day without times, undated, a fact given twice) are
  conflicting *candidates*, kept in `Record.alternatives` for the evaluators to weigh;
- what a value means: a censored value ("< 1.5", FHIR Quantity.comparator), a partial
  date (a range of days), an ongoing exposure's end;
- what is impossible: a value that cannot be a living patient's (negative amounts, a
  percentage above 100, beyond the plausibility table of `values.PLAUSIBLE`), a past
  event dated after the evaluation date.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from math import prod
from pathlib import Path
from typing import Any

from ..checker import ENROLLMENT, CheckResult
from ..frozen_classes import replace
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
from ..units import parse_unit
from .reader_lists import ListReading
from .reader_quantity import QuantityReading, _one
from .reader_time import _day, _real_day, deceased_state, newest_of
from .records import (
    _ISO_DAY,
    Observation,
    PartialDate,
    Record,
    RecordError,
    RecordProblem,
    fact_types,
    window_start,
)
from .values import Duplicate, When, parse_when, strict_number

__all__ = ["Reader", "deceased_state", "newest_of"]

# FHIR R4 ObservationStatus (valueset-observation-status): results that may be used;
# "preliminary" is used but marked. registered, cancelled, entered-in-error, unknown (and
# anything else) are not results.
USABLE_STATUS = frozenset({"final", "amended", "corrected", "preliminary"})
# the keys of a value entry (docs/patients.md, "Facts"); the FHIR reader writes the same
# (fhir_observation.observation_entry: a blood pressure's censored parts as "censored")
VALUE_KEYS = frozenset(
    {"value", "unit", "comparator", "date", "status", "source", "reference_range"}
)
PRESSURE_KEYS = frozenset({"systolic", "diastolic", "unit", "date", "status", "source", "censored"})
# Of those that are not results, the ones that say there is none (no result yet, the
# observation was cancelled or made in error) hide nothing; "unknown" ("The authoring
# system does not know which of the status values currently applies": it may be final)
# and a code outside the value set may hide the newest value, as from FHIR (docs/fhir.md,
# Observation.status; breaker7 F7)
RETRACTED_STATUS = frozenset({"registered", "cancelled", "entered-in-error"})
MAX_CANDIDATES = 8  # conflicting values weighed per fact
MAX_WORLDS = 64  # combinations weighed per record (backends.python.MAX_WORLDS)


class Reader(ListReading, QuantityReading):
    def __init__(
        self, checked: CheckResult, path: str, as_of: dt.date, refuse_preliminary: bool = False
    ) -> None:
        self.c = checked
        self.path = path
        self.as_of = as_of
        self.refuse_preliminary = refuse_preliminary
        self.problems: list[RecordProblem] = []
        self.why: dict[str, str] = {}
        self.anchors: dict[str, dt.date | None] = {}
        # fact -> [{"date", "source"}]: values a FHIR resource held that could not be
        # used (data/fhir.py); one that may be the newest keeps older ones from deciding
        self.unread: dict[str, Any] = {}
        self.patient_sex: str | None = None  # for reference ranges' appliesTo and age
        self.patient_birth: When | None = None

    def problem(self, fact: str, message: str) -> None:
        self.problems.append(RecordProblem(self.path, fact, message))
        self.why.setdefault(fact, message)

    # ------------------------------------------------------------------ scalars
    def number(self, fact: str, raw: Any) -> Fraction | None:
        if isinstance(raw, Duplicate):
            self.problem(fact, "given twice with different values (a duplicate JSON key)")
            return None
        try:
            return strict_number(raw)
        except ValueError as exc:
            self.problem(fact, str(exc))
            return None

    def when(self, fact: str, raw: Any) -> When | None:
        raw = _one(raw)
        if isinstance(raw, Duplicate):
            self.problem(fact, "dated twice with different dates (a duplicate JSON key)")
            return None
        try:
            return parse_when(raw)
        except ValueError as exc:
            self.problem(fact, str(exc))
            return None

    def date(self, fact: str, raw: Any) -> dt.date | None:
        """A full calendar date (anchors, observation dates): the day in its own offset."""
        w = self.when(fact, raw)
        if w is None:
            return None
        if w.partial:
            self.problem(fact, f"{w.text!r} is not precise to the day")
            return None
        return w.first

    def past_date(self, fact: str, raw: Any) -> dt.date | PartialDate | None:
        """A date fact: something that happened, so not after the evaluation date."""
        w = self.when(fact, raw)
        if w is None:
            return None
        if w.first > self.as_of:
            self.problem(
                fact,
                f"{w.text} is after the evaluation date ({self.as_of.isoformat()}): impossible "
                "for something recorded as having happened",
            )
            return None
        if w.partial:
            return PartialDate(w.first, min(w.last, self.as_of), w.text)
        return w.first

    def any_date(self, fact: str, raw: Any) -> dt.date | PartialDate | None:
        raw = _one(raw)
        if raw is None or isinstance(raw, Duplicate):
            return self.scalar(fact, DateT(), raw)
        w = self.when(fact, raw)
        if w is None:
            return None
        return PartialDate(w.first, w.last, w.text) if w.partial else w.first

    def scalar(self, fact: str, t: Type, raw: Any) -> Any:
        """A plain value of kind t, or None after reporting why it is unusable."""
        raw = _one(raw)
        if raw is None:
            return None
        if isinstance(raw, Duplicate):
            self.problem(fact, "given twice with different values (a duplicate JSON key)")
            return None
        if isinstance(t, BoolT):
            if isinstance(raw, bool):
                return raw
            self.problem(fact, f"{raw!r} is not yes/no (true or false)")
            return None
        if isinstance(t, DateT):
            return self.past_date(fact, raw)
        if isinstance(t, (EnumT, ScaleT)):
            if isinstance(raw, str) and raw in t.positions:
                return raw
            import difflib  # only for a value outside the enumeration

            close = difflib.get_close_matches(str(raw)[:100], t.members, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.problem(fact, f"{str(raw)[:60]!r} is not one of {', '.join(t.members)}{hint}")
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

    # ------------------------------------------------------------------ one entry
    def entry(self, fact: str, t: Type, entry: Any) -> Observation | None:
        """One recorded value (a bare value or an entry object), or None if unusable.

        Every kind of fact (quantities, numbers, categories, blood pressures) goes through
        the same checks of duplicate keys, status and date here, and the same pick in
        `fact_value`: no kind has a reading path of its own.
        """
        pressure = isinstance(t, PressureT)
        if not isinstance(entry, dict):
            if pressure:
                self.problem(
                    fact, "a blood pressure is an object with systolic, diastolic and unit"
                )
                return None
            entry = {"value": entry}
        dups = sorted(k for k, v in entry.items() if isinstance(_one(v), Duplicate))
        if dups:
            self.problem(fact, f"an entry gives {', '.join(map(repr, dups))} twice (conflicting)")
            return None
        entry = {k: _one(v) for k, v in entry.items()}
        if not self.known_keys(fact, entry, PRESSURE_KEYS if pressure else VALUE_KEYS):
            return None
        if pressure:
            if entry.get("systolic") is None and entry.get("diastolic") is None:
                self.problem(fact, "a blood pressure needs `systolic` or `diastolic`")
                return None
        elif "value" not in entry:
            self.problem(fact, "an entry has no `value`")
            return None
        status = entry.get("status")
        if status is not None:
            if not isinstance(status, str) or status not in USABLE_STATUS:
                self.problem(
                    fact,
                    f"a value with status {str(status)[:40]!r} is not a result (FHIR "
                    "Observation.status: only final, amended, corrected, preliminary are used)",
                )
                return None
            if status == "preliminary" and self.refuse_preliminary:
                self.problem(fact, "a preliminary value is not used (preliminary results refused)")
                return None
        when = None
        if entry.get("date") is not None:
            when = self.when(fact, entry["date"])
            if when is None:
                return None
            if when.partial:
                self.problem(fact, f"the date {when.text!r} is not precise to the day")
                return None
        if pressure:
            assert isinstance(t, PressureT)
            obs = self.pressure(fact, t, entry)
            return None if obs is None else self.dated(obs, entry, when, status)
        raw = entry["value"]
        if raw is None:
            return None
        if isinstance(t, QuantT):
            obs = self.quantity(fact, t, raw, entry)
        elif isinstance(t, NumberT):
            if entry.get("unit") not in (None, "", "1") and not _unity(entry["unit"]):
                self.problem(
                    fact, f"a plain number was expected, but it has a unit {entry['unit']!r}"
                )
                return None
            value = self.number(fact, raw)
            comparator = self.comparator(fact, entry)
            if value is None or comparator is False:
                return None
            low = high = None
            rr = entry.get("reference_range")  # the INR's: `inr <= 1.5 x ULN`
            limits = None if rr is None else self.number_range(fact, rr, entry.get("date"))
            if limits is not None:
                low, high = limits
            obs = Observation(
                value,
                low=low,
                high=high,
                comparator=comparator or None,
                range_unknown=rr is not None and limits is None,
            )
            if not self.plausible(fact, obs, None):
                return None
        else:
            if entry.get("comparator") is not None:
                self.problem(fact, "a comparator applies only to numbers and quantities")
                return None
            value = self.scalar(fact, t, raw)
            obs = None if value is None else Observation(value)
        if obs is None:
            return None
        return self.dated(obs, entry, when, status)

    def known_keys(self, fact: str, entry: dict[str, Any], known: frozenset[str]) -> bool:
        """An entry's keys this reader does not read are said, never dropped in silence
        (breaker8 F15). One that is a near miss of a key it reads (`comparatr`), or a
        `comparator` on a blood pressure, may change what the value means: the entry is
        not used (False)."""
        extra = sorted(k for k in entry if k not in known)
        if not extra:
            return True
        import difflib  # only for an entry with keys the reader does not know

        for k in extra:
            close = difflib.get_close_matches(str(k), sorted(known), n=1, cutoff=0.75)
            if k == "comparator" or close:
                why = (
                    "a blood pressure is read only as exact values: a comparator makes it "
                    "a bound, which critlang does not read for a pressure"
                    if k == "comparator"
                    else f"{str(k)[:40]!r} is not a key of a value (did you mean {close[0]!r}?)"
                )
                self.problem(fact, f"{why}; not used")
                return False
        shown = ", ".join(repr(str(k)[:40]) for k in extra[:5])
        self.problem(fact, f"keys critlang does not read, ignored: {shown}")
        return True

    def dated(
        self, obs: Observation, entry: dict[str, Any], when: When | None, status: Any
    ) -> Observation:
        """A value read from an entry, with the entry's date, source and status."""
        source = entry.get("source") if isinstance(entry.get("source"), str) else None
        if obs.source:  # a scale conversion's note
            source = f"{source}; {obs.source}" if source else obs.source
        return replace(
            obs,
            date=when.first if when else None,
            source=source,
            instant=when.instant if when else None,
            stamp=when.text if when and when.instant else None,
            status=status if isinstance(status, str) else None,
        )

    def fact_value(self, fact: str, t: Type, raw: Any) -> list[Observation]:
        """The candidates for a fact's value: one (decided), several (a conflict), none."""
        raw = _one(raw)
        if isinstance(raw, Duplicate):  # the same fact twice: each read as a whole
            found: list[Observation] = []
            for value in raw.values:
                found += self.fact_value(fact, t, value)
            return self.distinct(found, "the fact is given twice (a duplicate JSON key)", fact)
        if isinstance(t, ListT):
            obs = self.list_fact(fact, t, raw)
            return [] if obs is None else [obs]
        entries = raw if isinstance(raw, list) else [raw]
        look = self.c.facts[fact].lookback if fact in self.c.facts else None
        start = anchor = None
        skipped: list[str] = []
        if look is not None and look.quantity is not None:
            anchor = self.anchors.get(look.anchor or ENROLLMENT)
            if anchor is None:
                self.why[fact] = f"the look-back window needs the {look.anchor} date"
                return []
            start = window_start(anchor, look.quantity.value, parse_unit(look.quantity.unit))
            low, high = start.isoformat(), anchor.isoformat()
            kept = []
            for e in entries:
                d = e.get("date") if isinstance(e, dict) else None
                # a FHIR dateTime's first ten characters are its calendar day in its own
                # offset, the day windows are measured in: skip what is surely outside
                if (
                    isinstance(d, str)
                    and _ISO_DAY.match(d)
                    and not low <= d[:10] <= high
                    and _real_day(d[:10])  # "2024-02-30" is read, to be reported
                ):
                    skipped.append(d[:10])
                else:
                    kept.append(e)
            entries = kept
        candidates: list[Observation] = []
        unread: list[tuple[Any, str]] = []  # values that could not be used: (date, what)
        for mark in self.unread.get(fact, ()):  # values the FHIR reader could not use
            if isinstance(mark, dict):
                # whole (a reason cut at a fixed width read "its subject is could not be
                # used": breaker8 F2); a native record's own text is bounded, said so
                source = str(mark.get("source"))
                if len(source) > 300:
                    source = source[:300] + "… (cut)"
                unread.append((_one(mark.get("date")), source))
        for e in entries:
            o = self.entry(fact, t, e)
            if o is not None:
                candidates.append(o)
            elif self.unreadable(t, e):
                when = e.get("date") if isinstance(e, dict) else None
                unread.append(
                    (_one(when), f"the value dated {when}" if when else "an undated value")
                )
        undated = [o for o in candidates if o.date is None]
        if start is not None and anchor is not None:
            if undated and len(undated) == len(candidates) and not skipped:
                self.problem(
                    fact, f"no date given; it must be measured within {look.quantity.text}"
                )
                return []
            dated = [o for o in candidates if o.date is not None]
            inside = [o for o in dated if start <= o.date <= anchor]  # type: ignore[operator]
            if not inside:
                days = skipped + [o.date.isoformat() for o in dated]  # type: ignore[union-attr]
                if days:
                    newest = max(days)
                    if newest > anchor.isoformat():
                        self.why[fact] = (
                            f"the only value(s) are dated after {look.anchor} "
                            f"({anchor.isoformat()}): the newest is from {newest}"
                        )
                    else:
                        self.why[fact] = (
                            f"too old: the newest value is from {newest}, more than "
                            f"{look.quantity.text} before {look.anchor} ({anchor.isoformat()})"
                        )
                    if undated:
                        self.why[fact] += "; an undated value cannot be placed in the window"
                return []
            # an undated value cannot be ordered against anything (docs/patients.md,
            # "Time"), inside a window as outside one: it may be the newest value inside
            # the window, or older, or outside it. So it is a candidate beside the newest
            # dated one, weighed like any conflict, never dropped in silence
            candidates = inside + undated
        else:  # no window: the newest value as of the evaluation date, never a later one
            later = [o for o in candidates if o.date is not None and o.date > self.as_of]
            if later:
                candidates = [o for o in candidates if o not in later]
                if not candidates:
                    self.why[fact] = (
                        f"the only value(s) are dated after the evaluation date "
                        f"({self.as_of.isoformat()}): the newest is from "
                        f"{max(o.date for o in later).isoformat()}"  # type: ignore[type-var]
                    )
                    return []
        if unread and candidates and self.hidden(fact, candidates, unread, start, anchor):
            return []
        why = "values that cannot be ordered in time"
        if undated and len(undated) < len(candidates):
            why = "an undated value cannot be ordered against the dated ones"
            if start is not None:
                why += " nor placed in the look-back window"
        return self.distinct(newest_of(candidates), why, fact)

    def unreadable(self, t: Type, entry: Any) -> bool:
        """An entry with a value that could not be read (a bad date, unit, number), as
        against one retracted by its status or with no value at all. The same test for
        every kind of fact: a blood pressure's value is its systolic and diastolic."""
        if not isinstance(entry, dict):
            return entry is not None
        status = _one(entry.get("status"))
        if status is not None and (
            (isinstance(status, str) and status in RETRACTED_STATUS)
            or (status == "preliminary" and self.refuse_preliminary)
        ):
            return False
        if isinstance(t, PressureT):
            return any(_one(entry.get(k)) is not None for k in ("systolic", "diastolic"))
        return _one(entry.get("value")) is not None

    def hidden(
        self,
        fact: str,
        candidates: list[Observation],
        unread: list[tuple[Any, str]],
        start: dt.date | None,
        anchor: dt.date | None,
    ) -> bool:
        """True (with a diagnostic) when a value that could not be read may be newer than
        every one that could: the newest value is then unknown, and an older one must not
        decide in its place (docs/patients.md, "What becomes unknown")."""
        limit = anchor if anchor is not None else self.as_of
        dates = [o.date for o in candidates if o.date is not None]
        newest = max(dates) if len(dates) == len(candidates) else None
        # on the newest day, a readable time orders it against timed values
        last = [o.instant for o in candidates if o.date == newest]
        latest = max(last) if last and None not in last else None  # type: ignore[type-var]
        for raw, what in sorted(unread, key=lambda u: (str(u[0]), u[1])):
            try:
                w: When | None = parse_when(raw)
            except ValueError:
                w = None
            if w is not None and w.partial:  # "2026-11": any day of it, none known
                if w.first > limit or (start is not None and w.last < start):
                    continue
                if newest is not None and w.last < newest:
                    continue  # surely older than the newest usable value
            day = w.first if w is not None and not w.partial else _day(raw)
            if day is not None and (day > limit or (start is not None and day < start)):
                continue
            if w is not None and w.instant and latest is not None and day == newest:
                if w.instant < latest:
                    continue
            if day is None or newest is None or day >= newest:
                self.problem(
                    fact,
                    f"{what} could not be used and may be the newest: the older value(s) "
                    "do not decide",
                )
                return True
        return False

    def distinct(self, candidates: list[Observation], why: str, fact: str) -> list[Observation]:
        """One value when the candidates agree, else every distinct one (a conflict)."""
        groups: dict[Any, Observation] = {}
        # of equal values, a dated one stands for them (a window holds it; undated, an
        # agreeing value would fall out of the SQL engine's window), else the first
        for o in sorted(candidates, key=lambda o: (o.date is None, _order(o))):
            groups.setdefault(o.same_value(), o)
        found = sorted(groups.values(), key=_order)
        if len(found) > 1:
            shown = "; ".join(o.shown() for o in found[:MAX_CANDIDATES])
            self.problem(
                fact,
                f"conflicting values ({why}): {shown}; a criterion is decided only where "
                "every one of them decides it alike",
            )
        return found

    # ------------------------------------------------------------------ the record
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
        pid = _one(data.get("id"))
        if isinstance(pid, Duplicate):
            raise RecordError("the record gives two different ids: which patient is it?")
        if isinstance(_one(data.get("as_of")), Duplicate):
            # the date it is to be evaluated at decides every window (breaker7 F6: the
            # last copy won, ELIGIBLE or UNDETERMINED by key order)
            raise RecordError("the record gives two different `as_of` dates: which day is it?")
        pid = str(pid) if isinstance(pid, (str, int)) else Path(self.path).stem
        raw_anchors = self.merged(data.get("anchors"), "anchors")
        self.anchors = {}
        for name in self.c.anchors:
            raw = raw_anchors.get(name)
            self.anchors[name] = self.date(f"anchor {name}", raw) if raw is not None else None
        self.anchors[ENROLLMENT] = self.as_of
        deceased = self.deceased(data.get("deceased"))
        unread = data.get("unread")
        self.unread = unread if isinstance(unread, dict) else {}
        raw_facts = self.merged(data.get("facts"), "facts")
        self.patient_sex, self.patient_birth = self.sex_and_birth(raw_facts)
        facts: dict[str, Observation | None] = {}
        alternatives: dict[str, list[Observation]] = {}
        for name, t in fact_types(self.c).items():
            if isinstance(t, ErrorT):
                continue
            raw = raw_facts.get(name)
            if raw is None:
                facts[name] = None
                self.why.setdefault(name, "not in the record")
                continue
            found = self.fact_value(name, t, raw)
            facts[name] = found[0] if len(found) == 1 else None
            if len(found) > 1:
                alternatives[name] = found[:MAX_CANDIDATES]
                if len(found) > MAX_CANDIDATES:
                    del alternatives[name]
                    self.why[name] = f"{len(found)} conflicting values: too many to weigh"
                else:
                    self.why[name] = f"{len(found)} conflicting values"
            elif not found:
                self.why.setdefault(name, "no usable value")
        while alternatives and prod(map(len, alternatives.values())) > MAX_WORLDS:
            name = max(sorted(alternatives), key=lambda k: len(alternatives[k]))
            del alternatives[name]
            self.why[name] += " (too many conflicts in this record to weigh them all)"
        record = Record(pid, self.path, facts, self.anchors, self.why, self.problems)
        record.alternatives = alternatives
        record.deceased = deceased
        return record

    def sex_and_birth(self, raw_facts: dict[str, Any]) -> tuple[str | None, When | None]:
        """The patient's sex and birth date, to choose among reference ranges (their
        appliesTo and age): from the facts bound to FHIR Patient.gender and
        Patient.birthDate; None where no such fact gives one clear value."""
        sex: str | None = None
        birth: When | None = None
        for fact, codes in sorted(self.c.bindings.items()):
            for code in codes:
                if code.system != "fhir":
                    continue
                raw = _one(raw_facts.get(fact))
                element = code.value.removeprefix("Patient.")
                if element == "gender" and raw in ("female", "male"):
                    sex = raw
                elif element == "birthDate" and isinstance(raw, str):
                    try:
                        birth = parse_when(raw)
                    except ValueError:
                        birth = None
        return sex, birth

    def merged(self, raw: Any, key: str) -> dict[str, Any]:
        """The `facts` or `anchors` object; given twice, the two merged (a name in both
        with different values is a Duplicate, read as a conflict)."""
        if raw is None:
            return {}
        parts = raw.values if isinstance(raw, Duplicate) else (raw,)
        out: dict[str, Any] = {}
        for part in parts:
            if not isinstance(part, dict):
                self.problem(key, f"`{key}` must be an object")
                continue
            for name, value in part.items():
                if name in out:
                    prev = out[name]
                    before = prev.values if isinstance(prev, Duplicate) else (prev,)
                    out[name] = Duplicate((*before, value))
                else:
                    out[name] = value
        return out

    def deceased(self, raw: Any) -> bool | None:
        """FHIR Patient.deceased[x] (a modifier element): see deceased_state."""
        state, why = deceased_state(raw, self.as_of)
        if why is not None:
            self.problem("deceased", why)
        return state


def _order(o: Observation) -> tuple[str, ...]:
    """A deterministic order for candidates, never their place in the file."""
    return (o.shown(), o.same_value())


# unit texts lab systems write for a ratio that is its own scale (the INR; LOINC 6301-6
# gives the UCUM unit {INR}): the number itself
UNITY_WORDS = frozenset({"INR", "ratio", "Ratio", "index"})


def _unity(unit: Any) -> bool:
    """A unit that is the number 1 (UCUM annotations such as {INR}, {ratio}, {index}: UCUM
    section 12); `%` is 1/100 and `s` a time: a value in them is not the plain number."""
    from ..ucum import read_unit
    from ..units import UnitError

    if not isinstance(unit, str):
        return False
    if unit.strip() in UNITY_WORDS:
        return True
    try:
        u = read_unit(unit, None)
    except UnitError:
        return False
    return u.dims == () and u.factor == 1
