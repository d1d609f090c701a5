"""fakeprobe: flag face-manipulated video with calibrated, per-person fake probabilities."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Detector", "ScanConfig", "ScanResult", "__version__"]


def __getattr__(name: str):
    # imported on first use, so that training code runs where no video stack is installed
    if name == "Detector":
        from .scan.detector import Detector

        return Detector
    if name == "ScanConfig":
        from .core.config import ScanConfig

        return ScanConfig
    if name == "ScanResult":
        from .core.results import ScanResult

        return ScanResult
    raise AttributeError(f"module 'fakeprobe' has no attribute {name!r}")
