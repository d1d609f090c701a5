"""Shared fixtures: a real face photo, a tiny random-init checkpoint, media generated at test time.

Everything is offline and small (320x180 clips, 128 px crops, torch backend) so the suite stays fast
on a 2-core machine. Media files are session-scoped: each is written once.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from fakeprobe import Detector, ScanConfig
from fakeprobe.media import synth

REPO = Path(__file__).parents[1]
SCHEMA_PATH = REPO / "src" / "fakeprobe" / "schema" / "scan.schema.json"
ARCH = "tf_efficientnet_lite0"
INPUT_SIZE = 128
W, H = 320, 180  # default clip size


@pytest.fixture(scope="session", autouse=True)
def _quiet_machine(tmp_path_factory):
    """One compute thread (tiny batches gain nothing from more, and a busy 2-core machine loses a
    lot to oversubscription); any cache (ONNX exports) kept out of the user's home."""
    import cv2
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    mp = pytest.MonkeyPatch()
    mp.setenv("FAKEPROBE_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.setenv("OMP_NUM_THREADS", "1")  # for subprocesses
    yield
    mp.undo()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def benchmark_scripts():
    """Load scripts of benchmarks/ by name, as they import each other when run from there
    (``from bench_quality import ...``); they are registered in sys.modules for the module's tests."""
    import importlib.util
    import sys

    monkeypatch = pytest.MonkeyPatch()

    def load(*names: str) -> dict:
        modules = {}
        for name in names:
            spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
            modules[name] = importlib.util.module_from_spec(spec)
            monkeypatch.setitem(sys.modules, name, modules[name])  # dataclasses look their module up
            spec.loader.exec_module(modules[name])
        return modules

    yield load
    monkeypatch.undo()


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real face photo (NASA portrait of Eileen Collins, public domain)."""
    skdata = pytest.importorskip("skimage.data")
    return skdata.astronaut()


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """A random-init Lite0 with 128 px input, saved as a fakeprobe safetensors checkpoint.

    The head is shrunk so calibrated logits stay moderate (a random head gives |logit| ~ 30,
    i.e. probabilities of exactly 0 or 1 after rounding), keeping thresholds meaningful.
    """
    import torch

    from fakeprobe.model.checkpoint import ModelMeta, save_checkpoint
    from fakeprobe.model.registry import create_model

    torch.manual_seed(0)
    model = create_model(ARCH)
    with torch.no_grad():
        model.classifier.weight.mul_(0.05)
        model.classifier.bias.fill_(-4.0)
    meta = ModelMeta.for_arch(ARCH, input_size=INPUT_SIZE, name="tiny-test")
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_checkpoint(path, model, meta)
    return path


@pytest.fixture(scope="session")
def make_detector(checkpoint) -> Callable[..., Detector]:
    """``make_detector(frames=8, ...)``: a Detector on the tiny checkpoint, torch backend, cached per config."""
    cache: dict[tuple, Detector] = {}

    def make(**cfg) -> Detector:
        cfg.setdefault("backend", "torch")
        key = tuple(sorted(cfg.items()))
        if key not in cache:
            cache[key] = Detector(weights=checkpoint, config=ScanConfig(**cfg))
        return cache[key]

    return make


@pytest.fixture(scope="session")
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


@pytest.fixture(scope="session")
def validate(schema) -> Callable[[dict], None]:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())

    def check(record: dict) -> None:
        errors = sorted(validator.iter_errors(record), key=lambda e: list(e.absolute_path))
        assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)

    return check


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def face_clip(media_dir, photo) -> Path:
    """1 s, 10 fps, one face in every frame."""
    return synth.scene_video(media_dir / "face.mp4", photo, width=W, height=H, seconds=1.0, fps=10, faces=1)


@pytest.fixture(scope="session")
def empty_clip(media_dir, photo) -> Path:
    """1 s, 10 fps, background only."""
    return synth.scene_video(media_dir / "noface.mp4", photo, width=W, height=H, seconds=1.0, fps=10, faces=0)


@pytest.fixture(scope="session")
def face_image(media_dir, photo) -> Path:
    from PIL import Image

    path = media_dir / "face.png"
    Image.fromarray(synth.scene(photo, W, H, 1, 0.0)).save(path)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` next to the repository (real clips); skipped when absent."""
    path = Path(__file__).parents[1].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip("../shared/data not present")
    return path


@pytest.fixture
def run(capsys) -> Callable[..., tuple[int, str, str]]:
    """``run("scan", path, ...)``: the CLI in-process; returns (exit code, stdout, stderr)."""
    from fakeprobe.cli import main

    def _run(*args) -> tuple[int, str, str]:
        argv = [str(a) for a in args]
        if "scan" in argv and "--workers" not in argv:
            argv += ["--workers", "0"]  # in this process (monkeypatches apply); the pool has its own tests
        capsys.readouterr()
        rc = main(argv)
        out, err = capsys.readouterr()
        return rc, out, err

    return _run
