"""Faces found in the right frames, one track per person, and the per-face -> person -> file scores."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fakeprobe.core.results import ERROR, FAKE, NO_FACE, REAL
from fakeprobe.faces.tracking import link_tracks
from fakeprobe.media import synth
from fakeprobe.model.scoring import deciding_track, file_logit, sigmoid, track_logits

W, H = 320, 180


def _faces_in(i: int) -> int:
    return 0 if i < 10 else 1 if i < 20 else 2


@pytest.fixture(scope="session")
def zero_one_two(media_dir, photo, make_detector):
    """10 fps, 3 s: frames 0-9 no face, 10-19 one, 20-29 two; all 30 frames sampled."""
    path = synth.scene_video(media_dir / "zero_one_two.mp4", photo, width=W, height=H, seconds=3.0, fps=10, faces=_faces_in)
    return make_detector(frames=30).scan(path)


@pytest.fixture(scope="session")
def two_people(media_dir, photo, make_detector):
    path = synth.scene_video(media_dir / "two.mp4", photo, width=W, height=H, seconds=1.0, fps=10, faces=2)
    return make_detector(frames=10).scan(path)


def test_every_frame_sampled(zero_one_two):
    r = zero_one_two
    assert r.error is None
    assert r.media.frames_analysed == 30
    assert [f.frame_index for f in r.frames] == list(range(30))
    assert [f.time_s for f in r.frames] == pytest.approx([i / 10 for i in range(30)])


def test_faces_found_exactly_in_the_right_frames(zero_one_two):
    r = zero_one_two
    assert [f.faces for f in r.frames] == [_faces_in(i) for i in range(30)]
    per_frame = {}
    for d in r.detections:
        per_frame.setdefault(d.frame_index, []).append(d)
    assert {i: len(ds) for i, ds in per_frame.items()} == {i: _faces_in(i) for i in range(30) if _faces_in(i)}
    assert r.faces == len(r.detections) == 10 + 20
    for f in r.frames:
        assert (f.max_probability is None) == (f.faces == 0)


def test_two_faces_in_a_frame_get_distinct_tracks(zero_one_two):
    by_frame = {}
    for d in zero_one_two.detections:
        by_frame.setdefault(d.frame_index, []).append(d.track)
    for i in range(20, 30):
        assert len(set(by_frame[i])) == 2, (i, by_frame[i])
    # the two people of frames 20-29 are followed consistently, left and right
    left = {min(ds, key=lambda d: d.box[0]).track for ds in _group(zero_one_two.detections, 20, 30)}
    right = {max(ds, key=lambda d: d.box[0]).track for ds in _group(zero_one_two.detections, 20, 30)}
    assert len(left) == 1 and len(right) == 1 and left != right
    assert len({d.track for d in zero_one_two.detections if 10 <= d.frame_index < 20}) == 1


def _group(detections, lo, hi):
    out = {}
    for d in detections:
        if lo <= d.frame_index < hi:
            out.setdefault(d.frame_index, []).append(d)
    return list(out.values())


def test_two_person_clip_gives_two_persons(two_people):
    r = two_people
    assert r.verdict in (FAKE, REAL)
    assert len(r.persons) == 2 and r.to_dict()["n_persons"] == 2
    assert sorted(p.faces for p in r.persons) == [10, 10]
    assert {d.track for d in r.detections} == {p.track for p in r.persons}
    assert sum(p.decides for p in r.persons) == 1
    for p in r.persons:
        assert p.first_time_s == pytest.approx(0.0) and p.last_time_s == pytest.approx(0.9)


def test_face_in_one_frame_only_is_reported(media_dir, photo, make_detector):
    path = synth.scene_video(media_dir / "flash.mp4", photo, width=W, height=H, seconds=1.0, fps=10,
                             faces=lambda i: 1 if i == 5 else 0)
    r = make_detector(frames=10).scan(path)
    assert r.verdict in (FAKE, REAL)
    assert r.faces == 1 and [d.frame_index for d in r.detections] == [5]
    assert len(r.persons) == 1 and r.persons[0].faces == 1 and r.persons[0].decides
    assert r.probability == r.persons[0].probability
    assert any("few faces" in w for w in r.warnings)


def test_no_face_clip(empty_clip, make_detector):
    r = make_detector(frames=4).scan(empty_clip)
    assert r.verdict == NO_FACE
    assert r.probability is None and r.faces == 0 and r.persons == [] and r.error is None
    assert 4 < r.media.frames_analysed <= 10  # too few faces: extra rounds sampled between the first frames
    assert any("no face" in w for w in r.warnings)


# -- scores ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["zero_one_two", "two_people"])
def test_person_score_is_sigmoid_of_mean_logit(fixture, request):
    r = request.getfixturevalue(fixture)
    for p in r.persons:
        logits = [d.logit for d in r.detections if d.track == p.track]
        assert p.faces == len(logits)
        assert p.logit == pytest.approx(np.mean(logits), abs=2e-4)
        assert p.probability == pytest.approx(sigmoid(p.logit), abs=2e-4)
        assert p.verdict == (FAKE if p.probability >= r.threshold else REAL)
    for d in r.detections:
        assert d.probability == pytest.approx(sigmoid(d.logit), abs=2e-4)
    # the file's score: the most suspicious person among those with enough faces
    need = min(3, max(p.faces for p in r.persons))
    eligible = [p for p in r.persons if p.faces >= need]
    decider = max(eligible, key=lambda p: p.logit)
    assert [p.track for p in r.persons if p.decides] == [decider.track]
    assert r.probability == decider.probability
    assert r.verdict == (FAKE if r.probability >= r.threshold else REAL)


def test_threshold_decides_the_verdict(face_clip, make_detector):
    always = make_detector(frames=4, threshold=0.0).scan(face_clip)
    never = make_detector(frames=4, threshold=1.0).scan(face_clip)
    assert always.verdict == FAKE and always.threshold == 0.0
    assert never.verdict == REAL and never.threshold == 1.0
    assert always.probability == never.probability


def test_track_logits_and_deciding_track():
    per = track_logits([0, 0, 1, 2, 2, 2], np.array([1.0, 3.0, 9.0, -1.0, -2.0, 0.0]))
    assert per == {0: (2.0, 2), 1: (9.0, 1), 2: (-1.0, 3)}
    assert deciding_track(per, min_faces=3) == 2  # a lone suspicious face does not decide
    assert deciding_track(per, min_faces=2) == 0
    assert deciding_track(per, min_faces=1) == 1
    assert deciding_track({4: (0.5, 1), 7: (2.0, 1)}, min_faces=3) == 7  # all short: the most suspicious
    assert deciding_track({}, min_faces=3) is None


def test_another_statistic_per_track_changes_only_the_person_scores():
    tracks, z = [0, 0, 0, 1, 1, 1], np.array([0.0, 0.5, 6.0, 1.0, 1.5, 2.0])
    assert file_logit(tracks, z, min_faces=3) == pytest.approx(2.1666667)  # scan's mean: one odd face decides
    assert track_logits(tracks, z, np.median) == {0: (0.5, 3), 1: (1.5, 3)}
    assert file_logit(tracks, z, min_faces=3, statistic=np.median) == 1.5  # now the other person decides


def test_link_tracks_returns_plain_ints():
    a = np.array([10.0, 10, 50, 50])
    b = np.array([100.0, 10, 140, 50])
    ids = link_tracks([[a], [a + 2, b], [b + 2, a + 4], []])
    assert ids == [[0], [0, 1], [1, 0], []]
    assert all(type(i) is int for frame in ids for i in frame)
    json.dumps(ids)  # track ids end up in JSON records


def test_error_result_has_no_scores(tmp_path, make_detector):
    r = make_detector(frames=4).scan(tmp_path / "missing.mp4")
    assert r.verdict == ERROR and r.probability is None and r.faces == 0 and r.persons == []
