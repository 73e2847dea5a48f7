"""The catalog schema (SQLAlchemy Core). Alembic migrations in ``migrations/`` create it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

__all__ = ["metadata"] + [
    "library_meta",
    "websites",
    "ingest_runs",
    "ingest_errors",
    "photos",
    "photo_sources",
    "faces",
    "placement_log",
    "index_marks",
    "user_history",
    "jurisdictions",
    "policy_versions",
    "users",
    "api_keys",
    "attestations",
    "legal_holds",
    "deferred_actions",
    "consents",
    "optouts",
    "optout_faces",
    "audit_log",
    "productions",
    "production_items",
    "sessions",
    "passwords",
    "matters",
    "protective_orders",
    "vault_count_pending",
    "vault_count_photos",
    "vault_count_urls",
    "vault_count_totals",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TZ = DateTime(timezone=True)

library_meta = Table(
    "library_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

websites = Table(
    "websites",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("domain", String(255), nullable=False, unique=True),
    Column("publisher", Text),
    Column("publisher_region", String(16)),
    Column("terms_url", Text),
    Column("terms_retrieved_at", TZ),
    Column("updated_at", TZ),
    # What the site can reveal of the people pictured (catalog/sites.py: SENSITIVITIES).
    Column("sensitivity", String(32)),
    # The publisher region the last `policy apply` decided with (migration 0010).
    Column("applied_region", String(16)),
)

ingest_runs = Table(
    "ingest_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("started_at", TZ, nullable=False),
    Column("finished_at", TZ),
    Column("status", String(16), nullable=False),  # running | finished | interrupted | failed
    Column("actor", String(64)),
    Column("inputs", JSON, nullable=False),
    Column("counters", JSON),
)

ingest_errors = Table(
    "ingest_errors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", ForeignKey("ingest_runs.id"), nullable=False, index=True),
    Column("item", Text, nullable=False),
    Column("error_type", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("at", TZ, nullable=False),
    # error: the item was not stored; warning: what a decoder said about an item
    Column("level", String(8), nullable=False, server_default="error"),
)

photos = Table(
    "photos",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("md5", String(32), nullable=False),
    Column("sha1", String(40), nullable=False),
    Column("byte_size", Integer, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("format", String(16), nullable=False),
    Column("taken_at", TZ),
    Column("gps_lat", Float),
    Column("gps_lon", Float),
    Column("stored_path", Text),  # relative to the library directory; NULL if not kept
    Column("first_run_id", ForeignKey("ingest_runs.id")),
    Column("added_at", TZ, nullable=False),
    Column("status", String(16), nullable=False, server_default="active"),  # active | destroyed
    Column("destroyed_at", TZ),
    Column("gps_note", Text),  # why the GPS tags gave no position (e.g. no hemisphere)
)

photo_sources = Table(
    "photo_sources",
    metadata,
    Column("id", Integer, primary_key=True),
    # Indexed by ix_photo_sources_url_digest, which leads with it (migration 0011).
    Column("photo_id", ForeignKey("photos.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # folder | manifest | warc
    Column("locator", Text, nullable=False),
    Column("source_url", Text),
    # SHA-256 of the UTF-8 source URL (migration 0011; catalog.photos.url_digest): a fixed-size
    # key for counting distinct URLs from an index alone (a URL may exceed a b-tree entry).
    Column("source_url_digest", LargeBinary(32)),
    Column("page_url", Text),
    Column("website_id", ForeignKey("websites.id"), index=True),
    Column("retrieved_at", TZ),
    Column("uploader_region", String(16)),
    Column("caption", Text),
    Column("subject_ref", Text),  # consent subject named by a manifest row
    Column("run_id", ForeignKey("ingest_runs.id")),
    Column("added_at", TZ, nullable=False),
    UniqueConstraint("photo_id", "kind", "locator", name="uq_photo_sources_item"),
    # Covering (migration 0011): `discovery count` reads a photo's URL digests index-only.
    Index("ix_photo_sources_url_digest", "photo_id", "source_url_digest"),
)

faces = Table(
    "faces",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("photo_id", ForeignKey("photos.id"), nullable=False, index=True),
    Column("ordinal", Integer, nullable=False),  # position of the face within its photo
    Column("box_top", Integer, nullable=False),
    Column("box_right", Integer, nullable=False),
    Column("box_bottom", Integer, nullable=False),
    Column("box_left", Integer, nullable=False),
    Column("landmarks", JSON, nullable=False),
    Column("detector", String(16), nullable=False),
    Column("det_score", Float, nullable=False),
    Column("vector", LargeBinary),  # float32 little-endian, or AES-GCM nonce+ciphertext
    Column("vector_key_id", String(64)),  # NULL: plain; else the id of the key that sealed it
    Column("model", String(64), nullable=False),
    Column("model_version", String(128), nullable=False),
    Column("vector_collected_at", TZ, nullable=False),
    Column("last_interaction_at", TZ, nullable=False),
    Column("purpose_satisfied_at", TZ),  # set by `retention satisfied`
    Column("blocked", Boolean, nullable=False, server_default="0"),
    Column("status", String(16), nullable=False, server_default="active"),  # active | destroyed
    Column("destroyed_at", TZ),
    UniqueConstraint("photo_id", "ordinal", name="uq_faces_photo_ordinal"),
    Index("ix_faces_placement", "status", "blocked", "photo_id"),
    # The vault alone (migration 0010): blocked counts join their ties by an index-only scan.
    Index("ix_faces_vault", "photo_id", "id",
          postgresql_where=text("status = 'active' AND blocked"),
          sqlite_where=text("status = 'active' AND blocked")),
)

# The index change log: one row per face moved (new -> searchable | vault, searchable <-> vault,
# -> destroyed), written by database triggers on faces (migration 0005) in the transaction that
# moves the face, so no code path can move a face without a row. Vector indexes apply it in
# ``seq`` order and remember the last ``seq`` they applied.
placement_log = Table(
    "placement_log",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("face_id", Integer, nullable=False, index=True),
    Column("from_place", String(16), nullable=False),  # new | searchable | vault | destroyed
    Column("to_place", String(16), nullable=False),  # searchable | vault | destroyed
    Column("at", TZ, nullable=False),
    # The hash chain (migration 0009): SHA-256 of seq|face_id|from|to|at|prev_hash, set by the
    # trigger; see faceledger.catalog.history.placement_hash.
    Column("prev_hash", String(64)),
    Column("hash", String(64)),
    sqlite_autoincrement=True,
)

# For index backends that keep their data outside the library (a vector database): the last
# placement_log seq each one applied, set by compare-and-set.
index_marks = Table(
    "index_marks",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("applied_seq", BigInteger, nullable=False),
    Column("updated_at", TZ, nullable=False),
)

# A photo's (face_id = 0) or one face's tie to a region, with the signal that gave it.
jurisdictions = Table(
    "jurisdictions",
    metadata,
    Column("photo_id", ForeignKey("photos.id"), primary_key=True),
    Column("face_id", Integer, primary_key=True, server_default="0"),
    Column("region", String(16), primary_key=True),
    Column("signal", String(16), primary_key=True),  # gps | uploader | publisher | subject
    Column("ref", Text),  # e.g. the opt-out id, the website domain
    # Covering (migration 0010): a region's ties read from the index alone; text_pattern_ops so
    # the sub-region prefix match is an index range under any PostgreSQL collation.
    Index("ix_jurisdictions_ties", "region", "signal", "photo_id", "face_id",
          postgresql_ops={"region": "text_pattern_ops"}),
)

policy_versions = Table(
    "policy_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("body", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("applied_by", String(64), nullable=False),
    Column("applied_at", TZ, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # admin | searcher | custodian | auditor
    Column("customer_type", String(16)),  # government | private | NULL (operator's staff)
    Column("region", String(16)),
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("created_at", TZ, nullable=False),
)

# Append-only history of users (migration 0009): one row per insert and per change of name,
# role, customer type, region or disabled flag, written by triggers; ``change`` is insert,
# update or backfill (the values a user had when 0009 ran, assumed since created_at).
user_history = Table(
    "user_history",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("user_id", Integer, nullable=False, index=True),
    Column("name", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("customer_type", String(16)),
    Column("region", String(16)),
    Column("disabled", Boolean, nullable=False),
    Column("change", String(16), nullable=False),
    Column("at", TZ, nullable=False),
    sqlite_autoincrement=True,
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("users.id"), nullable=False, index=True),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", Text, nullable=False),  # argon2
    Column("created_at", TZ, nullable=False),
    Column("revoked_at", TZ),
)

attestations = Table(
    "attestations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("users.id"), nullable=False, index=True),
    Column("statement", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("signed_at", TZ, nullable=False),
    Column("expires_at", TZ),
)

legal_holds = Table(
    "legal_holds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("matter", Text, nullable=False),
    Column("scope_kind", String(16), nullable=False),  # jurisdiction | optout | photos | all
    Column("scope_value", JSON),
    Column("created_by", String(64), nullable=False),
    Column("created_at", TZ, nullable=False),
    Column("released_by", String(64)),
    Column("released_at", TZ),
)

deferred_actions = Table(
    "deferred_actions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("action", String(32), nullable=False),  # destroy | erase
    Column("object_kind", String(16), nullable=False),  # face | photo | optout
    Column("object_id", Integer, nullable=False),
    Column("reason", Text),
    Column("requested_by", String(64), nullable=False),
    Column("requested_at", TZ, nullable=False),
    Column("done_at", TZ),
)

consents = Table(
    "consents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subject_ref", Text, nullable=False, index=True),
    Column("purpose", Text, nullable=False),
    Column("term", Text, nullable=False),
    Column("release_sha256", String(64), nullable=False),
    Column("release_text", Text, nullable=False),
    Column("recorded_by", String(64), nullable=False),
    Column("recorded_at", TZ, nullable=False),
    Column("expires_at", TZ),
    Column("revoked_at", TZ),
)

optouts = Table(
    "optouts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("email", Text),
    Column("region", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # matched | no_match | no_face
    Column("submitted_by", String(64), nullable=False),
    Column("submitted_at", TZ, nullable=False),
)

optout_faces = Table(
    "optout_faces",
    metadata,
    Column("optout_id", ForeignKey("optouts.id"), primary_key=True),
    Column("face_id", ForeignKey("faces.id"), primary_key=True),
    Column("distance", Float, nullable=False),
    Column("matched_at", TZ, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", TZ, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_ids", JSON, nullable=False),
    Column("details", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
)

productions = Table(
    "productions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("matter", Text, nullable=False, index=True),
    Column("prefix", String(32), nullable=False),
    Column("first_number", Integer, nullable=False),
    Column("last_number", Integer, nullable=False),
    Column("out_dir", Text, nullable=False),
    Column("manifest_sha256", String(64), nullable=False),
    Column("produced_by", String(64), nullable=False),
    Column("produced_at", TZ, nullable=False),
    Column("volume", String(64)),
    Column("profile", String(32)),
    Column("documents", Integer),
    Column("audit_head_id", Integer),
    Column("audit_head_hash", String(64)),
    Column("redactions", Integer),
)

production_items = Table(
    "production_items",
    metadata,
    Column("production_id", ForeignKey("productions.id"), primary_key=True),
    Column("bates", String(64), primary_key=True),
    Column("photo_id", ForeignKey("photos.id"), nullable=False),
    Column("sha256", String(64), nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    # The cookie holds a random token; only its SHA-256 is stored, so a read of the catalog
    # gives no usable session.
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("user_id", ForeignKey("users.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("method", String(16), nullable=False),  # api_key | password
    # Signed in with an API key: revoking that key ends the session too.
    Column("api_key_id", ForeignKey("api_keys.id")),
    Column("address", String(64)),
    Column("created_at", TZ, nullable=False),
    Column("expires_at", TZ, nullable=False),
    Column("ended_at", TZ),  # signed out (or the user was disabled)
)

passwords = Table(
    "passwords",
    metadata,
    Column("user_id", ForeignKey("users.id"), primary_key=True),
    Column("password_hash", Text, nullable=False),  # argon2, like API keys
    Column("set_at", TZ, nullable=False),
)

matters = Table(
    "matters",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("created_by", String(64), nullable=False),
    Column("created_at", TZ, nullable=False),
)

protective_orders = Table(
    "protective_orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("matter_id", ForeignKey("matters.id"), nullable=False, index=True),
    Column("categories", JSON, nullable=False),  # site sensitivities to redact
    Column("file_name", Text),
    Column("file_sha256", String(64), nullable=False),
    Column("recorded_by", String(64), nullable=False),
    Column("recorded_at", TZ, nullable=False),
)

# -- the vault's counts by region and signal (migration 0012; catalog.vault_counts) -----------
# A photo whose vault faces, ties or source URLs changed, written by triggers on faces,
# jurisdictions and photo_sources; the next count folds it in and deletes the row.
vault_count_pending = Table(
    "vault_count_pending",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("photo_id", Integer, nullable=False),
    sqlite_autoincrement=True,
)

# What each vault photo contributes, as of its last fold: its vault faces per group ("REGION
# SIGNAL" -> faces; a region prefix, and a signal or "*" for any) and its source URL digests
# (32 bytes each, concatenated).
vault_count_photos = Table(
    "vault_count_photos",
    metadata,
    Column("photo_id", Integer, primary_key=True),
    Column("groups", JSON, nullable=False),
    Column("digests", LargeBinary, nullable=False),
)

# Per source URL digest, how many vault photos of each group ("REGION SIGNAL" -> photos) have
# it; a digest no vault photo has is no row.
vault_count_urls = Table(
    "vault_count_urls",
    metadata,
    Column("digest", LargeBinary(32), primary_key=True),
    Column("photos", JSON, nullable=False),
)

vault_count_totals = Table(
    "vault_count_totals",
    metadata,
    Column("region", String(16), primary_key=True),
    Column("signal", String(16), primary_key=True),
    Column("photos", BigInteger, nullable=False),
    Column("faces", BigInteger, nullable=False),
    Column("urls", BigInteger, nullable=False),
)
