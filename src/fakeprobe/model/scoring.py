"""From per-face calibrated logits to per-person and per-file scores."""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Callable

import numpy as np


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def track_logits(tracks: list[int], logits: np.ndarray,
                 statistic: Callable[[np.ndarray], float] = np.mean) -> dict[int, tuple[float, int]]:
    """Mean calibrated logit (or another ``statistic`` of its faces' logits) and face count per track."""
    groups: dict[int, list[float]] = defaultdict(list)
    for t, z in zip(tracks, logits):
        groups[t].append(float(z))
    return {t: (float(statistic(np.array(zs))), len(zs)) for t, zs in groups.items()}


def deciding_track(per_track: dict[int, tuple[float, int]], min_faces: int) -> int | None:
    """The most suspicious track among those with enough faces.

    A track counts when it has at least ``min_faces`` faces, or as many as the longest track
    when none is that long (short clips, images), so a single stray detection cannot decide a
    video where a person was seen throughout.
    """
    if not per_track:
        return None
    longest = max(n for _, n in per_track.values())
    need = min(min_faces, longest)
    eligible = {t: z for t, (z, n) in per_track.items() if n >= need}
    return max(eligible, key=eligible.get)


def file_logit(tracks: list[int], logits: np.ndarray, min_faces: int,
               statistic: Callable[[np.ndarray], float] = np.mean) -> float | None:
    """The file's logit as ``scan`` decides it: the mean logit of its deciding person (None: no face);
    another ``statistic`` in place of the mean measures other rules (benchmarks/probe_aggregation.py)."""
    per_track = track_logits(tracks, logits, statistic)
    decider = deciding_track(per_track, min_faces)
    return None if decider is None else per_track[decider][0]
