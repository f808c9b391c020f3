"""The reconciliation page names the payment provider as staff know it, 「Square」, not by the portal's id
``square`` (docs/portal.md, "Reconciliation"): in the import form's drop-down and in the list of imported files.
A real portal on loopback HTTP (SQLite) and a real import of a one-payment settlement file."""

from __future__ import annotations

import re

import pytest
import requests
from sync_helpers import PASSWORD

FILE = ("\ufeffDate,Time,Time Zone,Gross Sales,Partial Refunds,Total Collected,Transaction ID,Payment ID,Device Name,"
        "Event Type\r\n2026-12-01,10:00:00,Tokyo,¥500,¥0,¥500,tx-1,sq-pay-1,center-1f,Payment\r\n").encode()


@pytest.fixture
def portal(staff_site):  # noqa: ANN001, ANN201 - conftest's portal with the login staff1
    return staff_site


def test_the_provider_is_named_as_staff_know_it(portal) -> None:  # noqa: ANN001
    s = requests.Session()
    assert s.post(portal.url + "/staff/login", data={"username": "staff1", "password": PASSWORD},
                  timeout=10).status_code == 200
    html = s.get(portal.url + "/staff/reconciliation?month=2026-12", timeout=10).text
    assert re.findall(r'<select id="f-provider" name="provider">(.*?)</select>', html) == [
        '<option value="square">Square</option>']
    token = re.search(r'name="csrf" value="([^"]+)"', html)[1]
    r = s.post(portal.url + "/staff/reconciliation/provider?month=2026-12", data={"csrf": token, "provider": "square"},
               files={"file": ("december.csv", FILE, "text/csv")}, timeout=10)
    assert r.status_code == 200, r.text[:300]
    imported = re.search(r'<table id="imports">.*?</table>', r.text, re.S)[0]
    assert "<td>Square</td>" in imported and ">square<" not in imported, imported
