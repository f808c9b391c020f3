"""Reading a config file: its bytes, its TOML, and the error that reports what is wrong with it.

Standard library only, like :mod:`kiosk.config.plain`: ``kiosk run`` reads its file and reports a bad one
without importing pydantic, which a start from the validated-config cache never needs (cold start, #16).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kiosk.config import problems as pk
from kiosk.config.problems import Problem

ENV_VAR = "KIOSK_CONFIG"

KIOSK_USER = "kiosk"
"""The user the kiosk runs as (``User=`` of systemd/kiosk.service). It reads its config, owner root and mode 640,
through its group; the folder /etc/kiosk is root:kiosk 750 (systemd/install.sh, docs/deploy.md)."""

NEAR_NAMES_SCANNED = 1000
"""At most this many names of a folder are compared with a missing file's name (a "did you mean")."""


class ConfigError(Exception):
    """A config file that cannot be used. ``str()`` is the full report. ``problems``: each problem's English
    line; ``details``: the same problems as :class:`~kiosk.config.problems.Problem` (kind, place, figures), from
    which the fault screen says them in plain Japanese. A problem given as a string is of kind ``other``."""

    def __init__(self, path: str, problems: Sequence[str | Problem]):
        self.path = path
        self.details = [p if isinstance(p, Problem) else pk.other(p) for p in problems]
        self.problems = [p.text for p in self.details]
        n = len(self.problems)
        lines = [f"config {path}: {n} problem{'s' if n != 1 else ''}"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))

    def report(self, tr: pk.Translate) -> str:
        """The report for a terminal (``kiosk doctor``, ``kiosk run`` by hand), Japanese first: the file and the
        count, then each problem in plain Japanese (:meth:`~kiosk.config.problems.Problem.say`, as the lobby's
        fault screen words it) with its English line (``str()``'s) on the next line, for whoever is called.
        ``tr``: the screens' Japanese gettext function (kiosk/ui/i18n.py; this package does not import the UI).
        The English header stays, as ``str()`` has it, under the Japanese one."""
        n = len(self.details)
        head = tr("Problems found: {n}").format(n=n)
        if self.path != "(none)":  # no file named: the problem says so
            head = tr("Config file: {path}").format(path=self.path) + "  " + head
        lines = [head, str(self).partition("\n")[0]]
        for p in self.details:
            lines += [f"  - {p.say(tr)}", f"    {p.text}"]
        return "\n".join(lines)


def read_config_bytes(path: str | os.PathLike | None = None) -> tuple[Path, bytes]:
    """The file named by ``path`` (or ``$KIOSK_CONFIG``) and its bytes; :class:`ConfigError` if it cannot be read."""
    if path is None:
        path = os.environ.get(ENV_VAR)
        if not path:
            raise ConfigError("(none)", [Problem(pk.NO_FILE,
                                                 f"no config file given: pass --config FILE or set {ENV_VAR}")])
    p = Path(path)
    try:
        return p, p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(p), [_missing(p)]) from None
    except PermissionError as exc:
        raise ConfigError(str(p), [_unreadable(p, exc)]) from None
    except OSError as exc:
        raise ConfigError(str(p), [Problem(pk.UNREADABLE, f"cannot read file: {exc.strerror or exc}",
                                           figures={"path": str(p), "user": None})]) from None


def _near_name(folder: Path, name: str, *, folders: bool) -> str | None:
    """The name in ``folder`` closest to ``name`` (a slip: ``kiosk.tml``, ``kiosk.toml.txt``, ``Kiosk.toml``), of
    a folder or of a file as ``folders`` says; None when nothing is close or the folder cannot be listed."""
    names: list[str] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    if entry.is_dir() == folders:
                        names.append(entry.name)
                except OSError:
                    continue
                if len(names) >= NEAR_NAMES_SCANNED:
                    break
    except OSError:
        return None
    same_but_case = [n for n in names if n.lower() == name.lower()]
    if same_but_case:
        return same_but_case[0]
    added_to = sorted(n for n in names if n.startswith(name + "."))  # kiosk.toml.txt: an editor's extension
    if added_to:
        return added_to[0]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.8)
    return close[0] if close else None


def _missing(p: Path) -> Problem:
    """"file does not exist", with the folder that is missing, if one is, and a "did you mean"."""
    missing = p
    for parent in reversed(p.parents):  # top down: the first folder on the way that is not there
        if parent != Path(".") and not parent.is_dir():
            missing = parent
            break
    near = _near_name(missing.parent, missing.name, folders=missing is not p)
    hint = f" (did you mean {missing.parent / near}?)" if near else ""
    # near: a file's name in the same folder; a folder by its whole path
    figures = {"path": str(p), "folder": str(missing) if missing is not p else None,
               "near": (near if missing is p else str(missing.parent / near)) if near else None}
    if missing is not p:
        return Problem(pk.FILE_MISSING, f"file does not exist: there is no folder {missing}{hint}", figures=figures)
    return Problem(pk.FILE_MISSING, f"file does not exist{hint}", figures=figures)


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return str(os.geteuid())


def _closed_folder(p: Path) -> Path | None:
    """The folder on the way to ``p`` that this process may not enter, if one is why it cannot read ``p``."""
    p = p.absolute()
    for step in [*reversed(p.parents), p][1:]:
        try:
            os.stat(step)
        except PermissionError:
            return step.parent
        except OSError:
            return None
    return None


def _unreadable(p: Path, exc: OSError) -> Problem:
    """Who could not read it, the user the kiosk runs as, and the owner and mode that let it (docs/deploy.md)."""
    who = _user()
    figures = {"path": str(p), "user": who}
    text = f'cannot read file: {exc.strerror or exc} (read as user "{who}")'
    folder = _closed_folder(p)
    if folder is not None and folder != p.absolute().parent:
        return Problem(pk.UNREADABLE, f"{text}; the folder {folder} is closed to that user: keep the config where "
                       f"the kiosk can read it, as /etc/kiosk/kiosk.toml (docs/deploy.md)", figures=figures)
    fixes = [f"sudo chown root:{KIOSK_USER} {folder} && sudo chmod 750 {folder}"] if folder is not None else []
    fixes.append(f"sudo chown root:{KIOSK_USER} {p} && sudo chmod 640 {p}")
    text += (f'; the kiosk runs as user "{KIOSK_USER}" and reads it through the group {KIOSK_USER}: the file must be '
             f"owner root, group {KIOSK_USER}, mode 640"
             + (f", in a folder of owner root, group {KIOSK_USER}, mode 750" if folder is not None else "")
             + ": " + " && ".join(fixes))
    if who != KIOSK_USER:
        text += f" (then run kiosk commands as that user: sudo -u {KIOSK_USER} kiosk …)"
    return Problem(pk.UNREADABLE, text, figures=figures)


def parse_toml(p: Path, raw: bytes) -> dict[str, Any]:
    """The TOML mapping of a config file's bytes; :class:`ConfigError` for text that is not UTF-8 TOML."""
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(str(p), [Problem(pk.NOT_UTF8, f"not UTF-8 text: {exc.reason} at byte {exc.start}",
                                           figures={"line": line})]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), [Problem(pk.TOML_SYNTAX, f"TOML syntax: {exc}", figures=_toml_where(exc))]) from None


def _toml_where(exc: tomllib.TOMLDecodeError) -> dict[str, int | None]:
    """The line and column of a TOML error (attributes from Python 3.14; before, only in tomllib's message)."""
    line, column = getattr(exc, "lineno", None), getattr(exc, "colno", None)
    if line is None:
        at = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        if at:
            line, column = int(at.group(1)), int(at.group(2))
    return {"line": line, "column": column}
