"""dlib face engine: HOG or CNN detection on a downscaled copy, 5-point alignment, ResNet."""

from __future__ import annotations

import importlib.metadata
import threading
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

try:
    import dlib
except ModuleNotFoundError as exc:  # no dlib is a dependency: the build is chosen at install
    raise ModuleNotFoundError(
        "dlib is not installed: run `make` (builds it against OpenBLAS) or "
        "`pip install 'faceledger[dlib-bin]'` (the prebuilt wheel)",
        name="dlib",
    ) from exc
from PIL import Image

from faceledger.faces.models import model_path, package_version
from faceledger.records import Box, DetectedFace

if TYPE_CHECKING:
    from faceledger.config import Settings

__all__ = ["FaceBackend", "FaceEngine", "MODEL_NAME", "dlib_build", "model_version", "downscale"]

MODEL_NAME = "dlib_face_recognition_resnet_model_v1"


@cache
def model_version() -> str:
    """Version string stored with every vector: the model package and the dlib build."""
    return f"face-recognition-models {package_version()}; {dlib_build()}"


@cache
def dlib_build() -> str:
    """Which dlib made the vectors: ``dlib 20.0.1+openblas`` (our build) or ``dlib-bin 20.0.1``."""
    if dlib.DLIB_USE_BLAS:
        return f"dlib {dlib.__version__}+{_blas_name()}"
    # The prebuilt wheel is the distribution dlib-bin; find the metadata beside the module itself,
    # so a reference copy on PYTHONPATH is named right even when the venv holds the other build.
    here = str(Path(dlib.__file__).resolve().parent.parent)
    for dist in importlib.metadata.distributions(path=[here]):
        if dist.metadata["Name"] in ("dlib-bin", "dlib"):
            return f"{dist.metadata['Name']} {dist.version}"
    return f"dlib {dlib.__version__}"


def _blas_name() -> str:
    """The BLAS library dlib was linked against, from this process's loaded libraries."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "blas"
    # numpy's bundled copy is libscipy_openblas*; Debian's is libopenblas*.so.
    names = {Path(line.split()[-1]).name for line in maps.splitlines() if "/" in line}
    if any(name.startswith("libopenblas") for name in names):
        return "openblas"
    if any(name.startswith("libmkl") for name in names):
        return "mkl"
    return "blas"


class FaceBackend(Protocol):
    """What the rest of faceledger needs from a face engine."""

    def faces(self, rgb: np.ndarray) -> list[DetectedFace]:
        """Detect every face in an RGB uint8 image and compute its vector."""
        ...


def downscale(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """A copy whose long side is at most ``max_side``, and the factor applied (<= 1)."""
    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale >= 1.0:
        return rgb, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR)
    return np.asarray(small), scale


class FaceEngine:
    """Loads the dlib models once; :meth:`faces` is pure (image in, faces out)."""

    def __init__(self, detector: str = "hog", detect_max_side: int = 1024, upsample: int = 0):
        """Load the detector, the 5-point shape predictor and the ResNet embedder."""
        self.detector_name = detector
        self.detect_max_side = detect_max_side
        self.upsample = upsample
        if detector == "cnn":
            self._cnn = dlib.cnn_face_detection_model_v1(
                str(model_path("mmod_human_face_detector.dat"))
            )
            self._hog = None
        else:
            self._hog = dlib.get_frontal_face_detector()
            self._cnn = None
        self._shapes = dlib.shape_predictor(str(model_path("shape_predictor_5_face_landmarks.dat")))
        self._resnet = dlib.face_recognition_model_v1(
            str(model_path("dlib_face_recognition_resnet_model_v1.dat"))
        )
        # dlib's networks must not run concurrently: one engine may serve several threads.
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> FaceEngine:
        """The engine the settings ask for (detector, detection size, upsampling)."""
        return cls(settings.detector, settings.detect_max_side, settings.upsample)

    def detect(
        self, rgb: np.ndarray, full_size: tuple[int, int] | None = None
    ) -> list[tuple[dlib.rectangle, float]]:
        """Face rectangles in original-image coordinates, with detector scores.

        ``rgb`` may itself be a reduced copy of a photo of ``full_size`` (height, width), e.g.
        a JPEG decoded in draft mode; boxes are then mapped to the full photo's pixels.
        """
        small, scale = downscale(rgb, self.detect_max_side)
        if full_size is not None and full_size != rgb.shape[:2]:
            scale *= max(rgb.shape[:2]) / max(full_size)
        if self._cnn is not None:
            found = [(d.rect, float(d.confidence)) for d in self._cnn(small, self.upsample)]
        else:
            rects, scores, _ = self._hog.run(small, self.upsample, 0.0)
            found = list(zip(rects, (float(s) for s in scores), strict=True))
        height, width = full_size or rgb.shape[:2]
        mapped = []
        for rect, score in found:
            left = max(0, round(rect.left() / scale))
            top = max(0, round(rect.top() / scale))
            right = min(width - 1, round(rect.right() / scale))
            bottom = min(height - 1, round(rect.bottom() / scale))
            if right > left and bottom > top:
                mapped.append((dlib.rectangle(left, top, right, bottom), score))
        return mapped

    def faces(self, rgb: np.ndarray) -> list[DetectedFace]:
        """Detect every face, align it on 5 landmarks and compute its 128-d vector."""
        return self.faces_in(rgb, full_size=rgb.shape[:2], full=lambda: rgb)

    def faces_in(
        self,
        detect_on: np.ndarray,
        full_size: tuple[int, int],
        full: Callable[[], np.ndarray],
        seconds: dict[str, float] | None = None,
    ) -> list[DetectedFace]:
        """Detect on ``detect_on`` (a copy of a ``full_size`` photo); embed on ``full()``.

        ``full`` is called only when a face was found, so a photo without faces is never
        decoded at full resolution. ``seconds`` gets the time of ``detect``, ``decode`` (the call
        to ``full``) and ``embed`` (landmarks and vectors) added.
        """
        seconds = {} if seconds is None else seconds
        with self._lock:
            started = time.perf_counter()
            found = self.detect(np.ascontiguousarray(detect_on, dtype=np.uint8), full_size)
            detected = time.perf_counter()
            seconds["detect"] = seconds.get("detect", 0.0) + detected - started
            if not found:
                return []
            rgb = np.ascontiguousarray(full(), dtype=np.uint8)
            decoded = time.perf_counter()
            seconds["decode"] = seconds.get("decode", 0.0) + decoded - detected
            shapes = [self._shapes(rgb, rect) for rect, _ in found]
            vectors = self._resnet.compute_face_descriptor(
                rgb, dlib.full_object_detections(shapes)
            )
            seconds["embed"] = seconds.get("embed", 0.0) + time.perf_counter() - decoded
        version = model_version()
        result = []
        for (rect, score), shape, vector in zip(found, shapes, vectors, strict=True):
            result.append(
                DetectedFace(
                    box=Box(rect.top(), rect.right(), rect.bottom(), rect.left()),
                    landmarks=tuple((p.x, p.y) for p in shape.parts()),
                    score=score,
                    vector=np.asarray(vector, dtype=np.float32),
                    model=MODEL_NAME,
                    model_version=version,
                )
            )
        return result
