"""Pack a compact training set for a short accelerator run (the device tool carries <= 50 MiB).

Reads folders made by ``fakeprobe extract`` (real crops only), keeps every held-out-safe training
crop it can fit, re-encodes them as WebP, precomputes the dense landmarks (so the accelerator
machine needs no dlib) and adds the ImageNet-initialised Lite0 as an fp16 ``--init`` checkpoint.

    python scripts/make_train_pack.py --data work_data/tv --data work_data/utk --data work_data/clips --out .pack --max-mib 46

Crops of the test split (``fakeprobe.train.splits``) are never packed.
"""
from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

import cv2
import numpy as np
import torch

from fakeprobe.model.checkpoint import ModelMeta, save_checkpoint
from fakeprobe.model.registry import create_model
from fakeprobe.train.data import FIELDS, LANDMARK_CACHE, MANIFEST, dense_landmarks, read_manifest, split_items


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--out", default=".pack")
    ap.add_argument("--max-mib", type=float, default=44.0)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    (out / "data" / "real").mkdir(parents=True)
    model = create_model("tf_efficientnet_lite0", imagenet=True).half()
    save_checkpoint(out / "lite0_imagenet.safetensors", model, ModelMeta.for_arch("tf_efficientnet_lite0", name="lite0-imagenet-init"))
    budget = args.max_mib * 2**20 - (out / "lite0_imagenet.safetensors").stat().st_size

    per_root = []
    for root in args.data:
        items = [it for it in read_manifest(Path(root)) if it.label == 0]
        train, val = split_items(items, seed=args.seed)  # each source's default shares; the test split is dropped
        rng = np.random.default_rng(args.seed)
        # some validation crops come first: the accelerator run holds out the same groups
        per_root.append([val[i] for i in sorted(rng.permutation(len(val))[:300])] + [train[i] for i in rng.permutation(len(train))])
    # interleave the roots so a budget cut keeps both kinds of faces
    order = [it for group in zip(*[r + [None] * (max(map(len, per_root)) - len(r)) for r in per_root]) for it in group if it]
    dense = dense_landmarks(order, 1.3)
    rows, names, points, used = [], [], [], 0
    for it in order:
        ok, buf = cv2.imencode(".webp", cv2.imread(str(it.path)), [cv2.IMWRITE_WEBP_QUALITY, args.quality])
        if used + len(buf) > budget:
            break
        name = f"real/{len(rows):06d}.webp"
        (out / "data" / name).write_bytes(buf.tobytes())
        used += len(buf)
        rows.append({"file": name, "label": "real", "method": "", "source": it.source, "frame_index": 0, "time_s": 0, "track": 0,
                     "detection_score": 1.0, "landmarks5": str(np.round(it.lm5, 2).tolist())})
        if str(it.path) in dense:
            names.append(name)
            points.append(dense[str(it.path)])
    with open(out / "data" / MANIFEST, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    np.savez(out / "data" / LANDMARK_CACHE, names=np.array(names), points=np.stack(points).astype(np.float32))
    print(f"{len(rows)} crops, {used / 2**20:.1f} MiB of images; pack at {out}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
