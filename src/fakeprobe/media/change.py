"""Where a sampled frame shows something its neighbours do not: a cheap test that tells the scan
whether a frame needs MTCNN's full search or only a look near the faces already known.

A frame is reduced to a thumbnail of cells (``CELL`` detection pixels square, per-channel means).
Each cell's colour is compared with the range of colours its neighbour frames show within a cell
of the same place (their "envelope", made from half-cells so that small bright or dark spots keep
their extremes). What was there and moved by up to a cell, grain and compression noise stay inside
that range; a face the neighbours did not show mostly falls outside it. Cells the near search
covers anyway do not count, and a change must hold over a block of cells, not one.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CELL = 8  # detection pixels per thumbnail cell; MTCNN's smallest face (20 px) spans 2-3 cells
SHIFT = 1  # cells a thing may move between the frames compared and still count as the same
BLOCK = 2  # cells per side of the blocks whose change is averaged
CHANGE_LEVEL = 20.0  # mean excess (0-255 grey levels) over a block that counts as something new (BENCHMARKS.md)


def thumbnail(image: np.ndarray, detect_scale: float) -> np.ndarray:
    """Means (uint8, h, w, 3) of half-cells of an RGB frame whose detection copy is ``detect_scale``
    times its size (the finer grid keeps the brightest and darkest spots that a cell mean blurs)."""
    h, w = image.shape[:2]
    size = (2 * max(1, round(w * detect_scale / CELL)), 2 * max(1, round(h * detect_scale / CELL)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


@dataclass
class Envelope:
    """Per cell of a thumbnail, the darkest and brightest half-cell (per channel) within ``SHIFT``
    cells: the colours something that was there may show after moving a little."""

    low: np.ndarray  # float32 (h, w, 3)
    high: np.ndarray


def envelope(thumb: np.ndarray) -> Envelope:
    # cell i covers half-cells 2i and 2i + 1; with SHIFT cells either side the window is 4 * SHIFT + 2 wide
    kernel = np.ones((4 * SHIFT + 2, 4 * SHIFT + 2), np.uint8)
    anchor = (2 * SHIFT, 2 * SHIFT)
    high = cv2.dilate(thumb, kernel, anchor=anchor, borderType=cv2.BORDER_REPLICATE)[::2, ::2]
    low = cv2.erode(thumb, kernel, anchor=anchor, borderType=cv2.BORDER_REPLICATE)[::2, ::2]
    return Envelope(low.astype(np.float32), high.astype(np.float32))


def excess(thumb: np.ndarray, other: Envelope) -> np.ndarray:
    """Per cell of ``thumb``, how far its mean colour lies outside ``other``'s envelope (per channel,
    the largest excess). Whatever moved by up to ``SHIFT`` cells, even a sharp edge or a small
    highlight, stays inside; a new object rarely does."""
    h, w = other.high.shape[:2]
    mean = cv2.resize(thumb, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    return np.maximum(mean - other.high, other.low - mean).max(axis=2).clip(min=0)


def blocks(cells: np.ndarray) -> np.ndarray:
    """Means over blocks of ``BLOCK`` x ``BLOCK`` cells: a lone cell (noise) counts for little."""
    return cv2.blur(cells, (BLOCK, BLOCK), borderType=cv2.BORDER_REPLICATE)


def covered(shape: tuple[int, int], near: np.ndarray, cell: float) -> np.ndarray:
    """Cells (bool, ``shape``) that lie wholly inside the area a near search covers: each row of
    ``near`` (x1, y1, x2, y2, reach in analysed-frame pixels) reaches ``reach`` box sides beyond its
    centre plus half the largest window. ``cell``: analysed-frame pixels per cell."""
    mask = np.zeros(shape, bool)  # (cells)
    for x1, y1, x2, y2, reach in np.asarray(near, np.float64).reshape(-1, 5):
        side = max(x2 - x1, y2 - y1)
        half = (reach + 0.6) * side
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        c0, c1 = int(np.ceil((cx - half) / cell)), int(np.floor((cx + half) / cell))
        r0, r1 = int(np.ceil((cy - half) / cell)), int(np.floor((cy + half) / cell))
        mask[max(r0, 0) : max(r1, 0), max(c0, 0) : max(c1, 0)] = True
    return mask


def something_new(thumb: np.ndarray, neighbours: list[Envelope | None], near: np.ndarray, cell: float,
                  level: float = CHANGE_LEVEL) -> bool:
    """Whether ``thumb`` shows, outside the area searched near ``near``, something that no neighbour
    (their envelopes; None: unknown) shows: a block unlike all of them. With no neighbour, True."""
    others = [e for e in neighbours if e is not None and e.high.shape[0] * 2 == thumb.shape[0] and e.high.shape[1] * 2 == thumb.shape[1]]
    if not others:
        return True
    change = np.min([excess(thumb, e) for e in others], axis=0)
    change[covered(change.shape, near, cell)] = 0.0
    return bool(blocks(change).max() > level)
