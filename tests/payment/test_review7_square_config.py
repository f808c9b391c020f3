"""Setting the Square Terminal up: a config that would send the access token in the clear is refused.

``base_url`` took any ``http://`` address, so a typo (``http://connect.squareup.com``) or a proxy written
without TLS sent the center's production access token, which can take and refund money, unencrypted with the
first request. Plain HTTP is for a test API on this machine only (the fake Square on loopback). The staff
member sees the mistake where every config mistake is shown (``kiosk doctor``, exit 2), with the fix.
"""

from __future__ import annotations

import pytest

from kiosk.cli import main
from tests.payment.fake_square import LOCATION


def _write(tmp_path, url: str):  # noqa: ANN001, ANN202
    path = tmp_path / "kiosk.toml"
    path.write_text(f'[kiosk]\nid = "k-1"\n[payment]\nterminal = "square"\n[payment.square]\n'
                    f'base_url = "{url}"\nlocation_id = "{LOCATION}"\n', "utf-8")
    return path


@pytest.mark.parametrize("url", ["http://connect.squareup.com", "http://connect.squareupsandbox.com/",
                                 "http://10.0.0.5:8080"])
def test_plain_http_to_another_machine_is_a_config_error(tmp_path, capsys, url):
    assert main(["doctor", "--config", str(_write(tmp_path, url))]) == 2
    err = capsys.readouterr().err
    assert "payment.square.base_url" in err and "https://" in err and "access token" in err, err


@pytest.mark.parametrize("url", ["https://connect.squareup.com", "https://connect.squareupsandbox.com/",
                                 "http://127.0.0.1:8123", "http://localhost:9"])
def test_https_and_loopback_test_apis_load(tmp_path, url):
    from kiosk.config import load_config

    assert load_config(_write(tmp_path, url)).payment.square.base_url == url
