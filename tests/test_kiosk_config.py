"""Config: every error at once, with dotted paths and 'did you mean'; the example documents every key."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.config import ConfigError, KioskConfig, load_config, validate_config
from kiosk.config.base import Section, field_docs

ROOT = Path(__file__).resolve().parents[1]


def test_example_and_demo_configs_are_valid():
    for name in ("kiosk.example.toml", "demo.toml"):
        cfg = load_config(ROOT / "config" / name)
        assert cfg.projects, name


def _keys(model, prefix=""):  # noqa: ANN001
    from pydantic import BaseModel

    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        path = prefix + name
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        sub = next((a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if sub is not None:
            yield from _keys(sub, path + ".")
        else:
            yield path


def test_every_key_has_a_docstring_and_appears_in_the_example():
    text = (ROOT / "config" / "kiosk.example.toml").read_text("utf-8")
    data = tomllib.loads(text)

    def present(path: str) -> bool:
        node = data
        for part in path.split("."):
            if isinstance(node, list):
                node = node[0]
            if part not in node:
                return False
            node = node[part]
        return True

    missing = [k for k in _keys(KioskConfig) if not present(k)]
    assert not missing, f"config/kiosk.example.toml lacks {missing}"

    def undocumented(model, prefix=""):  # noqa: ANN001
        from pydantic import BaseModel

        docs = field_docs(model)
        for name, field in model.model_fields.items():
            if field.exclude:
                continue
            if len(docs.get(name, "").strip()) < 10:
                yield prefix + name
            for a in (field.annotation, *getattr(field.annotation, "__args__", ())):
                if isinstance(a, type) and issubclass(a, BaseModel):
                    yield from undocumented(a, prefix + name + ".")

    assert not list(undocumented(KioskConfig))


class _Base(Section):
    a: int = 1
    """The first field,
    on two lines."""
    b: int = 2


class _Child(_Base):
    c: str = "x"
    """Declared here."""

    def helper(self) -> None:
        """Not a field's docstring."""


def test_field_docs_read_the_docstrings_under_each_field_inherited_ones_too():
    assert field_docs(_Child) == {"a": "The first field,\non two lines.", "c": "Declared here."}
    assert field_docs(_Base) == {"a": "The first field,\non two lines."}


def test_the_schema_does_not_parse_its_source_when_the_config_is_loaded():
    """The docstrings are read by field_docs, not at class creation (every start of `kiosk run` paid for
    pydantic's use_attribute_docstrings: cold start, #16)."""
    assert not Section.model_config.get("use_attribute_docstrings")
    assert KioskConfig.model_fields["kiosk"].description is None


def test_all_errors_reported_at_once_with_paths_and_suggestions():
    bad = {
        "kiosk": {"id": "Bad Id", "timezon": "Asia/Tokyo", "timezone": "Mars/Olympus"},
        "ledgr": {},
        "donation": {"presets_yen": [100, -5], "default_yen": 300},
        "projects": [{"id": "a", "title": "t", "area": "sports", "goal_yen": "lots"}, {"title": "x"}],
    }
    with pytest.raises(ConfigError) as err:
        validate_config(bad, "bad.toml")
    msg = str(err.value)
    for expected in [
        "kiosk.id:", "kiosk.timezon: unknown key (did you mean 'timezone'?)", "Mars/Olympus",
        "ledgr: unknown key (did you mean 'ledger'?)", "donation.presets_yen:", "projects[0].area:",
        "projects[0].goal_yen:", "projects[1].id: required key is missing", "projects[1].area: required",
    ]:
        assert expected in msg, (expected, msg)
    assert msg.startswith("config bad.toml: ")
    assert len(err.value.problems) >= 9


def test_unknown_key_without_close_match_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"zzz: unknown key \(valid keys: .*private_key"):
        validate_config({"kiosk": {"id": "k-1"}, "keys": {"zzz": 1}})


def test_duplicate_projects_and_default_outside_presets():
    with pytest.raises(ConfigError, match="duplicate project ids"):
        validate_config({"kiosk": {"id": "k-1"}, "projects": [
            {"id": "a", "title": "A", "area": "town"}, {"id": "a", "title": "B", "area": "town"}]})


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    (tmp_path / "k.toml").write_text('[kiosk]\nid = "k-1"\ndata_dir = "data"\n[ledger]\npath = "x/ledger.db"\n')
    cfg = load_config(tmp_path / "k.toml")
    assert cfg.ledger_path == tmp_path / "data" / "x" / "ledger.db"
    assert cfg.pepper_path == tmp_path / "data" / "keys" / "pepper.json"


def test_env_var_names_the_file(tmp_path, monkeypatch):
    (tmp_path / "k.toml").write_text('[kiosk]\nid = "env-kiosk"\n')
    monkeypatch.setenv("KIOSK_CONFIG", str(tmp_path / "k.toml"))
    assert load_config().kiosk.id == "env-kiosk"
    monkeypatch.delenv("KIOSK_CONFIG")
    with pytest.raises(ConfigError, match="KIOSK_CONFIG"):
        load_config()


@pytest.mark.parametrize("content,needle", [
    (b'[kiosk\nid = "x"', "TOML syntax"),
    (b"\xff\xfe", "not UTF-8"),
    (b'[kiosk]\nid = "k-1"\n[donation]\npresets_yen = "100"', "donation.presets_yen"),
])
def test_unreadable_files_are_config_errors(tmp_path, content, needle):
    (tmp_path / "k.toml").write_bytes(content)
    with pytest.raises(ConfigError, match=needle):
        load_config(tmp_path / "k.toml")


def test_bad_config_exits_2_without_a_traceback(tmp_path):
    (tmp_path / "k.toml").write_text('[kiosk]\nid = "k-1"\nlog_levl = "INFO"\n[player]\nwidth = 5\n')
    r = subprocess.run([sys.executable, "-m", "kiosk", "doctor", "--config", str(tmp_path / "k.toml")],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "kiosk.log_levl: unknown key (did you mean 'log_level'?)" in r.stderr
    assert "player.width:" in r.stderr
    assert main(["doctor", "--config", str(tmp_path / "missing.toml")]) == 2


@pytest.mark.parametrize("name", ["kiosk.example.toml", "demo.toml"])
def test_to_toml_round_trips(tmp_path, name):
    """load → to_toml → load gives the same config (what `kiosk demo` stores must load as it ran)."""
    from kiosk.config import to_toml

    cfg = load_config(ROOT / "config" / name)
    written = tmp_path / "k.toml"
    written.write_text(to_toml(cfg), "utf-8")
    again = load_config(written)
    assert again.model_dump() == cfg.model_dump()


def test_to_toml_quotes_what_a_hand_written_writer_got_wrong(tmp_path):
    from kiosk.config import to_toml

    data = tomllib.loads((ROOT / "config" / "demo.toml").read_text("utf-8"))
    data["projects"][0]["title"] = 'こども "食堂" \\ C:\\path\ttab'
    cfg = validate_config(data, "<test>", tmp_path)
    (tmp_path / "k.toml").write_text(to_toml(cfg), "utf-8")
    assert load_config(tmp_path / "k.toml").projects[0].title == data["projects"][0]["title"]


@pytest.mark.parametrize("zone", ["Asia", "Etc", "America"])
def test_a_region_instead_of_a_time_zone_is_a_config_error(zone):
    # With tzdata installed, ZoneInfo("Asia") opens a folder: IsADirectoryError, which pydantic does not report.
    with pytest.raises(ConfigError, match="timezone"):
        validate_config({"kiosk": {"id": "k-1", "timezone": zone}})


def test_a_region_instead_of_a_time_zone_stops_doctor_with_exit_2_and_no_traceback(tmp_path):
    (tmp_path / "k.toml").write_text('[kiosk]\nid = "k-1"\ntimezone = "Asia"\n')
    r = subprocess.run([sys.executable, "-m", "kiosk", "doctor", "--config", str(tmp_path / "k.toml")],
                       capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr and "kiosk.timezone" in r.stderr, r.stderr[-600:]
    assert r.returncode == 2


def test_duplicate_project_ids_are_reported_with_every_other_error():
    bad = {"kiosk": {"id": "k-1"}, "ledger": {"checkpoint_every": 0},
           "projects": [{"id": "a", "title": "A", "area": "town"}, {"id": "a", "title": "B", "area": "town"}]}
    with pytest.raises(ConfigError) as err:
        validate_config(bad)
    assert "ledger.checkpoint_every" in str(err.value) and "duplicate project ids" in str(err.value), str(err.value)

