"""The catalog database: schema, migrations, transactions and queries. Knows nothing of HTTP."""

from faceledger.catalog.store import SEARCHABLE, VAULT, Catalog

__all__ = ["Catalog", "SEARCHABLE", "VAULT"]
