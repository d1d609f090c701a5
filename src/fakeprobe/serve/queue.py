"""The bounded job queue and the thread that feeds it to the scan worker pool.

One thread owns the ``ScanPool`` (started once: each worker loads the model once): it hands
queued jobs to idle workers, stores each result as it comes in and wakes the requests waiting
for it (``?wait=``). Admission (dedupe by content, the queue bound) happens under one lock so that
concurrent uploads of the same content make one job.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import threading
import time
from collections import deque

from ..core.results import ERROR, ErrorRecord, ScanResult
from ..scan.pool import ScanPool
from .errors import ApiError
from .metrics import Metrics
from .settings import Settings
from .store import JobRow, JobStore
from .tasks import JobTask, fallback_report, rename, write_atomic
from .uploads import Received

log = logging.getLogger("fakeprobe.serve")
COLLECT_S = 0.1  # how long the runner waits for results before looking at the queue again


class ScanQueue:
    def __init__(self, settings: Settings, store: JobStore, metrics: Metrics):
        self.settings, self.store, self.metrics = settings, store, metrics
        self._pending: deque[str] = deque(j.id for j in store.recover())
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started: dict[str, float] = {}  # running job id -> monotonic start
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self.pids: dict[str, int] = {}  # running job id -> worker process id
        self.state = "starting"  # starting | ready | failed
        self.message: str | None = None
        self.model: dict | None = None
        self._model_record = None  # the pool's ModelRecord, for records the server makes itself
        self._mean_s = 5.0  # recent scan time, for Retry-After
        metrics.queue_length.set_function(lambda: len(self._pending))

    # -- the request side --------------------------------------------------------------------------
    @property
    def queued(self) -> int:
        return len(self._pending)

    @property
    def running(self) -> int:
        return len(self._started)

    def retry_after(self) -> int:
        """Seconds until a place in the queue is likely to be free."""
        per_job = self._mean_s / self.settings.workers
        return max(1, min(600, math.ceil(per_job * max(1, len(self._pending) - self.settings.max_queue + 1))))

    def _full(self) -> ApiError:
        return ApiError(503, "queue_full", f"the queue is full ({self.settings.max_queue} jobs waiting); try again later",
                        {"Retry-After": str(self.retry_after())})

    def submit(self, received: Received, rescan: bool = False) -> tuple[JobRow, bool]:
        """The job for this content: the existing one (rescanned when asked and it is finished),
        or a new queued one. Returns (job, created). Consumes ``received``'s temporary file."""
        try:
            with self._lock:
                job = self.store.by_sha256(received.sha256)
                if job is not None:
                    if rescan and job.final:
                        if len(self._pending) >= self.settings.max_queue:
                            raise self._full()
                        self.store.requeue(job.id)
                        self._pending.append(job.id)
                        self._wake.set()
                        return self.store.get(job.id), False  # type: ignore[return-value]
                    return job, False
                if len(self._pending) >= self.settings.max_queue:
                    raise self._full()
                stored = received.path
                if received.temporary:
                    stored = self.store.upload_path(received.sha256, received.media.ext)
                    os.replace(received.path, stored)
                job = self.store.create(sha256=received.sha256, name=received.name, source="path" if not received.temporary else "upload",
                                        stored=stored, size=received.size)
                self._pending.append(job.id)
            self._wake.set()
            return job, True
        finally:
            if received.temporary:
                received.path.unlink(missing_ok=True)

    def delete(self, job: JobRow) -> None:
        with self._lock:
            try:
                self._pending.remove(job.id)
            except ValueError:
                pass  # running (its result is dropped when it comes) or finished
            self.store.delete(job)
        self._notify(job.id)

    async def wait(self, job_id: str, timeout: float) -> JobRow | None:
        """The job once it is finished, or as it is after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        with self._lock:
            self._waiters.setdefault(job_id, []).append((loop, event))
        try:
            job = self.store.get(job_id)
            if job is None or job.final:
                return job
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except asyncio.TimeoutError:
                pass
            return self.store.get(job_id)
        finally:
            with self._lock:
                waiters = self._waiters.get(job_id, [])
                if (loop, event) in waiters:
                    waiters.remove((loop, event))
                if not waiters:
                    self._waiters.pop(job_id, None)

    def _notify(self, job_id: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get(job_id, []))
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that request's event loop is gone
                pass

    # -- the runner thread ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fakeprobe-scan-queue", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        s = self.settings
        pool = ScanPool(list(s.weights) if s.weights else None, s.scan, workers=s.workers, task=JobTask())
        try:
            running = pool.open()
        except Exception as exc:  # noqa: BLE001  (no model, bad weights: /readyz says why)
            self.state, self.message = "failed", f"the scan workers did not start: {exc}"
            log.error(self.message)
            return
        self._model_record = pool.model
        self.model = dataclasses.asdict(pool.model) if pool.model else None
        self.state = "ready"
        self.metrics.ready.set(1)
        log.info("scan workers ready (%d)", s.workers)
        with running:
            while not self._stop.is_set():
                self._dispatch(running)
                if running.idle() == running.alive:  # nothing running: sleep until a job comes
                    self._wake.wait(0.5)
                    self._wake.clear()
                    continue
                for job_id, result in running.collect(timeout=COLLECT_S):
                    self._finish(job_id, result)
                self.pids = running.running()
                if not running.alive:
                    self.state, self.message = "failed", f"no scan worker left: {running.error}"
                    self.metrics.ready.set(0)
                    log.error(self.message)
                    return

    def _dispatch(self, running) -> None:
        while running.idle():
            with self._lock:
                if not self._pending:
                    return
                job_id = self._pending.popleft()
                job = self.store.get(job_id)
                if job is None:
                    continue
                self.store.start(job_id)
            self._started[job_id] = time.monotonic()
            try:
                running.submit(job_id, self.store.input_path(job))
            except Exception as exc:  # noqa: BLE001
                log.exception("job %s could not be handed to a worker", job_id)
                self._started.pop(job_id, None)
                self._fail(job, f"the server could not start this scan ({type(exc).__name__})")
            self.pids = running.running()

    def _finish(self, job_id: str, result: ScanResult) -> None:
        seconds = time.monotonic() - self._started.pop(job_id, time.monotonic())
        job = self.store.get(job_id)
        if job is None:  # deleted while it ran
            self.store.remove_files(job_id)
            return
        try:
            rename(result, str(self.store.input_path(job)), job.name)
            report = self.store.report_path(job_id)
            if not report.exists():  # the worker crashed or ran out of time before writing one
                write_atomic(report, fallback_report(result))
            self.store.finish(job_id, "done", result.to_dict())
        except Exception:  # noqa: BLE001
            log.exception("job %s: storing its result failed", job_id)
            self._fail(job, "the server could not store this scan's result")
            return
        self._mean_s = 0.8 * self._mean_s + 0.2 * seconds
        self.metrics.scan_seconds.observe(seconds)
        self.metrics.results.labels(verdict=result.verdict).inc()
        log.info("job %s done: %s %s (%.2f s)", job_id, job.name, result.verdict, seconds)
        self._notify(job_id)

    def _fail(self, job: JobRow, message: str) -> None:
        """The server, not the file, failed: status ``error`` with an ERROR record (kind internal)."""
        threshold = self.settings.scan.threshold
        if threshold is None and self.model:
            threshold = self.model.get("threshold")
        result = ScanResult(path=job.name, verdict=ERROR, probability=None, threshold=threshold,
                            error=ErrorRecord("internal", f"{job.name}: {message}"), model=self._model_record)
        try:
            write_atomic(self.store.report_path(job.id), fallback_report(result))
            self.store.finish(job.id, "error", result.to_dict())
        except Exception:  # noqa: BLE001
            log.exception("job %s: could not record its failure", job.id)
        self.metrics.results.labels(verdict=ERROR).inc()
        self._notify(job.id)

