"""Writing secret files (signing key, pepper): mode 0600 from the first byte, fsynced."""

from __future__ import annotations

import os
from pathlib import Path


def write_secret(path: Path, data: bytes, *, replace: bool) -> None:
    """Write ``data`` to ``path`` readable by its owner only.

    Without ``replace`` an existing file is a :class:`FileExistsError` (a secret is never clobbered by
    accident); with it, the new file is written beside the old and renamed over it, so a crash leaves
    one or the other, never half of each.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path.with_suffix(path.suffix + ".tmp") if replace else path
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL), 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(target, 0o600)  # O_CREAT's mode is masked by umask, and an old .tmp keeps its own mode
    if replace:
        os.replace(target, path)
