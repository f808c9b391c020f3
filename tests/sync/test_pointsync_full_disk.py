"""A points lookup on a kiosk whose data partition is full (docs/points.md, "A full disk").

The portal's answer to a card's points lookup is kept in ``points-allotted.json`` (kiosk/sync/pointsync.py). When
that file could not be written, the whole lookup failed: the portal had already moved the card's new points to
this kiosk, yet the citizen was shown the older word ("the portal did not answer"), could not spend the new
points here, and no other kiosk could either. A real kiosk (ledger, keys, pepper) on a real small tmpfs, a real
portal over loopback HTTP, the kiosk's own points desk (kiosk/app/points.py, what `kiosk run` asks with); the disk
is filled with a file between two lookups.
"""

from __future__ import annotations

import json
from pathlib import Path

from sync_helpers import PROJECTS, enrolled, fake_idm, make_rig

from kiosk.app.points import points_desk
from kiosk.donation.exchange import card_spendable
from kiosk.sync import pointsync
from server_sync import catalog
from tests.mounts import fill, small_tmpfs

CARD = 9


def _words(kept: Path) -> dict:
    """The answers kept, without what each covers of the ledger (``pointsync.MARKS``)."""
    return {k: v for k, v in json.loads(kept.read_text()).items() if k != pointsync.MARKS}


def test_a_full_disk_does_not_stop_a_points_lookup_the_portal_answered(portal, tmp_path: Path):  # noqa: ANN001
    catalog.import_catalog(portal.app.state.engine, {"projects": PROJECTS})
    with small_tmpfs(tmp_path / "disk", "8m") as disk:
        rig = make_rig(disk, "full-disk-1")
        up = enrolled(rig, portal, pepper=rig.pepper)
        try:
            rig.donate(10, card=CARD, amounts=(1000,))  # 100 points
            assert up.sync_once().ok
            desk = points_desk(rig.cfg)  # as `kiosk run` builds it: its own uploader, the portal from sync-state
            token = rig.pepper.card_token(fake_idm(CARD))
            kept = rig.cfg.data_dir / pointsync.FILE
            assert desk.ask(token, 0) == (100, 100)
            assert _words(kept) == {token.hex: 100}

            rig.donate(5, card=CARD, amounts=(1000,))  # 50 more, seen by the portal
            assert up.sync_once().ok
            filler = fill(disk)
            before = sorted(p.name for p in rig.cfg.data_dir.iterdir())

            # The portal answers (and hands this kiosk the 50 new points): the citizen sees the answer.
            assert desk.ask(token, 0) == (150, 150)
            assert desk.last_word(token) == 150  # the spend is checked against the same word the screen showed
            assert card_spendable(rig.ledger, token, desk.last_word(token)) == 150
            # What was kept is untouched and whole; no temp file is left on the full disk.
            assert _words(kept) == {token.hex: 100}
            assert sorted(p.name for p in rig.cfg.data_dir.iterdir()) == before

            # Room again: the next answer is written, even when it says what the kiosk already held in memory.
            filler.unlink()
            assert desk.ask(token, 0) == (150, 150)
            assert _words(kept) == {token.hex: 150}
        finally:
            up.close()
            rig.ledger.close(checkpoint=False)


def test_an_unwritable_answer_is_forgotten_by_a_restart_and_the_old_word_stands(tmp_path: Path):
    """What a restart (a new process) sees after an answer that could not be written: the file's last word, as
    the kiosk would have had offline. The file is never emptied or cut by the failed write."""
    import subprocess
    import sys

    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        data = disk / "data"
        data.mkdir()
        pointsync.remember(data, "aa" * 16, 40)
        fill(disk)
        pointsync.remember(data, "bb" * 16, 70, ["bb" * 16, "aa" * 16])  # the same card under a newer token
        assert pointsync.last_word(data, ["bb" * 16, "aa" * 16]) == 70
        assert json.loads((data / pointsync.FILE).read_text()) == {"aa" * 16: 40}
        fresh = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                                "from kiosk.sync import pointsync; "
                                "print(pointsync.last_word(Path(sys.argv[1]), sys.argv[2:]))",
                                str(data), "bb" * 16, "aa" * 16], capture_output=True, text=True, timeout=60,
                               cwd=Path(__file__).resolve().parents[2])
        assert fresh.returncode == 0, fresh.stderr
        assert fresh.stdout.strip() == "40"
