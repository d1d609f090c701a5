"""Packed ensembles: several checkpoints in one file, scored as the mean of their calibrated logits."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from fakeprobe import Detector, ScanConfig
from fakeprobe.core.errors import ModelError
from fakeprobe.model.checkpoint import load_checkpoint, save_checkpoint
from fakeprobe.model.ensemble import pack, unpack
from fakeprobe.model.inference import OnnxRunner, TorchRunner
from fakeprobe.model.registry import MemberMean, create_model


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (4, 128, 128, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def members(checkpoint, tmp_path_factory):
    """The test checkpoint and a sibling with other weights, a temperature and a threshold of its own."""
    base = load_checkpoint(checkpoint)
    torch.manual_seed(7)
    other = base.build()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("members") / "sibling.safetensors"
    save_checkpoint(path, other, dataclasses.replace(base.meta, name="sibling", temperature=2.0, threshold=0.6))
    return [base, load_checkpoint(path)]


@pytest.fixture(scope="module")
def packed(members, tmp_path_factory):
    model, meta = pack(members, "pair")
    path = tmp_path_factory.mktemp("packed") / "pair.safetensors"
    save_checkpoint(path, model, meta)
    return path


def test_packed_logit_is_the_mean_of_the_members_calibrated_logits(members, packed, crops):
    want = np.mean([TorchRunner(c).logits(crops) / c.meta.temperature for c in members], axis=0)
    ck = load_checkpoint(packed)
    assert ck.meta.members == 2 and ck.meta.temperature == 1.0
    assert ck.meta.threshold == pytest.approx(np.mean([c.meta.threshold for c in members]))
    assert np.allclose(TorchRunner(ck).logits(crops), want, atol=1e-5)
    # the members' own logits differ, so a mean that ignored one of them would fail above
    assert np.abs(TorchRunner(members[0]).logits(crops) - TorchRunner(members[1]).logits(crops) / 2.0).max() > 1e-3


def test_metadata_records_each_member(members, packed):
    meta = load_checkpoint(packed).meta
    recorded = meta.training["ensemble_of"]
    assert [m["sha256"] for m in recorded] == [c.sha256 for c in members]
    assert [m["temperature"] for m in recorded] == [c.meta.temperature for c in members]
    assert meta.name == "pair"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's legacy ONNX exporter
def test_onnx_export_of_a_packed_ensemble_matches_torch(packed, crops, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKEPROBE_CACHE", str(tmp_path))
    ck = load_checkpoint(packed)
    assert np.allclose(OnnxRunner(ck).logits(crops), TorchRunner(ck).logits(crops), atol=1e-4)


def test_scan_with_a_packed_ensemble_equals_the_runtime_ensemble(members, packed, face_clip, validate):
    cfg = ScanConfig(backend="torch", frames=3)
    runtime = Detector(weights=[c.path for c in members], config=cfg).scan(face_clip)
    one_file = Detector(weights=packed, config=cfg).scan(face_clip)
    validate(json.loads(json.dumps(one_file.to_dict())))
    assert one_file.detections and len(one_file.detections) == len(runtime.detections)
    assert one_file.model.name == "pair"
    assert one_file.model.sha256 == load_checkpoint(packed).sha256
    assert np.allclose([d.logit for d in one_file.detections], [d.logit for d in runtime.detections], atol=1e-4)


def test_gradcam_of_the_stack_is_gradcam_of_the_ensemble_logit(packed, crops):
    from fakeprobe.report.gradcam import GradCam

    ck = load_checkpoint(packed)
    cams, logits = GradCam(ck).maps(crops)
    assert cams.shape == crops.shape[:3] and 0.0 <= cams.min() and cams.max() <= 1.0
    assert np.allclose(logits, TorchRunner(ck).logits(crops), atol=1e-4)


@pytest.mark.parametrize("change", [{"input_size": 96}, {"crop_margin": 1.5}, {"align": True}, {"mean": (0.5, 0.5, 0.5)}])
def test_pack_refuses_members_that_see_other_crops(members, tmp_path, change):
    odd = tmp_path / "odd.safetensors"
    save_checkpoint(odd, members[0].build(), dataclasses.replace(members[0].meta, **change))
    with pytest.raises(ModelError, match="must share"):
        pack([members[0], load_checkpoint(odd)], "bad")


def test_pack_needs_two_members(members):
    with pytest.raises(ModelError, match="at least two"):
        pack(members[:1], "one")


def test_pack_refuses_an_ensemble_as_a_member(members, packed):
    with pytest.raises(ModelError, match="already an ensemble"):
        pack([members[0], load_checkpoint(packed)], "nested")


def test_cli_pack_writes_a_loadable_checkpoint(members, tmp_path, run):
    out = tmp_path / "cli_pair.safetensors"
    rc, stdout, _ = run("pack", members[0].path, members[1].path, "-o", out, "--name", "cli-pair")
    assert rc == 0 and "2 members" in stdout and "calibrate it" in stdout
    assert load_checkpoint(out).meta.name == "cli-pair"
    rc, _, err = run("pack", members[0].path, tmp_path / "missing.safetensors", "-o", tmp_path / "x.safetensors")
    assert rc != 0 and "missing.safetensors" in err and len(err.strip().splitlines()) == 1


def test_unpack_gives_back_each_member_and_repacking_the_same_logits(members, packed, crops):
    ck = load_checkpoint(packed)
    back = unpack(ck)
    assert [c.meta.name for c in back] == [c.meta.name for c in members]
    assert [c.sha256 for c in back] == [c.sha256 for c in members]  # the identity each was packed under
    assert [c.meta.temperature for c in back] == [c.meta.temperature for c in members]
    assert all(c.meta.members == 1 and c.meta.training["unpacked_from"] == ck.sha256 for c in back)
    for mine, theirs in zip(back, members):
        assert np.allclose(TorchRunner(mine).logits(crops), TorchRunner(theirs).logits(crops), atol=1e-5)
    model, meta = pack(back, "again")
    assert np.allclose(TorchRunner(ck).logits(crops), TorchRunner(type(ck)(meta=meta, state_dict=model.state_dict())).logits(crops), atol=1e-5)


def test_unpack_refuses_a_single_network(members):
    with pytest.raises(ModelError, match="not a packed ensemble"):
        unpack(members[0])


def test_cli_pack_of_a_pack_repacks_its_members_with_new_adapt_options(members, packed, tmp_path, run, crops):
    out = tmp_path / "repacked.safetensors"
    rc, stdout, err = run("pack", packed, "-o", out, "--adapt-blocks", "2", "--adapt-mix", "0.5", "--adapt-no-amplify")
    assert rc == 0, err
    again = load_checkpoint(out)
    assert again.meta.members == 2 and again.meta.adapt == (2, 0.5, False)
    assert [m["sha256"] for m in again.meta.training["ensemble_of"]] == [c.sha256 for c in members]
    fresh, meta = pack(members, "direct", (2, 0.5, False))
    want = TorchRunner(type(again)(meta=meta, state_dict=fresh.state_dict())).logits(crops)
    assert np.allclose(TorchRunner(again).logits(crops), want, atol=1e-5)
    assert np.abs(want - TorchRunner(load_checkpoint(packed)).logits(crops)).max() > 1e-3  # the option did change the scores


def test_bad_member_count_in_metadata_is_refused(packed, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(packed), framework="pt") as f:
        meta = json.loads(f.metadata()["fakeprobe"])
        state = {k: f.get_tensor(k) for k in f.keys()}
    for wrong, message in ((0, "whole number"), (3, "holds the weights of 2")):
        meta["members"] = wrong
        bad = tmp_path / f"bad{wrong}.safetensors"
        save_file(state, str(bad), metadata={"fakeprobe": json.dumps(meta)})
        with pytest.raises(ModelError, match=message):
            load_checkpoint(bad)


def test_create_model_builds_the_packed_shape():
    model = create_model("tf_efficientnet_lite0", members=3)
    assert isinstance(model, MemberMean) and len(model.members) == 3
    with pytest.raises(ValueError, match="ImageNet"):
        create_model("tf_efficientnet_lite0", members=2, imagenet=True)


def test_training_cannot_start_from_a_packed_ensemble(packed, tmp_path):
    from fakeprobe.train.loop import TrainConfig, train

    with pytest.raises(ValueError, match="packed ensemble"):
        train(TrainConfig(data=[], out=tmp_path / "out", init=packed))


def test_half_precision_storage_halves_the_file_and_keeps_the_scores(members, tmp_path, crops):
    model, meta = pack(members, "pair")
    full, half = tmp_path / "full.safetensors", tmp_path / "half.safetensors"
    save_checkpoint(full, model, meta)
    save_checkpoint(half, model, meta, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    a, b = load_checkpoint(full), load_checkpoint(half)
    assert b.half and not a.half
    # float16 keeps ~3 significant digits of each weight: scores move far less than a verdict margin
    assert np.allclose(TorchRunner(a).logits(crops), TorchRunner(b).logits(crops), atol=0.05)
    again = tmp_path / "again.safetensors"
    save_checkpoint(again, b.build(), b.meta, half=b.half)  # re-saving a float16 file changes nothing
    assert load_checkpoint(again).sha256 == b.sha256
