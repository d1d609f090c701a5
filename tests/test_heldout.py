"""Cached held-out scoring gives what ``scan`` gives."""
from __future__ import annotations

import math

import numpy as np
import pytest

from fakeprobe.core.config import ScanConfig
from fakeprobe.evaluation.heldout import CachedScorer, FileCrops, analyse_crops
from fakeprobe.model.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def scorer(checkpoint) -> CachedScorer:
    return CachedScorer(load_checkpoint(checkpoint), ScanConfig(frames=8, backend="torch"))


@pytest.mark.parametrize("media", ["face_clip", "face_image"])
def test_cached_file_logit_equals_the_scan(request, media, make_detector, scorer, tmp_path):
    path = request.getfixturevalue(media)
    detector = make_detector(frames=8)
    result = detector.scan(path)
    fc = analyse_crops(detector.analyzer, path, detector.meta.input_size, detector.margin)
    assert len(fc.crops) == result.faces and fc.tracks.tolist() == [d.track for d in result.detections]
    fc.save(tmp_path / "c.npz")
    again = FileCrops.load(tmp_path / "c.npz")
    assert np.array_equal(again.crops, fc.crops) and again.path == str(path) and again.error is None
    z = scorer.file_logit(again) / detector.meta.temperature
    decider = next(p for p in result.persons if p.decides)
    # the scan rounds each face's logit to 4 decimals before averaging
    assert math.isclose(z, decider.logit, abs_tol=2e-3)


def test_no_face_and_unreadable_files(make_detector, scorer, empty_clip, tmp_path):
    detector = make_detector(frames=8)
    fc = analyse_crops(detector.analyzer, empty_clip, 128, 1.3)
    assert len(fc.crops) == 0 and fc.error is None and scorer.file_logit(fc) is None
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    fc = analyse_crops(detector.analyzer, bad, 128, 1.3)
    assert fc.error and "broken.mp4" in fc.error and scorer.file_logit(fc) is None


def test_crops_cached_at_another_size_are_resized_to_the_input(scorer, photo):
    import cv2

    size = scorer.ckpt.meta.input_size
    big = np.stack([cv2.resize(photo[30:230, 130:330], (2 * size, 2 * size)), cv2.resize(photo[:200, :200], (2 * size, 2 * size))])
    small = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in big])
    tracks = np.zeros(2, np.int64)
    assert scorer.at_input_size(small) is small
    assert scorer.file_logit(FileCrops("x", big, tracks)) == scorer.file_logit(FileCrops("x", small, tracks))
    assert scorer.runner.logits(big)[0] != scorer.runner.logits(small)[0]  # unresized, the net would see another scale


def test_crops_cached_at_224_shrink_to_exactly_the_scan_crops(make_detector, scorer, face_clip):
    """The dev benchmark caches 224 px crops once and scores smaller-input models on them shrunk:
    those must be the very crops ``scan`` cuts for that model (128 px here)."""
    detector = make_detector(frames=8)
    size = detector.meta.input_size
    assert size < 224
    cached = analyse_crops(detector.analyzer, face_clip, 224, detector.margin)
    scanned = analyse_crops(detector.analyzer, face_clip, size, detector.margin)
    assert len(scanned.crops) > 0
    np.testing.assert_array_equal(scorer.at_input_size(cached.crops), scanned.crops)


def test_a_mirrored_scorer_scores_the_mirror_image(checkpoint, scorer, photo):
    import cv2

    size = scorer.ckpt.meta.input_size
    face = cv2.resize(photo[30:230, 130:330], (size, size))
    mirrored = CachedScorer(scorer.ckpt, scorer.config, mirrored=True)
    fc = FileCrops("a.mp4", np.stack([face, face]), np.array([0, 0]))
    flipped = FileCrops("a.mp4", np.ascontiguousarray(fc.crops[:, :, ::-1]), fc.tracks)
    assert mirrored.file_logit(fc) == pytest.approx(scorer.file_logit(flipped), abs=1e-5)
    assert mirrored.file_logit(fc) != pytest.approx(scorer.file_logit(fc), abs=1e-3)  # the photo is not symmetric
    symmetric = np.concatenate([face[:, : size // 2], face[:, : size // 2][:, ::-1]], axis=1)
    both = FileCrops("b.mp4", symmetric[None], np.array([0]))
    assert mirrored.file_logit(both) == pytest.approx(scorer.file_logit(both), abs=1e-5)
