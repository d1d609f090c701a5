"""Media -> sampled frames -> faces -> tracks: everything before classification.

Shared by ``scan`` and ``extract`` so both see exactly the same frames, faces and crops.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import video
from .config import ScanConfig
from .crop import crop_face
from .errors import InputError, ResourceLimitError
from .faces import Face, FaceDetector
from .images import IMAGE_SUFFIXES, load_image
from .results import MediaRecord
from .tracking import link_tracks


@dataclass
class Analysis:
    """Everything the pipeline saw in one file, before scoring."""

    media: MediaRecord
    frames: list[video.Frame]
    faces: list[list[Face]]  # per frame, analysed-frame coordinates
    tracks: list[list[int]]  # per frame, per face
    warnings: list[str]
    timings: dict[str, float]


class Analyzer:
    def __init__(self, config: ScanConfig | None = None):
        self.config = config or ScanConfig()
        self._faces: FaceDetector | None = None

    @property
    def face_detector(self) -> FaceDetector:
        if self._faces is None:
            cfg = self.config
            self._faces = FaceDetector(cfg.device, max_side=cfg.detect_max_side, min_score=cfg.min_face_score, min_face_size=cfg.min_face_size)
        return self._faces

    def analyse(self, path: Path) -> Analysis:
        """Decode, detect and track faces in one file (no classification)."""
        if not path.exists():
            raise InputError(f"{path}: no such file", kind="not_found")
        if path.is_dir():
            raise InputError(f"{path}: is a directory", kind="not_a_file")
        try:
            size = path.stat().st_size
            with open(path, "rb"):
                pass
        except PermissionError:
            raise InputError(f"{path}: permission denied", kind="unreadable") from None
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})", kind="unreadable") from None
        if size == 0:
            raise InputError(f"{path}: empty file (0 bytes)", kind="empty")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return self._analyse_image(path)
        return self._analyse_video(path)

    def _analyse_image(self, path: Path) -> Analysis:
        t0 = time.perf_counter()
        image = load_image(path, self.config.max_pixels)
        h, w = image.shape[:2]
        scale = min(1.0, self.config.analyse_max_side / max(h, w))
        warnings = []
        if scale < 1.0:
            image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
            warnings.append(f"image downscaled from {w}x{h} for analysis")
        frames = [video.Frame(time_s=0.0, index=0, image=image, scale=scale)]
        t1 = time.perf_counter()
        faces = self.face_detector.detect([image])
        t2 = time.perf_counter()
        media = MediaRecord(kind="image", width=w, height=h, frame_count=1, frames_analysed=1)
        tracks = link_tracks([[f.box for f in fs] for fs in faces])
        return Analysis(media, frames, faces, tracks, warnings, {"decode": t1 - t0, "detect": t2 - t1})

    def _analyse_video(self, path: Path) -> Analysis:
        cfg = self.config
        t0 = time.perf_counter()
        deadline = time.monotonic() + cfg.time_limit_s
        info, index = video.probe(path, cfg.max_duration_s)
        warnings: list[str] = []
        duration = info.duration_s
        if index.times and index.times[-1] >= cfg.max_duration_s - 1.0 / max(info.fps, 1.0):
            warnings.append(f"only the first {cfg.max_duration_s:g} s were analysed")
        decode_s = time.perf_counter() - t0
        detect_s = 0.0
        frames: list[video.Frame] = []
        faces: list[list[Face]] = []
        sampled: set[float] = set()
        rotation = 0
        undecoded = 0
        wanted = video.even_times(duration, cfg.frames)
        for round_ in range(cfg.max_frame_rounds + 1):
            times = [t for t in video.frame_times(index, wanted) if t not in sampled]
            if not times:
                break
            sampled.update(times)
            t1 = time.perf_counter()
            try:
                new_frames, rotation = video.decode_frames(path, index, times, max_side=cfg.analyse_max_side, max_pixels=cfg.max_pixels,
                                                           deadline=deadline)
            except InputError:
                if not frames:
                    raise
                new_frames = []  # a later round hit damage: keep what the earlier rounds found
            undecoded += len(times) - len(new_frames)
            t2 = time.perf_counter()
            new_faces = self.face_detector.detect([f.image for f in new_frames])
            t3 = time.perf_counter()
            decode_s += t2 - t1
            detect_s += t3 - t2
            frames += new_frames
            faces += new_faces
            if sum(len(f) for f in faces) >= cfg.frames:
                break
            if time.monotonic() > deadline:
                raise ResourceLimitError(f"{path}: per-file time limit of {cfg.time_limit_s:g} s exceeded", kind="timeout")
            # too few faces: sample midway between the frames taken so far, and towards both ends
            done = sorted(sampled)
            wanted = [done[0] / 2] + [(a + b) / 2 for a, b in zip(done, done[1:])] + [(done[-1] + duration) / 2]
        if undecoded:
            warnings.append(f"{undecoded} of {len(sampled)} sampled frames could not be decoded (damaged or truncated file?)")
        order = sorted(range(len(frames)), key=lambda i: frames[i].time_s)
        frames = [frames[i] for i in order]
        faces = [faces[i] for i in order]
        if frames and frames[0].scale < 1.0:
            warnings.append(f"frames downscaled from {info.width}x{info.height} to {frames[0].image.shape[1]}x{frames[0].image.shape[0]} for analysis")
        w, h = (info.height, info.width) if rotation in (90, 270) else (info.width, info.height)
        media = MediaRecord(
            kind="video", width=w, height=h, duration_s=round(duration, 4), fps=round(info.fps, 4), frame_count=info.frame_count,
            codec=info.codec, rotation=rotation, frames_analysed=len(frames),
        )
        tracks = link_tracks([[f.box for f in fs] for fs in faces])
        return Analysis(media, frames, faces, tracks, warnings, {"decode": decode_s, "detect": detect_s})

    @staticmethod
    def crops(analysis: Analysis, size: int, margin: float, align: bool) -> np.ndarray:
        """Face crops in frame order, the same for scan, extract and training."""
        out = [
            crop_face(fr.image, face.box, face.landmarks, size=size, margin=margin, align=align)
            for fr, fs in zip(analysis.frames, analysis.faces)
            for face in fs
        ]
        if not out:
            return np.zeros((0, size, size, 3), np.uint8)
        return np.stack(out)
