"""Reading a config file: its bytes, its TOML, and the error that reports what is wrong with it.

Standard library only, like :mod:`kiosk.config.plain`: ``kiosk run`` reads its file and reports a bad one
without importing pydantic, which a start from the validated-config cache never needs (cold start, #16).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

ENV_VAR = "KIOSK_CONFIG"


class ConfigError(Exception):
    """A config file that cannot be used. ``str()`` is the full report."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        lines = [f"config {path}: {len(problems)} problem{'s' if len(problems) != 1 else ''}"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


def read_config_bytes(path: str | os.PathLike | None = None) -> tuple[Path, bytes]:
    """The file named by ``path`` (or ``$KIOSK_CONFIG``) and its bytes; :class:`ConfigError` if it cannot be read."""
    if path is None:
        path = os.environ.get(ENV_VAR)
        if not path:
            raise ConfigError("(none)", [f"no config file given: pass --config FILE or set {ENV_VAR}"])
    p = Path(path)
    try:
        return p, p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(p), ["file does not exist"]) from None
    except OSError as exc:
        raise ConfigError(str(p), [f"cannot read file: {exc.strerror or exc}"]) from None


def parse_toml(p: Path, raw: bytes) -> dict[str, Any]:
    """The TOML mapping of a config file's bytes; :class:`ConfigError` for text that is not UTF-8 TOML."""
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(str(p), [f"not UTF-8 text: {exc.reason} at byte {exc.start}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), [f"TOML syntax: {exc}"]) from None
