"""Blended fake videos made from real ones, for the dev benchmark (there are no face-swap videos
to test on offline).

Every frame's face is blended with an altered copy of itself (``sbi``) or with another person's
face (``cross``) through a landmark mask, with the same random choices on every frame so the
artefact is steady over time, as in a face swap. The real video goes through the same decode,
resize and encode (``blend_video(kind="none")``), so the two differ only by the blending.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from ..faces.crop import crop_face, crop_transform, transform_points
from ..faces.detection import Face, FaceDetector
from ..media.synth import write_video
from ..train.sbi import cross_blend, face_points_from5, self_blend

KINDS = ("none", "sbi", "cross")
REGION = 2.2  # the blended region: this many face-box sides around the face


@dataclass(frozen=True)
class Donor:
    """Another person's face for ``cross`` blends: a face region and its 5 landmarks in it."""
    image: np.ndarray
    lm5: np.ndarray


def read_frames(path: Path, max_frames: int, max_side: int) -> tuple[list[np.ndarray], float]:
    """Up to ``max_frames`` RGB frames from the start, longest side at most ``max_side`` (even
    sides), and the frame rate."""
    import cv2

    frames = []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        fps = float(stream.average_rate or 25)
        for f in c.decode(stream):
            img = f.to_ndarray(format="rgb24")
            h, w = img.shape[:2]
            s = min(1.0, max_side / max(h, w))
            if s < 1.0:
                img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
            h, w = img.shape[:2]
            frames.append(np.ascontiguousarray(img[: h // 2 * 2, : w // 2 * 2]))
            if len(frames) >= max_frames:
                break
    if not frames:
        raise ValueError(f"{path}: no frames")
    return frames, fps


def _region(shape: tuple[int, int], face: Face) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = (float(v) for v in face.box[:4])
    half = max(x2 - x1, y2 - y1) * REGION / 2
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    h, w = shape
    return max(0, int(cx - half)), max(0, int(cy - half)), min(w, int(cx + half)), min(h, int(cy + half))


def _largest(faces: list[Face]) -> Face | None:
    return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), default=None)


class FaceGeometry:
    """Per frame: the largest face, its blending region and its landmarks in region coordinates
    (68 dense points with dlib, else an outline from MTCNN's 5)."""

    def __init__(self, detector: FaceDetector | None = None):
        from ..faces import landmarks

        self.detector = detector or FaceDetector()
        self.dense = landmarks.DenseLandmarks() if landmarks.available() else None

    def faces(self, frames: list[np.ndarray]) -> list[Face | None]:
        out: list[Face | None] = []
        for i in range(0, len(frames), 4):
            out.extend(_largest(fs) for fs in self.detector.detect(frames[i : i + 4]))
        return out

    def points(self, frame: np.ndarray, face: Face, origin: tuple[int, int]) -> np.ndarray:
        lm5 = np.asarray(face.landmarks, np.float64)
        if self.dense is None:
            pts = face_points_from5(lm5)
        else:
            m = crop_transform(face.box, face.landmarks, 256, 1.3, False)
            inv = np.vstack([m, [0, 0, 1]])
            pts = transform_points(np.linalg.inv(inv)[:2], self.dense(crop_face(frame, face.box, face.landmarks, size=256), 1.3))
        return pts - origin

    def donor(self, frames: list[np.ndarray]) -> Donor | None:
        """The first well-found face of a video, as a donor for cross blends."""
        for frame, face in zip(frames, self.faces(frames[:8])):
            if face is not None:
                x0, y0, x1, y1 = _region(frame.shape[:2], face)
                return Donor(frame[y0:y1, x0:x1].copy(), np.asarray(face.landmarks, np.float64) - (x0, y0))
        return None


def blend_video(src: Path, dst: Path, kind: str, *, seed: int, geometry: FaceGeometry | None = None, donor: Donor | None = None,
                crf: int = 18, max_frames: int = 125, max_side: int = 960) -> int:
    """Write ``dst``: ``src``'s first frames with the face blended (``kind`` sbi or cross) or
    untouched (none), H.264 at ``crf``; returns the number of frames blended."""
    if kind not in KINDS:
        raise ValueError(f"unknown blend kind {kind!r}")
    if kind == "cross" and donor is None:
        raise ValueError("a cross blend needs a donor face")
    frames, fps = read_frames(src, max_frames, max_side)
    blended = 0
    if kind != "none":
        geometry = geometry or FaceGeometry()
        for i, (frame, face) in enumerate(zip(frames, geometry.faces(frames))):
            if face is None:
                continue
            x0, y0, x1, y1 = _region(frame.shape[:2], face)
            region = frame[y0:y1, x0:x1]
            pts = geometry.points(frame, face, (x0, y0))
            rng = np.random.default_rng(seed)  # the same choices on every frame: a steady artefact
            if kind == "sbi":
                fake, _ = self_blend(region, pts, rng)
            else:
                fake, _ = cross_blend(region, np.asarray(face.landmarks, np.float64) - (x0, y0), pts, donor.image, donor.lm5, rng)
            frames[i] = frame.copy()
            frames[i][y0:y1, x0:x1] = fake
            blended += 1
    write_video(dst, frames, fps, crf=crf, gop=max(1, round(fps * 2)))
    return blended
