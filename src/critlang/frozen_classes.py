"""Frozen dataclasses without compiling their methods, or importing `dataclasses`, at
every start.

`@dataclass(frozen=True)` writes `__init__`, `__repr__`, `__eq__`, `__hash__`,
`__setattr__` and `__delattr__` as source text and compiles it for every class, every
time the module is imported: ~60 ms of each `critlang` command for the AST classes alone.
`frozen` gives a class the same methods from frozen_methods.py, written out once by
`write_methods()` from what `dataclass` does, so they load precompiled like any module.
`dataclasses` itself (with `inspect`, `ast`, `dis` and `tokenize`: ~20 ms) is imported
only when something asks for what only it has: `dataclasses.fields()`, `replace()`,
`asdict()` or `is_dataclass()` of a class (its `__dataclass_fields__` and
`__dataclass_params__` are built on first use, as `dataclass` would have built them),
or the error of assigning to a frozen field (`dataclasses.FrozenInstanceError`). In
class bodies, `field()` of this module stands for `dataclasses.field`; `replace()` and
`field_names()` of this module serve the evaluation path without `dataclasses`.

Each class's written-out methods are used only while the class still declares exactly
what they were written for (its fields' names, types, flags and defaults, its bases, the
methods it defines itself): otherwise `dataclass(frozen=True)` processes it as before
(correct, only slower). tests/test_frozen_classes.py compares every class with
`dataclass`'s own on equality, hashing, repr, immutability, signatures and fields, and
fails while frozen_methods.py is stale.
"""

from __future__ import annotations

import functools
import sys
from _thread import get_ident
from collections.abc import Callable
from typing import Any, TypeVar

C = TypeVar("C", bound=type)

# set by write_methods() and the tests: process every class with `dataclass` itself
USE_DATACLASS = False
# (module, qualname) of the classes processed by `dataclass` because their written-out
# methods were missing or stale (the freshness test asserts there are none)
fallbacks: list[tuple[str, str]] = []
# what `frozen` saw of each class, for write_methods(): (kw_only, fingerprint)
seen: dict[tuple[str, str], tuple[bool, bool, tuple[Any, ...]]] = {}

_METHODS = ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__")
_OWN = (*_METHODS, "__post_init__", "__match_args__", "__slots__", "__abstractmethods__")


class _Missing:
    """No default given (`dataclasses.MISSING` without importing `dataclasses`)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class _HasDefaultFactory:
    """The default a written-out `__init__` shows for a field with a default factory, as
    `dataclasses._HAS_DEFAULT_FACTORY` (the same text in `inspect.signature`)."""

    def __repr__(self) -> str:
        return "<factory>"


_HAS_DEFAULT_FACTORY: Any = _HasDefaultFactory()


def _dataclasses() -> Any:
    """The `dataclasses` module, imported when something needs it."""
    import dataclasses

    return dataclasses


def _missing(value: Any) -> bool:
    dc = sys.modules.get("dataclasses")
    return value is MISSING or (dc is not None and value is dc.MISSING)


class Field:
    """What `field(...)` declares in a class body: `dataclasses.Field`'s flags, without
    `dataclasses`; turned into a `dataclasses.Field` when `fields()` asks for it."""

    __slots__ = ("compare", "default", "default_factory", "hash", "init", "kw_only", "name")
    __slots__ += ("repr", "type")

    def __init__(
        self,
        default: Any,
        default_factory: Any,
        init: bool,
        repr: bool,
        hash: bool | None,
        compare: bool,
        kw_only: Any,
    ) -> None:
        self.name: str = ""
        self.type: Any = None
        self.default = default
        self.default_factory = default_factory
        self.init = init
        self.repr = repr
        self.hash = hash
        self.compare = compare
        self.kw_only = kw_only


def field(
    *,
    default: Any = MISSING,
    default_factory: Any = MISSING,
    init: bool = True,
    repr: bool = True,
    hash: bool | None = None,
    compare: bool = True,
    kw_only: Any = MISSING,
) -> Any:
    """`dataclasses.field` for classes decorated with `frozen` or `mutable` (the real
    one while `dataclass` processes them: USE_DATACLASS)."""
    if not _missing(default) and not _missing(default_factory):
        raise ValueError("cannot specify both default and default_factory")
    if USE_DATACLASS:
        dc = _dataclasses()
        given = {"default": default, "default_factory": default_factory, "kw_only": kw_only}
        given = {k: v for k, v in given.items() if not _missing(v)}
        return dc.field(init=init, repr=repr, hash=hash, compare=compare, **given)
    return Field(default, default_factory, init, repr, hash, compare, kw_only)


def _is_field(value: Any) -> bool:
    dc = sys.modules.get("dataclasses")
    return isinstance(value, Field) or (dc is not None and isinstance(value, dc.Field))


def _own_fields(cls: type) -> list[tuple[str, Any, Any]]:
    """(name, annotation, default or Field) of the class's own annotations, in order; the
    default as `dataclass` finds it (`getattr`: a base's class attribute counts)."""
    annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 (as dataclasses)
    return [(name, a, getattr(cls, name, MISSING)) for name, a in annotations.items()]


def _shown(value: Any) -> Any:
    return "MISSING" if _missing(value) else repr(value)


def fingerprint(cls: type, kw_only: bool, frozen: bool = True) -> tuple[Any, ...] | None:
    """All that `dataclass(frozen=True, kw_only=...)` makes the class's methods from: its
    own fields (names, types, flags, defaults), its bases and their fields' names, the
    methods it defines itself and whether it has a docstring. None when a base that is a
    dataclass was not made by `frozen` from written-out methods (its fields are then
    unverified)."""
    inherited: dict[str, None] = {}
    for base in reversed(cls.__mro__[1:]):
        if base in _written:
            inherited.update(dict.fromkeys(base.__dict__["__frozen_fields__"]))
            continue
        fields = getattr(base, "__dataclass_fields__", None)
        if fields is not None:
            if not USE_DATACLASS:
                return None
            inherited.update(dict.fromkeys(fields))
    own = []
    for name, annotation, value in _own_fields(cls):
        if _is_field(value):
            flags = (value.init, value.repr, value.compare, value.hash, _shown(value.kw_only))
            factory = not _missing(value.default_factory)
            own.append((name, annotation, *flags, _shown(value.default), factory))
        else:
            own.append((name, annotation, _shown(value)))
    annotated = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 (as dataclasses)
    # what `dataclass` treats apart: a Field without an annotation (an error), ClassVar
    # and InitVar pseudo-fields (the written-out methods know none of them)
    stray = [k for k, v in cls.__dict__.items() if _is_field(v) and k not in annotated]
    stray += [k for k, a in annotated.items() if "ClassVar" in str(a) or "InitVar" in str(a)]
    return (
        kw_only,
        frozen,
        tuple(b.__module__ + "." + b.__qualname__ for b in cls.__bases__),
        tuple(inherited),
        tuple(own),
        tuple(name for name in _OWN if name in cls.__dict__),
        bool(cls.__dict__.get("__doc__")),
        tuple(stray),
    )


# the classes given written-out methods in this process (their subclasses may be too)
_written: set[type] = set()


def _recursive_repr(user_function: Callable[[Any], str]) -> Callable[[Any], str]:
    """As dataclasses' `_recursive_repr`: `...` for an object already being shown."""
    running: set[tuple[int, int]] = set()

    @functools.wraps(user_function)
    def wrapper(self: Any) -> str:
        key = id(self), get_ident()
        if key in running:
            return "..."
        running.add(key)
        try:
            result = user_function(self)
        finally:
            running.discard(key)
        return result

    return wrapper


def _frozen_attrs(cls: type, names: frozenset[str]) -> tuple[Callable[..., None], ...]:
    """dataclasses' frozen `__setattr__` and `__delattr__` for `cls`."""

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise _dataclasses().FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise _dataclasses().FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    return __setattr__, __delattr__


def _fields(cls: type, kw_only: bool) -> dict[str, Field]:
    """The class's fields (its bases', then its own) as `dataclass` collects them (3.11
    `_process_class`), kept in `__frozen_fields__`; a `field(...)` in the class body is
    replaced by its default (or removed)."""
    fields: dict[str, Field] = {}
    for base in cls.__mro__[-1:0:-1]:
        fields.update(base.__dict__.get("__frozen_fields__", {}))
    for name, annotation, value in _own_fields(cls):
        if isinstance(value, Field):
            f = value
        elif _is_field(value):  # `dataclasses.field(...)`: the same flags
            flags = (value.init, value.repr, value.hash, value.compare, value.kw_only)
            f = Field(value.default, value.default_factory, *flags)
            value = f
        else:
            f = field(default=value)
        f.name = name
        f.type = annotation
        if _missing(f.kw_only):
            f.kw_only = kw_only
        fields[name] = f
        if isinstance(value, Field):
            if _missing(f.default):
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
    cls.__frozen_fields__ = fields  # type: ignore[attr-defined]
    return fields


class _OnFirstUse:
    """A class attribute computed when first read (then stored in its place): the
    `dataclasses` views of a class, which import `dataclasses`."""

    def __init__(self, cls: type, name: str, make: Callable[[], Any]) -> None:
        self.cls, self.name, self.make = cls, name, make

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        value = self.make()
        setattr(self.cls, self.name, value)
        return value


def _dataclass_fields(cls: type) -> dict[str, Any]:
    """`__dataclass_fields__` as `dataclass` sets it: `dataclasses.Field` objects, a base's
    shared with the base."""
    dc = _dataclasses()
    fields: dict[str, Any] = {}
    for base in cls.__mro__[-1:0:-1]:
        fields.update(getattr(base, "__dataclass_fields__", {}))
    own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 (as dataclasses)
    for name, spec in cls.__dict__["__frozen_fields__"].items():
        if name not in own:
            continue
        given = {"default": spec.default, "default_factory": spec.default_factory}
        given = {k: v for k, v in given.items() if not _missing(v)}
        f = dc.field(
            init=spec.init,
            repr=spec.repr,
            hash=spec.hash,
            compare=spec.compare,
            kw_only=spec.kw_only,
            **given,
        )
        f.name = name
        f.type = spec.type
        f._field_type = getattr(dc, "_FIELD", None)
        fields[name] = f
    return fields


_PARAMS: dict[tuple[bool, bool], Any] = {}


def _params(frozen: bool, kw_only: bool) -> Any:
    """`__dataclass_params__` as `dataclass(frozen=..., kw_only=...)` sets it."""
    if (frozen, kw_only) not in _PARAMS:

        @_dataclasses().dataclass(frozen=frozen, kw_only=kw_only)
        class Reference:
            pass

        _PARAMS[frozen, kw_only] = Reference.__dataclass_params__  # type: ignore[attr-defined]
    return _PARAMS[frozen, kw_only]


def _decorator(frozen: bool, kw_only: bool) -> Callable[[C], C]:
    def wrap(cls: C) -> C:
        key = (cls.__module__, cls.__qualname__)
        if USE_DATACLASS:
            seen[key] = (frozen, kw_only, fingerprint(cls, kw_only, frozen))
            return _dataclasses().dataclass(frozen=frozen, kw_only=kw_only)(cls)
        from . import frozen_methods

        written = frozen_methods.CLASSES.get(key)
        print_ = fingerprint(cls, kw_only, frozen)
        if written is None or print_ is None or written[0] != print_:
            fallbacks.append(key)
            return _dataclasses().dataclass(frozen=frozen, kw_only=kw_only)(cls)
        _, make, doc = written
        fields = _fields(cls, kw_only)
        defaults = {f.name: f.default for f in fields.values()}
        factories = {f.name: f.default_factory for f in fields.values()}
        methods = make(defaults, factories, _recursive_repr)
        if frozen:
            methods = (*methods, *_frozen_attrs(cls, frozenset(fields)))
        for name, fn in zip(_METHODS, methods, strict=False):
            fn.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, fn)
        if not frozen:
            cls.__hash__ = None  # type: ignore[assignment]  # eq without frozen: unhashable
        cls.__match_args__ = tuple(  # type: ignore[attr-defined]
            f.name for f in fields.values() if f.init and not f.kw_only
        )
        if doc is not None:
            cls.__doc__ = doc
        fields_view = _OnFirstUse(cls, "__dataclass_fields__", lambda: _dataclass_fields(cls))
        params_view = _OnFirstUse(cls, "__dataclass_params__", lambda: _params(frozen, kw_only))
        cls.__dataclass_fields__ = fields_view  # type: ignore[attr-defined]
        cls.__dataclass_params__ = params_view  # type: ignore[attr-defined]
        _written.add(cls)
        return cls

    return wrap


def frozen(cls: C | None = None, *, kw_only: bool = False) -> Any:
    """`@dataclass(frozen=True, kw_only=kw_only)`, with the methods written out."""
    wrap = _decorator(True, kw_only)
    return wrap if cls is None else wrap(cls)


def mutable(cls: C) -> C:
    """`@dataclass`, with the methods written out."""
    return _decorator(False, False)(cls)


def field_names(cls: type) -> tuple[str, ...]:
    """The names of `dataclasses.fields(cls)`, in order (without `dataclasses` for a
    class decorated here)."""
    if cls in _written:
        return tuple(cls.__dict__["__frozen_fields__"])
    return tuple(f.name for f in _dataclasses().fields(cls))


def replace(obj: Any, /, **changes: Any) -> Any:
    """`dataclasses.replace(obj, **changes)`: a copy with some fields changed."""
    cls = type(obj)
    if cls not in _written:
        return _dataclasses().replace(obj, **changes)
    for f in cls.__dict__["__frozen_fields__"].values():
        if not f.init:
            if f.name in changes:
                raise ValueError(
                    f"field {f.name} is declared with init=False, it cannot be specified "
                    "with replace()"
                )
        elif f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return cls(**changes)


# ------------------------------------------------------------------ writing the methods

MODULES = (
    "critlang.source",
    "critlang.diagnostics",
    "critlang.nodes",
    "critlang.typesys",
    "critlang.units",
    "critlang.ucum",
    "critlang.scales",
    "critlang.intervals",
    "critlang.checker.result",
    "critlang.data.values",
    "critlang.data.records",
    "critlang.data.reader_time",
    "critlang.needs",
    "critlang.explain_words",
    "critlang.evaluate",
    "critlang.backends.python",
    "critlang.frontend",
)
METHODS_FILE = "frozen_methods.py"


def _method_source(
    cls: type, frozen: bool, kw_only: bool, print_: tuple[Any, ...]
) -> tuple[str, str | None]:
    """The factory of one class's methods, as dataclasses writes them (3.11: `_init_fn`,
    `_repr_fn`, `_cmp_fn`, `_hash_fn`), and the docstring it gives a class that has none."""
    fields = list(cls.__dataclass_fields__.values())  # type: ignore[attr-defined]
    assert all(f._field_type is _dataclasses()._FIELD for f in fields)  # type: ignore[attr-defined]
    assert all(f.kw_only == kw_only for f in fields)
    own_methods = set(print_[5])
    assert own_methods <= {"__post_init__"} and not print_[7], (cls, print_)
    params = []
    star = False
    body = []
    for f in fields:
        factory = not _missing(f.default_factory)
        if f.init:
            if kw_only and not star:
                params.append("*")
                star = True
            if factory:
                params.append(f"{f.name}=_HAS_DEFAULT_FACTORY")
                value = f"f[{f.name!r}]() if {f.name} is _HAS_DEFAULT_FACTORY else {f.name}"
            else:
                params.append(f.name if _missing(f.default) else f"{f.name}=d[{f.name!r}]")
                value = f.name
        elif factory:
            value = f"f[{f.name!r}]()"
        elif not _missing(f.default):
            value = f"d[{f.name!r}]"
        else:
            continue  # init=False without a default: not set
        if frozen:
            body.append(f"        _set(self, {f.name!r}, {value})")
        else:
            body.append(f"        self.{f.name} = {value}")
    if "__post_init__" in own_methods:
        body.append("        self.__post_init__()")
    shown = ", ".join(f"{f.name}={{self.{f.name}!r}}" for f in fields if f.repr)
    compared = [f.name for f in fields if f.compare]
    hashed = [f.name for f in fields if (f.compare if f.hash is None else f.hash)]

    def tup(obj: str, names: list[str]) -> str:
        return "(" + "".join(f"{obj}.{n}," for n in names) + ")"

    annotations = {f.name: f.type for f in fields if f.init}
    lines = [
        f"def {_factory_name(cls)}(d, f, recursive_repr):",
        f"    def __init__(self, {', '.join(params)}):",
        *(body or ["        pass"]),
        f"    __init__.__annotations__ = {{**{annotations!r}, 'return': None}}",
        "",
        "    @recursive_repr",
        "    def __repr__(self):",
        f'        return self.__class__.__qualname__ + f"({shown})"',
        "",
        "    def __eq__(self, other):",
        "        if other.__class__ is self.__class__:",
        f"            return {tup('self', compared)} == {tup('other', compared)}",
        "        return NotImplemented",
        "",
    ]
    if frozen:
        lines += [
            "    def __hash__(self):",
            f"        return hash({tup('self', hashed)})",
            "",
            "    return __init__, __repr__, __eq__, __hash__",
        ]
    else:
        lines += ["    return __init__, __repr__, __eq__"]
    had_doc = print_[6]
    return "\n".join(lines), None if had_doc else cls.__doc__


def _factory_name(cls: type) -> str:
    return "_" + f"{cls.__module__}.{cls.__qualname__}".replace(".", "_")


def methods_source() -> str:
    """frozen_methods.py for the classes as they are declared now."""
    import os
    import subprocess
    from pathlib import Path

    # a fresh process, where every class is processed by `dataclass` itself
    code = (
        "import importlib, sys\n"
        "import critlang.frozen_classes as fc\n"
        "fc.USE_DATACLASS = True\n"
        f"for m in {MODULES!r}: importlib.import_module(m)\n"
        "sys.stdout.write(fc._write_from_seen())\n"
    )
    src = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout


def _write_from_seen() -> str:
    parts = [
        '"""Generated by `critlang.frozen_classes.write_methods()` from the classes '
        "decorated with\n`frozen`: do not edit. See frozen_classes.py.\n"
        '"""',
        "",
        "# ruff: noqa",
        "",
        "from critlang.frozen_classes import _HAS_DEFAULT_FACTORY",
        "_set = object.__setattr__",
        "",
    ]
    table = []
    for (module, qualname), (frozen, kw_only, print_) in seen.items():
        cls: Any = sys.modules[module]
        for part in qualname.split("."):
            cls = getattr(cls, part)
        source, doc = _method_source(cls, frozen, kw_only, print_)
        parts += [source, "", ""]
        name = _factory_name(cls)
        table.append(f"    ({module!r}, {qualname!r}): ({print_!r}, {name}, {doc!r}),")
    parts += ["CLASSES = {", *table, "}", ""]
    return "\n".join(parts)


def write_methods() -> None:
    """Regenerate frozen_methods.py after changing a `frozen` class:
    `python -c "from critlang.frozen_classes import write_methods; write_methods()"`."""
    from pathlib import Path

    Path(__file__).with_name(METHODS_FILE).write_text(methods_source(), encoding="utf-8")
