"""Install the ``kiosk`` and ``portal`` extras into two fresh virtual environments and check they stay apart.

    python tools/check_extras.py [--keep DIR]

- ``.[kiosk]`` must not install fastapi, uvicorn, psycopg or jinja2, and the kiosk's
  modules (app, sync, player, reader) must import there;
- ``.[portal]`` must not install pygame-ce, nfcpy or segno, and ``import server_sync.app``
  must work there, with a portal app built on SQLite. It does install ``av`` (PyAV): the
  portal transcodes uploaded videos by running the kiosk's transcoder
  (``python -m kiosk.player.transcode``) as a child process, which must work there too, and
  so must the movie maker's (``python -m kiosk.player.moviemaker``: Pillow, BudouX, the font).

Both install one wheel built from this tree (not an editable install), so it also proves
that the gettext catalogs are compiled at build time. The two environments are made side by
side: most of an install is waiting on downloads, and CI's time is short. CI runs this
(.ci/run); exit 0 only when both environments are right.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import venv
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "kiosk": {
        "forbidden": {"fastapi", "uvicorn", "psycopg", "psycopg-binary", "jinja2", "starlette"},
        "check": "import kiosk.app.runtime, kiosk.sync.uploader, kiosk.player.player, kiosk.reader.nfcpy_backend, "
                 "kiosk.payment.square, kiosk.ui.i18n as i; "
                 "assert i.gettext_for('ja')('Thank you!') != 'Thank you!', 'ja catalog not compiled'",
    },
    "portal": {
        "forbidden": {"pygame-ce", "nfcpy", "segno", "pyusb", "libusb1"},
        "check": "import server_sync.app as a, server_sync.i18n as i, subprocess, sys; a.create_app('sqlite://'); "
                 "assert i.translations('ja').gettext('Home') != 'Home', 'ja catalog not compiled'; "
                 "r = subprocess.run([sys.executable, '-m', 'kiosk.player.transcode', '--help'], capture_output=True); "
                 "assert r.returncode == 0, r.stderr; "
                 # The movie maker's child (Pillow, BudouX, the vendored font, PyAV) works there too.
                 "r = subprocess.run([sys.executable, '-c', 'import kiosk.player.moviemaker as m; "
                 "print(m.card([(\"寄付\", 0.1, True)], (64, 36), (0, 0, 0)).size, "
                 "m.wrap(\"ありがとう\", 12, 99)[0])'], "
                 "capture_output=True, text=True); assert r.returncode == 0 and '(64, 36)' in r.stdout, r.stderr",
    },
}


def installed(python: Path) -> set[str]:
    out = subprocess.run([python, "-m", "pip", "list", "--format=freeze"], check=True, capture_output=True,
                         text=True).stdout
    return {line.split("==")[0].lower() for line in out.splitlines() if "==" in line}


def build_wheel(base: Path) -> Path:
    """This tree as one wheel in ``base``/wheel (its own isolated build, as any user's pip would make it)."""
    out = base / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, ROOT], check=True,
                   capture_output=True, text=True)
    (wheel,) = out.glob("*.whl")
    return wheel


def check(extra: str, base: Path, wheel: Path) -> list[str]:
    env_dir = base / extra
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    r = subprocess.run([python, "-m", "pip", "install", "-q", f"{wheel}[{extra}]"], capture_output=True, text=True)
    if r.returncode != 0:
        return [f"[{extra}] pip install failed:\n{r.stderr[-2000:]}"]
    problems = []
    leaked = sorted(installed(python) & CASES[extra]["forbidden"])
    if leaked:
        problems.append(f"[{extra}] installs {', '.join(leaked)}, which belong to the other side")
    r = subprocess.run([python, "-c", CASES[extra]["check"]], capture_output=True, text=True, cwd=base)
    if r.returncode != 0:
        problems.append(f"[{extra}] import check failed:\n{r.stderr[-2000:]}")
    print(f"extras: [{extra}] {'ok' if not problems else 'FAILED'} ({len(installed(python))} packages)", flush=True)
    return problems


def check_all(base: Path) -> list[str]:
    try:
        wheel = build_wheel(base)
    except subprocess.CalledProcessError as e:
        return [f"building the wheel failed:\n{e.stderr[-2000:]}"]
    with ThreadPoolExecutor(len(CASES)) as pool:
        results = list(pool.map(lambda extra: check(extra, base, wheel), CASES))
    return [p for problems in results for p in problems]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="build the environments here and keep them")
    args = ap.parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        problems = check_all(args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="extras-") as d:
            problems = check_all(Path(d))
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
