"""Parsing: the AST builder's declarations (a base of ast_builder.py's `_ToAst`): the
protocol header, facts with their options and types, anchors, definitions, assumptions,
imports and code bindings. Criteria and expressions are in ast_builder.py.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from . import nodes as n
from .source import Span

if TYPE_CHECKING:  # the runtime parser's or Lark's (the same attributes)
    from .lalr_runtime import Meta


def _unquote(token: str) -> str:
    body = token[1:-1]
    if "\\" not in body:  # the common case: nothing escaped
        return body
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


class _Declarations:
    """A base of `_ToAst`, whose `transform` calls the method named for each grammar rule
    with the subtree's positions (`Meta`) and its children. It uses `_ToAst`'s span and
    number helpers."""

    _span: Any
    _tspan: Any
    _fraction: Any
    _quantity: Any

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
        member = str(items[1]) if len(items) > 1 and isinstance(items[1], str) else None
        codes = tuple(i for i in items if isinstance(i, n.Code))
        return n.Codes(fact=str(items[0]), member=member, codes=codes, span=self._span(meta))

    def code(self, meta: Meta, items: list[Any]) -> Any:
        return n.Code(system=items[0], value=_unquote(items[1]), span=self._span(meta))

    def code_system(self, meta: Meta, items: list[Any]) -> Any:
        return str(items[0])

    # --- criteria
