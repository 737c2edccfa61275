"""The kinds of value a criteria file talks about, and how to name them for people."""

from __future__ import annotations

from functools import cache, cached_property

from .frozen_classes import frozen
from .units import Unit, describe


@frozen
class Type:
    def describe(self) -> str:
        raise NotImplementedError


@frozen
class ErrorT(Type):
    """Stands in after an error, so one mistake is reported once, not at every use."""

    def describe(self) -> str:
        return "an invalid value"


@frozen
class BoolT(Type):
    attestation: bool = False

    def describe(self) -> str:
        return "a yes/no condition"


@frozen
class NumberT(Type):
    def describe(self) -> str:
        return "a plain number"


@frozen
class IntT(Type):
    low: int
    high: int

    def describe(self) -> str:
        return f"a whole number from {self.low} to {self.high}"


@frozen
class QuantT(Type):
    unit: Unit  # the unit values of this kind are carried in after compilation

    def describe(self) -> str:
        return f"a quantity in {self.unit.text} ({describe(self.unit.dims)})"


def _positions(members: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, m in enumerate(members):
        out.setdefault(m, i)  # a member listed twice (E005) keeps its first place
    return out


@frozen
class EnumT(Type):
    members: tuple[str, ...]

    @cached_property
    def positions(self) -> dict[str, int]:
        """Member -> position: membership in constant time (enums may be large)."""
        return _positions(self.members)

    def describe(self) -> str:
        return "one of {" + ", ".join(self.members) + "}"


@frozen
class ScaleT(Type):
    members: tuple[str, ...]  # lowest first

    @cached_property
    def positions(self) -> dict[str, int]:
        """Member -> rank (0 lowest), in constant time."""
        return _positions(self.members)

    def describe(self) -> str:
        return "a grade on the scale " + " < ".join(self.members)


@frozen
class DateT(Type):
    def describe(self) -> str:
        return "a date"


@frozen
class PressureT(Type):
    """A blood pressure: systolic and diastolic, each in `unit` (mm[Hg])."""

    unit: Unit

    def describe(self) -> str:
        return "a blood pressure (systolic/diastolic)"


@frozen
class ListT(Type):
    fields: tuple[tuple[str, Type], ...]

    def field(self, name: str) -> Type | None:
        return dict(self.fields).get(name)

    def describe(self) -> str:
        return "a list of {" + ", ".join(name for name, _ in self.fields) + "}"


NUMERIC = (NumberT, IntT)


@cache
def mm_hg() -> Unit:
    """UCUM `mm[Hg]` (millimetre of mercury), the unit of blood pressure in FHIR vital signs."""
    from .ucum import ucum_unit

    return ucum_unit("mm[Hg]")


def same_kind(a: Type, b: Type) -> bool:
    """Can values of a and b be compared or stand in for each other?"""
    if isinstance(a, ErrorT) or isinstance(b, ErrorT):
        return True
    if isinstance(a, NUMERIC) and isinstance(b, NUMERIC):
        return True
    if isinstance(a, QuantT) and isinstance(b, QuantT):
        return a.unit.dims == b.unit.dims
    if isinstance(a, BoolT) and isinstance(b, BoolT):
        return True
    if isinstance(a, (EnumT, ScaleT)) and type(a) is type(b):
        return set(a.members) == set(b.members)  # type: ignore[attr-defined]
    return type(a) is type(b) and a == b
