"""The catalog database: schema, migrations, transactions and queries. Knows nothing of HTTP.

No module outside this package imports the schema or builds SQL statements; each table group's
queries live in one module here, as typed functions over a ``Connection`` (writes run inside
the caller's transaction) returning dataclasses or plain values:

- ``store`` (:class:`Catalog`): engine, transactions, library metadata, ingest runs, the photo
  and provenance writes of ingest, vectors, and the reads for people (photo, face, stats);
- ``placement``: where a face is (the block flag, destruction), the index change log, index
  marks; only :mod:`faceledger.app.placement` calls its writers;
- ``photos`` (photos, photo_sources, jurisdictions), ``faces`` (face rows outside placement),
  ``users`` (users, api_keys, attestations), ``holds`` (legal_holds, deferred_actions),
  ``consents``, ``optouts`` (optouts, optout_faces), ``sites`` (websites),
  ``policy_versions``, ``productions`` (productions, production_items, matters,
  protective_orders), and ``discovery``
  (the read-only discovery questions and the report's counts);
- ``maintenance``: SQLite's secure delete and WAL checkpoint, a liveness check;
- ``audit``: the audit_log table's lock, tail, insert and reads; only
  :mod:`faceledger.audit.log` calls it, which owns the hash chain and nothing may append to it
  any other way.

One exception: the Alembic migrations under ``catalog/migrations`` write their own DDL.
``tests/test_layout.py`` enforces this.
"""

from faceledger.catalog.store import SEARCHABLE, VAULT, Catalog

__all__ = ["Catalog", "SEARCHABLE", "VAULT"]
