"""Explanations, part 3: dates against anchors (windows, `at least ... before`, `between
... before`, periods, `before` / `after`), with the same edges and three-valued rules as
the compiled code (backends/python_conditions.py): a window's edge in days or calendar
months, a partial date or an ongoing end (runtime.Range) through `runtime.r_window`.

`TimeClauses` is a part of `explain.Explainer` (it reads the walker's state and helpers).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from . import nodes as n
from .backends.runtime import add_months, r_between, r_window
from .backends.runtime_calendar import months_back
from .explain_words import Clause, Val, day_text, is_range
from .time_edges import edge_side
from .units import TIME, parse_unit

_KIND = {"within": "within", "more": "more than", "less": "less than"}
_SAYS = {
    True: "every possible date is in it",
    False: "no possible date is in it",
    None: "some possible dates are in it, others not",
}


def _edge(a: Any, duration: n.QuantityLit, sign: int, side: str = "lo") -> Any:
    """`a + sign * duration` as the compiled code computes it (python_conditions.edge):
    weeks and days fixed lengths, months and years calendar steps from the earlier date
    (time_edges.py: before the anchor, the `side` edge)."""
    unit = parse_unit(duration.unit)
    amount = duration.value * unit.factor
    if unit.dims == (("[calendar]", 1),) and amount.denominator == 1 and sign < 0:
        return months_back(a, int(amount), side)
    if unit.dims == (("[calendar]", 1),) and amount.denominator == 1:
        return add_months(a, sign * int(amount))
    days = amount * (Fraction(30436875, 1000000) if unit.dims != TIME else 1)
    days = days / 86400 if unit.dims == TIME else days
    return a + float(sign * days)


def _relative(x: Any, y: Any) -> str:
    """How far a date is from its anchor: "35 days before", "same day"."""
    gap = x - y
    if not gap:
        return "same day"
    return f"{abs(int(gap))} days {'before' if gap < 0 else 'after'}"


def _span(q: n.QuantityLit) -> str:
    return q.raw or q.text


class TimeClauses:
    def known_as(self, d: Val, a: Any = None, ongoing_clamp: bool = False) -> str:
        """How a date known only as an interval is taken ("" for an exact date)."""
        v = d.value
        if not is_range(v):
            return ""
        if v.ongoing and ongoing_clamp and a is not None and not is_range(a):
            return (
                f"an exposure not ended by the evaluation date counts as ending on "
                f"{day_text(a)} at the latest"
            )
        return f"known only as {day_text(v)}"

    def window(self, e: n.Window, env: dict[str, Val]) -> Clause:
        d, a = self.plain(self.value(e.subject, env)), self.plain(self.value(e.anchor, env))
        kind = _KIND[e.kind]
        text = f"{d.shown} {kind} {_span(e.duration)} {e.direction} {a.shown}"
        if d.value is None or a.value is None:
            return Clause(None, text)
        before = e.direction == "before"
        edge = _edge(a.value, e.duration, -1 if before else 1, edge_side(e))
        x, y = d.value, a.value
        if is_range(x) or is_range(y):  # as the compiled code: runtime.r_window
            ok = r_window(e.kind, before, x, y, edge)
            where = _window_words(e.kind, before, y, edge)
            how = self.known_as(d, y, before)
            return Clause(ok, f"{text} ({where}; {how}: {_SAYS[ok]})")
        if before:
            ok = {"within": edge <= x <= y, "more": x < edge, "less": edge < x <= y}[e.kind]
        else:
            ok = {"within": y <= x <= edge, "more": x > edge, "less": y <= x < edge}[e.kind]
        return Clause(ok, f"{text} ({_relative(x, y)})")

    def date_bound(self, e: n.DateBound, env: dict[str, Val]) -> Clause:
        """`S at least D before A` (S <= A - D), `S no later than A` (S <= A), mirrors."""
        d, a = self.plain(self.value(e.subject, env)), self.plain(self.value(e.anchor, env))
        if e.duration is not None:
            phrase = f"at least {_span(e.duration)} {e.direction}"
        else:
            phrase = {
                ("<=", "no_later"): "no later than",
                (">=", "no_earlier"): "no earlier than",
                ("<=", "on_or"): "on or before",
                (">=", "on_or"): "on or after",
            }.get((e.op, e.wording), "on or before" if e.op == "<=" else "on or after")
        text = f"{d.shown} {phrase} {a.shown}"
        if d.value is None or a.value is None:
            return Clause(None, text)
        edge = a.value
        if e.duration is not None:
            edge = _edge(a.value, e.duration, -1 if e.direction == "before" else 1, edge_side(e))
        side = "on or before" if e.op == "<=" else "on or after"
        if is_range(d.value) or is_range(edge):
            # three-valued on an interval, as the compiled code (date_bound)
            ok = d.value <= edge if e.op == "<=" else d.value >= edge
            how = self.known_as(d) or f"the anchor is known only as {day_text(a.value)}"
            says = {
                True: f"every possible date is {side} it",
                False: f"no possible date is {side} it",
                None: f"some possible dates are {side} it, others not",
            }[ok]
            return Clause(ok, f"{text} ({side} {day_text(edge)}; {how}: {says})")
        ok = d.value <= edge if e.op == "<=" else d.value >= edge
        rel = _relative(d.value, a.value)
        if e.duration is None:
            return Clause(ok, f"{text} ({rel})")
        return Clause(ok, f"{text} ({side} {day_text(edge)}; {rel})")

    def window_between(self, e: n.WindowBetween, env: dict[str, Val]) -> Clause:
        """`S between D1 and D2 before A`: A - D2 <= S <= A - D1 (after: A + D1 .. A + D2)."""
        ends = e.durations()
        if ends is None:
            raise TypeError(e)
        d, a = self.plain(self.value(e.subject, env)), self.plain(self.value(e.anchor, env))
        text = f"{d.shown} between {_span(ends[0])} and {_span(ends[1])} {e.direction} {a.shown}"
        if d.value is None or a.value is None:
            return Clause(None, text)
        sign = -1 if e.direction == "before" else 1
        near, far = _edge(a.value, ends[0], sign, "hi"), _edge(a.value, ends[1], sign, "lo")
        low, high = (far, near) if sign < 0 else (near, far)
        where = f"{day_text(low)} to {day_text(high)}"
        if is_range(d.value) or is_range(low) or is_range(high):
            ok = r_between(d.value, low, high)  # as the compiled code (window_between)
            how = self.known_as(d) or f"the anchor is known only as {day_text(a.value)}"
            return Clause(ok, f"{text} ({where}; {how}: {_SAYS[ok]})")
        ok = low <= d.value <= high
        return Clause(ok, f"{text} ({where}; {_relative(d.value, a.value)})")

    def period(self, e: n.Period, env: dict[str, Val]) -> Clause:
        """START..END against [LOW, HIGH]: START <= HIGH and END >= LOW (Kleene)."""
        start = self.plain(self.value(e.start, env))
        end = self.plain(self.value(e.end, env))
        a = self.plain(self.value(e.anchor, env))
        if e.kind == "ongoing":
            how = f"ongoing at {a.shown}"
        else:
            assert e.duration is not None
            how = f"overlaps {_span(e.duration)} {e.direction} {a.shown}"
        text = f"{start.shown} to {end.shown} {how}"
        low = high = a.value
        if e.duration is not None and a.value is not None:
            sign = -1 if e.direction == "before" else 1
            shifted = _edge(a.value, e.duration, sign)
            low, high = (shifted, a.value) if sign < 0 else (a.value, shifted)
        first = None if start.value is None or high is None else start.value <= high
        second = None if end.value is None or low is None else end.value >= low
        by_start = False
        if second is None and start.value is not None and low is not None:
            # an unknown end is never before its start (R4 Period per-1), as the
            # compiled code (python_conditions.period; realfhir7 F3)
            by_start = (start.value >= low) is True
            second = True if by_start else None
        where = f"{day_text(low)} to {day_text(high)}" if low is not None else "anchor unknown"
        if first is False or second is False:
            ok: bool | None = False
        else:
            ok = None if first is None or second is None else True
        ranged = [v for v in (start, end) if is_range(v.value)]
        if ranged or is_range(a.value):
            # each comparison three-valued on an interval, as the compiled code (period):
            # an ongoing end is some day from the evaluation date on
            told = (
                "; ".join(f"{v.shown.split(' ')[0]} {self.known_as(v)}" for v in ranged)
                or f"the anchor is known only as {day_text(a.value)}"
            )
            says = {
                True: "every possible period reaches into it",
                False: "no possible period reaches into it",
                None: "some possible periods reach into it, others not",
            }[ok]
            return Clause(ok, f"{text} (window {where}; {told}: {says})")
        if start.value is not None and end.value is not None and end.value < start.value:
            return Clause(None, f"{text} (the end is before the start: no period)")
        if ok is None:
            return Clause(None, text)
        if ok and by_start:
            return Clause(
                True,
                f"{text} (window {where}: it starts in or after the window's first day and "
                "an end is never before its start, so whatever the end, it reaches into it)",
            )
        if ok:
            return Clause(True, f"{text} (window {where}: the period reaches into it)")
        return Clause(False, f"{text} (window {where}: the period lies outside it)")

    def order(self, e: n.Order, env: dict[str, Val]) -> Clause:
        d, a = self.plain(self.value(e.subject, env)), self.plain(self.value(e.anchor, env))
        text = f"{d.shown} {e.direction} {a.shown}"
        if d.value is None or a.value is None:
            return Clause(None, text)
        ok = d.value < a.value if e.direction == "before" else d.value > a.value
        if is_range(d.value) or is_range(a.value):
            says = {
                True: f"every possible date is {e.direction} it",
                False: f"no possible date is {e.direction} it",
                None: f"some possible dates are {e.direction} it, others not",
            }[ok]
            how = self.known_as(d) or f"the anchor is known only as {day_text(a.value)}"
            return Clause(ok, f"{text} ({how}: {says})")
        return Clause(ok, text)


def _window_words(kind: str, before: bool, a: Any, edge: Any) -> str:
    """The window a date must fall in, in dates ("window 2025-11-27 to 2026-11-27")."""
    anchor, far = day_text(a), day_text(edge)
    if before:
        return {
            "within": f"window {far} to {anchor}",
            "more": f"window: before {far}",
            "less": f"window: after {far}, up to {anchor}",
        }[kind]
    return {
        "within": f"window {anchor} to {far}",
        "more": f"window: after {far}",
        "less": f"window: from {anchor}, before {far}",
    }[kind]
