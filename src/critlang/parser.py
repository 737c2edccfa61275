"""Parse criteria files: the Lark grammar builds a tree, `_ToAst` turns it into nodes.

Syntax errors become diagnostics. After the first error the file is re-parsed one
top-level item at a time (the rest blanked out, so lines and columns stay true), so a
file with several broken items gets one diagnostic per item, not just the first.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import re
from fractions import Fraction
from functools import cache
from typing import Any

import lark
from lark import Token, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.tree import Meta
from lark.visitors import Transformer_NonRecursive

from . import nodes as n
from .diagnostics import Diagnostic, error
from .lalr import build_strict, grammar_path, lark_parser, write_tables
from .source import SourceFile, Span

__all__ = [
    "build_strict",
    "grammar_path",
    "lark_parser",
    "parse",
    "parse_text",
    "to_ast",
    "write_tables",
]


@cache
def _lark() -> lark.Lark:
    return lark_parser()


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


def _unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):
    """Builds AST nodes and nothing else: no checking happens here.

    Non-recursive (Lark walks the tree with its own stack), so deeply nested or very long
    expressions (hundreds of parentheses or alternatives) never exhaust Python's stack.
    """

    def __init__(self, source: SourceFile) -> None:
        super().__init__()
        self.src = source
        self.problems: list[Diagnostic] = []  # limits exceeded (E901)

    def transform(self, tree: lark.Tree) -> Any:
        """Bottom-up, with an explicit stack: deep nesting cannot exhaust Python's.

        Raises _TooDeep past MAX_DEPTH levels (the passes after this one recurse).
        """
        stack: list[tuple[lark.Tree, Any, list[Any]]] = [(tree, iter(tree.children), [])]
        while True:
            node, children, done = stack[-1]
            for child in children:
                if isinstance(child, lark.Tree):
                    if len(stack) >= MAX_DEPTH:
                        raise _TooDeep(child.meta)
                    stack.append((child, iter(child.children), []))
                    break
                done.append(child)
            else:
                stack.pop()
                value = self._call_userfunc(node, done)
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

    def header(self, meta: Meta, items: list[Any]) -> Any:
        fields: dict[str, object] = {"identifier": _unquote(items[0])}
        spans: list[tuple[str, Span]] = []
        notes: list[str] = []
        arms: list[n.Arm] = []
        for key, value, span in items[1:]:
            spans.append((key, span))
            if key == "amendment_note":
                notes.append(value)
            elif key == "arms":
                arms.extend(value)
            elif key == "date":
                fields["date"], fields["date_text"] = value
            else:
                fields[key] = value
        return n.Header(
            **fields,  # type: ignore[arg-type]
            amendment_notes=tuple(notes),
            arms=tuple(arms),
            item_spans=tuple(spans),
            identifier_span=self._tspan(items[0]),
            span=self._span(meta),
        )

    def h_title(self, meta: Meta, items: list[Any]) -> Any:
        return ("title", _unquote(items[0]), self._span(meta))

    def h_version(self, meta: Meta, items: list[Any]) -> Any:
        return ("version", _unquote(items[0]), self._span(meta))

    def h_date(self, meta: Meta, items: list[Any]) -> Any:
        try:
            value: object = dt.date.fromisoformat(str(items[0]))
        except ValueError:
            value = None  # the checker reports E006 from the span
        return ("date", (value, str(items[0])), self._span(meta))

    def h_sex(self, meta: Meta, items: list[Any]) -> Any:
        return ("sex", str(items[0]), self._span(meta))

    def sex_value(self, meta: Meta, items: list[Any]) -> Any:
        return items[0]

    def yes_no(self, meta: Meta, items: list[Any]) -> Any:
        return items[0]

    def h_min_age(self, meta: Meta, items: list[Any]) -> Any:
        return ("minimum_age", self._quantity(items[0]), self._span(meta))

    def h_max_age(self, meta: Meta, items: list[Any]) -> Any:
        return ("maximum_age", self._quantity(items[0]), self._span(meta))

    def h_healthy(self, meta: Meta, items: list[Any]) -> Any:
        return ("healthy_volunteers", str(items[0]) == "yes", self._span(meta))

    def h_amends(self, meta: Meta, items: list[Any]) -> Any:
        return ("amends", _unquote(items[0]), self._span(meta))

    def h_note(self, meta: Meta, items: list[Any]) -> Any:
        return ("amendment_note", _unquote(items[0]), self._span(meta))

    def h_tolerance(self, meta: Meta, items: list[Any]) -> Any:
        return ("tolerance", self._quantity(items[0]), self._span(meta))

    def h_arms(self, meta: Meta, items: list[Any]) -> Any:
        return ("arms", list(items), self._span(meta))

    def arm(self, meta: Meta, items: list[Any]) -> Any:
        label = _unquote(items[1]) if len(items) > 1 else None
        return n.Arm(name=str(items[0]), label=label, span=self._span(meta))

    # --- data dictionary
    def fact(self, meta: Meta, items: list[Any]) -> Any:
        return n.Fact(
            name=str(items[0]), type=items[1], options=tuple(items[2:]), span=self._span(meta)
        )

    def opt_label(self, meta: Meta, items: list[Any]) -> Any:
        return n.FactOption(kind="label", text=_unquote(items[0]), span=self._span(meta))

    def opt_source(self, meta: Meta, items: list[Any]) -> Any:
        return n.FactOption(kind="source", text=_unquote(items[0]), span=self._span(meta))

    def opt_history(self, meta: Meta, items: list[Any]) -> Any:
        return n.FactOption(kind="history", text=str(items[0]), span=self._span(meta))

    def opt_molar_mass(self, meta: Meta, items: list[Any]) -> Any:
        return n.FactOption(
            kind="molar_mass",
            quantity=self._quantity(items[0]),
            text=_unquote(items[1]),
            span=self._span(meta),
        )

    def opt_convert(self, meta: Meta, items: list[Any]) -> Any:
        src, dst, coefficients, source = items
        return n.FactOption(
            kind="convert",
            units=(str(src).strip(), str(dst).strip()),
            coefficients=coefficients,
            text=_unquote(source),
            span=self._span(meta),
        )

    def affine(self, meta: Meta, items: list[Any]) -> Any:
        words = [str(t) for t in items]
        sign = ""
        if words[0] in ("+", "-"):
            sign = "-" if words.pop(0) == "-" else ""
        slope = sign + words.pop(0)
        intercept = words[0] + words[1] if words else "+0"
        return (slope, intercept)

    def opt_lookback(self, meta: Meta, items: list[Any]) -> Any:
        return n.FactOption(
            kind="lookback",
            quantity=self._quantity(items[0]),
            anchor=str(items[1]),
            span=self._span(meta),
        )

    def opt_plausible(self, meta: Meta, items: list[Any]) -> Any:
        """`plausible 30..250 kg`: the range witnesses are solved in (lint, diff). A bare
        number takes the other end's unit; two bare numbers are a plain number's range."""
        ends = []
        for tok in items:
            if tok.type == "NUMBER":
                ends.append(
                    n.QuantityLit(
                        value=self._fraction(str(tok), self._tspan(tok)),
                        number_text=str(tok),
                        unit="",
                        raw=str(tok),
                        span=self._tspan(tok),
                    )
                )
            else:
                ends.append(self._quantity(tok))
        low, high = ends
        unit = high.unit or low.unit
        low, high = (
            n.QuantityLit(
                value=q.value,
                number_text=q.number_text,
                unit=q.unit or unit,
                raw=q.raw,
                span=q.span,
            )
            for q in (low, high)
        )
        return n.FactOption(kind="plausible", quantity=low, high=high, span=self._span(meta))

    def opt_refrange_reported(self, meta: Meta, items: list[Any]) -> Any:
        return n.FactOption(kind="refrange_reported", span=self._span(meta))

    def opt_refrange_default(self, meta: Meta, items: list[Any]) -> Any:
        return n.FactOption(
            kind="refrange",
            quantity=self._quantity(items[0]),
            high=self._quantity(items[1]),
            span=self._span(meta),
        )

    def t_quantity(self, meta: Meta, items: list[Any]) -> Any:
        return n.QuantityTypeExpr(unit=str(items[0]).strip(), span=self._span(meta))

    def t_number(self, meta: Meta, items: list[Any]) -> Any:
        return n.NumberTypeExpr(span=self._span(meta))

    def t_integer(self, meta: Meta, items: list[Any]) -> Any:
        low, high = (self._fraction(str(t), self._tspan(t)) for t in items[:2])
        return n.IntegerTypeExpr(low=int(low), high=int(high), span=self._span(meta))

    def t_enum(self, meta: Meta, items: list[Any]) -> Any:
        return n.EnumTypeExpr(members=tuple(map(str, items)), span=self._span(meta))

    def t_scale(self, meta: Meta, items: list[Any]) -> Any:
        return n.ScaleTypeExpr(members=tuple(map(str, items)), span=self._span(meta))

    def t_blood_pressure(self, meta: Meta, items: list[Any]) -> Any:
        return n.BloodPressureTypeExpr(span=self._span(meta))

    def t_boolean(self, meta: Meta, items: list[Any]) -> Any:
        return n.BooleanTypeExpr(span=self._span(meta))

    def t_attestation(self, meta: Meta, items: list[Any]) -> Any:
        return n.BooleanTypeExpr(attestation=True, span=self._span(meta))

    def t_date(self, meta: Meta, items: list[Any]) -> Any:
        return n.DateTypeExpr(span=self._span(meta))

    def t_list(self, meta: Meta, items: list[Any]) -> Any:
        return n.ListTypeExpr(fields=tuple(items), span=self._span(meta))

    def field(self, meta: Meta, items: list[Any]) -> Any:
        return n.FieldDecl(name=str(items[0]), type=items[1], span=self._span(meta))

    def anchor(self, meta: Meta, items: list[Any]) -> Any:
        label = _unquote(items[1]) if len(items) > 1 else None
        return n.Anchor(name=str(items[0]), label=label, span=self._span(meta))

    def define(self, meta: Meta, items: list[Any]) -> Any:
        params = items[1] if len(items) == 3 else None
        return n.Define(name=str(items[0]), params=params, body=items[-1], span=self._span(meta))

    def params(self, meta: Meta, items: list[Any]) -> Any:
        return tuple(items)

    def param(self, meta: Meta, items: list[Any]) -> Any:
        return n.Param(name=str(items[0]), type=items[1], span=self._span(meta))

    def assume_value(self, meta: Meta, items: list[Any]) -> Any:
        return n.AssumeValue(
            name=str(items[0]), value=items[1], reason=_unquote(items[2]), span=self._span(meta)
        )

    def assume_text(self, meta: Meta, items: list[Any]) -> Any:
        return n.AssumeText(text=_unquote(items[0]), span=self._span(meta))

    # --- code bindings
    def import_decl(self, meta: Meta, items: list[Any]) -> Any:
        return n.Import(path=_unquote(items[0]), span=self._span(meta))

    def codes(self, meta: Meta, items: list[Any]) -> Any:
        member = str(items[1]) if len(items) > 1 and isinstance(items[1], Token) else None
        codes = tuple(i for i in items if isinstance(i, n.Code))
        return n.Codes(fact=str(items[0]), member=member, codes=codes, span=self._span(meta))

    def code(self, meta: Meta, items: list[Any]) -> Any:
        return n.Code(system=items[0], value=_unquote(items[1]), span=self._span(meta))

    def code_system(self, meta: Meta, items: list[Any]) -> Any:
        return str(items[0])

    # --- criteria
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
        return dataclasses.replace(inner, parens=inner.parens + 1)

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


# Words people read in "expected ..." lists, instead of terminal names.
_TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": 'a quoted text ("...")',
    "QUANTITY": "a number with a unit (e.g. 8.0 g/dL)",
    "NUMBER": "a number",
    "SIGNED_INT": "a whole number",
    "DATE": "a date (YYYY-MM-DD)",
    "UNIT": "a unit (e.g. mg/dL)",
    "PRESSURE_PAIR": "a blood pressure (e.g. 140/90 mmHg)",
    "LATER_EARLIER": "`later` or `earlier`",
    "CRIT_ID": "a criterion id (e.g. I1, E7)",
    "COMPOP": "a comparison (<, <=, >, >=, =, !=)",
    "ADDOP": "+ or -",
    "MULOP": "* or /",
    "LPAR": "(",
    "RPAR": ")",
    "LBRACE": "{",
    "RBRACE": "}",
    "COMMA": ",",
    "COLON": ":",
    "EQUAL": "=",
    "LESSTHAN": "<",
    "DOT": ".",
    "$END": "end of file",
}


def _describe_expected(expected: set[str]) -> str:
    words = []
    for name in sorted(expected):
        if name in _TERMINAL_WORDS:
            words.append(_TERMINAL_WORDS[name])
        elif name.isupper() and not name.startswith("__"):
            words.append(f"`{name.lower().replace('_', ' ')}`")
    words = sorted(set(words))
    if len(words) > 8:
        return ", ".join(words[:8]) + ", ..."
    return ", ".join(words)


_ASCII_FOR = {"≥": ">=", "≤": "<=", "≠": "!=", "⩾": ">=", "⩽": "<=", "−": "-", "–": "-", "÷": "/"}

# words of the language: a name followed by one of these is not a name with a space
_KEYWORDS = frozenset(
    [
        "and",
        "or",
        "not",
        "if",
        "else",
        "unless",
        "in",
        "as",
        "to",
        "of",
        "with",
        "before",
        "after",
        "within",
        "than",
        "more",
        "less",
        "between",
        "is",
        "x",
        "source",
        "reported",
        "because",
        "then",
        "rule",
        "applies",
        "note",
        "assumption",
        "label",
        "fact",
        "define",
        "anchor",
        "assume",
        "import",
        "codes",
        "inclusion",
        "exclusion",
        "criteria",
        "any",
        "all",
        "no",
        "majority",
        "at",
        "least",
        "first",
        "available",
        "measured",
        "normal",
        "range",
        "ULN",
        "LLN",
    ]
)


def _item_start(text: str, pos: int) -> int:
    """Where the top-level item around pos starts (its first line is not indented)."""
    line = text.rfind("\n", 0, pos) + 1
    while line > 0 and (line >= len(text) or text[line] in " \t\n#"):
        line = text.rfind("\n", 0, line - 1) + 1
    return line


def _unclosed_bracket(text: str, pos: int) -> int | None:
    """The last `(` of the item before pos that no `)` closes (texts, comments skipped)."""
    opened: list[int] = []
    i = _item_start(text, max(pos - 1, 0))  # a token opening a line ends the item before
    while i < pos:
        c = text[i]
        if c == '"':
            end = text.find('"', i + 1)
            i = pos if end < 0 else end + 1
            continue
        if c == "#":
            end = text.find("\n", i)
            i = pos if end < 0 else end
            continue
        if c == "(":
            opened.append(i)
        elif c == ")" and opened:
            opened.pop()
        i += 1
    return opened[-1] if opened else None


def _word_before(text: str, pos: int) -> str | None:
    """The name just before pos on the same line, separated by blanks (not a keyword)."""
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)[ \t]+$", text[max(0, pos - 200) : pos])
    if m is None or m.group(1) in _KEYWORDS:
        return None
    return m.group(1)


def _syntax_diagnostic(
    exc: UnexpectedInput, source: SourceFile, parsed: str | None = None
) -> Diagnostic:
    """One E001 report; `parsed` is the text the parser saw when it differs (an item
    re-parsed alone, the rest blanked), for finding the bracket left open."""
    pos = getattr(exc, "pos_in_stream", None)
    if isinstance(exc, UnexpectedToken) and exc.token.start_pos is not None:
        tok = exc.token
        if tok.type == "$END":
            span = source.span(len(source.text), len(source.text))
            found = "the end of the file"
        else:
            span = source.span(tok.start_pos, tok.end_pos)  # type: ignore[arg-type]
            found = f"`{tok}`"
        expected = _describe_expected(set(exc.expected))
        start = tok.start_pos if tok.type != "$END" else len(source.text)
        seen = source.text if parsed is None else parsed
        unclosed = _unclosed_bracket(seen, start) if "RPAR" in exc.expected else None
        if unclosed is not None:
            # the real spot is the bracket never closed, not where the parser gave up
            return error(
                "E001",
                "this bracket is never closed",
                source.span(unclosed, unclosed + 1),
                label="opened here",
                related=((span, f"the condition ends here, at {found}"),),
                hint="close it with `)` where the group ends",
            )
        hint = ""
        line_start = source.text.rfind("\n", 0, start) + 1
        window = re.search(r"\b(?:within|than)[ \t]+[0-9][^\n]*$", source.text[line_start:start])
        negated = re.search(
            r"(\w+)[ \t]+not[ \t]+(?:less|more)[ \t]+than"
            r"[ \t]+(\S+)[ \t]+(\S+)[ \t]+(before|after)",
            source.text[line_start : source.text.find("\n", start) % (len(source.text) + 1)],
        )
        if str(tok) in ("less", "more") and negated:
            # "not less than 12 weeks before" negates a whole window: say where `not` goes
            subject, amount, unit, side = negated.groups()
            hint = (
                f"`not` goes before the whole condition: `not ({subject} {tok} than "
                f"{amount} {unit} {side} ...)` (docs/language.md, Time windows)"
            )
        elif {"BEFORE", "AFTER"} <= set(exc.expected) and window:
            hint = f"say which side of the date: `... before {tok}` or `... after {tok}`"
        elif (
            tok.type in ("NAME", "UNIT")  # the contextual lexer may call a word a unit
            and str(tok).isidentifier()
            and (prev := _word_before(source.text, start)) is not None
        ):
            hint = f"a name is one word: write `{prev}_{tok}` (and declare it so)"
        elif tok.type == "NUMBER" and "QUANTITY" in exc.expected:
            hint = f"write the unit right after the number, e.g. `{tok} mg/dL`"
        elif tok.type == "NAME" and "STRING" in exc.expected:
            hint = 'put the text in double quotes: "..."'
        elif tok.type in {"NAME", "QUANTIFIER"} and "CRIT_ID" in exc.expected:
            hint = "criterion ids are capital letters then a number, e.g. I1 or E12"
        return error(
            "E001",
            f"unexpected {found}",
            span,
            label=f"expected {expected}" if expected else "not expected here",
            hint=hint,
        )
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream
        char = source.text[pos] if pos < len(source.text) else ""
        hint = ""
        if char == '"':
            hint = "a text must close with a double quote on the same line"
        elif char in _ASCII_FOR:
            hint = f"write `{_ASCII_FOR[char]}` instead of `{char}`"
        return error(
            "E001",
            f"unexpected character `{char}`",
            source.span(pos, pos + 1),
            label="not allowed here",
            hint=hint,
        )
    if isinstance(exc, UnexpectedEOF):
        end = len(source.text)
        return error("E001", "the file ends too early", source.span(end, end))
    pos = pos or 0
    return error("E001", str(exc).splitlines()[0], source.span(pos, pos))


_ITEM_START = re.compile(
    r"^[ \t]*(?:(protocol|fact|define|anchor|assume|inclusion|exclusion|import|codes)\b"
    r"|([A-Z]+-?[0-9]+[a-z]?)[ \t]+\")",
    re.M,
)


def _items(text: str) -> list[tuple[int, int, int | None]]:
    """(start, end, offset of the governing section line) for each top-level item."""
    starts = [(m.start(), m.group(1)) for m in _ITEM_START.finditer(text)]
    items: list[tuple[int, int, int | None]] = []
    section: int | None = None
    for i, (start, word) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        if word in ("inclusion", "exclusion"):
            section = start
            line_end = text.find("\n", start)
            end = len(text) if line_end < 0 else min(end, line_end)
            items.append((start, end, None))
        elif word is None:
            items.append((start, end, section))
        else:
            section = None if word != "protocol" else section
            items.append((start, end, None))
    return items


_NOT_NEWLINE = re.compile(r"[^\n]")


def _blank_before(text: str, start: int, keep: tuple[int, int] | None) -> str:
    """The text from `start` on, everything before blanked (lines and columns stay
    true) except the span `keep` (the governing section line)."""
    if keep is None:
        return _NOT_NEWLINE.sub(" ", text[:start]) + text[start:]
    a, b = keep
    head = _NOT_NEWLINE.sub(" ", text[:a]) + text[a:b] + _NOT_NEWLINE.sub(" ", text[b:start])
    return head + text[start:]


def _all_syntax_errors(source: SourceFile, first: Diagnostic) -> list[Diagnostic]:
    """One diagnostic per broken item, in time linear in the file's size.

    An LALR parser stops at the first token that cannot continue a valid prefix, so
    every item before the error is sound. The parse restarts at the item after the one
    the error falls in (with its section line; what comes before is blanked, in C, so
    lines and columns stay true) and runs to the next error: each part of the file is
    parsed about once, not once per item.
    """
    found = {(first.span.start, first.message): first}
    parser = _lark()
    text = source.text
    items = _items(text)
    if not items:
        return [first]
    starts = [start for start, _, _ in items]
    first_token = [
        start + len(text[start:end]) - len(text[start:end].lstrip()) for start, end, _ in items
    ]

    def restart_after(pos: int, done: int) -> int:
        j = max(0, bisect.bisect_right(starts, pos) - 1)
        # an error on an item's first token is the previous item ending too early
        nxt = j if pos <= first_token[j] else j + 1
        return max(nxt, done + 1)

    r = restart_after(first.span.start, -1)
    while r < len(items):
        keep = None
        section = items[r][2]
        if section is not None:
            line_end = text.find("\n", section)
            keep = (section, len(text) if line_end < 0 else line_end)
        parsed = _blank_before(text, items[r][0], keep)
        try:
            parser.parse(parsed)
        except UnexpectedInput as exc:
            d = _syntax_diagnostic(exc, source, parsed)
            found.setdefault((d.span.start, d.message), d)
            r = restart_after(d.span.start, r)
        else:
            break
    return sorted(found.values(), key=lambda d: d.span.start)


def to_ast(tree: lark.Tree, source: SourceFile) -> tuple[n.Protocol | None, list[Diagnostic]]:
    """The AST of a parse tree, or None and the limits it exceeds (E901, E902)."""
    builder = _ToAst(source)
    try:
        protocol = builder.transform(tree)
    except _TooDeep as exc:
        start = getattr(exc.meta, "start_pos", 0)
        return None, [
            error(
                "E902",
                "nested too deeply",
                source.span(start, start),
                label=f"more than {MAX_DEPTH} levels of nesting",
                hint="split the expression into named definitions (`define`)",
            )
        ]
    if builder.problems:
        return None, builder.problems
    return protocol, []


def parse(source: SourceFile) -> tuple[n.Protocol | None, list[Diagnostic]]:
    """Parse one file. Returns the AST (None on syntax errors) and the diagnostics."""
    try:
        tree = _lark().parse(source.text)
    except UnexpectedInput as exc:
        first = _syntax_diagnostic(exc, source)
        return None, _all_syntax_errors(source, first)
    return to_ast(tree, source)


def parse_text(text: str, path: str = "<text>") -> tuple[n.Protocol | None, list[Diagnostic]]:
    return parse(SourceFile(path, text))
