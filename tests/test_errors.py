"""The exception tree: every error is in errors.py, drawn in its docstring, with both statuses."""

from __future__ import annotations

import ast
from pathlib import Path

from faceledger import errors
from faceledger.service.app import status_for

SRC = Path(errors.__file__).parent


def test_every_error_class_lives_in_errors_py():
    elsewhere = []
    for path in SRC.rglob("*.py"):
        if path.name == "errors.py" or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                getattr(b, "id", getattr(b, "attr", "")).endswith(("Error", "Denied"))
                for b in node.bases
            ):
                elsewhere.append(f"{path.relative_to(SRC)}:{node.name}")
    # The service's own request bounds are the one subclass kept beside the code that raises it.
    assert elsewhere == ["service/bounds.py:RequestTooLargeError"]


def test_each_error_is_drawn_in_the_tree_with_its_statuses():
    for name in errors.__all__:
        cls = getattr(errors, name)
        if not (isinstance(cls, type) and issubclass(cls, errors.FaceledgerError)):
            continue
        line = next((ln for ln in errors.__doc__.splitlines() if f" {name} " in f" {ln} "), None)
        assert line is not None, f"{name} is not drawn in errors.py's docstring"
        assert f"{cls.exit_code} {cls.http_status}" in line, (name, line)
        assert cls.exit_code in errors.EXIT_CODES


def test_the_service_answers_each_error_with_its_own_status():
    assert status_for(errors.NotFoundError("x")) == 404
    assert status_for(errors.PermissionDenied("x")) == 403
    assert status_for(errors.ConflictError("x")) == 409
    assert status_for(errors.ImageTooLargeError("x")) == 413
    assert status_for(errors.DecodeError("x")) == 422
