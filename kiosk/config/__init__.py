"""The kiosk's configuration: one pydantic schema tree, one module per area (OctoPrint style).

Public API::

    load_config(path=None) -> KioskConfig       TOML file, or $KIOSK_CONFIG; raises ConfigError
    validate_config(data, source, base_dir)     a dict already parsed
    ConfigError                                 every problem at once, with "did you mean"
    to_toml(cfg) -> str                         the config as TOML (for ``kiosk demo`` and the portal push)

Areas (each a module here; every field carries its docstring, which is the documentation)::

    kiosk     [kiosk] [keys] [ledger]          donation  [[projects]] [donation]
    flow      [flow]                           payment   [payment]
    player    [player] [[player.playlist]] [[player.slides]]
    reader    [reader]                         portal    [portal]
    staff     [staff] [closeout] [volunteer] [export] [status]
    tree      KioskConfig, the root, and the loader
    cache     the validated-config cache of ``kiosk run`` (``load_run_config``)

Every section module imports only pydantic and :mod:`kiosk.config.base`, so any
package of the kiosk may import its section without pulling in anything else
(``cache`` also uses the stdlib and, to write, :mod:`kiosk.ledger.durable`).
"""

from kiosk.config.donation import PolicyArea, Project
from kiosk.config.tree import ENV_VAR, ConfigError, KioskConfig, load_config, to_toml, validate_config

__all__ = ["ENV_VAR", "ConfigError", "KioskConfig", "PolicyArea", "Project", "load_config", "to_toml",
           "validate_config"]
