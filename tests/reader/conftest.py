from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for reader_fakes

from reader_fakes import FakeClock  # noqa: E402

from kiosk.config.reader import ReaderConfig  # noqa: E402
from kiosk.ledger.pepper import Pepper  # noqa: E402


@pytest.fixture(autouse=True)
def no_plugged_readers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The backends look at the USB readers plugged in when they find none to open (a reader the configured backend
    cannot drive is a setup fault, not a lost reader): these tests see an empty USB bus, not the machine's own,
    so a reader on a developer's desk does not change them. A test that wants readers points it at a tree of its own."""
    from kiosk.reader import devices

    empty = tmp_path / "no-usb-devices"
    empty.mkdir()
    monkeypatch.setattr(devices, "SYSFS_USB_DEVICES", empty)


@pytest.fixture
def pepper(tmp_path: Path) -> Pepper:
    return Pepper.create(tmp_path / "pepper.json")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def rconf():
    def make(**kw) -> ReaderConfig:
        return ReaderConfig.model_validate(kw)

    return make
