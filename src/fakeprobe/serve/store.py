"""Jobs and results in SQLite under ``--data-dir``, and the files that belong to them.

Layout of the data folder::

    jobs.sqlite3            one row per job (unique per content sha256)
    uploads/<sha256><ext>   uploaded files, by content; <ext> from the content (video/image type)
    jobs/<id>/input<ext>    link to the file the job scans (its upload, or the --allow-root file)
    jobs/<id>/job.json      what the worker needs to know: the name to report the file under
    jobs/<id>/report.html   the evidence report
    tmp/                    uploads being received (emptied at start)

A row is written only after its files are in place and removed before they are, so a server
killed at any moment leaves at worst orphan files, which ``recover`` deletes.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    input TEXT NOT NULL,
    size INTEGER NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq);
"""
FINAL = ("done", "error")


@dataclass
class JobRow:
    seq: int
    id: str
    sha256: str
    name: str
    source: str  # upload | path
    input: str  # the link to the file scanned, relative to the data folder
    size: int
    status: str
    result: dict[str, Any] | None
    created_at: float
    started_at: float | None
    finished_at: float | None

    @property
    def final(self) -> bool:
        return self.status in FINAL


class JobStore:
    """Thread-safe: the request handlers and the scan runner share one connection under a lock."""

    def __init__(self, data_dir: Path):
        self.root = Path(data_dir).absolute()
        self.uploads, self.jobs_dir, self.tmp = self.root / "uploads", self.root / "jobs", self.root / "tmp"
        for d in (self.root, self.uploads, self.jobs_dir, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.root / "jobs.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a finished job survives a power cut, not just a kill
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- rows ------------------------------------------------------------------------------------
    @staticmethod
    def _row(r: sqlite3.Row | None) -> JobRow | None:
        if r is None:
            return None
        d = dict(r)
        d["result"] = json.loads(d["result"]) if d["result"] else None
        return JobRow(**d)

    def get(self, job_id: str) -> JobRow | None:
        with self._lock:
            return self._row(self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def by_sha256(self, sha256: str) -> JobRow | None:
        with self._lock:
            return self._row(self._db.execute("SELECT * FROM jobs WHERE sha256 = ?", (sha256,)).fetchone())

    def page(self, limit: int, before_seq: int | None = None, status: str | None = None) -> tuple[list[JobRow], int]:
        """Up to ``limit`` jobs, most recent first, older than ``before_seq``; and the total count."""
        where, args = [], []
        if status:
            where.append("status = ?")
            args.append(status)
        total_sql = "SELECT COUNT(*) FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
        if before_seq is not None:
            where.append("seq < ?")
            args.append(before_seq)
        sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq DESC LIMIT ?"
        with self._lock:
            total = self._db.execute(total_sql, args[:1] if status else []).fetchone()[0]
            rows = [self._row(r) for r in self._db.execute(sql, [*args, limit]).fetchall()]
        return rows, total

    def counts(self) -> dict[str, int]:
        with self._lock:
            got = dict(self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
        return {s: got.get(s, 0) for s in ("queued", "running", "done", "error")}

    def unfinished(self) -> list[JobRow]:
        with self._lock:
            return [self._row(r) for r in self._db.execute("SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY seq")]

    # -- changes ---------------------------------------------------------------------------------
    def create(self, *, sha256: str, name: str, source: str, stored: Path, size: int) -> JobRow:
        """A new queued job scanning ``stored`` (already in place)."""
        job_id = uuid.uuid4().hex
        job_dir = self.jobs_dir / job_id
        job_dir.mkdir()
        link = job_dir / ("input" + stored.suffix.lower())
        target = os.path.relpath(stored, job_dir) if stored.is_relative_to(self.root) else str(stored)
        os.symlink(target, link)
        _write_atomic(job_dir / "job.json", json.dumps({"name": name}).encode())
        with self._lock:
            self._db.execute("INSERT INTO jobs (id, sha256, name, source, input, size, status, created_at) VALUES (?,?,?,?,?,?,?,?)",
                             (job_id, sha256, name, source, str(link.relative_to(self.root)), size, "queued", time.time()))
        return self.get(job_id)  # type: ignore[return-value]

    def requeue(self, job_id: str) -> None:
        """Scan a finished job again: its old result and report go."""
        with self._lock:
            self._db.execute("UPDATE jobs SET status='queued', result=NULL, started_at=NULL, finished_at=NULL WHERE id=?", (job_id,))
        self.report_path(job_id).unlink(missing_ok=True)

    def start(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET status='running', started_at=? WHERE id=?", (time.time(), job_id))

    def finish(self, job_id: str, status: str, result: dict[str, Any]) -> bool:
        """Store the result; False when the job was deleted meanwhile."""
        with self._lock:
            cur = self._db.execute("UPDATE jobs SET status=?, result=?, finished_at=? WHERE id=?",
                                   (status, json.dumps(result), time.time(), job_id))
            return cur.rowcount == 1

    def delete(self, job: JobRow) -> None:
        """The row first, then the job's folder and its upload (an upload is one content, one job)."""
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id=?", (job.id,))
        self.remove_files(job.id)
        if job.source == "upload":
            for f in self.uploads.glob(job.sha256 + "*"):
                f.unlink(missing_ok=True)

    def remove_files(self, job_id: str) -> None:
        shutil.rmtree(self.jobs_dir / job_id, ignore_errors=True)

    # -- files -----------------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def report_path(self, job_id: str) -> Path:
        return self.jobs_dir / job_id / "report.html"

    def input_path(self, job: JobRow) -> Path:
        return self.root / job.input

    def upload_path(self, sha256: str, ext: str) -> Path:
        return self.uploads / f"{sha256}{ext}"

    def recover(self) -> list[JobRow]:
        """After a start (perhaps after a crash): running jobs go back to the queue, partial
        uploads and files of no job are deleted. Returns the jobs to scan, oldest first."""
        with self._lock:
            self._db.execute("UPDATE jobs SET status='queued', started_at=NULL WHERE status='running'")
            rows = self._db.execute("SELECT id, sha256, source FROM jobs").fetchall()
        ids = {r["id"] for r in rows}
        shas = {r["sha256"] for r in rows if r["source"] == "upload"}
        for f in _entries(self.tmp):
            _remove(f)
        for f in _entries(self.jobs_dir):
            if f.name not in ids:
                _remove(f)
        for f in _entries(self.uploads):
            if f.name.split(".")[0] not in shas:
                _remove(f)
        return self.unfinished()


def _entries(folder: Path) -> Iterator[Path]:
    try:
        yield from folder.iterdir()
    except FileNotFoundError:
        return


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
