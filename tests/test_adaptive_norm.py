"""Crop-adaptive normalisation: early batch norms that mix in each crop's own statistics."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fakeprobe.core.errors import ModelError
from fakeprobe.model.adaptive_norm import CropStatistics, early_norms
from fakeprobe.model.checkpoint import load_checkpoint, save_checkpoint
from fakeprobe.model.ensemble import pack
from fakeprobe.model.inference import TorchRunner, export_onnx
from fakeprobe.model.registry import create_model

ARCH = "tf_efficientnet_lite0"


def _trained_like(model: torch.nn.Module) -> torch.nn.Module:
    """Stored statistics unlike a random crop's, as after training (fresh ones are 0 and 1)."""
    g = torch.Generator().manual_seed(1)
    for bn in model.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.copy_(0.5 * torch.randn(bn.num_features, generator=g))
            bn.running_var.copy_(0.5 + torch.rand(bn.num_features, generator=g))
    return model.eval()


def _pair(blocks: int, mix: float) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    plain = _trained_like(create_model(ARCH))
    adapted = create_model(ARCH, adapt=(blocks, mix))
    adapted.load_state_dict(plain.state_dict())
    return plain, adapted.eval()


@torch.no_grad()
def test_fully_adaptive_stem_ignores_the_crops_contrast_and_a_plain_network_does_not():
    """With mix 1 the stem normalises each crop by its own statistics: halving a crop's contrast
    (the stem convolution is linear, without bias) leaves the logit as it was."""
    plain, adapted = _pair(blocks=1, mix=1.0)
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    low = 0.5 * x
    assert torch.allclose(adapted(low), adapted(x), atol=1e-3)
    assert (plain(low) - plain(x)).abs().max() > 1e-2


@torch.no_grad()
def test_a_crops_score_does_not_depend_on_its_batch():
    _, adapted = _pair(blocks=3, mix=0.5)
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    together = adapted(x)
    alone = torch.cat([adapted(x[i : i + 1]) for i in range(4)])
    assert torch.allclose(together, alone, atol=1e-5)


@torch.no_grad()
def test_blocks_zero_is_the_plain_network_and_adapting_changes_scores():
    plain, off = _pair(blocks=0, mix=0.5)
    _, on = _pair(blocks=3, mix=0.5)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    assert torch.equal(plain(x), off(x))
    assert (plain(x) - on(x)).abs().max() > 1e-3


def test_training_mode_is_left_alone():
    plain, adapted = _pair(blocks=2, mix=0.5)
    plain.train()
    adapted.train()
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.manual_seed(6)  # the same dropout
        want = plain(x)
        torch.manual_seed(6)
        assert torch.allclose(adapted(x), want, atol=1e-6)


def test_early_norms_are_the_stem_and_the_first_stages():
    model = create_model(ARCH)
    assert early_norms(model, 1)[0] is model.bn1
    assert len(early_norms(model, 1)) < len(early_norms(model, 3)) < len(early_norms(model, 7))
    assert model.bn2 not in early_norms(model, 7)  # the head's norm is never adapted
    with pytest.raises(ValueError, match="blocks must be 1..7"):
        early_norms(model, 8)
    with pytest.raises(ValueError, match="mix must be in"):
        create_model(ARCH, adapt=(2, 0.0))


def test_the_setting_travels_in_the_checkpoint_and_bad_values_are_refused(checkpoint, tmp_path):
    base = load_checkpoint(checkpoint)
    path = tmp_path / "adapted.safetensors"
    save_checkpoint(path, base.build(), dataclasses.replace(base.meta, adapt_blocks=3, adapt_mix=0.5))
    ckpt = load_checkpoint(path)
    assert (ckpt.meta.adapt_blocks, ckpt.meta.adapt_mix) == (3, 0.5)
    crops = np.random.default_rng(6).integers(0, 256, (2, base.meta.input_size, base.meta.input_size, 3), dtype=np.uint8)
    assert not np.allclose(TorchRunner(ckpt).logits(crops), TorchRunner(base).logits(crops), atol=1e-4)
    for bad in (dict(adapt_blocks=-1), dict(adapt_blocks=2, adapt_mix=1.5), dict(adapt_blocks=2, adapt_mix=0.0)):
        save_checkpoint(path, base.build(), dataclasses.replace(base.meta, **bad))
        with pytest.raises(ModelError, match="bad metadata"):
            load_checkpoint(path)


def test_a_pack_adapts_every_member_and_exports_to_onnx(checkpoint, tmp_path):
    base = load_checkpoint(checkpoint)
    model, meta = pack([base, base], "pair", adapt=(2, 0.5))
    assert (meta.adapt_blocks, meta.adapt_mix) == (2, 0.5)
    path = tmp_path / "pair.safetensors"
    save_checkpoint(path, model, meta)
    ckpt = load_checkpoint(path)
    crops = np.random.default_rng(7).integers(0, 256, (2, base.meta.input_size, base.meta.input_size, 3), dtype=np.uint8)
    single = dataclasses.replace(base, meta=dataclasses.replace(base.meta, adapt_blocks=2, adapt_mix=0.5))
    np.testing.assert_allclose(TorchRunner(ckpt).logits(crops), TorchRunner(single).logits(crops) / base.meta.temperature, atol=1e-5)
    export_onnx(ckpt, tmp_path / "pair.onnx")  # checks ONNX against torch itself
    _, plain_meta = pack([base, base], "pair")
    assert (plain_meta.adapt_blocks, plain_meta.adapt_mix) == (0, 0.0)


@torch.no_grad()
def test_without_amplify_a_soft_crop_is_not_scaled_up_and_a_busy_one_still_is_scaled_down():
    """Per channel, the stem's input is scaled by sqrt(stored / mixed variance): above 1 for a crop
    with less variance than stored, unless amplifying is off; below 1 for a busier crop either way."""
    torch.manual_seed(0)
    model = _trained_like(create_model(ARCH))
    bn = model.bn1
    for amplify in (True, False):
        hook = CropStatistics(1.0, amplify)
        for scale, grows in ((0.01, amplify), (100.0, False)):
            x = scale * torch.randn(1, bn.num_features, 16, 16, generator=torch.Generator().manual_seed(8))
            (out,) = hook(bn, (x,))
            centred_in, centred_out = x - x.mean((2, 3), keepdim=True), out - out.mean((2, 3), keepdim=True)
            ratio = centred_out.std((2, 3)) / centred_in.std((2, 3))
            if grows:
                assert (ratio > 1.5).all()
            else:
                assert (ratio <= 1.0 + 1e-4).all()


def test_a_pack_can_turn_amplifying_off_and_the_file_says_so(checkpoint, tmp_path):
    base = load_checkpoint(checkpoint)
    model, meta = pack([base, base], "pair", adapt=(2, 0.5, False))
    path = tmp_path / "pair.safetensors"
    save_checkpoint(path, model, meta)
    assert load_checkpoint(path).meta.adapt == (2, 0.5, False)
    _, on = pack([base, base], "pair", adapt=(2, 0.5, True))
    assert on.adapt == (2, 0.5, True)
