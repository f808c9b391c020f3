"""The ops config sections: documented fields, and they slot into the root config as proposed."""

from __future__ import annotations

import tomllib

import pytest
from pydantic import Field, ValidationError

from kiosk.config import KioskConfig
from kiosk.config.base import field_docs
from kiosk.config.staff import (
    Activity,
    CloseoutSection,
    ExportSection,
    StaffSection,
    StatusSection,
    VolunteerSection,
    ops_settings,
)
from kiosk.staff.pin import hash_pin

SECTIONS = (StaffSection, CloseoutSection, Activity, VolunteerSection, ExportSection, StatusSection)


class ProposedRoot(KioskConfig):
    """KioskConfig with the fields the lead is asked to add (see the ops report)."""

    staff: StaffSection = Field(default_factory=StaffSection)
    closeout: CloseoutSection = Field(default_factory=CloseoutSection)
    volunteer: VolunteerSection = Field(default_factory=VolunteerSection)
    export: ExportSection = Field(default_factory=ExportSection)
    status: StatusSection = Field(default_factory=StatusSection)


@pytest.mark.parametrize("model", SECTIONS, ids=lambda m: m.__name__)
def test_every_field_has_a_docstring(model):
    docs = field_docs(model)
    for name in model.model_fields:
        assert len(docs.get(name, "")) > 10, f"{model.__name__}.{name} has no docstring"


def test_sections_fit_the_root_config():
    pin = hash_pin("2580", n=2**10)
    toml = f"""
[kiosk]
id = "center-1"

[staff]
pin_hash = "{pin}"
staff_tokens = ["{'ab' * 16}"]
free_attempts = 5

[closeout]
lookback_days = 7

[[volunteer.activities]]
id = "park-cleanup"
title = "公園清掃"
points = 20

[export]
mount_roots = ["/media"]
"""
    cfg = ProposedRoot.model_validate(tomllib.loads(toml))
    ops = ops_settings(cfg)
    assert ops.staff.pin_hash == pin and ops.staff.free_attempts == 5
    assert ops.closeout.lookback_days == 7 and ops.volunteer.activity("park-cleanup").points == 20
    assert ops.export.mount_roots == ["/media"] and ops.status.min_free_mb == 200
    # Today's root config has none of them: the defaults stand in.
    assert ops_settings(KioskConfig.model_validate({"kiosk": {"id": "center-1"}})).staff == StaffSection()


def test_bad_values_are_refused():
    with pytest.raises(ValidationError):
        StaffSection(staff_tokens=["0123456789abcdef"])  # an IDm-length value, not a token
    with pytest.raises(ValidationError):
        StaffSection(lockout_base_s=600, lockout_max_s=60)
    with pytest.raises(ValidationError):
        Activity(id="x", title="t", points=200, max_points=100)
    with pytest.raises(ValidationError):
        VolunteerSection(activities=[Activity(id="a", title="t"), Activity(id="a", title="u")])
