"""What a scan worker does for a job, in its own process (where the face crops are): scan the
file, name the record after the file as the client knows it, write the evidence report."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.results import ScanResult


def job_name(job_dir: Path, default: str) -> str:
    try:
        return json.loads((job_dir / "job.json").read_text(encoding="utf-8"))["name"]
    except (OSError, ValueError, KeyError):
        return default


def rename(result: ScanResult, scanned: str, name: str) -> ScanResult:
    """The record names the file as the client gave it, never by its place in the data folder."""
    result.path = name
    if result.error is not None:
        result.error.message = result.error.message.replace(scanned, name)
    result.warnings = [w.replace(scanned, name) for w in result.warnings]
    return result


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class JobTask:
    """``ScanPool`` task: ``task(detector, jobs/<id>/input.<ext>) -> ScanResult``, writing
    ``jobs/<id>/report.html``. Picklable (it is sent to the worker processes)."""

    top_k: int = 3
    _reporter: Any = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self):
        return {**self.__dict__, "_reporter": None}

    def __call__(self, detector, path: Path) -> ScanResult:
        from ..report.reporter import Reporter

        result, evidence = detector.scan_with_evidence(path)
        rename(result, str(path), job_name(path.parent, path.name))
        try:
            if self._reporter is None or self._reporter.detector is not detector:
                self._reporter = Reporter(detector, top_k=self.top_k)
            page = self._reporter.html(result, evidence, self._reporter.heatmaps(result, evidence))
            write_atomic(path.parent / "report.html", page)  # fails if the job was deleted meanwhile: fine
        except Exception as exc:  # noqa: BLE001  (a report problem must not lose the scan)
            result.warnings.append(f"evidence report not written ({type(exc).__name__}: {exc})")
        return result


def fallback_report(result: ScanResult) -> str:
    """The report of a job whose worker wrote none (it crashed or ran out of time)."""
    from ..report.reporter import Reporter

    return Reporter(None).html(result)
