"""What ``kiosk doctor`` prints for a bad config file, read back by the config tests (kiosk/config/files.py
``ConfigError.report``): the file and the count in Japanese, the English header, then each problem Japanese first
with its English line under it."""

from __future__ import annotations

from pathlib import Path


def english_problems(err: str, path: Path) -> list[str]:
    """The English lines of the problems in ``err`` (doctor's stderr for ``path``), after checking the report's
    shape: both headers with the right count, every problem said in Japanese and then in English, no traceback."""
    lines = err.splitlines()
    n = (len(lines) - 2) // 2
    assert len(lines) == 2 + 2 * n and lines[0] == f"設定ファイル：{path}  見つかった問題：{n}件", err
    assert lines[1] == f"config {path}: {n} problem{'s' if n != 1 else ''}", err
    assert all(line.startswith("  - ") and not line.isascii() for line in lines[2::2]), err
    assert all(line.startswith("    ") for line in lines[3::2]) and "Traceback" not in err, err
    return [line[4:] for line in lines[3::2]]
