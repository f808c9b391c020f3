"""SyncState.set_aside: an unreadable sync-state.json is moved beside itself, or None when it vanished meanwhile."""

from __future__ import annotations

from pathlib import Path

from kiosk.sync.uploader import SyncState


def test_set_aside_moves_the_unreadable_file_and_returns_where(tmp_path: Path) -> None:
    path = tmp_path / "sync-state.json"
    path.write_bytes(b"\0\0\0")
    st = SyncState.load(path)
    assert st.unreadable is not None
    aside = st.set_aside(path)
    assert aside is not None and aside.parent == tmp_path and aside.name.startswith("sync-state.json.unreadable-")
    assert aside.read_bytes() == b"\0\0\0" and not path.exists()
    assert st.unreadable is None  # save() may now write a new state


def test_set_aside_of_a_file_gone_meanwhile_is_none_and_clears_the_refusal(tmp_path: Path) -> None:
    path = tmp_path / "sync-state.json"
    path.write_bytes(b"{")
    st = SyncState.load(path)
    assert st.unreadable is not None
    path.unlink()  # removed between reading it and enrolling again
    assert st.set_aside(path) is None
    assert st.unreadable is None and list(tmp_path.iterdir()) == []


def test_set_aside_of_a_readable_state_does_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sync-state.json"
    assert SyncState().set_aside(path) is None
