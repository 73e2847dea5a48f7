"""The package layout: the catalog owns the SQL (see faceledger.catalog's docstring)."""

from __future__ import annotations

import ast
from pathlib import Path

import faceledger

SRC = Path(faceledger.__file__).parent
#: sqlalchemy's statement builders and raw SQL text; a module that uses them writes SQL.
SQL_BUILDERS = {"select", "insert", "update", "delete", "text"}
SCHEMA = "faceledger.catalog.schema"
#: Modules allowed to write SQL outside the catalog, each named in faceledger.catalog's
#: docstring (none: the audit log's SQL is in faceledger.catalog.audit).
EXCEPTIONS: set[str] = set()
#: Modules still to move, being changed elsewhere meanwhile. This list only shrinks: a module
#: that no longer writes SQL must leave it (test_the_allow_list_only_shrinks).
NOT_YET_MOVED: set[str] = set()


def _violations(path: Path) -> list[str]:
    """What in this module imports the schema or sqlalchemy's statement builders."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    sqlalchemy_names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = {a.name for a in node.names}
            if node.module == SCHEMA or (node.module == "faceledger.catalog" and "schema" in names):
                found.append(f"line {node.lineno}: imports {SCHEMA}")
            if node.module.split(".")[0] == "sqlalchemy" and names & SQL_BUILDERS:
                found.append(f"line {node.lineno}: imports {sorted(names & SQL_BUILDERS)} "
                             f"from {node.module}")  # fmt: skip
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == SCHEMA or alias.name.startswith(SCHEMA + "."):
                    found.append(f"line {node.lineno}: imports {SCHEMA}")
                if alias.name.split(".")[0] == "sqlalchemy":
                    sqlalchemy_names.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):  # `import sqlalchemy as sa` then `sa.select(...)`
        if (isinstance(node, ast.Attribute) and node.attr in SQL_BUILDERS
                and isinstance(node.value, ast.Name) and node.value.id in sqlalchemy_names):
            found.append(f"line {node.lineno}: uses {node.value.id}.{node.attr}")  # fmt: skip
        if isinstance(node, ast.Attribute) and node.attr == "exec_driver_sql":
            found.append(f"line {node.lineno}: runs raw SQL (exec_driver_sql)")
    return found


def _modules_outside_catalog() -> dict[str, Path]:
    return {
        path.relative_to(SRC).as_posix(): path
        for path in sorted(SRC.rglob("*.py"))
        if path.relative_to(SRC).parts[0] != "catalog"
    }


def test_no_module_outside_the_catalog_writes_sql():
    bad = {
        name: found
        for name, path in _modules_outside_catalog().items()
        if name not in EXCEPTIONS | NOT_YET_MOVED and (found := _violations(path))
    }
    assert not bad, (
        "these modules import the catalog schema or build SQL statements; move the queries "
        f"into a faceledger.catalog module by table group: {bad}"
    )


def test_the_allow_list_only_shrinks():
    modules = _modules_outside_catalog()
    for name in EXCEPTIONS | NOT_YET_MOVED:
        assert name in modules, f"{name} is gone: take it off the list in this test"
    done = sorted(name for name in NOT_YET_MOVED if not _violations(modules[name]))
    assert not done, f"{done} no longer write SQL: take them off NOT_YET_MOVED"


def test_the_audit_exception_is_documented():
    import faceledger.catalog

    doc = faceledger.catalog.__doc__ or ""
    for name in EXCEPTIONS:
        assert f"faceledger.{name.removesuffix('.py').replace('/', '.')}" in doc


def test_the_check_catches_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import sqlalchemy as sa\n"
        "from sqlalchemy import Connection, select\n"
        "from faceledger.catalog import schema as t\n"
        "from faceledger.catalog.schema import faces\n"
        "sa.update(t.faces)\n"
        "conn.exec_driver_sql('PRAGMA x')\n",
        encoding="utf-8",
    )
    found = _violations(sample)
    assert len(found) == 5, found
    clean = tmp_path / "clean.py"
    clean.write_text(
        "from sqlalchemy import Connection\nfrom faceledger.catalog import users\n",
        encoding="utf-8",
    )
    assert _violations(clean) == []
