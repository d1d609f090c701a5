"""Sources, groups and the train/cal/test split of ``fakeprobe.train.splits``."""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest

from fakeprobe.train.splits import CAL, SPLIT_SEED, TEST, TRAIN, group_of, source_of, split_of, split_seed_of


@pytest.mark.parametrize("path, source", [
    ("/d/tv_faces/lrcar_00139.mp4", "tv_faces"),
    ("/d/tv_faces/lrcar_extra_01549.mp4", "tv_faces"),
    ("/d/utkface/26_1_0_20170116174525125.jpg", "utkface"),
    ("/d/clips/real/mead_M030_front_angry_level3_001.mp4", "mead"),
    ("/d/clips/real/voxceleb2_00002.mp4", "voxceleb2"),
    ("/d/clips/real/grid_bbaf2n.mpg", "grid"),
    ("/d/clips/real/liveportrait_d0.mp4", "liveportrait"),
    ("/d/clips/real/sadtalker_WDA_KatieHill_000.mp4", "hdtf"),
    ("/uploads/newsroom/clip.mp4", "newsroom"),
])
def test_source_of(path, source):
    assert source_of(path) == source


def test_groups_are_blocks_of_clip_numbers_and_photo_hours():
    assert group_of("/d/tv_faces/lrcar_00139.mp4") == group_of("/d/tv_faces/lrcar_00499.mp4") == "tv_faces:0"
    assert group_of("/d/tv_faces/lrcar_00500.mp4") == "tv_faces:1"
    assert group_of("/d/tv_faces/lrcar_extra_00139.mp4") == "tv_faces:extra0"  # another series of numbers
    assert group_of("/d/utkface/26_1_0_20170116174525125.jpg") == group_of("/d/utkface/30_0_1_20170116179999999.jpg")
    assert group_of("/d/clips/real/grid_bbaf2n.mpg") == group_of("/elsewhere/grid_bbaf2n.mpg") == "grid_bbaf2n.mpg"


def test_a_group_never_straddles_splits_and_the_split_is_stable():
    paths = [f"/d/tv_faces/lrcar_{n:05d}.mp4" for n in range(0, 20000, 7)]
    by_group = defaultdict(set)
    for p in paths:
        by_group[group_of(p)].add(split_of(p))
    assert all(len(s) == 1 for s in by_group.values())
    assert [split_of(p) for p in paths] == [split_of(p) for p in paths]
    counts = Counter(split_of(p) for p in paths)
    assert set(counts) == {TRAIN, CAL, TEST}
    assert [split_of(p, seed=1) for p in paths] != [split_of(p) for p in paths]


def test_explicit_holdout_shares():
    paths = [f"/clips/real/clip_{i:03d}.mp4" for i in range(400)]
    counts = Counter(split_of(p, holdout=(0.3, 0.0)) for p in paths)
    assert counts[TEST] == 0 and 0.2 < counts[CAL] / 400 < 0.4


@pytest.mark.shared
def test_a_runs_split_seed_is_the_recorded_one_else_its_own_seed():
    assert split_seed_of({"seed": 1, "split_seed": 0}) == 0
    assert split_seed_of({"seed": 1}) == 1  # runs before split_seed was recorded
    assert split_seed_of({}) == SPLIT_SEED


def test_every_shared_source_has_held_out_files(shared_data: Path):
    files = [*shared_data.glob("tv_faces/*.mp4"), *shared_data.glob("utkface/*.jpg"), *(shared_data / "clips" / "real").iterdir()]
    counts = Counter((source_of(f), split_of(f)) for f in files)
    for source in ("tv_faces", "utkface", "mead", "voxceleb2", "grid", "liveportrait"):
        assert counts[(source, CAL)] >= 1 and counts[(source, TEST)] >= 2, source
    assert counts[("tv_faces", TEST)] >= 200
