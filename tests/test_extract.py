"""``fakeprobe extract``: labels from the FF++ layout, real/fake folders or a CSV; crops + manifest."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fakeprobe.core.config import ScanConfig
from fakeprobe.media import synth
from fakeprobe.scan.analysis import Analyzer
from fakeprobe.train.data import FIELDS, MANIFEST, read_manifest
from fakeprobe.train.extract import Labelled, ffpp_label, folder_label, label_inputs, read_labels_csv

W, H = 320, 180
REAL_REL = Path("original_sequences/youtube/c23/videos/000.mp4")
FAKE_REL = Path("manipulated_sequences/Deepfakes/c23/videos/000_003.mp4")


# -- labels from paths ---------------------------------------------------------------------------
@pytest.mark.parametrize("path, expected", [
    ("ff/original_sequences/youtube/c23/videos/000.mp4", ("real", "original")),
    ("/data/ff/original_sequences/actors/raw/videos/01__talking.mp4", ("real", "original")),
    ("ff/manipulated_sequences/Deepfakes/c23/videos/000_003.mp4", ("fake", "Deepfakes")),
    ("ff/manipulated_sequences/NeuralTextures/c40/videos/999_960.mp4", ("fake", "NeuralTextures")),
    ("manipulated_sequences/Face2Face/x.mp4", ("fake", "Face2Face")),
    ("ff/manipulated_sequences/x.mp4", ("fake", "unknown")),  # no method folder
    ("ff/videos/000.mp4", None),
    ("original_sequences_backup/000.mp4", None),
])
def test_ffpp_label(path, expected):
    assert ffpp_label(Path(path)) == expected


@pytest.mark.parametrize("path, expected", [
    ("clips/real/a.mp4", ("real", "")),
    ("clips/FAKE/sub/a.mp4", ("fake", "")),
    ("data/real/fake/a.mp4", ("fake", "")),  # the nearest folder wins
    ("clips/a.mp4", None),
    ("real.mp4", None),
    ("clips/unreal/a.mp4", None),
])
def test_folder_label(path, expected):
    assert folder_label(Path(path)) == expected


def test_label_inputs():
    items = label_inputs([Path("ff") / FAKE_REL, Path("x/real/a.mp4")], None)
    assert items == [Labelled(Path("ff") / FAKE_REL, "fake", "Deepfakes"), Labelled(Path("x/real/a.mp4"), "real", "")]
    # the FF++ layout wins over a folder named real/fake
    assert label_inputs([Path("real") / FAKE_REL], None)[0].label == "fake"
    # an explicit --label applies to everything
    assert [i.label for i in label_inputs([Path("x/real/a.mp4"), Path("b.mp4")], "fake")] == ["fake", "fake"]
    with pytest.raises(ValueError, match="cannot tell real from fake"):
        label_inputs([Path("clips/b.mp4")], None)


# -- labels CSV ----------------------------------------------------------------------------------
def _write_csv(path: Path, rows: list[list[str]], header=("path", "label", "method")) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_read_labels_csv(tmp_path):
    (tmp_path / "sub").mkdir()
    absolute = str(tmp_path / "elsewhere" / "z.mp4")
    p = _write_csv(tmp_path / "sub" / "labels.csv", [
        ["a.mp4", "0", ""], ["b/c.mp4", "1", "FaceSwap"], ["d.mp4", "real", ""], ["e.mp4", " FAKE ", "Deepfakes"],
        [absolute, "fake", ""],
    ])
    items = read_labels_csv(p)
    assert [i.path for i in items] == [tmp_path / "sub" / "a.mp4", tmp_path / "sub" / "b" / "c.mp4", tmp_path / "sub" / "d.mp4",
                                       tmp_path / "sub" / "e.mp4", Path(absolute)]
    assert [i.label for i in items] == ["real", "fake", "real", "fake", "fake"]
    assert [i.method for i in items] == ["", "FaceSwap", "", "Deepfakes", ""]
    # the method column is optional
    q = _write_csv(tmp_path / "two.csv", [["a.mp4", "1"]], header=("path", "label"))
    assert read_labels_csv(q) == [Labelled(tmp_path / "a.mp4", "fake", "")]


@pytest.mark.parametrize("bad", ["2", "maybe", ""])
def test_read_labels_csv_rejects_bad_labels(tmp_path, bad):
    p = _write_csv(tmp_path / "labels.csv", [["a.mp4", "0", ""], ["b.mp4", bad, ""]])
    with pytest.raises(ValueError, match="bad label"):
        read_labels_csv(p)


# -- extraction on generated clips -----------------------------------------------------------------
@pytest.fixture(scope="module")
def ffpp(tmp_path_factory, photo) -> Path:
    """A FaceForensics++-style tree with one real and one "Deepfakes" clip (1 s at 10 fps)."""
    root = tmp_path_factory.mktemp("ffpp")
    for rel, img in ((REAL_REL, photo), (FAKE_REL, np.ascontiguousarray(photo[:, ::-1]))):
        (root / rel).parent.mkdir(parents=True)
        synth.scene_video(root / rel, img, width=W, height=H, seconds=1.0, fps=10, faces=1)
    return root


def _rows(out: Path) -> list[dict]:
    with open(out / MANIFEST, newline="") as f:
        return list(csv.DictReader(f))


def test_extract_ffpp_tree(run, ffpp, tmp_path):
    out = tmp_path / "data"
    rc, stdout, stderr = run("extract", ffpp, "-o", out, "--frames", "4", "--size", "64")
    assert rc == 0, stderr
    rows = _rows(out)
    assert list(rows[0]) == FIELDS
    assert "crops from 2 files" in stdout
    real = [r for r in rows if r["label"] == "real"]
    fake = [r for r in rows if r["label"] == "fake"]
    assert len(real) >= 4 and len(fake) >= 4  # one face in each of the 4 sampled frames
    assert {r["method"] for r in fake} == {"Deepfakes"}
    assert {r["method"] for r in real} == {"original"}
    assert {r["source"] for r in real} == {str(ffpp / REAL_REL)}
    assert {r["source"] for r in fake} == {str(ffpp / FAKE_REL)}
    assert "Deepfakes" in stderr  # per-file progress names the method
    for r in rows:
        assert r["file"].startswith(r["label"] + "/") and r["file"].endswith(".png")
        img = cv2.imread(str(out / r["file"]))
        assert img is not None and img.shape == (64, 64, 3)
        assert 0 <= int(r["frame_index"]) < 10
        assert float(r["time_s"]) == pytest.approx(int(r["frame_index"]) / 10, abs=0.051)
        assert int(r["track"]) == 0
        assert 0.9 <= float(r["detection_score"]) <= 1.0
        lm = np.array(json.loads(r["landmarks5"]))
        assert lm.shape == (5, 2) and (lm > 0).all() and (lm < 64).all()
        assert lm[0, 0] < lm[1, 0] and lm[2, 1] < lm[3:, 1].mean()  # eyes left->right, nose above mouth
    assert len({r["file"] for r in rows}) == len(rows)
    assert len({r["frame_index"] for r in real}) == len(real)  # distinct frames
    # the manifest reads back as training items
    items = read_manifest(out)
    assert len(items) == len(rows) and {it.label for it in items} == {0, 1}
    assert all(it.path.exists() and it.lm5.shape == (5, 2) for it in items)
    # a second run (another clip, labelled by its real/ folder) appends without repeating the header
    extra = tmp_path / "more" / "real" / "extra.mp4"
    extra.parent.mkdir(parents=True)
    extra.write_bytes((ffpp / REAL_REL).read_bytes())
    rc, _, _ = run("extract", extra, "-o", out, "--frames", "2", "--size", "64", "-q")
    assert rc == 0
    again = _rows(out)
    assert again[: len(rows)] == rows and all(r["file"] != "file" for r in again)
    new = again[len(rows):]
    assert new and {(r["label"], r["method"], r["source"]) for r in new} == {("real", "", str(extra))}
    assert len({r["file"] for r in again}) == len(again)


def test_extract_uses_the_scan_crops(run, ffpp, tmp_path):
    """Crops on disk are pixel-identical to the ones scan classifies (same frames, faces, crop)."""
    out = tmp_path / "data"
    rc, _, err = run("extract", ffpp / FAKE_REL, "-o", out, "--frames", "4", "--size", "64", "-q")
    assert rc == 0, err
    rows = sorted(_rows(out), key=lambda r: int(r["frame_index"]))
    analysis = Analyzer(ScanConfig(frames=4)).analyse(ffpp / FAKE_REL)
    expected = Analyzer.crops(analysis, 64, 1.3, False)
    assert len(rows) == len(expected)
    for r, want in zip(rows, expected):
        got = cv2.cvtColor(cv2.imread(str(out / r["file"])), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(got, want)
    assert [int(r["frame_index"]) for r in rows] == [f.index for f, fs in zip(analysis.frames, analysis.faces) for _ in fs]


def test_extract_from_labels_csv(run, ffpp, tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"")
    labels = _write_csv(tmp_path / "labels.csv", [
        [str(ffpp / REAL_REL), "fake", "FaceSwap"],  # the CSV overrides what the path says
        ["broken.mp4", "real", ""],
    ])
    out = tmp_path / "data"
    rc, stdout, stderr = run("extract", "--labels", labels, "-o", out, "--frames", "3", "--size", "48", "-q")
    assert rc == 2  # one input failed ...
    assert "broken.mp4" in stderr and "empty" in stderr
    rows = _rows(out)  # ... but the others were extracted
    assert rows and {(r["label"], r["method"]) for r in rows} == {("fake", "FaceSwap")}
    assert "from 1 files" in stdout
    assert cv2.imread(str(out / rows[0]["file"])).shape == (48, 48, 3)


def test_extract_refuses_unlabelled_inputs(run, ffpp, tmp_path):
    loose = tmp_path / "clip.mp4"
    loose.write_bytes((ffpp / REAL_REL).read_bytes())
    rc, _, err = run("extract", loose, "-o", tmp_path / "data")
    assert rc == 2 and "cannot tell real from fake" in err
    assert not (tmp_path / "data" / MANIFEST).exists()
    rc, _, err = run("extract", "-o", tmp_path / "data")
    assert rc == 2 and "nothing to extract" in err
    rc, _, err = run("extract", "--labels", tmp_path / "missing.csv", "-o", tmp_path / "data")
    assert rc == 2 and "missing.csv" in err
