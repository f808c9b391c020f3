"""The ``[[projects]]`` tables and the ``[donation]`` section: what citizens give to, and how much."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from kiosk.config import problems as pk
from kiosk.config.base import Section, cross_check

PolicyArea = Literal["children", "welfare", "green", "culture", "town"]
"""The five policy areas of the Tsurugashima model: children and the future,
health and welfare, greenery and climate, culture and arts, a lively town."""


class Project(Section):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    """Project identifier, stable across kiosks and the portal."""

    title: str = Field(min_length=1)
    """Japanese title shown over the movie."""

    title_en: str = ""
    """English title (shown with the English toggle; falls back to ``title``)."""

    group: str = ""
    """The citizen group running the project."""

    group_en: str = ""
    """The group's name in English (shown with the English toggle; when empty the English screens leave the
    group out rather than show Japanese to someone who asked for English)."""

    area: PolicyArea
    """Policy area: children, welfare, green, culture or town."""

    goal_yen: int = Field(100_000, ge=1)
    """Fundraising goal in yen, for the progress bar."""


class DonationSection(Section):
    presets_yen: list[int] = Field(default_factory=lambda: [100, 500, 1000])
    """Amount buttons on the choose-amount screen, in yen."""

    default_yen: int = 100
    """Amount given by a single tap during the attract loop. Must be one of the presets."""

    max_per_transaction_yen: int = Field(1000, ge=1)
    """Largest single donation accepted."""

    daily_limit_per_card_yen: int = Field(3000, ge=1)
    """Most one card (donor token) may give per business day."""

    points_per_100_yen: int = Field(1, ge=0)
    """Social contribution points (社会貢献ポイント) earned per ¥100 given."""

    @field_validator("presets_yen")
    @classmethod
    def _presets(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("at least one preset amount is needed")
        bad = [x for x in v if x < 1]
        if bad:
            raise ValueError(f"preset amounts must be positive yen, got {bad}")
        return v

    # Cross-field checks (kiosk/config/base.py): reported beside any other mistake in the section.
    @cross_check("default_yen", "presets_yen")
    def _default_in_presets(self) -> None:
        if self.default_yen not in self.presets_yen:
            raise pk.CheckFailed(pk.DEFAULT_NOT_PRESET,
                                 f"default_yen {self.default_yen} is not one of presets_yen {self.presets_yen}",
                                 default=self.default_yen, presets=list(self.presets_yen))

    @cross_check("presets_yen", "max_per_transaction_yen")
    def _presets_within_max(self) -> None:
        if max(self.presets_yen) > self.max_per_transaction_yen:
            raise pk.CheckFailed(
                pk.PRESET_OVER_MAX,
                f"preset {max(self.presets_yen)} exceeds max_per_transaction_yen {self.max_per_transaction_yen}",
                preset=max(self.presets_yen), max=self.max_per_transaction_yen)
