"""The review page (``GET /``) and its script. Loading them needs no token: the page asks for
one and sends it with every API call it makes."""
from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse

from ..report.templating import environment
from .deps import SettingsDep

router = APIRouter(include_in_schema=False)

# the page's own script only; the inline stylesheet of the shared layout; reports open as blob: documents
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data: blob:; "
            "connect-src 'self'; frame-src blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@router.get("/", response_class=HTMLResponse)
def review_page(settings: SettingsDep) -> HTMLResponse:
    mib = settings.max_upload_bytes / 2**20
    page = environment().get_template("review.html.j2").render(
        auth=settings.auth, max_upload_bytes=settings.max_upload_bytes,
        max_upload=f"{mib / 1024:g} GiB" if mib >= 1024 else f"{mib:g} MiB")
    return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"})


@router.get("/static/review.js")
def review_script() -> Response:
    script = resources.files("fakeprobe.serve").joinpath("static/review.js").read_bytes()
    return Response(script, media_type="text/javascript", headers={"Cache-Control": "no-cache"})
