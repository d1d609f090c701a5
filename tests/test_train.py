"""``fakeprobe train``: SBI and real/fake training on tiny crop folders, checkpoints with calibration
metadata, resume, the 5-point fallback, and a trained model used by ``scan``.

Everything runs at 64 px with a random-init Lite0 (``--pretrained none``) for a couple of steps:
these tests check the plumbing, not the accuracy.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fakeprobe.faces.crop import crop_face, crop_transform, transform_points
from fakeprobe.model.checkpoint import load_checkpoint
from fakeprobe.train.data import FIELDS, LANDMARK_CACHE, MANIFEST, read_manifest, split_items
from fakeprobe.train.sbi import face_points_from5, self_blend
from fakeprobe.train.splits import split_of

BOX = np.array([181.05, 62.16, 267.75, 172.05])  # MTCNN on the astronaut photo
LM5 = np.array([[205.0, 101.7], [246.8, 103.7], [224.7, 129.0], [201.7, 139.2], [245.3, 141.9]])
CROP = 96  # crops on disk; training resizes them to --size
VAL_FRACTION = 0.3
FAST = ("--epochs", "1", "--steps", "2", "--batch-size", "4", "--size", "64", "--pretrained", "none", "--workers", "0",
        "--val-max", "8", "--val-fraction", str(VAL_FRACTION))


def _frame(photo, rng):
    """The photo under a random small similarity transform and colour change; (image, box, lm5)."""
    h, w = photo.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-8, 8), rng.uniform(0.85, 1.15))
    m[:, 2] += rng.uniform(-15, 15, 2)
    img = cv2.warpAffine(photo, m, (w, h), borderMode=cv2.BORDER_REFLECT_101)
    img = np.clip(img.astype(np.float32) * rng.uniform(0.85, 1.15, 3) + rng.uniform(-15, 15), 0, 255).astype(np.uint8)
    corners = transform_points(m, np.array([[BOX[0], BOX[1]], [BOX[2], BOX[1]], [BOX[0], BOX[3]], [BOX[2], BOX[3]]]))
    box = np.array([*corners.min(0), *corners.max(0)])
    return img, box, transform_points(m, LM5)


def make_crops(root: Path, photo, *, reals: int, fakes: int = 0, frames: int = 3, seed: int = 0, first_fake: int = 0) -> Path:
    """A crop folder as ``fakeprobe extract`` writes it: ``reals`` + ``fakes`` source videos with
    ``frames`` crops each (fake videos numbered from ``first_fake``); fakes are self-blends of the
    same photo. Which sources land in validation follows from their names (a stable hash)."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, n in (("real", reals), ("fake", fakes)):
        (root / label).mkdir(parents=True, exist_ok=True)
        for v in range(first_fake, first_fake + n) if label == "fake" else range(n):
            source = f"/clips/{label}/{label}_{v:02d}.mp4"
            for f in range(frames):
                img, box, lm = _frame(photo, rng)
                crop = crop_face(img, box, lm, size=CROP)
                lm_crop = transform_points(crop_transform(box, lm, CROP, 1.3, False), lm)
                if label == "fake":
                    crop, _ = self_blend(crop, face_points_from5(lm_crop), rng)
                name = f"{label}/{label}_{v:02d}_f{f:06d}_t0.png"
                cv2.imwrite(str(root / name), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
                rows.append({"file": name, "label": label, "method": "SBI" if label == "fake" else "", "source": source,
                             "frame_index": f * 5, "time_s": f * 0.2, "track": 0, "detection_score": 0.999,
                             "landmarks5": json.dumps(np.round(lm_crop, 2).tolist())})
    with open(root / MANIFEST, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    return root


def _cli(*args) -> tuple[int, str, str]:
    """The CLI in-process, usable from module-scoped fixtures (no capsys there)."""
    from fakeprobe.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def real_crops(tmp_path_factory, photo) -> Path:
    root = make_crops(tmp_path_factory.mktemp("crops") / "real_only", photo, reals=8)
    train, val = split_items(read_manifest(root), VAL_FRACTION)
    assert train and val, "pick other source names: the validation split must not be empty"
    return root


@pytest.fixture(scope="module")
def sbi_run(tmp_path_factory, real_crops) -> dict:
    data = tmp_path_factory.mktemp("sbi") / "data"
    shutil.copytree(real_crops, data)
    out = data.parent / "model"
    rc, stdout, stderr = _cli("train", "--data", data, "--out", out, "--sbi", *FAST, "--name", "sbi-test")
    return {"rc": rc, "stdout": stdout, "stderr": stderr, "data": data, "out": out}


def test_sbi_training_writes_a_calibrated_checkpoint(sbi_run):
    assert sbi_run["rc"] == 0, sbi_run["stderr"]
    best = sbi_run["out"] / "best.safetensors"
    assert best.exists() and (sbi_run["out"] / "state.pt").exists()
    ckpt = load_checkpoint(best)
    meta = ckpt.meta
    assert meta.arch == "tf_efficientnet_lite0" and meta.input_size == 64 and meta.name == "sbi-test"
    assert math.isfinite(meta.temperature) and 0.05 <= meta.temperature <= 20.0
    assert 0.0 < meta.threshold <= 1.0 + 1e-6
    t = meta.training
    assert t["sbi"] is True and t["epochs_run"] == 1 and t["train_crops"] > 0 and t["val_crops"] > 0
    assert t["threshold_rule"].startswith("FPR 0.05 on ") and "face crops" in t["threshold_rule"]  # too few videos
    assert set(t["val"]) == {"auc", "ap", "eer", "acc", "logloss", "ece"}
    assert 0.0 <= t["val"]["auc"] <= 1.0  # both classes in validation: a real number
    assert [h["epoch"] for h in t["history"]] == [1] and t["history"][0]["steps"] == 2
    assert t["val_videos"] and all(v.endswith(".mp4") for v in t["val_videos"])
    # the CLI's summary and its per-epoch progress
    summary = json.loads(sbi_run["stdout"])
    assert summary["checkpoint"] == str(best) and summary["sha256"] == ckpt.sha256
    assert "epoch 1/1: loss" in sbi_run["stderr"] and "validation AUC" in sbi_run["stderr"]
    assert "temperature" in sbi_run["stderr"]


def test_dense_landmarks_are_cached_beside_the_manifest(sbi_run):
    from fakeprobe.faces import landmarks

    if not landmarks.available():
        pytest.skip("dlib is not installed")
    cache = sbi_run["data"] / LANDMARK_CACHE
    assert cache.exists()
    with np.load(cache) as z:
        names, points = z["names"].tolist(), z["points"]
    items = read_manifest(sbi_run["data"])
    assert sorted(names) == sorted(it.path.relative_to(sbi_run["data"]).as_posix() for it in items)
    assert points.shape == (len(items), 68, 2)
    assert (points > -0.2 * CROP).all() and (points < 1.2 * CROP).all()
    assert "dlib" in sbi_run["stderr"]


def test_info_shows_calibration(run, sbi_run):
    best = sbi_run["out"] / "best.safetensors"
    rc, out, _ = run("info", "--weights", best)
    assert rc == 0
    info = json.loads(out)
    meta = load_checkpoint(best).meta
    assert info["temperature"] == pytest.approx(meta.temperature) and info["threshold"] == pytest.approx(meta.threshold)
    assert info["training"]["sbi"] is True and "val" in info["training"]
    assert "history" not in info["training"]
    rc, out, _ = run("info", "--weights", best, "--history")
    assert rc == 0 and json.loads(out)["training"]["history"][0]["epoch"] == 1


def test_trained_checkpoint_scans(run, sbi_run, face_clip):
    best = sbi_run["out"] / "best.safetensors"
    rc, out, err = run("scan", face_clip, "--weights", best, "--backend", "torch", "--frames", "3", "--json")
    assert rc in (0, 1), err
    (rec,) = json.loads(out)
    assert rec["verdict"] in ("REAL", "FAKE") and rec["faces"] >= 3
    assert rec["threshold"] == pytest.approx(load_checkpoint(best).meta.threshold, abs=1e-4)
    assert (rc == 1) == (rec["verdict"] == "FAKE")
    rc, out, _ = run("scan", face_clip, "--weights", best, "--backend", "torch", "--frames", "3")
    assert rc in (0, 1) and ("REAL" in out or "FAKE" in out)


def test_resume_continues(sbi_run, tmp_path):
    assert sbi_run["rc"] == 0
    out = tmp_path / "model"
    shutil.copytree(sbi_run["out"], out)
    # also exercises cross-person (X-ray style) fakes
    rc, _, err = _cli("train", "--data", sbi_run["data"], "--out", out, "--sbi", *FAST, "--epochs", "2", "--resume", "--xray", "0.5")
    assert rc == 0, err
    assert "resumed after epoch 1" in err
    assert "epoch 2/2" in err and "epoch 1/2" not in err
    t = load_checkpoint(out / "best.safetensors").meta.training
    assert t["epochs_run"] == 2 and [h["epoch"] for h in t["history"]] == [1, 2]
    assert t["xray_fraction"] == 0.5
    import torch

    assert torch.load(out / "state.pt", map_location="cpu", weights_only=True)["epoch"] == 1  # 0-based: two done
    # resuming a finished run trains nothing more and still writes a checkpoint
    rc, _, err = _cli("train", "--data", sbi_run["data"], "--out", out, "--sbi", *FAST, "--epochs", "2", "--resume")
    assert rc == 0, err
    assert "epoch 3" not in err and load_checkpoint(out / "best.safetensors").meta.training["epochs_run"] == 2


def test_interrupted_and_resumed_equals_uninterrupted(sbi_run, tmp_path, monkeypatch):
    """Stopped after epoch 1 of 2 and resumed, training ends with the very weights of a run that
    was never stopped: the state file carries optimiser, schedule, RNG and history."""
    import fakeprobe.train.loop as train_mod

    assert sbi_run["rc"] == 0
    args = ("--data", sbi_run["data"], "--sbi", *FAST, "--epochs", "2")
    rc, _, err = _cli("train", *args, "--out", tmp_path / "straight")
    assert rc == 0, err

    real_loader, made = train_mod.DataLoader, []

    def interrupt_second_epoch(*a, **k):
        made.append(1)
        if len(made) == 2:
            raise KeyboardInterrupt
        return real_loader(*a, **k)

    monkeypatch.setattr(train_mod, "DataLoader", interrupt_second_epoch)
    rc, _, err = _cli("train", *args, "--out", tmp_path / "stopped")
    assert rc == 130 and "epoch 1/2" in err and "epoch 2/2" not in err
    monkeypatch.setattr(train_mod, "DataLoader", real_loader)
    rc, _, err = _cli("train", *args, "--out", tmp_path / "stopped", "--resume")
    assert rc == 0, err
    assert "resumed after epoch 1" in err

    a = load_checkpoint(tmp_path / "straight" / "best.safetensors")
    b = load_checkpoint(tmp_path / "stopped" / "best.safetensors")
    for k in a.state_dict:
        assert np.array_equal(a.state_dict[k].numpy(), b.state_dict[k].numpy()), k
    ha, hb = a.meta.training["history"], b.meta.training["history"]
    assert [(h["epoch"], h["loss"], h["val_auc"]) for h in ha] == [(h["epoch"], h["loss"], h["val_auc"]) for h in hb]
    assert (a.meta.temperature, a.meta.threshold) == (b.meta.temperature, b.meta.threshold)


def test_best_epoch_by_validation_auc_is_kept(sbi_run, tmp_path, monkeypatch):
    """The checkpoint holds the epoch with the best validation AUC, not the last one."""
    import torch

    import fakeprobe.train.loop as train_mod

    assert sbi_run["rc"] == 0
    real_metrics = train_mod.compute_metrics

    def scripted(aucs):
        seq = list(aucs)

        def metrics(labels, logits, **kw):
            m = real_metrics(labels, logits, **kw)
            if "threshold" not in kw:  # the per-epoch validation, not the final calibrated summary
                m["auc"] = seq.pop(0)
            return m

        return metrics

    for aucs, best_is_last in (([0.9, 0.6], False), ([0.6, 0.9], True)):
        out = tmp_path / f"model{int(best_is_last)}"
        monkeypatch.setattr(train_mod, "compute_metrics", scripted(aucs))
        rc, _, err = _cli("train", "--data", sbi_run["data"], "--out", out, "--sbi", *FAST, "--epochs", "2", "--lr", "0.01")
        assert rc == 0, err
        best = load_checkpoint(out / "best.safetensors")
        assert [h["val_auc"] for h in best.meta.training["history"]] == aucs
        last = torch.load(out / "state.pt", map_location="cpu", weights_only=True)["net"]
        same = all(torch.equal(v.float(), last["model." + k].float()) for k, v in best.state_dict.items())
        assert same == best_is_last, aucs


def test_same_seed_same_model(sbi_run, tmp_path):
    """A fixed seed reproduces the run: same crops, fakes, augmentations, order and initialisation."""
    assert sbi_run["rc"] == 0
    rc, _, err = _cli("train", "--data", sbi_run["data"], "--out", tmp_path / "again", "--sbi", *FAST, "--name", "sbi-test")
    assert rc == 0, err
    a = load_checkpoint(sbi_run["out"] / "best.safetensors")
    b = load_checkpoint(tmp_path / "again" / "best.safetensors")
    for k in a.state_dict:
        assert np.array_equal(a.state_dict[k].numpy(), b.state_dict[k].numpy()), k
    assert a.meta.threshold == b.meta.threshold and a.meta.temperature == b.meta.temperature


def test_the_split_does_not_depend_on_the_seed(sbi_run, tmp_path):
    """Another --seed changes the run, never which groups it holds out: members of one ensemble
    trained with different seeds must all leave the test split alone."""
    assert sbi_run["rc"] == 0
    rc, _, err = _cli("train", "--data", sbi_run["data"], "--out", tmp_path / "seed1", "--sbi", *FAST, "--seed", "1")
    assert rc == 0, err
    a = load_checkpoint(sbi_run["out"] / "best.safetensors").meta.training
    b = load_checkpoint(tmp_path / "seed1" / "best.safetensors").meta.training
    assert a["seed"] == 0 and b["seed"] == 1 and a["split_seed"] == b["split_seed"] == 0
    assert a["val_videos"] == b["val_videos"] and a["sources"] == b["sources"]
    assert [split_of(v, seed=1, holdout=(VAL_FRACTION, 0.0)) for v in a["val_videos"]] != \
        [split_of(v, holdout=(VAL_FRACTION, 0.0)) for v in a["val_videos"]], "pick names whose seed-1 split differs"


def test_five_point_fallback_without_dlib(run, monkeypatch, real_crops, tmp_path):
    from fakeprobe.faces import landmarks

    monkeypatch.setattr(landmarks, "available", lambda: False)
    data = tmp_path / "data"
    shutil.copytree(real_crops, data)
    (data / LANDMARK_CACHE).unlink(missing_ok=True)
    rc, out, err = run("train", "--data", data, "--out", tmp_path / "model", "--sbi", *FAST)
    assert rc == 0, err
    assert "5-point outline" in err
    assert not (data / LANDMARK_CACHE).exists()
    assert (tmp_path / "model" / "best.safetensors").exists()


def test_real_and_fake_training(run, photo, tmp_path):
    data = make_crops(tmp_path / "data", photo, reals=6, fakes=6, frames=2, seed=1)
    val = split_items(read_manifest(data), VAL_FRACTION)[1]
    assert {it.label for it in val} == {0, 1}
    rc, out, err = run("train", "--data", data, "--out", tmp_path / "model", *FAST)
    assert rc == 0, err
    meta = load_checkpoint(tmp_path / "model" / "best.safetensors").meta
    assert meta.training["sbi"] is False and 0.0 <= meta.training["val"]["auc"] <= 1.0
    assert not (data / LANDMARK_CACHE).exists()  # dense landmarks are only for self-blending


def test_training_refuses_real_only_data_without_sbi(run, real_crops, tmp_path):
    rc, _, err = run("train", "--data", real_crops, "--out", tmp_path / "model", *FAST)
    assert rc == 2
    assert "both real and fake" in err and "--sbi" in err
    assert not (tmp_path / "model" / "best.safetensors").exists()


def test_training_refuses_a_one_class_validation_split(run, photo, tmp_path):
    """Real and fake crops, but every fake source lands in training: validation AUC is undefined,
    so no checkpoint could ever be chosen. Say so before training, not with a crash after it."""
    data = make_crops(tmp_path / "data", photo, reals=6, fakes=2, frames=1, seed=2, first_fake=3)
    train, val = split_items(read_manifest(data), VAL_FRACTION)
    assert val and {it.label for it in val} == {0} and any(it.label == 1 for it in train)
    rc, _, err = run("train", "--data", data, "--out", tmp_path / "model", *FAST)
    assert rc == 2
    assert "validation split" in err and "only real crops" in err
    assert "epoch 1/1" not in err  # refused before training, not after it
    assert not (tmp_path / "model" / "best.safetensors").exists()


def test_training_errors(run, tmp_path, real_crops):
    rc, _, err = run("train", "--data", tmp_path / "nothing", "--out", tmp_path / "model", "--sbi", *FAST)
    assert rc == 2 and MANIFEST in err
    rc, _, err = run("train", "--data", real_crops, "--out", tmp_path / "model", "--sbi", *FAST, "--arch", "resnet9000")
    assert rc == 2 and "unknown architecture" in err


def _real_item(tmp_path: Path, photo, k: int = 0):
    """A 224 px real crop saved as a file, as a CropItem with rough 5-point landmarks; the k-th is cut
    20·k px further right."""
    from fakeprobe.train.data import CropItem

    face = cv2.resize(photo[30:230, 130 + 20 * k:330 + 20 * k], (224, 224), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(tmp_path / f"real{k}.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    lm5 = np.array([[80, 95], [144, 95], [112, 128], [88, 160], [136, 160]], np.float32)
    return face, CropItem(tmp_path / f"real{k}.png", 0, "", f"/d/utkface/1_0_0_2017010100000000{k}.jpg", lm5)


@pytest.mark.parametrize("softening, augment, softened", [(1.0, True, 20), (0.0, True, 0), (1.0, False, 0)])
def test_softening_softens_the_real_before_its_fake_is_made(photo, tmp_path, monkeypatch, softening, augment, softened):
    """``--softening``: the real crop is softened and its fake blended from the softened crop (a soft
    video, then manipulated), so the pair keeps its blending cue; never at validation."""
    from fakeprobe.train import loop

    face, item = _real_item(tmp_path, photo)
    softened_images, blended_from = [], []
    monkeypatch.setattr(loop, "soften", lambda img, rng: softened_images.append(cv2.GaussianBlur(img, (0, 0), 3)) or softened_images[-1])
    real_blend = loop.self_blend
    monkeypatch.setattr(loop, "self_blend", lambda img, pts, rng: blended_from.append(img) or real_blend(img, pts, rng))
    monkeypatch.setattr(loop, "degrade_alike", lambda out, rng, **kw: out)  # the crops as made, to compare
    cfg = loop.TrainConfig(data=[], out=tmp_path, sbi=True, softening=softening, codec=0.0)
    ds = loop.PairDataset([item] * 20, {}, cfg, augment=augment, seed=0)
    reals = []
    for i in range(20):
        images, labels = ds[i]
        assert images.shape[0] == 2 and labels.tolist() == [0.0, 1.0]
        reals.append(images[0].numpy())
    assert len(softened_images) == softened and len(blended_from) == 20
    if softened:  # the real the model sees is the softened one its fake was made from
        assert all(np.array_equal(a, b) for a, b in zip(softened_images, blended_from))
        assert all(np.array_equal(a, r) for a, r in zip(softened_images, reals))
    else:
        assert all(np.array_equal(b, face) for b in blended_from)


def test_a_softened_reals_donor_face_is_softened_alike(photo, tmp_path, monkeypatch):
    """A cross blend from a softened real takes its donor face through the same softening, so a
    crisp face pasted into a soft one is not the cue the model learns."""
    from fakeprobe.train import loop

    faces, items = zip(*(_real_item(tmp_path, photo, k) for k in (0, 1)))
    draws = []
    monkeypatch.setattr(loop, "soften", lambda img, rng: draws.append(rng.random()) or cv2.GaussianBlur(img, (0, 0), 3))
    donors = []
    monkeypatch.setattr(loop, "cross_blend", lambda img, lm5, pts, donor, dlm5, rng: donors.append(donor) or (img, None))
    cfg = loop.TrainConfig(data=[], out=tmp_path, sbi=True, softening=1.0, xray_fraction=1.0, codec=0.0)
    ds = loop.PairDataset(list(items), {}, cfg, augment=True, seed=0)
    for i in range(6):
        ds[i]
    assert len(donors) == 6 and len(draws) == 12
    assert draws[0::2] == draws[1::2]  # the real and its donor: the same random softening
    assert all(not np.array_equal(d, f) for d in donors for f in faces)


@pytest.mark.parametrize("share, augment, reframed", [(1.0, True, 10), (0.0, True, 0), (1.0, False, 0)])
def test_reframe_cuts_a_real_and_its_fake_alike_after_degrading(photo, tmp_path, monkeypatch, share, augment, reframed):
    """``--reframe``: the pair is cut by one draw (the same edges) after the codec, as ``scan`` crops a
    decoded frame; never at validation."""
    from fakeprobe.train import loop

    _, item = _real_item(tmp_path, photo)
    order, draws = [], []
    monkeypatch.setattr(loop, "degrade_alike", lambda out, rng, **kw: order.append("degrade") or out)
    monkeypatch.setattr(loop, "reframe", lambda img, rng: order.append("reframe") or draws.append(rng.random()) or img[::-1].copy())
    cfg = loop.TrainConfig(data=[], out=tmp_path, sbi=True, reframe=share, codec=0.0)
    ds = loop.PairDataset([item] * 10, {}, cfg, augment=augment, seed=0)
    for i in range(10):
        images, _ = ds[i]
        assert images.shape[0] == 2
    assert len(draws) == 2 * reframed
    assert draws[0::2] == draws[1::2]  # the real and its fake: the same cut
    if reframed:
        assert order[:3] == ["degrade", "reframe", "reframe"]


@pytest.mark.parametrize("share, augment, degraded", [(1.0, True, 12), (0.0, True, 0), (1.0, False, 0)])
def test_smoothing_and_crushing_degrade_the_real_before_its_fake_is_made(photo, tmp_path, monkeypatch, share, augment, degraded):
    """``--smoothing`` and ``--crushing``: the real crop gets a beauty filter and a starved bitrate,
    after any softening, and its fake is blended from the result (such a video, then manipulated);
    never at validation."""
    from fakeprobe.train import loop

    face, item = _real_item(tmp_path, photo)
    order, blended_from = [], []
    monkeypatch.setattr(loop, "soften", lambda img, rng: order.append("soften") or img)
    monkeypatch.setattr(loop, "smooth_skin", lambda img, rng: order.append("smooth") or img[::-1].copy())
    monkeypatch.setattr(loop, "crush", lambda img, rng: order.append("crush") or 255 - img)
    real_blend = loop.self_blend
    monkeypatch.setattr(loop, "self_blend", lambda img, pts, rng: blended_from.append(img) or real_blend(img, pts, rng))
    monkeypatch.setattr(loop, "degrade_alike", lambda out, rng, **kw: out)
    cfg = loop.TrainConfig(data=[], out=tmp_path, sbi=True, softening=1.0, smoothing=share, crushing=share, codec=0.0)
    ds = loop.PairDataset([item] * 12, {}, cfg, augment=augment, seed=0)
    reals = [ds[i][0][0].numpy() for i in range(12)]
    assert order.count("crush") == order.count("smooth") == degraded
    if degraded:
        assert order == ["soften", "smooth", "crush"] * 12
        expected = 255 - face[::-1]
        assert all(np.array_equal(b, expected) and np.array_equal(r, expected) for b, r in zip(blended_from, reals))
    else:
        assert all(np.array_equal(b, face) for b in blended_from)


def test_a_degraded_reals_donor_face_is_degraded_alike(photo, tmp_path, monkeypatch):
    from fakeprobe.train import loop

    _, items = zip(*(_real_item(tmp_path, photo, k) for k in (0, 1)))
    draws = []
    for name in ("soften", "smooth_skin", "crush"):
        monkeypatch.setattr(loop, name, lambda img, rng, name=name: draws.append((name, rng.random())) or img)
    monkeypatch.setattr(loop, "cross_blend", lambda img, lm5, pts, donor, dlm5, rng: (img, None))
    cfg = loop.TrainConfig(data=[], out=tmp_path, sbi=True, softening=1.0, smoothing=1.0, crushing=1.0, xray_fraction=1.0, codec=0.0)
    ds = loop.PairDataset(list(items), {}, cfg, augment=True, seed=0)
    for i in range(4):
        ds[i]
    assert len(draws) == 24
    for k in range(4):  # per item: the real's three degradations, then the donor's, with the same draws
        assert draws[6 * k : 6 * k + 3] == draws[6 * k + 3 : 6 * k + 6]
        assert [d[0] for d in draws[6 * k : 6 * k + 3]] == ["soften", "smooth_skin", "crush"]


@pytest.mark.parametrize("balance, mead_share", [(0.0, 0.1), (0.5, 0.25), (1.0, 0.5)])
def test_source_weights_give_each_source_its_balanced_share(balance, mead_share):
    from fakeprobe.train.data import CropItem
    from fakeprobe.train.loop import source_weights

    lm5 = np.zeros((5, 2), np.float32)
    items = [CropItem(Path(f"tv{i}.png"), 0, "", f"/d/tv_faces/lrcar_{i:05d}.mp4", lm5) for i in range(90)]
    items += [CropItem(Path(f"m{i}.png"), 0, "", "/d/clips/real/mead_W009_front_sad.mp4", lm5) for i in range(10)]
    w = source_weights(items, balance)
    assert w.shape == (100,) and w.sum() == pytest.approx(1.0)
    assert w[90:].sum() == pytest.approx(mead_share)  # 10 ** (1 - b) / (90 ** (1 - b) + 10 ** (1 - b))
    assert np.ptp(w[:90]) == 0 and np.ptp(w[90:]) == 0  # alike within a source


def test_balanced_training_draws_by_source_weight_and_records_it(real_crops, tmp_path, monkeypatch):
    """``--balance-sources``: the epoch's order is drawn with the source weights (repeat visits get
    distinct indices, so fresh fakes), and the share is kept in the checkpoint's training record."""
    from fakeprobe.train import loop

    orders, drawn_with = [], []
    real_loader, real_weights = loop.DataLoader, loop.source_weights
    monkeypatch.setattr(loop, "DataLoader", lambda ds, **kw: orders.append((len(ds), list(kw["sampler"]))) or real_loader(ds, **kw))
    monkeypatch.setattr(loop, "source_weights", lambda items, b: drawn_with.append(b) or real_weights(items, b))
    rc, _, err = _cli("train", "--data", real_crops, "--out", tmp_path / "m", "--sbi", *FAST, "--balance-sources", "1")
    assert rc == 0, err
    assert drawn_with == [1.0]
    (n, order), = orders
    assert len(order) == 2 * 2 and len(set(order)) == len(order) and all(i >= 0 for i in order)
    assert load_checkpoint(tmp_path / "m" / "best.safetensors").meta.training["balance_sources"] == 1.0


def test_pack_keeps_train_and_cal_crops_at_the_input_size(photo, tmp_path):
    """The accelerator pack: crops shrunk to the input size as training shrinks them, landmarks
    scaled alike, cal groups first, the test split left out, and a budget that drops the rest."""
    from fakeprobe.train.loop import PairDataset, TrainConfig
    from fakeprobe.train.pack import pack_crops
    from fakeprobe.train.splits import CAL, TEST, TRAIN

    items = read_manifest(make_crops(tmp_path / "data", photo, reals=24, frames=1))
    splits = [split_of(it.source) for it in items]
    assert {TRAIN, CAL, TEST} <= set(splits), "pick other source names: every split must be used"
    res = pack_crops(items, tmp_path / "pack", size=48, quality=95)
    packed = read_manifest(tmp_path / "pack")
    kept = [it for it, s in zip(items, splits) if s != TEST]
    assert res.crops == len(packed) == len(kept) and res.dropped == 0
    assert [split_of(it.source) for it in packed] == sorted((split_of(it.source) for it in kept), key=lambda s: s != CAL)
    by_source = {it.source: it for it in kept}
    cfg = TrainConfig(data=[], out=tmp_path, input_size=48)
    for it in packed:
        orig = by_source[it.source]
        assert np.allclose(it.lm5, orig.lm5 * 48 / CROP, atol=1e-3)
        img, scale = PairDataset([orig], {}, cfg, augment=False, seed=0)._image(orig)
        mine = cv2.cvtColor(cv2.imread(str(it.path)), cv2.COLOR_BGR2RGB)
        assert mine.shape == img.shape == (48, 48, 3) and scale == 48 / CROP
        assert np.abs(mine.astype(int) - img.astype(int)).mean() < 4.0  # WebP at quality 95, nothing else
    small = pack_crops(items, tmp_path / "small", size=48, quality=95, budget_bytes=res.image_bytes // 2)
    assert 0 < small.crops < res.crops and small.crops + small.dropped == res.crops
