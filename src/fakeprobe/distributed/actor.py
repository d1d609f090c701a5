"""The Ray actor that scans files: one model load per actor, the local scan's limits per file."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..core.config import ScanConfig
from ..core.output import to_json
from ..core.results import ScanResult
from ..scan.pool import ScanPool


class ScanActor:
    """Called by Ray Data with batches of ``{"path": [...]}``; returns ``{"path", "record"}``,
    each record the JSON text the local scan writes.

    The files are scanned by a pool of one worker process, started once (one model load) and kept
    for the actor's life: a file that runs past the time limit, or crashes that process, becomes
    an ERROR record (``timeout`` / ``crash``) exactly as in a local scan, the process is replaced,
    and the actor itself never dies of a file."""

    def __init__(self, weights: list[str] | None, config: ScanConfig, cwd: str | None = None,
                 task: Callable[[Any, Path], ScanResult] | None = None):
        if cwd and os.path.isdir(cwd):  # relative inputs mean what they meant to the caller
            os.chdir(cwd)
        self._running = ScanPool(weights, config, workers=1, task=task).open()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        records = [json.dumps(to_json(self.scan(str(p)))) for p in batch["path"]]
        return {"path": batch["path"], "record": np.array(records, dtype=object)}

    def scan(self, path: str) -> ScanResult:
        self._running.submit(path, path)
        while True:
            for _, result in self._running.collect(timeout=1.0):
                return result

    def __del__(self) -> None:
        running = getattr(self, "_running", None)
        if running is not None:
            running.close()
