"""List facts in the native record reader (a base of reader.py's `Reader`): therapies
and other lists of items, each field read strictly; an exposure's end may be ongoing
(docs/patients.md, "Ongoing therapies"); any other date after the evaluation date (a
start, a test taken) is impossible, as is a start after its end.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..typesys import DateT, ListT, QuantT
from .records import Observation, Ongoing, PartialDate
from .values import Duplicate, _one

END_FIELD = "end"  # the list-item date field that ends an exposure (may be ongoing)


def may_lie_ahead(field: str) -> bool:
    """A list-item date field whose date may be after the evaluation date: an end
    (`end`, `washout_end`: a planned or computed end) or a date named as planned
    (`planned_surgery`, `scheduled_visit`). Every other date field records something that
    happened (`start`, `taken`, `collected`, `performed`): never after the evaluation
    date (docs/patients.md, "What is dated after the evaluation date")."""
    return (
        field == END_FIELD
        or field.endswith("_" + END_FIELD)
        or field.startswith(("planned_", "scheduled_"))
    )


class ListReading:
    """A base of `Reader`; uses its `as_of`, `problem`, `quantity`, `scalar`, `when` and
    `any_date`."""

    as_of: dt.date
    problem: Any
    quantity: Any
    scalar: Any
    when: Any
    any_date: Any

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
                v = _one(element.get(name))
                if isinstance(ftype, QuantT):
                    if isinstance(v, Duplicate):
                        self.problem(label, "given twice with different values")
                        item[name] = None
                        continue
                    meta = v if isinstance(v, dict) else {"value": v}
                    meta = {k: _one(x) for k, x in meta.items()}
                    raw_value = meta.get("value")
                    item[name] = (
                        None if raw_value is None else self.quantity(label, ftype, raw_value, meta)
                    )
                elif isinstance(ftype, DateT) and name == END_FIELD:
                    item[name] = self.end(label, v)
                elif isinstance(ftype, DateT):  # past-only: check_order
                    item[name] = self.any_date(label, v)
                else:
                    item[name] = self.scalar(label, ftype, v)
            self.check_order(fact, i, item)
            extra = sorted(set(element) - {name for name, _ in t.fields})
            if extra:  # ignored, as undeclared facts are (docs/patients.md): the item is
                # used, so the note names the item, never the fact as one set aside
                self.problem(
                    f"{fact}[{i + 1}]", f"fields this protocol does not declare, ignored: {extra}"
                )
            items.append(item)
        return Observation(items)

    def end(self, label: str, raw: Any) -> Any:
        """An exposure's end: a date, "ongoing", or a planned end after the evaluation
        date (ongoing as of then)."""
        if raw == "ongoing":
            return Ongoing(self.as_of, "ongoing")
        if raw is None or isinstance(raw, Duplicate):
            return self.scalar(label, DateT(), raw)
        w = self.when(label, raw)
        if w is None:
            return None
        if w.first > self.as_of:
            return Ongoing(self.as_of, w.text)
        if w.partial:
            return PartialDate(w.first, min(w.last, self.as_of), w.text)
        return w.first

    def check_order(self, fact: str, i: int, item: dict[str, Any]) -> None:
        """Every date of an item but an end or a planned date (may_lie_ahead) records
        something that happened (a start, a test taken, a sample collected): one after
        the evaluation date is impossible, and the item's dates become unknown (docs/
        patients.md, "What is dated after the evaluation date"). An `end` after it is
        ongoing as of then (`end`); a start after its end is impossible too."""
        for name, value in list(item.items()):
            if may_lie_ahead(name) or not isinstance(value, (dt.date, PartialDate)):
                continue
            first = value.first if isinstance(value, PartialDate) else value
            if first > self.as_of:
                # recorded as having happened, it had not happened by the evaluation date:
                # impossible data, never an event "within" a window nor a future one
                self.problem(
                    f"{fact}[{i + 1}]",
                    f"{name} ({value}) after the evaluation date ({self.as_of.isoformat()}): "
                    "impossible for something recorded as having happened",
                )
                for other, v in item.items():
                    if isinstance(v, (dt.date, PartialDate, Ongoing)):
                        item[other] = None
                return
            if isinstance(value, PartialDate) and value.last > self.as_of:
                # the days after the evaluation date are impossible (above): "2026" read on
                # 2026-11-27 is 1 January to 27 November, as a past date fact is
                item[name] = PartialDate(value.first, self.as_of, value.text)
        start, end = item.get("start"), item.get(END_FIELD)
        if start is None or end is None or isinstance(end, Ongoing):
            return
        first = start.first if isinstance(start, PartialDate) else start
        last = end.last if isinstance(end, PartialDate) else end
        if isinstance(first, dt.date) and isinstance(last, dt.date) and first > last:
            self.problem(f"{fact}[{i + 1}]", f"starts ({start}) after it ends ({end}): impossible")
            item["start"] = item[END_FIELD] = None
