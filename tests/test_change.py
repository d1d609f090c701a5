"""change: does a sampled frame show something its neighbours do not (and so need the full face search)?"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from fakeprobe.media import change, synth

SCALE = 0.5  # a 1280x720 frame is detected at 640x360
CELL = change.CELL / SCALE  # frame pixels per cell


def _scene(photo: np.ndarray, t: float, seed: int = 0) -> np.ndarray:
    """A portrait drifting on a textured background, with sensor-like grain."""
    frame = synth.scene(photo, 1280, 720, 1, t)
    noise = np.random.default_rng(seed).normal(0, 4, frame.shape)
    return np.clip(frame + noise, 0, 255).astype(np.uint8)


def _thumb(frame: np.ndarray) -> np.ndarray:
    return change.thumbnail(frame, SCALE)


def _with_face(frame: np.ndarray, photo: np.ndarray, x: int, y: int, side: int) -> np.ndarray:
    out = frame.copy()
    face = cv2.resize(photo[30:230, 150:350], (side, side), interpolation=cv2.INTER_AREA)  # the astronaut's face
    out[y : y + side, x : x + side] = face
    return out


NOWHERE = np.zeros((0, 5))


def test_thumbnail_and_envelope_sizes(photo):
    thumb = _thumb(_scene(photo, 0.0))
    assert thumb.shape == (90, 160, 3) and thumb.dtype == np.uint8  # half-cells
    env = change.envelope(thumb)
    assert env.low.shape == env.high.shape == (45, 80, 3)
    assert (env.low <= env.high).all()


def test_a_scene_that_only_moves_a_little_shows_nothing_new(photo):
    """The portrait drifts by a few pixels and the grain changes: nothing new anywhere, not even at
    the portrait's sharp edges, although nothing is masked as a known face."""
    a, k, b = (_thumb(_scene(photo, t, seed)) for seed, t in enumerate((0.0, 1.0, 2.0)))
    neighbours = [change.envelope(a), change.envelope(b)]
    assert change.blocks(change.excess(k, neighbours[0])).max() < change.CHANGE_LEVEL / 2
    assert not change.something_new(k, neighbours, NOWHERE, CELL)


def test_a_small_highlight_moving_less_than_a_cell_is_not_new():
    """A bright spot smaller than a cell moves by half a cell: a cell's mean can then be brighter
    than any cell of the other frame; the half-cell envelope still holds it."""
    base = np.full((720, 1280, 3), 30, np.uint8)
    a, k = base.copy(), base.copy()
    a[400:412, 600:612] = 255  # 12 px: 6 detection px, under one 8 px cell
    k[400:412, 608:620] = 255
    assert not change.something_new(_thumb(k), [change.envelope(_thumb(a))], NOWHERE, CELL)


def test_a_face_stepping_in_is_new_where_it_appears(photo):
    """A face (48 px, 24 in the detection frame: near MTCNN's smallest) appears in the middle frame
    only: something new, and the change is largest where the face is."""
    scenes = [_scene(photo, t, seed) for seed, t in enumerate((0.0, 1.0, 2.0))]
    k = _thumb(_with_face(scenes[1], photo, 1000, 500, 48))
    neighbours = [change.envelope(_thumb(scenes[0])), change.envelope(_thumb(scenes[2]))]
    assert change.something_new(k, neighbours, NOWHERE, CELL)
    ch = change.blocks(np.min([change.excess(k, e) for e in neighbours], axis=0))
    y, x = np.unravel_index(ch.argmax(), ch.shape)
    assert 1000 - CELL <= x * CELL <= 1048 and 500 - CELL <= y * CELL <= 548


def test_new_only_if_unlike_every_neighbour(photo):
    """A face already in the frame after is no news: the near search around that frame's faces
    covers it (``faces.between``)."""
    scenes = [_scene(photo, t, seed) for seed, t in enumerate((0.0, 1.0, 2.0))]
    k = _thumb(_with_face(scenes[1], photo, 1000, 500, 48))
    after = _thumb(_with_face(scenes[2], photo, 1000, 500, 48))
    assert not change.something_new(k, [change.envelope(_thumb(scenes[0])), change.envelope(after)], NOWHERE, CELL)


def test_change_within_the_near_search_does_not_count(photo):
    scenes = [_scene(photo, t, seed) for seed, t in enumerate((0.0, 1.0))]
    k = _thumb(_with_face(scenes[1], photo, 1000, 500, 48))
    neighbours = [change.envelope(_thumb(scenes[0]))]
    near = np.array([[996.0, 496, 1052, 552, 0.25]])  # a face known there (a detector's box is a little larger)
    assert change.something_new(k, neighbours, near + [300, 0, 300, 0, 0], CELL)  # known elsewhere: still new
    assert not change.something_new(k, neighbours, near, CELL)


@pytest.mark.parametrize("reach", [0.25, 1.0])
def test_covered_cells_lie_inside_the_near_search(reach):
    box = np.array([[400.0, 200, 500, 300, reach]])
    mask = change.covered((45, 80), box, CELL)
    half = (reach + 0.6) * 100
    ys, xs = np.nonzero(mask)
    assert mask.any()
    assert xs.min() * CELL >= 450 - half and (xs.max() + 1) * CELL <= 450 + half
    assert ys.min() * CELL >= 250 - half and (ys.max() + 1) * CELL <= 250 + half
    assert not change.covered((45, 80), np.array([[-500.0, -500, -400, -400, 1.0]]), CELL).any()  # off the frame


def test_without_a_comparable_neighbour_the_frame_is_searched(photo):
    k = _thumb(_scene(photo, 0.0))
    assert change.something_new(k, [None, None], NOWHERE, CELL)
    other_size = change.envelope(change.thumbnail(np.zeros((360, 640, 3), np.uint8), 1.0 / 3))
    assert change.something_new(k, [other_size], NOWHERE, CELL)
