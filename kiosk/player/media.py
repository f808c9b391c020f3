"""The media cache: clips named by their SHA-256 under ``<data_dir>/media``.

Layout::

    media/
      index.json          {"version": 1, "clips": {"<sha256>": {project, title, width, ...}}}
      <sha256>.mp4        one file per clip, content-addressed
      verified.json       {"version": 1, "clips": {"<sha256>": [size, mtime_ns, ctime_ns, inode]}}
      tmp/                partial imports (cleared at start-up)

The index is rewritten atomically (temp file + rename), so a running player
can pick up clips imported by another process at its next clip boundary.
Verification re-hashes a file and compares with its name. A clip that hashed
right is remembered durably (``verified.json``) under its file's stamp: size,
mtime, ctime and inode. Any write to the file, a rename over it or a copy in
its place changes the stamp (ctime cannot be set back by a program), so the
next check hashes it again; an unchanged clip is not read at start-up, where
hashing 50-200 MB clips on a Pi kept the lobby dark for seconds at every
restart. ``kiosk media verify`` always re-hashes (``force=True``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kiosk.ledger.durable import fsync_dir, move_durably, write_atomic

if TYPE_CHECKING:
    from kiosk.player.transcode import ProbeInfo

log = logging.getLogger("kiosk.player.media")

VerifyStatus = Literal["ok", "missing", "corrupt"]
Stamp = tuple[int, int, int, int]
"""(size, mtime_ns, ctime_ns, inode) of a clip file: what changes whenever its bytes can have changed."""
VERIFIED_VERSION = 1


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)  # hashlib releases the GIL on large blocks, so playback keeps going
    return h.hexdigest()


def is_sha256(text: str) -> bool:
    """64 lowercase hex digits: a clip's SHA-256 as the cache and the portal name it. The one check for a fetched
    clip's file name (``media/<sha256>``, no extension: kiosk/sync/configapply.py), made at start-up before adopting
    pushed clips (kiosk/app/runtime.py) and before deleting leftovers (kiosk/sync/adopt.py): never a path elsewhere."""
    return len(text) == 64 and not text.strip("0123456789abcdef")


@dataclass(frozen=True)
class MediaEntry:
    sha256: str
    project: str
    title: str = ""
    width: int = 0
    height: int = 0
    fps: float = 0.0
    frames: int = 0
    duration_s: float = 0.0
    source: str = ""
    """File name the clip was imported from (or ``demo``)."""
    imported: str = ""
    """ISO 8601 time of import."""
    demo_key: str = ""
    """For generated demo clips: a digest of what they were generated from, so they are reused."""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def short(self) -> str:
        return self.sha256[:12]


class MediaCache:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.index_path = self.root / "index.json"
        self._lock = threading.RLock()
        self._index: dict[str, MediaEntry] = {}
        self._index_stamp: object = object()  # "never read" until the first refresh
        self._verified: dict[str, tuple[Stamp, VerifyStatus]] = {}
        self.verified_path = self.root / "verified.json"
        self._durable_ok: dict[str, Stamp] | None = None  # verified.json, read on first use
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[str, Future] = {}

    # --- paths and index ---------------------------------------------------
    def path(self, sha: str) -> Path:
        return self.root / f"{sha}.mp4"

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.index_path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def refresh(self) -> bool:
        """Re-read the index if another process changed it; returns whether it changed."""
        with self._lock:
            stamp = self._stamp()
            if stamp == self._index_stamp:
                return False
            self._index_stamp = stamp
            if stamp is None:
                self._index = {}
                return True
            try:
                data = json.loads(self.index_path.read_text("utf-8"))
                clips = data.get("clips", {})
                known = set(MediaEntry.__dataclass_fields__)
                self._index = {
                    sha: MediaEntry(sha256=sha, **{k: v for k, v in meta.items() if k in known and k != "sha256"})
                    for sha, meta in clips.items()
                }
            except (OSError, ValueError, TypeError) as exc:
                log.error("media: index %s is unreadable (%s); no clips until it is fixed", self.index_path, exc)
                self._index = {}
            return True

    def entries(self) -> list[MediaEntry]:
        self.refresh()
        with self._lock:
            return sorted(self._index.values(), key=lambda e: (e.project, e.imported))

    def find(self, ref: str) -> MediaEntry | None:
        """Look up a full SHA-256 or a unique prefix; ``None`` when absent or ambiguous."""
        self.refresh()
        with self._lock:
            if ref in self._index:
                return self._index[ref]
            hits = [e for sha, e in self._index.items() if sha.startswith(ref)]
            return hits[0] if len(hits) == 1 else None

    def newest_for(self, project: str) -> MediaEntry | None:
        self.refresh()
        with self._lock:
            mine = [e for e in self._index.values() if e.project == project]
            return max(mine, key=lambda e: e.imported) if mine else None

    def _write_index(self) -> None:
        clips: dict[str, dict[str, Any]] = {}
        data = {"version": 1, "clips": clips}
        for sha, e in sorted(self._index.items()):
            meta = asdict(e)
            meta.pop("sha256")
            if not meta.get("extra"):
                meta.pop("extra", None)
            clips[sha] = meta
        # 0644: the player may run as another user than the importer.
        write_atomic(self.index_path, json.dumps(data, ensure_ascii=False, indent=1), mode=0o644)
        self._index_stamp = self._stamp()

    # --- adding clips ------------------------------------------------------
    def tmp_dir(self) -> Path:
        d = self.root / "tmp"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def clean_tmp(self) -> None:
        shutil.rmtree(self.root / "tmp", ignore_errors=True)

    def add(self, file: Path, *, project: str, title: str = "", source: str = "", info: ProbeInfo | None = None,
            demo_key: str = "") -> MediaEntry:
        """Move an already-encoded clip into the cache under its hash and record it in the index."""
        from kiosk.player.transcode import probe  # PyAV: imported when a clip is added, not at every start

        info = info or probe(file)
        sha = sha256_file(file)
        dst = self.path(sha)
        # Durably: an index naming a clip whose rename a power cut undid would be a missing clip.
        move_durably(file, dst)
        entry = MediaEntry(
            sha256=sha, project=project, title=title, width=info.width, height=info.height, fps=round(info.fps, 3),
            frames=info.frames, duration_s=round(info.duration_s, 3), source=source,
            imported=dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"), demo_key=demo_key,
        )
        with self._lock:
            self.refresh()
            self._index[sha] = entry
            self._write_index()
            stamp = self._file_stamp(sha)
            if stamp is not None:  # just hashed: remembered durably, so no start-up hashes it again
                self._remember(sha, stamp, "ok")
        return entry

    def import_file(self, src: Path, *, project: str, title: str = "", width: int, height: int,
                    preset: str = "fast", crf: int = 20) -> MediaEntry:
        """Transcode ``src`` to the cache format at the panel size and add it."""
        from kiosk.player.transcode import transcode

        tmp = self.tmp_dir() / f"import-{os.getpid()}-{threading.get_ident()}.mp4"
        try:
            info = transcode(Path(src), tmp, width=width, height=height, preset=preset, crf=crf)
            return self.add(tmp, project=project, title=title or Path(src).stem, source=Path(src).name, info=info)
        finally:
            tmp.unlink(missing_ok=True)

    def remove(self, sha: str) -> bool:
        with self._lock:
            self.refresh()
            if sha not in self._index:
                return False
            del self._index[sha]
            self._write_index()
            self.path(sha).unlink(missing_ok=True)
            if sha in self._load_durable():
                self._remember(sha, (0, 0, 0, 0), "missing")
            return True

    def discard(self, sha: str) -> bool:
        """Delete a clip for good (a pushed clip no playlist of this kiosk names any more: kiosk/sync/adopt.py
        ``prune_pushed_media``): its file first, durably (the directory synced), then its index entry. A power cut
        in between leaves an entry whose file is gone, which the next call removes; the other order could leave a
        file no entry names, and so nothing would say where it came from. Returns whether anything was there.
        Raises OSError (a read-only disk): nothing is taken out of the index then."""
        with self._lock:
            self.refresh()
            path = self.path(sha)
            had_file = path.exists()
            if had_file:
                path.unlink()
                fsync_dir(self.root)
            if sha not in self._index:
                return had_file
            del self._index[sha]
            self._write_index()
            if sha in self._load_durable():
                self._remember(sha, (0, 0, 0, 0), "missing")
            return True

    # --- verification ------------------------------------------------------
    def _file_stamp(self, sha: str) -> Stamp | None:
        try:
            st = self.path(sha).stat()
        except FileNotFoundError:
            return None
        return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

    def _load_durable(self) -> dict[str, Stamp]:
        """``verified.json`` (caller holds the lock); unreadable or absent means nothing is known: hash again."""
        if self._durable_ok is None:
            self._durable_ok = {}
            try:
                data = json.loads(self.verified_path.read_text("utf-8"))
                if data.get("version") == VERIFIED_VERSION:
                    for sha, st in data.get("clips", {}).items():
                        if isinstance(st, list) and len(st) == 4 and all(type(v) is int for v in st):
                            self._durable_ok[sha] = (st[0], st[1], st[2], st[3])
            except FileNotFoundError:
                pass
            except (OSError, ValueError, AttributeError) as exc:
                log.warning("media: %s is unreadable (%s); clips are hashed again", self.verified_path, exc)
        return self._durable_ok

    def _remember(self, sha: str, stamp: Stamp, status: VerifyStatus) -> None:
        """Record a hash result (caller holds the lock); only "ok" is kept on disk, and only when it is new."""
        self._verified[sha] = (stamp, status)
        durable = self._load_durable()
        want = stamp if status == "ok" else None
        if durable.get(sha) == want:
            return
        if want is None:
            durable.pop(sha, None)
        else:
            durable[sha] = want
        try:
            write_atomic(self.verified_path, json.dumps({"version": VERIFIED_VERSION, "clips": durable},
                                                        sort_keys=True))
        except OSError as exc:  # a cache: without it the next start hashes again, nothing is lost
            log.warning("media: cannot write %s (%s); clips will be hashed again at the next start",
                        self.verified_path, exc)

    def verify(self, sha: str, *, force: bool = False) -> VerifyStatus:
        """Hash the clip, unless it is unchanged since it last hashed right (``force``: hash anyway)."""
        stamp = self._file_stamp(sha)
        if stamp is None:
            with self._lock:
                self._verified[sha] = ((0, 0, 0, 0), "missing")
            return "missing"
        if not force:
            with self._lock:
                known = self._verified.get(sha)
                if known and known[0] == stamp:
                    return known[1]
                if self._load_durable().get(sha) == stamp:
                    self._verified[sha] = (stamp, "ok")
                    return "ok"
        status: VerifyStatus = "ok" if sha256_file(self.path(sha)) == sha else "corrupt"
        after = self._file_stamp(sha)
        with self._lock:
            # Written while we read it: the result holds for neither version, so it is not remembered.
            if after == stamp:
                self._remember(sha, stamp, status)
        return status

    def status(self, sha: str) -> VerifyStatus | None:
        """The known verification result, or ``None`` if the clip (as it is now) was never hashed."""
        stamp = self._file_stamp(sha)
        if stamp is None:
            return "missing"
        with self._lock:
            known = self._verified.get(sha)
        return known[1] if known and known[0] == stamp else None

    def verify_in_background(self, sha: str) -> None:
        """Queue a hash check on a helper thread (used for clips that appear while playing)."""
        with self._lock:
            if sha in self._pending and not self._pending[sha].done():
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="media-verify")
            self._pending[sha] = self._pool.submit(self.verify, sha)

    def close(self) -> None:
        if self._pool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


__all__ = ["MediaCache", "MediaEntry", "is_sha256", "sha256_file"]  # and MediaError (module __getattr__, below)


def __getattr__(name: str) -> Any:
    # MediaError lives with PyAV in kiosk.player.transcode; named here too without importing PyAV at start-up.
    if name == "MediaError":
        from kiosk.player.transcode import MediaError

        return MediaError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
