"""Batch scans on a Ray cluster (``fakeprobe scan --ray``; ``pip install "fakeprobe[ray]"``).

>>> for record in ray_scan(["clips/"], ScanConfig(), "auto"):  # doctest: +SKIP
...     print(record["path"], record["verdict"])

Ray is imported only when a scan starts, so this package imports without it.
"""
from __future__ import annotations

from .ray_scan import RayError, ray_scan
from .sinks import JsonlSink, ParquetSink, drop_truncated_tail, path_key, previous_verdicts

__all__ = ["JsonlSink", "ParquetSink", "RayError", "drop_truncated_tail", "path_key", "previous_verdicts", "ray_scan"]
