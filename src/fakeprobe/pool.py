"""Scan files in worker processes: a hard per-file time limit, crash isolation, ``--workers N``.

Each worker loads the model once and scans the files it is sent. A file that runs past the time
limit, or that crashes its worker (a decoder bug on a hostile file, say), gets an ERROR record;
the worker is replaced and the batch goes on. Results come back in input order.
"""
from __future__ import annotations

import dataclasses
import multiprocessing as mp
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .config import ScanConfig
from .cpus import scan_threads
from .errors import ModelError
from .results import ERROR, ErrorRecord, ModelRecord, ScanResult

READY_TIMEOUT_S = 300.0  # model loading, and a first ONNX export, on a slow machine


def _worker(conn: Connection, weights, config: ScanConfig, task: Callable[[Any, Path], ScanResult] | None) -> None:
    import torch

    from .detector import Detector
    from .errors import FakeprobeError

    torch.set_num_threads(config.threads)
    try:
        detector = Detector(weights, config)
    except FakeprobeError as exc:
        conn.send(("fatal", str(exc)))
        return
    conn.send(("ready", detector.model_record()))
    while True:
        job = conn.recv()
        if job is None:
            return
        index, path = job
        result = task(detector, Path(path)) if task else detector.scan(path)
        conn.send(("result", index, result))


def _context():
    """Workers are forked from a fork server that imported the scanning code once, so they share
    those pages (torch, OpenCV, PyAV, ONNX Runtime: ~300 MiB each) instead of each loading its own
    copy; a fork server never has this process' threads or locks. Spawn elsewhere than Linux (macOS
    frameworks are not safe to use after a fork)."""
    if not sys.platform.startswith("linux") or "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["fakeprobe.detector"])
    return ctx


@dataclass
class _Worker:
    process: mp.Process
    conn: Connection
    job: tuple[int, str] | None = None
    started: float = 0.0


class ScanPool:
    """``workers`` processes scanning files; ``task(detector, path)`` may replace ``scan``
    (it runs in the worker, e.g. to write a report from the crops it holds)."""

    def __init__(self, weights, config: ScanConfig | None = None, workers: int = 1,
                 task: Callable[[Any, Path], ScanResult] | None = None):
        self.weights = weights
        self.config = config or ScanConfig()
        self.workers = max(1, workers)
        self.task = task
        self.ctx = _context()
        self.model: ModelRecord | None = None
        # the hard limit leaves room for the cooperative one inside the worker to answer first
        self.hard_limit_s = self.config.time_limit_s * 1.1 + 5.0

    def _start(self) -> _Worker:
        parent, child = self.ctx.Pipe()
        config = dataclasses.replace(self.config, threads=scan_threads(self.config.threads, workers=self.workers))
        p = self.ctx.Process(target=_worker, args=(child, self.weights, config, self.task), daemon=True)
        p.start()
        child.close()
        if not parent.poll(READY_TIMEOUT_S):
            p.kill()
            raise ModelError("the analysis process did not start in time")
        try:
            msg = parent.recv()
        except EOFError:
            raise ModelError(f"the analysis process failed to start (exit code {p.exitcode})") from None
        if msg[0] == "fatal":
            p.join()
            raise ModelError(msg[1])
        self.model = msg[1]
        return _Worker(p, parent)

    @staticmethod
    def _stop(w: _Worker) -> None:
        try:
            w.conn.send(None)
        except (OSError, ValueError):
            pass
        w.process.join(timeout=5)
        if w.process.is_alive():
            w.process.kill()
            w.process.join()

    def _error(self, path: str, kind: str, message: str) -> ScanResult:
        cfg = self.config
        return ScanResult(path=path, verdict=ERROR, probability=None, threshold=cfg.threshold if cfg.threshold is not None else
                          (self.model.threshold if self.model else None), error=ErrorRecord(kind, message), model=self.model)

    def scan_many(self, paths: Iterable[str | Path]) -> Iterator[ScanResult]:
        jobs = [(i, str(p)) for i, p in enumerate(paths)]
        if not jobs:
            return
        pending = list(reversed(jobs))
        done: dict[int, ScanResult] = {}
        next_out = 0
        workers = [self._start()]
        workers += [self._start() for _ in range(min(self.workers, len(jobs)) - 1)]
        try:
            while next_out < len(jobs):
                for w in workers:
                    if w.job is None and pending:
                        w.job, w.started = pending.pop(), time.monotonic()
                        w.conn.send(w.job)
                busy = [w for w in workers if w.job is not None]
                ready = wait([w.conn for w in busy], timeout=0.5)
                for i, w in enumerate(workers):
                    if w.job is None:
                        continue
                    index, path = w.job
                    if w.conn in ready:
                        try:
                            _, idx, result = w.conn.recv()
                            done[idx] = result
                            w.job = None
                            continue
                        except (EOFError, OSError):
                            code = w.process.exitcode if not w.process.is_alive() else None
                            w.process.join(timeout=5)
                            code = w.process.exitcode if code is None else code
                            why = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                            done[index] = self._error(path, "crash", f"{path}: the analysis process crashed ({why}) on this file")
                    elif time.monotonic() - w.started > self.hard_limit_s:
                        w.process.kill()
                        w.process.join()
                        done[index] = self._error(path, "timeout", f"{path}: per-file time limit of {self.config.time_limit_s:g} s exceeded")
                    else:
                        continue
                    w.conn.close()
                    workers[i] = self._start()  # replace the lost worker
                while next_out in done:
                    yield done.pop(next_out)
                    next_out += 1
        finally:
            for w in workers:
                if w.job is not None:
                    w.process.kill()
                self._stop(w)
