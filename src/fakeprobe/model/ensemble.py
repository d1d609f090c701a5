"""Several trained checkpoints packed into one: the mean of the members' calibrated logits.

A packed ensemble is an ordinary checkpoint (one file, one hash, one temperature and threshold
fitted to the ensemble's own output), so everything that runs a checkpoint runs it unchanged:
``scan``, the ONNX export, calibration, Grad-CAM. Runtime ensembles (``--weights a --weights b``)
average the same way but have no calibration of their own.
"""
from __future__ import annotations

import dataclasses

import torch

from .. import __version__
from ..core.errors import ModelError
from .checkpoint import Checkpoint, ModelMeta
from .registry import MemberMean, create_model

SHARED = ("arch", "input_size", "mean", "std", "crop_margin", "align", "adapt_blocks", "adapt_mix", "adapt_amplify")  # what every member must see alike


def pack(checkpoints: list[Checkpoint], name: str, adapt: tuple[int, float, bool] | None = None) -> tuple[MemberMean, ModelMeta]:
    """One model and its metadata from members that see the same crops.

    The packed model's raw logit is the mean of the members' calibrated logits, so its temperature
    starts at 1 and its threshold at the members' mean threshold: calibrate it before use.
    ``adapt`` (blocks, mix, amplify): crop-adaptive normalisation for every member (default: the members')."""
    if len(checkpoints) < 2:
        raise ModelError("pack at least two checkpoints")
    first = checkpoints[0]
    for c in checkpoints:
        if c.meta.members != 1:
            raise ModelError(f"{c.path}: already an ensemble; pack its members instead")
        if any(getattr(c.meta, k) != getattr(first.meta, k) for k in SHARED):
            raise ModelError(f"{c.path}: ensemble members must share {', '.join(SHARED)} ({first.path} differs)")
    blocks, mix, amplify = (*adapt, True)[:3] if adapt is not None else first.meta.adapt
    model = MemberMean([create_model(c.meta.arch, adapt=(blocks, mix, amplify)) for c in checkpoints])
    for member, c in zip(model.members, checkpoints):
        member.load_state_dict(c.state_dict, strict=True)
    model.scales.copy_(torch.tensor([1.0 / c.meta.temperature for c in checkpoints]))
    members = [{"sha256": c.sha256, "name": c.meta.name, "temperature": c.meta.temperature, "threshold": c.meta.threshold,
                "training": c.meta.training} for c in checkpoints]
    meta = dataclasses.replace(first.meta, name=name, version=__version__, members=len(checkpoints), temperature=1.0,
                               adapt_blocks=blocks, adapt_mix=mix if blocks else 0.0, adapt_amplify=amplify or not blocks,
                               threshold=sum(c.meta.threshold for c in checkpoints) / len(checkpoints),
                               training={"ensemble_of": members})
    return model.eval(), meta


def unpack(checkpoint: Checkpoint) -> list[Checkpoint]:
    """A packed ensemble's members as single checkpoints, each with the name, temperature, threshold and
    training record the pack keeps for it, and the pack's crop-adaptive setting: ``pack`` of them gives
    the same logits again (with other ``adapt`` options, the same networks normalised otherwise)."""
    meta = checkpoint.meta
    if meta.members < 2:
        raise ModelError(f"{checkpoint.path}: not a packed ensemble (one network)")
    recorded = meta.training.get("ensemble_of", [])
    if len(recorded) != meta.members:
        raise ModelError(f"{checkpoint.path}: its metadata records {len(recorded)} members, not {meta.members}")
    out = []
    for i, member in enumerate(recorded):
        prefix = f"members.{i}."
        state = {k.removeprefix(prefix): v for k, v in checkpoint.state_dict.items() if k.startswith(prefix)}
        training = {**member.get("training", {}), "unpacked_from": checkpoint.sha256}
        member_meta = dataclasses.replace(meta, name=member["name"], members=1, temperature=member["temperature"],
                                          threshold=member["threshold"], training=training)
        # the member keeps the identity it was packed under (its own file's hash), not the pack's
        out.append(Checkpoint(meta=member_meta, state_dict=state, path=checkpoint.path, sha256=member["sha256"]))
    return out
