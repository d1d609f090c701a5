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

from ..core.config import ScanConfig
from ..core.cpus import scan_threads
from ..core.errors import ModelError
from ..core.results import ERROR, ErrorRecord, ModelRecord, ScanResult

READY_TIMEOUT_S = 300.0  # model loading, and a first ONNX export, on a slow machine


def _worker(conn: Connection, weights, config: ScanConfig, task: Callable[[Any, Path], ScanResult] | None) -> None:
    import torch

    from ..core.errors import FakeprobeError
    from .detector import Detector

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
    ctx.set_forkserver_preload(["fakeprobe.scan.detector"])
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

    def open(self, workers: int | None = None) -> "RunningPool":
        """Start ``workers`` processes (default: the pool's) and keep them for many files:
        ``with pool.open() as running: running.submit(key, path); running.collect(0.5)``."""
        return RunningPool(self, self.workers if workers is None else max(1, workers))

    def scan_many(self, paths: Iterable[str | Path]) -> Iterator[ScanResult]:
        jobs = [str(p) for p in paths]
        if not jobs:
            return
        done: dict[int, ScanResult] = {}
        next_out = submitted = 0
        with self.open(min(self.workers, len(jobs))) as running:
            while next_out < len(jobs):
                while submitted < len(jobs) and running.idle():
                    running.submit(submitted, jobs[submitted])
                    submitted += 1
                for index, result in running.collect(timeout=0.5):
                    done[index] = result
                if not running.alive and running.error is not None:
                    raise running.error
                while next_out in done:
                    yield done.pop(next_out)
                    next_out += 1


class RunningPool:
    """A pool's started workers, kept for as long as the caller wants (a server): ``submit``
    gives an idle worker one file, ``collect`` returns the results that are in, in the order they
    finish, and enforces the hard time limit and crash isolation (a lost worker is replaced).
    Not thread-safe: one thread drives it."""

    def __init__(self, pool: ScanPool, workers: int):
        self.pool = pool
        self.error: ModelError | None = None  # why a lost worker could not be replaced
        self._workers: list[_Worker] = []
        try:
            for _ in range(workers):
                self._workers.append(pool._start())
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "RunningPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def idle(self) -> int:
        return sum(w.job is None for w in self._workers)

    @property
    def alive(self) -> int:
        """Workers left (one whose replacement failed to start is gone: see ``error``)."""
        return len(self._workers)

    def running(self) -> dict[Any, int]:
        """Key of each file being scanned -> the process id of the worker scanning it."""
        return {w.job[0]: w.process.pid for w in self._workers if w.job is not None}

    def submit(self, key: Any, path: str | Path) -> None:
        """Hand ``path`` to an idle worker; ``key`` (picklable) comes back with its result."""
        w = next((w for w in self._workers if w.job is None), None)
        if w is None:
            raise RuntimeError("no idle worker")
        w.job, w.started = (key, str(path)), time.monotonic()
        w.conn.send(w.job)

    def collect(self, timeout: float = 0.5) -> list[tuple[Any, ScanResult]]:
        """Wait up to ``timeout`` seconds for results; returns ``(key, result)`` pairs."""
        out: list[tuple[Any, ScanResult]] = []
        lost: list[int] = []
        busy = [w for w in self._workers if w.job is not None]
        if not busy:
            time.sleep(timeout)
            return out
        ready = wait([w.conn for w in busy], timeout=timeout)
        pool = self.pool
        for i, w in enumerate(self._workers):
            if w.job is None:
                continue
            key, path = w.job
            if w.conn in ready:
                try:
                    _, idx, result = w.conn.recv()
                    out.append((idx, result))
                    w.job = None
                    continue
                except (EOFError, OSError):
                    code = w.process.exitcode if not w.process.is_alive() else None
                    w.process.join(timeout=5)
                    code = w.process.exitcode if code is None else code
                    why = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                    out.append((key, pool._error(path, "crash", f"{path}: the analysis process crashed ({why}) on this file")))
            elif time.monotonic() - w.started > pool.hard_limit_s:
                w.process.kill()
                w.process.join()
                out.append((key, pool._error(path, "timeout", f"{path}: per-file time limit of {pool.config.time_limit_s:g} s exceeded")))
            else:
                continue
            w.conn.close()
            w.job = None
            lost.append(i)
        for i in reversed(lost):  # replace the lost workers
            try:
                self._workers[i] = pool._start()
            except ModelError as exc:
                del self._workers[i]
                self.error = exc
        return out

    def close(self) -> None:
        for w in self._workers:
            if w.job is not None:
                w.process.kill()
            ScanPool._stop(w)
        self._workers = []
