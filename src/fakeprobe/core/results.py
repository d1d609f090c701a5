"""Result records shared by the CLI, the JSON output and the Python API."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

FAKE, REAL, NO_FACE, ERROR = "FAKE", "REAL", "NO_FACE", "ERROR"


@dataclass
class FaceRecord:
    time_s: float
    frame_index: int  # frame number in the video (0 for images)
    box: list[float]  # x1, y1, x2, y2 in upright original-resolution pixels
    detection_score: float
    landmarks: list[list[float]]
    track: int
    logit: float  # calibrated
    probability: float


@dataclass
class PersonRecord:
    track: int
    probability: float
    logit: float  # mean calibrated logit of the track's faces
    verdict: str
    faces: int
    first_time_s: float
    last_time_s: float
    decides: bool = False  # this person's score is the file's score


@dataclass
class FrameRecord:
    time_s: float
    frame_index: int
    faces: int
    max_probability: float | None


@dataclass
class MediaRecord:
    kind: str  # video | image
    width: int = 0
    height: int = 0
    duration_s: float = 0.0
    fps: float = 0.0
    frame_count: int = 0
    codec: str = ""
    rotation: int = 0
    frames_analysed: int = 0


@dataclass
class ModelRecord:
    name: str
    arch: str
    version: str
    sha256: str
    threshold: float


@dataclass
class ErrorRecord:
    kind: str
    message: str


@dataclass
class ScanResult:
    path: str
    verdict: str
    probability: float | None
    threshold: float | None
    faces: int = 0
    persons: list[PersonRecord] = field(default_factory=list)
    frames: list[FrameRecord] = field(default_factory=list)
    detections: list[FaceRecord] = field(default_factory=list)
    media: MediaRecord | None = None
    model: ModelRecord | None = None
    warnings: list[str] = field(default_factory=list)
    error: ErrorRecord | None = None
    elapsed_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        return self.verdict == FAKE

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["schema"] = "fakeprobe.scan/1"
        d["n_persons"] = len(self.persons)
        return d
