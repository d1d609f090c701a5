"""Blended fake videos for the dev benchmark: the face changes, the rest does not."""
from __future__ import annotations

import numpy as np
import pytest

from fakeprobe.evaluation.fakeclips import FaceGeometry, blend_video, read_frames
from fakeprobe.media import synth


@pytest.fixture(scope="module")
def geometry() -> FaceGeometry:
    return FaceGeometry()


@pytest.fixture(scope="module")
def clip(tmp_path_factory, photo):
    return synth.scene_video(tmp_path_factory.mktemp("fc") / "real.mp4", photo, width=480, height=320, seconds=0.8, fps=10, crf=12)


def _face_and_rest(frames_a, frames_b, geometry):
    """Mean absolute difference inside the faces' boxes and outside them."""
    inside, outside = [], []
    for a, b, face in zip(frames_a, frames_b, geometry.faces(frames_a)):
        x1, y1, x2, y2 = (int(v) for v in face.box)
        d = np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=2)
        m = np.zeros(d.shape, bool)
        pad = (x2 - x1) // 2
        m[max(0, y1 - pad) : y2 + pad, max(0, x1 - pad) : x2 + pad] = True
        inside.append(d[y1:y2, x1:x2].mean())
        outside.append(d[~m].mean())
    return float(np.mean(inside)), float(np.mean(outside))


@pytest.mark.parametrize("kind", ["sbi", "cross"])
def test_blends_change_the_face_only(kind, clip, geometry, photo, tmp_path):
    real = tmp_path / "none.mp4"
    assert blend_video(clip, real, "none", seed=1, geometry=geometry) == 0
    donor = geometry.donor([np.ascontiguousarray(photo[:, ::-1])]) if kind == "cross" else None
    fake = tmp_path / f"{kind}.mp4"
    n = blend_video(clip, fake, kind, seed=1, geometry=geometry, donor=donor)
    a, fps = read_frames(real, 100, 960)
    b, _ = read_frames(fake, 100, 960)
    assert n == len(a) == len(b) == 8 and fps == pytest.approx(10)
    inside, outside = _face_and_rest(a, b, geometry)
    assert inside > 2.0 and outside < 1.0 and inside > 5 * outside


def test_cross_needs_a_donor_and_kinds_are_checked(clip, tmp_path):
    with pytest.raises(ValueError, match="donor"):
        blend_video(clip, tmp_path / "x.mp4", "cross", seed=0)
    with pytest.raises(ValueError, match="kind"):
        blend_video(clip, tmp_path / "x.mp4", "swap", seed=0)
