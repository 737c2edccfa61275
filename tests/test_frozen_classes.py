"""`frozen` (frozen_classes.py) against `dataclass(frozen=True)`: every class decorated with
it behaves as the dataclass would (fields, defaults, signature, docstring, equality,
hashing, repr, immutability, `replace`, pattern matching), and the written-out methods
are up to date (no class falls back to `dataclass`)."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from critlang import frozen_classes as fc
from critlang import frozen_methods

MODULES = [importlib.import_module(m) for m in fc.MODULES]


def reference(module: ModuleType) -> ModuleType:
    """The module executed again with every class processed by `dataclass` itself."""
    name = module.__name__ + "_by_dataclass"
    spec = importlib.util.spec_from_file_location(name, module.__file__)
    assert spec is not None and spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    sys.modules[name] = copy
    fc.USE_DATACLASS = True
    try:
        spec.loader.exec_module(copy)
    finally:
        fc.USE_DATACLASS = False
        del sys.modules[name]
    return copy


def decorated(module: ModuleType) -> list[type]:
    return [
        c
        for c in vars(module).values()
        if isinstance(c, type)
        and c.__module__ == module.__name__
        and (c.__module__, c.__qualname__) in frozen_methods.CLASSES
    ]


PAIRS = [(c, getattr(reference(m), c.__qualname__)) for m in MODULES for c in decorated(m)]


def test_the_methods_are_written_for_the_classes_as_declared() -> None:
    assert fc.fallbacks == [], (
        "classes changed: regenerate with "
        '`python -c "from critlang.frozen_classes import write_methods; write_methods()"`'
    )
    path = Path(fc.__file__).with_name(fc.METHODS_FILE)
    assert path.read_text(encoding="utf-8") == fc.methods_source()


def test_every_decorated_class_is_compared() -> None:
    assert len(PAIRS) == len(frozen_methods.CLASSES) >= 100


def _field_view(f: dataclasses.Field[Any]) -> tuple[Any, ...]:
    return (
        *(f.name, f.type, repr(f.default), f.default_factory, f.init, f.repr, f.hash),
        *(f.compare, dict(f.metadata), f.kw_only, f._field_type),  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize("ours,theirs", PAIRS, ids=lambda c: c.__qualname__)
def test_declaration_as_dataclass_makes_it(ours: type, theirs: type) -> None:
    assert [_field_view(f) for f in dataclasses.fields(ours)] == [
        _field_view(f) for f in dataclasses.fields(theirs)
    ]
    assert fc.field_names(ours) == tuple(f.name for f in dataclasses.fields(theirs))
    assert ours.__match_args__ == theirs.__match_args__  # type: ignore[attr-defined]
    assert ours.__doc__ == theirs.__doc__
    assert repr(ours.__dataclass_params__) == repr(theirs.__dataclass_params__)  # type: ignore[attr-defined]
    assert str(inspect.signature(ours)) == str(inspect.signature(theirs))
    assert ours.__init__.__annotations__ == theirs.__init__.__annotations__  # type: ignore[misc]
    for name in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__"):
        assert getattr(getattr(ours, name), "__qualname__", None) == getattr(
            getattr(theirs, name), "__qualname__", None
        )
    for f in dataclasses.fields(theirs):  # defaults left as class attributes, or removed
        assert repr(ours.__dict__.get(f.name, "absent")) == repr(
            theirs.__dict__.get(f.name, "absent")
        )


def _sample(cls: type, **changes: Any) -> Any:
    values = {
        f.name: f"{f.name}-value"
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        else f.default
        if f.default_factory is dataclasses.MISSING
        else f.default_factory()
        for f in dataclasses.fields(cls)
        if f.init
    }
    return cls(**{**values, **changes})


def _hash(obj: Any) -> Any:
    try:
        return hash(obj)
    except TypeError as exc:
        return str(exc)


def _init_fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init]


@pytest.mark.parametrize("ours,theirs", PAIRS, ids=lambda c: c.__qualname__)
def test_instances_behave_as_dataclass_instances(ours: type, theirs: type) -> None:
    a, b = _sample(ours), _sample(theirs)
    assert repr(a) == repr(b)
    assert _hash(a) == _hash(b)
    assert ours.__hash__ is None or _hash(a) == hash(a)
    assert a == _sample(ours) and b == _sample(theirs)
    assert (a == b) is False  # different classes: not equal, as dataclasses say
    assert vars(a).keys() == vars(b).keys()  # the same attributes set, in the same order
    frozen = theirs.__dataclass_params__.frozen  # type: ignore[attr-defined]
    for name in _init_fields(theirs):
        other_a = _sample(ours, **{name: "changed"})
        other_b = _sample(theirs, **{name: "changed"})
        assert (a == other_a) == (b == other_b), name
        assert (_hash(a) == _hash(other_a)) == (_hash(b) == _hash(other_b)), name
        assert repr(other_a) == repr(other_b)
        assert dataclasses.replace(a, **{name: "changed"}) == other_a
        assert fc.replace(a, **{name: "changed"}) == other_a  # without `dataclasses`
        if not frozen:
            continue
        for obj in (a, b):
            with pytest.raises(dataclasses.FrozenInstanceError) as caught:
                setattr(obj, name, 1)
            assert str(caught.value) == f"cannot assign to field {name!r}"
            with pytest.raises(dataclasses.FrozenInstanceError) as caught:
                delattr(obj, name)
            assert str(caught.value) == f"cannot delete field {name!r}"
    with pytest.raises(TypeError) as ours_error:
        ours(unknown_field=1)
    with pytest.raises(TypeError) as their_error:
        theirs(unknown_field=1)
    assert str(ours_error.value) == str(their_error.value)


def test_default_factories_give_each_instance_its_own() -> None:
    from critlang.evaluate import CriterionResult

    a = CriterionResult(id="I1", section="inclusion", text="t", status="met")
    b = CriterionResult(id="I1", section="inclusion", text="t", status="met")
    a.missing.append("x")
    assert b.missing == [] and a != b


def test_a_changed_class_falls_back_to_dataclass() -> None:
    before = list(fc.fallbacks)

    @fc.frozen(kw_only=True)
    class Unknown:  # not in frozen_methods.py
        x: int = 1

    assert fc.fallbacks[len(before) :] == [(__name__, Unknown.__qualname__)]
    fc.fallbacks[:] = before
    assert Unknown() == Unknown(x=1) and repr(Unknown()).endswith(".Unknown(x=1)")
    with pytest.raises(dataclasses.FrozenInstanceError):
        Unknown().x = 2  # type: ignore[misc]


def test_replace_refuses_a_field_not_in_init_as_dataclasses_does() -> None:
    from critlang.source import SourceFile

    text = SourceFile("a.crit", "x\ny")
    for replace in (fc.replace, dataclasses.replace):
        with pytest.raises(ValueError) as caught:
            replace(text, _line_starts=[0])
        assert "_line_starts is declared with init=False" in str(caught.value)
    assert fc.replace(text, text="z").line_text(1) == "z"


def test_recursive_repr_as_dataclass() -> None:
    from critlang import nodes

    inner = nodes.Name(name="n")
    assert repr(nodes.Not(operand=inner)) == "Not(operand=Name(name='n'))"
