"""AST nodes. Frozen, each with its source span; equality ignores spans.

Every node lists its children through `children()` (the dataclass fields that hold
nodes), so passes can walk any tree without knowing every class.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from fractions import Fraction

from .frozen_classes import field, field_names, frozen
from .source import Span

_NOSPAN = Span("<none>", 0, 0, 0, 0, 0, 0)
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # a node class -> its fields' names


@frozen(kw_only=True)
class Node:
    span: Span = field(default=_NOSPAN, compare=False, repr=False)

    def children(self) -> Iterator[Node]:
        names = _FIELD_NAMES.get(type(self))
        if names is None:  # once per class: `fields()` builds a tuple at every call
            names = _FIELD_NAMES[type(self)] = field_names(type(self))
        for name in names:
            value = getattr(self, name)
            if isinstance(value, Node):
                yield value
            elif isinstance(value, tuple):
                yield from (v for v in value if isinstance(v, Node))

    def walk(self) -> Iterator[Node]:
        """This node and all below it, depth first, in source order (an explicit stack:
        no depth limit)."""
        stack: list[Node] = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(tuple(node.children())))


# ------------------------------------------------------------------ types (as written)


@frozen(kw_only=True)
class TypeExpr(Node):
    pass


@frozen(kw_only=True)
class QuantityTypeExpr(TypeExpr):
    unit: str


@frozen(kw_only=True)
class NumberTypeExpr(TypeExpr):
    pass


@frozen(kw_only=True)
class IntegerTypeExpr(TypeExpr):
    low: int
    high: int


@frozen(kw_only=True)
class EnumTypeExpr(TypeExpr):
    members: tuple[str, ...]


@frozen(kw_only=True)
class ScaleTypeExpr(TypeExpr):
    members: tuple[str, ...]  # lowest first


@frozen(kw_only=True)
class BooleanTypeExpr(TypeExpr):
    attestation: bool = False  # an investigator's yes/no, e.g. signed consent


@frozen(kw_only=True)
class DateTypeExpr(TypeExpr):
    pass


@frozen(kw_only=True)
class BloodPressureTypeExpr(TypeExpr):
    """`blood pressure`: a systolic/diastolic pair in mm[Hg] (LOINC 85354-9 panel with
    components 8480-6 systolic and 8462-4 diastolic)."""


@frozen(kw_only=True)
class FieldDecl(Node):
    name: str
    type: TypeExpr


@frozen(kw_only=True)
class ListTypeExpr(TypeExpr):
    fields: tuple[FieldDecl, ...]


# ------------------------------------------------------------------ expressions


@frozen(kw_only=True)
class Expr(Node):
    # parentheses the author wrote around this expression: kept by `critlang fmt`,
    # ignored by equality (they change no meaning once parsed)
    parens: int = field(default=0, compare=False, repr=False)


@frozen(kw_only=True)
class NumberLit(Expr):
    value: Fraction
    text: str  # as written, for messages and formatting


@frozen(kw_only=True)
class QuantityLit(Expr):
    value: Fraction
    number_text: str
    unit: str  # as written ("x10^9/L", "mg/dL")
    raw: str = field(default="", compare=False, repr=False)  # the token exactly as written

    @property
    def text(self) -> str:
        return f"{self.number_text} {self.unit}"


@frozen(kw_only=True)
class DualQuantityLit(Expr):
    """A threshold written in two units: '5.0 mmol/L (8.0 g/dL)'. The first one rules."""

    primary: QuantityLit
    secondary: QuantityLit


@frozen(kw_only=True)
class PressureLit(Expr):
    """`140/90 mmHg`: a systolic/diastolic pair, compared with a `blood pressure` fact.

    `<`/`<=` hold when both values do ("BP < 140/90": both below), `>`/`>=` when either
    does ("BP > 160/100": either above), `=` when both are equal, `!=` when either differs.
    """

    systolic: Fraction
    diastolic: Fraction
    unit: str  # as written ("mmHg", "mm[Hg]"), "" when omitted (then mm[Hg])
    raw: str = field(default="", compare=False, repr=False)


PRESSURE_COMBINE = {"<": "all", "<=": "all", "=": "all", ">": "any", ">=": "any", "!=": "any"}


@frozen(kw_only=True)
class DateOf(Expr):
    """`date of hemoglobin`: the date the fact's value was observed (unknown if undated)."""

    fact: str
    fact_span: Span = field(compare=False, repr=False)


@frozen(kw_only=True)
class DateLit(Expr):
    value: dt.date  # date.min when the text is not a calendar date (the checker says so)
    text: str = field(default="", compare=False, repr=False)


@frozen(kw_only=True)
class BoolLit(Expr):
    value: bool


@frozen(kw_only=True)
class Name(Expr):
    name: str


@frozen(kw_only=True)
class Call(Expr):
    func: str
    args: tuple[Expr, ...]


@frozen(kw_only=True)
class Attribute(Expr):
    """`fact.field`: reserved for record-like facts; the checker reports it otherwise."""

    obj: str
    attr: str


@frozen(kw_only=True)
class Magnitude(Expr):
    """`(weight in kg)`: the plain number a quantity has in the stated unit."""

    expr: Expr
    unit: str


@frozen(kw_only=True)
class WithUnit(Expr):
    """`(... as mL/min)`: give a plain number a unit (empirical formulas)."""

    expr: Expr
    unit: str


@frozen(kw_only=True)
class Conditional(Expr):
    then: Expr
    cond: Expr
    otherwise: Expr


@frozen(kw_only=True)
class FirstAvailable(Expr):
    options: tuple[Expr, ...]


@frozen(kw_only=True)
class Quantified(Expr):
    """`any|all|no|majority of|at least N of LIST with (COND)`."""

    quantifier: str  # "any", "all", "no", "majority", "at_least"
    count: int | None
    list_name: str
    list_span: Span = field(compare=False, repr=False)
    body: Expr


@frozen(kw_only=True)
class Not(Expr):
    operand: Expr


@frozen(kw_only=True)
class And(Expr):
    left: Expr
    right: Expr


@frozen(kw_only=True)
class Or(Expr):
    left: Expr
    right: Expr


@frozen(kw_only=True)
class Unless(Expr):
    """`A unless B`: A holds and the exception B does not."""

    rule: Expr
    exception: Expr


@frozen(kw_only=True)
class Implies(Expr):
    """`A implies B` (also written `if A then B`): true when A is false or B is true."""

    premise: Expr
    conclusion: Expr
    # "implies" or "if": how it was written (kept by `critlang fmt`; no meaning)
    form: str = field(default="implies", compare=False)


@frozen(kw_only=True)
class Compare(Expr):
    op: str  # < <= > >= = !=
    left: Expr
    right: Expr


@frozen(kw_only=True)
class CompareRef(Expr):
    """`glucose > 2 x ULN`: against a multiple of the reference range's limit."""

    op: str
    left: Expr
    factor: NumberLit
    limit: str  # "ULN" or "LLN"


@frozen(kw_only=True)
class Between(Expr):
    """`x between a and b`, both ends included."""

    subject: Expr
    low: Expr
    high: Expr


@frozen(kw_only=True)
class Member(Expr):
    subject: Expr
    members: tuple[str, ...]
    negated: bool = False


@frozen(kw_only=True)
class InNormalRange(Expr):
    subject: Expr


@frozen(kw_only=True)
class IsKnown(Expr):
    subject: Expr


@frozen(kw_only=True)
class Window(Expr):
    """A date relative to an anchor date.

    kind "within": anchor - d <= subject <= anchor (for "before");
    kind "more":   subject < anchor - d;  kind "less": anchor - d < subject <= anchor.
    "after" mirrors each around the anchor.
    """

    kind: str  # "within", "more", "less"
    subject: Expr
    duration: QuantityLit
    direction: str  # "before", "after"
    anchor: Expr


@frozen(kw_only=True)
class DateBound(Expr):
    """A date on one side of an edge, the edge day included.

    `S at least D before A`: S <= A - D;  `S at least D after A`: S >= A + D;
    `S no later than A` / `S on or before A`: S <= A;
    `S no earlier than A` / `S on or after A`: S >= A.
    """

    op: str  # "<=" or ">="
    subject: Expr
    anchor: Expr
    duration: QuantityLit | None = None  # the offset of the edge from the anchor
    direction: str | None = None  # "before" / "after" (with a duration)
    # how it was written: "at_least", "no_later", "no_earlier", "on_or" (no meaning)
    wording: str = field(default="at_least", compare=False)


@frozen(kw_only=True)
class WindowBetween(Expr):
    """`S between D1 and D2 before A`: A - D2 <= S <= A - D1, both edge days included
    ("after": A + D1 <= S <= A + D2). A bare number D1 takes D2's unit."""

    subject: Expr
    low: Expr
    high: Expr
    direction: str
    anchor: Expr

    def durations(self) -> tuple[QuantityLit, QuantityLit] | None:
        """Both ends as quantities (the checker ensures this shape), else None."""
        hi = self.high
        lo = self.low
        if not isinstance(hi, QuantityLit) or hi.parens:
            return None
        if isinstance(lo, NumberLit) and not lo.parens:
            lo = QuantityLit(
                value=lo.value, number_text=lo.text, unit=hi.unit, raw=lo.text, span=lo.span
            )
        if not isinstance(lo, QuantityLit) or lo.parens:
            return None
        return lo, hi


@frozen(kw_only=True)
class Period(Expr):
    """A period from START to END against an anchor, edge days included.

    kind "ongoing":  `START to END ongoing at A`: START <= A <= END;
    kind "overlaps": `START to END overlaps D before A`: START <= A and END >= A - D
                     ("after": START <= A + D and END >= A).
    """

    kind: str
    start: Expr
    end: Expr
    anchor: Expr
    duration: QuantityLit | None = None
    direction: str | None = None


@frozen(kw_only=True)
class Order(Expr):
    """`d before a` / `d after a`: strictly earlier or later."""

    subject: Expr
    direction: str
    anchor: Expr


@frozen(kw_only=True)
class Arith(Expr):
    op: str  # + - * /
    left: Expr
    right: Expr


@frozen(kw_only=True)
class Neg(Expr):
    operand: Expr


# ------------------------------------------------------------------ declarations


@frozen(kw_only=True)
class Arm(Node):
    name: str
    label: str | None


@frozen(kw_only=True)
class Header(Node):
    identifier: str
    title: str | None = None
    version: str | None = None
    date: dt.date | None = None
    date_text: str | None = None  # as written, also when it is not a calendar date
    sex: str | None = None  # "all", "female", "male"
    minimum_age: QuantityLit | None = None
    maximum_age: QuantityLit | None = None
    healthy_volunteers: bool | None = None
    amends: str | None = None
    amendment_notes: tuple[str, ...] = ()
    tolerance: QuantityLit | None = None
    arms: tuple[Arm, ...] = ()
    # span of each header item by keyword, for diagnostics
    item_spans: tuple[tuple[str, Span], ...] = field(default=(), compare=False, repr=False)
    identifier_span: Span = field(default=_NOSPAN, compare=False, repr=False)

    def item_span(self, key: str) -> Span:
        return dict(self.item_spans).get(key, self.span)


@frozen(kw_only=True)
class FactOption(Node):
    kind: str  # "label", "molar_mass", "lookback", "refrange_reported", "refrange", "source",
    # "convert"
    text: str | None = None
    quantity: QuantityLit | None = None
    high: QuantityLit | None = None
    anchor: str | None = None
    # `convert SRC to DST as SLOPE x + INTERCEPT`: the two units as written, and the
    # coefficients as written with their signs ("0.09148", "+2.152")
    units: tuple[str, str] = ()
    coefficients: tuple[str, str] = ()


@frozen(kw_only=True)
class Decl(Node):
    name: str


@frozen(kw_only=True)
class Fact(Decl):
    type: TypeExpr
    options: tuple[FactOption, ...] = ()

    def option(self, kind: str) -> FactOption | None:
        return next((o for o in self.options if o.kind == kind), None)


@frozen(kw_only=True)
class Anchor(Decl):
    label: str | None = None


@frozen(kw_only=True)
class Param(Node):
    name: str
    type: TypeExpr


@frozen(kw_only=True)
class Define(Decl):
    params: tuple[Param, ...] | None  # None: a named expression, not a function
    body: Expr


@frozen(kw_only=True)
class AssumeValue(Decl):
    value: Expr
    reason: str


@frozen(kw_only=True)
class AssumeText(Node):
    text: str


@frozen(kw_only=True)
class Import(Node):
    path: str


@frozen(kw_only=True)
class Code(Node):
    system: str  # loinc, snomed, icd10, rxnorm, atc, cpt, ndc, fhir
    value: str


@frozen(kw_only=True)
class Codes(Node):
    """`codes FACT[.MEMBER]: system "code", ...`"""

    fact: str
    member: str | None
    codes: tuple[Code, ...]


@frozen(kw_only=True)
class Clause(Node):
    kind: str  # "applies", "rule", "assumption", "note"
    expr: Expr | None = None
    text: str | None = None


@frozen(kw_only=True)
class Criterion(Node):
    id: str
    id_span: Span = field(compare=False, repr=False)
    text: str
    clauses: tuple[Clause, ...]

    def clause(self, kind: str) -> Clause | None:
        return next((c for c in self.clauses if c.kind == kind), None)

    @property
    def rule(self) -> Expr | None:
        c = self.clause("rule")
        return c.expr if c else None

    @property
    def applies(self) -> Expr | None:
        c = self.clause("applies")
        return c.expr if c else None

    @property
    def assumptions(self) -> tuple[Clause, ...]:
        return tuple(c for c in self.clauses if c.kind == "assumption")


@frozen(kw_only=True)
class Section(Node):
    kind: str  # "inclusion", "exclusion"
    criteria: tuple[Criterion, ...]


@frozen(kw_only=True)
class Protocol(Node):
    header: Header | None
    decls: tuple[Node, ...]  # Fact, Anchor, Define, AssumeValue, AssumeText, Section, in order

    def of_type(self, cls: type) -> list:
        return [d for d in self.decls if isinstance(d, cls)]

    @property
    def criteria(self) -> list[tuple[str, Criterion]]:
        """(section kind, criterion) in protocol order."""
        return [(s.kind, c) for s in self.of_type(Section) for c in s.criteria]


def arithmetic_roots(root: Node) -> set[int]:
    """ids of the Arith nodes that end a formula (no arithmetic above them).

    Both evaluators round a formula's final value to 12 significant digits there and
    nowhere else, so the compiled floats and the interpreter's exact fractions agree on
    a value that lands exactly on a threshold.

    A call of pow, sqrt, cbrt, ln, exp or log10 is part of a formula like an operator
    (rounded where the formula ends, or itself when it ends one). min and max pick one
    of their operands, like a conditional: inside a formula they are part of it
    (CKD-EPI's min(Scr / k, 1) is not rounded before its power), outside one each
    operand ends its own formula.
    """
    from .functions import ORDERING, TRANSCENDENTAL

    inside = (Arith, Neg, Magnitude)
    roots: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]  # explicit: no depth limit
    while stack:
        node, in_formula = stack.pop()
        computed = isinstance(node, Call) and node.func in TRANSCENDENTAL
        if (isinstance(node, Arith) or computed) and not in_formula:
            roots.add(id(node))
        below = (
            isinstance(node, inside)
            or computed
            or (
                in_formula
                and (
                    isinstance(node, Conditional)
                    or (isinstance(node, Call) and node.func in ORDERING)
                )
            )
        )
        stack.extend((child, below) for child in node.children())
    return roots


def compared(e: Node) -> tuple[Expr, ...]:
    """The values a comparison form reads (`between`, `in {...}`, `x ULN`, normal range,
    windows, date bounds, periods, order); () for other nodes. Every evaluator decides
    such a form over values with several possibilities (a conditional whose condition
    is unknown) when every combination gives the same answer (docs/language.md)."""
    if isinstance(e, Between):
        return (e.subject, e.low, e.high)
    if isinstance(e, (Member, InNormalRange)):
        return (e.subject,)
    if isinstance(e, CompareRef):
        return (e.left,)
    if isinstance(e, (Window, DateBound, WindowBetween, Order)):
        return (e.subject, e.anchor)
    if isinstance(e, Period):
        return (e.start, e.end, e.anchor)
    return ()
