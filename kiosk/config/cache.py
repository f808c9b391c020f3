"""The validated-config cache of ``kiosk run``: a restart with an unchanged config skips validation.

Every start of ``kiosk run`` (a watchdog restart, a power cut) leaves the lobby screen dark until it is
ready for a tap. Building pydantic's validators for the config schema and validating the file cost about
a tenth of that start (at a quarter of a Pi-class core, 0.1-0.2 s; cold start, #16), and the result is the
same every time the same file is read by the same schema. So after a full validation ``kiosk run``
keeps the validated config tree in ``DATA_DIR/config.cache``, and the next start takes it from there
without validating, as long as all of these are byte-for-byte what they were:

- the config file's bytes and its resolved path (paths in it are relative to its directory);
- the schema: the source of every module of :mod:`kiosk.config` (a changed field, default or validator
  is a changed file), the kiosk's version, pydantic's and pydantic-core's versions, Python's version.

There are no environment overrides of config values (``$KIOSK_CONFIG`` only names the file, whose path
is in the key); one added later must join :func:`_key`. Anything else (no cache, an unreadable or
corrupt one, another key, a payload whose checksum does not match, a class the cache may not name)
means a full validation, which reports every problem at once exactly as :func:`~kiosk.config.load_config`
does, and writes a new cache when it succeeds. Every other command (``kiosk doctor``, the staff menu's
edits, the player's reload) validates fully and never reads the cache.

What the cache keeps is the tree's plain copy (:mod:`kiosk.config.plain`), and ``kiosk run`` runs on that
copy whether it came from the cache or from a full validation just now, so a restart and a first start
run on the same kind of object. Reading it back imports neither pydantic nor a section module: that was
about 40 % of the instructions from process start to ``READY=1``. The schema's digest names pydantic's
version by its files (:func:`schema_digest`), not by importing it.

The plain tree is stored with :mod:`pickle` and read back by an unpickler that names only
:func:`kiosk.config.plain.rebuild` and a few value types (paths, dates), so a damaged or planted file
cannot run code or build anything else; it is checked against a SHA-256 of its bytes first. The file is
written with :func:`kiosk.ledger.durable.write_atomic`: a power cut leaves the old cache or the new one.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import logging
import os
import pickle
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from kiosk.config.files import parse_toml, read_config_bytes
from kiosk.config.plain import DEFAULT_DATA_DIR, Plain, plain_of

if TYPE_CHECKING:
    from kiosk.config.tree import KioskConfig

log = logging.getLogger(__name__)

CACHE_NAME = "config.cache"
MAGIC = b"kiosk validated config 2\n"  # 2: the plain copy (1 held the models)
_DIGEST = 32  # SHA-256
_HEADER = len(MAGIC) + 3 * _DIGEST  # magic, schema digest, key, payload digest; then the payload

# What the cache may name besides the classes of kiosk.config: the value types config fields hold.
_VALUE_TYPES = {
    ("pathlib", "PosixPath"), ("pathlib", "PurePosixPath"), ("pathlib", "WindowsPath"),
    ("pathlib", "PureWindowsPath"), ("pathlib", "Path"),
    ("datetime", "date"), ("datetime", "time"), ("datetime", "datetime"), ("datetime", "timedelta"),
    ("datetime", "timezone"), ("builtins", "set"), ("builtins", "frozenset"),
}


def load_run_config(path: str | os.PathLike | None = None) -> tuple[KioskConfig, bool]:
    """The config for ``kiosk run``, as a plain copy (it stands for a :class:`~kiosk.config.KioskConfig`:
    :func:`_standing_for`), and
    whether it came from the cache (else it was validated in full and the cache written). Raises
    :class:`~kiosk.config.ConfigError` exactly as ``load_config`` does."""
    p, raw = read_config_bytes(path)
    data = parse_toml(p, raw)  # a file that is not TOML is reported as always, cache or not
    resolved = p.resolve()
    base_dir = resolved.parent
    cache = _cache_path(data, base_dir)
    schema = schema_digest()
    key = _key(resolved, raw, schema)
    if cache is not None:
        kept = _read(cache, schema, key)
        if isinstance(kept, Plain) and kept.model_name == "KioskConfig":
            cfg = _standing_for(kept)
            if cfg.data_dir / CACHE_NAME == cache:
                return cfg, True
        if kept is not None:
            log.warning("config cache %s does not hold this kiosk's config: validating in full", cache)
    from kiosk.config.tree import validate_config  # pydantic: only when the file has to be validated

    cfg = _standing_for(plain_of(validate_config(data, str(p), base_dir)))  # every problem at once, "did you mean"
    _write(cfg.data_dir / CACHE_NAME, schema, key, cfg)
    return cfg, False


def _standing_for(plain: Plain) -> KioskConfig:
    """The plain copy of a :class:`~kiosk.config.KioskConfig`, typed as the model it stands for: it has the
    model's fields as attributes and its methods (the mixins of kiosk/config/plain.py), and what ``kiosk run``
    hands it to reads attributes only. It lacks pydantic's own methods (``model_dump``): what needs them takes
    :func:`~kiosk.config.tree.as_model` of it. The one place the type checker is told so."""
    return cast("KioskConfig", plain)


@functools.cache  # the modules and packages of a running process do not change under it
def schema_digest() -> bytes:
    """SHA-256 over what decides how a file validates: the source of every kiosk.config module, the kiosk's
    and Python's versions, and pydantic's and pydantic-core's installed files (:func:`_installed`)."""
    from kiosk import __version__

    h = hashlib.sha256()
    for part in (__version__, sys.version):
        h.update(part.encode() + b"\0")
    for package in ("pydantic", "pydantic_core"):
        h.update(_installed(package) + b"\0")
    here = Path(__file__).resolve().parent
    for name in sorted(n for n in os.listdir(here) if n.endswith(".py")):  # not glob(): its regex costs a start more
        h.update(name.encode() + b"\0" + (here / name).read_bytes() + b"\0")
    return h.digest()


def _installed(package: str) -> bytes:
    """What identifies the installed ``package`` without importing it (importing pydantic is what a start from
    the cache saves; ``importlib.metadata`` costs ≈ 30 ms): its directory, and the name, size and mtime of
    every file at its top. An upgrade or reinstall replaces them (pydantic's ``version.py``, pydantic-core's
    compiled module)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return b"not installed: " + package.encode()
    out = []
    for where in spec.submodule_search_locations:
        out.append(os.fsdecode(where))
        try:
            with os.scandir(where) as it:
                for e in sorted(it, key=lambda e: e.name):
                    if e.is_file():
                        st = e.stat()
                        out.append(f"{e.name}\0{st.st_size}\0{st.st_mtime_ns}")
                        if e.name == "version.py":  # pydantic's VERSION, whatever the installer did to mtimes
                            out.append(hashlib.sha256(Path(e.path).read_bytes()).hexdigest())
        except OSError as exc:
            out.append(f"unreadable: {exc}")
    return "\n".join(out).encode("utf-8", "surrogateescape")


def _key(resolved: Path, raw: bytes, schema: bytes) -> bytes:
    h = hashlib.sha256(schema)
    h.update(os.fsencode(resolved) + b"\0")
    h.update(raw)
    return h.digest()


def _cache_path(data: dict[str, Any], base_dir: Path) -> Path | None:
    """Where a previous start wrote the cache: ``[kiosk] data_dir`` resolved as the validated config does
    (:attr:`KioskConfig.data_dir`). None where the raw value is not a path string (then validation decides)."""
    section = data.get("kiosk")
    if not isinstance(section, dict):
        return None
    raw = section.get("data_dir", str(DEFAULT_DATA_DIR))
    if not isinstance(raw, str):
        return None
    d = Path(raw)
    return (d if d.is_absolute() else base_dir / d) / CACHE_NAME


class _ConfigUnpickler(pickle.Unpickler):
    """Names only :func:`kiosk.config.plain.rebuild` and the value types of the fields: anything else is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("kiosk.config.plain", "rebuild") or (module, name) in _VALUE_TYPES:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"the config cache may not name {module}.{name}")


def _read(cache: Path, schema: bytes, key: bytes) -> Any | None:
    """The tree kept in ``cache`` for ``schema`` and ``key``, or None (with a log line saying why, where the
    cache is not simply absent or for other inputs)."""
    try:
        blob = cache.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("config cache %s unreadable (%s): validating in full", cache, exc)
        return None
    if len(blob) < _HEADER or not blob.startswith(MAGIC):
        log.warning("config cache %s is not one: validating in full", cache)
        return None
    at = len(MAGIC)
    got_schema, got_key, got_sum = (blob[at + i * _DIGEST: at + (i + 1) * _DIGEST] for i in range(3))
    payload = blob[_HEADER:]
    if got_schema != schema or got_key != key:
        log.info("config or schema changed since the last start (%s): validating in full", cache.name)
        return None
    if hashlib.sha256(payload).digest() != got_sum:
        log.warning("config cache %s is damaged: validating in full", cache)
        return None
    try:
        return _ConfigUnpickler(io.BytesIO(payload)).load()
    except Exception as exc:  # noqa: BLE001 - any failure to read it back means: validate in full
        log.warning("config cache %s cannot be read back (%s): validating in full", cache, exc)
        return None


def _write(cache: Path, schema: bytes, key: bytes, tree: Any) -> None:
    """Keep ``tree`` (plain copies, just validated, not yet changed by anyone) for the next start; a failure
    only costs the next start a full validation."""
    if not cache.parent.is_dir():  # the first start makes the data directory later (ensure_secrets)
        return
    from kiosk.ledger.durable import write_atomic

    try:
        payload = pickle.dumps(tree, protocol=pickle.HIGHEST_PROTOCOL)
        # 0600: the config may hold secrets (a terminal token, the staff PIN hash) whatever its own file mode is.
        write_atomic(cache, MAGIC + schema + key + hashlib.sha256(payload).digest() + payload, mode=0o600)
    except Exception as exc:  # noqa: BLE001 - the kiosk starts without a cache rather than not at all
        log.warning("config cache %s not written (%s); the next start validates in full", cache, exc)


# --- what the running kiosk derives from its config at every start ---------------------------------------

def kept(data_dir: Path, name: str, inputs: bytes) -> Any | None:
    """The plain tree :func:`keep` kept as ``DATA_DIR/name`` for the same ``inputs`` and schema, or None.

    For what ``kiosk run`` derives from its config at every start by pure code that needs the models: the
    config the portal pushed, laid over the file's (``App._adopt_recorded_config``). ``inputs`` must hold
    everything the result depends on besides the schema."""
    return _read(data_dir / name, schema_digest(), hashlib.sha256(inputs).digest())


def keep(data_dir: Path, name: str, inputs: bytes, tree: Any) -> None:
    """Keep the plain copy of ``tree`` (models, plain copies, lists and dicts of them) for :func:`kept`."""
    _write(data_dir / name, schema_digest(), hashlib.sha256(inputs).digest(), plain_of(tree))
