"""The flow's value classes compare, hash, print and refuse changes as ``@dataclass(frozen=True)`` would.

kiosk/donation/flow.py makes its ~55 states, screens, events and commands msgspec Structs instead of frozen
dataclasses, which compile their methods from source for every class at every start (cold start, #16).
Each class is held here to a twin that the standard library generates from the same fields: the flow's
code and the UI compare states, use them as dict keys and print them in logs exactly as before.
"""

from __future__ import annotations

import dataclasses
import pickle

import msgspec
import pytest

from kiosk.donation import flow

CLASSES = sorted((c for c in vars(flow).values()
                  if isinstance(c, type) and issubclass(c, msgspec.Struct) and c.__module__ == flow.__name__),
                 key=lambda c: c.__name__)


def _names(cls: type) -> list[str]:
    return [f.name for f in msgspec.structs.fields(cls)]


def _twin(cls: type) -> type:
    """What ``@dataclass(frozen=True)`` makes of the same fields, in the same order (every test passes all
    fields by name, so keyword-only or defaults make no difference to what is compared)."""
    twin = dataclasses.make_dataclass(cls.__name__, [(n, object) for n in _names(cls)], frozen=True)
    twin.__qualname__ = cls.__qualname__
    return twin


def test_every_value_class_is_covered():
    assert len(CLASSES) >= 50  # the states, screens, events, commands and infos of the flow
    assert all(issubclass(c, flow._Value) for c in CLASSES)
    assert all(c.__struct_config__.frozen for c in CLASSES)
    assert not [c for c in vars(flow).values() if isinstance(c, type) and dataclasses.is_dataclass(c)
                and c.__module__ == flow.__name__]  # no dataclass left to compile at start-up


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_eq_hash_repr_frozen_as_a_frozen_dataclass(cls):
    twin = _twin(cls)
    names = _names(cls)
    a = {n: f"v{i}" for i, n in enumerate(names)}
    b = {n: ("other" if i == len(names) - 1 else v) for i, (n, v) in enumerate(a.items())}
    x, x2, y = cls(**a), cls(**dict(a)), cls(**b)
    tx, ty = twin(**a), twin(**b)

    assert repr(x) == repr(tx)
    assert repr(cls(**{n: [1, "x"] for n in names})) == repr(twin(**{n: [1, "x"] for n in names}))
    assert (x == x2) is (tx == twin(**a)) is True
    assert (x == y) is (tx == ty)
    assert (x != y) is (tx != ty)
    assert hash(x) == hash(x2) and len({x, x2, y}) == len({tx, twin(**a), ty})
    assert x.__eq__(tx) is NotImplemented and (x == tx) is False  # another class: never equal
    assert x.__eq__(object()) is NotImplemented
    for name in [*names, "not_a_field"]:
        with pytest.raises(AttributeError):  # dataclasses' FrozenInstanceError is an AttributeError too
            setattr(x, name, 1)
        if name in names:
            with pytest.raises(AttributeError):
                delattr(x, name)
    assert flow.replace(x, **b) == y and x == x2  # a changed copy; the original stays
    assert pickle.loads(pickle.dumps(x)) == x


def test_a_subclass_is_not_equal_to_its_base():
    # Events share the base Event's field: an event of one kind never equals one of another.
    assert flow.Tick(now_ms=1) != flow.Cancel(now_ms=1)
    assert flow.Tick(now_ms=1) != flow.Event(now_ms=1)
    assert {flow.Tick(now_ms=1), flow.Cancel(now_ms=1)} == {flow.Cancel(now_ms=1), flow.Tick(now_ms=1)}


def test_events_are_keyword_only():
    with pytest.raises(TypeError):
        flow.Tick(1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        flow.ProjectShown(1, "kodomo")  # type: ignore[misc]
    assert flow.ProjectShown(now_ms=1, project="kodomo").project == "kodomo"


def test_unhashable_fields_fail_as_generated():
    s = flow.FlowSettings(projects=["a"])  # type: ignore[arg-type]  # a list where a tuple belongs
    twin = _twin(flow.FlowSettings)(**{n: getattr(s, n) for n in _names(flow.FlowSettings)})
    with pytest.raises(TypeError):
        hash(twin)
    with pytest.raises(TypeError):
        hash(s)
