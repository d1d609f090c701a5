"""MTCNN face detection: bundled weights, downscaled detection, confidence threshold, 5 landmarks."""
from __future__ import annotations

import socket

import cv2
import numpy as np
import pytest

from fakeprobe.faces import detection as faces
from fakeprobe.faces.detection import FaceDetector
from fakeprobe.media import synth


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


def test_search_near_known_faces_finds_them(photo, hd_frame):
    det = FaceDetector("cpu")
    frame = _small_face_frame(photo)
    for image in (frame, hd_frame):
        full = det.detect([image])[0]
        assert full
        near = det.detect_near([image], [np.array([f.box for f in full])])[0]
        assert len(near) == len(full)
        for a, b in zip(sorted(full, key=lambda f: f.box[0]), sorted(near, key=lambda f: f.box[0])):
            side = a.box[2] - a.box[0]
            assert np.allclose(a.box, b.box, atol=0.2 * side)  # same face: boxes within a fifth of its side
            assert np.allclose(a.landmarks, b.landmarks, atol=0.2 * side)
    # nothing to look around, or only where there is no face: nothing found
    assert det.detect_near([frame, frame], [np.zeros((0, 4)), np.array([[900.0, 500, 1000, 600]])]) == [[], []]


def test_wide_reach_finds_a_face_that_moved_by_its_own_size(hd_frame):
    det = FaceDetector("cpu")
    full = det.detect([hd_frame])[0]
    box = max(full, key=lambda f: f.box[0]).box
    moved = box + np.array([-1, -0.2, -1, -0.2]) * 0.9 * (box[2] - box[0])  # 0.9 sides left, 0.18 up
    assert not any(abs(f.box[0] - box[0]) < 10 for f in det.detect_near([hd_frame], [moved[None]])[0])
    wide = det.detect_near([hd_frame], [np.append(moved, faces.WIDE_REACH)[None]])[0]
    assert any(np.allclose(f.box, box, atol=0.2 * (box[2] - box[0])) for f in wide)


def test_between_merges_one_face_seen_on_both_sides():
    a = np.array([[100.0, 100, 200, 200]])
    same = faces.between(a, a + 10)
    assert same.shape == (1, 5) and np.allclose(same[0], [105, 105, 205, 205, faces.NEAR_REACH])
    moved = faces.between(a, a + [80, 0, 80, 0])  # by 0.8 of its side: halfway, and both ends
    assert moved.shape == (3, 5) and np.allclose(moved[0, :4], [140, 100, 240, 200])
    one_side = faces.between(a, np.zeros((0, 4)))
    assert one_side.shape == (1, 5) and one_side[0, 4] == faces.WIDE_REACH
    # two different faces (far apart, or of very different sizes) stay two, each with a wide reach
    two = faces.between(a, np.array([[600.0, 100, 700, 200]]))
    assert two.shape == (2, 5) and (two[:, 4] == faces.WIDE_REACH).all()
    assert faces.between(a, np.array([[100.0, 100, 400, 400]])).shape == (2, 5)
    assert faces.between(np.zeros((0, 4)), np.zeros((0, 4))).shape == (0, 5)


def _counting(det: FaceDetector) -> dict[str, int]:
    calls = {"full": 0, "near": 0}
    detect, detect_near = det.detect, det.detect_near

    def counted_detect(images):
        calls["full"] += len(images)
        return detect(images)

    def counted_near(images, near):
        calls["near"] += len(images)
        return detect_near(images, near)

    det.detect, det.detect_near = counted_detect, counted_near
    return calls


def test_small_face_is_found_in_every_sampled_frame(photo, tmp_path):
    """With the default schedule only every fourth frame gets the full search (the face moves, the
    background does not: nothing new to look for in between), and the small face is still found
    in every frame."""
    from fakeprobe.core.config import ScanConfig
    from fakeprobe.scan.analysis import Analyzer

    path = synth.write_video(tmp_path / "small.mp4", (_small_face_frame(photo, i / 10) for i in range(12)), 10.0)
    cfg = ScanConfig(frames=12)
    assert cfg.detect_every == 4 and cfg.look_for_new
    analyzer = Analyzer(cfg)
    calls = _counting(analyzer.face_detector)
    a = analyzer.analyse(path)
    assert calls == {"full": 3, "near": 9}
    assert [len(fs) for fs in a.faces] == [1] * 12
    assert len({t for ts in a.tracks for t in ts}) == 1


def test_a_face_in_a_single_sampled_frame_is_found_because_it_is_new(photo, tmp_path):
    """A face visible in only one sampled frame, between two fully searched frames without it: the
    frame shows something new, so it gets the full search too. Without that check (the plain
    every-fourth-frame schedule) the face is missed; detect_every=1 finds it at 8 full searches."""
    from fakeprobe.core.config import ScanConfig
    from fakeprobe.scan.analysis import Analyzer

    # 8 frames at 1 fps, sampled one by one: batches of 4, scheduled full searches on frames 3 and 7
    path = synth.scene_video(tmp_path / "flash.mp4", photo, width=640, height=360, seconds=8, fps=1,
                             faces=lambda i: 1 if i in (2, 5) else 0)
    found, full = {}, {}
    for name, cfg in {"every frame": ScanConfig(frames=8, detect_every=1), "default": ScanConfig(frames=8),
                      "schedule only": ScanConfig(frames=8, look_for_new=False)}.items():
        analyzer = Analyzer(cfg)
        calls = _counting(analyzer.face_detector)
        found[name] = [len(fs) for fs in analyzer.analyse(path).faces]
        full[name] = calls["full"]
    assert found["every frame"] == found["default"] == [0, 0, 1, 0, 0, 1, 0, 0]
    assert found["schedule only"] == [0] * 8
    assert full == {"every frame": 8, "default": 4, "schedule only": 2}
