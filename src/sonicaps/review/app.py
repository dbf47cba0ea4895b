"""The review web app: one page (static/) over a JSON API, served by uvicorn.

Safety, since the page runs where the data is:
- Clips are addressed by catalog position, never by path, and their audio must resolve
  (symlinks included) inside the collection's audio folders: nothing else can be read.
- The page builds its DOM with textContent only; captions are data, never markup.
- Bound to loopback, requests must name a loopback Host (DNS rebinding) and writes must
  be JSON (a cross-site form cannot send that without a CORS preflight, which is never
  granted). Bound to any other address, an access token is required on every request.
"""

from __future__ import annotations

import hmac
import ipaddress
from importlib import resources
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from sonicaps.review import media
from sonicaps.review.collection import Collection, Filters
from sonicaps.review.reviews import Conflict, record

COOKIE = "sonicaps_review_token"
STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
LOOPBACK_HOSTS = frozenset(("127.0.0.1", "localhost", "::1"))
MAX_REVIEWER_CHARS = 100


class ReviewIn(BaseModel):
    action: str
    caption: str | None = Field(default=None, max_length=10_000)
    reason: str = Field(default="", max_length=10_000)
    expected: int | None = None  # id of the latest review the page saw


class CheckIn(BaseModel):
    caption: str = Field(max_length=10_000)
    labels: list[str] = []


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(collection: Collection, *, reviewer: str, token: str | None = None,
               loopback: bool = True) -> FastAPI:
    """The app over one collection. `reviewer` is the default name; a page can choose
    another (several reviewers sharing one server), sent as the X-Reviewer header, percent-encoded UTF-8."""
    if not loopback and not token:
        raise ValueError("refusing to serve a non-loopback address without an access token")
    app = FastAPI(title="sonicaps review", docs_url=None, redoc_url=None, openapi_url=None)
    page = resources.files("sonicaps.review").joinpath("static", "index.html").read_text(encoding="utf-8")

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]")
        if loopback and not is_loopback(host):
            return JSONResponse({"detail": "unexpected Host header"}, status_code=403)
        if token:
            given = (request.query_params.get("token") or request.cookies.get(COOKIE)
                     or request.headers.get("authorization", "").removeprefix("Bearer ").strip())
            # As bytes: compare_digest refuses str with non-ASCII characters (a 500).
            if not hmac.compare_digest((given or "").encode(), token.encode()):
                return JSONResponse({"detail": "access token required"}, status_code=401)
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; "
            "script-src 'self'; frame-ancestors 'none'")
        if token and request.query_params.get("token"):
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    def who(request: Request) -> str:
        # Percent-encoded UTF-8: header values carry Latin-1 only, and browsers refuse
        # to send anything else (a reviewer named Zoë 王 could not use the page).
        given = request.headers.get("x-reviewer")
        try:
            name = (unquote(given, errors="strict") if given else reviewer).strip()
        except UnicodeDecodeError as e:
            raise HTTPException(400, "the X-Reviewer header must be percent-encoded UTF-8") from e
        if not name or len(name) > MAX_REVIEWER_CHARS:
            raise HTTPException(400, f"reviewer name must have 1 to {MAX_REVIEWER_CHARS} characters")
        return name

    def item_or_404(pos: int) -> dict[str, Any]:
        row = collection.item(pos)
        if row is None:
            raise HTTPException(404, f"no item at position {pos}")
        return row

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:  # a fixed list: no path is ever built from the request
            raise HTTPException(404)
        body = resources.files("sonicaps.review").joinpath("static", name).read_bytes()
        return Response(body, media_type=STATIC[name])

    @app.get("/api/info")
    def info(request: Request) -> dict[str, Any]:
        return {"data": str(collection.data), "format": collection.fmt, "reviewer": who(request),
                **collection.progress(who(request))}

    @app.get("/api/items")
    def items(request: Request, status: str | None = None, label: str | None = None,
              min_score: float | None = None, max_score: float | None = None, after: int = 0,
              before: int | None = None, limit: int = Query(50, ge=1, le=500)) -> list[dict[str, Any]]:
        try:
            filters = Filters(status or None, label or None, min_score, max_score)
        except ValueError as e:
            raise HTTPException(400, str(e)) from e
        return collection.page(filters, who(request), after=after, before=before, limit=limit)

    @app.get("/api/items/{pos}")
    def detail(request: Request, pos: int) -> dict[str, Any]:
        out = collection.detail(pos, who(request))
        if out is None:
            raise HTTPException(404, f"no item at position {pos}")
        return out

    def span(pos: int) -> tuple:
        try:
            return collection.audio_span(pos)  # raises LookupError for a missing item too
        except PermissionError as e:
            raise HTTPException(403, str(e)) from e
        except LookupError as e:
            raise HTTPException(404, str(e)) from e

    @app.get("/api/items/{pos}/audio")
    def audio(request: Request, pos: int) -> Response:
        try:
            body = media.wav_bytes(*span(pos))
        except HTTPException:
            raise
        except Exception as e:  # undecodable audio: say so, the page keeps working
            raise HTTPException(422, f"cannot decode this clip's audio: {e}") from e
        try:
            part = media.byte_range(request.headers.get("range"), len(body))
        except ValueError:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{len(body)}"})
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
        if part is None:
            return Response(body, media_type="audio/wav", headers=headers)
        first, last = part
        headers["Content-Range"] = f"bytes {first}-{last}/{len(body)}"
        return Response(body[first:last + 1], status_code=206, media_type="audio/wav", headers=headers)

    @app.get("/api/items/{pos}/spectrogram.png")
    def spectrogram(pos: int) -> Response:
        try:
            body = media.spectrogram_png(*span(pos))
        except HTTPException:
            raise
        except Exception as e:
            raise HTTPException(422, f"cannot decode this clip's audio: {e}") from e
        return Response(body, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    @app.post("/api/items/{pos}/review")
    def review(request: Request, pos: int, body: ReviewIn) -> dict[str, Any]:
        row = item_or_404(pos)
        try:
            return record(collection.con, row, who(request), body.action, caption=body.caption,
                          reason=body.reason, expected=body.expected)
        except Conflict as e:
            raise HTTPException(409, {"message": str(e), "current": e.current}) from e
        except ValueError as e:
            raise HTTPException(400, str(e)) from e

    @app.post("/api/check")
    def check(body: CheckIn) -> dict[str, list[str]]:
        from sonicaps.curate.text import guideline_warnings

        return {"warnings": guideline_warnings(body.caption, body.labels)}

    return app


def serve(collection: Collection, *, host: str = "127.0.0.1", port: int = 8765, reviewer: str,
          token: str | None = None) -> None:
    """Index in the background and serve until interrupted."""
    import uvicorn

    app = create_app(collection, reviewer=reviewer, token=token, loopback=is_loopback(host))
    collection.start_indexing()
    shown = f"[{host}]" if ":" in host else host
    print(f"reviewing {collection.data} as {reviewer!r}: open http://{shown}:{port}/"
          + (f"?token={token}" if token else ""), flush=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        collection.stop()
