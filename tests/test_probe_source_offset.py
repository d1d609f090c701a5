"""benchmarks/probe_source_offset.py: real crops per source from the dev benchmark's cache, and
the median logit after each picture operation."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from fakeprobe.evaluation.heldout import FileCrops

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def probe_module():
    spec = importlib.util.spec_from_file_location("probe_source_offset", ROOT / "benchmarks" / "probe_source_offset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _save(work: Path, name: str, origin: str, crops: np.ndarray, label: int = 0, kind: str = "orig", condition: str = "clean") -> None:
    """A cached crop file and its row in the bench's listing."""
    (work / "crops").mkdir(exist_ok=True)
    FileCrops(origin, crops, np.zeros(len(crops), np.int64)).save(work / "crops" / name)
    listing = work / "files.csv"
    new = not listing.exists()
    with open(listing, "a") as f:
        if new:
            f.write("path,label,kind,source,split,condition,origin\n")
        f.write(f"{origin},{label},{kind},x,test,{condition},{origin}\n")


def test_real_crops_by_source_take_only_the_benchs_real_files(probe_module, photo, tmp_path):
    face = cv2.resize(photo[30:230, 130:330], (224, 224))
    _save(tmp_path, "a_lrcar_00001.npz", "/d/tv_faces/lrcar_00001.mp4", np.stack([face, face[::-1], face]))
    _save(tmp_path, "b_lrcar_00002.sbi.npz", "/w/fakes/lrcar_00002.sbi.mp4", np.stack([face]), label=1, kind="sbi")
    _save(tmp_path, "c_1_0_0_2017.npz", "/d/utkface/1_0_0_2017.jpg", np.stack([face]))
    _save(tmp_path, "d_grid_x.npz", "/d/clips/real/grid_x.mpg", np.zeros((0, 224, 224, 3), np.uint8))
    _save(tmp_path, "e_astronaut.npz", "/repo/examples/astronaut.mp4", np.stack([face]))
    _save(tmp_path, "f_mead_x.npz", "/d/clips/real/mead_x.mp4", np.stack([face]))
    _save(tmp_path, "g_sadtalker_y.npz", "/d/clips/fake/sadtalker_y.gif", np.stack([face]), label=1, kind="talking_head")
    _save(tmp_path, "h_mead_x.npz", "/w/perturbed/crf=40/mead_x.mp4", np.stack([face]), condition="crf=40")
    FileCrops("/d/clips/real/voxceleb2_z.mp4", np.stack([face]), np.zeros(1, np.int64)).save(tmp_path / "crops" / "i_vox.npz")  # not listed
    crops = probe_module.real_crops(tmp_path, per_source=5)
    assert sorted(crops) == ["example", "talking heads", "tv_faces", "utkface"]
    assert len(crops["talking heads"]) == 1  # mead only: no fake, no re-encoded copy, nothing unlisted
    assert len(crops["tv_faces"]) == 1 and np.array_equal(crops["tv_faces"][0], face[::-1])  # the middle crop
    assert sorted(probe_module.real_crops(tmp_path, per_source=5, families=True)) == ["example", "mead", "tv_faces", "utkface"]


def test_a_work_folder_without_a_listing_is_refused(probe_module, tmp_path):
    with pytest.raises(SystemExit, match="no files.csv"):
        probe_module.real_crops(tmp_path, per_source=5)


def test_every_operation_keeps_the_crop_and_sharpening_changes_the_score(probe_module, photo, checkpoint):
    face = cv2.resize(photo[30:230, 130:330], (224, 224))
    for name, op in probe_module.OPERATIONS.items():
        out = op(face)
        assert out.shape == face.shape and out.dtype == np.uint8, name
    table = probe_module.probe(checkpoint, {"utkface": np.stack([face, face[:, ::-1]])})
    assert list(table) == list(probe_module.OPERATIONS)
    assert table["as cut"]["utkface"] != table["unsharp mask 1.5/1"]["utkface"]


def test_operations_can_be_chosen_and_an_unknown_one_is_refused_by_name(probe_module, photo, checkpoint, capsys):
    face = cv2.resize(photo[30:230, 130:330], (224, 224))
    table = probe_module.probe(checkpoint, {"mead": np.stack([face])}, ["as cut", "noise 6"])
    assert list(table) == ["as cut", "noise 6"] and table["as cut"]["mead"] != table["noise 6"]["mead"]
    assert probe_module.OPERATIONS["noise 6"](face).tobytes() == probe_module.OPERATIONS["noise 6"](face).tobytes()  # one fixed draw
    top = probe_module.OPERATIONS["mirrored top 15 %"](face)
    assert np.array_equal(top[33:], face[33:]) and np.array_equal(top[0], face[66])
    with pytest.raises(SystemExit) as exc:
        probe_module.main([str(checkpoint), "--operations", "as cut,sepia"])
    assert exc.value.code == 2 and "unknown operation(s): sepia" in capsys.readouterr().err
