from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for reader_fakes

from reader_fakes import FakeClock  # noqa: E402

from kiosk.config.reader import ReaderConfig  # noqa: E402
from kiosk.ledger.pepper import Pepper  # noqa: E402


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
