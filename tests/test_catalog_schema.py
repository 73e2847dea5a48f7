"""The catalog schema: migrations build exactly schema.py, and the head constant is right."""

from __future__ import annotations


def test_schema_head_constant_matches_the_migrations():
    from faceledger.catalog.database import SCHEMA_HEAD, head_revision

    assert head_revision() == SCHEMA_HEAD


def test_migrations_build_exactly_the_schema(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from faceledger.catalog.database import make_engine, migrate
    from faceledger.catalog.schema import metadata

    engine = make_engine(f"sqlite:///{tmp_path / 'c.sqlite'}")
    migrate(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
