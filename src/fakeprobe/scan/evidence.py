"""What a scan saw, kept only when asked for: the face crops and small copies of the frames.

``Detector.scan_with_evidence(path)`` returns one of these beside the ``ScanResult``; the plain
``scan`` never builds it. Reports and heatmaps (``fakeprobe.report.reporter``) are drawn from it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

FRAME_THUMB_SIDE = 640  # longest side of the kept frame copies


@dataclass
class Evidence:
    """Pixels behind a ``ScanResult``.

    ``crops[i]`` is the uint8 RGB crop (exactly as classified) of ``result.detections[i]``;
    ``frames[j]`` is a small upright RGB copy of the analysed frame ``result.frames[j]`` and
    ``frame_scales[j]`` its size in pixels per pixel of the original video (so a detection box
    times that scale lands on the copy). All empty for an ``ERROR`` result.
    """

    crops: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0, 3), np.uint8))
    frames: list[np.ndarray] = field(default_factory=list)
    frame_scales: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.crops)

    def fill(self, analysis, crops: np.ndarray, thumb_side: int = FRAME_THUMB_SIDE) -> None:
        """Keep ``crops`` (aligned with the detections) and small copies of ``analysis.frames``."""
        self.crops = crops
        self.frames, self.frame_scales = [], []
        for fr in analysis.frames:
            h, w = fr.image.shape[:2]
            s = min(1.0, thumb_side / max(h, w, 1))
            img = fr.image if s >= 1.0 else cv2.resize(fr.image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
            self.frames.append(np.ascontiguousarray(img))
            self.frame_scales.append(fr.scale * s)
