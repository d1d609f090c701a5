"""``fakeprobe eval``: labelled inputs -> video/frame metrics per condition and per method."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from fakeprobe.evaluation.evaluate import Perturbation, parse_perturbations, perturb_file, summarise
from fakeprobe.media import synth

W, H = 432, 432  # big enough that faces survive --perturb scale=0.5 (MTCNN needs >= 20 px)
FAST = ("--backend", "torch", "--frames", "3", "-q")
CLIPS = {
    "original_sequences/youtube/c23/videos/000.mp4": 0,
    "original_sequences/youtube/c23/videos/001.mp4": 1,
    "manipulated_sequences/Deepfakes/c23/videos/000_001.mp4": 2,
    "manipulated_sequences/Face2Face/c23/videos/001_000.mp4": 3,
}


def _strict_json(text: str):
    """JSON as other tools read it: NaN / Infinity are not JSON."""
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def ffpp(tmp_path_factory, photo) -> Path:
    """Two real and two fake clips (Deepfakes, Face2Face) in the FF++ layout, 1 s at 10 fps."""
    root = tmp_path_factory.mktemp("ffpp")
    for rel, k in CLIPS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        img = photo if k % 2 == 0 else np.ascontiguousarray(photo[:, ::-1])
        synth.scene_video(root / rel, img, width=W, height=H, seconds=1.0 + 0.1 * k, fps=10, faces=1)
    return root


@pytest.fixture(scope="module")
def report(tmp_path_factory, ffpp, checkpoint) -> dict:
    from fakeprobe.cli import main

    out = tmp_path_factory.mktemp("eval") / "out"
    rc = main(["eval", str(ffpp), "--weights", str(checkpoint), *FAST, "--out", str(out),
               "--perturb", "jpeg=40", "--perturb", "scale=0.5"])
    return {"rc": rc, "out": out}


def test_eval_writes_metrics_per_condition(report):
    assert report["rc"] == 0
    out = report["out"]
    data = _strict_json((out / "metrics.json").read_text())
    assert list(data["conditions"]) == ["clean", "jpeg=40", "scale=0.5"]
    assert data["n_inputs"] == 4 and data["model"]["name"] == "tiny-test"
    for name, cond in data["conditions"].items():
        for level in ("video", "frame"):
            m = cond["all"][level]
            assert {"n", "n_fake", "auc", "ap", "eer", "acc", "logloss", "ece", "threshold"} <= set(m), (name, level)
            assert m["threshold"] == pytest.approx(data["threshold"])
        assert cond["skipped"] == {"no_face": 0, "error": 0}, name
        assert cond["all"]["video"]["n"] == 4 and cond["all"]["video"]["n_fake"] == 2
        assert cond["all"]["frame"]["n"] >= 12  # every sampled frame shows the face
        assert 0.0 <= cond["all"]["video"]["auc"] <= 1.0 and 0.0 <= cond["all"]["frame"]["auc"] <= 1.0
        # per method: that method's fakes against all reals
        assert set(cond["methods"]) == {"Deepfakes", "Face2Face"}
        for method, res in cond["methods"].items():
            assert res["video"]["n"] == 3 and res["video"]["n_fake"] == 1, (name, method)
            assert "frame" in res
        rows = data["rows"][name]
        assert len(rows) == 4 and {r["method"] for r in rows if r["label"] == "fake"} == {"Deepfakes", "Face2Face"}
        assert all(r["verdict"] in ("REAL", "FAKE") for r in rows)
    # perturbations change what the model sees
    logits = {name: sorted(r["video_logit"] for r in rows) for name, rows in data["rows"].items()}
    assert logits["jpeg=40"] != logits["clean"] and logits["scale=0.5"] != logits["clean"]
    assert "table" in data and "Deepfakes" in data["table"]


def test_eval_draws_a_roc_curve(report):
    png = report["out"] / "roc.png"
    img = cv2.imread(str(png))
    assert img is not None and min(img.shape[:2]) > 200


def test_eval_table_on_stdout(run, ffpp, checkpoint):
    rc, out, _ = run("eval", ffpp / "original_sequences", ffpp / "manipulated_sequences" / "Deepfakes",
                     "--weights", checkpoint, *FAST)
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split() == ["condition", "level", "n", "AUC", "AP", "EER", "ACC", "logloss"]
    assert lines[1].split()[:3] == ["clean", "video", "3"]  # 2 reals + 1 Deepfakes
    assert lines[2].split()[:2] == ["clean", "frame"] and int(lines[2].split()[2]) >= 9
    assert any(line.split()[0] == "Deepfakes" for line in lines[3:])
    assert "Face2Face" not in out


def test_eval_from_labels_csv_with_one_class(run, ffpp, checkpoint, tmp_path):
    """A labels CSV of reals only: AUC is undefined, reported as null (the file stays valid JSON)."""
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        for rel in list(CLIPS)[:2]:
            w.writerow([ffpp / rel, "real"])
    rc, out, err = run("eval", "--labels", labels, "--weights", checkpoint, *FAST, "--out", tmp_path / "out")
    assert rc == 0, err
    data = _strict_json((tmp_path / "out" / "metrics.json").read_text())
    video = data["conditions"]["clean"]["all"]["video"]
    assert video["n"] == 2 and video["n_fake"] == 0
    assert video["auc"] is None and video["eer"] is None
    assert math.isfinite(video["acc"]) and data["conditions"]["clean"]["methods"] == {}
    assert not (tmp_path / "out" / "roc.png").exists()  # no curve without both classes


def test_eval_reports_unreadable_and_faceless_inputs(run, ffpp, checkpoint, tmp_path, photo):
    root = tmp_path / "set"
    (root / "real").mkdir(parents=True)
    (root / "fake").mkdir()
    synth.scene_video(root / "real" / "a.mp4", photo, width=W, height=H, seconds=1.0, fps=10, faces=1)
    synth.scene_video(root / "fake" / "noface.mp4", photo, width=W, height=H, seconds=1.0, fps=10, faces=0)
    (root / "fake" / "broken.mp4").write_bytes(b"\x00" * 100)
    rc, _, err = run("eval", root, "--weights", checkpoint, *FAST, "--out", tmp_path / "out")
    assert rc == 0, err
    data = _strict_json((tmp_path / "out" / "metrics.json").read_text())
    assert data["conditions"]["clean"]["skipped"] == {"no_face": 1, "error": 1}
    assert data["conditions"]["clean"]["all"]["video"]["n"] == 1


def test_eval_input_errors(run, checkpoint, tmp_path):
    rc, _, err = run("eval", "--weights", checkpoint, *FAST)
    assert rc == 2 and "nothing to evaluate" in err
    (tmp_path / "x.mp4").write_bytes(b"")
    rc, _, err = run("eval", tmp_path / "x.mp4", "--weights", checkpoint, *FAST)
    assert rc == 2 and "cannot tell real from fake" in err
    rc, _, err = run("eval", tmp_path, "--weights", checkpoint, *FAST, "--perturb", "blur=3")
    assert rc == 2 and "bad --perturb" in err


# -- perturbations ----------------------------------------------------------------------------------
def test_parse_perturbations():
    ps = parse_perturbations(["crf=23,30,40", "scale=0.5", "JPEG=40"])
    assert [p.name for p in ps] == ["crf=23", "crf=30", "crf=40", "scale=0.5", "jpeg=40"]
    assert ps[3] == Perturbation("scale", 0.5)
    assert Perturbation("clean").name == "clean"
    assert parse_perturbations([]) == []


@pytest.mark.parametrize("spec", ["blur=3", "crf", "crf=", "crf=abc", "crf=23,,30", "crf=60", "crf=-1", "scale=0", "scale=1.5",
                                  "jpeg=0", "jpeg=101", "=5"])
def test_parse_perturbations_rejects(spec):
    with pytest.raises(ValueError, match="--perturb"):
        parse_perturbations([spec])


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_perturb_file(ffpp, tmp_path, photo):
    src = ffpp / list(CLIPS)[0]
    orig = _frames(src)
    for p, size in ((Perturbation("crf", 40), (H, W)), (Perturbation("scale", 0.5), (H // 2, W // 2)), (Perturbation("jpeg", 20), (H, W))):
        dst = perturb_file(src, p, tmp_path)
        frames = _frames(dst)
        assert len(frames) == len(orig), p
        assert frames[0].shape[:2] == size, p
        if size == (H, W):
            assert np.abs(frames[5].astype(np.float32) - orig[5]).mean() > 0.3, p
    img = tmp_path / "face.png"
    cv2.imwrite(str(img), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    half = perturb_file(img, Perturbation("scale", 0.5), tmp_path)
    assert cv2.imread(str(half)).shape[:2] == (256, 256)
    crf = cv2.imread(str(perturb_file(img, Perturbation("crf", 40), tmp_path)))
    assert crf.shape == photo.shape and np.abs(crf[..., ::-1].astype(np.float32) - photo).mean() > 1.0


def test_summarise_levels_and_methods():
    rows = [
        {"label": "real", "method": "original", "verdict": "REAL", "video_logit": -2.0, "face_logits": [-2.0, -1.0]},
        {"label": "real", "method": "", "verdict": "FAKE", "video_logit": 1.0, "face_logits": [1.0]},
        {"label": "fake", "method": "A", "verdict": "FAKE", "video_logit": 2.0, "face_logits": [3.0, 1.0, 2.0]},
        {"label": "fake", "method": "B", "verdict": "REAL", "video_logit": -3.0, "face_logits": [-3.0]},
        {"label": "fake", "method": "B", "verdict": "NO_FACE", "video_logit": None, "face_logits": []},
        {"label": "real", "method": "", "verdict": "ERROR", "error": "bad"},
    ]
    s = summarise(rows, threshold=0.5)
    assert s["skipped"] == {"no_face": 1, "error": 1}
    assert s["all"]["video"]["n"] == 4 and s["all"]["frame"]["n"] == 7
    assert s["all"]["video"]["auc"] == pytest.approx(0.5)  # 2 > -2, 1; -3 < both
    assert s["all"]["video"]["acc"] == pytest.approx(0.5)
    assert set(s["methods"]) == {"A", "B"}
    assert s["methods"]["A"]["video"]["auc"] == pytest.approx(1.0)
    assert s["methods"]["B"]["video"]["auc"] == pytest.approx(0.0)
    assert s["methods"]["A"]["frame"]["n"] == 6


def test_perturb_refuses_a_fifo_without_opening_it(tmp_path):
    import os

    from fakeprobe.core.errors import InputError
    from fakeprobe.evaluation.evaluate import Perturbation, perturb_file

    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        perturb_file(fifo, Perturbation("crf", 30), tmp_path)
