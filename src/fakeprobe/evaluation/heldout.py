"""Scoring many models on the same held-out files, as ``scan`` scores them, at the cost of one
analysis per file.

A file's analysis (sampled frames, faces, tracks, crops) does not depend on the classifier, so it
is done once and cached; each model then only classifies the cached crops, and the file's logit
follows ``scan``'s rule (mean logit per person, the most suspicious person that was seen often
enough decides). ``tests/test_heldout.py`` checks the result against ``Detector.scan``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..core.config import ScanConfig
from ..core.errors import FakeprobeError
from ..model.checkpoint import Checkpoint
from ..model.inference import make_runner
from ..model.scoring import file_logit
from ..scan.analysis import Analyzer


@dataclass
class FileCrops:
    """What ``scan`` classifies in one file: its face crops and the person (track) of each."""
    path: str
    crops: np.ndarray  # (N, size, size, 3) uint8
    tracks: np.ndarray  # (N,) int
    error: str | None = None

    def save(self, path: Path) -> None:
        np.savez(path, crops=self.crops, tracks=self.tracks, path=self.path, error=self.error or "")

    @classmethod
    def load(cls, path: Path) -> "FileCrops":
        with np.load(path) as z:
            return cls(str(z["path"]), z["crops"], z["tracks"], str(z["error"]) or None)


def analyse_crops(analyzer: Analyzer, path: Path, size: int, margin: float, align: bool = False) -> FileCrops:
    """The crops and tracks ``scan`` would classify in ``path`` (an unreadable file: no crops, and why)."""
    try:
        a = analyzer.analyse(Path(path))
    except FakeprobeError as exc:
        return FileCrops(str(path), np.zeros((0, size, size, 3), np.uint8), np.zeros(0, np.int64), str(exc))
    crops = Analyzer.crops(a, size, margin, align)
    tracks = np.array([t for ts in a.tracks for t in ts], np.int64)
    return FileCrops(str(path), crops, tracks)


class CachedScorer:
    """Raw (uncalibrated) file logits of one checkpoint over cached crops.

    Crops cached at another size than the checkpoint's input are resized. Shrinking crops cached at
    ``CUT_SIZE`` by area averaging gives exactly what ``scan`` cuts (``crop_face`` cuts small crops
    that way); other sizes are close to, not bit-equal with, it. ``mirrored`` scores every crop
    mirrored left to right (to measure test-time mirror averaging; ``scan`` does not mirror)."""

    def __init__(self, ckpt: Checkpoint, config: ScanConfig | None = None, mirrored: bool = False):
        self.ckpt = ckpt
        self.config = config or ScanConfig()
        self.mirrored = mirrored
        self.runner = make_runner(ckpt, self.config.device, self.config.backend, self.config.batch_size)

    def file_logit(self, fc: FileCrops) -> float | None:
        if not len(fc.crops):
            return None
        return file_logit(fc.tracks.tolist(), self.crop_logits(fc), self.config.min_track_faces)

    def crop_logits(self, fc: FileCrops) -> np.ndarray:
        """Raw logits of each crop of a file (empty without crops)."""
        if not len(fc.crops):
            return np.zeros(0, np.float32)
        crops = np.ascontiguousarray(fc.crops[:, :, ::-1]) if self.mirrored else fc.crops
        return self.runner.logits(self.at_input_size(crops))

    def at_input_size(self, crops: np.ndarray) -> np.ndarray:
        size = self.ckpt.meta.input_size
        if crops.shape[1] == size:
            return crops
        interpolation = cv2.INTER_AREA if crops.shape[1] > size else cv2.INTER_LINEAR
        return np.stack([cv2.resize(c, (size, size), interpolation=interpolation) for c in crops])
