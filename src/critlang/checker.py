"""The checker: names, types, units, ranges and header conflicts, all problems in one run.

It walks the AST once per declaration and criterion, gives every expression a type
(recorded for the compiler), and returns diagnostics; it never stops at the first one.
Quantities are compared through exact rational conversion factors (units.py).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property

from . import nodes as n
from .diagnostics import Diagnostic, error, sorted_diagnostics, warning
from .source import SourceFile, Span
from .typesys import (
    NUMERIC,
    BoolT,
    DateT,
    EnumT,
    ErrorT,
    IntT,
    ListT,
    NumberT,
    QuantT,
    ScaleT,
    Type,
    same_kind,
)
from .units import (
    CALENDAR,
    TIME,
    Unit,
    UnitError,
    conversion_factor,
    describe,
    is_duration,
    mass_substance_pair,
    mul_dims,
    parse_unit,
)

ENROLLMENT = "enrollment"  # the built-in anchor: the evaluation's as-of date
DEFAULT_TOLERANCE = Fraction(1, 100)  # dual-unit thresholds may differ by 1% unless stated

# Built-in functions: name -> (parameter types, result type, what it does).
_YEARS = parse_unit("years")
BUILTINS: dict[str, tuple[tuple[Type, ...], Type, str]] = {
    "elapsed_years": (
        (DateT(), DateT()),
        QuantT(_YEARS),
        "completed calendar years from the first date to the second (an age)",
    ),
}


@dataclass(frozen=True)
class FactInfo:
    node: n.Fact
    type: Type
    molar_mass: Fraction | None = None  # in g/mol
    lookback: n.FactOption | None = None
    has_reference_range: bool = False


@dataclass(frozen=True)
class Ref:
    """What a name in an expression refers to."""

    kind: str  # fact, anchor, define, assume, param, field, member, arm
    name: str


@dataclass(frozen=True)
class DualCheck:
    """A threshold written in two units, verified by the checker."""

    literal: n.DualQuantityLit
    primary: Fraction  # in the subject's unit
    secondary: Fraction  # converted into the subject's unit
    relative_difference: Fraction


@dataclass
class CheckResult:
    protocol: n.Protocol
    source: SourceFile
    diagnostics: list[Diagnostic]
    types: dict[int, Type] = field(default_factory=dict)  # id(expr) -> type
    refs: dict[int, Ref] = field(default_factory=dict)  # id(Name) -> what it names
    facts: dict[str, FactInfo] = field(default_factory=dict)
    anchors: dict[str, n.Anchor | None] = field(default_factory=dict)
    defines: dict[str, n.Define] = field(default_factory=dict)
    assumed: dict[str, n.AssumeValue] = field(default_factory=dict)
    dual_checks: list[DualCheck] = field(default_factory=list)
    # code bindings: fact -> codes; (list fact, kind member) -> codes
    bindings: dict[str, list[n.Code]] = field(default_factory=dict)
    item_bindings: dict[tuple[str, str], list[n.Code]] = field(default_factory=dict)

    @cached_property
    def record_types(self) -> dict[str, Type]:
        """Every fact a patient record can hold; the header's arms give the fact `arm`."""
        types = {name: info.type for name, info in self.facts.items()}
        h = self.protocol.header
        if h is not None and h.arms and "arm" not in types:
            types["arm"] = EnumT(tuple(a.name for a in h.arms))
        return types

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else ""


def _conjuncts(e: n.Expr) -> list[n.Expr]:
    if isinstance(e, n.And):
        return _conjuncts(e.left) + _conjuncts(e.right)
    return [e]


class _Checker:
    def __init__(
        self, protocol: n.Protocol, source: SourceFile, library: list[n.Codes] | None = None
    ) -> None:
        self.p = protocol
        self.library = library or []
        self.r = CheckResult(protocol, source, [])
        self.diags: list[Diagnostic] = []
        self.decl_spans: dict[str, Span] = {}
        self.define_types: dict[str, Type] = {}
        self.define_refs: dict[str, set[str]] = {}
        self.in_progress: list[str] = []
        self.refs_out: set[str] = set()  # global names referenced by the current item
        self.tolerance = DEFAULT_TOLERANCE

    # ------------------------------------------------------------------ helpers
    def err(self, code: str, message: str, span: Span, **kw: object) -> ErrorT:
        self.diags.append(error(code, message, span, **kw))
        return ErrorT()

    def warn(self, code: str, message: str, span: Span, **kw: object) -> None:
        self.diags.append(warning(code, message, span, **kw))

    def unit(self, text: str, span: Span) -> Unit | None:
        try:
            return parse_unit(text)
        except UnitError as exc:
            self.err("E301", exc.message, span, label="unknown unit", hint=exc.hint)
            return None

    def record(self, e: n.Expr, t: Type) -> Type:
        self.r.types[id(e)] = t
        return t

    # ------------------------------------------------------------------ declarations
    def declare(self, name: str, span: Span) -> bool:
        if name in self.decl_spans:
            self.err(
                "E005",
                f"`{name}` is declared twice",
                span,
                label="second declaration",
                related=((self.decl_spans[name], "first declared here"),),
                hint="give each fact, anchor, definition and assumption its own name",
            )
            return False
        self.decl_spans[name] = span
        return True

    def type_of(self, t: n.TypeExpr) -> Type:
        if isinstance(t, n.QuantityTypeExpr):
            u = self.unit(t.unit, t.span)
            return QuantT(u) if u else ErrorT()
        if isinstance(t, n.NumberTypeExpr):
            return NumberT()
        if isinstance(t, n.IntegerTypeExpr):
            if t.low > t.high:
                return self.err(
                    "E402",
                    f"the range {t.low}..{t.high} is empty",
                    t.span,
                    hint="write the lower bound first",
                )
            return IntT(t.low, t.high)
        if isinstance(t, (n.EnumTypeExpr, n.ScaleTypeExpr)):
            seen: set[str] = set()
            for m in t.members:
                if m in seen:
                    self.err("E005", f"`{m}` is listed twice", t.span)
                seen.add(m)
            return (EnumT if isinstance(t, n.EnumTypeExpr) else ScaleT)(t.members)
        if isinstance(t, n.BooleanTypeExpr):
            return BoolT(attestation=t.attestation)
        if isinstance(t, n.DateTypeExpr):
            return DateT()
        if isinstance(t, n.ListTypeExpr):
            names = [f.name for f in t.fields]
            for f in t.fields:
                if names.count(f.name) > 1:
                    self.err("E005", f"field `{f.name}` is declared twice", f.span)
            return ListT(tuple((f.name, self.type_of(f.type)) for f in t.fields))
        raise AssertionError(type(t))

    def collect(self) -> None:
        h = self.p.header
        if (
            h is not None
            and h.arms
            and not any(isinstance(d, n.Fact) and d.name == "arm" for d in self.p.decls)
        ):
            # the header's arms give a built-in fact: the patient's randomisation arm
            self.decl_spans["arm"] = h.item_span("arms")
        self.r.anchors[ENROLLMENT] = None
        for d in self.p.decls:
            if isinstance(d, n.Fact):
                if self.declare(d.name, d.span):
                    self.r.facts[d.name] = self.fact_info(d)
            elif isinstance(d, n.Anchor):
                if d.name == ENROLLMENT:
                    self.r.anchors[ENROLLMENT] = d
                elif self.declare(d.name, d.span):
                    self.r.anchors[d.name] = d
            elif isinstance(d, n.Define):
                if self.declare(d.name, d.span):
                    self.r.defines[d.name] = d
            elif isinstance(d, n.AssumeValue):
                if self.declare(d.name, d.span):
                    self.r.assumed[d.name] = d

    def fact_info(self, d: n.Fact) -> FactInfo:
        t = self.type_of(d.type)
        molar: Fraction | None = None
        opt = d.option("molar_mass")
        if opt and opt.quantity:
            u = self.unit(opt.quantity.unit, opt.quantity.span)
            g_per_mol = parse_unit("g/mol")
            if u and not u.same_dimension(g_per_mol):
                self.err(
                    "E302",
                    f"a molar mass is a mass per amount of substance, not {describe(u.dims)}",
                    opt.quantity.span,
                    hint="write it in g/mol",
                )
            elif u:
                molar = opt.quantity.value * u.factor / g_per_mol.factor
            if not isinstance(t, QuantT):
                self.err("E201", "only a quantity can have a molar mass", opt.span)
        look = d.option("lookback")
        if look and look.quantity:
            u = self.unit(look.quantity.unit, look.quantity.span)
            if u and not is_duration(u):
                self.err(
                    "E307",
                    f"`{look.quantity.text}` is not a duration",
                    look.quantity.span,
                    hint="a look-back window is written like `28 days` or `3 months`",
                )
        ranged = False
        for opt in d.options:
            if opt.kind == "refrange_reported":
                ranged = True
            elif opt.kind == "refrange" and opt.quantity and opt.high:
                ranged = True
                for q in (opt.quantity, opt.high):
                    u = self.unit(q.unit, q.span)
                    if u and isinstance(t, QuantT) and not u.same_dimension(t.unit):
                        self.dimension_error(q.span, t.unit, u, "the reference range")
        return FactInfo(d, t, molar, look, ranged)

    # ------------------------------------------------------------------ names
    def global_names(self) -> list[str]:
        return [*self.r.facts, *self.r.anchors, *self.r.defines, *self.r.assumed, *BUILTINS]

    def lookup(self, e: n.Name, scope: dict[str, tuple[Ref, Type]], expected: Type | None) -> Type:
        name = e.name
        if isinstance(expected, (EnumT, ScaleT)) and name in expected.members:
            self.r.refs[id(e)] = Ref("member", name)
            return expected
        if name in scope:
            ref, t = scope[name]
            self.r.refs[id(e)] = ref
            return t
        if name in self.r.facts:
            self.refs_out.add(name)
            self.r.refs[id(e)] = Ref("fact", name)
            return self.r.facts[name].type
        if name in self.r.anchors:
            self.refs_out.add(name)
            self.r.refs[id(e)] = Ref("anchor", name)
            return DateT()
        if name in self.r.assumed:
            self.refs_out.add(name)
            self.r.refs[id(e)] = Ref("assume", name)
            return self.assumed_type(name)
        if name == "arm" and "arm" in self.decl_spans and self.p.header:
            self.r.refs[id(e)] = Ref("arm", name)
            return EnumT(tuple(a.name for a in self.p.header.arms))
        if name in self.r.defines:
            self.refs_out.add(name)
            d = self.r.defines[name]
            if d.params is not None:
                return self.err(
                    "E104",
                    f"`{name}` is a function of {len(d.params)} value(s)",
                    e.span,
                    hint=f"call it: {name}({', '.join(p.name for p in d.params)})",
                )
            self.r.refs[id(e)] = Ref("define", name)
            return self.define_type(d)
        if isinstance(expected, ErrorT):
            return expected  # the other side is already reported; "sexx = male" gives one error
        if isinstance(expected, (EnumT, ScaleT)):
            return self.err(
                "E102",
                f"`{name}` is not one of {', '.join(expected.members)}",
                e.span,
                label="unknown category",
                hint=_did_you_mean(name, expected.members),
            )
        return self.err(
            "E101",
            f"unknown name `{name}`",
            e.span,
            label="not declared",
            hint=_did_you_mean(name, [*self.global_names(), *scope])
            or "declare it in the data dictionary: `fact NAME: TYPE`",
        )

    def assumed_type(self, name: str) -> Type:
        key = f"assume:{name}"
        if key not in self.define_types:
            self.define_types[key] = self.expr(self.r.assumed[name].value, {})
        return self.define_types[key]

    def define_type(self, d: n.Define) -> Type:
        if d.name in self.define_types:
            return self.define_types[d.name]
        if d.name in self.in_progress:
            return self.err(
                "E105",
                f"`{d.name}` is defined in terms of itself",
                d.span,
                notes=("chain: " + " -> ".join([*self.in_progress, d.name]),),
            )
        self.in_progress.append(d.name)
        outer_refs, self.refs_out = self.refs_out, set()
        scope: dict[str, tuple[Ref, Type]] = {}
        for p in d.params or ():
            scope[p.name] = (Ref("param", p.name), self.type_of(p.type))
        t = self.expr(d.body, scope)
        self.define_refs[d.name] = self.refs_out
        self.refs_out = outer_refs | {d.name}
        self.in_progress.pop()
        self.define_types[d.name] = t
        return t

    # ------------------------------------------------------------------ expressions
    def boolean(self, e: n.Expr, scope: dict, what: str) -> Type:
        t = self.expr(e, scope)
        if not isinstance(t, (BoolT, ErrorT)):
            return self.err(
                "E201",
                f"{what} must be a yes/no condition, but this is {t.describe()}",
                e.span,
                label="not a condition",
                hint="compare it with something, e.g. `x > 3 mg/dL` or `x in {a, b}`",
            )
        return t

    def expr(self, e: n.Expr, scope: dict, expected: Type | None = None) -> Type:
        return self.record(e, self._expr(e, scope, expected))

    def _expr(self, e: n.Expr, scope: dict, expected: Type | None) -> Type:
        if isinstance(e, n.NumberLit):
            return NumberT()
        if isinstance(e, n.QuantityLit):
            u = self.unit(e.unit, e.span)
            return QuantT(u) if u else ErrorT()
        if isinstance(e, n.DualQuantityLit):
            a = self.expr(e.primary, scope)
            b = self.expr(e.secondary, scope)
            if isinstance(expected, QuantT):
                pass  # in a comparison each part is checked against the subject (see `dual`)
            elif isinstance(a, QuantT) and isinstance(b, QuantT):
                if not a.unit.same_dimension(b.unit) and not mass_substance_pair(a.unit, b.unit):
                    self.dimension_error(e.secondary.span, a.unit, b.unit, "the first unit")
            return a
        if isinstance(e, n.DateLit):
            if e.value.year == 1:
                return self.err("E006", "this is not a calendar date", e.span)
            return DateT()
        if isinstance(e, n.BoolLit):
            return BoolT()
        if isinstance(e, n.Name):
            return self.lookup(e, scope, expected)
        if isinstance(e, n.Call):
            return self.call(e, scope)
        if isinstance(e, n.Attribute):
            return self.err(
                "E103",
                f"`{e.obj}.{e.attr}`: fields are reached inside a list condition",
                e.span,
                hint=f"write e.g. `any {e.obj} with ({e.attr} ...)`",
            )
        if isinstance(e, n.Magnitude):
            t = self.expr(e.expr, scope)
            u = self.unit(e.unit, e.span)
            if isinstance(t, QuantT) and u:
                if not t.unit.same_dimension(u):
                    self.dimension_error(e.span, t.unit, u, f"`{e.unit}`")
                return NumberT()
            if isinstance(t, NUMERIC):
                return self.err(
                    "E201",
                    "this is already a plain number; `in UNIT` takes the number out of a quantity",
                    e.expr.span,
                )
            if not isinstance(t, ErrorT) and u:
                return self.err("E201", f"{t.describe()} has no unit", e.expr.span)
            return NumberT() if u else ErrorT()
        if isinstance(e, n.WithUnit):
            t = self.expr(e.expr, scope)
            u = self.unit(e.unit, e.span)
            if isinstance(t, QuantT):
                return self.err(
                    "E306",
                    f"this already has a unit ({t.unit.text}); `as UNIT` gives a plain number one",
                    e.expr.span,
                    hint=f"take its number first: `({'...'} in {t.unit.text})`",
                )
            if not isinstance(t, (*NUMERIC, ErrorT)):
                return self.err("E201", f"{t.describe()} cannot be given a unit", e.expr.span)
            return QuantT(u) if u else ErrorT()
        if isinstance(e, n.Conditional):
            self.boolean(e.cond, scope, "the condition after `if`")
            a = self.expr(e.then, scope)
            b = self.expr(e.otherwise, scope)
            if not same_kind(a, b):
                return self.err(
                    "E205",
                    f"the two branches differ: {a.describe()} and {b.describe()}",
                    e.span,
                )
            return a if not isinstance(a, ErrorT) else b
        if isinstance(e, n.FirstAvailable):
            ts = [self.expr(o, scope) for o in e.options]
            for o, t in zip(e.options[1:], ts[1:], strict=True):
                if not same_kind(ts[0], t):
                    self.err(
                        "E205",
                        f"every option must be the same kind of value: {ts[0].describe()}, "
                        f"but this is {t.describe()}",
                        o.span,
                    )
            return ts[0]
        if isinstance(e, n.Quantified):
            return self.quantified(e, scope)
        if isinstance(e, n.Not):
            self.boolean(e.operand, scope, "the operand of `not`")
            return BoolT()
        if isinstance(e, (n.And, n.Or)):
            word = "and" if isinstance(e, n.And) else "or"
            self.boolean(e.left, scope, f"each side of `{word}`")
            self.boolean(e.right, scope, f"each side of `{word}`")
            return BoolT()
        if isinstance(e, n.Unless):
            self.boolean(e.rule, scope, "the rule before `unless`")
            self.boolean(e.exception, scope, "the exception after `unless`")
            return BoolT()
        if isinstance(e, n.Compare):
            self.compare(e.op, e.left, e.right, e.span, scope)
            return BoolT()
        if isinstance(e, n.CompareRef):
            self.reference_range(e.left, scope, f"{e.limit}")
            return BoolT()
        if isinstance(e, n.InNormalRange):
            self.reference_range(e.subject, scope, "the normal range")
            return BoolT()
        if isinstance(e, n.Between):
            self.compare(">=", e.subject, e.low, e.span, scope)
            self.compare("<=", e.subject, e.high, e.span, scope, check_subject=False)
            lo, hi = self.r.types.get(id(e.low)), self.r.types.get(id(e.high))
            if (
                isinstance(e.low, (n.QuantityLit, n.NumberLit))
                and isinstance(e.high, (n.QuantityLit, n.NumberLit))
                and isinstance(lo, (QuantT, NumberT))
                and isinstance(hi, (QuantT, NumberT))
                and same_kind(lo, hi)
                and self.magnitude(e.low, lo) > self.magnitude(e.high, hi)
            ):
                self.err("E402", "the range is empty: the low end is above the high end", e.span)
            return BoolT()
        if isinstance(e, n.Member):
            t = self.expr(e.subject, scope)
            if isinstance(t, (EnumT, ScaleT)):
                for m in e.members:
                    if m not in t.members:
                        self.err(
                            "E102",
                            f"`{m}` is not one of {', '.join(t.members)}",
                            e.span,
                            hint=_did_you_mean(m, t.members),
                        )
            elif not isinstance(t, ErrorT):
                self.err(
                    "E202",
                    f"`in {{...}}` needs a category, but this is {t.describe()}",
                    e.subject.span,
                )
            return BoolT()
        if isinstance(e, n.IsKnown):
            self.expr(e.subject, scope)
            return BoolT()
        if isinstance(e, n.Window):
            self.date_operand(e.subject, scope)
            self.date_operand(e.anchor, scope)
            u = self.unit(e.duration.unit, e.duration.span)
            self.record(e.duration, QuantT(u) if u else ErrorT())
            if u and not is_duration(u):
                self.err(
                    "E307",
                    f"`{e.duration.text}` is not a duration ({describe(u.dims)})",
                    e.duration.span,
                    hint="write days, weeks, months or years",
                )
            return BoolT()
        if isinstance(e, n.Order):
            self.date_operand(e.subject, scope)
            self.date_operand(e.anchor, scope)
            return BoolT()
        if isinstance(e, n.Arith):
            return self.arith(e, scope)
        if isinstance(e, n.Neg):
            t = self.expr(e.operand, scope)
            if not isinstance(t, (*NUMERIC, QuantT, ErrorT)):
                return self.err("E201", f"cannot negate {t.describe()}", e.span)
            return NumberT() if isinstance(t, IntT) else t
        raise AssertionError(type(e))

    def magnitude(self, e: n.Expr, t: Type) -> Fraction:
        """Exact value of a literal in base units (for range sanity checks)."""
        if isinstance(e, n.QuantityLit) and isinstance(t, QuantT):
            return e.value * t.unit.factor
        assert isinstance(e, n.NumberLit)
        return e.value

    def date_operand(self, e: n.Expr, scope: dict) -> None:
        t = self.expr(e, scope)
        if not isinstance(t, (DateT, ErrorT)):
            self.err(
                "E201",
                f"a time window needs dates on both sides, but this is {t.describe()}",
                e.span,
                label="not a date",
            )

    def call(self, e: n.Call, scope: dict) -> Type:
        if e.func in BUILTINS:
            params, result, _ = BUILTINS[e.func]
        elif e.func in self.r.defines and self.r.defines[e.func].params is not None:
            d = self.r.defines[e.func]
            self.refs_out.add(e.func)
            params = tuple(self.type_of(p.type) for p in d.params or ())
            result = self.define_type(d)
        elif e.func in self.r.defines:
            for a in e.args:
                self.expr(a, scope)
            return self.err("E104", f"`{e.func}` is a value, not a function", e.span)
        else:
            for a in e.args:
                self.expr(a, scope)
            return self.err(
                "E101",
                f"unknown function `{e.func}`",
                e.span,
                hint=_did_you_mean(
                    e.func, [*BUILTINS, *(k for k, d in self.r.defines.items() if d.params)]
                ),
            )
        if len(e.args) != len(params):
            for a in e.args:
                self.expr(a, scope)
            return self.err(
                "E104",
                f"`{e.func}` takes {len(params)} value(s), {len(e.args)} given",
                e.span,
            )
        for a, p in zip(e.args, params, strict=True):
            t = self.expr(a, scope, expected=p)
            if not same_kind(p, t):
                if isinstance(p, QuantT) and isinstance(t, QuantT):
                    self.dimension_error(a.span, p.unit, t.unit, "the parameter")
                else:
                    self.err(
                        "E201",
                        f"`{e.func}` expects {p.describe()} here, not {t.describe()}",
                        a.span,
                    )
        return result

    def quantified(self, e: n.Quantified, scope: dict) -> Type:
        lst = self.lookup(n.Name(name=e.list_name, span=e.list_span), scope, None)
        inner = dict(scope)
        if isinstance(lst, ListT):
            for fname, ftype in lst.fields:
                inner[fname] = (Ref("field", fname), ftype)
        elif not isinstance(lst, ErrorT):
            self.err(
                "E203",
                f"`{e.list_name}` is {lst.describe()}, not a list",
                e.list_span,
                hint="`any/all/no/majority of LIST with (...)` needs a fact declared "
                "as `list of {...}`",
            )
        if e.quantifier == "at_least" and e.count is not None and e.count < 1:
            self.err("E401", "`at least` needs a count of 1 or more", e.span)
        self.boolean(e.body, inner, "the condition in `with (...)`")
        return BoolT()

    def reference_range(self, e: n.Expr, scope: dict, what: str) -> None:
        t = self.expr(e, scope)
        if isinstance(e, n.Name) and e.name in self.r.facts:
            if not self.r.facts[e.name].has_reference_range:
                self.err(
                    "E204",
                    f"`{e.name}` has no reference range, so {what} is not defined for it",
                    e.span,
                    hint="add `reference range reported` (the lab's range comes with each value) "
                    "or `reference range LOW to HIGH` to the fact",
                )
        elif not isinstance(t, ErrorT):
            self.err(
                "E204",
                f"{what} needs a lab fact with a reference range",
                e.span,
            )

    def dimension_error(self, span: Span, want: Unit, got: Unit, against: str) -> None:
        if {want.dims, got.dims} == {TIME, CALENDAR}:
            self.err(
                "E305",
                f"`{got.text}` is {describe(got.dims)} but {against} is {describe(want.dims)}",
                span,
                label="calendar and fixed durations do not mix",
                hint="months and years vary in length: write both in days/weeks or both in "
                "months/years",
            )
            return
        if mass_substance_pair(want, got):
            self.err(
                "E304",
                f"`{got.text}` is {describe(got.dims)} but {against} is {describe(want.dims)}",
                span,
                label="needs a molar mass",
                hint="declare the analyte's molar mass on the fact: "
                '`molar mass 113.12 g/mol source "..."`',
            )
            return
        self.err(
            "E302",
            f"`{got.text}` is {describe(got.dims)}, but {against} is in {want.text} "
            f"({describe(want.dims)})",
            span,
            label="wrong dimension",
            hint=f"write this in a unit like {want.text}",
        )

    def subject_fact(self, e: n.Expr) -> FactInfo | None:
        if isinstance(e, n.Name) and self.r.refs.get(id(e), Ref("", "")).kind == "fact":
            return self.r.facts[e.name]
        return None

    def compare(
        self,
        op: str,
        left: n.Expr,
        right: n.Expr,
        span: Span,
        scope: dict,
        check_subject: bool = True,
    ) -> None:
        lt = self.expr(left, scope) if check_subject else self.r.types.get(id(left), ErrorT())
        rt = self.expr(right, scope, expected=lt)
        if isinstance(lt, ErrorT) or isinstance(rt, ErrorT):
            return
        if isinstance(rt, (EnumT, ScaleT)) and not isinstance(lt, (EnumT, ScaleT)):
            lt, rt, left, right = rt, lt, right, left  # "female = sex"
        if isinstance(lt, QuantT) and isinstance(right, n.DualQuantityLit):
            self.dual(left, lt, right)
            return
        if isinstance(lt, QuantT) and isinstance(rt, QuantT):
            if not lt.unit.same_dimension(rt.unit):
                fact = self.subject_fact(left)
                if not (mass_substance_pair(lt.unit, rt.unit) and fact and fact.molar_mass):
                    self.dimension_error(right.span, lt.unit, rt.unit, self.subject_words(left))
            return
        if isinstance(lt, QuantT) and isinstance(rt, NUMERIC):
            self.err(
                "E303",
                f"this number has no unit, but {self.subject_words(left)} is in {lt.unit.text}",
                right.span,
                label="unit missing",
                hint=f"write the unit: `{getattr(right, 'text', '...')} {lt.unit.text}`"
                + (
                    "; if the protocol text gives none, say which you chose in an `assume`"
                    if isinstance(right, n.NumberLit)
                    else ""
                ),
            )
            return
        if isinstance(lt, NUMERIC) and isinstance(rt, QuantT):
            self.err(
                "E303",
                f"{self.subject_words(left)} is a plain number, but this has a unit "
                f"({rt.unit.text})",
                right.span,
                label="unexpected unit",
                hint="declare the fact as `quantity UNIT` or drop the unit",
            )
            return
        if isinstance(lt, IntT) and isinstance(right, n.NumberLit):
            self.int_range(op, lt, right)
            return
        if isinstance(lt, NUMERIC) and isinstance(rt, NUMERIC):
            return
        if isinstance(lt, EnumT) and op not in ("=", "!="):
            self.err(
                "E202",
                f"`{op}` needs an order, but {lt.describe()} has none",
                span,
                hint="use `=`, `!=` or `in {...}`; declare a `scale` if the categories are ordered",
            )
            return
        if isinstance(lt, BoolT) and isinstance(rt, BoolT) and op not in ("=", "!="):
            self.err("E202", f"`{op}` is not defined for yes/no values", span)
            return
        if isinstance(lt, ListT):
            self.err(
                "E202",
                "a list cannot be compared directly",
                left.span,
                hint="use `any/all/no ... with (...)`",
            )
            return
        if not same_kind(lt, rt):
            self.err(
                "E201",
                f"cannot compare {lt.describe()} with {rt.describe()}",
                right.span,
                label="wrong kind of value",
            )

    def subject_words(self, e: n.Expr) -> str:
        if isinstance(e, n.Name):
            return f"`{e.name}`"
        if isinstance(e, n.Call):
            return f"`{e.func}(...)`"
        return "the left side"

    def int_range(self, op: str, t: IntT, lit: n.NumberLit) -> None:
        v = lit.value
        if v.denominator != 1 or not (t.low <= v <= t.high):
            self.err(
                "E401",
                f"{lit.text} is outside the declared range {t.low}..{t.high}",
                lit.span,
                label="impossible value",
            )
            return
        never = (op == ">" and v == t.high) or (op == "<" and v == t.low)
        if never:
            self.warn(
                "W401",
                f"`{op} {lit.text}` can never be true: the declared range is {t.low}..{t.high}",
                lit.span,
            )

    def dual(self, left: n.Expr, lt: QuantT, lit: n.DualQuantityLit) -> None:
        fact = self.subject_fact(left)
        molar = fact.molar_mass if fact else None
        factors = []
        for part in (lit.primary, lit.secondary):
            t = self.r.types.get(id(part))
            if not isinstance(t, QuantT):
                return  # unknown unit, already reported
            f = conversion_factor(t.unit, lt.unit, molar)
            if f is None:
                self.dimension_error(part.span, lt.unit, t.unit, self.subject_words(left))
            factors.append(f)
        fp, fs = factors
        if fp is None or fs is None:
            return
        a, b = lit.primary.value * fp, lit.secondary.value * fs
        rel = abs(a - b) / abs(a) if a else abs(b)
        self.r.dual_checks.append(DualCheck(lit, a, b, rel))
        if rel > self.tolerance:
            self.warn(
                "W301",
                f"{lit.primary.text} and {lit.secondary.text} differ by "
                f"{float(rel) * 100:.2g}% (tolerance {float(self.tolerance) * 100:.2g}%)",
                lit.span,
                label="the first value is the one applied",
                notes=(f"{lit.secondary.text} is {float(b):.4g} {lt.unit.text}",),
                hint="check both values against the protocol; the first one decides",
            )

    def arith(self, e: n.Arith, scope: dict) -> Type:
        a = self.expr(e.left, scope)
        b = self.expr(e.right, scope)
        if isinstance(a, ErrorT) or isinstance(b, ErrorT):
            return ErrorT()
        for side, t in ((e.left, a), (e.right, b)):
            if not isinstance(t, (*NUMERIC, QuantT)):
                return self.err("E201", f"cannot do arithmetic on {t.describe()}", side.span)
        if e.op in "+-":
            if isinstance(a, QuantT) and isinstance(b, QuantT):
                if not a.unit.same_dimension(b.unit):
                    self.dimension_error(e.right.span, a.unit, b.unit, "the left side")
                    return ErrorT()
                return a
            if isinstance(a, QuantT) or isinstance(b, QuantT):
                q = a if isinstance(a, QuantT) else b
                return self.err(
                    "E303",
                    f"cannot add a plain number to a quantity in {q.unit.text}",  # type: ignore[union-attr]
                    e.span,
                    hint="take the number out first: `(x in UNIT)`",
                )
            return NumberT()
        if isinstance(a, QuantT) or isinstance(b, QuantT):
            ua = a.unit if isinstance(a, QuantT) else Unit("", Fraction(1), ())
            ub = b.unit if isinstance(b, QuantT) else Unit("", Fraction(1), ())
            sign = 1 if e.op == "*" else -1
            dims = mul_dims(ua.dims, ub.dims, sign)
            factor = ua.factor * ub.factor**sign
            text = f"{ua.text or '1'}{e.op}{ub.text or '1'}"
            return QuantT(Unit(text, factor, dims))
        return NumberT()

    # ------------------------------------------------------------------ criteria
    def criterion(self, kind: str, c: n.Criterion, seen: dict[str, Span]) -> set[str]:
        self.refs_out = set()
        if c.id in seen:
            self.err(
                "E004",
                f"criterion id {c.id} is used twice",
                c.id_span,
                related=((seen[c.id], "first used here"),),
                hint="ids are how amendments and reports refer to a criterion: keep them unique",
            )
        seen.setdefault(c.id, c.id_span)
        for k in ("rule", "applies"):
            found = [cl for cl in c.clauses if cl.kind == k]
            for extra in found[1:]:
                self.err(
                    "E003",
                    f"{c.id} has more than one `{k}` clause",
                    extra.span,
                    hint="combine them with `and`",
                )
        if c.rule is None:
            self.err(
                "E002",
                f"{c.id} has no `rule`",
                c.id_span,
                hint=f"add a line `rule ...` saying when the patient "
                f"{'meets' if kind == 'inclusion' else 'is excluded by'} {c.id}",
            )
        for cl in c.clauses:
            if cl.kind == "rule" and cl.expr is not None:
                self.boolean(cl.expr, {}, "a rule")
            elif cl.kind == "applies" and cl.expr is not None:
                self.boolean(cl.expr, {}, "the condition after `applies if`")
            elif cl.kind == "assumption":
                self.warn(
                    "W001",
                    f"assumption in {c.id}: {cl.text}",
                    cl.span,
                    label="stated by the author, not by the protocol",
                )
        return self.refs_out

    def header(self) -> None:
        h = self.p.header
        if h is None:
            self.warn(
                "W002",
                "the file has no `protocol` header",
                self.r.source.span(0, 0),
                hint='start with `protocol "NCT..."` and its title, version and date',
            )
            return
        for key in ("title", "version", "date"):
            if getattr(h, key) is None and key not in dict(h.item_spans):
                self.warn("W002", f"the header has no {key}", h.span)
        if "date" in dict(h.item_spans) and h.date is None:
            self.err("E006", "the header date is not a calendar date", h.item_span("date"))
        for key in ("minimum_age", "maximum_age"):
            q = getattr(h, key)
            if q is not None:
                u = self.unit(q.unit, q.span)
                if u and u.dims != CALENDAR:
                    self.err(
                        "E307",
                        f"an age is written in years or months, not {describe(u.dims)}",
                        q.span,
                    )
        if h.tolerance is not None:
            u = self.unit(h.tolerance.unit, h.tolerance.span)
            if u and not u.is_dimensionless:
                self.err("E302", "the tolerance is a percentage, e.g. `2 %`", h.tolerance.span)
            elif u:
                self.tolerance = h.tolerance.value * u.factor

    def age_conflicts(self) -> None:
        """Compare the registry header's age limits with the inclusion criteria on age."""
        h = self.p.header
        if h is None or (h.minimum_age is None and h.maximum_age is None):
            return
        bounds: list[tuple[str, Fraction, n.Expr, str]] = []  # (op, years, node, crit id)
        for kind, c in self.p.criteria:
            if kind != "inclusion" or c.rule is None or c.applies is not None:
                continue
            for conj in _conjuncts(c.rule):
                for op, subject, value in _age_comparisons(conj):
                    t = self.r.types.get(id(subject))
                    if not (isinstance(t, QuantT) and t.unit.dims == CALENDAR):
                        continue
                    if not isinstance(value, n.QuantityLit):
                        continue
                    u = parse_unit(value.unit)
                    if u.dims != CALENDAR:
                        continue
                    bounds.append((op, value.value * u.factor / _YEARS.factor, value, c.id))
        for key, ops in (("minimum_age", (">", ">=")), ("maximum_age", ("<", "<="))):
            q = getattr(h, key)
            if q is None:
                continue
            try:
                limit = q.value * parse_unit(q.unit).factor / _YEARS.factor
            except UnitError:
                continue
            mine = [b for b in bounds if b[0] in ops]
            word = "minimum" if key == "minimum_age" else "maximum"
            if not mine:
                self.warn(
                    "W201",
                    f"the header's {word} age ({q.text}) is not enforced by any "
                    "inclusion criterion",
                    q.span,
                    hint=f"add an inclusion criterion, e.g. `rule age {ops[1]} {q.text}`",
                )
                continue
            for op, years, node, cid in mine:
                self.age_bound(key, op, years, limit, node, cid, q)

    def age_bound(
        self,
        key: str,
        op: str,
        years: Fraction,
        limit: Fraction,
        node: n.QuantityLit,
        cid: str,
        q: n.QuantityLit,
    ) -> None:
        strict = op in (">", "<")
        word = "minimum" if key == "minimum_age" else "maximum"
        hdr = f"the registry header says {word} age {q.text}"
        related = ((q.span, "header"),)
        if years == limit and strict:
            who = f"patients aged exactly {q.text}"
            self.warn(
                "W201",
                f"{cid} requires age {op} {node.text}, but {hdr}: {who} are left out",
                node.span,
                label="excludes the boundary age",
                related=related,
                hint=f"if they may enter, write `age {op}= {node.text}` and record the reading "
                "in an `assumption`; otherwise correct the header",
            )
        elif (key == "minimum_age" and years > limit) or (key == "maximum_age" and years < limit):
            self.warn(
                "W201",
                f"{cid} requires age {op} {node.text}, stricter than the header ({hdr})",
                node.span,
                related=related,
                hint="make the header and the criterion say the same",
            )
        elif years != limit:
            self.warn(
                "W201",
                f"{cid} allows ages the header excludes ({hdr})",
                node.span,
                related=related,
                hint="make the header and the criterion say the same",
            )

    # ------------------------------------------------------------------ the run
    def run(self) -> CheckResult:
        self.header()
        self.collect()
        used: set[str] = set()
        for d in self.p.decls:
            if isinstance(d, n.Define):
                self.define_type(d)
            elif isinstance(d, n.AssumeValue) and d.name in self.r.assumed:
                self.assumed_type(d.name)
                self.warn(
                    "W001",
                    f"assumption `{d.name}`: {d.reason}",
                    d.span,
                    label="stated by the author, not by the protocol",
                )
            elif isinstance(d, n.AssumeText):
                self.warn(
                    "W001",
                    f"assumption: {d.text}",
                    d.span,
                    label="stated by the author, not by the protocol",
                )
            elif isinstance(d, n.Fact):
                look = d.option("lookback")
                if look and look.anchor and look.anchor not in self.r.anchors:
                    self.err(
                        "E101",
                        f"unknown anchor `{look.anchor}`",
                        look.span,
                        hint=_did_you_mean(look.anchor, self.r.anchors),
                    )
        self.bind()
        seen: dict[str, Span] = {}
        for kind, c in self.p.criteria:
            used |= self.criterion(kind, c, seen)
        self.age_conflicts()
        self.unused(used)
        self.r.diagnostics = sorted_diagnostics(self.diags)
        return self.r

    def bind(self) -> None:
        """Collect code bindings: the library's for declared facts, then the file's own."""
        own = [d for d in self.p.decls if isinstance(d, n.Codes)]
        for d in self.library:
            if self.binding_target(d, report=False):
                self.add_binding(d)
        for d in own:
            if self.binding_target(d, report=True):
                self.add_binding(d)

    def binding_target(self, d: n.Codes, report: bool) -> bool:
        if d.fact not in self.r.facts and d.fact != "arm":
            if report:
                self.err(
                    "E101",
                    f"codes for unknown fact `{d.fact}`",
                    d.span,
                    hint=_did_you_mean(d.fact, self.r.facts),
                )
            return False
        if d.member is None:
            return True
        t = self.r.facts[d.fact].type if d.fact in self.r.facts else None
        kind = t.field("kind") if isinstance(t, ListT) else None
        if not isinstance(kind, EnumT):
            if report:
                self.err(
                    "E103",
                    f"`{d.fact}.{d.member}`: only a list with a `kind` category field has members",
                    d.span,
                )
            return False
        if d.member not in kind.members:
            if report:
                self.err(
                    "E102",
                    f"`{d.member}` is not a kind of {d.fact}: {', '.join(kind.members)}",
                    d.span,
                    hint=_did_you_mean(d.member, kind.members),
                )
            return False
        return True

    def add_binding(self, d: n.Codes) -> None:
        if d.member is None:
            self.r.bindings.setdefault(d.fact, []).extend(d.codes)
        else:
            self.r.item_bindings.setdefault((d.fact, d.member), []).extend(d.codes)

    def unused(self, used: set[str]) -> None:
        # follow definitions: a fact used only by a used definition is used
        frontier = list(used)
        while frontier:
            name = frontier.pop()
            for dep in self.define_refs.get(name, ()):
                if dep not in used:
                    used.add(dep)
                    frontier.append(dep)
        for d in self.p.decls:
            if isinstance(d, n.Fact) and d.option("lookback"):
                used.add(d.option("lookback").anchor or "")  # type: ignore[union-attr]
        for table, what in (
            (self.r.facts, "fact"),
            (self.r.defines, "definition"),
            (self.r.assumed, "assumed value"),
            (self.r.anchors, "anchor"),
        ):
            for name, item in table.items():
                if name in used or name == ENROLLMENT:
                    continue
                node = item.node if isinstance(item, FactInfo) else item
                if node is None:
                    continue
                self.warn(
                    "W101",
                    f"{what} `{name}` is declared but no criterion uses it",
                    node.span,
                    hint="remove it, or use it in a rule",
                )


def _age_comparisons(e: n.Expr) -> list[tuple[str, n.Expr, n.Expr]]:
    """(op, subject, value) for `age OP value` and `age between a and b`, subject left."""
    flip = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}
    if isinstance(e, n.Compare):
        if isinstance(e.left, n.Name) and e.left.name == "age":
            return [(e.op, e.left, e.right)]
        if isinstance(e.right, n.Name) and e.right.name == "age":
            return [(flip[e.op], e.right, e.left)]
    if isinstance(e, n.Between) and isinstance(e.subject, n.Name) and e.subject.name == "age":
        return [(">=", e.subject, e.low), ("<=", e.subject, e.high)]
    return []


def check(
    protocol: n.Protocol, source: SourceFile, library: list[n.Codes] | None = None
) -> CheckResult:
    """Check one protocol; `library` holds the code bindings of the files it imports."""
    return _Checker(protocol, source, library).run()
