"""``fakeprobe serve``: the scanner behind an HTTP API and a review page (FastAPI + uvicorn).

Needs the ``serve`` extra: ``pip install "fakeprobe[serve]"``. ``create_app(settings)`` builds the
application; the routes are documented in docs/api.md and at ``/docs`` of a running server.
"""
from __future__ import annotations

from .settings import Settings, SettingsError

__all__ = ["Settings", "SettingsError", "create_app"]


def __getattr__(name: str):
    if name == "create_app":  # FastAPI is imported only when an app is built
        from .app import create_app

        return create_app
    raise AttributeError(f"module 'fakeprobe.serve' has no attribute {name!r}")
