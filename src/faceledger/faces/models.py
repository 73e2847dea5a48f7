"""Where the dlib model files live: inside the face-recognition-models wheel, nothing downloaded."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
from pathlib import Path

from faceledger.errors import ModelError

__all__ = ["model_path", "package_version"]

_PACKAGE = "face_recognition_models"


def model_path(filename: str) -> Path:
    """Path of one ``.dat`` file shipped in the face-recognition-models package."""
    # Not via its own helpers: its __init__ imports pkg_resources, gone from recent setuptools.
    try:
        path = Path(str(importlib.resources.files(_PACKAGE) / "models" / filename))
    except ModuleNotFoundError as exc:
        raise ModelError(
            "the package face-recognition-models is not installed; run `make demo` or "
            "`pip install face-recognition-models`"
        ) from exc
    if not path.is_file():
        raise ModelError(f"model file {filename} is missing from {path.parent}; reinstall it")
    return path


def package_version() -> str:
    """Version of the installed face-recognition-models package."""
    return importlib.metadata.version("face-recognition-models")
