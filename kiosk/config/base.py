"""Shared pieces for config sections: strict models whose field docstrings are the docs.

Every section derives from :class:`Section`, so unknown keys are errors
(``extra="forbid"``) and each attribute's docstring becomes its description,
which ``config/kiosk.example.toml`` mirrors.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        validate_default=True,
        frozen=False,
    )
