"""Face detection with MTCNN (facenet-pytorch's bundled weights; nothing is downloaded)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch


@dataclass
class Face:
    """A detected face in analysed-frame pixel coordinates."""

    box: np.ndarray  # x1, y1, x2, y2
    score: float
    landmarks: np.ndarray  # 5x2: left eye, right eye, nose, mouth left, mouth right


class FaceDetector:
    """Batched MTCNN on frames downscaled so their longest side is at most ``max_side``."""

    def __init__(
        self,
        device: str = "cpu",
        *,
        max_side: int = 640,
        min_score: float = 0.92,
        min_face_size: int = 20,
    ):
        from facenet_pytorch import MTCNN

        self.max_side = max_side
        self.min_score = min_score
        self.mtcnn = MTCNN(
            keep_all=True,
            device=torch.device(device),
            min_face_size=min_face_size,
            select_largest=False,
            post_process=False,
        )

    def detect(self, images: list[np.ndarray]) -> list[list[Face]]:
        """Faces for each RGB uint8 image, boxes in that image's pixel coordinates."""
        results: list[list[Face]] = [[] for _ in images]
        # MTCNN batches only same-sized images: group by shape
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            groups.setdefault(img.shape[:2], []).append(i)
        for (h, w), idxs in groups.items():
            scale = min(1.0, self.max_side / max(h, w))
            small = [
                cv2.resize(images[i], (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
                if scale < 1.0
                else images[i]
                for i in idxs
            ]
            if min(small[0].shape[:2]) < 12:
                continue  # smaller than MTCNN's first-stage window: no face can be found
            batch = np.stack(small)
            boxes, probs, points = self.mtcnn.detect(batch, landmarks=True)
            for i, b, p, pts in zip(idxs, boxes, probs, points):
                if b is None:
                    continue
                for box, score, lm in zip(b, p, pts):
                    if score is None or score < self.min_score:
                        continue
                    results[i].append(
                        Face(box=np.asarray(box, dtype=np.float64) / scale, score=float(score), landmarks=np.asarray(lm, dtype=np.float64) / scale)
                    )
        return results
