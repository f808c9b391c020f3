"""`kiosk payment test` when Square's answer to the checkout is unknown.

The installer runs it with a card in hand. If the command gives up on an open checkout and exits, the terminal
may still be waiting for that card: a tap then takes the money of a test payment that nobody refunds and no
ledger records. So the command settles the checkout before it ends: a waiting one is canceled, a paid one is
refunded, and one it still cannot settle is named with what to do. Real CLI, real SDK, the fake Square on loopback.
"""

from __future__ import annotations

import threading

from kiosk.cli import main
from tests.payment.fake_square import FakeSquare, Fault
from tests.payment.test_square_setup import write_config


def test_an_unknown_answer_leaves_no_checkout_waiting_on_the_terminal(tmp_path, capsys):
    with FakeSquare() as fake:
        cfg = write_config(tmp_path, url=fake.url)
        fake.fault("create", Fault("status_after", 409, code="CONFLICT"))  # made at Square; the answer says nothing
        assert main(["payment", "test", "--config", str(cfg), "--amount", "100"]) == 1
        err = capsys.readouterr()
        co = fake.only()
        assert co.status == "CANCELED" and co.cancel_reason == "SELLER_CANCELED"  # no card can pay it any more
        assert "not charged" in err.out and fake.refunds == {}


def test_a_test_payment_made_while_the_answer_was_unknown_is_refunded(tmp_path, capsys):
    with FakeSquare() as fake:
        cfg = write_config(tmp_path, url=fake.url)
        fake.fault("create", Fault("status_after", 409, code="CONFLICT"), Fault("hold"))

        def installer_taps_the_card() -> None:  # while the command asks Square again, the card is tapped
            if fake.held.wait(10):
                fake.buyer(fake.only().id, "complete")
            fake.release()

        t = threading.Thread(target=installer_taps_the_card)
        t.start()
        rc = main(["payment", "test", "--config", str(cfg), "--amount", "100"])
        t.join()
        out = capsys.readouterr().out
        co = fake.only()
        assert rc == 0 and co.status == "COMPLETED" and "refunded:" in out, out
        [ref] = fake.refunds.values()
        assert ref["payment_id"] == co.payment_ids[0] and ref["amount_money"] == {"amount": 100, "currency": "JPY"}


def test_a_checkout_that_cannot_be_settled_is_named_with_what_to_do(tmp_path, capsys):
    with FakeSquare() as fake:
        cfg = write_config(tmp_path, url=fake.url)
        fake.fault("create", Fault("status_after", 409, code="CONFLICT"), *[Fault("status", 409)] * 50)
        assert main(["payment", "test", "--config", str(cfg), "--amount", "100"]) == 1
        err = capsys.readouterr().err
        assert "install-test" in err and "Square Dashboard" in err and "cancel" in err
        assert fake.only().status == "PENDING"  # (the fake's deadline cancels it; the command said so meanwhile)
