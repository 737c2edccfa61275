"""A yes/no fact from every FHIR resource bound to it: Conditions, Procedures and
Observations together, and what `history` means for each (docs/fhir.md, "Yes/no facts").

`settle(ex, st, untold)` is called once per patient, after every resource was read, with
the Extractor `ex`, the patient's state `st` (data/fhir._State: Observation entries in
`st.facts`, Condition/Procedure states in `st.conditions`) and the Conditions and
Procedures whose kind cannot be told (`untold`: label, state, codes shown). It leaves in
`st.facts[fact]` what the record reader is to read: True, False, the current Observation
entries, or nothing (unknown, with a diagnostic), never one source silently over another.

Rules (each a row of docs/fhir.md):

- `history current` (the default) on an Observation-read value (R4 Observation.value[x]
  valueBoolean, dated by effective[x]): a result is current only inside the fact's
  look-back window (`measured within N before ANCHOR`); without one, only a result of the
  screening day itself is current (a test tells the state when it was taken; how long a
  yes or a no lasts is not written anywhere, breaker8 F18: a positive pregnancy test of
  2010 made the patient pregnant in 2024). A result that is not current (older, or
  undated) decides nothing: a yes keeps the fact from "no" (the state may have lasted),
  a no is set aside (it hides nothing).
- `history ever`: a yes at any time on or before the screening date is yes; a no says
  nothing of any other time, so it is set aside.
- Conditions and Procedures give the fact's state on the screening date
  (fhir_condition.condition_fact). Beside current Observation values, the Observations'
  value is the one the record reader picks (reader.Reader.fact_value: the newest, with
  its conflicts and may-be-newest rule). When the two agree, that is the value; a yes
  from either stands beside a Condition that cannot be read (as among Conditions); when
  one says yes and the other no, the fact is unknown with a diagnostic naming both
  (breaker8 F17: a resolved pregnancy Condition had silently overruled a positive test
  12 days before screening). A condition's recorded state and a dated result are not
  ordered in time (the state is the record's as exported), so neither is newer.
- A Condition or Procedure coded only in systems the protocol binds no yes/no fact in
  (`untold`: a local code, the text alone, no code; fhir_status.untold) may be any of
  them: where the fact would be "no" (matching Conditions all not current, or absent
  under `--absent-means-no conditions`), it is unknown with a diagnostic instead
  (breaker8 F7), as a therapy of such codes keeps a list open (realfhir7 F6). One set
  aside (refuted, entered-in-error, not done, begun after the screening date) hides
  nothing; a resolved one hides nothing from a `history current` fact.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from ..checker import ENROLLMENT
from ..typesys import BoolT
from ..units import parse_unit
from .fhir_condition import condition_fact, condition_state
from .fhir_decode import Resource
from .fhir_events import NotYet, event_span, past_event
from .fhir_observation import Unusable
from .fhir_status import UNTOLD, not_evidence
from .reader_time import _day
from .records import RecordProblem, window_start
from .values import When

# condition_fact states that make a yes (in each history mode), and those that keep a
# fact from "no" without making it yes
_YES = {False: {"current", "procedure"}, True: {"current", "past", "procedure"}}
_UNSURE = {
    False: {"unknown", "unconfirmed-current"},
    True: {"unknown", "unconfirmed-current", "unconfirmed-past"},
}
_SAYS = {"current": "current", "past": "not current", "procedure": "performed"}


def untold_state(r: Resource, as_of: dt.date, birth: When | None) -> str | None:
    """The state of a Condition or Procedure whose kind cannot be told, as condition_fact
    reads states; None when it hides nothing (set aside by its status or verification,
    or begun after the screening date)."""
    kind = r.resourceType or ""
    if r.malformed is not None:
        return "unknown"
    said = not_evidence(r, kind)
    if said is not None:
        return "unknown" if said[1] else None
    try:
        if kind == "Procedure":
            span = event_span(r, "performed", birth)
            if span is not None:
                past_event(span, as_of, "performed")
            return "procedure"
        state = condition_state(r, as_of, birth)
    except NotYet:
        return None
    except (Unusable, msgspec.ValidationError, msgspec.DecodeError):
        return "unknown"
    return None if state == "ignored" else state


def settle(ex: Any, st: Any, untold: list[tuple[str, str, str]]) -> None:
    """Every yes/no fact bound to codes, from all its resources (module docstring)."""
    for fact in sorted(ex.c.bindings):
        info = ex.c.facts.get(fact)
        if info is None or not isinstance(info.type, BoolT):
            continue
        ever = ex.history.get(fact) == "ever"
        found = list(st.conditions.get(fact, ()))
        raw = st.facts.pop(fact, None)
        kept = _current(ex, st, fact, raw, ever, found) if isinstance(raw, list) else []
        value, _ = condition_fact(found, ever)
        unsure = [label for s, label in found if s in _UNSURE[ever]]
        blocking = sorted(f"{label} ({shown})" for label, s, shown in untold if _blocks(s, ever))
        if not kept:
            if value is True or (value is False and not blocking):
                st.facts[fact] = value
            elif value is False or (value is None and blocking and fact in ex.absent_facts):
                _untold(st, fact, blocking)
            elif conf := [label for s, label in found if s.startswith("unconfirmed")]:
                shown = ", ".join(sorted(conf))
                st.problems.append(
                    RecordProblem(
                        st.path, fact, f"only a provisional/unconfirmed diagnosis ({shown})"
                    )
                )
            continue
        st.facts[fact] = kept
        if value is None and not unsure and not blocking:
            continue  # the Observations alone: the record reader picks among them
        seen, pick = _observed(ex, st, fact, info.type, kept)
        if seen is None:
            if value is not None:
                st.problems.append(
                    RecordProblem(
                        st.path,
                        fact,
                        f"{_condition_words(found, value, ever)}, but the Observations do "
                        "not give one value (below): unknown",
                    )
                )
            continue
        if value is not None and value is not seen:
            del st.facts[fact]
            st.problems.append(
                RecordProblem(
                    st.path,
                    fact,
                    f"{_condition_words(found, value, ever)}, but {pick}: they disagree, and a "
                    "condition's recorded state and a dated result cannot be ordered in "
                    "time, so neither decides (unknown)",
                )
            )
        elif seen is False and value is None and unsure:
            del st.facts[fact]
            st.problems.append(
                RecordProblem(
                    st.path,
                    fact,
                    f"{pick}, but {', '.join(sorted(unsure))} could not be read and may say "
                    "yes: unknown",
                )
            )
        elif seen is False and value is not False and blocking:
            del st.facts[fact]
            _untold(st, fact, blocking)


def _blocks(state: str, ever: bool) -> bool:
    return state in _YES[ever] or state in _UNSURE[ever]


def _untold(st: Any, fact: str, blocking: list[str]) -> None:
    shown = "; ".join(blocking[:3]) + (" ..." if len(blocking) > 3 else "")
    st.problems.append(
        RecordProblem(
            st.path,
            fact,
            f"{len(blocking)} Condition/Procedure resource(s) {UNTOLD}, so whether they are "
            f"{fact} cannot be told ({shown}): not read as no",
        )
    )


def _condition_words(found: list[tuple[str, str]], value: bool, ever: bool) -> str:
    """'Condition/c1 (not current) says no', naming the resources behind the value."""
    if value:
        why = [(label, s) for s, label in found if s in _YES[ever]]
    else:
        why = [(label, s) for s, label in found if s not in {"ignored"}]
    shown = ", ".join(f"{label} ({_SAYS.get(s, s)})" for label, s in sorted(why)[:3])
    return f"{shown} {'say' if len(why) > 1 else 'says'} {'yes' if value else 'no'}"


def _observed(ex: Any, st: Any, fact: str, t: Any, kept: list[Any]) -> tuple[bool | None, str]:
    """The Observations' value as the record reader picks it (one reading path), and how
    to name it; (None, "") when they give no one value (a conflict, none usable, a value
    that may be newer could not be read)."""
    from .reader import Reader  # (the reader imports the back ends' types)

    reader = Reader(ex.c, st.path, ex._as_of)
    reader.anchors = _anchors(ex)
    reader.unread = {fact: st.unread.get(fact, [])}
    found = reader.fact_value(fact, t, kept)
    if len(found) != 1 or not isinstance(found[0].value, bool):
        return None, ""
    o = found[0]
    when = f" on {o.date.isoformat()}" if o.date is not None else ""
    return o.value, f"{o.source or 'an Observation'} says {'yes' if o.value else 'no'}{when}"


def _anchors(ex: Any) -> dict[str, dt.date | None]:
    out: dict[str, dt.date | None] = {}
    for name in ex.c.anchors:
        raw = ex.anchors.get(name)
        try:
            out[name] = dt.date.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            out[name] = None
    out[ENROLLMENT] = ex._as_of  # the screening date (Reader.read does the same)
    return out


def _current(
    ex: Any, st: Any, fact: str, entries: list[Any], ever: bool, found: list[tuple[str, str]]
) -> list[Any]:
    """The Observation entries that say the fact's state as `history` means it (module
    docstring); the others get their diagnostic, and a yes that is not current keeps the
    fact from "no" (an "unknown" state added to `found`)."""
    as_of = ex._as_of
    look = ex.c.facts[fact].lookback
    start: dt.date | None
    if ever:
        start, end, words = None, as_of, ""
    elif look is not None and look.quantity is not None:
        anchor = _anchors(ex).get(look.anchor or ENROLLMENT)
        if anchor is None:
            return entries  # the record reader says the window needs the anchor's date
        start = window_start(anchor, look.quantity.value, parse_unit(look.quantity.unit))
        end = anchor
        words = (
            f"`history current`, measured within {look.quantity.text} before "
            f"{look.anchor or ENROLLMENT}: only a result from {start.isoformat()} to "
            f"{end.isoformat()} is current"
        )
    else:
        start = end = as_of
        words = (
            f"`history current` and no look-back window: only a result of the screening day "
            f"{as_of.isoformat()} is current (`measured within` says how recent one counts)"
        )
    kept = []
    for e in entries:
        if not isinstance(e, dict):
            kept.append(e)
            continue
        date, value = e.get("date"), e.get("value")
        day = _day(date)
        if date is not None and day is None:
            kept.append(e)  # not a day (partial, invalid): the record reader says why
            continue
        if day is not None and day > end:
            kept.append(e)  # after the period: the record reader says so
            continue
        source = e.get("source") or "an Observation"
        said = f"{'yes' if value else 'no'} {'on ' + str(date) if date else 'undated'}"
        if ever:
            if value is not True:
                st.aside(
                    fact,
                    f"{source}: {said} says nothing of other times, and {fact} is "
                    "`history ever`; not used",
                )
                continue
            kept.append(e)
            continue
        if day is not None and start is not None and day >= start:
            kept.append(e)
        elif value is True:
            st.problems.append(
                RecordProblem(
                    st.path,
                    fact,
                    f"{source}: {said} is not current ({words}); it keeps {fact} from no",
                )
            )
            found.append(("unknown", source))
        else:
            st.aside(fact, f"{source}: {said} is not current ({words}); not used")
    return kept
