"""The kiosk's configuration: one pydantic schema tree, one module per area (OctoPrint style).

Public API::

    load_config(path=None) -> KioskConfig       TOML file, or $KIOSK_CONFIG; raises ConfigError
    validate_config(data, source, base_dir)     a dict already parsed
    ConfigError                                 every problem at once, with "did you mean"
    to_toml(cfg) -> str                         the config as TOML (for ``kiosk demo`` and the portal push)
    as_model(cfg) -> KioskConfig                a plain copy (below) validated back into the model

Areas (each a module here; every field carries its docstring, which is the documentation)::

    kiosk     [kiosk] [keys] [ledger]          donation  [[projects]] [donation]
    flow      [flow]                           payment   [payment]
    player    [player] [[player.playlist]] [[player.slides]]
    reader    [reader]                         portal    [portal]
    staff     [staff] [closeout] [volunteer] [export] [status]
    tree      KioskConfig, the root, and the loader
    files     reading a file, ConfigError (standard library only)
    problems  a problem as data (kind, place, figures), said in plain Japanese on the fault screen (stdlib only)
    plain     the config as plain objects, and the behaviour models and copies share (standard library only)
    cache     the validated-config cache of ``kiosk run`` (``load_run_config``), which holds plain copies

Every section module imports only pydantic, :mod:`kiosk.config.base` and :mod:`kiosk.config.plain`, so any
package of the kiosk may import its section without pulling in anything else. ``kiosk run`` restarted with
an unchanged file imports none of them: it runs on the plain copy the cache kept (cold start, #16). So this
package's names that are models (or need them) are imported when first asked for, not with the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kiosk.config.files import ENV_VAR, ConfigError

if TYPE_CHECKING:
    from kiosk.config.donation import PolicyArea, Project
    from kiosk.config.tree import KioskConfig, as_model, load_config, to_toml, validate_config

__all__ = ["ENV_VAR", "ConfigError", "KioskConfig", "PolicyArea", "Project", "as_model", "load_config", "to_toml",
           "validate_config"]

_LAZY = {"KioskConfig": "tree", "as_model": "tree", "load_config": "tree", "to_toml": "tree",
         "validate_config": "tree", "PolicyArea": "donation", "Project": "donation"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
