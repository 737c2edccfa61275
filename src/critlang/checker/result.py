"""What the checker returns: fact information, name references and the checked result."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from functools import cached_property

from .. import nodes as n
from ..diagnostics import Diagnostic
from ..frozen_classes import field, frozen, mutable
from ..scales import ScaleConversion
from ..source import SourceFile
from ..typesys import (
    DateT,
    EnumT,
    QuantT,
    Type,
)
from ..units import (
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


@frozen
class FactInfo:
    node: n.Fact
    type: Type
    molar_mass: Fraction | None = None  # in g/mol
    lookback: n.FactOption | None = None
    has_reference_range: bool = False
    scales: tuple[ScaleConversion, ...] = ()  # declared `convert` options (clinical scales)


@frozen
class Ref:
    """What a name in an expression refers to."""

    kind: str  # fact, anchor, define, assume, param, field, member, arm
    name: str


@frozen
class DualCheck:
    """A threshold written in two units, verified by the checker."""

    literal: n.DualQuantityLit
    primary: Fraction  # in the subject's unit
    secondary: Fraction  # converted into the subject's unit
    relative_difference: Fraction


@mutable
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
    import difflib  # only for a misspelt name: not at every start

    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else ""


def _conjuncts(e: n.Expr) -> list[n.Expr]:
    if isinstance(e, n.And):
        return _conjuncts(e.left) + _conjuncts(e.right)
    return [e]
