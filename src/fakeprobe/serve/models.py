"""Request and response bodies (pydantic), as they appear in the OpenAPI document."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

JobStatus = Literal["queued", "running", "done", "error"]


class Job(BaseModel):
    """One scan job. ``result`` is exactly the record ``fakeprobe scan --json`` gives for the file
    (schema ``fakeprobe/schema/scan.schema.json``; its ``path`` is the uploaded file's name, or the
    path as given); a file that cannot be analysed is a ``done`` job whose result has verdict ``ERROR``."""

    id: str
    status: JobStatus = Field(description="queued → running → done; error: the server itself failed to scan it (see result.error)")
    result: dict[str, Any] | None = Field(None, description="the scan record once the job is done (or error)")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    name: str = Field(description="the uploaded file's name, or the path as given")
    source: Literal["upload", "path"]
    sha256: str = Field(description="of the file's content; the same content is scanned once")
    size: int = Field(description="bytes")
    report: str = Field(description="URL of the HTML evidence report (available when the job is done)")


class JobPage(BaseModel):
    items: list[Job] = Field(description="most recent first")
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page; null on the last page")
    total: int = Field(description="jobs in this listing, all pages")


class PathRequest(BaseModel):
    """Scan a file already on the server (only with ``--allow-root DIR``): an absolute path, or one
    relative to that folder. Anything resolving outside it is refused with 403."""

    path: str = Field(min_length=1, max_length=4096)


class ErrorDetail(BaseModel):
    kind: str = Field(description="a stable tag: unauthorized, forbidden, not_found, too_large, unsupported_type, "
                                  "empty, invalid_request, bad_request, conflict, queue_full, not_ready, internal, ...")
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class Ready(BaseModel):
    status: Literal["ready", "starting", "failed"]
    workers: int
    queued: int
    running: int
    model: dict[str, Any] | None = None
    message: str | None = None


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for these error statuses."""
    words = {400: "malformed request", 401: "missing or invalid bearer token", 403: "forbidden", 404: "no such job",
             409: "conflict with the job's state", 413: "upload over --max-upload-mb", 415: "not a video or image",
             422: "invalid parameters", 503: "queue full (Retry-After) or not ready"}
    return {c: {"model": ErrorBody, "description": words.get(c, "error")} for c in codes}
