"""The validated-config cache of `kiosk run` (kiosk/config/cache.py, cold start #16).

An unchanged config file is taken from DATA_DIR/config.cache without validation; anything else (a changed
file, another schema, a damaged or planted cache, a cache that cannot be written) means a full validation
with every problem reported, as `load_config` does. Each test uses real files and a fresh interpreter where
what is loaded matters.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.config import ConfigError, as_model, load_config
from kiosk.config.cache import CACHE_NAME, MAGIC, load_run_config, schema_digest
from kiosk.config.plain import Plain, data_of, plain_of

ROOT = Path(__file__).resolve().parents[1]

GOOD = """[kiosk]
id = "cache-kiosk-1"
data_dir = "data"

[donation]
presets_yen = [100, 500]
default_yen = 500

[[projects]]
id = "a"
title = "A"
area = "town"
"""


@pytest.fixture
def kiosk_dir(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "kiosk.toml").write_text(GOOD, "utf-8")
    return tmp_path


def _cache(d: Path) -> Path:
    return d / "data" / CACHE_NAME


def test_second_start_comes_from_the_cache_and_equals_a_full_validation(kiosk_dir):
    first, hit1 = load_run_config(kiosk_dir / "kiosk.toml")
    second, hit2 = load_run_config(kiosk_dir / "kiosk.toml")
    assert (hit1, hit2) == (False, True)
    full = load_config(kiosk_dir / "kiosk.toml")
    # kiosk run runs on the plain copy either way: the one just validated, or the one the cache kept.
    assert isinstance(first, Plain) and isinstance(second, Plain)
    assert second == first == plain_of(full)
    assert as_model(second) == full  # validated back, it is the model the file gives
    assert data_of(second) == data_of(full)
    assert (second.data_dir, second.ledger_path, second.pepper_path) == (full.data_dir, full.ledger_path,
                                                                         full.pepper_path)
    assert second.project("a") == plain_of(full.project("a")) and second.project("zz") is None


def test_a_changed_file_is_validated_in_full_with_every_problem(kiosk_dir):
    load_run_config(kiosk_dir / "kiosk.toml")
    cfg, hit = load_run_config(kiosk_dir / "kiosk.toml")
    assert hit
    (kiosk_dir / "kiosk.toml").write_text(GOOD.replace("default_yen = 500", "default_yen = 1000")
                                          + "[ledgr]\n", "utf-8")
    with pytest.raises(ConfigError) as err:
        load_run_config(kiosk_dir / "kiosk.toml")
    msg = str(err.value)
    assert "ledgr: unknown key (did you mean 'ledger'?)" in msg
    assert "donation" in msg and len(err.value.problems) == 2  # both, at once
    # Fixed again: the new bytes are validated, then cached.
    (kiosk_dir / "kiosk.toml").write_text(GOOD.replace('title = "A"', 'title = "B"'), "utf-8")
    cfg, hit = load_run_config(kiosk_dir / "kiosk.toml")
    assert not hit and cfg.projects[0].title == "B"
    cfg, hit = load_run_config(kiosk_dir / "kiosk.toml")
    assert hit and cfg.projects[0].title == "B"


def test_a_one_byte_change_that_is_still_valid_is_not_taken_from_the_cache(kiosk_dir):
    load_run_config(kiosk_dir / "kiosk.toml")
    (kiosk_dir / "kiosk.toml").write_text(GOOD.replace("cache-kiosk-1", "cache-kiosk-2"), "utf-8")
    cfg, hit = load_run_config(kiosk_dir / "kiosk.toml")
    assert not hit and cfg.kiosk.id == "cache-kiosk-2"


def test_the_same_bytes_at_another_path_are_validated_there(kiosk_dir, tmp_path_factory):
    load_run_config(kiosk_dir / "kiosk.toml")
    other = tmp_path_factory.mktemp("other")
    (other / "data").mkdir()
    (other / "kiosk.toml").write_text(GOOD, "utf-8")
    (other / "data" / CACHE_NAME).write_bytes(_cache(kiosk_dir).read_bytes())  # copied with the data dir
    cfg, hit = load_run_config(other / "kiosk.toml")
    assert not hit and cfg.base_dir == other and cfg.ledger_path.is_relative_to(other)


@pytest.mark.parametrize("damage", ["truncated", "flipped", "garbage", "empty", "directory"])
def test_a_damaged_cache_means_a_full_validation_and_a_new_cache(kiosk_dir, damage):
    load_run_config(kiosk_dir / "kiosk.toml")
    cache = _cache(kiosk_dir)
    blob = cache.read_bytes()
    if damage == "truncated":
        cache.write_bytes(blob[:-7])
    elif damage == "flipped":
        cache.write_bytes(blob[:-20] + bytes([blob[-20] ^ 0x40]) + blob[-19:])
    elif damage == "garbage":
        cache.write_bytes(os.urandom(len(blob)))
    elif damage == "empty":
        cache.write_bytes(b"")
    else:
        cache.unlink()
        cache.mkdir()
    cfg, hit = load_run_config(kiosk_dir / "kiosk.toml")
    assert not hit and cfg == load_config(kiosk_dir / "kiosk.toml")
    if damage != "directory":
        assert load_run_config(kiosk_dir / "kiosk.toml")[1]  # rewritten, and good again


def test_a_cache_of_another_schema_is_not_used(kiosk_dir):
    """The schema digest covers kiosk.config's source and the pydantic, pydantic-core, Python and kiosk
    versions; a cache written under another one is stale even for the same file."""
    load_run_config(kiosk_dir / "kiosk.toml")
    cache = _cache(kiosk_dir)
    blob = cache.read_bytes()
    at = len(MAGIC)
    assert blob[at:at + 32] == schema_digest()
    cache.write_bytes(blob[:at] + hashlib.sha256(b"an older schema").digest() + blob[at + 32:])
    assert not load_run_config(kiosk_dir / "kiosk.toml")[1]


def test_schema_digest_follows_the_config_modules_source(tmp_path):
    """A changed field, default or validator in kiosk/config/*.py changes the digest (a copy of the package
    with one module edited, imported in a fresh interpreter)."""
    import shutil

    pkg = tmp_path / "tree"
    shutil.copytree(ROOT / "kiosk", pkg / "kiosk", ignore=shutil.ignore_patterns("__pycache__"))
    code = "from kiosk.config.cache import schema_digest; print(schema_digest().hex())"

    def digest() -> str:
        env = {**os.environ, "PYTHONPATH": str(pkg)}
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                              check=True, cwd=tmp_path).stdout.strip()

    before = digest()
    assert before == schema_digest().hex()
    flow = pkg / "kiosk" / "config" / "flow.py"
    flow.write_text(flow.read_text("utf-8") + "\n# a changed schema\n", "utf-8")
    assert digest() != before


class _Planted:
    def __reduce__(self):  # what a planted file would do: run something while it is read
        return (os.system, ("touch planted",))


def test_a_planted_pickle_is_refused_not_run(kiosk_dir, monkeypatch):
    monkeypatch.chdir(kiosk_dir)
    load_run_config(kiosk_dir / "kiosk.toml")
    cache = _cache(kiosk_dir)
    blob = cache.read_bytes()
    at = len(MAGIC)
    payload = pickle.dumps(_Planted())
    # The right schema and key, a matching checksum: only the classes it names give it away.
    cache.write_bytes(blob[:at + 64] + hashlib.sha256(payload).digest() + payload)
    cfg, hit = load_run_config(kiosk_dir / "kiosk.toml")
    assert not hit and cfg.kiosk.id == "cache-kiosk-1"
    assert not (kiosk_dir / "planted").exists()


def test_no_data_dir_yet_no_cache_and_no_error(tmp_path):
    (tmp_path / "kiosk.toml").write_text(GOOD, "utf-8")
    cfg, hit = load_run_config(tmp_path / "kiosk.toml")
    assert not hit and not (tmp_path / "data").exists()  # the first start makes it (ensure_secrets), not us


def test_unreadable_files_are_config_errors_as_before(tmp_path):
    (tmp_path / "k.toml").write_bytes(b'[kiosk\nid = "x"')
    with pytest.raises(ConfigError, match="TOML syntax"):
        load_run_config(tmp_path / "k.toml")
    with pytest.raises(ConfigError, match="file does not exist"):
        load_run_config(tmp_path / "missing.toml")


CHILD = r"""
import json, sys
from kiosk.config.cache import load_run_config
cfg, hit = load_run_config(sys.argv[1])
tree = sys.modules.get("kiosk.config.tree")
print(json.dumps({"hit": hit, "pydantic": "pydantic" in sys.modules,
                  "validator_built": bool(tree and tree.KioskConfig.__pydantic_complete__),
                  "plugins_scanned": "importlib.metadata" in sys.modules, "id": cfg.kiosk.id}))
"""


def test_a_restart_imports_no_pydantic(kiosk_dir):
    """What the cache is for: the second start of a fresh interpreter neither imports pydantic nor the
    config's models (so builds no validator), nor scans the installed packages for pydantic plugins."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def start() -> dict:
        r = subprocess.run([sys.executable, "-c", CHILD, str(kiosk_dir / "kiosk.toml")], capture_output=True,
                           text=True, env=env, check=True, cwd=kiosk_dir)
        return json.loads(r.stdout.strip().splitlines()[-1])

    first = {"hit": False, "pydantic": True, "validator_built": True, "plugins_scanned": True, "id": "cache-kiosk-1"}
    assert start() == first
    assert start() == {"hit": True, "pydantic": False, "validator_built": False, "plugins_scanned": False,
                       "id": "cache-kiosk-1"}


def test_the_schema_digest_names_pydantic_by_its_files_not_by_importing_it(tmp_path, monkeypatch):
    """An upgraded pydantic (another version.py) or pydantic-core (another compiled module) is another schema;
    finding that out imports neither (tests/app/test_cold_start.py: no pydantic before READY=1)."""
    import importlib

    from kiosk.config.cache import _installed

    pkg = tmp_path / "fakepydantic"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (pkg / "version.py").write_text("VERSION = '2.14.4'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    before = _installed("fakepydantic")
    assert before == _installed("fakepydantic")
    (pkg / "version.py").write_text("VERSION = '2.14.5'\n")  # same size: the bytes tell
    assert _installed("fakepydantic") != before
    again = _installed("fakepydantic")
    (pkg / "_core.so").write_bytes(b"\0" * 10)
    assert _installed("fakepydantic") != again
    assert "fakepydantic" not in sys.modules
    assert _installed("no_such_package_here") == b"not installed: no_such_package_here"
