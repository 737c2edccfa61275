"""Explanations, part 5: a clause tree as the indented lines `critlang eval` prints, and
the deciding clauses as written in the rule (`decided_by`)."""

from __future__ import annotations

from typing import Any

from .explain_words import MARK, Clause


def deciding_sources(clause: Clause, status: Any) -> list[str]:
    """The deciding clauses as written in the rule (the same choice as `reasons`)."""
    want = status if status in (True, False) else None
    out: list[str] = []
    _sources(clause, want, out)
    return list(dict.fromkeys(out))


def _sources(c: Clause, want: bool | None, out: list[str]) -> None:
    if c.kind == "worlds":  # conflicting values: what decided in each world
        for w in c.children:
            _sources(w.children[0], w.value if w.value in (True, False) else None, out)
    elif c.kind == "applies":
        _sources(c.children[0], False, out)
    elif c.kind in ("and", "or"):
        picked = [t for t in c.children if t.value is want] or c.children
        for t in picked:
            _sources(t, want, out)
    elif c.kind == "implies":
        for t in c.children:
            _sources(t, t.value, out)
    elif c.kind == "unless":
        rule, exc = c.children
        if c.value is False and exc.value is True:
            out.append(f"unless {exc.source}")
        else:
            _sources(rule, want, out)
    else:
        out.append(c.source)


def reasons(clause: Clause, status: Any) -> list[str]:
    """The clauses that decided, as indented lines: all that made it true (met), all
    that failed (not met), the open ones (unknown)."""
    out: list[str] = []
    _lines(clause, status if status in (True, False) else None, 0, out)
    return out


MAX_WORLDS_SHOWN = 8


def _lines(c: Clause, want: bool | None, depth: int, out: list[str]) -> None:
    pad = "  " * depth
    if c.kind == "worlds":  # conflicting values, each candidate (combination) weighed
        out.append(f"{pad}{c.text}")
        for w in c.children[:MAX_WORLDS_SHOWN]:
            out.append(f"{pad}  {w.text}")
            inner = w.children[0]
            _lines(inner, w.value if w.value in (True, False) else None, depth + 2, out)
        if len(c.children) > MAX_WORLDS_SHOWN:
            out.append(f"{pad}  ... and {len(c.children) - MAX_WORLDS_SHOWN} more")
        return
    if c.kind == "applies":
        out.append(f"{pad}not applicable: the criterion applies only when")
        _lines(c.children[0], False, depth + 1, out)
        return
    if c.kind in ("and", "or"):
        picked = [t for t in c.children if t.value is want]
        if not picked:
            picked = c.children
        if len(picked) == 1:
            _lines(picked[0], want, depth, out)
            return
        join = {
            ("and", True): "all of these hold",
            ("and", False): "these fail",
            ("or", True): "these hold",
            ("or", False): "none of these holds",
        }.get((c.kind, c.value), "still open")
        out.append(f"{pad}{join}:")
        for t in picked:
            _lines(t, want, depth + 1, out)
        return
    if c.kind == "not":
        inner = c.children[0]
        inner_want = None if want is None else not want
        if inner.kind == "leaf" or inner.kind == "list":
            out.append(f"{pad}{MARK[c.value]} not: {inner.text}")
            out += [f"{pad}    {x}" for x in inner.notes]
            item_want = (
                None if inner_want is None else (not inner_want if inner.flip else inner_want)
            )
            for row in inner.children if inner.kind == "list" else []:
                if row.value is item_want:
                    _item_lines(row, item_want, depth, out)
            return
        out.append(f"{pad}not:")
        _lines(inner, inner_want, depth + 1, out)
        return
    if c.kind == "implies":
        premise, conclusion = c.children
        if c.value is True and premise.value is False:
            out.append(f"{pad}✓ the condition does not hold, so nothing is required:")
            _lines(premise, False, depth + 1, out)
            return
        out.append(f"{pad}{MARK[premise.value]} if:")
        _lines(premise, premise.value, depth + 1, out)
        out.append(f"{pad}{MARK[conclusion.value]} then:")
        _lines(conclusion, conclusion.value, depth + 1, out)
        return
    if c.kind == "unless":
        rule, exc = c.children
        if c.value is True:
            _lines(rule, True, depth, out)
            out.append(f"{pad}{MARK[exc.value]} unless (exception does not apply): {exc.text}")
            return
        if c.value is False and exc.value is True:
            if rule.value is not False:
                _lines(rule, rule.value, depth, out)
            else:
                _lines(rule, False, depth, out)
            out.append(f"{pad}✓ unless (the exception applies): {exc.text}")
            return
        _lines(rule, want, depth, out)
        out.append(f"{pad}{MARK[exc.value]} unless: {exc.text}")
        return
    out.append(f"{pad}{MARK[c.value]} {c.text}")
    for x in c.notes:
        out.append(f"{pad}    {x}")
    if c.kind == "list":
        item_want = None if want is None else (not want if c.flip else want)
        shown = [r for r in c.children if r.value is item_want or item_want is None]
        for r in shown[:10]:
            _item_lines(r, item_want, depth, out)
        if len(shown) > 10:
            out.append(f"{pad}    ... and {len(shown) - 10} more")


def _item_lines(row: Clause, want: bool | None, depth: int, out: list[str]) -> None:
    """One list item: a single clause on one line, a compound one clause by clause."""
    pad = "  " * depth
    if row.kind == "leaf":
        out.append(f"{pad}    {MARK[row.value]} item {row.item}: {row.text}")
        return
    out.append(f"{pad}    {MARK[row.value]} item {row.item}:")
    _lines(row, want, depth + 3, out)
