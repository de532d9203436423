"""The sorting page: a small Starlette app over the heaters database.

Routes
  GET  /                  the page (query: mode=trick|spot, undo_ms, poll_ms), first screen included
  GET  /api/screen        the next screen as HTML + JSON (query: mode, exclude=1,2,3)
  POST /api/events        one choice -> one INSERT into clip_sorting_events (JSON body)
  GET  /api/status        the active head of each mode (polled: "a new head was activated")
  GET  /media/{clip_id}   the clip's video (Range requests) or a redirect to a presigned URL
  GET  /static/...        sort.js, sort.css

Limits: an event body is at most MAX_EVENT_BYTES (413 beyond), JSON with NaN/Infinity or
nested deeper than MAX_JSON_DEPTH is a 400, more than MAX_CANDIDATES candidates is refused
(never cut). With an access token (setting HEATERS_SORT_ACCESS_TOKEN) every request must carry
it: `Authorization: Bearer <token>`, or `?token=<token>` once (the page then sets a cookie).

The browser holds each choice for an undo window before it POSTs it (static/sort.js), so an
undone choice never reaches the database. The database's refusals come back as JSON
{"error": <the trigger's message>} and the page shows them.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from heaters_db.settings import Settings
from heaters_db.web import media
from heaters_db.web.parsing import MAX_EVENT_BYTES
from heaters_db.web.routes import HERE, SortingRoutes
from heaters_db.web.store import MAX_CANDIDATES, SortingStore, normalise_mode

__all__ = ["MAX_EVENT_BYTES", "TokenMiddleware", "create_app"]

TOKEN_COOKIE = "heaters_sort_token"


def create_app(
    database_url: str,
    settings: Settings,
    *,
    mode: str = "trick",
    undo_seconds: float = 3.0,
    poll_seconds: float = 10.0,
    candidates: int = 8,
    allowed_hosts: list[str] | None = None,
    access_token: str | None = None,
) -> Starlette:
    """The sorting page's ASGI app.

    undo_seconds: how long a choice is held in the browser (z undoes it) before it is written;
    a page's `?undo_ms=` overrides it. allowed_hosts: Host headers to answer (DNS-rebinding
    defence); None answers any (the CLI requires them on a non-loopback address).
    access_token: when set, every request must carry it (see the module docstring).
    """
    store = SortingStore(database_url)
    videos = media.MediaServer(settings)
    routes = SortingRoutes(
        store,
        videos,
        default_mode=normalise_mode(mode),
        candidates=max(1, min(MAX_CANDIDATES, candidates)),
        undo_seconds=undo_seconds,
        poll_seconds=poll_seconds,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(store.close)

    middleware = []
    if access_token:
        middleware.append(Middleware(TokenMiddleware, token=access_token))
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    app = Starlette(
        routes=[
            Route("/", routes.page),
            Route("/api/screen", routes.screen_api),
            Route("/api/status", routes.status_api),
            Route("/api/events", routes.events_api, methods=["POST"]),
            Route("/media/{clip_id:int}", routes.video, methods=["GET", "HEAD"]),
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.videos = videos
    return app


def _token_ok(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    offered = header[7:] if header.lower().startswith("bearer ") else None
    offered = offered or request.cookies.get(TOKEN_COOKIE) or request.query_params.get("token")
    return offered is not None and hmac.compare_digest(offered.encode(), token.encode())


class TokenMiddleware:
    """Every request must carry the access token (Bearer header, cookie, or ?token= which sets
    the cookie so the page's own requests carry it); 401 otherwise."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if not _token_ok(request, self.token):
            await PlainTextResponse("access token required", status_code=401)(scope, receive, send)
            return
        if request.query_params.get("token") and request.cookies.get(TOKEN_COOKIE) != self.token:

            async def send_with_cookie(message: Any) -> None:
                if message["type"] == "http.response.start":
                    cookie = f"{TOKEN_COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
                    message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
                await send(message)

            await self.app(scope, receive, send_with_cookie)
            return
        await self.app(scope, receive, send)
