"""Gettext catalogs are compiled when the package is built (setup.py), and read at run time without Babel."""

from __future__ import annotations

import gettext
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CATALOGS = ["kiosk/ui/locale/ja/LC_MESSAGES/kiosk", "kiosk/ui/locale/en/LC_MESSAGES/kiosk",
            "server_sync/locale/ja/LC_MESSAGES/portal", "server_sync/locale/en/LC_MESSAGES/portal"]

# Runs setup.py's build_py the way setuptools does: editable installs set editable_mode on it first.
BUILD_PY = """
import sys
import setuptools  # noqa: F401  (first: its distutils is the one setup.py's command extends)
from distutils.core import run_setup

dist = run_setup("setup.py", stop_after="config")
cmd = dist.get_command_obj("build_py")
cmd.build_lib = sys.argv[1]
cmd.editable_mode = sys.argv[2] == "editable"
cmd.ensure_finalized()
cmd.run()
print("\\n".join(cmd.get_outputs()))
"""


def test_runtime_i18n_of_kiosk_and_portal_does_not_import_babel():
    code = (
        "import sys\n"
        "from kiosk.ui.i18n import gettext_for\n"
        "assert gettext_for('ja')('Thank you!') == 'ありがとうございます！'\n"
        "from server_sync import pages\n"
        "html = pages.index({'count': 0, 'total_yen': 0}, [], [], [], 'ja') + pages.login_page()\n"
        "assert 'みんなの寄付' in html and '職員ログイン' in html\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'babel'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.fixture
def source_copy(tmp_path: Path) -> Path:
    """The parts of the checkout a build reads, without any .mo an earlier install left."""
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.mo")
    for pkg in ("kiosk", "server_sync"):
        shutil.copytree(ROOT / pkg, src / pkg, ignore=ignore)
    for f in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / f, src / f)
    return src


def _build_py(src: Path, build_lib: Path, mode: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", BUILD_PY, str(build_lib), mode], capture_output=True, text=True,
                         timeout=120, cwd=src)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def _greeting(mo: Path) -> tuple[str, str]:
    with mo.open("rb") as f:
        t = gettext.GNUTranslations(f)
    return t.gettext("Thank you!"), t.gettext("Home")


def test_a_wheel_build_compiles_every_catalog_into_the_build_directory(source_copy, tmp_path):
    build = tmp_path / "build"
    outputs = _build_py(source_copy, build, "wheel")
    for c in CATALOGS:
        assert (build / f"{c}.po").is_file() and (build / f"{c}.mo").is_file(), c
        assert str(build / f"{c}.mo") in outputs, c
    assert _greeting(build / f"{CATALOGS[0]}.mo")[0] == "ありがとうございます！"
    assert _greeting(build / f"{CATALOGS[2]}.mo")[1] == "トップへ"
    assert (build / "server_sync" / "templates" / "base.html").is_file()
    assert not list(source_copy.rglob("*.mo")), "a wheel build must leave the source tree alone"


def test_an_editable_build_compiles_beside_the_po_files(source_copy, tmp_path):
    build = tmp_path / "build"
    _build_py(source_copy, build, "editable")
    for c in CATALOGS:
        assert (source_copy / f"{c}.mo").is_file(), c
    assert _greeting(source_copy / f"{CATALOGS[2]}.mo")[1] == "トップへ"
    assert _greeting(source_copy / f"{CATALOGS[3]}.mo")[1] == "Home"
    assert not list(build.rglob("*.mo")), "an editable install reads the source tree, not the build directory"
