"""Dependencies the routes declare: the app's settings, job store and scan queue."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .queue import ScanQueue
from .settings import Settings
from .store import JobStore


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> JobStore:
    return request.app.state.store


def get_queue(request: Request) -> ScanQueue:
    return request.app.state.queue


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[JobStore, Depends(get_store)]
QueueDep = Annotated[ScanQueue, Depends(get_queue)]
