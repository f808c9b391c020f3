"""The portal's database: SQLAlchemy Core tables that run unchanged on SQLite and PostgreSQL.

The ``entries`` table holds every accepted kiosk entry verbatim (body and signature, so the portal
can prove anything it shows) plus a few denormalised columns for the public queries. Everything
else (kiosks' high-water marks, idempotency answers, clock offsets) is small bookkeeping. No state
lives in a portal process that the database does not also hold.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    inspect,
    literal_column,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

metadata = MetaData()

kiosks = Table(
    "portal_kiosks", metadata,
    Column("id", String(40), primary_key=True),
    Column("public_key", LargeBinary(32), nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("enrolled_ms", BigInteger, nullable=False),
    # High-water mark: entries 1..size are accepted, tip is entry size's hash.
    Column("size", BigInteger, nullable=False, default=0),
    Column("tip", LargeBinary(32), nullable=False),
    # The last checkpoint the portal verified against its own copy (acknowledged to the kiosk).
    Column("cp_size", BigInteger, nullable=False, default=0),
    Column("cp_root", LargeBinary(32), nullable=True),
    Column("cp_note", Text, nullable=True),
    # A checkpoint the kiosk signed over entries the portal has not received yet: checked on arrival.
    Column("pending_cp_size", BigInteger, nullable=True),
    Column("pending_cp_root", LargeBinary(32), nullable=True),
    Column("last_seen_ms", BigInteger, nullable=True),
    Column("reported_size", BigInteger, nullable=False, default=0),
    Column("clock_synced", Boolean, nullable=True),
    Column("clock_skew_ms", BigInteger, nullable=True),
    Column("config_applied", Integer, nullable=False, default=0),
    Column("alarm", Boolean, nullable=False, default=False),
    # The payment terminal as the kiosk last reported it in a heartbeat (protocol.PaymentHealth).
    Column("payment_terminal", String(16), nullable=True),
    Column("payment_state", String(16), nullable=True),
    Column("payment_detail", String(200), nullable=True),
    Column("payment_seen_ms", BigInteger, nullable=True),
    # The pushed config the kiosk last said in a heartbeat it refused (protocol.ConfigRefused), NULL when its
    # last heartbeat named none: the kiosks page says that playlist will not arrive by itself (operator.py).
    Column("config_refused_version", Integer, nullable=True),
    Column("config_refused_reason", String(16), nullable=True),
    Column("config_refused_detail", String(200), nullable=True),
    # Set by `kiosk-portal kiosk suspend` or an equivocation: its uploads are stored but held (not
    # counted) until `kiosk resume` (server_sync/policy.py HELD).
    # How many leaves of the kiosk's Merkle tree portal_tree_nodes covers (server_sync/tree.py); ingest keeps
    # it equal to size in the same UPDATE; NULL: stored by an older portal, rebuilt once.
    Column("tree_size", BigInteger, nullable=True),
    Column("suspended_ms", BigInteger, nullable=True),
    Column("suspended_reason", String(200), nullable=True),
    # The X25519 key the kiosk made to receive the city's pepper sealed (server_sync/citypepper.py).
    Column("seal_key", LargeBinary(32), nullable=True),
    # The kept public totals (server_sync/totals.py) count the kiosk's entries 1..totals_seq. Only a portal that
    # keeps it writes it: ingest sets it with size when it adds its batch, and counts the kiosk again from its
    # entries instead when it is behind (an older process of a rolling upgrade stored entries meanwhile); NULL:
    # enrolled by an older portal, or kept by one from before this column (counted again at the next start).
    Column("totals_seq", BigInteger, nullable=True, default=0),
)

KIOSK_ROW = select(kiosks).where(kiosks.c.id == bindparam("kid"))
"""A kiosk's row by ``kid``, built once: every signed request and every batch reads it."""
_KIOSK_FOR_UPDATE = KIOSK_ROW.with_for_update()


def lock_kiosk(conn: Connection, kid: str) -> Any:
    """The kiosk's row, locked as every writer of its entries (ingest, ``kiosk resume``, a key revocation) locks
    it before touching them, so that they take turns: FOR UPDATE on PostgreSQL; on SQLite the write transaction
    (BEGIN IMMEDIATE) already holds the database. None if there is no such kiosk."""
    q = KIOSK_ROW if conn.dialect.name == "sqlite" else _KIOSK_FOR_UPDATE
    return conn.execute(q, {"kid": kid}).mappings().first()

# A kiosk's key revocations and re-keyings (server_sync/kiosk_keys.py): kind revoke | admin | ledger,
# from entry ``seq`` on.
key_events = Table(
    "portal_key_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kiosk_id", String(40), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("public_key", LargeBinary(32), nullable=True),
    Column("key_id", String(16), nullable=False),
    Column("by", String(64), nullable=True),
    Column("reason", String(200), nullable=True),
    Column("created_ms", BigInteger, nullable=False),
)

enroll_codes = Table(
    "portal_enroll_codes", metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("kiosk_id", String(40), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("used_ms", BigInteger, nullable=True),
)

entries = Table(
    "portal_entries", metadata,
    Column("kiosk_id", String(40), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("body", LargeBinary, nullable=False),
    Column("entry_hash", LargeBinary(32), nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
    Column("type", String(32), nullable=False),
    Column("boot", Integer, nullable=False),
    Column("mono_ms", BigInteger, nullable=False),
    Column("wall_ms", BigInteger, nullable=False),
    Column("clock_synced", Boolean, nullable=False),
    # Corrected time (docs/sync.md, "Clocks"); equals wall_ms until a boot's offset is known.
    Column("time_ms", BigInteger, nullable=False),
    Column("time_fixed", Boolean, nullable=False),
    Column("project", String(40), nullable=True),
    Column("amount_yen", BigInteger, nullable=True),
    Column("points", BigInteger, nullable=True),
    Column("donor", String(64), nullable=True),
    Column("ref_seq", BigInteger, nullable=True),
    Column("voided", Boolean, nullable=False, default=False),
    Column("receipt", String(26), nullable=True),
    Column("received_ms", BigInteger, nullable=False),
    # Why this verified entry broke the portal's policy on ingest (server_sync/policy.py); NULL: it
    # did not. A quarantined entry is stored (the mirror stays exact) but never counted anywhere.
    Column("quarantine", String(200), nullable=True),
    # The business date a close_out entry closes, as ``date.isoformat`` writes it (:func:`closed_date`);
    # NULL for every other entry and for a close_out whose date does not parse. The reconciliation reads a
    # month's close-outs by it (``CLOSE_OUTS``) instead of parsing every close-out body of the history.
    Column("business_date", String(10), nullable=True),
)
Index("portal_entries_type_project", entries.c.type, entries.c.project)
Index("portal_entries_donor", entries.c.donor)
Index("portal_entries_receipt", entries.c.receipt, unique=True)
Index("portal_entries_type_time", entries.c.type, entries.c.time_ms)
UNSYNCED = entries.c.clock_synced.is_(False)
UNSYNCED_ENTRIES = Index("portal_entries_unsynced", entries.c.kiosk_id, entries.c.boot,
                         sqlite_where=UNSYNCED, postgresql_where=UNSYNCED)
"""The rows a boot's re-timing touches (server_sync/ingest.py ``_RETIME``): a partial index, so the UPDATE
run when a boot's epoch is learned or improved (a boot's first synced entry, a heartbeat that tightens the
estimate) reads only the kiosk's unsynced rows, not its whole history (about 50 ms at 200,000 entries on
SQLite, 70 ms on PostgreSQL, each time, before it). Its WHERE clause is the statement's own term, as
SQLite needs to use a partial index; synced rows, nearly all of them, are never written to it."""

# The kiosks' Merkle trees (server_sync/tree.py): every perfect subtree of 16 leaves or more, stored
# when its last entry is ingested, so a receipt's inclusion proof reads O(log n) rows.
tree_nodes = Table(
    "portal_tree_nodes", metadata,
    Column("kiosk_id", String(40), primary_key=True),
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

boots = Table(
    "portal_boots", metadata,
    Column("kiosk_id", String(40), primary_key=True),
    Column("boot", Integer, primary_key=True, autoincrement=False),
    # Real wall time (ms) at the kiosk's monotonic zero for this boot, and how it was learned.
    Column("epoch_ms", BigInteger, nullable=True),
    Column("source", String(16), nullable=True),
    Column("max_mono_ms", BigInteger, nullable=False, default=0),
    # The earliest the epoch can be by the portal's own clock (heartbeats; server_sync/clockfix.py).
    Column("floor_ms", BigInteger, nullable=True),
)

idempotency = Table(
    "portal_idempotency", metadata,
    Column("kiosk_id", String(40), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_digest", String(80), nullable=False),
    Column("status", Integer, nullable=False),
    Column("response", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

alarms = Table(
    "portal_alarms", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kiosk_id", String(40), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("seq", BigInteger, nullable=True),
    Column("detail", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

configs = Table(
    "portal_configs", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("digest", String(64), nullable=False),
    Column("document", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    # Who runs it: "all", "group:<kiosk group>" or "kiosk:<id>". A kiosk runs the newest version
    # published for it, its group or all kiosks (server_sync/configstore.py).
    Column("target", String(80), nullable=False, server_default="all"),
    Column("published_by", String(64), nullable=True),
)
CONFIG_TARGETS = Index("portal_configs_target_version", configs.c.target, configs.c.version)
"""Each target's versions in order (server_sync/configstore.py): a target's newest version, and the newest of the
few a kiosk runs, are one step down it, and the targets and their newest versions (the playlist pages, the glyph
check) are read from it, not from every stored version's row with its document. Without it each target's newest
read the versions back from the newest until it met one of that target, all of them for a target with none
(55 ms at 5,000 versions on SQLite): every publish adds one, and they are kept for good."""

kiosk_info = Table(
    "portal_kiosk_info", metadata,
    Column("kiosk_id", String(40), primary_key=True),
    # A name staff give several kiosks (e.g. "1f-lobby") to publish one playlist to all of them.
    Column("kiosk_group", String(40), nullable=True),
)

media = Table(
    "portal_media", metadata,
    Column("sha256", String(64), primary_key=True),
    Column("content_type", String(100), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

staff_users = Table(
    "portal_staff", metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", String(200), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    # admin | staff | editor (server_sync/staff.py ROLES); an editor edits only group_id's projects and media.
    Column("role", String(16), nullable=False, server_default="admin"),
    Column("group_id", String(40), nullable=True),
)

# Staff sign-in sessions (server_sync/staff.py): a row per live session, deleted at sign-out, at a new
# password and with its user, so a copied cookie dies everywhere at once.
staff_sessions = Table(
    "portal_staff_sessions", metadata,
    Column("id_hash", String(64), primary_key=True),  # SHA-256 of the cookie's random session id
    Column("username", String(64), nullable=False, index=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)

# What staff did on the staff pages (server_sync/staff_actions.py; docs/portal.md, "Staff actions record"): a row per
# form sent by a signed-in user, sign-ins (failed ones too) and sign-outs. Never a form's content: the route's template
# ("/staff/media/{sha}/remove"), its path parameters (the video's sha256, a kiosk id, a user name, a job id) and the
# HTTP status the portal answered. Rows older than three years are deleted at start.
staff_actions = Table(
    "portal_staff_actions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at_ms", BigInteger, nullable=False, index=True),  # the portal's clock, when the answer was given
    Column("username", String(64), nullable=False),  # "unknown": a failed sign-in with a name no user has
    Column("action", String(100), nullable=False),
    Column("target", String(200), nullable=False, server_default=""),
    Column("status", Integer, nullable=False),
)

# --- the catalog: the portal owns it (server_sync/catalog.py); kiosks get it in the pushed config ---
groups = Table(
    "portal_groups", metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    # Who to call about the group: staff pages only, never public pages or the pushed config.
    Column("contact", Text, nullable=False, default=""),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

projects = Table(
    "portal_projects", metadata,
    Column("id", String(40), primary_key=True),
    Column("group_id", String(40), ForeignKey("portal_groups.id"), nullable=True, index=True),
    Column("title", String(200), nullable=False),
    Column("title_en", String(200), nullable=False, default=""),
    Column("summary", Text, nullable=False, default=""),
    Column("summary_en", Text, nullable=False, default=""),
    Column("area", String(16), nullable=False),
    Column("goal_yen", BigInteger, nullable=False),
    Column("start_date", Date, nullable=True),
    Column("end_date", Date, nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

media_info = Table(
    "portal_media_info", metadata,
    Column("sha256", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("group_id", String(40), nullable=True, index=True),
    Column("project_id", String(40), nullable=True),
    Column("duration_s", BigInteger, nullable=True),
    Column("uploaded_by", String(64), nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    # A JPEG frame of the movie, also in portal_media (the public pages' poster); None for older media.
    Column("poster_sha256", String(64), nullable=True),
)

# Uploads being transcoded in the background (server_sync/mediajobs.py).
media_jobs = Table(
    "portal_media_jobs", metadata,
    Column("id", String(32), primary_key=True),
    Column("status", String(16), nullable=False),  # queued | running | done | failed
    Column("progress", Integer, nullable=False, default=0),  # percent
    Column("message", Text, nullable=False, default=""),
    Column("name", String(200), nullable=False),
    Column("group_id", String(40), nullable=True),
    Column("project_id", String(40), nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("uploaded_by", String(64), nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    # video: an upload, transcoded and stored as a media item at once; movie: made by the movie maker
    # (server_sync/movies.py), stored for preview and a media item only when its editor publishes it.
    Column("kind", String(8), nullable=False, server_default="video"),
    Column("duration_s", BigInteger, nullable=True),
    Column("poster_sha256", String(64), nullable=True),
)

# Provider settlement files staff imported for reconciliation (server_sync/reconcile.py): one row per
# import, and each payment it listed (a later import of the same payment id replaces the row).
provider_imports = Table(
    "portal_provider_imports", metadata,
    Column("id", String(32), primary_key=True),
    Column("provider", String(16), nullable=False),
    Column("filename", String(200), nullable=False),
    Column("rows", Integer, nullable=False),
    # The business dates the file covers: a donation of a covered day missing from the file is a difference.
    Column("first_date", Date, nullable=False),
    Column("last_date", Date, nullable=False),
    Column("imported_by", String(64), nullable=True),
    Column("imported_ms", BigInteger, nullable=False),
)

provider_payments = Table(
    "portal_provider_payments", metadata,
    Column("provider", String(16), primary_key=True),
    Column("payment_id", String(100), primary_key=True),
    Column("import_id", String(32), nullable=False),
    Column("business_date", Date, nullable=False, index=True),
    Column("time_ms", BigInteger, nullable=True),
    Column("amount_yen", BigInteger, nullable=False),
    Column("refunded_yen", BigInteger, nullable=False, default=0),
    # The provider's device name; equal to a kiosk id, it places a payment no donation matches.
    Column("device", String(100), nullable=False, default=""),
)

# --- city-wide donor tokens and my pages (server_sync/citypepper.py, server_sync/mypage.py; docs/privacy.md) ---
# The city's pepper, one row per epoch. It leaves the portal only sealed to one kiosk's seal_key.
peppers = Table(
    "portal_peppers", metadata,
    Column("epoch", Integer, primary_key=True, autoincrement=False),
    Column("pepper", LargeBinary(32), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

# A donor's private page. Only SHA-256 of its secret is stored; ``tokens`` is the JSON list of the card's
# donor tokens the kiosk proved in the one-time request.
mypages = Table(
    "portal_mypages", metadata,
    Column("id", String(64), primary_key=True),
    Column("tokens", Text, nullable=False),
    Column("kiosk_id", String(40), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger, nullable=True),
)

# One-time my-page requests already redeemed (kiosk, nonce): a second scan of the same QR is refused.
mypage_claims = Table(
    "portal_mypage_claims", metadata,
    Column("kiosk_id", String(40), primary_key=True),
    Column("nonce", String(32), primary_key=True),
    Column("expires_ms", BigInteger, nullable=False),
    Column("used_ms", BigInteger, nullable=False),
)

# Which open my pages hold a token (the same rows as portal_mypages.tokens): a claim finds the card's other
# pages by index instead of reading every page.
mypage_tokens = Table(
    "portal_mypage_tokens", metadata,
    Column("page_id", String(64), primary_key=True),
    Column("token", String(32), primary_key=True),
)
Index("portal_mypage_tokens_token", mypage_tokens.c.token)

# What the public totals count, kept per kiosk and project by the transactions that change it
# (server_sync/totals.py): a settled donation (not voided, not quarantined). Reading the totals is then a
# read of a few rows a kiosk, not of every donation the city ever made.
project_totals = Table(
    "portal_project_totals", metadata,
    Column("kiosk_id", String(40), primary_key=True),
    Column("project", String(40), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("total_yen", BigInteger, nullable=False),
)

# Each kiosk's verifier state (its replayed chain: kiosk/ledger/snapshot.py's encoding), saved now and then by
# ingest (server_sync/verifier_states.py), so that a worker that just started replays only the entries after it.
verifier_states = Table(
    "portal_verifier_states", metadata,
    Column("kiosk_id", String(40), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("tip", LargeBinary(32), nullable=False),
    Column("format", Integer, nullable=False),
    Column("state", LargeBinary, nullable=False),
)

settings = Table(
    "portal_settings", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


# The written point rules (issue #17, server_sync/pointrules.py): every version kept, the newest in force.
# ``document`` is a configdoc.PointRules as JSON; kiosks receive it in the pushed config.
point_rules = Table(
    "portal_point_rules", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("document", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("created_by", String(64), nullable=True),
)

# Sponsor pools (issue #17, docs/points.md): yen a sponsor funds for points exchanged into gifts.
# ``allocations`` is JSON {kiosk_id: cumulative yen handed to that kiosk}; their sum never exceeds
# ``funded_yen``, and a kiosk never spends past its own allocation, so the pool cannot go below zero.
sponsor_pools = Table(
    "portal_sponsor_pools", metadata,
    Column("id", String(40), primary_key=True),
    Column("sponsor", String(200), nullable=False),
    Column("sponsor_en", String(200), nullable=False, server_default=""),
    Column("funded_yen", BigInteger, nullable=False),
    Column("yen_per_point", Integer, nullable=False, server_default="1"),
    Column("per_kiosk_yen", BigInteger, nullable=False, server_default="5000"),
    Column("areas", String(200), nullable=False, server_default=""),  # comma list; empty: every area
    Column("start", String(10), nullable=True),
    Column("end", String(10), nullable=True),
    Column("allocations", Text, nullable=False, server_default="{}"),
    Column("created_ms", BigInteger, nullable=False),
    # Made one higher by every change of the pool's form fields (server_sync/pools.py ``save_pool``), never by the
    # allocations handed out at each sync: the pools page carries the version each pool was shown at (hidden
    # ``seen``), and a change from a page opened before a colleague's is refused (compare-and-set in the UPDATE).
    Column("version", BigInteger, nullable=False, server_default="0"),
)

# A card's points handed to one kiosk to spend (docs/points.md): cumulative, per donor token and kiosk.
# Only the portal moves points to a kiosk, and only points no kiosk holds, so two kiosks spending the same
# card offline can each spend only what they were handed.
point_allotments = Table(
    "portal_point_allotments", metadata,
    Column("donor", String(64), primary_key=True),
    Column("kiosk_id", String(40), primary_key=True),
    Column("points", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

# Which donor tokens are one card (docs/points.md, "One card, whichever kiosk asks"): every token a kiosk's
# ask for a card has listed, mapped to the card's key (a token of the card; when a list links two known cards'
# tokens, the lower key is kept). ``pools.allot`` counts a card's points over all of its tokens and takes the
# card's lock by its key. ``kiosk_id``: the kiosk whose list first linked the token (after ``pools.unlink``, the
# first of the lists that remain).
card_tokens = Table(
    "portal_card_tokens", metadata,
    Column("token", String(64), primary_key=True),
    Column("card", String(64), nullable=False, index=True),
    Column("kiosk_id", String(40), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

# The lists of tokens kiosks' asks named, kept as the evidence of which tokens are one card (docs/points.md,
# "Undoing a kiosk's links"): a row per token of a list. A list is named by its kiosk and its lowest token,
# ``list_key`` (a kiosk's lists with the same lowest token share the name: they are joined through that token
# anyway, so nothing is lost for the cards). A card of portal_card_tokens is a connected component of these lists,
# and the tokens of both tables are the same; ``pools.unlink`` deletes a kiosk's lists and makes its cards again
# from the lists that remain. Cards an older portal linked are kept as lists by :func:`fill_card_links`.
card_links = Table(
    "portal_card_links", metadata,
    Column("kiosk_id", String(40), primary_key=True),
    Column("list_key", String(64), primary_key=True),
    Column("token", String(64), primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
)
Index("portal_card_links_token", card_links.c.token)
UNLISTED = ~select(card_links.c.token).where(card_links.c.token == card_tokens.c.token).correlate(card_tokens).exists()
"""The term that selects the portal_card_tokens rows no kept list names (:func:`unlisted_card_links`)."""


def make_engine(url: str, **kw: Any) -> Engine:
    """An engine for a portal database URL (``sqlite:///file.db`` or ``postgresql+psycopg://...``).

    ``hide_parameters``: a statement's error names no bound value. The portal's statements carry donor tokens and
    my-page secrets, and an error the portal cannot handle is logged with its text (docs/privacy.md)."""
    kw.setdefault("hide_parameters", True)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]  # psycopg 3, not psycopg2
    if url.startswith("sqlite"):
        eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kw)

        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001
            dbapi_conn.isolation_level = None  # SQLAlchemy's begin event below decides
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # NORMAL, not FULL: a portal commit lost to power failure is re-sent by the kiosk, which
            # keeps every entry and always resumes from the portal's own high-water mark.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(eng, "begin")
        def _begin(conn):  # noqa: ANN001
            # Writers take SQLite's write lock up front so a read-then-write cannot deadlock.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

        return eng
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, **kw)


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction (on SQLite, BEGIN IMMEDIATE: the write lock is taken before the first read)."""
    with engine.connect().execution_options(write=True) as conn:
        with conn.begin():
            yield conn


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


# Columns added to tables that older portals created: ALTER TABLE ... ADD COLUMN on start.
_ADDED_COLUMNS = {
    "portal_kiosks": ("payment_terminal", "payment_state", "payment_detail", "payment_seen_ms", "suspended_ms",
                      "suspended_reason", "seal_key", "tree_size", "totals_seq", "config_refused_version",
                      "config_refused_reason", "config_refused_detail"),
    "portal_staff": ("role", "group_id"),
    "portal_configs": ("target", "published_by"),
    "portal_entries": ("quarantine", "business_date"),
    "portal_boots": ("floor_ms",),
    "portal_media_info": ("poster_sha256",),
    "portal_media_jobs": ("kind", "duration_s", "poster_sha256"),
    "portal_sponsor_pools": ("version",),
}


IS_CONFIG_CHANGE = entries.c.type == literal_column("'config_change'")
"""The term that selects config_change entries, a constant in the SQL (not a bound parameter), so that
SQLite and PostgreSQL can use :data:`CONFIG_CHANGES` for a query that carries it."""
CONFIG_CHANGES = Index("portal_entries_config_changes", entries.c.kiosk_id, entries.c.seq,
                       sqlite_where=IS_CONFIG_CHANGE, postgresql_where=IS_CONFIG_CHANGE)
"""A kiosk's config_change entries, newest first (server_sync/ingest.py ``_CONFIG_CHANGES``, read for the
policy context of every batch): a few rows per kiosk. Without it SQLite walked the kiosk's entries back from
the newest until it found them, all of its history when it has none (8.6 ms a batch at 20,000 entries)."""

UNTIMED = entries.c.time_fixed.is_(False)
QUARANTINED = entries.c.quarantine.is_not(None)
UNTIMED_ENTRIES = Index("portal_entries_untimed", entries.c.kiosk_id, sqlite_where=UNTIMED, postgresql_where=UNTIMED)
QUARANTINED_ENTRIES = Index("portal_entries_quarantined", entries.c.kiosk_id, sqlite_where=QUARANTINED,
                            postgresql_where=QUARANTINED)
"""The staff fleet page counts each kiosk's entries without a fixed time and its held ones
(server_sync/queries.py ``fleet``): few rows, through these, instead of a scan of every entry at each view
(660 ms at 1,000,000 entries on SQLite)."""

IS_BOOT = entries.c.type == literal_column("'boot'")
BOOT_ENTRIES = Index("portal_entries_boots", entries.c.kiosk_id, entries.c.seq, sqlite_where=IS_BOOT,
                     postgresql_where=IS_BOOT)
"""Each kiosk's ``boot`` entries, for its newest one's software version on the fleet page (``_software``):
SQLite scanned every entry's key for it (230 ms at 1,000,000 entries)."""

IS_DONATION = entries.c.type == literal_column("'donation'")
IS_VOID = entries.c.type == literal_column("'void'")
IS_CLOSE_OUT = entries.c.type == literal_column("'close_out'")
DONATIONS_BY_WALL = Index("portal_entries_donations_wall", entries.c.kiosk_id, entries.c.wall_ms,
                          sqlite_where=IS_DONATION, postgresql_where=IS_DONATION)
VOIDS = Index("portal_entries_voids", entries.c.kiosk_id, entries.c.ref_seq, sqlite_where=IS_VOID,
              postgresql_where=IS_VOID)
CLOSE_OUTS = Index("portal_entries_close_outs", entries.c.kiosk_id, entries.c.business_date,
                   sqlite_where=IS_CLOSE_OUT, postgresql_where=IS_CLOSE_OUT)
"""The staff reconciliation of a month (server_sync/reconcile.py ``_load``): a kiosk's donations by the
kiosk's own clock, the voids of those donations, and the close-outs of those business dates. Without them
each kiosk's part read every entry of its history and parsed every close-out it ever wrote (bench/reconcile.py:
a month's page cost three times as much after a year as after a month). Voids and close-outs are few; the
donation index is a third of the rows, one more B-tree insert a gift."""

_ADDED_INDEXES = (UNSYNCED_ENTRIES, CONFIG_CHANGES, UNTIMED_ENTRIES, QUARANTINED_ENTRIES, BOOT_ENTRIES,
                  DONATIONS_BY_WALL, VOIDS, CLOSE_OUTS, CONFIG_TARGETS)
"""Indexes added to tables an older portal created (``create_all`` makes a table's indexes only with the table)."""


def _add_missing_indexes(engine: Engine) -> None:
    for index in _ADDED_INDEXES:
        try:
            with writing(engine) as conn:
                index.create(conn, checkfirst=True)
        except (OperationalError, ProgrammingError):
            pass  # another portal process made it a moment ago


def _add_missing_columns(engine: Engine) -> None:
    insp = inspect(engine)
    for table_name, names in _ADDED_COLUMNS.items():
        have = {c["name"] for c in insp.get_columns(table_name)}
        table = metadata.tables[table_name]
        for name in names:
            if name in have:
                continue
            col = table.c[name]
            ddl = f"ALTER TABLE {table_name} ADD COLUMN {name} {col.type.compile(engine.dialect)}"
            if col.server_default is not None:
                ddl += f" NOT NULL DEFAULT '{col.server_default.arg}'"  # type: ignore[attr-defined]
            try:
                with writing(engine) as conn:
                    conn.exec_driver_sql(ddl)
            except (OperationalError, ProgrammingError):
                pass  # another portal process added it a moment ago


def closed_date(value: Any) -> str | None:
    """A close_out entry's ``business_date`` as the ``business_date`` column holds it: the date the
    reconciliation places the close-out on (``date.fromisoformat`` of its text, which also takes "20261105"),
    written as ``date.isoformat`` writes it, so that a range of dates is a range of these strings; None when
    it is no date (the reconciliation has always left such a close-out out)."""
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        return None


def _fill_closed_dates(engine: Engine) -> None:
    """The ``business_date`` of close_out entries an older portal stored without it (a rolling upgrade's
    older workers too): a close-out a kiosk-day, read through ``CLOSE_OUTS``. A body that does not name a date
    stays NULL and is read again at the next start, as few as they are."""
    todo = select(entries.c.kiosk_id, entries.c.seq, entries.c.body).where(
        IS_CLOSE_OUT, entries.c.business_date.is_(None))
    with writing(engine) as conn:
        found = []
        for kid, seq, body in conn.execute(todo):
            try:
                value = json.loads(bytes(body))["data"].get("business_date")  # verified on ingest: a JSON object
            except (ValueError, TypeError, KeyError, AttributeError):
                continue
            day = closed_date(value)
            if day is not None:
                found.append({"k": kid, "s": seq, "d": day})
        if found:
            conn.execute(update(entries).where(entries.c.kiosk_id == bindparam("k"), entries.c.seq == bindparam("s"))
                         .values(business_date=bindparam("d")), found)


def unlisted_card_links(conn: Connection, card: str | None = None) -> list[dict[str, Any]]:
    """The lists that stand for card tokens no kept list names (``card``: of that card only): tokens an older
    portal linked, before lists were kept (or an older process of a rolling upgrade, since). The portal never
    kept who listed them with what, only the first kiosk to list each token and the card it is in, so each such
    token counts as linked by that kiosk to its card's key: one list per kiosk and card, the key and the kiosk's
    unlisted tokens of the card, named by its lowest token. Undoing that kiosk's links undoes these; a merge an
    older portal made is not told apart from them (docs/points.md)."""
    unnamed = UNLISTED if card is None else UNLISTED & (card_tokens.c.card == card)
    q = select(card_tokens.c.token, card_tokens.c.card, card_tokens.c.kiosk_id, card_tokens.c.created_ms).where(unnamed)
    groups: dict[tuple[str, str], dict[str, int]] = {}
    for token, key, kid, ms in conn.execute(q):
        g = groups.setdefault((kid, key), {})
        g[token] = int(ms)
        g[key] = min(int(ms), g.get(key, int(ms)))
    if not groups:
        return []
    # A card's key may be named already, by a list of the same kiosk that has the key as its lowest token.
    their_keys = select(card_tokens.c.card).where(unnamed)
    have = {(kid, key) for kid, key in conn.execute(select(card_links.c.kiosk_id, card_links.c.list_key).where(
        card_links.c.token == card_links.c.list_key, card_links.c.token.in_(their_keys)))}
    out = []
    for (kid, key), toks in sorted(groups.items()):
        name = min(toks)
        out += [{"kiosk_id": kid, "list_key": name, "token": t, "created_ms": ms} for t, ms in sorted(toks.items())
                if not (t == key == name and (kid, key) in have)]
    return out


def fill_card_links(conn: Connection, card: str | None = None) -> int:
    """Keep :func:`unlisted_card_links` as lists (``card``: that card's only, under its lock); how many rows."""
    rows = unlisted_card_links(conn, card)
    if rows:
        conn.execute(card_links.insert(), rows)
    return len(rows)


def _fill_card_links(engine: Engine) -> None:
    try:
        with writing(engine) as conn:
            fill_card_links(conn)
    except IntegrityError:
        pass  # another portal process (or an ask under the card's lock) kept them a moment ago: the next start looks


def _media_follow_projects(engine: Engine) -> None:
    """Movie jobs and videos stored with another group than their project's (staff moved the project before
    the portal moved its media with it: server_sync/catalog.py ``save_project``) take the project's group, so
    that its current editors, and only they, may publish, rename or detach them."""
    with writing(engine) as conn:
        for t in (media_jobs, media_info):
            group_now = select(projects.c.group_id).where(projects.c.id == t.c.project_id).scalar_subquery()
            moved = select(projects.c.id).where(projects.c.id == t.c.project_id,
                                                projects.c.group_id.is_distinct_from(t.c.group_id)).exists()
            conn.execute(update(t).where(t.c.project_id.is_not(None), moved).values(group_id=group_now))


def create_schema(engine: Engine) -> None:
    """Create missing tables and columns (idempotent)."""
    metadata.create_all(engine)
    _add_missing_columns(engine)
    _add_missing_indexes(engine)
    _fill_closed_dates(engine)
    _media_follow_projects(engine)
    _fill_card_links(engine)
    from server_sync import totals  # it reads and writes these tables

    totals.ensure(engine)
    # Older portals kept the staff session secret here; it now lives in a file or the environment
    # (server_sync/staff.py load_secret), and a copy in the database (and its backups) is worthless.
    with writing(engine) as conn:
        conn.execute(settings.delete().where(settings.c.name == "session_secret"))


def drop_schema(engine: Engine) -> None:
    metadata.drop_all(engine)


def get_setting(engine: Engine, name: str) -> str | None:
    with engine.connect() as conn:
        row = conn.execute(select(settings.c.value).where(settings.c.name == name)).first()
    return row[0] if row else None
