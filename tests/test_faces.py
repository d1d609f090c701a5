"""MTCNN face detection: bundled weights, downscaled detection, confidence threshold, 5 landmarks."""
from __future__ import annotations

import socket

import cv2
import numpy as np
import pytest

from fakeprobe import synth
from fakeprobe.faces import FaceDetector


@pytest.fixture(scope="module")
def hd_frame(photo) -> np.ndarray:
    return cv2.resize(synth.scene(photo, 640, 360, 2, 0.0), (1280, 720), interpolation=cv2.INTER_CUBIC)


def test_weights_ship_with_the_package(monkeypatch, checkpoint):
    """Building the face detector and a Detector needs no network."""
    def no_network(*a, **k):
        raise AssertionError("network access")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    from fakeprobe import Detector, ScanConfig

    FaceDetector("cpu")
    Detector(weights=checkpoint, config=ScanConfig(backend="torch")).analyzer.face_detector


def test_landmarks_and_scores(hd_frame):
    det = FaceDetector("cpu", max_side=640, min_score=0.92)
    (faces,) = det.detect([hd_frame])
    assert len(faces) == 2
    for f in faces:
        assert f.score >= 0.92 and f.box.shape == (4,) and f.landmarks.shape == (5, 2)
        x1, y1, x2, y2 = f.box
        assert np.all((f.landmarks[:, 0] > x1) & (f.landmarks[:, 0] < x2) & (f.landmarks[:, 1] > y1) & (f.landmarks[:, 1] < y2))
        (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = f.landmarks
        assert lx < rx and mlx < mrx  # left / right in image coordinates
        assert max(ly, ry) < ny < min(mly, mry)  # eyes, then nose, then mouth


def test_detection_on_downscaled_frames_reports_full_coordinates(hd_frame):
    """Detection runs on a frame shrunk to max_side; boxes come back in the frame's own pixels."""
    full = FaceDetector("cpu", max_side=1280).detect([hd_frame])[0]
    small = FaceDetector("cpu", max_side=640).detect([hd_frame])[0]
    assert len(full) == len(small) == 2
    for a, b in zip(sorted(full, key=lambda f: f.box[0]), sorted(small, key=lambda f: f.box[0])):
        side = a.box[2] - a.box[0]
        assert np.allclose(a.box, b.box, atol=0.1 * side)
        assert np.allclose(a.landmarks, b.landmarks, atol=0.1 * side)


def test_confidence_threshold(hd_frame):
    blank = np.full_like(hd_frame, 90)
    lenient = FaceDetector("cpu", max_side=640, min_score=0.0).detect([hd_frame, blank])
    strict = FaceDetector("cpu", max_side=640, min_score=0.999999).detect([hd_frame, blank])
    assert len(lenient[0]) >= 2 and lenient[1] == []
    scores = [f.score for f in lenient[0]]
    assert len(strict[0]) == sum(s >= 0.999999 for s in scores)


def test_mixed_sizes_and_tiny_images(hd_frame):
    det = FaceDetector("cpu", max_side=640)
    out = det.detect([hd_frame, np.zeros((8, 8, 3), np.uint8), cv2.resize(hd_frame, (640, 360))])
    assert [len(x) for x in out] == [2, 0, 2]


def _small_face_frame(photo, t: float = 0.0) -> np.ndarray:
    """A 1280x720 frame with one face about 27 px wide (14 px in the 640 px detection frame)."""
    frame = synth.background(1280, 720, seed=3)
    inset = synth.scene(photo, 1280 * 300 // 720, 300, 1, t)
    frame[100 : 100 + inset.shape[0], 200 : 200 + inset.shape[1]] = inset
    return frame


def test_coarse_pass_misses_small_faces_and_the_search_near_known_faces_finds_them(photo):
    det = FaceDetector("cpu")
    frame = _small_face_frame(photo)
    (full,) = det.detect([frame])
    assert len(full) == 1 and full[0].box[2] - full[0].box[0] < 2 * det.min_face_size * 1280 / 640
    (coarse,) = det.detect([frame], small_faces=False)
    assert coarse == []  # the skipped pyramid levels are the ones that find it
    (near,) = det.detect([frame], small_faces=False, near=np.array([full[0].box]))
    assert len(near) == 1
    side = full[0].box[2] - full[0].box[0]
    assert np.allclose(near[0].box, full[0].box, atol=0.2 * side)  # same face: boxes within a fifth of its side
    assert np.allclose(near[0].landmarks, full[0].landmarks, atol=0.2 * side)
    # frames that are not downscaled for detection always get the whole pyramid
    small = cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA)
    assert len(det.detect([small], small_faces=False)[0]) == 1


def test_small_face_is_found_in_every_sampled_frame(photo, tmp_path):
    """With the default small_faces_every=2, frames in the coarse batches still find a small
    face that was seen in the batch before."""
    from fakeprobe.analysis import Analyzer
    from fakeprobe.config import ScanConfig

    path = synth.write_video(tmp_path / "small.mp4", (_small_face_frame(photo, i / 10) for i in range(12)), 10.0)
    cfg = ScanConfig(frames=12)
    assert cfg.small_faces_every == 2
    a = Analyzer(cfg).analyse(path)
    assert [len(fs) for fs in a.faces] == [1] * 12
    assert len({t for ts in a.tracks for t in ts}) == 1
