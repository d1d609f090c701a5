"""A checkpoint of a training run's *last* epoch (``state.pt``), beside the best-by-validation one.

``fakeprobe train`` keeps the epoch with the best self-blend validation AUC, which saturates near
0.98 and says little about real video; the dev benchmark decides between the two instead.
The metadata (architecture, crop, calibration) is taken from the run's ``best.safetensors``.

    python scripts/checkpoint_from_state.py runs/main
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from fakeprobe.model.checkpoint import load_checkpoint, save_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", help="the training run's folder (state.pt and best.safetensors)")
    ap.add_argument("--out", help="default: RUN/last.safetensors")
    args = ap.parse_args()
    run = Path(args.run)
    best = load_checkpoint(run / "best.safetensors")
    state = torch.load(run / "state.pt", map_location="cpu", weights_only=True)
    model = best.build()
    prefix = "model."
    model.load_state_dict({k[len(prefix):]: v for k, v in state["net"].items() if k.startswith(prefix)}, strict=True)
    meta = best.meta
    meta.training = {**meta.training, "epoch_kept": int(state["epoch"]) + 1, "kept": "last epoch"}
    out = Path(args.out) if args.out else run / "last.safetensors"
    sha = save_checkpoint(out, model, meta)
    print(f"wrote {out} (epoch {int(state['epoch']) + 1}, sha256 {sha})")


if __name__ == "__main__":
    main()
