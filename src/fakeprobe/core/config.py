"""Scan configuration: plain dataclasses with the defaults a user would pick."""
from __future__ import annotations

from dataclasses import dataclass


class ConfigError(ValueError):
    """A scan setting out of its range; ``field`` names the ScanConfig field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field} {message}")
        self.field, self.message = field, message


@dataclass(frozen=True)
class ScanConfig:
    frames: int = 32  # frames sampled evenly across the video
    max_frame_rounds: int = 3  # extra sampling rounds when too few faces are found
    detect_max_side: int = 640  # frames are downscaled to this for face detection
    analyse_max_side: int = 1920  # frames larger than this are downscaled before cropping
    max_pixels: int = 8192 * 8192  # refuse frames/images with more pixels than this
    max_duration_s: float = 3 * 3600.0  # only this much of a video is analysed
    min_face_score: float = 0.92  # MTCNN confidence needed to keep a face
    min_face_size: int = 20  # pixels, in the detection frame
    detect_every: int = 4  # full face search on every n-th sampled frame; in between only near the faces found (1: all)
    look_for_new: bool = True  # also the full search on a frame in between that shows something new away from those faces
    min_track_faces: int = 3  # tracks shorter than this only decide when no longer track exists
    batch_size: int = 32
    threshold: float | None = None  # None: the model's calibrated threshold
    margin: float | None = None  # None: the model's crop margin
    device: str = "cpu"
    backend: str = "auto"  # auto | onnx | torch
    time_limit_s: float = 300.0  # per input
    overlap: bool = True  # decode in a background thread while detection and classification run
    threads: int = 0  # CPU threads a scan keeps busy, decoder included; 0: all usable cores

    def __post_init__(self) -> None:
        at_least_one = ("frames", "detect_every", "batch_size", "max_pixels", "min_face_size", "detect_max_side", "analyse_max_side")
        for name in at_least_one:
            if getattr(self, name) < 1:
                raise ConfigError(name, "must be at least 1")
        if self.threads < 0:
            raise ConfigError("threads", "must be 0 (all cores) or more")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ConfigError("threshold", "must be between 0 and 1")
        if self.margin is not None and not self.margin > 0:
            raise ConfigError("margin", "must be positive")
        for name in ("time_limit_s", "max_duration_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(name, "must be positive")
        if self.backend not in ("auto", "onnx", "torch"):
            raise ConfigError("backend", "must be auto, onnx or torch")
