"""Checkpoints: safetensors + JSON metadata, no unpickling on load, `convert` for trusted .pt files."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from fakeprobe.core.errors import ModelError, NoModelError
from fakeprobe.model import checkpoint as ck
from fakeprobe.model.checkpoint import ModelMeta, load_checkpoint, save_checkpoint
from fakeprobe.model.registry import create_model

ARCH = "tf_efficientnet_lite0"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(1)
    return create_model(ARCH).eval()


@pytest.fixture(scope="module")
def full_meta() -> ModelMeta:
    """Every field away from its default, so a lost field shows."""
    return ModelMeta(
        arch=ARCH, input_size=160, mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6), crop_margin=1.25, align=True, threshold=0.37,
        temperature=1.7, name="round-trip", version="9.8.7",
        training={"epochs": 3, "val": {"auc": 0.91, "eer": 0.12}, "history": [{"epoch": 1, "loss": 0.5}], "note": "ünïcode"},
    )


def test_round_trip_keeps_weights_and_every_metadata_field(tmp_path, model, full_meta):
    path = tmp_path / "m.safetensors"
    sha = save_checkpoint(path, model, full_meta)
    c = load_checkpoint(path)
    assert c.meta == full_meta
    assert dataclasses.asdict(c.meta) == dataclasses.asdict(full_meta)
    assert isinstance(c.meta.mean, tuple) and isinstance(c.meta.std, tuple)
    assert c.sha256 == sha == hashlib.sha256(path.read_bytes()).hexdigest()
    assert c.model_id == sha[:12]
    assert c.path == path
    state = model.state_dict()
    assert set(c.state_dict) == set(state)
    for k, v in state.items():
        assert torch.equal(c.state_dict[k], v), k
    rebuilt = c.build()
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), model(x))
    assert not list(tmp_path.glob("*.tmp"))  # written atomically


def test_sha256_is_stable(tmp_path, model, full_meta):
    a = save_checkpoint(tmp_path / "a.safetensors", model, full_meta)
    b = save_checkpoint(tmp_path / "b.safetensors", model, full_meta)
    assert a == b
    assert load_checkpoint(tmp_path / "a.safetensors").sha256 == load_checkpoint(tmp_path / "a.safetensors").sha256 == a
    other = dataclasses.replace(full_meta, threshold=0.5)
    assert save_checkpoint(tmp_path / "c.safetensors", model, other) != a  # the metadata is part of the hash


def test_metadata_lives_in_the_safetensors_header(checkpoint):
    raw = checkpoint.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    meta = json.loads(header["__metadata__"][ck.META_KEY])
    assert meta["arch"] == ARCH and meta["input_size"] == 128


def test_loading_never_unpickles(checkpoint, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("unpickling during load")

    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(torch, "load", boom)
    c = load_checkpoint(checkpoint)
    assert c.meta.arch == ARCH


@pytest.mark.parametrize("zipfile", [True, False], ids=["zip", "legacy"])
def test_pickle_checkpoint_is_refused(tmp_path, model, zipfile, monkeypatch):
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path, _use_new_zipfile_serialization=zipfile)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load called"))
    with pytest.raises(ModelError, match="refusing a pickle"):
        load_checkpoint(path)


def test_pickle_weights_refused_by_cli(tmp_path, model, face_clip, run):
    path = tmp_path / "seed.pt"
    torch.save(model.state_dict(), path)
    rc, out, err = run("scan", face_clip, "--weights", path, "--backend", "torch")
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "seed.pt" in lines[0] and "refusing" in lines[0] and "fakeprobe convert" in lines[0]
    assert "Traceback" not in err and out == ""


def test_missing_and_malformed_weights(tmp_path, model, run, face_clip):
    with pytest.raises(ModelError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors")
    bare = tmp_path / "bare.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(bare))
    with pytest.raises(ModelError, match="no fakeprobe metadata"):
        load_checkpoint(bare)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(ModelError, match="not a valid safetensors"):
        load_checkpoint(junk)
    rc, out, err = run("scan", face_clip, "--weights", tmp_path / "nope.safetensors")
    assert rc == 2 and "nope.safetensors" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_no_model_installed_message(monkeypatch, tmp_path, face_clip, run):
    monkeypatch.setattr(ck, "DEFAULT_WEIGHTS", tmp_path / "weights" / "default.safetensors")
    with pytest.raises(NoModelError):
        load_checkpoint(None)
    rc, out, err = run("scan", face_clip)
    assert rc == 2
    assert "no model is installed" in err and "--weights" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    rc, out, err = run("detect", "--video", face_clip)
    assert rc == 2 and "no model is installed" in err


def test_default_weights_used_when_present(monkeypatch, checkpoint, face_clip, run):
    monkeypatch.setattr(ck, "DEFAULT_WEIGHTS", checkpoint)
    rc, out, err = run("scan", face_clip, "--backend", "torch", "--frames", "2", "--json")
    assert rc in (0, 1), err
    assert json.loads(out)[0]["model"]["name"] == "tiny-test"


@pytest.mark.parametrize("wrap", ["plain", "wrapped"])
def test_convert_state_dict(tmp_path, model, run, wrap):
    state = model.state_dict()
    if wrap == "wrapped":  # a DataParallel-style training checkpoint
        state = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}
    src, dst = tmp_path / "seed.pt", tmp_path / "out.safetensors"
    torch.save(state, src)
    rc, out, err = run("convert", src, dst, "--arch", ARCH, "--size", 128, "--threshold", 0.42, "--name", "seed")
    assert rc == 0, err
    c = load_checkpoint(dst)
    assert c.sha256 in out
    assert (c.meta.arch, c.meta.input_size, c.meta.threshold, c.meta.name) == (ARCH, 128, 0.42, "seed")
    for k, v in model.state_dict().items():
        assert torch.equal(c.state_dict[k], v), k


def test_convert_refuses_bad_sources(tmp_path, model, run):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    evil = tmp_path / "evil.pt"
    torch.save({"weight": Payload()}, evil)
    wrong = tmp_path / "wrong.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, wrong)
    for src, words in ((evil, "refusing"), (wrong, "does not match"), (tmp_path / "missing.pt", "not found")):
        rc, out, err = run("convert", src, tmp_path / "o.safetensors", "--arch", ARCH)
        assert rc == 2, src
        assert src.name in err and words in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "this must never run" not in out
    assert not (tmp_path / "o.safetensors").exists()


def test_info(checkpoint, run):
    rc, out, err = run("info", "--weights", checkpoint)
    assert rc == 0
    info = json.loads(out)
    assert info["arch"] == ARCH and info["sha256"] == load_checkpoint(checkpoint).sha256
