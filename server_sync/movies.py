"""The movie maker's portal side: photos received and checked, a movie job queued, published or discarded,
and each project's published movie and poster frame for the public pages.

A group editor sends 3–10 photos with a caption each and picks a project (``server_sync/moviemaker_ui.py``
has the pages). The photos are streamed straight into the job spool (``job-<id>.photo<N>``), each one
and all together under a size limit, and checked by a child process (``python -m kiosk.player.moviemaker
check``: the format, the size in pixels read from the header before decoding, then a full decode). Any
problem answers with a message per photo and removes every spooled file: no job, no row, no temp file.
A good set becomes one media job of kind ``movie`` (server_sync/mediajobs.py: the same worker, child
process protocol and progress as an uploaded video). When it is done the movie and its poster frame are
in ``portal_media`` for the preview; publishing adds its ``portal_media_info`` row, which makes it a
media item that staff can put in a playlist, and the project's movie on the public pages.

For the public pages (:func:`published_movies`, :func:`published_movie`): the newest published media item
of each project, a movie made here or an uploaded video, with ``/api/v1/media/<sha>`` URLs for the movie
and its poster frame (a JPEG).
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import time
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Engine

from server_sync import catalog, configstore, mediajobs
from server_sync.db import configs, kiosk_info, media, media_info, media_jobs, writing
from server_sync.glyphs import undrawable
from server_sync.i18n import N_
from server_sync.wire.numbers import decimal

log = logging.getLogger(__name__)

MIN_PHOTOS, MAX_PHOTOS = 3, 10  # the renderer (kiosk/player/moviemaker.py) checks the same bounds
PHOTO_LIMIT = 25 * 1024 * 1024
"""One photo at most (a phone's JPEG is 2–8 MB)."""
FORM_LIMIT = MAX_PHOTOS * PHOTO_LIMIT + 256 * 1024
MAX_CAPTION = 60
CHECK_TIMEOUT_S = 120
PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")

# Messages (gettext ids, translated at render time). %(n)s is the photo's number on the form.
TOO_FEW = N_("Choose at least %(min)s photos (at most %(max)s).")
TOO_LARGE_FILE = N_("Photo %(n)s is too large: at most %(mb)s MB a photo. Make it smaller on the phone or PC and "
                     "choose it again: on a PC, open it in Paint (or another picture program), make it smaller "
                     "and save it as a JPEG; on a phone, show the photo on the screen, take a screenshot and "
                     "choose that.")
TOO_LARGE_ALL = N_("The photos are too large together: at most %(mb)s MB a photo.")
NOT_IMAGE = N_("Photo %(n)s is not a photo the portal can read. Choose a JPEG, PNG or WebP picture.")
TOO_MANY_PIXELS = N_("Photo %(n)s has too many pixels (%(w)s × %(h)s, about %(mp)s MP): at most about %(max)s MP "
                     "(megapixels) a photo. On a phone, show the photo on the screen, take a screenshot and choose "
                     "that; on a PC, open it in Paint (or another picture program), make it smaller and save it as "
                     "a JPEG. For the next photos, a smaller photo size (fewer MP) in the camera's settings makes "
                     "them fit.")
"""The renderer's pixel limit (kiosk/player/moviemaker.py: about 210 MP for a phone's JPEG, which it decodes scaled
down; about 52 MP for a PNG, a WebP or a progressive JPEG, decoded whole), which the checker answers with. In
megapixels, the number a phone's camera settings show ("50 MP", "12 MP")."""
TOO_THIN = N_("Photo %(n)s is too long and thin (%(w)s × %(h)s pixels): its long side may be at most %(max)s times "
              "its short side. Crop it on the phone or PC and choose it again.")
CORRUPT = N_("Photo %(n)s is damaged and cannot be read. Check that it opens on the phone or PC, then choose it again "
             "or choose another photo.")
EMPTY = N_("Photo %(n)s is an empty file (0 bytes): there is no picture in it. The copy of the photo may not have "
          "worked. Check that the photo opens on the phone or PC, then choose it again or choose another photo.")
HEIC = N_("Photo %(n)s is an iPhone photo in the HEIC format, which the portal cannot read. Choose it again from the "
          "iPhone itself on this page (the iPhone then sends it as a JPEG), or save it as a JPEG on the PC first.")
"""A HEIF/HEIC file (an iPhone's usual photo format, often copied to a PC as-is): "not a photo" would puzzle
its owner, who took it with a camera; the message says how to send it so the portal can read it."""
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
CAPTION_LONG = N_("Too long: at most %(max)s characters.")
CAPTION_CONTROL = N_("Line breaks, tabs and invisible control characters cannot be used: write the caption on one "
                     "line.")
CAPTION_GLYPHS = N_("The movie cannot show these characters: %(chars)s. Emoji, circled numbers and some old-style "
                    "kanji would come out as empty boxes. Delete them or write them another way (a word for an "
                    "emoji, 1 for ①, 高 for 髙).")
"""A caption with characters the movie's font (the vendored Noto Sans JP subset) has no glyph for: the renderer
would draw each as an empty box (tofu) in a movie played in the lobby. Named, so the editor can change just those."""
CHECK_FAILED = N_("The photos could not be checked because of a problem on the portal, not necessarily with your "
                  "photos. Nothing was saved. Try again; if it keeps happening, tell the center staff.")
"""The checker child did not answer for every photo (killed, out of time, crashed). Its own words (a spool path, an
exception's text, an exit status) go to the log, never to the form; so does Pillow's detail of a damaged photo."""
BAD_FORM = N_("The form could not be read. Reload the page and try again.")
NO_ROOM = N_("The portal's disk is full or cannot be written to, so the photos could not be received. Nothing was "
             "saved. Tell the portal's administrator, and try again later.")
"""The spool could not take the photos (ENOSPC, EDQUOT, EROFS): the portal's fault, not the form's."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- receiving the form ------------------------------------------------------------------------------

class Refused(Exception):
    """The whole form is refused: ``(message id, variables, field or "")``; nothing is kept."""

    def __init__(self, msgid: str, field: str = "", status: int = 422, **variables: Any):
        super().__init__(msgid)
        self.msgid, self.field, self.status, self.variables = msgid, field, status, variables


@dataclass
class Received:
    fields: dict[str, str] = field(default_factory=dict)
    photos: dict[int, Path] = field(default_factory=dict)
    """Photo slot (0-based, as on the form) → its spooled file."""
    sizes: dict[int, int] = field(default_factory=dict)


async def receive(headers: Any, stream: AsyncIterator[bytes], spool: Path, job_id: str) -> Received:
    """Stream a ``multipart/form-data`` form: text fields into memory (small), ``photo<N>`` files straight
    into ``spool/job-<id>.photo<N>``. Over a limit, malformed, a spool that cannot take the photos (a full or
    read-only disk: :data:`NO_ROOM`, 507 or 503), or a dropped connection: every file of the job is removed and
    :class:`Refused` (or the connection's error) raised."""
    got = Received()
    try:
        await _receive(headers, stream, spool, job_id, got)
    except BaseException:
        discard(spool, job_id)
        raise
    return got


async def _no_room(stream: AsyncIterator[bytes], exc: OSError, read: int) -> Refused:
    """The rest of the form read and dropped (a browser that is still sending reads an answer, not a reset
    connection), up to the form's limit; then the refusal to answer with."""
    with contextlib.suppress(Exception):
        async for chunk in stream:
            read += len(chunk)
            if read > FORM_LIMIT + 64 * 1024:
                break
    log.error("photos for the movie maker not received: %s", exc)
    # 507 when the spool is full, 503 when it is read-only (server_sync/mediajobs.py decides, for every storage
    # error of the portal) or failing otherwise (EIO, EACCES): the portal's disk, not the form, is at fault.
    return Refused(NO_ROOM, status=mediajobs.storage_fault(exc) or mediajobs.READ_ONLY)


async def _receive(headers: Any, stream: AsyncIterator[bytes], spool: Path, job_id: str, got: Received) -> None:
    ctype, params = parse_options_header(headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise Refused(BAD_FORM, status=400)
    declared = headers.get("content-length", "")
    if (decimal(declared, leading_zeros=True) or 0) > FORM_LIMIT:
        raise Refused(TOO_LARGE_ALL, status=413, mb=PHOTO_LIMIT // (1024 * 1024))
    try:
        spool.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise await _no_room(stream, exc, 0) from exc
    state: dict[str, Any] = {"name": "", "header": b"", "value": b"", "disp": b"", "buf": bytearray(), "file": None,
                             "slot": -1, "total": 0}

    def on_part_begin() -> None:
        state.update(name="", disp=b"", buf=bytearray(), file=None, slot=-1)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        if state["header"].lower() == b"content-disposition":
            state["disp"] = state["value"]
        state["header"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _, opts = parse_options_header(state["disp"])
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        state["name"] = name
        if b"filename" in opts:
            slot = name[len("photo"):]
            if not (name.startswith("photo") and decimal(slot, 0, MAX_PHOTOS - 1) is not None):
                raise Refused(BAD_FORM, status=400)
            if not opts[b"filename"]:
                return  # an empty file input: the browser sends a part with no file name and no data
            state["slot"] = int(slot)
            path = spool / f"job-{job_id}.photo{int(slot)}"
            state["file"] = open(path, "wb")  # noqa: SIM115 - closed in on_part_end or on error below
            got.photos[int(slot)] = path
            got.sizes[int(slot)] = 0

    def on_part_data(data: bytes, start: int, end: int) -> None:
        n = end - start
        state["total"] += n
        if state["file"] is not None:
            slot = state["slot"]
            got.sizes[slot] += n
            if got.sizes[slot] > PHOTO_LIMIT:
                raise Refused(TOO_LARGE_FILE, f"photo{slot}", 413, n=slot + 1, mb=PHOTO_LIMIT // (1024 * 1024))
            state["file"].write(data[start:end])
        elif state["slot"] < 0 and state["name"].startswith("photo"):
            return  # the empty part of an unused file input
        else:
            if len(state["buf"]) + n > 16 * 1024:
                raise Refused(BAD_FORM, status=400)
            state["buf"] += data[start:end]

    def on_part_end() -> None:
        if state["file"] is not None:
            state["file"].close()
            state["file"] = None
        elif state["name"] and not state["name"].startswith("photo"):
            got.fields[state["name"]] = bytes(state["buf"]).decode("utf-8", "replace")

    parser = MultipartParser(params[b"boundary"], {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_part_end": on_part_end,
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished})
    try:
        async for chunk in stream:
            if state["total"] + len(chunk) > FORM_LIMIT + 64 * 1024:
                raise Refused(TOO_LARGE_ALL, status=413, mb=PHOTO_LIMIT // (1024 * 1024))
            try:
                parser.write(chunk)
            except OSError as exc:  # a photo's file could not be made or written: the disk, not the form
                if state["file"] is not None:
                    with contextlib.suppress(OSError):
                        state["file"].close()
                    state["file"] = None
                raise await _no_room(stream, exc, state["total"] + len(chunk)) from exc
        parser.finalize()
    except Refused:
        raise
    except Exception as exc:  # the parser's own errors: a malformed form
        raise Refused(BAD_FORM, status=400) from exc
    finally:
        if state["file"] is not None:
            state["file"].close()


def discard(spool: Path, job_id: str) -> None:
    for f in spool.glob(f"job-{job_id}.*"):
        try:
            f.unlink(missing_ok=True)
        except OSError as exc:  # a spool gone read-only: the job's sweep removes it later (mediajobs.MediaJobs)
            log.error("cannot remove %s: %s", f.name, exc)


# --- checking ------------------------------------------------------------------------------------------

CONTROL_CATEGORIES = ("Cc", "Cs", "Zl", "Zp")
"""Control characters (line breaks, tabs, U+0085), lone surrogates and the line and paragraph separators
(U+2028, U+2029, which a browser's ``<input>`` keeps when pasted): a caption is one line of text. The
renderer draws such characters as spaces (the group's name and the project's title come from elsewhere)."""
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Invisible marks that reorder the text around them: a caption that shows something other than what was typed."""


def has_control(text: str) -> bool:
    """Whether ``text`` has a character a caption may not contain (:data:`CONTROL_CATEGORIES`,
    :data:`BIDI_CONTROLS`)."""
    return any(unicodedata.category(ch) in CONTROL_CATEGORIES or ch in BIDI_CONTROLS for ch in text)


def caption_error(caption: str) -> tuple[str, dict[str, Any]] | None:
    """What is wrong with a caption (stripped), as a gettext id and its variables, or None: too long, a control
    character, a character the movie's font has no letter for."""
    if len(caption) > MAX_CAPTION:
        return CAPTION_LONG, {"max": MAX_CAPTION}
    if has_control(caption):
        return CAPTION_CONTROL, {}
    if missing := undrawable(caption):
        return CAPTION_GLYPHS, {"chars": " ".join(missing[:10])}
    return None


def check_form(got: Received, project_ok: bool) -> tuple[list[tuple[Path, str]], dict[str, tuple[str, dict[str, Any]]]]:
    """Photos in slot order with their captions, and errors by field (gettext ids and variables)."""
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    if not project_ok:
        errors["project"] = (N_("Choose one of your group's projects."), {})
    name = got.fields.get("name", "").strip()
    if len(name) > 200:
        errors["name"] = (CAPTION_LONG, {"max": 200})
    chosen: list[tuple[Path, str]] = []
    for slot in range(MAX_PHOTOS):
        caption = got.fields.get(f"caption{slot}", "").strip()
        if wrong := caption_error(caption):
            errors[f"caption{slot}"] = wrong
        if slot in got.photos:
            if got.sizes.get(slot, 0) == 0:
                errors[f"photo{slot}"] = (EMPTY, {"n": slot + 1})
            chosen.append((got.photos[slot], caption))
    if not MIN_PHOTOS <= len(chosen) <= MAX_PHOTOS:
        errors["photos"] = (TOO_FEW, {"min": MIN_PHOTOS, "max": MAX_PHOTOS})
    return chosen, errors


def check_photos(paths: dict[int, Path]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each photo checked by the renderer's own code in a child process: errors by field, {} if all are good."""
    if not paths:
        return {}
    slots = sorted(paths)
    try:
        r = subprocess.run([sys.executable, "-m", "kiosk.player.moviemaker", "check", *(str(paths[s]) for s in slots)],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=CHECK_TIMEOUT_S,
                           check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.error("the photo checker did not finish: %s: %s", type(exc).__name__, exc)
        return {"photos": (CHECK_FAILED, {})}
    answers = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    if r.returncode != 0 or len(answers) != len(slots):
        tail = (r.stderr.strip().splitlines() or [""])[-1]
        log.error("the photo checker failed (exit %s, %s of %s photos answered): %s", r.returncode, len(answers),
                  len(slots), tail[:500])
        return {"photos": (CHECK_FAILED, {})}
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    for slot, a in zip(slots, answers, strict=True):
        if a["ok"]:
            continue
        n = slot + 1
        if a["error"] == "too_large":
            errors[f"photo{slot}"] = (TOO_MANY_PIXELS, {"n": n, "w": f"{a['width']:,}", "h": f"{a['height']:,}",
                                                        "mp": f"{a['width'] * a['height'] / 1e6:,.0f}",
                                                        "max": f"{a['max_pixels'] / 1e6:,.0f}"})
        elif a["error"] == "too_thin":  # scaled to cover the frame, a thin strip would take gigabytes
            errors[f"photo{slot}"] = (TOO_THIN, {"n": n, "w": f"{a['width']:,}", "h": f"{a['height']:,}",
                                                 "max": a["max"]})
        elif _is_heif(paths[slot]):  # not read (not_image or corrupt): say what to do with an iPhone's photo
            errors[f"photo{slot}"] = (HEIC, {"n": n})
        elif a["error"] == "corrupt":
            log.info("photo %s is damaged: %s", n, str(a.get("detail", ""))[:500])  # Pillow's words: the log's
            errors[f"photo{slot}"] = (CORRUPT, {"n": n})
        else:
            errors[f"photo{slot}"] = (NOT_IMAGE, {"n": n})
    return errors


def _is_heif(path: Path) -> bool:
    """An ISO-BMFF file whose major brand is HEIF/HEIC (``....ftypheic``)."""
    try:
        with path.open("rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS


def write_spec(spool: Path, job_id: str, *, group: str, project: str, area: str, size: tuple[int, int],
               photos: list[tuple[Path, str]], seconds: float | None = None) -> Path:
    spec = {"group": group, "project": project, "area": area, "width": size[0], "height": size[1],
            "photos": [{"path": str(p), "caption": c} for p, c in photos]}
    if seconds is not None:
        spec["seconds"] = seconds
    path = spool / f"job-{job_id}.json"
    path.write_text(json.dumps(spec, ensure_ascii=False), "utf-8")
    return path


# --- the movies -----------------------------------------------------------------------------------------

def on_kiosks(conn: Connection) -> set[str]:
    """The media (sha256) in a playlist kiosks run now: the newest version of every target (all kiosks, a kiosk
    group, one kiosk) that is in force (:func:`configstore.replaced`: not replaced by a later one for all kiosks or
    the kiosk's group) and, for a kiosk group, has kiosks in it. A published movie not in it waits for the center
    staff to put it in a playlist."""
    out: set[str] = set()
    groups = {g for (g,) in conn.execute(select(kiosk_info.c.kiosk_group)) if g}
    for target in configstore.published_targets(conn):
        if target.startswith("group:") and target[len("group:"):] not in groups:
            continue  # no kiosk is in that group now: its playlist plays nowhere
        if configstore.replaced(conn, target) is not None:
            continue  # its kiosks run the later playlist that replaced it
        cur = configstore.current(conn, target=target)
        out |= {str(it.get("sha256")) for it in ((cur or {}).get("config") or {}).get("playlist") or []}
    return out


def movie_jobs(engine: Engine, group_ids: set[str] | None) -> list[dict[str, Any]]:
    """Movie jobs, newest first, with ``published`` and ``on_kiosks`` (in a playlist kiosks run now) (None for
    all groups: staff); one whose portal process stopped says so (:func:`server_sync.mediajobs.as_shown`), as its
    own page does."""
    with engine.connect() as conn:
        rows = conn.execute(select(media_jobs).where(media_jobs.c.kind == "movie")
                            .order_by(media_jobs.c.created_ms.desc())).mappings().all()
        published = {r[0] for r in conn.execute(select(media_info.c.sha256))}
        playing = on_kiosks(conn)
    now = _now_ms()
    return [{**mediajobs.as_shown(dict(r), now), "published": r["sha256"] in published,
             "on_kiosks": r["sha256"] in published and r["sha256"] in playing} for r in rows
            if group_ids is None or r["group_id"] in group_ids]


def publish(engine: Engine, job: dict[str, Any], by: str) -> bool:
    """The finished movie becomes a media item (a playlist can use it). False if it was not finished."""
    if job["status"] != "done" or not job["sha256"]:
        return False
    with writing(engine) as conn:
        if conn.execute(select(media.c.sha256).where(media.c.sha256 == job["sha256"])).first() is None:
            return False
        if conn.execute(select(media_info.c.sha256).where(media_info.c.sha256 == job["sha256"])).first() is None:
            conn.execute(media_info.insert().values(
                sha256=job["sha256"], name=job["name"], project_id=job["project_id"],
                group_id=catalog.current_group(conn, job["project_id"], job["group_id"]),
                duration_s=job["duration_s"], uploaded_by=by, poster_sha256=job["poster_sha256"],
                created_ms=_now_ms()))
    return True


def is_published(engine: Engine, job: dict[str, Any]) -> bool:
    if not job["sha256"]:
        return False
    with engine.connect() as conn:
        return conn.execute(select(media_info.c.sha256).where(media_info.c.sha256 == job["sha256"])).first() is not None


def is_draft(engine: Engine, sha: str) -> bool:
    """Whether ``sha`` is a render of a movie not yet published (the movie or its poster frame), and not
    published or named by a configuration some other way.

    ``/api/v1/media/<sha>`` serves media unsigned and without a session (kiosks fetch their playlist's media
    that way; the staff session cookie is scoped to ``/staff``). A movie not yet published is its group's
    draft, whose photos may show people who have not agreed to be public yet: it answers 404 there, to
    anyone holding the digest. Its group's editors and center staff watch it at ``/staff/movies/<id>/preview``
    (server_sync/moviemaker_ui.py), behind their session."""
    with engine.connect() as conn:
        if conn.execute(select(media_jobs.c.id).where((media_jobs.c.kind == "movie") & (
                (media_jobs.c.sha256 == sha) | (media_jobs.c.poster_sha256 == sha)))).first() is None:
            return False
        if conn.execute(select(media_info.c.sha256).where(
                (media_info.c.sha256 == sha) | (media_info.c.poster_sha256 == sha))).first() is not None:
            return False
        return not any(sha in (row[0] or "") for row in conn.execute(select(configs.c.document)))


def discard_movie(engine: Engine, job: dict[str, Any]) -> None:
    """An unpublished movie and its job are removed, with its stored files unless something else uses them."""
    with writing(engine) as conn:
        conn.execute(delete(media_jobs).where(media_jobs.c.id == job["id"]))
        if job["sha256"] and conn.execute(select(media_info.c.sha256).where(
                media_info.c.sha256 == job["sha256"])).first() is None:
            for sha in (job["sha256"], job["poster_sha256"]):
                if sha and not _in_use(conn, sha):
                    conn.execute(delete(media).where(media.c.sha256 == sha))


def playlists_with(conn: Connection, sha: str) -> list[str]:
    """The targets (all kiosks, a kiosk group, one kiosk: most general first) whose own newest playlist names
    ``sha``, whether its kiosks run it now or a later one replaced it (it may be in force again: a kiosk moved to
    another group, a kiosk given a group that has no kiosks yet)."""
    out = []
    for target in configstore.published_targets(conn):
        cur = configstore.current(conn, target=target)
        if cur and any(it.get("sha256") == sha for it in cur["config"].get("playlist") or []):
            out.append(target)
    return out


class PlaylistsChanged(Exception):
    """The playlists using the video are not the ones the confirmation page listed (a colleague published one
    meanwhile): nothing was removed. ``using``: the targets that use it now."""

    def __init__(self, using: list[str]):
        super().__init__(f"the playlists using the video changed: {using}")
        self.using = using


def take_down(engine: Engine, sha: str, by: str, seen: list[str] | None = None) -> list[str] | None:
    """Remove the published video or movie ``sha`` (docs/portal.md, "Removing a video"), in one transaction under
    the config publishers' lock (:func:`configstore.lock`):

    - every target whose newest playlist names it gets a new version without it (published by ``by``). Targets
      published after the first of those are published again unchanged, oldest first, so which playlist each
      kiosk runs stays as it was (a kiosk runs the highest version for all kiosks, its group or itself);
    - its ``portal_media_info`` row (the project's public page, the videos page), the jobs that made it (an upload,
      the movie maker's movie and its copies: their pages would offer a preview and Publish of a file that is
      gone) and its stored file and poster frame (``/api/v1/media/<sha>`` answers 404) are deleted.

    So no kiosk is ever told to fetch it again, and a kiosk that fetched an older version's list a moment before
    gets 404, keeps what it plays and takes the new version at its next sync. ``seen``: the targets the
    confirmation page listed; others now raises :class:`PlaylistsChanged` and removes nothing. Returns the
    targets it was taken out of, or None if it was not a published video (removed already)."""
    with writing(engine) as conn:
        configstore.lock(conn)
        info = conn.execute(select(media_info).where(media_info.c.sha256 == sha)).mappings().first()
        if info is None:
            return None
        using = playlists_with(conn, sha)
        if seen is not None and sorted(seen) != sorted(using):
            raise PlaylistsChanged(using)
        if using:
            versions = {}
            for t in configstore.published_targets(conn):
                cur = configstore.current(conn, target=t)
                if cur is not None:
                    versions[t] = cur["version"]
            first = min(versions[t] for t in using)
            for t in sorted((t for t, v in versions.items() if v >= first), key=versions.__getitem__):
                if t in using:
                    own = (configstore.current(conn, target=t) or {"config": {}})["config"]
                    configstore.republish_in(conn, t, by, playlist=[
                        it for it in own.get("playlist") or [] if it.get("sha256") != sha])
                else:
                    configstore.republish_in(conn, t, by)
        conn.execute(delete(media_info).where(media_info.c.sha256 == sha))
        conn.execute(delete(media_jobs).where(media_jobs.c.sha256 == sha))
        conn.execute(delete(media).where(media.c.sha256 == sha))
        poster = info["poster_sha256"]
        if poster and not _in_use(conn, poster):
            conn.execute(delete(media).where(media.c.sha256 == poster))
    log.warning("video %s (%r, project %s, group %s) removed by %s; taken out of the playlists of %s", sha,
                info["name"], info["project_id"], info["group_id"], by, ", ".join(using) or "none")
    return using


def _in_use(conn: Connection, sha: str) -> bool:
    if conn.execute(select(media_info.c.sha256).where(
            (media_info.c.sha256 == sha) | (media_info.c.poster_sha256 == sha))).first() is not None:
        return True
    if conn.execute(select(media_jobs.c.id).where(((media_jobs.c.sha256 == sha) | (
            media_jobs.c.poster_sha256 == sha)) & (media_jobs.c.status == "done"))).first() is not None:
        return True
    # A published configuration still naming it (kiosks may be fetching it).
    return any(sha in (row[0] or "") for row in conn.execute(select(configs.c.document)))


# --- for the public pages ---------------------------------------------------------------------------------

def media_url(sha: str | None) -> str | None:
    return f"/api/v1/media/{sha}" if sha else None


def published_movies(engine: Engine) -> dict[str, dict[str, Any]]:
    """Each project's newest published movie: ``{project_id: {"sha256", "url", "poster_url", "duration_s",
    "name"}}`` (``poster_url`` None for a video stored before posters existed)."""
    with engine.connect() as conn:
        rows = conn.execute(select(media_info).where(media_info.c.project_id.is_not(None))
                            .order_by(media_info.c.created_ms.desc())).mappings().all()
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["project_id"] not in out:
            out[r["project_id"]] = {"sha256": r["sha256"], "url": media_url(r["sha256"]),
                                    "poster_url": media_url(r["poster_sha256"]), "duration_s": r["duration_s"],
                                    "name": r["name"]}
    return out


def published_movie(engine: Engine, project_id: str) -> dict[str, Any] | None:
    """One project's movie for its public page (see :func:`published_movies`), or None."""
    return published_movies(engine).get(project_id)
