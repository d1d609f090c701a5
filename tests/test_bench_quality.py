"""The dev benchmark leaves out the clips a compared model was trained on, as its metadata says."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from fakeprobe.model.checkpoint import load_checkpoint, save_checkpoint
from fakeprobe.train.splits import TRAIN, split_of

ROOT = Path(__file__).resolve().parents[1]
CLIPS = [Path(f"/data/clips/real/{name}") for name in (
    "grid_a.mpg", "grid_b.mpg", "mead_c.mp4", "mead_d.mp4", "voxceleb2_e.mp4", "voxceleb2_f.mp4", "liveportrait_g.mp4",
    "liveportrait_h.mp4", "grid_i.mpg", "mead_j.mp4", "voxceleb2_k.mp4", "mead_l.mp4")]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_quality", ROOT / "benchmarks" / "bench_quality.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setitem(sys.modules, "bench_quality", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    monkeypatch.undo()


def _with_training(checkpoint: Path, tmp_path: Path, training: dict) -> Path:
    ckpt = load_checkpoint(checkpoint)
    ckpt.meta.training = training
    out = tmp_path / "model.safetensors"
    save_checkpoint(out, ckpt.build(), ckpt.meta)
    return out


def test_a_recorded_list_is_taken_as_it_is(bench, checkpoint, tmp_path):
    w = _with_training(checkpoint, tmp_path, {"sources": {"grid": 1}, "train_clips": ["grid_a.mpg", "mead_c.mp4"]})
    assert bench.trained_clips(w, CLIPS) == {"grid_a.mpg", "mead_c.mp4"}


def test_todays_recipe_trained_on_its_train_split_but_left_out_sources(bench, checkpoint, tmp_path):
    w = _with_training(checkpoint, tmp_path, {"sources": {"grid": 1, "mead": 1}, "exclude_sources": ["voxceleb2"]})
    expected = {p.name for p in CLIPS if split_of(p) == TRAIN and not p.name.startswith("voxceleb2")}
    assert bench.trained_clips(w, CLIPS) == expected
    assert expected and expected != {p.name for p in CLIPS}  # the rule keeps some clips out


def test_an_older_checkpoint_trained_on_all_but_its_validation_videos(bench, checkpoint, tmp_path):
    w = _with_training(checkpoint, tmp_path, {"val_videos": ["grid_b.mpg", "mead_d.mp4"]})
    assert bench.trained_clips(w, CLIPS) == {p.name for p in CLIPS} - {"grid_b.mpg", "mead_d.mp4"}
