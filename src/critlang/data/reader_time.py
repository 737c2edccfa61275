"""Time in the native record reader: which of a fact's values is the newest, what day a
date text names, and whether a patient had died by the evaluation date.

`newest_of(candidates) -> list[Observation]`, `deceased_state(raw, as_of) -> (state,
why)`; see each docstring (docs/patients.md, "Time").
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..frozen_classes import frozen
from .reader_quantity import _one
from .records import _ISO_DAY, Observation
from .values import Duplicate, parse_when


@frozen
class UnreadDeceased:
    """Patient.deceased[x] given by a Patient resource that cannot be read (a
    modifierExtension, data/fhir.py): whatever it says, the patient is perhaps deceased."""

    why: str


def _real_day(text: str) -> bool:
    """A YYYY-MM-DD text that names a day of the calendar (years 1-9999)."""
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def deceased_state(raw: Any, as_of: dt.date) -> tuple[bool | None, str | None]:
    """(dead by `as_of`: True / False / None for perhaps, and why when not False) from
    FHIR Patient.deceased[x] (a modifier element): true, or the date of death. A death
    after the evaluation date leaves the patient alive as of then; a partial date that
    may fall either side, or values that disagree, make it "perhaps" (never eligible yet,
    never ineligible for it). One reading for eval, screen and ingest."""
    raw = _one(raw)
    if raw is None or raw is False:
        return False, None
    if raw is True:
        return True, "the patient is deceased: never eligible"
    if isinstance(raw, Duplicate):
        return None, "given twice with different values: perhaps deceased, so not eligible"
    if isinstance(raw, UnreadDeceased):
        return None, f"{raw.why}: perhaps deceased, so not eligible"
    try:
        w = parse_when(raw)
    except ValueError as exc:
        return None, f"{exc}: perhaps deceased, so not eligible"
    if w.first > as_of:
        return False, None
    if w.last <= as_of:
        return True, f"the patient died on {w.text}: never eligible"
    return None, f"the patient may have died by then ({w.text}): not eligible"


def _day(raw: Any) -> dt.date | None:
    """The calendar day a date text names as written (its first ten characters), or
    None when it names no real day."""
    raw = _one(raw)
    if not isinstance(raw, str) or not _ISO_DAY.match(raw):
        return None
    try:
        return dt.date.fromisoformat(raw[:10])
    except ValueError:
        return None


def newest_of(candidates: list[Observation]) -> list[Observation]:
    """The candidates no other candidate is newer than (docs/patients.md, "Time").

    Values with a time are ordered by instant (UTC); a date-only value against a timed
    one by the timed value's calendar day in its own offset (same day: not ordered);
    date-only values by day; an undated value is ordered against nothing.
    """
    timed = [o for o in candidates if o.instant is not None]
    days = [o for o in candidates if o.instant is None and o.date is not None]
    out: list[Observation] = []
    top: list[Observation] = []
    dmax = max((o.date for o in days), default=None)  # type: ignore[type-var]
    if timed:
        t = max(o.instant for o in timed)  # type: ignore[type-var]
        top = [o for o in timed if o.instant == t]
        out += [o for o in top if dmax is None or dmax <= o.date]  # type: ignore[operator]
    latest = max((o.date for o in timed), default=None)  # type: ignore[type-var]
    if days and (latest is None or latest <= dmax):  # type: ignore[operator]
        out += [o for o in days if o.date == dmax]
    if candidates and not out and dmax is not None:  # a cycle through two offsets
        out = top + [o for o in days if o.date == dmax]
        out += [o for o in timed if o.date > dmax and o not in out]  # type: ignore[operator]
    out += [o for o in candidates if o.date is None]
    return out
