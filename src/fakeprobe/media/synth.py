"""Synthetic media made from a real face photo: test clips, benchmark clips, the example video.

Scenes place 0, 1 or more copies of a portrait on a textured background; each copy drifts a
little over time so tracking has something to follow.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable

import av
import cv2
import numpy as np


def portrait(photo: np.ndarray, height: int) -> np.ndarray:
    """The photo scaled to ``height`` pixels (keeps the aspect ratio)."""
    h, w = photo.shape[:2]
    return cv2.resize(photo, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)


def background(width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([60 + 80 * x / width, 90 + 60 * y / height, 140 - 50 * x / width], axis=-1)
    noise = cv2.GaussianBlur(rng.normal(0, 25, (height, width, 3)).astype(np.float32), (0, 0), 3)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def scene(photo: np.ndarray, width: int, height: int, faces: int, t: float, seed: int = 0) -> np.ndarray:
    """One frame with ``faces`` portraits side by side, moving slowly with ``t`` (seconds)."""
    frame = background(width, height, seed)
    if faces == 0:
        return frame
    ph = int(height * 0.6)
    face = portrait(photo, ph)
    slot = width // faces
    for i in range(faces):
        img = face if i % 2 == 0 else face[:, ::-1]
        pw = min(img.shape[1], slot - 4)
        img = img[:, (img.shape[1] - pw) // 2 :][:, :pw]
        dx = int(10 * np.sin(t * 0.7 + i))
        dy = int(8 * np.cos(t * 0.5 + i))
        x0 = np.clip(i * slot + (slot - pw) // 2 + dx, 0, width - pw)
        y0 = np.clip((height - ph) // 2 + dy, 0, height - ph)
        frame[y0 : y0 + ph, x0 : x0 + pw] = img
    return frame


def write_video(
    path: Path,
    frames: Iterable[np.ndarray],
    fps: float = 25.0,
    *,
    codec: str = "libx264",
    gop: int = 250,
    crf: int = 23,
    pix_fmt: str = "yuv420p",
    rotation: int = 0,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode RGB frames; ``rotation`` is stored as display-matrix metadata (the picture itself
    is written as given)."""
    path = Path(path)
    frames = iter(frames)
    first = next(frames)
    h, w = first.shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        opts = {"crf": str(crf), "preset": "veryfast"} if codec in ("libx264", "libx265") else {}
        opts.update(options or {})
        stream.options = opts
        if codec in ("libx264", "libx265", "mpeg4", "libvpx-vp9"):
            stream.codec_context.gop_size = gop
        if codec == "libx264":
            # one slice per frame with frame threads, as the ffmpeg command line writes it (PyAV's
            # default, slice threads, cuts every frame into slices that decode unusually well in parallel)
            stream.codec_context.thread_type = "FRAME"
        if rotation:
            stream.set_display_rotation(-rotation)  # PyAV's sign is counter-clockwise
        for img in (first, *frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def scene_video(
    path: Path, photo: np.ndarray, *, width: int = 640, height: int = 360, seconds: float = 2.0, fps: float = 25.0,
    faces: Callable[[int], int] | int = 1, **kw,
) -> Path:
    """A clip whose frame ``i`` shows ``faces(i)`` portraits (or a constant number)."""
    count = faces if callable(faces) else (lambda i, n=faces: n)
    n = max(1, round(seconds * fps))
    return write_video(path, (scene(photo, width, height, count(i), i / fps) for i in range(n)), fps, **kw)
