"""Other per-person statistics than scan's mean, on the dev benchmark's clean files (issue: detection quality).

``scan`` scores a person by the mean logit of their faces. A robust statistic (median, trimmed
mean, a lower quantile) would lower a real video that a few odd frames push up and keep a fake
whose every frame looks blended. For one model this classifies every crop of the clean files in
``bench_quality.py``'s listing once (cached per crop under the model's ``logits_key``), then gives
for each statistic: the threshold by the dev benchmark's rule (at most ``--fpr`` of the cal split's
real files of every source), the source that sets it, the fakes it catches on the cal and test
splits, the real test files it flags, AUC on both splits, and how far each README example sits
from the threshold (raw logits; positive: flagged). Judge a statistic on the cal columns.

    python benchmarks/bench_quality.py --model L3=runs/v10/L3.cal.safetensors    # the listing (the last run's) and crops
    python benchmarks/probe_aggregation.py runs/v10/L3.cal.safetensors
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np

from bench_quality import CAL, REPO, TEST, Entry, crops_of, logits_cache
from fakeprobe.core.config import ScanConfig
from fakeprobe.evaluation.heldout import CachedScorer
from fakeprobe.model.calibration import threshold_by_source
from fakeprobe.model.checkpoint import load_checkpoint
from fakeprobe.model.metrics import compute_metrics
from fakeprobe.model.scoring import file_logit

EXAMPLES = tuple(sorted((REPO / "examples").glob("*.mp4")))  # a fake one has "blended" in its name
PAIR_KINDS = ("none", "sbi", "cross", "talking_head")


def statistic(name: str) -> Callable[[np.ndarray], float]:
    """``mean``, ``median``, ``trimF`` (mean without the lowest and highest share F) or ``qF`` (quantile F)."""
    if name in ("mean", "median"):
        return np.mean if name == "mean" else np.median
    share = _share(name.removeprefix("trim") if name.startswith("trim") else name.removeprefix("q"))
    if name.startswith("trim") and share is not None and share < 0.5:
        return lambda z: float(np.mean(np.sort(z)[int(len(z) * share): len(z) - int(len(z) * share)]))
    if name.startswith("q") and share is not None:
        return lambda z: float(np.quantile(z, share))
    raise ValueError(f"unknown statistic {name!r}: mean, median, trimF (0 <= F < 0.5) or qF (0 <= F <= 1)")


def _share(text: str) -> float | None:
    """A number in [0, 1], else None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 <= value <= 1 else None


def crop_logits(weights: Path, entries: list[Entry], work: Path, log) -> dict[str, tuple[list[float], list[int]]]:
    """Raw logits of every crop and the person of each, per file (files without a face left out)."""
    ckpt = load_checkpoint(weights)
    cache, found = logits_cache(ckpt, work, "-crops")
    known = json.loads(found.read_text()) if found else {}
    crops = crops_of(entries, work, log)
    todo = [e for e in entries if e.path not in known]
    if todo:
        scorer, t0 = CachedScorer(ckpt), time.time()
        for e in todo:
            fc = crops[e.path]
            known[e.path] = [[float(v) for v in scorer.crop_logits(fc)], fc.tracks.tolist()]
        log(f"{len(todo)} files classified in {time.time() - t0:.0f} s")
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known))
    return {e.path: tuple(known[e.path]) for e in entries if known[e.path][0]}


def row(name: str, entries: list[Entry], per_crop: dict, fpr: float, min_faces: int) -> dict:
    """One statistic's figures (see the module's docstring)."""
    stat = statistic(name)
    z = {p: file_logit(tracks, np.array(logits), min_faces, stat) for p, (logits, tracks) in per_crop.items()}
    scored = [e for e in entries if e.path in z]
    by_source: dict[str, list[float]] = defaultdict(list)
    for e in scored:
        if e.split == CAL and e.kind == "orig":
            by_source[e.source].append(z[e.path])
    threshold, per_source = threshold_by_source({s: np.array(v) for s, v in by_source.items()}, fpr)
    cut = float(np.log(threshold / (1 - threshold)))

    def count(split: str, label: int, kinds: tuple[str, ...]) -> tuple[int, int]:
        sel = [z[e.path] for e in scored if e.split == split and e.label == label and e.kind in kinds]
        return sum(v >= cut for v in sel), len(sel)

    def auc(split: str) -> float:
        sel = [e for e in scored if e.split == split and e.kind in PAIR_KINDS]
        return compute_metrics([e.label for e in sel], [z[e.path] for e in sel])["auc"]

    return {"statistic": name, "set by": max(per_source, key=per_source.get), "threshold (raw)": cut,
            "cal fakes caught": count(CAL, 1, PAIR_KINDS), "test fakes caught": count(TEST, 1, PAIR_KINDS),
            "test reals flagged": count(TEST, 0, ("orig",)), "AUC cal": auc(CAL), "AUC test": auc(TEST),
            **{f"{p.stem} − threshold": z[str(p)] - cut for p in EXAMPLES if str(p) in z}}


def table(rows: list[dict]) -> str:
    def cell(key: str, v) -> str:
        if isinstance(v, tuple):
            return f"{v[0]}/{v[1]}"
        if isinstance(v, float):
            return f"{v:.3f}" if key.startswith("AUC") else f"{v:+.2f}"
        return str(v)
    keys = list(rows[0])
    return "\n".join(["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
                     + ["| " + " | ".join(cell(k, r[k]) for k in keys) + " |" for r in rows])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights", type=Path)
    ap.add_argument("--statistics", default="mean,median,trim0.1,trim0.2,q0.4", help="comma-separated: mean, median, trimF, qF")
    ap.add_argument("--work", type=Path, default=Path("runs/devbench"))
    ap.add_argument("--fpr", type=float, default=0.05)
    args = ap.parse_args(argv)
    names = args.statistics.split(",")
    try:
        for n in names:
            statistic(n)
    except ValueError as exc:
        ap.error(str(exc))
    listing = args.work / "files.csv"
    if not listing.exists():
        ap.error(f"{listing}: no dev-benchmark listing; run bench_quality.py (with fakes) first")
    with open(listing, newline="") as f:
        entries = [Entry(**{**r, "label": int(r["label"])}) for r in csv.DictReader(f) if r["condition"] == "clean"]
    known = {e.path for e in entries}
    entries += [Entry(str(p), int("blended" in p.stem), "example", "example", TEST, "clean", str(p)) for p in EXAMPLES if str(p) not in known]

    def log(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    per_crop = crop_logits(args.weights, entries, args.work, log)
    print(table([row(n, entries, per_crop, args.fpr, ScanConfig().min_track_faces) for n in names]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
