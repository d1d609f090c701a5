"""Liveness, readiness and Prometheus metrics (no token needed)."""
from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import __version__
from .deps import QueueDep
from .errors import ApiError
from .models import Health, Ready, errors

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The server process answers")
def healthz() -> Health:
    return Health(status="ok", version=__version__)


@router.get("/readyz", response_model=Ready, summary="200 once the scan workers have loaded the model", responses=errors(503))
def readyz(queue: QueueDep) -> Ready:
    if queue.state != "ready":
        raise ApiError(503, "not_ready", queue.message or "the scan workers are loading the model", {"Retry-After": "5"})
    return Ready(status="ready", workers=queue.settings.workers, queued=queue.queued, running=queue.running, model=queue.model)


@router.get("/metrics", summary="Prometheus metrics (text format)",
            responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}, "description": "jobs by state, scan seconds, queue length"}})
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
