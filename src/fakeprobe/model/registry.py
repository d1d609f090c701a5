"""Classifier registry: ``create_model(name)`` builds a backbone with one fake logit.

Each architecture registers itself with the input normalisation its ImageNet start expects.
The sigmoid is applied outside the network (scores are calibrated on logits).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .adaptive_norm import adapt_norms

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Architecture:
    name: str
    timm_name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    load_imagenet: Callable[[nn.Module], None] | None  # offline ImageNet start, if one ships


def _load_lite0(model: nn.Module) -> None:
    from .imagenet import load_lite0_imagenet

    load_lite0_imagenet(model, include_classifier=False)


def _timm_pretrained(timm_name: str) -> Callable[[nn.Module], None]:
    def load(model: nn.Module) -> None:
        import timm

        try:
            src = timm.create_model(timm_name, pretrained=True, num_classes=0)
        except Exception as exc:  # offline users land here
            raise RuntimeError(
                f"ImageNet weights for {timm_name} need a download, which failed ({type(exc).__name__}); "
                "use --arch tf_efficientnet_lite0 (ImageNet weights ship in a package) or --pretrained none"
            ) from None
        missing, _ = model.load_state_dict(src.state_dict(), strict=False)
        assert all(k.startswith("classifier") for k in missing), missing

    return load


ARCHITECTURES: dict[str, Architecture] = {}


def register(arch: Architecture) -> Architecture:
    ARCHITECTURES[arch.name] = arch
    return arch


register(Architecture("efficientnet_b0", "efficientnet_b0", IMAGENET_MEAN, IMAGENET_STD, _timm_pretrained("efficientnet_b0")))
register(Architecture("tf_efficientnet_lite0", "tf_efficientnet_lite0", (0.498,) * 3, (0.502,) * 3, _load_lite0))


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}") from None


def create_model(name: str, *, imagenet: bool = False, drop_rate: float = 0.2, members: int = 1,
                 adapt: tuple[int, float] | tuple[int, float, bool] = (0, 0.0)) -> nn.Module:
    """A timm backbone with a single-logit head; ``imagenet`` starts it from ImageNet weights.
    ``members`` > 1: that many of them averaged (a packed ensemble's shape, for loading its weights).
    ``adapt`` (blocks, mix[, amplify]): crop-adaptive normalisation of the early layers (``adaptive_norm``)."""
    import timm  # imported on first use: a scan with a cached ONNX export never builds a model

    arch = get_architecture(name)
    if members > 1:
        if imagenet:
            raise ValueError("an ensemble is packed from trained checkpoints, not started from ImageNet")
        return MemberMean([create_model(name, drop_rate=drop_rate, adapt=adapt) for _ in range(members)])
    model = timm.create_model(arch.timm_name, pretrained=False, num_classes=1, drop_rate=drop_rate)
    if imagenet:
        if arch.load_imagenet is None:
            raise RuntimeError(f"no ImageNet weights are available for {name}")
        arch.load_imagenet(model)
    return adapt_norms(model, *adapt)


class MemberMean(nn.Module):
    """``mean_i(scale_i * member_i(x))``; ``scale_i`` is 1 / member i's temperature.

    ``forward_features`` stacks the members' last feature maps along the channels and
    ``forward_head`` undoes that, so Grad-CAM over the stack is Grad-CAM of the ensemble's logit."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.register_buffer("scales", torch.ones(len(members)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([m.forward_features(x) for m in self.members], dim=1)

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        parts = feats.chunk(len(self.members), dim=1)
        return torch.stack([m.forward_head(f) * self.scales[i] for i, (m, f) in enumerate(zip(self.members, parts))]).mean(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class Normalised(nn.Module):
    """uint8 NHWC crops in, logits (N,) out: the exported graph owns its preprocessing."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1) * 255.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2).float()
        return self.model((x - self.mean) / self.std).squeeze(1)
