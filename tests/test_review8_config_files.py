"""A config file the kiosk cannot read, or cannot find: what ``kiosk doctor --config FILE`` says.

Defects: a file the kiosk user may not read said only "cannot read file: Permission denied" (not which user, nor
the owner and mode it needs); a missing file got no "did you mean" for the file beside it with a slip in its name
(``kiosk.tml``, ``kiosk.toml.txt``, ``Kiosk.toml``).

The permission cases are real: the tests run as root, who may read anything, so ``kiosk doctor`` runs in a child
process that has given up root's CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (it cannot become another user: the
interpreter lives under /root), on files and folders of the user ``nobody``: the kernel refuses it as it refuses
the kiosk user a file of root's. Not root: the child is this user, on a file or folder of mode 000.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.cli import main

ROOT = Path(__file__).resolve().parents[1]
KIOSK_USER = re.search(r"^User=(\S+)$", (ROOT / "systemd/kiosk.service").read_text(), re.M).group(1)  # type: ignore[union-attr]
"""The user the kiosk runs as: the service's ``User=``."""
BODY = '[kiosk]\nid = "center-1"\ndata_dir = "data"\n'
NOBODY = 65534


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder in /tmp anyone may enter (pytest's own tmp_path is inside a folder only its owner may enter)."""
    d = Path(tempfile.mkdtemp(prefix="r8cfg-", dir="/tmp"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d)


CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2
PR_CAPBSET_DROP = 24


def _subject_to_permissions() -> None:
    """In the child, before exec: root gives up the two capabilities that let it read any file and enter any
    folder, so the kernel checks modes and owners for it as for any other user."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def not_ours(path: Path, mode: int) -> None:
    """``path`` with ``mode``, owned by another user than the one the child runs as (root: nobody's)."""
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)
        path.chmod(mode)
    else:
        path.chmod(0)


def doctor_subject_to_permissions(path: Path) -> tuple[int, str, str]:
    """``kiosk doctor --config PATH`` in a child the kernel checks permissions for; exit code, stderr, user name."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-m", "kiosk", "doctor", "--config", str(path)], env=env, cwd="/",
                          capture_output=True, text=True, timeout=60, preexec_fn=_subject_to_permissions)
    return proc.returncode, proc.stderr, pwd.getpwuid(os.geteuid()).pw_name


def test_a_file_the_kiosk_user_may_not_read_says_who_and_the_owner_and_mode_it_needs(open_dir):
    cfg = open_dir / "kiosk.toml"
    cfg.write_text(BODY)
    not_ours(cfg, 0o600)  # another user's own file, as cp or an editor with umask 077 leaves it
    code, err, user = doctor_subject_to_permissions(cfg)
    assert code == 2, err
    assert "Traceback" not in err
    (problem,) = [line for line in err.splitlines() if line.startswith("    ")]  # the English line, under the Japanese
    assert "cannot read file: Permission denied" in problem
    assert f'read as user "{user}"' in problem
    assert f'the kiosk runs as user "{KIOSK_USER}"' in problem
    assert f"sudo chown root:{KIOSK_USER} {cfg} && sudo chmod 640 {cfg}" in problem
    assert "chmod 750" not in problem  # the folder is fine: no fix for it


def test_a_folder_the_kiosk_user_may_not_enter_gets_its_own_fix(open_dir):
    folder = open_dir / "kiosk"
    folder.mkdir()
    cfg = folder / "kiosk.toml"
    cfg.write_text(BODY)
    cfg.chmod(0o644)
    not_ours(folder, 0o700)  # /etc/kiosk made by hand with umask 077
    try:
        code, err, user = doctor_subject_to_permissions(cfg)
    finally:
        folder.chmod(0o755)
    assert code == 2, err
    (problem,) = [line for line in err.splitlines() if line.startswith("    ")]  # the English line, under the Japanese
    assert f'read as user "{user}"' in problem
    assert f"sudo chown root:{KIOSK_USER} {folder} && sudo chmod 750 {folder}" in problem


def test_a_closed_folder_further_up_is_named_without_a_chmod_of_it(open_dir):
    """A config under someone's home folder (mode 700): its owner and mode are that person's business, not the
    kiosk's, so the fix is to keep the config where the installer puts it."""
    home = open_dir / "home"
    (home / "kiosk").mkdir(parents=True)
    cfg = home / "kiosk" / "kiosk.toml"
    cfg.write_text(BODY)
    not_ours(home, 0o700)
    try:
        code, err, user = doctor_subject_to_permissions(cfg)
    finally:
        home.chmod(0o755)
    assert code == 2, err
    (problem,) = [line for line in err.splitlines() if line.startswith("    ")]  # the English line, under the Japanese
    assert f'(read as user "{user}"); the folder {home} is closed to that user' in problem
    assert "/etc/kiosk/kiosk.toml" in problem and "chmod" not in problem


def test_the_owner_and_mode_are_the_ones_the_installer_sets():
    """One story everywhere: systemd/install.sh (0640 root:kiosk, folder 0750), docs/deploy.md, the service's
    User= and the fix the error prints (the tests above)."""
    install = (ROOT / "systemd/install.sh").read_text()
    assert re.search(r'install -m 0640 "\$SRC/config/kiosk.example.toml" "\$R/etc/kiosk/kiosk.toml"', install)
    assert 'chmod 0750 "$R/etc/kiosk"' in install
    assert f"chown root:{KIOSK_USER} /etc/kiosk /etc/kiosk/kiosk.toml" in install
    assert f"mode 0640 root:{KIOSK_USER}" in (ROOT / "docs/deploy.md").read_text()
    for unit in ("kiosk-sync.service", "kiosk-closeout.service"):
        assert f"User={KIOSK_USER}\n" in (ROOT / "systemd" / unit).read_text()


@pytest.mark.parametrize("near", ["kiosk.tml", "kiosk.toml.txt", "Kiosk.toml", "kiosk .toml"])
def test_a_missing_file_gets_a_did_you_mean_for_the_file_beside_it(tmp_path, capsys, near):
    (tmp_path / near).write_text(BODY)
    (tmp_path / "notes.txt").write_text("not a config\n")
    assert main(["doctor", "--config", str(tmp_path / "kiosk.toml")]) == 2
    err = capsys.readouterr().err
    assert f"    file does not exist (did you mean {tmp_path / near}?)" in err.splitlines(), err


def test_a_missing_file_with_nothing_like_it_beside_it_gets_no_guess(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "kiosk.toml.d").mkdir()  # a folder is not a config file
    assert main(["doctor", "--config", str(tmp_path / "kiosk.toml")]) == 2
    assert "    file does not exist" in capsys.readouterr().err.splitlines()


def test_a_missing_folder_is_named(tmp_path, capsys):
    (tmp_path / "kiosk").mkdir()
    assert main(["doctor", "--config", str(tmp_path / "kiosks" / "kiosk.toml")]) == 2
    err = capsys.readouterr().err
    assert f"    file does not exist: there is no folder {tmp_path / 'kiosks'} (did you mean {tmp_path / 'kiosk'}?)" \
        in err.splitlines(), err
