"""records.record: what the package relies on from dataclasses, at a fraction of the start-up."""

from __future__ import annotations

import pickle

import pytest

from icalproxy.records import FrozenInstanceError, field, field_names, record, replace


@record(frozen=True)
class Target:
    name: str
    port: int = 443
    tags: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    password: str | None = field(default=None, repr=False)


@record(frozen=True)
class Point:
    x: int
    y: int


@record
class Counter:
    count: int
    seen: list[str] = field(default_factory=list)


def test_init_defaults_factories_and_keywords() -> None:
    first, second = Target("a"), Target(name="a", port=443)
    assert (first.port, first.tags, first.headers, first.password) == (443, (), {}, None)
    assert first == second and first.headers is not second.headers  # a fresh dict each
    assert Target("a", 80, ("x",), {"k": "v"}, "pw").tags == ("x",)
    with pytest.raises(TypeError):
        Target()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Target("a", nope=1)  # type: ignore[call-arg]


def test_frozen_eq_hash_and_repr_hides_secrets() -> None:
    target = Target("a", password="hunter2")
    with pytest.raises(FrozenInstanceError):
        target.port = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del target.name  # type: ignore[misc]
    assert Target("a", tags=("x",)) == Target("a", tags=("x",)) != Target("b", tags=("x",))
    assert hash(Point(1, 2)) == hash(Point(1, 2)) and {Point(1, 2): 1}[Point(1, 2)] == 1
    with pytest.raises(TypeError):
        hash(Target("a"))  # a dict field: unhashable, as with dataclasses
    assert Target("a") != ("a", 443, (), {}, None)  # never equal to another type
    assert repr(target) == "Target(name='a', port=443, tags=(), headers={})"
    assert "hunter2" not in repr(target)


def test_mutable_records_are_unhashable_and_slotted() -> None:
    counter = Counter(1)
    counter.count += 1
    counter.seen.append("x")
    assert counter == Counter(2, ["x"])
    with pytest.raises(TypeError):
        hash(counter)
    with pytest.raises(AttributeError):
        counter.other = 1  # type: ignore[attr-defined]


def test_replace_fields_pickle_and_match() -> None:
    target = Target("a", headers={"k": "v"})
    changed = replace(target, port=8443)
    assert (changed.port, changed.headers, target.port) == (8443, {"k": "v"}, 443)
    with pytest.raises(TypeError):
        replace(target, nope=1)
    assert field_names(Target) == ("name", "port", "tags", "headers", "password")
    assert pickle.loads(pickle.dumps(target)) == target
    match changed:
        case Target(name="a", port=port):
            assert port == 8443
        case _:
            pytest.fail("keyword pattern did not match")
