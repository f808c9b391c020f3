"""Writing secret files (signing key, pepper): mode 0600 from the first byte, written durably."""

from __future__ import annotations

from pathlib import Path

from kiosk.ledger.durable import SECRET_MODE, write_atomic


def write_secret(path: Path, data: bytes, *, replace: bool) -> None:
    """Write ``data`` to ``path`` readable by its owner only.

    Without ``replace`` an existing file is a :class:`FileExistsError` (a secret is never clobbered by
    accident); with it, the new file is written beside the old and renamed over it, so a crash leaves
    one or the other, never half of each. Either way the file is never visible with wider permissions.
    """
    write_atomic(path, data, mode=SECRET_MODE, overwrite=replace)
