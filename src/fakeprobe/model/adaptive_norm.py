"""Crop-adaptive normalisation: early batch-norm layers that also use the crop's own statistics.

A detector trained on a few kinds of real video learns their look (noise, sharpness, colour,
compression) along with the traces of blending, so real video of a kind it never saw can land
over its threshold. The first layers' per-channel statistics of a crop carry most of that look;
mixing them into those layers' stored (training) statistics removes much of it before the later
layers judge the crop, while blending traces, which change part of a face, mostly pass. Each
crop is normalised by its own statistics, so a score never depends on what else is in the batch.
Without ``amplify`` the mixed variance is never below the stored one: a soft crop (little detail,
small variance) is not scaled up, which would make its faint noise look like something.
"""
from __future__ import annotations

import torch
from torch import nn


class CropStatistics:
    """A forward pre-hook for an eval-mode batch norm: it shifts and scales each crop's input so
    that the layer's stored statistics normalise it as ``(1 - mix) * stored + mix * the crop's own``
    would (per channel; the variances mixed alike, and kept at least the stored one unless
    ``amplify``). Training mode is left alone."""

    def __init__(self, mix: float, amplify: bool = True):
        if not 0.0 < mix <= 1.0:
            raise ValueError(f"mix must be in (0, 1], not {mix}")
        self.mix = mix
        self.amplify = amplify

    def __call__(self, bn: nn.BatchNorm2d, args: tuple[torch.Tensor]) -> tuple[torch.Tensor] | None:
        if bn.training:
            return None
        (x,) = args
        mean = bn.running_mean.view(1, -1, 1, 1)
        var = bn.running_var.view(1, -1, 1, 1)
        mixed_mean = (1 - self.mix) * mean + self.mix * x.mean((2, 3), keepdim=True)
        mixed_var = (1 - self.mix) * var + self.mix * x.var((2, 3), keepdim=True, unbiased=False)
        if not self.amplify:
            mixed_var = torch.maximum(mixed_var, var)
        return ((x - mixed_mean) * torch.sqrt((var + bn.eps) / (mixed_var + bn.eps)) + mean,)


def early_norms(model: nn.Module, blocks: int) -> list[nn.BatchNorm2d]:
    """The stem's batch norm and those of the first ``blocks`` stages of a timm EfficientNet."""
    if not (hasattr(model, "bn1") and hasattr(model, "blocks")):
        raise ValueError(f"crop-adaptive normalisation needs a timm EfficientNet-style network, not {type(model).__name__}")
    if not 0 < blocks <= len(model.blocks):
        raise ValueError(f"blocks must be 1..{len(model.blocks)}, not {blocks}")
    stages = [model.bn1, *model.blocks[:blocks]]
    return [m for stage in stages for m in stage.modules() if isinstance(m, nn.BatchNorm2d)]


def adapt_norms(model: nn.Module, blocks: int, mix: float, amplify: bool = True) -> nn.Module:
    """Make the early batch norms of ``model`` crop-adaptive (in place; nothing if ``blocks`` is 0)."""
    if blocks:
        hook = CropStatistics(mix, amplify)
        for bn in early_norms(model, blocks):
            bn.register_forward_pre_hook(hook)
    return model
