"""Run a checkpoint on batches of uint8 face crops: ONNX Runtime on CPU, torch elsewhere."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from .checkpoint import Checkpoint
from .registry import Normalised


class Runner(Protocol):
    def logits(self, crops: np.ndarray) -> np.ndarray:
        """Raw logits (N,) for uint8 crops (N, S, S, 3)."""


def _normalised(ckpt: Checkpoint) -> Normalised:
    return Normalised(ckpt.build(), ckpt.meta.mean, ckpt.meta.std).eval()


class TorchRunner:
    def __init__(self, ckpt: Checkpoint, device: str = "cpu", batch_size: int = 32):
        self.device = torch.device(device)
        self.net = _normalised(ckpt).to(self.device)
        self.batch_size = batch_size

    @torch.inference_mode()
    def logits(self, crops: np.ndarray) -> np.ndarray:
        out = [
            self.net(torch.from_numpy(np.ascontiguousarray(crops[i : i + self.batch_size])).to(self.device)).float().cpu().numpy()
            for i in range(0, len(crops), self.batch_size)
        ]
        return np.concatenate(out) if out else np.zeros(0, np.float32)


def cache_dir() -> Path:
    base = os.environ.get("FAKEPROBE_CACHE") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fakeprobe"


def static_padding(net: torch.nn.Module, example: torch.Tensor) -> torch.nn.Module:
    """``net`` with each "same"-padded convolution that computes its padding from the input's shape
    at run time (timm's ``Conv2dSame``, used by the ``tf_`` models) replaced by a fixed zero padding
    for the input size of ``example``, followed by a plain convolution: the same outputs, and an
    ONNX graph whose Pad nodes ONNX Runtime can fold into the convolutions (with the computed
    padding it cannot; those Pads and the layout changes around them were ~14% of its time)."""
    sizes: dict[str, tuple[int, int]] = {}
    same = {name: m for name, m in net.named_modules() if type(m).__name__ == "Conv2dSame"}
    hooks = [m.register_forward_pre_hook(lambda m, args, name=name: sizes.__setitem__(name, tuple(args[0].shape[-2:])))
             for name, m in same.items()]
    try:
        with torch.inference_mode():
            net(example)
    finally:
        for h in hooks:
            h.remove()
    from timm.layers.padding import get_same_padding

    for name, conv in same.items():
        pads = []
        for size, k, st, d in zip(sizes[name], conv.kernel_size, conv.stride, conv.dilation):
            total = get_same_padding(size, k, st, d)  # what the module computes at run time, split as it splits it
            pads.append((total // 2, total - total // 2))
        plain = torch.nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, 0, conv.dilation, conv.groups,
                                conv.bias is not None)
        plain.load_state_dict(conv.state_dict())
        parent, _, attr = name.rpartition(".")
        setattr(net.get_submodule(parent) if parent else net, attr,
                torch.nn.Sequential(torch.nn.ZeroPad2d((*pads[1], *pads[0])), plain))
    return net


def export_onnx(ckpt: Checkpoint, path: Path, *, check_atol: float = 1e-4) -> Path:
    """Export the checkpoint to ONNX and verify it matches torch on a random batch."""
    import onnxruntime as ort

    size = ckpt.meta.input_size
    example = torch.randint(0, 256, (2, size, size, 3), dtype=torch.uint8)
    reference = _normalised(ckpt)
    net = static_padding(_normalised(ckpt), example)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with warnings.catch_warnings():  # the exporter's notes (constant folding, its own deprecation); the result is checked below
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net,
            (example,),
            str(tmp),
            input_names=["crops"],
            output_names=["logits"],
            dynamic_axes={"crops": {0: "n"}, "logits": {0: "n"}},
            opset_version=17,
            dynamo=False,
        )
    sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        want = reference(example).numpy()
    got = sess.run(None, {"crops": example.numpy()})[0]
    if not np.allclose(got, want, atol=check_atol, rtol=0):
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"ONNX export differs from torch by {np.abs(got - want).max():.2e}")
    tmp.replace(path)
    return path


# ONNX Runtime on CPU runs a batch of 8 crops as fast per crop as a batch of 32, but its memory
# arena keeps the largest batch's activations: 32 crops of 224 px cost ~680 MiB of RSS, 8 ~170 MiB
# (benchmarks/bench_scan.py, BENCHMARKS.md). Larger requested batches are run in pieces of this size.
ONNX_CPU_BATCH = 8
# With one intra-op thread (the classifier working beside a busy decoder) batches of 1-2 crops are
# the fastest per crop (9.4 vs 10.2 ms at 8, tf_efficientnet_lite0 at 224 px) and need the least memory.
ONNX_ONE_THREAD_BATCH = 2


EXPORT_FORMAT = "v2"  # part of the cached file's name: bump when export_onnx changes what it writes


class OnnxRunner:
    """ONNX Runtime session for a checkpoint, exported once and cached by the weights' hash."""

    def __init__(self, ckpt: Checkpoint, batch_size: int = 32, threads: int | None = None):
        import onnxruntime as ort

        path = cache_dir() / "onnx" / f"{ckpt.sha256 or 'nohash'}.{EXPORT_FORMAT}.onnx"
        if not path.exists() or not ckpt.sha256:
            export_onnx(ckpt, path)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.batch_size = max(1, min(batch_size, ONNX_CPU_BATCH if threads != 1 else ONNX_ONE_THREAD_BATCH))

    def logits(self, crops: np.ndarray) -> np.ndarray:
        out = [
            self.session.run(None, {"crops": np.ascontiguousarray(crops[i : i + self.batch_size])})[0]
            for i in range(0, len(crops), self.batch_size)
        ]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def make_runner(ckpt: Checkpoint, device: str = "cpu", backend: str = "auto", batch_size: int = 32, threads: int | None = None) -> Runner:
    if backend == "onnx" or (backend == "auto" and device == "cpu"):
        try:
            return OnnxRunner(ckpt, batch_size=batch_size, threads=threads)
        except Exception:
            if backend == "onnx":
                raise
    return TorchRunner(ckpt, device=device, batch_size=batch_size)


class CalibratedScorer:
    """Calibrated logits (raw / temperature), averaged over one or more checkpoints (an ensemble)."""

    def __init__(self, members: list[tuple[Checkpoint, Runner]]):
        self.members = members

    def logits(self, crops: np.ndarray) -> np.ndarray:
        return np.mean([r.logits(crops) / c.meta.temperature for c, r in self.members], axis=0)
