"""A config problem as data: its kind, the setting it is at and its figures, so it can be said in plain Japanese.

A problem's English line (:attr:`Problem.text`) is for an engineer; the journal has it. The lobby's fault
screen (kiosk/app/config_fault.py), and ``kiosk doctor`` and ``kiosk run`` started by hand at a terminal
(:meth:`kiosk.config.files.ConfigError.report`, printed by kiosk/cli.py), are read by center staff, who are
not engineers and read Japanese: they show :meth:`Problem.say` first, made from the problem's kind,
place and figures (never by reading the English line back), through the screens' gettext catalog
(kiosk/ui/locale; the English message ids are here, the Japanese there). This module only names the message
ids and fills them in with the translation function it is given: it imports neither the UI nor pydantic
(standard library only, like :mod:`kiosk.config.files`, which makes the problems of reading a file).

Kinds (:data:`KINDS`), with their figures:

======================  ==============================================================================
``no_file``             no file named at all
``file_missing``        ``path``; ``folder``: a folder on the way that is missing; ``near``: a file of a
                        close name in the same folder (its name), or a folder (its path): "did you mean"
``unreadable``          ``path``; ``user`` who may not read it (None: another read error)
``not_utf8``            ``line`` of the first byte that is not UTF-8
``toml_syntax``         ``line`` and ``column`` (None when TOML did not say)
``unknown_key``         ``suggest``: the closest valid name, or None; ``top_key``: a key above every section
``missing_key``         (none)
``wrong_type``          ``expected`` (a key of :data:`EXPECTED`), ``table`` (for ``table``/``tables``), ``got``
``out_of_range``        ``bound`` (min, above, max, below), ``limit``, ``measure`` (value, chars, items), ``got``
``not_a_choice``        ``choices``, ``suggest``, ``got``
``default_not_preset``  ``default``, ``presets``: ``default_yen`` not one of ``presets_yen``
``preset_over_max``     ``preset``, ``max``: a preset above ``max_per_transaction_yen``
``square_no_location``  (none): ``terminal = "square"`` without ``[payment.square] location_id``
``lockout_order``       ``base``, ``max``: ``lockout_max_s`` below ``lockout_base_s``
``points_over_max``     ``points``, ``max``: an activity's ``points`` above its ``max_points``
``empty_window``        ``start``, ``end``: a time window that is never open
``duplicate_ids``       ``repeats``: ``[n, first, id]`` for each entry (from 1) whose id entry ``first`` has
``other``               ``suggest`` or nothing: anything else (a format, a value a key's own check refused)
======================  ==============================================================================

The kinds from ``default_not_preset`` to ``duplicate_ids`` are the checks of keys against each other
(kiosk/config/base.py, ``cross_check`` and ``check_items``): they raise :class:`CheckFailed`, which carries
the kind and the figures as the check saw them, and say both keys and what to change.

``got`` is the value as written in the file (a TOML literal), or None when it must not be repeated (the PIN
hash key: staff write the PIN itself there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Translate = Callable[[str], str]

NO_FILE = "no_file"
FILE_MISSING = "file_missing"
UNREADABLE = "unreadable"
NOT_UTF8 = "not_utf8"
TOML_SYNTAX = "toml_syntax"
UNKNOWN_KEY = "unknown_key"
MISSING_KEY = "missing_key"
WRONG_TYPE = "wrong_type"
OUT_OF_RANGE = "out_of_range"
NOT_A_CHOICE = "not_a_choice"
DEFAULT_NOT_PRESET = "default_not_preset"
PRESET_OVER_MAX = "preset_over_max"
SQUARE_NO_LOCATION = "square_no_location"
LOCKOUT_ORDER = "lockout_order"
POINTS_OVER_MAX = "points_over_max"
EMPTY_WINDOW = "empty_window"
DUPLICATE_IDS = "duplicate_ids"
OTHER = "other"
CROSS_KINDS = (DEFAULT_NOT_PRESET, PRESET_OVER_MAX, SQUARE_NO_LOCATION, LOCKOUT_ORDER, POINTS_OVER_MAX, EMPTY_WINDOW,
               DUPLICATE_IDS)
"""The kinds of the checks of keys against each other."""
KINDS = (NO_FILE, FILE_MISSING, UNREADABLE, NOT_UTF8, TOML_SYNTAX, UNKNOWN_KEY, MISSING_KEY, WRONG_TYPE,
         OUT_OF_RANGE, NOT_A_CHOICE, *CROSS_KINDS, OTHER)

ARRAYS_OF_TABLES = frozenset({"projects", "playlist", "slides", "activities", "windows"})
"""Keys written as ``[[name]]`` tables (a place in one is "the 2nd [[projects]]")."""

CALL = "Please call the person who set up the kiosk."


@dataclass(frozen=True)
class Msg:
    """An English message id and its figures; a figure may be a :class:`Msg` itself (translated first)."""

    msgid: str
    figures: Mapping[str, Any] = field(default_factory=dict)

    def say(self, tr: Translate) -> str:
        return tr(self.msgid).format(**{k: v.say(tr) if isinstance(v, Msg) else v for k, v in self.figures.items()})


def _m(msgid: str, **figures: Any) -> Msg:
    return Msg(msgid, figures)


# The values a setting takes, as ``wrong_type`` names them.
EXPECTED = {
    "text": 'text in quotes ("...")',
    "integer": "a whole number",
    "number": "a number",
    "bool": "true or false",
    "list": "a list in [ ]",
    "path": 'a file or folder path in quotes ("...")',
    "table": "a [{table}] section with its keys under it",
    "tables": "[[{table}]] sections, with double brackets",
}

_RANGE = {
    ("min", "value"): "{place} must be {limit} or more.",
    ("above", "value"): "{place} must be more than {limit}.",
    ("max", "value"): "{place} must be {limit} or less.",
    ("below", "value"): "{place} must be less than {limit}.",
    ("min", "chars"): "{place} must be at least {limit} characters long.",
    ("max", "chars"): "{place} must be at most {limit} characters long.",
    ("min", "items"): "{place} needs at least {limit} items.",
    ("max", "items"): "{place} may have at most {limit} items.",
}


def place(loc: tuple[str | int, ...], *, top_key: bool = False) -> Msg | str:
    """Where a problem is, as staff find it in the file: ``[player]`` and its key ``volume``, the 2nd
    ``[[projects]]`` and its key ``id``; list positions counted from 1. An entry of ``[[table]]`` inside an
    entry of another names every level: the 1st ``[[player.playlist.windows]]`` under the 2nd
    ``[[player.playlist]]``. ``top_key``: a one-part ``loc`` is a key above every ``[section]`` (not a section)."""
    if not loc:
        return _m("the file as a whole")
    ints = [i for i, part in enumerate(loc) if isinstance(part, int)]
    entries = [i for i in ints if i and loc[i - 1] in ARRAYS_OF_TABLES]  # the counts of [[table]] entries
    if len(entries) > 1:
        # An entry of [[table]] in an entry of another (a window of the 2nd [[player.playlist]]): the entry it
        # is in first, its own count being inside that entry ("1番目の [[player.playlist.windows]]" alone fits
        # a window of every entry). The inner part is named from the full header, as the file writes it.
        i = entries[0]
        inner = place((*loc[:i], *loc[i + 1:]))
        return _m("{place} under [[{table}]] no. {n}", place=inner, n=int(loc[i]) + 1,
                  table=".".join(str(p) for p in loc[:i] if isinstance(p, str)))
    if not ints:
        if len(loc) == 1:
            return _m("{key} at the top of the file", key=str(loc[0])) if top_key else f"[{loc[0]}]"
        return _m("{key} in [{table}]", key=str(loc[-1]), table=".".join(str(p) for p in loc[:-1]))
    i = ints[-1]
    n = int(loc[i]) + 1
    names = [str(p) for p in loc[:i] if isinstance(p, str)]
    rest = ".".join(str(p) for p in loc[i + 1:])
    if names and names[-1] in ARRAYS_OF_TABLES:  # an entry of [[table]] (or a key in it)
        table = ".".join(names)
        if rest:
            return _m("{key} in [[{table}]] no. {n}", key=rest, table=table, n=n)
        return _m("[[{table}]] no. {n}", table=table, n=n)
    if entries and entries[-1] == i - 2:  # an item of a plain list in an entry of [[table]] (a window's days)
        return _m("item {n} of {key} in [[{table}]] no. {m}", key=names[-1], table=".".join(names[:-1]), n=n,
                  m=int(loc[i - 2]) + 1)
    if not names:
        return _m("item {n}", n=n)
    if len(names) == 1:
        return _m("item {n} of {key}", key=names[0], n=n)
    return _m("item {n} of {key} in [{table}]", key=names[-1], table=".".join(names[:-1]), n=n)


def toml_value(value: Any) -> str | None:
    """``value`` as it is written in a TOML file (a string in double quotes, true/false), shortened; None for
    a table or a list (not repeated: too long to read)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:39] + "…"
        return '"' + shown.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (dict, list, tuple)):
        return None
    return str(value)[:40]


def toml_list(values: Any) -> str:
    """A short list as it is written in a TOML file: ``[100, 500, 1000]``."""
    return "[" + ", ".join(toml_value(v) or str(v) for v in values) + "]"


class CheckFailed(ValueError):
    """What a check of keys against each other raises: ``str()`` is the English line (as pydantic reports a
    ``ValueError``), ``kind`` (one of :data:`CROSS_KINDS`) and ``figures`` (the values the check compared, as
    plain data) are what :class:`Problem` says it from. pydantic keeps the exception in its error's ``ctx``."""

    def __init__(self, kind: str, text: str, **figures: Any):
        super().__init__(text)
        self.kind = kind
        self.figures = figures

    def __reduce__(self) -> tuple[Any, ...]:  # pickled as it was made (the default would call it with the text only)
        return (_check_failed, (self.kind, str(self), dict(self.figures)))


def _check_failed(kind: str, text: str, figures: dict[str, Any]) -> CheckFailed:
    return CheckFailed(kind, text, **figures)


def repeats(items: list[Any]) -> list[list[Any]]:
    """``[n, first, id]`` for each of ``items`` (an ``id`` each; None: an entry not checked, still counted)
    whose id an earlier one has: its number and that earlier one's, from 1 (``duplicate_ids``)."""
    first: dict[str, int] = {}
    out: list[list[Any]] = []
    for n, item in enumerate(items, 1):
        if item is None:
            continue
        if item.id in first:
            out.append([n, first[item.id], item.id])
        else:
            first[item.id] = n
    return out


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config file. ``str()`` is the English line (``text``)."""

    kind: str
    text: str
    loc: tuple[str | int, ...] = ()
    figures: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text

    def words(self) -> list[Msg]:
        """The plain sentences that say it, as message ids and figures, in the order they are read."""
        f = self.figures
        where = place(self.loc, top_key=bool(f.get("top_key")))
        out: list[Msg] = []
        got = f.get("got")
        suggest = f.get("suggest")
        if self.kind == NO_FILE:
            out.append(_m("No settings file was named for the kiosk."))
        elif self.kind == FILE_MISSING:
            # The file's path is not repeated: the screen shows it above the problems (a long one filled the line)
            if f.get("folder"):
                out.append(_m("The settings file cannot be found: there is no folder {folder}.", folder=f["folder"]))
                if f.get("near"):
                    out.append(_m("There is a folder {near}, with a similar name: the name may be mistyped.",
                                  near=f["near"]))
            else:
                out.append(_m("The settings file cannot be found."))
                if f.get("near"):
                    out.append(_m("In the same folder there is {near}, with a similar name: the name may be "
                                  "mistyped.", near=f["near"]))
        elif self.kind == UNREADABLE:
            if f.get("user"):
                out.append(_m("The kiosk (user {user}) is not allowed to read the settings file.", user=f["user"]))
            else:
                out.append(_m("The settings file could not be read."))
        elif self.kind == NOT_UTF8:
            out.append(_m("Line {line} of the settings file has characters that cannot be read: save it as "
                          "UTF-8 text.", line=f["line"]))
        elif self.kind == TOML_SYNTAX:
            if f.get("line") is not None and f.get("column") is not None:
                out.append(_m("Something is written wrongly on line {line} of the settings file (at character "
                              "{column}).", line=f["line"], column=f["column"]))
            elif f.get("line") is not None:
                out.append(_m("Something is written wrongly on line {line} of the settings file.", line=f["line"]))
            else:
                out.append(_m("Something is written wrongly in the settings file."))
            out.append(_m("Look for a missing or extra sign such as = \" [ ]."))
        elif self.kind == UNKNOWN_KEY:
            out.append(_m("The kiosk has no setting {place}.", place=where))
        elif self.kind == MISSING_KEY:
            out.append(_m("{place} must be written, but it is missing.", place=where))
        elif self.kind == WRONG_TYPE:
            expected = _m(EXPECTED.get(f.get("expected", ""), "a value of another kind"), table=f.get("table", ""))
            out.append(_m("{place} must be {expected}.", place=where, expected=expected))
        elif self.kind == OUT_OF_RANGE:
            msgid = _RANGE.get((f.get("bound", ""), f.get("measure", "value")))
            if msgid is None:
                out.append(_m("{place} is not right.", place=where))
            else:
                out.append(_m(msgid, place=where, limit=f.get("limit")))
        elif self.kind == NOT_A_CHOICE:
            choices = " / ".join(toml_value(c) or str(c) for c in f.get("choices", ()))
            out.append(_m("{place} must be one of these: {choices}.", place=where, choices=choices))
        elif self.kind in CROSS_KINDS:
            out += self._cross(where)
        else:
            out.append(_m("{place} is not right.", place=where) if self.loc
                       else _m("Something in the settings file is not right."))
        if got is not None and self.kind in (WRONG_TYPE, OUT_OF_RANGE, NOT_A_CHOICE, OTHER) \
                and f.get("measure", "value") == "value":
            out.append(_m("It now says {got}.", got=got))
        if suggest and self.kind in (UNKNOWN_KEY, NOT_A_CHOICE, OTHER):
            out.append(_m("Perhaps {suggest} was meant.", suggest=toml_value(suggest) if self.kind != UNKNOWN_KEY
                          else suggest))
        if self.kind in (OTHER, NO_FILE):
            out.append(_m(CALL))
        return out

    def _cross(self, where: Msg | str) -> list[Msg]:
        """A check of keys against each other: both keys as written in the file, their values, what to change."""
        f = self.figures

        def v(name: str) -> str:
            return toml_value(f.get(name)) or str(f.get(name))

        if self.kind == DEFAULT_NOT_PRESET:
            return [_m("In {place}, default_yen (now {default}) must be one of presets_yen {presets}.",
                       place=where, default=v("default"), presets=toml_list(f.get("presets", ())))]
        if self.kind == PRESET_OVER_MAX:
            return [_m("In {place}, the amount {preset} in presets_yen is more than max_per_transaction_yen (now "
                       "{max}): make the amounts in presets_yen {max} or less, or max_per_transaction_yen {preset} "
                       "or more.", place=where, preset=v("preset"), max=v("max"))]
        if self.kind == SQUARE_NO_LOCATION:
            return [_m('With terminal = "square" in {place}, {location} must be written (the ID shown under '
                       'Locations in the Square Dashboard).', place=where,
                       location=place((*self.loc, "square", "location_id")))]
        if self.kind == LOCKOUT_ORDER:
            return [_m("In {place}, lockout_max_s (now {max}) must be lockout_base_s (now {base}) or more.",
                       place=where, max=v("max"), base=v("base"))]
        if self.kind == POINTS_OVER_MAX:
            return [_m("In {place}, points (now {points}) must be max_points (now {max}) or less.",
                       place=where, points=v("points"), max=v("max"))]
        if self.kind == EMPTY_WINDOW:
            if f.get("start") == "24:00":
                return [_m('In {place}, start is "24:00", so the window is never open: make start a time from '
                           '"00:00" to "23:59" ("24:00" can only be an end).', place=where)]
            return [_m('In {place}, start and end are the same time ({start}), so the window is never open: make '
                       'end another time (for the whole day, start = "00:00" and end = "24:00").',
                       place=where, start=v("start"))]
        # DUPLICATE_IDS: the list's place is its key; each entry by its number, as in [[projects]] no. 2
        table = ".".join(str(p) for p in self.loc)
        out = [_m("The id of {place} ({id}) is the same as that of no. {first}.",
                  place=place((*self.loc, int(n) - 1)), id=toml_value(i) or str(i), first=first)
               for n, first, i in f.get("repeats", ())]
        out.append(_m("Give each [[{table}]] an id of its own.", table=table))
        return out

    def say(self, tr: Translate) -> str:
        """The problem in plain words, in ``tr``'s language (a gettext function of the screens' catalog)."""
        text = ""
        for sentence in (m.say(tr) for m in self.words()):
            # Japanese sentences follow each other as they are; English ones after a space
            text += sentence if not text or not text[-1].isascii() else " " + sentence
        return text


def other(text: str) -> Problem:
    """A problem known only by its English line (from a caller that made one by hand)."""
    return Problem(OTHER, text)
