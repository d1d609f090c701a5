"""Bearer tokens: every ``/v1`` route needs ``Authorization: Bearer <token>`` with a token from
``--token-file`` or ``$FAKEPROBE_TOKENS`` (unless the server runs with ``--no-auth``)."""
from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .deps import SettingsDep
from .errors import ApiError

bearer = HTTPBearer(auto_error=False, description="a token from the server's --token-file")


def require_token(settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    if not settings.auth:
        return
    if credentials is None:
        raise ApiError(401, "unauthorized", "missing bearer token: send the header 'Authorization: Bearer <token>'",
                       {"WWW-Authenticate": "Bearer"})
    given = credentials.credentials.encode()
    # compare with every token, always, so the time taken says nothing about which one nearly matched
    if not sum(hmac.compare_digest(given, t.encode()) for t in settings.tokens):
        raise ApiError(401, "unauthorized", "invalid token", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
