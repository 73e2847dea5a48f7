"""Face detection, alignment and 128-d vectors: image in, faces out; never touches the database."""

from faceledger.faces.engine import MODEL_NAME, FaceBackend, FaceEngine, dlib_build, model_version

__all__ = ["FaceBackend", "FaceEngine", "MODEL_NAME", "dlib_build", "model_version"]
