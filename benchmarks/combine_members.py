"""Every combination of some models as an ensemble, scored from the dev benchmark's cache.

A combination's file logit is the mean of its members' calibrated file logits (each member's
temperature fitted on the cal split as ``bench_quality.py --calibrate`` fits it); that equals
``scan``'s per-face mean wherever one person decides a file. Run ``bench_quality.py`` with the same
models first: this reads its ``files.csv`` and cached logits and classifies nothing.

    python benchmarks/combine_members.py v5=runs/v5.safetensors A0=runs/loso_utk_A/best.safetensors \\
        A1=runs/loso_utk_A_s1/best.safetensors A2=runs/loso_utk_A_s2/best.safetensors --loso utkface

With ``--reals-only`` it reads the held-out reals of ``bench_quality.py --reals-only`` instead: no
fakes, so no AUC and no fitted temperature; each member's logit is divided by its own checkpoint
temperature, as ``fakeprobe pack`` weights it. That scores every pack of some leave-one-source-out
runs without packing them:

    python benchmarks/combine_members.py --reals-only --loso mead B0=runs/loso_mead_B_s0/best.safetensors ...
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from bench_quality import CAL, TEST, Entry, calibrate, fakes_flagged, flagged, logits_cache
from fakeprobe.model.checkpoint import load_checkpoint
from fakeprobe.model.metrics import compute_metrics


def cached_logits(weights: Path, entries: list[Entry], work: Path) -> dict[str, float | None]:
    cache, found = logits_cache(load_checkpoint(weights), work)
    if found is None:
        raise SystemExit(f"{weights}: no cached logits in {cache.parent}; run bench_quality.py with this model first")
    known = json.loads(found.read_text())
    # a stored null is a file without a face; a missing path was never scored, and averaging
    # over fewer files would quietly set the threshold on another file set
    unscored = [e.path for e in entries if e.path not in known]
    if unscored:
        raise SystemExit(f"{weights}: {len(unscored)} of {len(entries)} files never scored (e.g. {unscored[0]}); "
                         "run bench_quality.py with this model and the same options first")
    return {e.path: known[e.path] for e in entries}


def auc(entries: list[Entry], z: dict, split: str, condition: str) -> float:
    """Video AUC of every fake against the re-encoded reals (kind none) of one split and condition."""
    sel = [e for e in entries if e.split == split and e.condition == condition and z[e.path] is not None]
    reals, fakes = [e for e in sel if e.kind == "none"], [e for e in sel if e.label == 1]
    return compute_metrics([0] * len(reals) + [1] * len(fakes), [z[e.path] for e in reals + fakes])["auc"]


def row(names: tuple[str, ...], entries: list[Entry], members: dict, loso: str | None, fpr: float,
        reals_only: bool = False) -> str:
    z = {e.path: None if any(members[n][0][e.path] is None for n in names)
         else float(np.mean([members[n][0][e.path] / members[n][1] for n in names])) for e in entries}
    cal = calibrate(entries, z, fpr)
    example = next(e.path for e in entries if e.source == "example")
    margin = 1 / (1 + np.exp(-z[example] / cal.temperature)) - cal.threshold
    shares = flagged(entries, z, cal)
    cells = [" + ".join(names)]
    if not reals_only:
        # the cal fakes flagged: the operating point, which AUC hides when a few real files set a high threshold
        cells += [f"{auc(entries, z, CAL, 'clean'):.3f}", "{}/{}".format(*fakes_flagged(entries, z, cal, split=CAL)),
                  " / ".join(f"{auc(entries, z, TEST, c):.3f}" for c in ("clean", "crf=23", "crf=40"))]
    cells += [f"{margin:+.3f}", f"{sum(a for a, _ in shares.values())}/{sum(b for _, b in shares.values())}"]
    if loso:
        a, b = flagged(entries, z, calibrate(entries, z, fpr, exclude=loso), (CAL, TEST)).get(loso, (0, 0))
        cells.append(f"{a}/{b}" if all(loso in str(members[n][2]) for n in names) else "(trained on it)")
    return "| " + " | ".join(cells) + " |"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", metavar="NAME=WEIGHTS")
    ap.add_argument("--work", default="runs/devbench")
    ap.add_argument("--loso", metavar="SOURCE", help="also: that source's held-out files flagged with it left out of the threshold "
                                                      "(for combinations whose members all left it out of training)")
    ap.add_argument("--max-members", type=int, default=3)
    ap.add_argument("--fpr", type=float, default=0.05)
    ap.add_argument("--reals-only", action="store_true",
                    help="the held-out reals of bench_quality.py --reals-only; members weighted by their own temperatures")
    args = ap.parse_args(argv)
    work = Path(args.work)
    with open(work / ("files_reals_only.csv" if args.reals_only else "files.csv"), newline="") as f:
        entries = [Entry(**{**r, "label": int(r["label"])}) for r in csv.DictReader(f)]
    members = {}
    for spec in args.models:
        name, weights = spec.split("=", 1)
        z = cached_logits(Path(weights), entries, work)
        meta = load_checkpoint(Path(weights)).meta
        temperature = meta.temperature if args.reals_only else calibrate(entries, z, args.fpr).temperature
        members[name] = (z, temperature, meta.training.get("exclude_sources") or [])
    head = ["members"] + ([] if args.reals_only else ["cal AUC (clean)", "cal fakes flagged (clean)", "test AUC clean / CRF 23 / CRF 40"])
    head += ["README example, p − threshold", "real files flagged, test"]
    if args.loso:
        head.append(f"{args.loso} flagged without it (cal + test)")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for k in range(1, min(args.max_members, len(members)) + 1):
        for names in itertools.combinations(members, k):
            print(row(names, entries, members, args.loso, args.fpr, args.reals_only))
    return 0


if __name__ == "__main__":
    sys.exit(main())
