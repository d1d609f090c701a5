"""Link faces across sampled frames into one track per person."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _link_cost(a: np.ndarray, b: np.ndarray) -> float:
    """0 for identical boxes, >= 1 when the boxes cannot be the same person."""
    size_a = max(a[2] - a[0], a[3] - a[1])
    size_b = max(b[2] - b[0], b[3] - b[1])
    ratio = max(size_a, size_b) / max(min(size_a, size_b), 1e-6)
    if ratio > 2.0:
        return 1.0
    ca = np.array([(a[0] + a[2]) / 2, (a[1] + a[3]) / 2])
    cb = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
    dist = float(np.linalg.norm(ca - cb)) / max(size_a, size_b)
    return min(1.0, 0.5 * (1.0 - iou(a, b)) + 0.5 * dist)


@dataclass
class _Track:
    boxes: list[np.ndarray] = field(default_factory=list)


def link_tracks(frames: list[list[np.ndarray]], max_cost: float = 0.75) -> list[list[int]]:
    """Assign a track id to each box of each frame (frames in time order).

    Matching is one-to-one per frame (Hungarian) against each track's latest box; a face that
    matches no track starts a new one, so a face seen once is still reported.
    """
    tracks: list[_Track] = []
    ids: list[list[int]] = []
    for boxes in frames:
        frame_ids = [-1] * len(boxes)
        if boxes and tracks:
            cost = np.array([[_link_cost(t.boxes[-1], b) for b in boxes] for t in tracks])
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if cost[r, c] < max_cost:
                    frame_ids[c] = int(r)  # a plain int: numpy ints are not JSON serialisable
        for j, box in enumerate(boxes):
            if frame_ids[j] < 0:
                tracks.append(_Track())
                frame_ids[j] = len(tracks) - 1
            tracks[frame_ids[j]].boxes.append(box)
        ids.append(frame_ids)
    return ids
