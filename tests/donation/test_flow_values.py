"""The flow's value classes compare, hash and print exactly as ``@dataclass(frozen=True)`` would make them.

kiosk/donation/flow.py writes ``__eq__``, ``__hash__`` and ``__repr__`` once (``_Value``) instead of letting
``@dataclass`` compile them for each of its ~55 classes at every start (cold start, #16). Each class is held
here to a twin that the standard library generates from the same fields.
"""

from __future__ import annotations

import dataclasses

import pytest

from kiosk.donation import flow

CLASSES = sorted((c for c in vars(flow).values()
                  if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == flow.__name__),
                 key=lambda c: c.__name__)


def _twin(cls: type) -> type:
    """What ``@dataclass(frozen=True)`` makes of the same fields, in the same order (every test passes all
    fields by name, so keyword-only or defaults make no difference to what is compared)."""
    twin = dataclasses.make_dataclass(cls.__name__, [(f.name, object) for f in dataclasses.fields(cls)],
                                      frozen=True)
    twin.__qualname__ = cls.__qualname__
    return twin


def test_every_value_class_is_covered():
    assert len(CLASSES) >= 50  # the states, screens, events, commands and infos of the flow
    assert all(issubclass(c, flow._Value) for c in CLASSES)
    assert all("__eq__" not in vars(c) and "__repr__" not in vars(c) for c in CLASSES)  # none generated


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_eq_hash_repr_match_the_generated_ones(cls):
    twin = _twin(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    a = {n: f"v{i}" for i, n in enumerate(names)}
    b = {n: ("other" if i == len(names) - 1 else v) for i, (n, v) in enumerate(a.items())}
    x, x2, y = cls(**a), cls(**dict(a)), cls(**b)
    tx, ty = twin(**a), twin(**b)

    assert repr(x) == repr(tx)
    assert repr(cls(**{n: [1, "x"] for n in names})) == repr(twin(**{n: [1, "x"] for n in names}))
    assert (x == x2) is (tx == twin(**a)) is True
    assert (x == y) is (tx == ty)
    assert (x != y) is (tx != ty)
    assert hash(x) == hash(x2) == hash(tx)  # the field tuple's hash, as generated
    assert x.__eq__(tx) is NotImplemented and (x == tx) is False  # another class: never equal
    assert x.__eq__(object()) is NotImplemented
    with pytest.raises(dataclasses.FrozenInstanceError):
        x.now_ms = 1  # type: ignore[misc]
    assert dataclasses.replace(x, **b) == y


def test_unhashable_fields_fail_as_generated():
    s = flow.FlowSettings(projects=["a"])  # type: ignore[arg-type]  # a list where a tuple belongs
    twin = _twin(flow.FlowSettings)(**{f.name: getattr(s, f.name) for f in dataclasses.fields(s)})
    with pytest.raises(TypeError):
        hash(twin)
    with pytest.raises(TypeError):
        hash(s)
