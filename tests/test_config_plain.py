"""The config's plain copy (kiosk/config/plain.py): what `kiosk run` runs on without importing pydantic.

A copy must answer every question the model answers (fields, paths, windows, lookups), validate back
into the same model, survive the cache's pickling, and be a deep copy. The models' behaviour must live in
the mixins the copies share, which the last test holds every config class to.
"""

from __future__ import annotations

import datetime as dt
import inspect
import pickle
from pathlib import Path

import pytest
from pydantic import BaseModel

from kiosk.config import ConfigError, as_model, load_config
from kiosk.config import base as config_base
from kiosk.config.plain import _RULES, Plain, data_of, plain_of, rebuild
from kiosk.sync.adopt import overlay

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["kiosk.example.toml", "demo.toml"])
def model(request):  # noqa: ANN001
    return load_config(ROOT / "config" / request.param)


def test_a_plain_copy_answers_as_the_model_does(model):
    copy = plain_of(model)
    assert isinstance(copy, Plain) and copy.model_name == "KioskConfig"
    assert copy == model and model == copy  # either way round
    assert data_of(copy) == data_of(model)
    for prop in ("data_dir", "ledger_path", "private_key_path", "public_key_path", "pepper_path"):
        assert getattr(copy, prop) == getattr(model, prop), prop
    assert copy.resolve(Path("x/y")) == model.resolve(Path("x/y"))
    for p in model.projects:
        assert copy.project(p.id) == p
    assert copy.project("no-such-project") is None
    for a in model.volunteer.activities:
        assert copy.volunteer.activity(a.id) == a
    assert copy.volunteer.activity("no-such-activity") is None
    # Windows and slides, over a week at every quarter hour, and days around each slide's date.
    start = dt.datetime(2025, 7, 7)
    times = [start + dt.timedelta(minutes=15 * i) for i in range(7 * 96)]
    for item_m, item_c in zip(model.player.playlist, copy.player.playlist, strict=True):
        for w_m, w_c in zip(item_m.windows, item_c.windows, strict=True):
            assert [w_c.contains(t) for t in times] == [w_m.contains(t) for t in times]
    for s_m, s_c in zip(model.player.slides, copy.player.slides, strict=True):
        days = [dt.datetime.combine(s_m.date, dt.time(12)) + dt.timedelta(days=d) for d in range(-40, 3)]
        assert [s_c.active_on(t) for t in days] == [s_m.active_on(t) for t in days]
        assert any(s_c.active_on(t) for t in days) and not all(s_c.active_on(t) for t in days)


def test_the_example_has_what_the_checks_above_compare():
    example = load_config(ROOT / "config" / "kiosk.example.toml")
    assert example.player.slides and any(i.windows for i in example.player.playlist)
    assert example.volunteer.activities and example.projects


def test_a_copy_validates_back_into_the_same_model_and_survives_pickling(model):
    copy = pickle.loads(pickle.dumps(plain_of(model)))
    again = as_model(copy)
    assert type(again) is type(model) and again == model and again.base_dir == model.base_dir
    assert as_model(model) is model


def test_a_copy_is_deep_and_may_be_changed_like_the_model(model):
    copy = plain_of(model)
    title = model.projects[0].title
    copy.projects[0].title = "変えた"
    copy.kiosk.language = "en" if model.kiosk.language == "ja" else "ja"
    assert model.projects[0].title == title and copy.kiosk.language != model.kiosk.language  # model untouched
    assert copy != plain_of(model)
    # A changed copy validates like a changed file: every problem reported.
    copy.donation.default_yen = 7
    copy.kiosk.id = "Not An Id"
    with pytest.raises(ConfigError) as err:
        as_model(copy)
    assert any(p.startswith("kiosk.id") for p in err.value.problems)
    assert any(p.startswith("donation") for p in err.value.problems)


def test_a_pushed_config_is_adopted_onto_a_copy_as_onto_the_model(model):
    pushed = {"projects": [{"id": "p-new", "title": "新しい事業", "group": "g", "area": "town", "goal_yen": 5000}],
              "presets_yen": [100, 300], "default_yen": 300,
              "playlist": [{"project": "p-new", "sha256": "ab" * 32, "repeat": 2,
                            "windows": [{"days": ["sat"], "start": "10:00", "end": "12:00"}]}]}
    on_model, on_copy = overlay(model, pushed), overlay(plain_of(model), pushed)
    assert on_copy == on_model and on_copy.base_dir == model.base_dir
    # The running kiosk swaps the adopted parts into its copy: a tree of copies and models, still comparable.
    running = plain_of(model)
    running.projects, running.donation = on_model.projects, on_model.donation
    assert as_model(running).projects == on_model.projects and running.project("p-new") is not None


def test_the_cache_can_name_nothing_but_config_copies():
    with pytest.raises(ValueError, match="not a config class name"):
        rebuild("os.system", {})
    with pytest.raises(ValueError, match="fields must be a mapping of names"):
        rebuild("KioskConfig", {"__class__": 1})


def _config_models() -> list[type[BaseModel]]:
    import importlib
    import pkgutil

    import kiosk.config

    found: set[type[BaseModel]] = set()
    for mod in pkgutil.iter_modules(kiosk.config.__path__):
        m = importlib.import_module(f"kiosk.config.{mod.name}")
        found |= {c for c in vars(m).values() if isinstance(c, type) and issubclass(c, config_base.Section)
                  and c is not config_base.Section}
    return sorted(found, key=lambda c: c.__name__)


def test_every_models_behaviour_is_in_a_mixin_its_plain_copy_shares():
    """A method or property written on a model class itself would be missing from its plain copy, and
    `kiosk run` would fail on it only where it is used. Validators are the model's alone (a copy is
    validated already)."""
    models = _config_models()
    assert len(models) > 20
    for cls in models:
        own = {name for name, v in vars(cls).items()
               if not name.startswith("_") and (inspect.isfunction(v) or isinstance(v, property))}
        assert own == set(), f"{cls.__name__} defines {sorted(own)}: move it to a mixin in kiosk/config/plain.py"
        mixins = [b for b in cls.__mro__ if b.__module__ == "kiosk.config.plain"]
        assert tuple(mixins) == _RULES.get(cls.__name__, ()), cls.__name__


def test_a_model_holding_a_plain_part_is_validated_into_a_whole_model(model):
    """A plain part swapped into a model (a cached pushed config adopted onto one) would stop the model's own
    copying (`model_copy` of a plain section fails): as_model makes it a whole model again."""
    from kiosk.config.plain import holds_plain

    mixed = model.model_copy(deep=True)
    mixed.donation = plain_of(model.donation)
    assert holds_plain(mixed) and not holds_plain(model)
    whole = as_model(mixed)
    assert whole is not mixed and not holds_plain(whole) and whole == model
    assert whole.donation.model_copy(update={"default_yen": whole.donation.presets_yen[0]}).default_yen \
        == whole.donation.presets_yen[0]
