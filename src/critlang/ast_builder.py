"""Parsing: the AST builder. `_ToAst` turns Lark's parse tree into nodes
(nodes.py), enforcing the limits on what a criteria file may spell (numbers, depth).

Used by `to_ast` and `parse` (parser.py).
"""

from __future__ import annotations

import datetime as dt
import re
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from . import nodes as n
from .ast_declarations import _Declarations, _unquote
from .diagnostics import Diagnostic, error
from .frozen_classes import replace
from .source import SourceFile, Span

if TYPE_CHECKING:  # the runtime parser's or Lark's (the same attributes)
    from .lalr_runtime import Meta, Token, Tree

# Limits on what a criteria file may spell (docs/security.md). Numbers: a clinical
# threshold never needs more digits, and longer ones would overflow floats in the
# compiled code or hit Python's 4,300-digit conversion limit. Depth: the syntax tree is
# walked by recursive passes (checker, compiler, interpreter, z3); 1,000 levels is far
# beyond any criterion (490 nested parentheses, 330-term `or` chains stay legal).
MAX_NUMBER_DIGITS = 15  # before and after the decimal point, each
MAX_DEPTH = 1000  # nesting of the syntax tree


class _TooDeep(Exception):
    def __init__(self, meta: Meta) -> None:
        self.meta = meta


_QUANTITY_RE = re.compile(r"(\d+(?:\.\d+)?)[ \t]*(.*)", re.S)


def _split_quantity(text: str) -> tuple[str, str]:
    m = _QUANTITY_RE.fullmatch(text)
    assert m, text  # the QUANTITY terminal guarantees this shape
    return m.group(1), m.group(2).strip()


class _ToAst(_Declarations):
    """Builds AST nodes and nothing else: no checking happens here.

    Reads the parse tree of lalr_runtime.py or of Lark (the same shape): the method named
    for each subtree's rule gets its positions and its children, built first. Tokens are
    strings; everything else in a tree is a subtree.
    """

    def __init__(self, source: SourceFile) -> None:
        self.src = source
        self.problems: list[Diagnostic] = []  # limits exceeded (E901)

    def transform(self, tree: Tree) -> Any:
        """Bottom-up, with an explicit stack: deeply nested or very long expressions
        (hundreds of parentheses or alternatives) cannot exhaust Python's stack.

        Raises _TooDeep past MAX_DEPTH levels (the passes after this one recurse).
        """
        stack: list[tuple[Tree, Any, list[Any]]] = [(tree, iter(tree.children), [])]
        while True:
            node, children, done = stack[-1]
            for child in children:
                if not isinstance(child, str):
                    if len(stack) >= MAX_DEPTH:
                        raise _TooDeep(child.meta)
                    stack.append((child, iter(child.children), []))
                    break
                done.append(child)
            else:
                stack.pop()
                value = getattr(self, node.data)(node.meta, done)
                if not stack:
                    return value
                stack[-1][2].append(value)

    def _fraction(self, text: str, span: Span) -> Fraction:
        """A number literal's exact value; too many digits is E901 (value 0 stands in)."""
        whole, _, frac = text.lstrip("-").partition(".")
        if len(whole.lstrip("0")) > MAX_NUMBER_DIGITS or len(frac) > MAX_NUMBER_DIGITS:
            self.problems.append(
                error(
                    "E901",
                    "number too long",
                    span,
                    label=f"at most {MAX_NUMBER_DIGITS} digits before and after the point",
                    hint="no clinical threshold needs more; see docs/security.md",
                )
            )
            return Fraction(0)
        return Fraction(text)

    # --- spans
    def _span(self, meta: Meta) -> Span:
        if getattr(meta, "empty", False):
            return self.src.span(0, 0)
        return self.src.span(meta.start_pos, meta.end_pos)  # type: ignore[attr-defined]

    def _tspan(self, tok: Token) -> Span:
        return self.src.span(tok.start_pos, tok.end_pos)  # type: ignore[arg-type]

    def _quantity(self, tok: Token) -> n.QuantityLit:
        number, unit = _split_quantity(str(tok))
        return n.QuantityLit(
            value=self._fraction(number, self._tspan(tok)),
            number_text=number,
            unit=unit,
            raw=str(tok),
            span=self._tspan(tok),
        )

    # --- header
    def start(self, meta: Meta, items: list[Any]) -> Any:
        header = items[0] if items and isinstance(items[0], n.Header) else None
        decls = tuple(items[1:] if header else items)
        return n.Protocol(header=header, decls=decls, span=self.src.whole())

    def section(self, meta: Meta, items: list[Any]) -> Any:
        return n.Section(kind=items[0], criteria=tuple(items[1:]), span=self._span(meta))

    def section_kind(self, meta: Meta, items: list[Any]) -> Any:
        return str(items[0])

    def criterion(self, meta: Meta, items: list[Any]) -> Any:
        return n.Criterion(
            id=str(items[0]),
            id_span=self._tspan(items[0]),
            text=_unquote(items[1]),
            clauses=tuple(items[2:]),
            span=self._span(meta),
        )

    def c_applies(self, meta: Meta, items: list[Any]) -> Any:
        return n.Clause(kind="applies", expr=items[0], span=self._span(meta))

    def c_rule(self, meta: Meta, items: list[Any]) -> Any:
        return n.Clause(kind="rule", expr=items[0], span=self._span(meta))

    def c_assume(self, meta: Meta, items: list[Any]) -> Any:
        return n.Clause(kind="assumption", text=_unquote(items[0]), span=self._span(meta))

    def c_note(self, meta: Meta, items: list[Any]) -> Any:
        return n.Clause(kind="note", text=_unquote(items[0]), span=self._span(meta))

    # --- expressions
    def paren(self, meta: Meta, items: list[Any]) -> Any:
        inner = items[0]
        return replace(inner, parens=inner.parens + 1)

    def unless(self, meta: Meta, items: list[Any]) -> Any:
        return n.Unless(rule=items[0], exception=items[1], span=self._span(meta))

    def implies(self, meta: Meta, items: list[Any]) -> Any:
        return n.Implies(premise=items[0], conclusion=items[1], span=self._span(meta))

    def if_then(self, meta: Meta, items: list[Any]) -> Any:
        return n.Implies(premise=items[0], conclusion=items[1], form="if", span=self._span(meta))

    def or_(self, meta: Meta, items: list[Any]) -> Any:
        return n.Or(left=items[0], right=items[1], span=self._span(meta))

    def and_(self, meta: Meta, items: list[Any]) -> Any:
        return n.And(left=items[0], right=items[1], span=self._span(meta))

    def not_(self, meta: Meta, items: list[Any]) -> Any:
        return n.Not(operand=items[0], span=self._span(meta))

    def compare(self, meta: Meta, items: list[Any]) -> Any:
        return n.Compare(op=str(items[1]), left=items[0], right=items[2], span=self._span(meta))

    def compare_ref(self, meta: Meta, items: list[Any]) -> Any:
        span = self._tspan(items[2])
        factor = n.NumberLit(
            value=self._fraction(str(items[2]), span), text=str(items[2]), span=span
        )
        return n.CompareRef(
            op=str(items[1]), left=items[0], factor=factor, limit=items[3], span=self._span(meta)
        )

    def ref_limit(self, meta: Meta, items: list[Any]) -> Any:
        return str(items[0])

    def direction(self, meta: Meta, items: list[Any]) -> Any:
        return str(items[0])

    def quantifier(self, meta: Meta, items: list[Any]) -> Any:
        return str(items[0])

    def between(self, meta: Meta, items: list[Any]) -> Any:
        return n.Between(subject=items[0], low=items[1], high=items[2], span=self._span(meta))

    def member(self, meta: Meta, items: list[Any]) -> Any:
        return n.Member(subject=items[0], members=tuple(map(str, items[1:])), span=self._span(meta))

    def not_member(self, meta: Meta, items: list[Any]) -> Any:
        return n.Member(
            subject=items[0],
            members=tuple(map(str, items[1:])),
            negated=True,
            span=self._span(meta),
        )

    def in_normal_range(self, meta: Meta, items: list[Any]) -> Any:
        return n.InNormalRange(subject=items[0], span=self._span(meta))

    def is_known(self, meta: Meta, items: list[Any]) -> Any:
        return n.IsKnown(subject=items[0], span=self._span(meta))

    def _window(self, kind: str, meta: Meta, items: list[Any]) -> n.Window:
        return n.Window(
            kind=kind,
            subject=items[0],
            duration=self._quantity(items[1]),
            direction=items[2],
            anchor=items[3],
            span=self._span(meta),
        )

    def window(self, meta: Meta, items: list[Any]) -> Any:
        return self._window("within", meta, items)

    def window_more(self, meta: Meta, items: list[Any]) -> Any:
        return self._window("more", meta, items)

    def window_less(self, meta: Meta, items: list[Any]) -> Any:
        return self._window("less", meta, items)

    def order(self, meta: Meta, items: list[Any]) -> Any:
        return n.Order(subject=items[0], direction=items[1], anchor=items[2], span=self._span(meta))

    def w_at_least(self, meta: Meta, items: list[Any]) -> Any:
        subject, duration, direction, anchor = items
        return n.DateBound(
            op="<=" if direction == "before" else ">=",
            subject=subject,
            anchor=anchor,
            duration=self._quantity(duration),
            direction=direction,
            wording="at_least",
            span=self._span(meta),
        )

    def w_no_later(self, meta: Meta, items: list[Any]) -> Any:
        subject, word, anchor = items
        later = str(word) == "later"
        return n.DateBound(
            op="<=" if later else ">=",
            subject=subject,
            anchor=anchor,
            wording="no_later" if later else "no_earlier",
            span=self._span(meta),
        )

    def w_on_or(self, meta: Meta, items: list[Any]) -> Any:
        subject, direction, anchor = items
        return n.DateBound(
            op="<=" if direction == "before" else ">=",
            subject=subject,
            anchor=anchor,
            wording="on_or",
            span=self._span(meta),
        )

    def w_between(self, meta: Meta, items: list[Any]) -> Any:
        subject, low, high, direction, anchor = items
        return n.WindowBetween(
            subject=subject,
            low=low,
            high=high,
            direction=direction,
            anchor=anchor,
            span=self._span(meta),
        )

    def w_overlaps(self, meta: Meta, items: list[Any]) -> Any:
        start, end, duration, direction, anchor = items
        return n.Period(
            kind="overlaps",
            start=start,
            end=end,
            anchor=anchor,
            duration=self._quantity(duration),
            direction=direction,
            span=self._span(meta),
        )

    def w_ongoing(self, meta: Meta, items: list[Any]) -> Any:
        start, end, anchor = items
        return n.Period(kind="ongoing", start=start, end=end, anchor=anchor, span=self._span(meta))

    def arith(self, meta: Meta, items: list[Any]) -> Any:
        return n.Arith(op=str(items[1]), left=items[0], right=items[2], span=self._span(meta))

    def neg(self, meta: Meta, items: list[Any]) -> Any:
        return n.Neg(operand=items[0], span=self._span(meta))

    def name(self, meta: Meta, items: list[Any]) -> Any:
        return n.Name(name=str(items[0]), span=self._span(meta))

    def call(self, meta: Meta, items: list[Any]) -> Any:
        return n.Call(func=str(items[0]), args=tuple(items[1:]), span=self._span(meta))

    def attribute(self, meta: Meta, items: list[Any]) -> Any:
        return n.Attribute(obj=str(items[0]), attr=str(items[1]), span=self._span(meta))

    def magnitude(self, meta: Meta, items: list[Any]) -> Any:
        return n.Magnitude(expr=items[0], unit=str(items[1]).strip(), span=self._span(meta))

    def with_unit(self, meta: Meta, items: list[Any]) -> Any:
        return n.WithUnit(expr=items[0], unit=str(items[1]).strip(), span=self._span(meta))

    def conditional(self, meta: Meta, items: list[Any]) -> Any:
        return n.Conditional(
            then=items[0], cond=items[1], otherwise=items[2], span=self._span(meta)
        )

    def date_of(self, meta: Meta, items: list[Any]) -> Any:
        return n.DateOf(fact=str(items[0]), fact_span=self._tspan(items[0]), span=self._span(meta))

    def first_available(self, meta: Meta, items: list[Any]) -> Any:
        return n.FirstAvailable(options=tuple(items), span=self._span(meta))

    def quantified(self, meta: Meta, items: list[Any]) -> Any:
        return n.Quantified(
            quantifier=items[0],
            count=None,
            list_name=str(items[1]),
            list_span=self._tspan(items[1]),
            body=items[2],
            span=self._span(meta),
        )

    def q_majority(self, meta: Meta, items: list[Any]) -> Any:
        return n.Quantified(
            quantifier="majority",
            count=None,
            list_name=str(items[0]),
            list_span=self._tspan(items[0]),
            body=items[1],
            span=self._span(meta),
        )

    def q_at_least(self, meta: Meta, items: list[Any]) -> Any:
        return n.Quantified(
            quantifier="at_least",
            count=int(self._fraction(str(items[0]), self._tspan(items[0]))),
            list_name=str(items[1]),
            list_span=self._tspan(items[1]),
            body=items[2],
            span=self._span(meta),
        )

    def number(self, meta: Meta, items: list[Any]) -> Any:
        span = self._span(meta)
        value = self._fraction(str(items[0]), span)
        return n.NumberLit(value=value, text=str(items[0]), span=span)

    def quantity(self, meta: Meta, items: list[Any]) -> Any:
        return self._quantity(items[0])

    def pressure_pair(self, meta: Meta, items: list[Any]) -> Any:
        text = str(items[0])
        m = re.fullmatch(r"(\d+)/(\d+)[ \t]*(.*)", text)
        assert m, text  # the PRESSURE_PAIR terminal guarantees this shape
        span = self._span(meta)
        return n.PressureLit(
            systolic=self._fraction(m.group(1), span),
            diastolic=self._fraction(m.group(2), span),
            unit=m.group(3),
            raw=text,
            span=self._span(meta),
        )

    def dual_quantity(self, meta: Meta, items: list[Any]) -> Any:
        return n.DualQuantityLit(
            primary=self._quantity(items[0]),
            secondary=self._quantity(items[1]),
            span=self._span(meta),
        )

    def date(self, meta: Meta, items: list[Any]) -> Any:
        text = str(items[0])
        try:
            value = dt.date.fromisoformat(text)
        except ValueError:
            value = dt.date.min  # an invalid marker; the checker reports it (never a crash)
        return n.DateLit(value=value, text=text, span=self._span(meta))

    def true(self, meta: Meta, items: list[Any]) -> Any:
        return n.BoolLit(value=True, span=self._span(meta))

    def false(self, meta: Meta, items: list[Any]) -> Any:
        return n.BoolLit(value=False, span=self._span(meta))
