"""The dashboard: one HTML shell for every page, its static files, and Plotly from the wheel.

Every page route answers the same shell (`templates/index.html`); the JavaScript modules in
`static/` pick the page from the URL and talk only to the public REST API and the SSE
stream, with the token the user typed (kept in sessionStorage). No build step, no CDN:
`/static/plotly.min.js` is the file the installed `plotly` package ships. None of these
routes needs a token (they carry no data) and none appears in the OpenAPI schema.

Every dashboard response carries a Content-Security-Policy (`DASHBOARD_CSP`): scripts,
styles, fetches and images only from this server (images also from blob: and data: URLs,
for artifacts fetched with the token and Plotly's exports), no inline script, no plugin,
no framing (`frame-ancestors 'none'`, with `X-Frame-Options: DENY` from
service.api.headers). Inline styles are allowed: Plotly writes its own `<style>` rules.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse

from service.errors import NotFound

router = APIRouter(include_in_schema=False)

ID = Annotated[int, Path(ge=1, le=2**31 - 1)]
STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(js|css|svg)$")
MEDIA_TYPES = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
DASHBOARD_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
APP_CACHE = {"Cache-Control": "no-cache", "Content-Security-Policy": DASHBOARD_CSP}
PLOTLY_CACHE = {"Cache-Control": "public, max-age=86400", "Content-Security-Policy": DASHBOARD_CSP}


def _dashboard_dir() -> FsPath:
    return FsPath(str(resources.files("service") / "dashboard"))


def _shell() -> FileResponse:
    return FileResponse(
        _dashboard_dir() / "templates" / "index.html", media_type="text/html", headers=APP_CACHE
    )


@router.get("/")
def studies_page() -> FileResponse:
    return _shell()


@router.get("/studies/{study_id}")
def study_page(study_id: ID) -> FileResponse:
    return _shell()


@router.get("/trials/{trial_id}")
def trial_page(trial_id: ID) -> FileResponse:
    return _shell()


@router.get("/workers")
def workers_page() -> FileResponse:
    return _shell()


@router.get("/new")
def new_study_page() -> FileResponse:
    return _shell()


@router.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    path = FsPath(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    return FileResponse(path, media_type="text/javascript", headers=PLOTLY_CACHE)


@router.get("/static/{name}")
def static_file(name: str) -> FileResponse:
    """A file of `service/dashboard/static/` (flat: names only, no folders)."""
    match = STATIC_NAME.match(name)
    path = _dashboard_dir() / "static" / name
    if match is None or not path.is_file():
        raise NotFound(f"no static file {name!r}")
    return FileResponse(path, media_type=MEDIA_TYPES[match.group(1)], headers=APP_CACHE)
