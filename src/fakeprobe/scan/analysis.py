"""Media -> sampled frames -> faces -> tracks: everything before classification.

Shared by ``scan`` and ``extract`` so both see exactly the same frames, faces and crops.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..core.config import ScanConfig
from ..core.cpus import beside_decoder, scan_threads, torch_threads
from ..core.errors import InputError, ResourceLimitError
from ..core.files import regular_file
from ..core.results import MediaRecord
from ..faces.crop import crop_face
from ..faces.detection import Face, FaceDetector, between
from ..faces.tracking import link_tracks
from ..media import change, video
from ..media.images import IMAGE_SUFFIXES, load_image
from ..media.prefetch import Prefetch

# on_faces(frames, faces, decoding): ``decoding`` is True while the decoder thread is busy with
# the next frames (work done then competes with it for the cores)
FacesCallback = Callable[[list[video.Frame], list[list[Face]], bool], None]
# on_wait(): called while detection waits for the decoder; does a little work (e.g. classifies a
# few crops) and returns whether there was any to do
WaitCallback = Callable[[], bool]


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

    def analyse(self, path: Path, on_faces: FacesCallback | None = None, *, on_wait: WaitCallback | None = None,
                keep_images: bool = True) -> Analysis:
        """Decode, detect and track faces in one file (no classification).

        ``on_faces(frames, faces, decoding)`` is called for each batch of frames as soon as its
        faces are found, while later frames are still being decoded: work done there overlaps
        decoding (``decoding`` says whether the decoder is busy at that moment).
        ``on_wait()`` is called, again and again while it returns True, whenever detection would
        otherwise wait for the decoder: the core detection leaves free is used then.
        With ``keep_images=False`` the frames' pixels are dropped after that call (``image`` is
        None in the result), which keeps memory low when the caller took what it needed there.
        """
        size = regular_file(path).st_size  # a FIFO, socket or device is refused here, never opened
        try:
            with open(path, "rb"):
                pass
        except PermissionError:
            raise InputError(f"{path}: permission denied", kind="unreadable") from None
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})", kind="unreadable") from None
        if size == 0:
            raise InputError(f"{path}: empty file (0 bytes)", kind="empty")
        with torch_threads(scan_threads(self.config.threads)):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                return self._analyse_image(path, on_faces, keep_images)
            return self._analyse_video(path, on_faces, on_wait, keep_images)

    def _analyse_image(self, path: Path, on_faces: FacesCallback | None, keep_images: bool) -> Analysis:
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
        if on_faces is not None:
            on_faces(frames, faces, False)
        if not keep_images:
            frames[0].image = None
        media = MediaRecord(kind="image", width=w, height=h, frame_count=1, frames_analysed=1)
        tracks = link_tracks([[f.box for f in fs] for fs in faces])
        return Analysis(media, frames, faces, tracks, warnings, {"decode": t1 - t0, "detect": t2 - t1})

    def _analyse_video(self, path: Path, on_faces: FacesCallback | None, on_wait: WaitCallback | None, keep_images: bool) -> Analysis:
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
        detector = self.face_detector
        frames: list[video.Frame] = []
        faces: list[list[Face]] = []
        sampled: set[float] = set()
        undecoded = 0
        analysed_size = (0, 0)  # width, height of the decoded frames
        all_threads = scan_threads(cfg.threads)
        busy_threads = beside_decoder(all_threads)
        wanted = video.even_times(duration, cfg.frames)
        for round_ in range(cfg.max_frame_rounds + 1):
            times = [t for t in video.frame_times(index, wanted) if t not in sampled]
            if not times:
                break
            sampled.update(times)
            got = 0
            before = _NOTHING_SEEN
            # decoding runs ahead in a thread while detection (and the caller's on_faces, e.g.
            # classification) works on the frames already decoded
            t1 = time.perf_counter()
            decoded = video.iter_frames(path, index, times, max_side=cfg.analyse_max_side, max_pixels=cfg.max_pixels, deadline=deadline)
            stream = Prefetch(decoded, depth=2 * detector.chunk) if cfg.overlap else _Eager(decoded)
            decode_s += time.perf_counter() - t1  # _Eager decodes here; with Prefetch, "decode" is the time spent waiting for frames
            try:
                while True:
                    if on_wait is not None and cfg.overlap:
                        while stream.ready() < detector.chunk and not stream.idle() and on_wait():
                            pass
                    t1 = time.perf_counter()
                    chunk = list(itertools.islice(stream, detector.chunk))
                    t2 = time.perf_counter()
                    decode_s += t2 - t1
                    if not chunk:
                        break
                    # while the decoder works it keeps one core; when it waits (done, or its queue
                    # is full) detection takes them all
                    decoding = not stream.idle()
                    with torch_threads(busy_threads if decoding else all_threads):
                        chunk_faces, before = _detect_chunk(detector, [f.image for f in chunk], cfg.detect_every, cfg.look_for_new, before)
                    detect_s += time.perf_counter() - t2
                    got += len(chunk)
                    frames += chunk
                    faces += chunk_faces
                    analysed_size = chunk[0].image.shape[1], chunk[0].image.shape[0]
                    if on_faces is not None:
                        on_faces(chunk, chunk_faces, decoding and not stream.idle())
                    if not keep_images:
                        for f in chunk:
                            f.image = None
            except InputError:
                if not frames:
                    raise
                # a later round hit damage: keep what the earlier rounds found
            finally:
                stream.close()
            undecoded += len(times) - got
            if sum(len(f) for f in faces) >= cfg.frames:
                break
            if time.monotonic() > deadline:
                raise ResourceLimitError(f"{path}: per-file time limit of {cfg.time_limit_s:g} s exceeded", kind="timeout")
            # too few faces: sample midway between the frames taken so far, and towards both ends
            done = sorted(sampled)
            wanted = [done[0] / 2] + [(a + b) / 2 for a, b in zip(done, done[1:])] + [(done[-1] + duration) / 2]
        if undecoded:
            warnings.append(f"{undecoded} of {len(sampled)} sampled frames could not be decoded (damaged or truncated file?)")
        rotation = frames[0].rotation if frames else 0
        order = sorted(range(len(frames)), key=lambda i: frames[i].time_s)
        frames = [frames[i] for i in order]
        faces = [faces[i] for i in order]
        if frames and frames[0].scale < 1.0:
            warnings.append(f"frames downscaled from {info.width}x{info.height} to {analysed_size[0]}x{analysed_size[1]} for analysis")
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
        parts = [Analyzer.frame_crops(fr, fs, size, margin, align) for fr, fs in zip(analysis.frames, analysis.faces)]
        return np.concatenate(parts) if parts else np.zeros((0, size, size, 3), np.uint8)

    @staticmethod
    def frame_crops(frame: video.Frame, faces: list[Face], size: int, margin: float, align: bool) -> np.ndarray:
        """The crops (N, size, size, 3) of one frame's faces."""
        if not faces:
            return np.zeros((0, size, size, 3), np.uint8)
        return np.stack([crop_face(frame.image, f.box, f.landmarks, size=size, margin=margin, align=align) for f in faces])


@dataclass
class _Seen:
    """What detection knows from the last frame of the previous batch."""

    boxes: np.ndarray  # (K, 4) its faces
    envelope: change.Envelope | None  # of its change.thumbnail, None if not made


_NOTHING_SEEN = _Seen(np.zeros((0, 4)), None)


def _detect_chunk(detector: FaceDetector, images: list[np.ndarray], every: int, look_for_new: bool,
                  before: _Seen) -> tuple[list[list[Face]], _Seen]:
    """Faces in a batch of consecutive sampled frames. The full search runs on the last frame and on
    every ``every``-th one before it; with ``look_for_new``, also on each frame in between that shows,
    away from the faces known on either side, something neither side shows (``change.something_new``:
    a shot cut, someone stepping in). The other frames are searched only around the faces of the
    fully searched frames on either side (``before``: what the previous batch's last frame showed),
    which finds a face seen in either."""
    n = len(images)
    full = [k for k in range(n) if (n - 1 - k) % max(1, every) == 0]
    faces: list[list[Face]] = [[] for _ in images]
    for k, found in zip(full, detector.detect([images[k] for k in full])):
        faces[k] = found

    def boxes(k: int) -> np.ndarray:
        return before.boxes if k < 0 else np.array([f.box for f in faces[k]]).reshape(-1, 4)

    def sides(k: int) -> tuple[int, int]:  # the fully searched frames before and after frame k (-1: the previous batch)
        return max([j for j in full if j < k], default=-1), min(j for j in full if j > k)

    scales = [detector.scale(img.shape[:2]) for img in images]
    thumbs = [change.thumbnail(img, s) for img, s in zip(images, scales)] if look_for_new and every > 1 else None
    envelopes = {-1: before.envelope}
    if thumbs is not None:
        for k in full:
            envelopes[k] = change.envelope(thumbs[k])
        new = []
        for k in range(n):
            if k in full:
                continue
            a, b = sides(k)
            if change.something_new(thumbs[k], [envelopes[a], envelopes[b]], between(boxes(a), boxes(b)), change.CELL / scales[k]):
                new.append(k)
        for k, found in zip(new, detector.detect([images[k] for k in new])):
            faces[k] = found
        full = sorted(full + new)

    rest = [k for k in range(n) if k not in full]
    near = [between(*(boxes(j) for j in sides(k))) for k in rest]
    for k, found in zip(rest, detector.detect_near([images[k] for k in rest], near)):
        faces[k] = found
    return faces, _Seen(boxes(n - 1), envelopes.get(n - 1))


class _Eager:
    """All frames decoded first, then handed out (``ScanConfig.overlap=False``); errors are
    raised once the frames decoded before them have been handed out, as with Prefetch."""

    def __init__(self, frames):
        self._frames: list = []
        self._error: BaseException | None = None
        try:
            for f in frames:
                self._frames.append(f)
        except Exception as exc:
            self._error = exc
        self._it = iter(self._frames)

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self._it)
        except StopIteration:
            if self._error is not None:
                error, self._error = self._error, None
                raise error from None
            raise

    def idle(self) -> bool:
        return True

    def close(self) -> None:
        self._frames.clear()
