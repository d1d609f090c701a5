"""Threshold rule (per real validation video, or per crop when too few videos) and the
`fakeprobe calibrate` command."""
from __future__ import annotations

import json

import numpy as np
from safetensors import safe_open
from test_train import VAL_FRACTION, real_crops, sbi_run  # noqa: F401  (fixtures)

from fakeprobe.model.checkpoint import load_checkpoint
from fakeprobe.train.loop import MIN_THRESHOLD_VIDEOS, calibrate_logits


def _data(n_videos: int, photos: int, rng):
    logits, labels, sources = [], [], []
    for v in range(n_videos):
        base = rng.normal(-2, 1)
        for f in range(5):
            logits.append(base + rng.normal(0, 0.5)), labels.append(0), sources.append(f"clip{v}.mp4#0")
            logits.append(base + 3 + rng.normal(0, 0.5)), labels.append(1), sources.append(f"clip{v}.mp4#1")
    for p in range(photos):
        logits.append(rng.normal(-3, 1)), labels.append(0), sources.append(f"photo:img{p}.jpg#0")
    return np.array(logits), np.array(labels), sources


def test_threshold_on_real_videos_when_there_are_enough():
    z, y, src = _data(MIN_THRESHOLD_VIDEOS + 20, photos=50, rng=np.random.default_rng(0))
    t, thr, rule, metrics = calibrate_logits(z, y, src, 0.05)
    assert "validation real videos" in rule and t > 0
    from fakeprobe.model.metrics import video_level

    vy, vz, keys = video_level(src, y, z / t)
    reals = np.array([vz[i] for i, k in enumerate(keys) if vy[i] == 0 and not k.startswith("photo:")])
    flagged = (1 / (1 + np.exp(-reals)) >= thr).mean()
    assert flagged <= 0.05 and flagged > 0


def test_threshold_falls_back_to_crops_with_few_videos():
    z, y, src = _data(5, photos=200, rng=np.random.default_rng(1))
    t, thr, rule, _ = calibrate_logits(z, y, src, 0.05)
    assert "face crops" in rule and "only 5 held-out videos" in rule
    p = 1 / (1 + np.exp(-(z[y == 0] / t)))
    assert (p >= thr).mean() <= 0.05


def test_calibrate_command_rewrites_only_calibration(run, sbi_run, tmp_path):  # noqa: F811
    out = tmp_path / "recal.safetensors"
    rc, stdout, err = run("calibrate", "--weights", (sbi_run["out"] / "best.safetensors"), "--data", sbi_run["data"], "--sbi", "--out", out,
                          "--val-fraction", str(VAL_FRACTION), "--val-max", "8", "--target-fpr", "0.1")
    assert rc == 0, err
    res = json.loads(stdout)
    new, old = load_checkpoint(out), load_checkpoint((sbi_run["out"] / "best.safetensors"))
    assert new.meta.threshold == res["threshold"] and new.meta.temperature == res["temperature"]
    assert new.meta.training["recalibrated_from_sha256"] == old.sha256
    assert "FPR 0.1" in new.meta.training["threshold_rule"]
    with safe_open(str(out), "pt") as a, safe_open(str((sbi_run["out"] / "best.safetensors")), "pt") as b:
        assert set(a.keys()) == set(b.keys())
        assert all(np.array_equal(a.get_tensor(k).numpy(), b.get_tensor(k).numpy()) for k in a.keys())
