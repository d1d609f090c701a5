"""Smoke checks on real clips from ../shared/data (skipped when the folder is absent)."""
from __future__ import annotations

import json

import av
import numpy as np
import pytest

from fakeprobe.media import video

pytestmark = pytest.mark.shared

CLIPS = [
    "clips/real/grid_sbwe5n.mpg",  # MPEG-1 program stream: imprecise seeking
    "clips/real/mead_W009_front_fear_level3_001.mp4",
    "clips/real/voxceleb2_00010.mp4",
    "clips/fake/sadtalker_example_full_crop.gif",
]


def _clip(shared_data, rel):
    path = shared_data / rel
    if not path.is_file():
        pytest.skip(f"{rel} not in ../shared/data")
    return path


@pytest.mark.parametrize("rel", CLIPS)
def test_sampled_frames_equal_sequential_decode(shared_data, rel):
    path = _clip(shared_data, rel)
    info, index = video.probe(path)
    times = video.frame_times(index, video.even_times(info.duration_s, 12))
    frames, _ = video.decode_frames(path, index, times)
    assert [f.time_s for f in frames] == times
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        base = float(s.time_base)
        start = s.start_time * base if s.start_time is not None else 0.0
        ref = {f.pts * base - start: f for f in c.decode(s)}
    for f in frames:
        assert np.array_equal(f.image, ref[f.time_s].to_ndarray(format="rgb24")), f.index


@pytest.mark.parametrize("rel", CLIPS)
def test_real_clip_scans(shared_data, rel, make_detector, validate):
    path = _clip(shared_data, rel)
    r = make_detector(frames=8).scan(path)
    validate(json.loads(json.dumps(r.to_dict())))
    assert r.verdict in ("FAKE", "REAL"), (r.verdict, r.error)
    assert r.faces >= 6  # a talking head is visible throughout
    assert r.media.frames_analysed >= 8 and r.media.frame_count > 8
    assert len([p for p in r.persons if p.faces >= 3]) == 1  # one speaker, one track
