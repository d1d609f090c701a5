"""Scan configuration: plain dataclasses with the defaults a user would pick."""
from __future__ import annotations

from dataclasses import dataclass


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
