"""The application factory: ``create_app(settings)``."""
from __future__ import annotations

from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request

from .. import __version__
from . import errors, routes_health, routes_page, routes_scans
from .metrics import Metrics
from .queue import ScanQueue
from .settings import Settings
from .store import JobStore

DESCRIPTION = """Scan videos and images for manipulated faces (deepfakes).

Upload a file to `POST /v1/scans`, follow its job at `GET /v1/scans/{id}`; each finished job's
`result` is the record `fakeprobe scan --json` gives. Every `/v1` route needs
`Authorization: Bearer <token>`. Errors are JSON `{"error": {"kind", "message"}}`.
The review page is at `/`."""


def create_app(settings: Settings) -> FastAPI:
    """Open (or recover) the job store under ``settings.data_dir``; the scan workers start with
    the app's lifespan (serving), so building an app is cheap and starts no process."""
    store = JobStore(settings.data_dir)
    metrics = Metrics(store.counts)
    queue = ScanQueue(settings, store, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        queue.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(queue.stop)
            store.close()

    app = FastAPI(title="fakeprobe", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings, app.state.store, app.state.queue, app.state.metrics = settings, store, queue, metrics
    errors.install(app)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    app.include_router(routes_scans.router)
    app.include_router(routes_health.router)
    app.include_router(routes_page.router)
    return app
