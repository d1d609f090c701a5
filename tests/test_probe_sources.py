"""benchmarks/probe_sources.py: per-source median logits of the dev benchmark's crops under picture changes."""
from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from fakeprobe.evaluation.heldout import FileCrops

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def probe():
    monkeypatch = pytest.MonkeyPatch()
    modules = {}
    for name in ("bench_quality", "probe_sources"):  # the script imports the bench by name, as run from benchmarks/
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        modules[name] = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, modules[name])
        spec.loader.exec_module(modules[name])
    yield modules["probe_sources"]
    monkeypatch.undo()


def _work(tmp_path: Path, probe, brightness: dict[str, list[int]]) -> Path:
    """A bench work folder whose files of each source have one brightness per file (3 crops each;
    the middle one carries the brightness, the others are black)."""
    (tmp_path / "crops").mkdir()
    rows = []
    for source, levels in brightness.items():
        for i, level in enumerate(levels):
            path = f"/data/{source}/{i}.mp4"
            crops = np.zeros((3, 16, 16, 3), np.uint8)
            crops[1] = level
            FileCrops(path, crops, np.zeros(3, np.int64)).save(tmp_path / "crops" / f"{probe._seed(path):08x}_{i}.npz")
            rows.append(dict(path=path, label=0, kind="orig", source=source, split="test", condition="clean", origin=path))
    rows.append(dict(path="/x/e.mp4", label=0, kind="orig", source="example", split="test", condition="clean", origin="/x/e.mp4"))
    rows.append(dict(path="/x/f.mp4", label=1, kind="sbi", source="tv_faces", split="test", condition="clean", origin="/x/f.mp4"))
    with open(tmp_path / "files_reals_only.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return tmp_path


def test_middle_crops_take_each_sources_middle_crop_and_only_reals(probe, tmp_path):
    work = _work(tmp_path, probe, {"mead": [10, 20, 30], "tv_faces": [100, 110, 120, 130]})
    crops = probe.middle_crops(work, per_source=2)
    assert sorted(crops) == ["mead", "tv_faces"]  # neither the example nor the fake
    assert [c.mean() for c in crops["mead"]] == [10, 20]  # evenly spread, at most per_source, middle crops
    assert [c.mean() for c in crops["tv_faces"]] == [100, 120]


def test_table_cells_are_median_scores_per_source_and_transform(probe, tmp_path):
    crops = probe.middle_crops(_work(tmp_path, probe, {"grid": [10, 20, 90], "mead": [200, 210, 220]}), per_source=3)
    score = lambda c: c.reshape(len(c), -1).mean(axis=1) / 10  # a "model": brightness / 10
    lines = probe.table(score, crops, ["id", "flip", "grey"]).splitlines()
    assert lines[0] == "| source | files | id | flip | grey |"
    assert lines[2] == "| grid | 3 | +2.00 | +2.00 | +2.00 |"
    assert lines[3] == "| mead | 3 | +21.00 | +21.00 | +21.00 |"


def test_every_transform_keeps_the_crop_shape(probe):
    rng = np.random.default_rng(0)
    crop = (rng.random((112, 112, 3)) * 255).astype(np.uint8)
    for name, transform in probe.TRANSFORMS.items():
        out = transform(crop, np.random.default_rng(1))
        assert out.shape == crop.shape and out.dtype == np.uint8, name
    assert np.array_equal(probe.TRANSFORMS["id"](crop, rng), crop)
    top = probe.TRANSFORMS["mirrored_top"](crop, rng)
    assert np.array_equal(top[16:], crop[16:]) and np.array_equal(top[0], crop[32])


def test_an_unknown_transform_is_refused_by_name(probe, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        probe.main(["m=x.safetensors", "--work", str(tmp_path), "--transforms", "id,sepia"])
    assert exc.value.code == 2 and "unknown transform(s): sepia" in capsys.readouterr().err
