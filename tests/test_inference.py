"""Classifier runtimes (ONNX Runtime / torch), temperature calibration and ensembles."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from _scores import assert_logits_close, assert_probabilities_close

from fakeprobe import Detector, ScanConfig
from fakeprobe.core.errors import ModelError
from fakeprobe.model.checkpoint import load_checkpoint, save_checkpoint
from fakeprobe.model.inference import (
    EXPORT_FORMAT,
    CalibratedScorer,
    OnnxRunner,
    TorchRunner,
    cache_dir,
    make_runner,
    static_padding,
)


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (5, 128, 128, 3), dtype=np.uint8)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's legacy ONNX exporter
def test_onnx_matches_torch_and_is_cached(checkpoint, crops):
    ckpt = load_checkpoint(checkpoint)
    onnx = make_runner(ckpt, "cpu", "auto")
    assert isinstance(onnx, OnnxRunner)
    cached = cache_dir() / "onnx" / f"{ckpt.sha256}.{EXPORT_FORMAT}.onnx"
    assert cached.is_file() and str(cached).startswith(str(cache_dir()))
    mtime = cached.stat().st_mtime_ns
    OnnxRunner(ckpt)
    assert cached.stat().st_mtime_ns == mtime  # exported once per weights hash
    want = TorchRunner(ckpt).logits(crops)
    assert want.shape == (5,)
    assert_logits_close(onnx.logits(crops), want)  # another runtime: equal to float rounding (tests/_scores.py)
    assert isinstance(make_runner(ckpt, "cpu", "torch"), TorchRunner)


def test_static_padding_keeps_outputs_and_leaves_no_shape_arithmetic(checkpoint, tmp_path):
    """timm's tf_ models pad "same" from the input's shape at run time; the export fixes the padding
    for the model's input size, so the ONNX graph has no Shape nodes (the padding is constant and
    ONNX Runtime folds it into the convolutions), and the network's outputs do not change."""
    import onnx
    import torch

    from fakeprobe.model.inference import _normalised, export_onnx

    ckpt = load_checkpoint(checkpoint)
    size = ckpt.meta.input_size
    example = torch.randint(0, 256, (3, size, size, 3), dtype=torch.uint8)
    net = _normalised(ckpt)
    assert any(type(m).__name__ == "Conv2dSame" for m in net.modules())
    with torch.inference_mode():
        want = net(example)
        fixed = static_padding(_normalised(ckpt), example[:1])
        assert not any(type(m).__name__ == "Conv2dSame" for m in fixed.modules())
        assert torch.equal(fixed(example), want)
    graph = onnx.load(str(export_onnx(ckpt, tmp_path / "m.onnx"))).graph
    ops = {n.op_type for n in graph.node}
    assert "Conv" in ops and "Shape" not in ops


def test_auto_backend_scan_matches_torch(checkpoint, face_clip, run):
    out = {}
    for backend in ("auto", "torch"):
        rc, text, err = run("scan", face_clip, "--weights", checkpoint, "--backend", backend, "--frames", "3", "--json")
        out[backend] = json.loads(text)[0]
    a, b = out["auto"], out["torch"]
    assert a["verdict"] == b["verdict"]
    assert a["probability"] == pytest.approx(b["probability"], abs=2e-3)
    assert [d["logit"] for d in a["detections"]] == pytest.approx([d["logit"] for d in b["detections"]], abs=2e-3)


def test_temperature_scales_logits(checkpoint, tmp_path, crops):
    base = load_checkpoint(checkpoint)
    hot = tmp_path / "hot.safetensors"
    save_checkpoint(hot, base.build(), dataclasses.replace(base.meta, temperature=2.5))
    hot_ckpt = load_checkpoint(hot)
    raw = TorchRunner(base).logits(crops)
    scored = CalibratedScorer([(hot_ckpt, TorchRunner(hot_ckpt))]).logits(crops)
    assert np.allclose(scored, raw / 2.5, atol=1e-5)


def test_ensemble(checkpoint, tmp_path, face_clip, validate):
    base = load_checkpoint(checkpoint)
    twin = tmp_path / "twin.safetensors"
    save_checkpoint(twin, base.build(), dataclasses.replace(base.meta, name="twin", threshold=0.3))
    cfg = ScanConfig(backend="torch", frames=3)
    single = Detector(weights=checkpoint, config=cfg).scan(face_clip)
    both = Detector(weights=[checkpoint, twin], config=cfg).scan(face_clip)
    validate(json.loads(json.dumps(both.to_dict())))
    assert both.model.name == "ensemble(tiny-test,twin)"
    assert both.model.sha256.split(",") == [base.sha256, load_checkpoint(twin).sha256]
    assert both.threshold == pytest.approx(0.4)  # mean of the members' thresholds
    # same weights: same scores, to the float rounding of scans whose threads and batches follow the
    # decoder's timing (tests/_scores.py)
    assert_logits_close([d.logit for d in both.detections], [d.logit for d in single.detections])
    assert_probabilities_close(both.probability, single.probability)

    odd = tmp_path / "odd.safetensors"
    save_checkpoint(odd, base.build(), dataclasses.replace(base.meta, input_size=96))
    with pytest.raises(ModelError, match="ensemble"):
        Detector(weights=[checkpoint, odd], config=cfg)
