"""``/v1/scans``: submit a file, follow its job, fetch its report, delete it."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from .auth import require_token
from .deps import QueueDep, SettingsDep, StoreDep
from .errors import ApiError
from .models import Job, JobPage, PathRequest, errors
from .store import JobRow, JobStore
from .uploads import receive_path, receive_upload

router = APIRouter(prefix="/v1", tags=["scans"], dependencies=[Depends(require_token)], responses=errors(401))

MAX_JSON_BYTES = 64 * 1024
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"  # the report has no scripts

_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                           "properties": {"file": {"type": "string", "format": "binary",
                                                                   "description": "a video or image"}}}},
        "application/json": {"schema": PathRequest.model_json_schema()},
    },
}


def _time(t: float | None) -> dt.datetime | None:
    return None if t is None else dt.datetime.fromtimestamp(t, dt.timezone.utc)


def to_job(row: JobRow) -> Job:
    return Job(id=row.id, status=row.status, result=row.result, created_at=_time(row.created_at), started_at=_time(row.started_at),
               finished_at=_time(row.finished_at), name=row.name, source=row.source, sha256=row.sha256, size=row.size,
               report=f"/v1/scans/{row.id}/report")


def _job_or_404(store: JobStore, job_id: str) -> JobRow:
    job = store.get(job_id)
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id!r} (never created, or deleted)")
    return job


@router.post("/scans", response_model=Job, status_code=202, openapi_extra={"requestBody": _UPLOAD_BODY},
             summary="Scan a file (multipart upload, or a path under --allow-root)",
             responses={200: {"model": Job, "description": "the job is finished (within ?wait, or this content was scanned before)"},
                        202: {"model": Job, "description": "accepted: queued or running; follow the Location header"},
                        **errors(400, 403, 404, 413, 415, 422, 503)})
async def create_scan(
    request: Request,
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    queue: QueueDep,
    wait: Annotated[float, Query(ge=0, le=3600, description="seconds to wait for the result before answering 202")] = 0,
    rescan: Annotated[bool, Query(description="scan again even if this content was scanned before")] = False,
) -> Job:
    """Upload the file as the multipart form field ``file`` (its type is found from its content;
    the name and Content-Type the client sends do not matter), or send ``{"path": "..."}`` as JSON
    for a file under the server's ``--allow-root`` folder. Content scanned before gives its job back
    at once (``?rescan=1`` scans it again)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_JSON_BYTES:
                raise ApiError(413, "too_large", f"a JSON body is at most {MAX_JSON_BYTES // 1024} KiB")
        try:
            given = PathRequest.model_validate_json(bytes(body)).path
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ApiError(422, "invalid_request", f"JSON body: {' '.join(map(str, first['loc'])) or 'body'}: {first['msg']}; "
                                                   'expected {"path": "..."}') from None
        received = await receive_path(given, settings.allow_root)
    elif ctype == "multipart/form-data":
        received = await receive_upload(request, store.tmp, settings.max_upload_bytes)
    else:
        raise ApiError(415, "unsupported_type", f"send multipart/form-data (form field 'file') or application/json "
                                                f"{{\"path\": ...}}, not {ctype or 'a body without Content-Type'}")
    job, _ = queue.submit(received, rescan=rescan)
    if wait > 0 and not job.final:
        job = await queue.wait(job.id, min(wait, settings.max_wait_s)) or job
    response.status_code = 200 if job.final else 202
    response.headers["Location"] = f"/v1/scans/{job.id}"
    return to_job(job)


@router.get("/scans", response_model=JobPage, summary="List jobs, most recent first", responses=errors(422))
def list_scans(
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    cursor: Annotated[str | None, Query(pattern=r"^\d+$", description="next_cursor of the previous page")] = None,
    status: Annotated[Literal["queued", "running", "done", "error"] | None, Query()] = None,
) -> JobPage:
    rows, total = store.page(limit + 1, int(cursor) if cursor else None, status)
    more = len(rows) > limit
    rows = rows[:limit]
    return JobPage(items=[to_job(r) for r in rows], next_cursor=str(rows[-1].seq) if more else None, total=total)


@router.get("/scans/{job_id}", response_model=Job, summary="One job", responses=errors(404))
def get_scan(job_id: str, store: StoreDep) -> Job:
    return to_job(_job_or_404(store, job_id))


@router.get("/scans/{job_id}/report", response_class=HTMLResponse, summary="The job's HTML evidence report",
            responses={200: {"content": {"text/html": {}}, "description": "a self-contained HTML page"}, **errors(404, 409)})
def get_report(job_id: str, store: StoreDep) -> HTMLResponse:
    job = _job_or_404(store, job_id)
    if not job.final:
        raise ApiError(409, "not_finished", f"job {job_id} is {job.status}: its report exists once it is done")
    path = store.report_path(job_id)
    try:
        page = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ApiError(404, "not_found", f"job {job_id}: its report is missing from the server's data folder") from None
    return HTMLResponse(page, headers={"Content-Security-Policy": REPORT_CSP, "Cache-Control": "no-store"})


@router.delete("/scans/{job_id}", status_code=204, summary="Delete a job, its upload and its report", responses=errors(404))
def delete_scan(job_id: str, store: StoreDep, queue: QueueDep) -> Response:
    """A queued job is taken off the queue; a running one finishes in its worker and is dropped."""
    queue.delete(_job_or_404(store, job_id))
    return Response(status_code=204)

