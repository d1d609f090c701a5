"""Training data: crop folders written by ``fakeprobe extract`` (manifest.csv + real/ + fake/)."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .splits import CAL, SPLIT_SEED, TEST, TRAIN, group_of, source_of, split_of

MANIFEST = "manifest.csv"
FIELDS = ["file", "label", "method", "source", "frame_index", "time_s", "track", "detection_score", "landmarks5"]


@dataclass(frozen=True)
class CropItem:
    path: Path
    label: int  # 0 real, 1 fake
    method: str
    source: str  # the video or photo it came from
    lm5: np.ndarray  # 5 landmarks in crop coordinates

    @property
    def group(self) -> str:
        """Split unit (``splits.group_of``): a whole clip, a block of tv_faces clip numbers, or
        for photos a block of shots taken close in time."""
        return group_of(self.source)

    @property
    def source_name(self) -> str:
        return source_of(self.source)


def read_manifest(root: Path) -> list[CropItem]:
    path = Path(root) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{root}: no {MANIFEST} (make one with `fakeprobe extract`)")
    items = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            items.append(CropItem(
                path=Path(root) / row["file"],
                label=1 if row["label"] == "fake" else 0,
                method=row.get("method", ""),
                source=row.get("source", row["file"]),
                lm5=np.asarray(json.loads(row["landmarks5"]), np.float32),
            ))
    return items


def split_items(items: list[CropItem], val_fraction: float | None = None, seed: int = SPLIT_SEED,
                test_fraction: float | None = None) -> tuple[list[CropItem], list[CropItem]]:
    """Training and validation (``splits.CAL``) crops, holding out whole groups chosen by a
    stable hash; crops of the TEST split are in neither. Without fractions each source's default
    shares apply (``splits.HOLDOUT``); a ``val_fraction`` alone holds out no test split."""
    holdout = None if val_fraction is None and test_fraction is None else (val_fraction or 0.0, test_fraction or 0.0)
    parts: dict[str, list[CropItem]] = {TRAIN: [], CAL: [], TEST: []}
    for it in items:
        parts[split_of(it.source, seed, holdout)].append(it)
    return parts[TRAIN], parts[CAL]


def load_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"{path}: cannot read image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


LANDMARK_CACHE = "landmarks68.npz"


def dense_landmarks(items: list[CropItem], margin: float) -> dict[str, np.ndarray]:
    """68-point landmarks per crop (keyed by crop path), computed once with dlib and cached in
    ``landmarks68.npz`` beside each manifest.

    Crops without cached landmarks are skipped when dlib is not installed: their masks then
    use the 5-point outline."""
    from ..faces import landmarks

    out: dict[str, np.ndarray] = {}
    roots: dict[Path, list[CropItem]] = {}
    for it in items:
        roots.setdefault(it.path.parent.parent, []).append(it)
    predictor = None
    for root, its in roots.items():
        cache = root / LANDMARK_CACHE
        known: dict[str, np.ndarray] = {}
        if cache.exists():
            with np.load(cache) as z:
                known = dict(zip(z["names"].tolist(), z["points"]))
        todo = [it for it in its if _rel(it, root) not in known]
        if todo and (predictor is not None or landmarks.available()):
            predictor = predictor or landmarks.DenseLandmarks()
            for it in todo:
                known[_rel(it, root)] = predictor(load_rgb(it.path), margin)
            try:
                np.savez(cache, names=np.array(list(known)), points=np.stack(list(known.values())).astype(np.float32))
            except OSError:
                pass  # read-only data folder: recompute next time
        out.update({str(it.path): known[_rel(it, root)] for it in its if _rel(it, root) in known})
    return out


def _rel(it: CropItem, root: Path) -> str:
    return it.path.relative_to(root).as_posix()
