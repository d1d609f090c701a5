"""A compact copy of crop folders for training on another machine (the accelerator carries <= 64 MiB).

Crops are stored already at the training input size (shrunk as ``PairDataset`` shrinks them,
with ``cv2.INTER_AREA``), as WebP, with their 5- and 68-point landmarks scaled alike, so that
``fakeprobe train --data PACK --size SIZE`` sees the crops it would have made itself, less the WebP
loss. Only the train and cal splits (``splits``) are packed, cal first: the test split never
leaves this machine.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .data import FIELDS, LANDMARK_CACHE, MANIFEST, CropItem, dense_landmarks, split_items


@dataclass(frozen=True)
class PackResult:
    crops: int  # packed
    dropped: int  # left out because the budget was spent
    image_bytes: int


def pack_crops(items: list[CropItem], out: Path, size: int, quality: int = 95, budget_bytes: int | None = None,
               margin: float = 1.3) -> PackResult:
    """Write the real crops of ``items`` (train and cal splits; cal first) to ``out`` as a crop
    folder that ``read_manifest`` reads, until ``budget_bytes`` of images are written."""
    reals = [it for it in items if it.label == 0]
    train, cal = split_items(reals)
    order = cal + train
    dense = dense_landmarks(order, margin)
    (out / "real").mkdir(parents=True, exist_ok=True)
    rows, names, points, used = [], [], [], 0
    for it in order:
        img = cv2.imread(str(it.path), cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f"{it.path}: cannot read image")
        side = img.shape[0]
        if side != size:
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
        ok, buf = cv2.imencode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, int(quality)])
        if not ok:
            raise OSError(f"{it.path}: cannot encode as WebP")
        if budget_bytes is not None and used + len(buf) > budget_bytes:
            break
        scale = size / side
        name = f"real/{len(rows):06d}.webp"
        (out / name).write_bytes(buf.tobytes())
        used += len(buf)
        rows.append({"file": name, "label": "real", "method": "", "source": it.source, "frame_index": 0, "time_s": 0,
                     "track": 0, "detection_score": 1.0, "landmarks5": str(np.round(it.lm5 * scale, 3).tolist())})
        if str(it.path) in dense:
            names.append(name)
            points.append(dense[str(it.path)] * scale)
    with open(out / MANIFEST, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    if points:
        np.savez(out / LANDMARK_CACHE, names=np.array(names), points=np.stack(points).astype(np.float32))
    return PackResult(crops=len(rows), dropped=len(order) - len(rows), image_bytes=used)
