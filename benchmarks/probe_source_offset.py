"""What moves a model's score on the real faces of each source: the median raw logit of cached
dev-benchmark crops (one per real file) as cut, and after one picture operation applied to all
(MODEL_CARD.md, "Why a source never seen is flagged", "Leave-mead-out: five fixes tried").

A source that an operation moves toward the others, and no other source with it, points at what
sets that source apart; an operation that moves every source alike says little.

    python benchmarks/probe_source_offset.py runs/loso_tv_faces/last.safetensors
    python benchmarks/probe_source_offset.py A.safetensors B.safetensors --families --operations "as cut,noise 6,bilateral"
"""
from __future__ import annotations

import argparse
import csv
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from fakeprobe.evaluation.heldout import CachedScorer, FileCrops
from fakeprobe.model.checkpoint import load_checkpoint
from fakeprobe.train.augment import crush, greyscale, h264, rescale, sharpen, smooth_skin
from fakeprobe.train.splits import source_of


def _ycc(img: np.ndarray, luma: Callable, chroma: Callable) -> np.ndarray:
    y, cr, cb = cv2.split(cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb))
    return cv2.cvtColor(cv2.merge([luma(y), chroma(cr), chroma(cb)]), cv2.COLOR_YCrCb2RGB)


def _blur(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda img: cv2.GaussianBlur(img, (0, 0), sigma)


def _same(img: np.ndarray) -> np.ndarray:
    return img


def _even(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2])


def _seeded(op: Callable[[np.ndarray, np.random.Generator], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """A random augmentation with one fixed draw, so every model sees the same pictures."""
    return lambda img: op(img, np.random.default_rng(0))


def _mirrored_top(img: np.ndarray, share: float = 0.15) -> np.ndarray:
    """The top ``share`` of the crop replaced by the mirror image of the rows under it."""
    k = int(img.shape[0] * share)
    out = img.copy()
    out[:k] = img[2 * k : k : -1]
    return out


OPERATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "as cut": _same,
    "Gaussian blur 1": _blur(1.0),
    "down to 30 % and up": lambda img: rescale(img, 0.3),
    "down to 20 % and up": lambda img: rescale(img, 0.2),
    "Gaussian blur 3": _blur(3.0),
    "H.264 CRF 40": lambda img: h264([_even(img)], 40),
    "H.264 CRF 46": lambda img: h264([_even(img)], 46),
    "unsharp mask 1.5/1": lambda img: sharpen(img, 1.5, 1.0),
    "luma blur 2": lambda img: _ycc(img, _blur(2.0), _same),
    "chroma blur 2": lambda img: _ycc(img, _same, _blur(2.0)),
    "noise 6": _seeded(lambda img, rng: np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)),
    "bilateral": lambda img: cv2.bilateralFilter(img, 9, 40, 5),
    "smooth_skin": _seeded(smooth_skin),
    "crush": _seeded(crush),
    "greyscale": greyscale,
    "mirrored top 15 %": _mirrored_top,
}


def source_group(path: str, families: bool = False) -> str:
    """tv_faces, utkface, "example" (the README's example video), and "talking heads" for every clip
    family (too few files each) or, with ``families``, each family by its name (mead, grid, ...)."""
    source = source_of(path)
    if source == "examples":
        return "example"
    return source if families or source in ("tv_faces", "utkface") else "talking heads"


def real_files(work: Path) -> set[str]:
    """The real files as found (no blended or re-encoded copy, no fake) that the dev benchmark's
    listings name; its crop cache also holds the fakes and their re-encodes, of every source."""
    listings = [work / n for n in ("files.csv", "files_reals_only.csv") if (work / n).exists()]
    if not listings:
        raise SystemExit(f"{work}: no files.csv; run bench_quality.py first")
    reals = set()
    for listing in listings:
        with open(listing, newline="") as f:
            reals |= {r["path"] for r in csv.DictReader(f) if r["label"] == "0" and r["kind"] == "orig" and r["condition"] == "clean"}
    return reals


def real_crops(work: Path, per_source: int, seed: int = 0, families: bool = False) -> dict[str, np.ndarray]:
    """The middle crop of each real file as found, up to ``per_source`` files per source, drawn at
    random, from the dev benchmark's crop cache in ``work``."""
    reals = real_files(work)
    by_source: dict[str, list[np.ndarray]] = {}
    for f in sorted((work / "crops").glob("*.npz")):
        fc = FileCrops.load(f)
        if fc.path in reals and len(fc.crops):
            by_source.setdefault(source_group(fc.path, families), []).append(fc.crops[len(fc.crops) // 2])
    rng = np.random.default_rng(seed)
    return {s: np.stack([c[i] for i in rng.permutation(len(c))[:per_source]]) for s, c in sorted(by_source.items())}


def probe(weights: Path, crops: dict[str, np.ndarray], operations: list[str] | None = None) -> dict[str, dict[str, float]]:
    scorer = CachedScorer(load_checkpoint(weights))
    return {
        name: {s: float(np.median(scorer.runner.logits(scorer.at_input_size(np.stack([OPERATIONS[name](c) for c in cs]))))) for s, cs in crops.items()}
        for name in operations or OPERATIONS
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", type=Path, nargs="+")
    ap.add_argument("--work", type=Path, default=Path("runs/devbench"), help="bench_quality.py's work folder (files.csv, crops/)")
    ap.add_argument("--per-source", type=int, default=60)
    ap.add_argument("--families", action="store_true", help="each talking-head family (mead, grid, ...) on its own")
    # argparse formats help with %: the names' own "%" must be doubled
    ap.add_argument("--operations", help=f"comma-separated, of: {', '.join(OPERATIONS).replace('%', '%%')} (default: all)")
    args = ap.parse_args(argv)
    operations = [o.strip() for o in args.operations.split(",")] if args.operations else list(OPERATIONS)
    unknown = [o for o in operations if o not in OPERATIONS]
    if unknown:
        ap.error(f"unknown operation(s): {', '.join(unknown)} (known: {', '.join(OPERATIONS)})")
    crops = real_crops(args.work, args.per_source, families=args.families)
    if not crops:
        raise SystemExit(f"{args.work}: no cached real crops; run bench_quality.py first")
    for weights in args.weights:
        table = probe(weights, crops, operations)
        print(f"\n{weights}\n\n| operation | " + " | ".join(f"{s} ({len(crops[s])})" for s in crops) + " |")
        print("|---|" + "---|" * len(crops))
        for name, row in table.items():
            print(f"| {name} | " + " | ".join(f"{row[s]:+.2f}" for s in crops) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
