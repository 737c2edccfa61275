"""Declarations pass: helpers, the data dictionary, names and definitions."""

from __future__ import annotations

from fractions import Fraction

from .. import nodes as n
from ..diagnostics import Diagnostic, error, warning
from ..functions import MATH
from ..scales import ScaleConversion, conversion
from ..source import SourceFile, Span
from ..typesys import (
    BoolT,
    DateT,
    EnumT,
    ErrorT,
    IntT,
    ListT,
    NumberT,
    PressureT,
    QuantT,
    ScaleT,
    Type,
    mm_hg,
)
from ..units import (
    Unit,
    UnitError,
    conversion_factor,
    describe,
    is_duration,
    parse_unit,
)
from .forms import duration_problem
from .result import (
    BUILTINS,
    DEFAULT_TOLERANCE,
    ENROLLMENT,
    CheckResult,
    FactInfo,
    Ref,
    _did_you_mean,
)

# `age` is a definition each protocol states (its anchor and rounding are the protocol's),
# not a built-in name: the usual one, as in every protocol of protocols/
AGE_HINT = (
    "age is not built in: `define age = elapsed_years(birth_date, enrollment)` "
    "with `fact birth_date: date`"
)


class DeclarationsPass:
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
            label = "out of bounds" if exc.code == "E310" else "unknown unit"
            self.err(exc.code, exc.message, span, label=label, hint=exc.hint)
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
        if isinstance(t, n.BloodPressureTypeExpr):
            return PressureT(mm_hg())
        if isinstance(t, n.ListTypeExpr):
            names = [f.name for f in t.fields]
            for f in t.fields:
                if names.count(f.name) > 1:
                    self.err("E005", f"field `{f.name}` is declared twice", f.span)
            for f in t.fields:
                if isinstance(f.type, n.BloodPressureTypeExpr):
                    self.err(
                        "E602",
                        "a blood pressure is a fact of its own, not a field of a list item",
                        f.type.span,
                        hint="declare `fact bp: blood pressure`",
                    )
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
                if d.params is not None and (d.name in BUILTINS or d.name in MATH):
                    # a call would reach the built-in, never this definition
                    self.err(
                        "E005",
                        f"`{d.name}` is a built-in function",
                        d.span,
                        hint="give the definition another name",
                    )
                elif self.declare(d.name, d.span):
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
            if isinstance(t, ListT):
                self.err(
                    "E201",
                    "a list has no molar mass: only a quantity fact can have one",
                    opt.span,
                    hint="a list's quantity fields are read and compared in their own unit "
                    "only; remove the option, or declare the analyte as a `quantity` fact",
                )
            elif not isinstance(t, QuantT):
                self.err("E201", "only a quantity can have a molar mass", opt.span)
        history = d.option("history")
        if history and not isinstance(t, BoolT):
            # read from Condition resources only: ever diagnosed, or current (docs/fhir.md)
            self.err("E201", "only a yes/no fact has a `history ever` or `current`", history.span)
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
            elif u:
                problem = duration_problem(look.quantity, u, "a look-back window")
                if problem is not None:
                    message, hint = problem
                    self.err(
                        "E307", message, look.quantity.span, label="dates are whole days", hint=hint
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
        plausible = d.option("plausible")
        if plausible and plausible.quantity and plausible.high:
            self.plausible_range(t, plausible, molar)
        return FactInfo(d, t, molar, look, ranged, self.scale_conversions(d, t, molar))

    def scale_conversions(
        self, d: n.Fact, t: Type, molar: Fraction | None
    ) -> tuple[ScaleConversion, ...]:
        """The fact's `convert` options: each from a scale no unit conversion reaches."""
        out: list[ScaleConversion] = []
        for opt in d.options:
            if opt.kind != "convert" or not opt.units or not opt.coefficients:
                continue
            src, dst = (self.unit(u, opt.span) for u in opt.units)
            if src is None or dst is None:
                continue
            if not isinstance(t, QuantT):
                self.err("E201", "only a quantity can have a scale conversion", opt.span)
                continue
            slope, intercept = (Fraction(c) for c in opt.coefficients)
            problem = ""
            if not dst.same_dimension(t.unit):
                problem = (
                    f"it must end in {d.name}'s dimension ({t.unit.text}, "
                    f"{describe(t.unit.dims)}), not in {dst.text} ({describe(dst.dims)})"
                )
            elif conversion(src, t.unit, molar) is not None:
                problem = (
                    f"{src.text} already converts to {t.unit.text} (UCUM"
                    + (", or the molar mass" if molar else "")
                    + "); a declared equation would contradict it"
                )
            elif slope == 0:
                problem = "a slope of 0 makes every value the same"
            elif not (opt.text or "").strip():
                problem = "a clinical conversion needs its source (publication, table)"
            elif any(src.same_dimension(c.src) for c in out):
                problem = f"a conversion from {describe(src.dims)} is already declared"
            if problem:
                self.err(
                    "E312",
                    f"this scale conversion cannot be used: {problem}",
                    opt.span,
                    hint='write `convert UNIT to FACT_UNIT as A x + B source "..."`',
                )
                continue
            out.append(ScaleConversion(src, dst, slope, intercept, opt.text or ""))
        return tuple(out)

    def plausible_range(self, t: Type, opt: n.FactOption, molar: Fraction | None) -> None:
        """`plausible LOW..HIGH`: ends in the fact's dimension (a plain number: no unit),
        LOW not above HIGH."""
        assert opt.quantity is not None and opt.high is not None
        if not isinstance(t, (QuantT, NumberT)):
            self.err("E201", "only a quantity or a plain number has a plausible range", opt.span)
            return
        values = []
        for q in (opt.quantity, opt.high):
            if isinstance(t, NumberT):
                if q.unit:
                    self.err("E306", "a plain number's plausible range has no unit", q.span)
                    return
                values.append(q.value)
                continue
            u = self.unit(q.unit, q.span) if q.unit else None
            if u is None:
                if not q.unit:
                    self.err(
                        "E303",
                        f"the plausible range needs a unit ({t.unit.text})",
                        q.span,
                        hint=f"write e.g. `plausible {q.number_text}..{q.number_text} "
                        f"{t.unit.text}`",
                    )
                return
            k = conversion_factor(u, t.unit, molar)
            if k is None:
                self.dimension_error(q.span, t.unit, u, "the plausible range")
                return
            values.append(q.value * k)
        if values[0] > values[1]:
            self.err(
                "E402", "the plausible range is empty (its low end is above its high end)", opt.span
            )

    # ------------------------------------------------------------------ names
    def global_names(self) -> list[str]:
        return [*self.r.facts, *self.r.anchors, *self.r.defines, *self.r.assumed, *BUILTINS, *MATH]

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
            or (AGE_HINT if name == "age" else None)
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
            if isinstance(p.type, n.BloodPressureTypeExpr):
                self.err(
                    "E602",
                    "a blood pressure is compared where it is read, not passed to a function",
                    p.type.span,
                    hint="pass `bp.systolic` or `bp.diastolic` (quantities in mm[Hg])",
                )
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
