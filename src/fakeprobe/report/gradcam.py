"""Grad-CAM heatmaps: which parts of a face crop pushed the classifier towards "fake".

Runs the torch model of one checkpoint (the first of a ``--weights`` ensemble; a packed ensemble
is one checkpoint, whose stacked feature maps give the map of its own logit) on a handful of crops; the
class-activation map is taken at the output of the backbone's last conv stage
(``forward_features``: ``conv_head`` + ``bn2`` in timm's EfficientNets), weighted by the gradient
of the fake logit, kept where positive, upsampled to the crop and drawn with a colour-blind-safe
map (viridis: dark purple = little, yellow = most).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from ..model.checkpoint import Checkpoint
from ..model.registry import Normalised

COLORMAP = "viridis"


class GradCam:
    def __init__(self, ckpt: Checkpoint, device: str = "cpu"):
        self.device = torch.device(device)
        self.net = Normalised(ckpt.build(), ckpt.meta.mean, ckpt.meta.std).eval().to(self.device)
        for p in self.net.parameters():
            p.requires_grad_(False)

    def maps(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps in [0, 1] of shape (N, S, S) for uint8 crops (N, S, S, 3), and the raw logits (N,)."""
        if len(crops) == 0:
            return np.zeros((0,) + crops.shape[1:3], np.float32), np.zeros(0, np.float32)
        net = self.net
        x = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device).permute(0, 3, 1, 2).float()
        x = (x - net.mean) / net.std
        with torch.enable_grad():
            feats = net.model.forward_features(x).detach().requires_grad_(True)  # (N, C, h, w)
            logits = net.model.forward_head(feats).reshape(-1)
            (grads,) = torch.autograd.grad(logits.sum(), feats)
        weights = grads.mean(dim=(2, 3), keepdim=True)
        cam = torch.relu((weights * feats).sum(dim=1)).detach().float().cpu().numpy()  # (N, h, w)
        size = crops.shape[1]
        out = np.zeros((len(cam), size, crops.shape[2]), np.float32)
        for i, c in enumerate(cam):
            top = float(c.max())
            if top > 0:
                out[i] = np.clip(cv2.resize(c / top, (crops.shape[2], size), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
        return out, logits.detach().float().cpu().numpy()


def colorize(cam: np.ndarray, cmap: str = COLORMAP) -> np.ndarray:
    """uint8 RGB image of a [0, 1] map."""
    from matplotlib import colormaps

    return (colormaps[cmap](np.clip(cam, 0.0, 1.0))[..., :3] * 255).round().astype(np.uint8)


def overlay(crop: np.ndarray, cam: np.ndarray, strength: float = 0.6, cmap: str = COLORMAP) -> np.ndarray:
    """The heatmap drawn over the crop; where the map is low the face shows through unchanged."""
    alpha = (strength * np.clip(cam, 0.0, 1.0))[..., None]
    out = crop.astype(np.float32) * (1.0 - alpha) + colorize(cam, cmap).astype(np.float32) * alpha
    return out.round().clip(0, 255).astype(np.uint8)
