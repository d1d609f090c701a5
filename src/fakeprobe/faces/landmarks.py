"""Dense (68-point) landmarks for training masks, via dlib when the ``train`` extra is installed.

Only training needs them; ``scan`` never does. Without dlib, masks fall back to a face outline
estimated from MTCNN's 5 points (see :func:`fakeprobe.train.sbi.face_points_from5`).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np


def dlib_predictor_path() -> Path | None:
    # located without importing the package: its __init__ needs pkg_resources, gone from setuptools
    spec = importlib.util.find_spec("openpibo_dlib_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = Path(root) / "models" / "shape_predictor_68_face_landmarks.dat"
        if p.exists():
            return p
    return None


class DenseLandmarks:
    """68-point landmarks inside a face crop, given the crop's margin (face box is centred)."""

    def __init__(self) -> None:
        import dlib

        path = dlib_predictor_path()
        if path is None:
            raise ImportError("openpibo-dlib-models (shape_predictor_68_face_landmarks.dat) is not installed")
        self.predictor = dlib.shape_predictor(str(path))
        self._dlib = dlib

    def __call__(self, crop: np.ndarray, margin: float) -> np.ndarray:
        h, w = crop.shape[:2]
        side = w / margin
        # MTCNN boxes sit a little higher than dlib's detector boxes; shift down to match
        x1, y1 = (w - side) / 2, (h - side) / 2 + side * 0.08
        rect = self._dlib.rectangle(int(x1), int(y1), int(x1 + side), int(y1 + side))
        shape = self.predictor(np.ascontiguousarray(crop), rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def available() -> bool:
    try:
        import dlib  # noqa: F401
    except ImportError:
        return False
    return dlib_predictor_path() is not None
