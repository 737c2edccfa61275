"""Explanations, part 4: list rules, summarised by the rule ("2 of 4 pet lesions with
krenning >= 2"), each item with its fields as recorded.

`ListClauses` is a part of `explain.Explainer` (it reads the walker's state and helpers).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from . import nodes as n
from .backends.runtime import future_items, only_future
from .checker import ENROLLMENT
from .data.records import Observation
from .explain_words import Clause, Val, day_text, is_range, num, span_words
from .future_events import past_date_fields
from .typesys import DateT, ScaleT, Type


class ListClauses:
    def quantified(self, e: n.Quantified, env: dict[str, Val]) -> Clause:
        items = self.f.get(e.list_name)
        what = self.label(e.list_name)
        rule = self.source(e.body)
        if items is None:
            why = self.record.why_unknown.get(e.list_name, "not in the record")
            return Clause(None, f"{what} unknown ({why})", kind="list")
        t = self.c.record_types[e.list_name]
        fields = dict(getattr(t, "fields", ()))
        yes = unknown = 0
        rows: list[Clause] = []
        raw = self.record.facts[e.list_name]
        raw_items = raw.value if raw is not None else []
        for i, item in enumerate(items):
            inner = dict(env)
            for k, v in item.items():
                shown = self.field_text(k, v, fields.get(k), raw_items, i)
                inner[k] = Val(v, shown)
            c = self.cond(e.body, inner)
            c.item = i + 1
            rows.append(c)
            if c.value is None:
                unknown += 1
            elif c.value:
                yes += 1
        total = len(items)
        q = e.quantifier
        need = {
            "any": "at least one",
            "all": "all",
            "no": "none",
            "majority": "more than half",
            "at_least": f"at least {e.count}",
        }[q]
        if q == "any":
            v = True if yes else (None if unknown else False)
        elif q == "no":
            v = False if yes else (None if unknown else True)
        elif q == "all":
            v = False if yes + unknown < total else (None if unknown else True)
        elif q == "majority":
            v = True if 2 * yes > total else (False if 2 * (yes + unknown) <= total else None)
        else:
            k = e.count or 0
            v = True if yes >= k else (False if yes + unknown < k else None)
        words = e.list_name.replace("_", " ")
        if not total:
            summary = f"no {words} recorded ({what}); the rule asks for {need} with {rule}"
        else:
            summary = f"{yes} of {total} {words} with {rule}"
            if unknown:
                summary += f" ({unknown} unknown)"
            summary += f"; the rule asks for {need}"
        if v is (q == "no") and self.only_future(e, env, fields):
            v = None  # future_events.py: such an event may still happen
            day = day_text(self.f.get("@" + ENROLLMENT))
            summary += (
                f"; only an item dated after the evaluation date ({day}) could meet it, "
                "and it may still happen"
            )
        return Clause(v, summary, rows, "list", flip=q == "no")

    def only_future(self, e: n.Quantified, env: dict[str, Val], fields: dict[str, Any]) -> bool:
        """The body over future_events.py's two hypothetical items (runtime.future_items)."""
        dates = past_date_fields(self.c, e)
        if not dates:
            return False
        results = []
        for item in future_items(self.f.get("@" + ENROLLMENT), dates, tuple(fields)):
            inner = dict(env)
            inner.update({k: Val(v, f"{k} unknown" if v is None else k) for k, v in item.items()})
            results.append(self.cond(e.body, inner).value)
        return only_future(results)

    def field_text(self, name: str, v: Any, t: Type | None, raw: list[Any], i: int) -> str:
        if v is None:
            return f"{name} unknown"
        if isinstance(t, ScaleT) and isinstance(v, int):
            return f"{name} {t.members[v]}"
        if isinstance(v, bool):
            return f"{name} {'yes' if v else 'no'}"
        src = raw[i].get(name) if i < len(raw) and isinstance(raw[i], dict) else None
        if is_range(v):  # a partial date, an ongoing end, a censored value: as recorded
            if isinstance(src, Observation):
                return f"{name} {src.shown()}"
            if src is not None:
                return f"{name} {src}"
            return f"{name} {day_text(v) if isinstance(t, DateT) else span_words(v)}"
        if isinstance(v, int) and isinstance(t, DateT):
            return f"{name} {dt.date.fromordinal(v).isoformat()}"
        if isinstance(v, float):
            if isinstance(src, Observation):
                return f"{name} {src.shown()}"
            return f"{name} {num(v)}"
        return f"{name} {str(v).replace('_', ' ')}"
