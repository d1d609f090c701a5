"""What moves a model's score on the real faces of each source: the median raw logit of cached
dev-benchmark crops (one per real file) as cut, and after one picture operation applied to all
(MODEL_CARD.md, "Why a source never seen is flagged").

    python benchmarks/probe_source_offset.py runs/loso_tv_faces/last.safetensors
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from fakeprobe.evaluation.heldout import CachedScorer, FileCrops
from fakeprobe.model.checkpoint import load_checkpoint
from fakeprobe.train.augment import h264, rescale, sharpen
from fakeprobe.train.splits import source_of


def _ycc(img: np.ndarray, luma: Callable, chroma: Callable) -> np.ndarray:
    y, cr, cb = cv2.split(cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb))
    return cv2.cvtColor(cv2.merge([luma(y), chroma(cr), chroma(cb)]), cv2.COLOR_YCrCb2RGB)


def _blur(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda img: cv2.GaussianBlur(img, (0, 0), sigma)


def _same(img: np.ndarray) -> np.ndarray:
    return img


OPERATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "as cut": _same,
    "Gaussian blur 1": _blur(1.0),
    "down to 30 % and up": lambda img: rescale(img, 0.3),
    "down to 20 % and up": lambda img: rescale(img, 0.2),
    "Gaussian blur 3": _blur(3.0),
    "H.264 CRF 40": lambda img: h264([img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2]], 40),
    "unsharp mask 1.5/1": lambda img: sharpen(img, 1.5, 1.0),
    "luma blur 2": lambda img: _ycc(img, _blur(2.0), _same),
    "chroma blur 2": lambda img: _ycc(img, _same, _blur(2.0)),
}


def source_group(path: str) -> str:
    """tv_faces, utkface, "example" (the README's example video), or "talking heads" for every clip
    family (too few files each)."""
    source = source_of(path)
    if source == "examples":
        return "example"
    return source if source in ("tv_faces", "utkface") else "talking heads"


def real_crops(crops_dir: Path, per_source: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The middle crop of each real file as found (no blended or re-encoded copy), up to
    ``per_source`` files per source, drawn at random."""
    by_source: dict[str, list[np.ndarray]] = {}
    for f in sorted(crops_dir.glob("*.npz")):
        if any(k in f.name for k in (".sbi", ".cross", ".none")):
            continue
        fc = FileCrops.load(f)
        if len(fc.crops):
            by_source.setdefault(source_group(fc.path), []).append(fc.crops[len(fc.crops) // 2])
    rng = np.random.default_rng(seed)
    return {s: np.stack([c[i] for i in rng.permutation(len(c))[:per_source]]) for s, c in sorted(by_source.items())}


def probe(weights: Path, crops: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    scorer = CachedScorer(load_checkpoint(weights))
    return {
        name: {s: float(np.median(scorer.runner.logits(scorer.at_input_size(np.stack([op(c) for c in cs]))))) for s, cs in crops.items()}
        for name, op in OPERATIONS.items()
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", type=Path)
    ap.add_argument("--crops", type=Path, default=Path("runs/devbench/crops"), help="bench_quality.py's crop cache")
    ap.add_argument("--per-source", type=int, default=60)
    args = ap.parse_args(argv)
    crops = real_crops(args.crops, args.per_source)
    table = probe(args.weights, crops)
    print("| operation | " + " | ".join(f"{s} ({len(crops[s])})" for s in crops) + " |")
    print("|---|" + "---|" * len(crops))
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(f"{row[s]:+.2f}" for s in crops) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
