"""How each real source's crops score when the picture is changed: one table per model.

For up to ``--per-source`` held-out real files of every source of the dev benchmark (its cached
crops; run ``bench_quality.py`` first), the middle crop of each file is changed by each named
transform and scored; a cell is the median raw logit (higher = more fake). A source that a
transform moves toward the others, and no other source with it, points at what sets that source
apart; a transform that moves every source alike says nothing.

    python benchmarks/probe_sources.py mead0=runs/loso_mead_A_s0/best.safetensors --transforms id,noise,blur,crf46
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from bench_quality import _seed
from fakeprobe.evaluation.heldout import CachedScorer, FileCrops
from fakeprobe.model.checkpoint import load_checkpoint
from fakeprobe.train.augment import crush, greyscale, h264, smooth_skin

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _even(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2])


def _mirrored_top(img: np.ndarray, share: float = 0.15) -> np.ndarray:
    """The top ``share`` of the crop replaced by the mirror image of the rows under it."""
    k = int(img.shape[0] * share)
    out = img.copy()
    out[:k] = img[2 * k : k : -1]
    return out


TRANSFORMS: dict[str, Transform] = {
    "id": lambda img, rng: img,
    "noise": lambda img, rng: np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8),
    "blur": lambda img, rng: cv2.GaussianBlur(img, (0, 0), 1.5),
    "half": lambda img, rng: cv2.resize(cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
                                        img.shape[1::-1], interpolation=cv2.INTER_LINEAR),
    "grey": lambda img, rng: greyscale(img),
    "crf32": lambda img, rng: h264([_even(img)], 32),
    "crf46": lambda img, rng: h264([_even(img)], 46),
    "bilateral": lambda img, rng: cv2.bilateralFilter(img, 9, 40, 5),
    "smooth_skin": smooth_skin,
    "crush": crush,
    "flip": lambda img, rng: np.ascontiguousarray(img[:, ::-1]),
    "mirrored_top": lambda img, rng: _mirrored_top(img),
}


def middle_crops(work: Path, per_source: int) -> dict[str, np.ndarray]:
    """Per source: the middle crop of up to ``per_source`` held-out real files, evenly spread."""
    listing = work / "files_reals_only.csv"
    if not listing.exists():
        listing = work / "files.csv"
    paths: dict[str, list[str]] = {}
    with open(listing, newline="") as f:
        for r in csv.DictReader(f):
            if r["kind"] == "orig" and r["condition"] == "clean" and r["source"] != "example":
                paths.setdefault(r["source"], []).append(r["path"])
    out = {}
    for source, files in sorted(paths.items()):
        chosen = files[:: max(1, len(files) // per_source)][:per_source]
        crops = [FileCrops.load(work / "crops" / f"{_seed(p):08x}_{Path(p).stem}.npz").crops for p in chosen]
        crops = [c[len(c) // 2] for c in crops if len(c)]
        if crops:
            out[source] = np.stack(crops)
    return out


def table(score: Callable[[np.ndarray], np.ndarray], crops: dict[str, np.ndarray], names: list[str], seed: int = 0) -> str:
    """One markdown table: a row per source, a column per transform, median logits."""
    lines = ["| source | files | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for source, c in crops.items():
        cells = []
        for name in names:
            rng = np.random.default_rng(seed)
            cells.append(f"{float(np.median(score(np.stack([TRANSFORMS[name](x, rng) for x in c])))):+.2f}")
        lines.append(f"| {source} | {len(c)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", metavar="NAME=WEIGHTS")
    ap.add_argument("--work", default="runs/devbench")
    ap.add_argument("--per-source", type=int, default=30)
    ap.add_argument("--transforms", default="id,noise,blur,crf46,bilateral", help=f"comma-separated, of: {', '.join(TRANSFORMS)}")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.transforms.split(",") if n.strip()]
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown:
        ap.error(f"unknown transform(s): {', '.join(unknown)} (known: {', '.join(TRANSFORMS)})")
    crops = middle_crops(Path(args.work), args.per_source)
    if not crops:
        raise SystemExit(f"{args.work}: no cached real crops; run bench_quality.py first")
    for spec in args.models:
        name, weights = spec.split("=", 1)
        scorer = CachedScorer(load_checkpoint(Path(weights)))
        print(f"\n{name} (median raw logit of each source's middle crops)\n")
        print(table(lambda c: scorer.runner.logits(scorer.at_input_size(c)), crops, names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
