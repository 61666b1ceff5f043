"""Record classes, as ``@dataclass(slots=True)`` makes them, for less start-up time.

Every command pays for the classes its modules define. A dataclass costs about 0.7 ms to
create (six generated methods, each compiled with ``exec``) and the module pulls in
``inspect``; the config model alone has 26 of them. ``record`` compiles only ``__init__``
and shares generic ``__eq__``, ``__hash__``, ``__repr__`` and the frozen guards, which
read the fields through one ``operator.attrgetter``. What it supports is what this package
uses: fields with defaults or ``field(default_factory=…, repr=…)``, ``frozen``, ``eq``,
always ``__slots__``, no inheritance between records. Type checkers read it as a dataclass
(PEP 681).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

T = TypeVar("T")
_MISSING: Any = object()


class _Field:
    __slots__ = ("default", "factory", "repr")

    def __init__(self, default: Any, factory: Callable[[], Any] | None, repr: bool) -> None:
        self.default, self.factory, self.repr = default, factory, repr


def field(
    *,
    default: Any = _MISSING,
    default_factory: Callable[[], Any] | None = None,
    repr: bool = True,
) -> Any:
    return _Field(default, default_factory, repr)


class FrozenInstanceError(AttributeError):
    pass


@overload
def record(cls: type[T], /) -> type[T]: ...


@overload
def record(*, frozen: bool = False, eq: bool = True) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(field_specifiers=(field,))
def record(
    cls: type[T] | None = None, /, *, frozen: bool = False, eq: bool = True
) -> type[T] | Callable[[type[T]], type[T]]:
    def wrap(cls: type[T]) -> type[T]:
        return _build(cls, frozen, eq)

    return wrap if cls is None else wrap(cls)


def field_names(cls: type) -> tuple[str, ...]:
    """A record class's fields, in order (``dataclasses.fields``)."""
    names: tuple[str, ...] = cls.__record_fields__  # type: ignore[attr-defined]
    return names


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of a record with some fields changed (``dataclasses.replace``)."""
    values = {name: getattr(obj, name) for name in field_names(type(obj))}
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field(s) {', '.join(sorted(unknown))}")
    values.update(changes)
    return type(obj)(**values)


def _build(cls: type[T], frozen: bool, eq: bool) -> type[T]:
    namespace = dict(cls.__dict__)
    names = list(namespace.get("__annotations__", {}))
    if any(getattr(base, "__record_fields__", None) for base in cls.__mro__[1:]):
        raise TypeError(f"{cls.__name__}: records do not inherit fields")
    defaults: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {}
    hidden: set[str] = set()
    for name in names:
        value = namespace.pop(name, _MISSING)
        if isinstance(value, _Field):
            if not value.repr:
                hidden.add(name)
            if value.factory is not None:
                factories[name] = value.factory
                continue
            value = value.default
        if value is not _MISSING:
            defaults[name] = value
        elif defaults or factories:
            raise TypeError(f"{cls.__name__}: non-default field {name!r} follows a default")
    for key in ("__dict__", "__weakref__"):
        namespace.pop(key, None)
    namespace["__slots__"] = tuple(names)
    namespace["__record_fields__"] = tuple(names)
    namespace["__match_args__"] = tuple(names)
    namespace["__init__"] = _init(cls, names, defaults, factories, frozen)
    shown = [name for name in names if name not in hidden]
    namespace["__repr__"] = _repr(operator.attrgetter(*shown) if shown else None, shown)
    if eq:
        values = operator.attrgetter(*names) if names else (lambda _: ())
        namespace["__eq__"] = _eq(values)
        namespace["__hash__"] = _hash(values) if frozen else None
    if frozen:
        namespace["__setattr__"] = _frozen_setattr
        namespace["__delattr__"] = _frozen_delattr
        namespace["__getstate__"] = _getstate
        namespace["__setstate__"] = _setstate
    built: type[T] = type(cls.__name__, cls.__bases__, namespace)
    built.__qualname__ = cls.__qualname__
    return built


def _init(
    cls: type,
    names: list[str],
    defaults: dict[str, Any],
    factories: dict[str, Callable[[], Any]],
    frozen: bool,
) -> Callable[..., None]:
    """``__init__`` compiled once, as dataclasses writes it: positional or keyword arguments."""
    scope: dict[str, Any] = {"_MISSING": _MISSING, "_setattr": object.__setattr__}
    params, body = [], []
    for name in names:
        if name in factories:
            scope[f"_factory_{name}"] = factories[name]
            params.append(f"{name}=_MISSING")
            value = f"_factory_{name}() if {name} is _MISSING else {name}"
        elif name in defaults:
            scope[f"_default_{name}"] = defaults[name]
            params.append(f"{name}=_default_{name}")
            value = name
        else:
            params.append(name)
            value = name
        body.append(f"_setattr(self, {name!r}, {value})" if frozen else f"self.{name} = {value}")
    source = f"def __init__(self, {', '.join(params)}):\n    " + ("\n    ".join(body) or "pass")
    exec(source, scope)  # noqa: S102  (our own field names, as dataclasses does)
    init: Callable[..., None] = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _repr(values: Callable[[Any], Any] | None, names: list[str]) -> Callable[[Any], str]:
    def __repr__(self: Any) -> str:
        if values is None:
            return f"{type(self).__qualname__}()"
        found = values(self) if len(names) > 1 else (values(self),)
        inner = ", ".join(f"{name}={value!r}" for name, value in zip(names, found, strict=True))
        return f"{type(self).__qualname__}({inner})"

    return __repr__


def _eq(values: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return values(self) == values(other)

    return __eq__


def _hash(values: Callable[[Any], Any]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:
        return hash(values(self))

    return __hash__


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _getstate(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, name) for name in self.__record_fields__)


def _setstate(self: Any, state: tuple[Any, ...]) -> None:
    for name, value in zip(self.__record_fields__, state, strict=True):
        object.__setattr__(self, name, value)
