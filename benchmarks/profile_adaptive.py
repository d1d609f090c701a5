"""Where crop-adaptive normalisation spends its time in ONNX Runtime (MODEL_CARD.md, v8 "Cost").

One member of the bundled model's architecture, exported three ways: plain (stored statistics,
batch norms fused into the convolutions), with the bundled setting (``adaptive_norm``), and
``pooled`` (the same arithmetic written as global pooling and one multiply-add). Each runs a batch
of crops on one thread; the ONNX Runtime profile is summed by operator type.

    python benchmarks/profile_adaptive.py [--batch 8] [--runs 20]
"""
from __future__ import annotations

import argparse
import collections
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F

from fakeprobe.model.adaptive_norm import CropStatistics, early_norms
from fakeprobe.model.checkpoint import load_checkpoint
from fakeprobe.model.registry import create_model


class PooledStatistics(CropStatistics):
    """``CropStatistics`` with the mean and variance as global pooling of x and x², and the
    shift and scale as one multiply-add (equal up to float rounding)."""

    def __call__(self, bn, args):
        if bn.training:
            return None
        (x,) = args
        mean, var = bn.running_mean.view(1, -1, 1, 1), bn.running_var.view(1, -1, 1, 1)
        mean_x = F.adaptive_avg_pool2d(x, 1)
        var_x = torch.clamp(F.adaptive_avg_pool2d(x * x, 1) - mean_x * mean_x, min=0)
        mixed_mean = (1 - self.mix) * mean + self.mix * mean_x
        mixed_var = (1 - self.mix) * var + self.mix * var_x
        if not self.amplify:
            mixed_var = torch.maximum(mixed_var, var)
        scale = torch.sqrt((var + bn.eps) / (mixed_var + bn.eps))
        return (x * scale + (mean - mixed_mean * scale),)


def member(variant: str, blocks: int, mix: float, amplify: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    net = create_model("tf_efficientnet_lite0").eval()
    hook = {"plain": None, "adaptive": CropStatistics, "pooled": PooledStatistics}[variant]
    if hook:
        for bn in early_norms(net, blocks):
            bn.register_forward_pre_hook(hook(mix, amplify))
    return net


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    meta = load_checkpoint(None).meta
    blocks, mix, amplify = meta.adapt_blocks or 3, meta.adapt_mix or 0.25, bool(meta.adapt_amplify)
    x = torch.randn(args.batch, 3, meta.input_size, meta.input_size)
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("plain", "adaptive", "pooled"):
            path = Path(tmp) / f"{variant}.onnx"
            with torch.no_grad():
                torch.onnx.export(member(variant, blocks, mix, amplify), (x,), str(path), opset_version=17, dynamo=False)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            plain = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            feed = {plain.get_inputs()[0].name: x.numpy()}
            for _ in range(3):
                plain.run(None, feed)
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                plain.run(None, feed)
                times.append(time.perf_counter() - t)
            opts.enable_profiling = True
            opts.profile_file_prefix = str(Path(tmp) / variant)
            profiled = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            for _ in range(args.runs):
                profiled.run(None, feed)
            by_op = collections.Counter()
            for event in json.loads(Path(profiled.end_profiling()).read_text()):
                if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
                    by_op[event["args"]["op_name"]] += event["dur"] / args.runs / 1000
            ops = ", ".join(f"{op} {ms:.1f}" for op, ms in by_op.most_common(8))
            print(f"{variant:9s} {np.median(times) * 1000:6.1f} ms per batch of {args.batch} (median); by operator, ms: {ops}")


if __name__ == "__main__":
    main()
