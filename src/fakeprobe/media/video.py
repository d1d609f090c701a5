"""Video decoding with PyAV: probe a file and return exact frames at chosen timestamps.

Frames are chosen by presentation time (the frame shown at time t), decoded sequentially with
threads, and the decoder jumps forward with a seek only when the next wanted frame lies behind a
keyframe that is ahead of the current position, so no frame is decoded twice and no wanted frame
snaps to a keyframe. Frames that no other frame refers to (most B-frames) are not decoded at all
unless they are wanted: the decoder is told per packet (FFmpeg's ``skip_frame``), which leaves every
other frame bit-identical and saved ~40% of decoding on 720p H.264 (BENCHMARKS.md).
"""
from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from ..core.cpus import usable_cores
from ..core.errors import InputError, ResourceLimitError
from ..core.files import regular_file


@dataclass(frozen=True)
class MediaInfo:
    """What the container says about the video stream (stored sizes; the rotation a frame carries is
    applied when it is decoded, see :func:`decode_frames`)."""

    width: int
    height: int
    duration_s: float
    fps: float
    frame_count: int  # from the demuxed packets, exact for ordinary files
    codec: str
    container: str
    pixel_format: str = ""
    has_audio: bool = False


@dataclass
class Frame:
    """One decoded frame, upright, RGB uint8, possibly downscaled (``scale`` = analysed/original)."""

    time_s: float
    index: int  # frame number in presentation order
    image: np.ndarray | None  # None once dropped (Analyzer.analyse(keep_images=False))
    scale: float = 1.0
    rotation: int = 0  # clockwise degrees that were applied to make the stored picture upright


@dataclass
class _PacketIndex:
    times: list[float] = field(default_factory=list)  # sorted presentation times of all frames
    keyframes: list[float] = field(default_factory=list)  # sorted presentation times of keyframes


def _open(path: Path) -> av.container.InputContainer:
    regular_file(path)  # FFmpeg would block on a FIFO, or read a device without end
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise InputError(f"{path}: not a recognised video or image format, or the file is damaged or truncated") from None
    except av.error.FFmpegError as exc:
        raise InputError(f"{path}: cannot open ({_short(exc)})") from None


def _short(exc: Exception) -> str:
    reason = getattr(exc, "strerror", None)  # FFmpegError: "Invalid data found when processing input"
    if reason:
        return str(reason)
    text = str(exc).split(":")
    return text[-1].strip() or type(exc).__name__


def _video_stream(container, path: Path):
    streams = container.streams.video
    if not streams:
        if container.streams.audio:
            raise InputError(f"{path}: audio only, no video stream", kind="no_video")
        raise InputError(f"{path}: no video stream", kind="no_video")
    return streams[0]


def _index_packets(container, stream, max_duration_s: float) -> _PacketIndex:
    """Demux (without decoding) to learn every frame time and where keyframes are."""
    base = float(stream.time_base) if stream.time_base else 0.0
    start = stream.start_time * base if stream.start_time is not None else 0.0
    index = _PacketIndex()
    for packet in container.demux(stream):
        if packet.size == 0 or packet.pts is None:
            continue
        t = packet.pts * base - start
        if t > max_duration_s:
            continue
        index.times.append(t)
        if packet.is_keyframe:
            index.keyframes.append(t)
    index.times.sort()
    index.keyframes.sort()
    return index


def probe(path: Path, max_duration_s: float = float("inf")) -> tuple[MediaInfo, _PacketIndex]:
    container = _open(path)
    try:
        stream = _video_stream(container, path)
        index = _index_packets(container, stream, max_duration_s)
        if not index.times:
            raise InputError(f"{path}: video stream has no frames", kind="no_frames")
        cc = stream.codec_context
        if index.times and len(index.times) > 1:
            duration = index.times[-1] - index.times[0]
            span = duration / (len(index.times) - 1)
            duration += span
        else:
            duration = 0.0
        fps = float(stream.average_rate) if stream.average_rate else (len(index.times) / duration if duration else 0.0)
        w, h = cc.width, cc.height
        return (
            MediaInfo(
                width=w,
                height=h,
                duration_s=duration,
                fps=fps,
                frame_count=len(index.times),
                codec=cc.name or "",
                container=container.format.name,
                pixel_format=cc.format.name if cc.format else "",
                has_audio=bool(container.streams.audio),
            ),
            index,
        )
    finally:
        container.close()


def even_times(duration_s: float, n: int) -> list[float]:
    """``n`` timestamps at the centres of ``n`` equal slices of the clip."""
    if n <= 0:
        return []
    step = duration_s / n
    return [step * (i + 0.5) for i in range(n)]


def frame_times(index: _PacketIndex, wanted: list[float]) -> list[float]:
    """Map wanted timestamps to the presentation times of the frames shown then (deduplicated)."""
    chosen = set()
    for t in wanted:
        i = bisect.bisect_right(index.times, t + 1e-6) - 1
        chosen.add(index.times[max(i, 0)])
    return sorted(chosen)


def _upright(image: np.ndarray, rotation: int) -> np.ndarray:
    if rotation == 90:
        return np.ascontiguousarray(np.rot90(image, k=-1))
    if rotation == 180:
        return np.ascontiguousarray(image[::-1, ::-1])
    if rotation == 270:
        return np.ascontiguousarray(np.rot90(image, k=1))
    return image


def _to_rgb(frame, max_side: int, max_pixels: int, path: Path) -> tuple[np.ndarray, float]:
    w, h = frame.width, frame.height
    if w * h > max_pixels:
        raise ResourceLimitError(f"{path}: frame of {w}x{h} pixels exceeds the cap of {max_pixels} pixels")
    scale = min(1.0, max_side / max(w, h))
    if scale < 1.0:
        tw, th = max(2, int(round(w * scale))), max(2, int(round(h * scale)))
        image = frame.reformat(width=tw, height=th, format="rgb24", interpolation="AREA").to_ndarray()
    else:
        image = frame.to_ndarray(format="rgb24")
    return image, scale


def _frame_rotation(frame) -> int:
    try:
        return int(round(-float(frame.rotation))) % 360
    except Exception:
        return 0


def decode_frames(path: Path, index: _PacketIndex, times: list[float], **options) -> tuple[list[Frame], int]:
    """Decode the frames shown at ``times`` (values from :func:`frame_times`); ``options`` are those
    of :func:`iter_frames`.

    Returns the frames (upright RGB, in time order) and the rotation that was applied.
    """
    frames = sorted(iter_frames(path, index, times, **options), key=lambda f: f.time_s)
    return frames, (frames[0].rotation if frames else 0)


def iter_frames(
    path: Path,
    index: _PacketIndex,
    times: list[float],
    *,
    max_side: int = 1920,
    max_pixels: int = 8192 * 8192,
    deadline: float | None = None,
    skip_unwanted: bool = True,
) -> Iterator[Frame]:
    """Decode the frames shown at ``times`` (values from :func:`frame_times`), each as soon as it is
    decoded, upright RGB, downscaled to at most ``max_side``.

    ``deadline`` (a ``time.monotonic()`` value) bounds the work: past it, ResourceLimitError.
    ``skip_unwanted=False`` decodes every frame on the way (slower; the same frames come out).
    Frames come in time order, except those a seek overshot (containers with imprecise seeking,
    e.g. MPEG-PS): they are decoded again without seeking and come last. Raises InputError if not
    a single frame decodes.
    """
    wanted = sorted(set(times))
    if not wanted:
        return
    missed: list[float] = []
    count = 0
    for frame in _decode(path, index, wanted, True, skip_unwanted, max_side, max_pixels, deadline, missed):
        count += 1
        yield frame
    if missed:
        try:
            for frame in _decode(path, index, missed, False, False, max_side, max_pixels, deadline, []):
                count += 1
                yield frame
        except InputError:
            if not count:
                raise
    if not count:
        raise InputError(f"{path}: no decodable frames", kind="no_frames")


# MPEG program streams (.mpg, .vob) and raw MPEG video: after a seek the parser can stamp the first
# frames with a neighbour's timestamp, so the wrong frame would be returned; decode them front to back.
def _decode_threads() -> int:
    """One decoder thread per usable core: FFmpeg's own choice (cores + 1) took 14% longer on
    2 cores (BENCHMARKS.md)."""
    return min(usable_cores(), 16)
_UNRELIABLE_SEEK_FORMATS = {"mpeg", "mpegvideo"}


def _decoded(container, stream, wanted: list[float], skip: bool, start: float, base: float) -> Iterator:
    """Decode from the container's position; with ``skip``, packets not shown at a wanted time are
    sent with ``skip_frame=NONREF`` so the decoder drops them if no other frame refers to them.

    FFmpeg's frame threads copy ``skip_frame`` from the context when each packet is submitted, so
    the setting applies per packet.
    """
    ctx = stream.codec_context
    eps = 1e-6
    for packet in container.demux(stream):
        if skip:
            wanted_here = True
            if packet.pts is not None and packet.size:
                t = packet.pts * base - start
                i = bisect.bisect_left(wanted, t - eps)
                wanted_here = i < len(wanted) and abs(wanted[i] - t) <= eps
            ctx.skip_frame = "DEFAULT" if wanted_here else "NONREF"
        yield from packet.decode()


def _decode(path: Path, index: _PacketIndex, wanted: list[float], seek: bool, skip: bool, max_side: int, max_pixels: int,
            deadline: float | None, missed: list[float]) -> Iterator[Frame]:
    """Yield the wanted frames; append the times it could not produce to ``missed``."""
    eps = 1e-6
    number = {t: i for i, t in enumerate(index.times)}
    produced = 0
    container = _open(path)
    try:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = _decode_threads()
        if container.format.name in _UNRELIABLE_SEEK_FORMATS:
            seek = skip = False  # their packet times cannot be trusted either
        base = float(stream.time_base)
        start = stream.start_time * base if stream.start_time is not None else 0.0
        first_key = index.keyframes[0] if index.keyframes else 0.0
        frames = _decoded(container, stream, wanted, skip, start, base)
        pos = float("-inf")  # time of the last decoded frame
        w = 0
        while w < len(wanted):
            just_sought = False
            if seek:
                k = bisect.bisect_right(index.keyframes, wanted[w] + eps) - 1
                key_t = index.keyframes[k] if k >= 0 else first_key
                if key_t > pos + eps and key_t > first_key + eps:
                    container.seek(int(round((key_t + start) / base)), stream=stream, backward=True, any_frame=False)
                    frames = _decoded(container, stream, wanted, skip, start, base)
                    just_sought = True
            progressed = False
            try:
                for frame in frames:
                    if deadline is not None and time.monotonic() > deadline:
                        raise ResourceLimitError(f"{path}: per-file time limit exceeded while decoding", kind="timeout")
                    if frame.pts is None:
                        continue
                    t = frame.pts * base - start
                    if just_sought and t > wanted[w] + eps:
                        missed.append(wanted[w])  # the seek landed past it
                        w += 1
                        progressed = True
                        break
                    just_sought = False
                    pos = t
                    while w < len(wanted) and t > wanted[w] + eps:
                        missed.append(wanted[w])  # never produced by the decoder
                        w += 1
                    if w < len(wanted) and abs(t - wanted[w]) <= eps:
                        rotation = _frame_rotation(frame)
                        image, scale = _to_rgb(frame, max_side, max_pixels, path)
                        image = _upright(image, rotation)
                        while w < len(wanted) and abs(t - wanted[w]) <= eps:
                            produced += 1
                            yield Frame(time_s=t, index=number.get(wanted[w], -1), image=image, scale=scale, rotation=rotation)
                            w += 1
                        progressed = True
                        break
                    if w >= len(wanted):
                        break
            except av.error.FFmpegError as exc:
                if not produced:
                    raise InputError(f"{path}: cannot decode video ({_short(exc)})", kind="decode") from None
                missed.extend(wanted[w:])  # keep what decoded; the rest of the file is broken
                break
            if not progressed:
                missed.extend(wanted[w:])  # end of stream
                break
    finally:
        container.close()
