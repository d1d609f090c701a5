"""Where a file comes from, and which split it belongs to: train, cal (model choice, temperature
and threshold) or test (held out of everything, for the reported figures).

Splits are made by group, never at random: files of one group are alike (the same broadcast,
the same clip, photos taken minutes apart), so a group on both sides would make held-out figures
look better than what users get.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

TRAIN, CAL, TEST = "train", "cal", "test"
# The split of every training run, whatever its --seed. (Runs before metadata recorded
# "split_seed" split with their own --seed: a seed-1 member trained on seed 0's test groups.)
SPLIT_SEED = 0
TV_BLOCK = 500  # tv_faces clip numbers per group: consecutive numbers come from the same broadcast
# held-out shares (cal, test) by source; the talking-head clip families are small, so more of
# each is held out to leave more than a couple of videos per source to measure on
HOLDOUT = {"default": (0.15, 0.15), "clips": (0.25, 0.25)}
CLIP_FAMILIES = {"mead": "mead", "voxceleb2": "voxceleb2", "grid": "grid", "liveportrait": "liveportrait", "sadtalker": "hdtf"}
_TV = re.compile(r"lrcar_(extra_)?(\d+)$")
_UTK = re.compile(r"_(\d{12,})")


def source_of(path: str | Path) -> str:
    """The source a file belongs to: tv_faces, utkface, a clip family (mead, voxceleb2, grid,
    liveportrait, hdtf) or, for anything else, its folder's name."""
    p = Path(path)
    if _TV.match(p.stem):
        return "tv_faces"
    if "utkface" in p.parts:
        return "utkface"
    family = p.stem.split("_")[0].lower()
    if family in CLIP_FAMILIES:
        return CLIP_FAMILIES[family]
    return p.parent.name or "unknown"


def group_of(path: str | Path) -> str:
    """The split unit of a file: a block of tv_faces clip numbers, a block of UTKFace photos
    taken within the same hour, or else the whole file (one clip, by name)."""
    p = Path(path)
    m = _TV.match(p.stem)
    if m:
        return f"tv_faces:{'extra' if m.group(1) else ''}{int(m.group(2)) // TV_BLOCK}"
    m = _UTK.search(p.stem)
    if m and p.suffix.lower() in (".jpg", ".jpeg", ".png"):
        return "photo:" + m.group(1)[:10]
    return p.name  # the name, not the path: the split must not depend on where the data lies


def split_seed_of(training: dict) -> int:
    """The seed a run's metadata (``meta.training``) split its data with: ``split_seed`` where
    recorded, else (older runs) its own ``seed``."""
    return int(training.get("split_seed", training.get("seed", SPLIT_SEED)))


def split_of(path: str | Path, seed: int = SPLIT_SEED, holdout: tuple[float, float] | None = None) -> str:
    """TRAIN, CAL or TEST for a file, from a stable hash of its group."""
    source = source_of(path)
    cal, test = holdout or HOLDOUT["clips" if source in CLIP_FAMILIES.values() else "default"]
    u = int(hashlib.sha1(f"{seed}:{group_of(path)}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return TEST if u < test else CAL if u < test + cal else TRAIN
