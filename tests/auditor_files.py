"""What the auditor tests share (tests/test_auditor_walkthrough.py, tests/test_auditor_followups.py): the real
`kiosk` command as a process, and an export file read and written as an auditor (or a forger) handles it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}


def kiosk(*args: str) -> subprocess.CompletedProcess:
    """`python -m kiosk ARGS` with no display or sound, its output captured as text."""
    return subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True, text=True, timeout=180,
                          env=ENV)


def read_export(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An export's header and its entry lines."""
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    return lines[0], lines[1:]


def write_export(path: Path, header: dict[str, Any], entries: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in [header, *entries]))
    return path


def body(entry: dict[str, Any]) -> dict[str, Any]:
    """An export line's entry body, decoded."""
    return json.loads(base64.b64decode(entry["body"]))


def english(out: str) -> str:
    """The English line of `kiosk ledger verify` (``OK: …``, ``INVALID at seq=N: …``, ``NOT CHECKED: …``, the line a
    script reads), under its Japanese verdict (「判定：…」 and an indented 「対応：…」 line)."""
    return next(x for x in out.splitlines() if not x.startswith(("判定：", "  ")))
