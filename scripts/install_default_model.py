"""Copy a trained checkpoint into the package as the bundled default model.

The weights are unchanged; the metadata gets the model's public name and a plain description
of the training data (the training run only knows its folder names).

    python scripts/install_default_model.py runs/gpu2/best.safetensors \
        --data "UTKFace (9,820 photos) + frames of 44 clips/real videos, ../shared/data"
"""
from __future__ import annotations

import argparse
from pathlib import Path

from fakeprobe.model.checkpoint import DEFAULT_WEIGHTS, load_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--name", default="fakeprobe-sbi-lite0")
    ap.add_argument("--data", required=True, help="description of the training data")
    args = ap.parse_args()
    ckpt = load_checkpoint(Path(args.checkpoint))
    ckpt.meta.name = args.name
    ckpt.meta.training["data"] = args.data
    ckpt.meta.training["source_checkpoint_sha256"] = ckpt.sha256
    sha = ckpt.save_as(DEFAULT_WEIGHTS, ckpt.meta)
    print(f"installed {DEFAULT_WEIGHTS} (sha256 {sha}, {DEFAULT_WEIGHTS.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
