"""``fakeprobe extract``: videos/images -> labelled face crops + a manifest CSV.

Crops come from the same analysis and crop function as ``scan``, so a model trained on them sees
at test time exactly what it saw in training.
"""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from ..faces.crop import crop_face, crop_transform, transform_points
from ..scan.analysis import Analyzer
from .data import FIELDS, MANIFEST


@dataclass(frozen=True)
class Labelled:
    path: Path
    label: str  # real | fake
    method: str = ""


def ffpp_label(path: Path) -> tuple[str, str] | None:
    """Label from a FaceForensics++ layout: original_sequences -> real,
    manipulated_sequences/<Method>/... -> fake with its method."""
    parts = path.parts
    if "original_sequences" in parts:
        return "real", "original"
    if "manipulated_sequences" in parts:
        i = parts.index("manipulated_sequences")
        method = parts[i + 1] if i + 1 < len(parts) - 1 else "unknown"
        return "fake", method
    return None


def folder_label(path: Path) -> tuple[str, str] | None:
    """Label from a parent folder named real/fake (e.g. clips/real/x.mp4)."""
    for part in reversed(path.parent.parts):
        if part.lower() in ("real", "fake"):
            return part.lower(), ""
    return None


def read_labels_csv(path: Path) -> list[Labelled]:
    """A CSV with columns ``path,label[,method]``; relative paths are relative to the CSV."""
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            label = str(row.get("label", "")).strip().lower()
            if label in ("1", "fake"):
                label = "fake"
            elif label in ("0", "real"):
                label = "real"
            else:
                raise ValueError(f"{path}: bad label {row.get('label')!r} for {row.get('path')}")
            p = Path(row["path"])
            out.append(Labelled(p if p.is_absolute() else path.parent / p, label, row.get("method", "") or ""))
    return out


def label_inputs(paths: Iterable[Path], label: str | None) -> list[Labelled]:
    out = []
    for p in paths:
        if "manipulated_sequences" in p.parts and "masks" in p.parts:
            continue  # FF++ ships binary mask videos beside the fakes: not faces to learn from
        if label:
            out.append(Labelled(p, label))
            continue
        found = ffpp_label(p) or folder_label(p)
        if found is None:
            raise ValueError(f"{p}: cannot tell real from fake; pass --label real|fake or a --labels CSV")
        out.append(Labelled(p, *found))
    return out


def extract(
    items: list[Labelled],
    out_dir: Path,
    analyzer: Analyzer,
    *,
    size: int = 224,
    margin: float = 1.3,
    align: bool = False,
    on_item: Callable[[Labelled, int, str | None], None] | None = None,
) -> int:
    """Write crops and append to the manifest; returns the number of crops written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / MANIFEST
    new = not manifest.exists()
    if not new:  # resume: inputs already in the manifest are not extracted twice
        with open(manifest, newline="") as f:
            done = {row["source"] for row in csv.DictReader(f)}
        items = [it for it in items if str(it.path) not in done]
    total = 0
    with open(manifest, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        for item in items:
            try:
                analysis = analyzer.analyse(item.path)
            except Exception as exc:  # one bad file never stops a batch
                if on_item:
                    on_item(item, 0, str(exc))
                continue
            tag = hashlib.sha1(str(item.path).encode()).hexdigest()[:8]
            (out_dir / item.label).mkdir(exist_ok=True)
            n = 0
            for fr, faces, tracks in zip(analysis.frames, analysis.faces, analysis.tracks):
                for face, tid in zip(faces, tracks):
                    crop = crop_face(fr.image, face.box, face.landmarks, size=size, margin=margin, align=align)
                    m = crop_transform(face.box, face.landmarks, size, margin, align)
                    name = f"{item.label}/{item.path.stem}_{tag}_f{fr.index:06d}_t{tid}.png"
                    cv2.imwrite(str(out_dir / name), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
                    lm = np.round(transform_points(m, face.landmarks), 2).tolist()
                    writer.writerow({
                        "file": name, "label": item.label, "method": item.method, "source": str(item.path),
                        "frame_index": fr.index, "time_s": round(fr.time_s, 4), "track": tid,
                        "detection_score": round(face.score, 4), "landmarks5": json.dumps(lm),
                    })
                    n += 1
            total += n
            if on_item:
                on_item(item, n, None)
    return total
