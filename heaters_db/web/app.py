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
import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from heaters_db.errors import DatabaseUnavailable
from heaters_db.settings import Settings
from heaters_db.web import media
from heaters_db.web.store import (
    MAX_CANDIDATES,
    MODES,
    EventRefused,
    SortingStore,
    database_message,
    normalise_mode,
)

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
# What a request can meet in the database: its refusals and errors, or no database at all.
DATABASE_ERRORS = (psycopg.Error, DatabaseUnavailable)
MAX_EXCLUDED = 50  # anchors the page asks next_anchors to skip (recently decided or skipped)
MAX_EVENT_BYTES = 16 * 1024  # one event is a few hundred bytes
MAX_JSON_DEPTH = 8  # an event is an object holding lists of small objects
TOKEN_COOKIE = "heaters_sort_token"
UNDO_MS_RANGE = (0, 60_000)
POLL_MS_RANGE = (200, 600_000)


def _int_param(request: Request, name: str, default: int, bounds: tuple[int, int]) -> int:
    raw = request.query_params.get(name)
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        value = default
    return max(bounds[0], min(bounds[1], value))


def _error(message: str, status_code: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code)


class BodyTooLarge(ValueError):
    """The request body is larger than an event can be."""


async def _read_limited(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes `limit` bytes (a lying or absent Content-Length
    changes nothing: the stream is counted)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"event body over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"event body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number an event can hold")


def _json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_event_json(body: bytes) -> Any:
    """JSON with only finite numbers and a bounded depth (ValueError otherwise)."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if _json_depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _token_ok(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    offered = header[7:] if header.lower().startswith("bearer ") else None
    offered = offered or request.cookies.get(TOKEN_COOKIE) or request.query_params.get("token")
    return offered is not None and hmac.compare_digest(offered.encode(), token.encode())


def _same_origin(request: Request) -> bool:
    """A cross-site page must not record events in the person's name (CSRF): when the browser
    says where the request comes from, it must be this server."""
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.url.netloc}"


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
    default_mode = normalise_mode(mode)
    candidates = max(1, min(MAX_CANDIDATES, candidates))
    store = SortingStore(database_url)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    videos = media.MediaServer(settings)

    def render_screen(screen: Any) -> str:
        return templates.get_template("_screen.html").render(screen=screen)

    def load_screen(mode: str, exclude: list[int]) -> tuple[dict | None, str, str | None]:
        """(screen JSON, its HTML, error message) for the next screen of `mode`."""
        try:
            screen = store.next_screen(mode, exclude, candidates)
        except DATABASE_ERRORS as error:
            log.exception("next screen failed", extra={"action": "next_screen", "mode": mode})
            message = database_message(error)
            return None, render_screen(None), message
        return (screen.as_json() if screen else None), render_screen(screen), None

    async def page(request: Request) -> Response:
        try:
            mode = normalise_mode(request.query_params.get("mode") or default_mode)
        except ValueError as error:
            return PlainTextResponse(str(error), status_code=400)
        screen, html, error = await run_in_threadpool(load_screen, mode, [])
        heads, head_error = await run_in_threadpool(_heads)
        config = {
            "mode": mode,
            "session_id": str(uuid.uuid4()),
            "undo_ms": _int_param(request, "undo_ms", int(undo_seconds * 1000), UNDO_MS_RANGE),
            "poll_ms": _int_param(request, "poll_ms", int(poll_seconds * 1000), POLL_MS_RANGE),
            "screen": screen,
            "heads": heads,
        }
        return templates.TemplateResponse(
            request,
            "sort.html",
            {
                "config": config,
                "mode": mode,
                "screen_html": html,
                "error": error or head_error,
                "undo_seconds": config["undo_ms"] / 1000,
            },
            status_code=503 if error else 200,
            headers={"Cache-Control": "no-store"},
        )

    def _heads() -> tuple[dict[str, Any], str | None]:
        try:
            return {m: store.active_head(m) for m in MODES}, None
        except DATABASE_ERRORS as error:
            log.exception("active heads failed", extra={"action": "active_heads"})
            return {m: None for m in MODES}, database_message(error)

    async def screen_api(request: Request) -> Response:
        try:
            mode = normalise_mode(request.query_params.get("mode") or default_mode)
            raw = request.query_params.get("exclude", "")
            exclude = [int(part) for part in raw.split(",") if part.strip()][-MAX_EXCLUDED:]
        except ValueError as error:
            return _error(str(error), 400)
        screen, html, error = await run_in_threadpool(load_screen, mode, exclude)
        if error:
            return _error(error, 503)
        return JSONResponse({"screen": screen, "html": html}, headers={"Cache-Control": "no-store"})

    async def status_api(request: Request) -> Response:
        heads, error = await run_in_threadpool(_heads)
        if error:
            return _error(error, 503)
        return JSONResponse({"heads": heads}, headers={"Cache-Control": "no-store"})

    async def events_api(request: Request) -> Response:
        if not _same_origin(request):
            return _error("cross-origin event refused", 403)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            # A form on another site can only send form types without a CORS preflight.
            return _error("send the event as application/json", 415)
        try:
            body = await _read_limited(request, MAX_EVENT_BYTES)
        except BodyTooLarge as error:
            return _error(str(error), 413)
        try:
            event = _parse_event(parse_event_json(body))
        except (ValueError, TypeError, KeyError) as error:
            return _error(f"malformed event: {error}", 400)
        try:
            event_id = await run_in_threadpool(lambda: store.record_event(**event))
        except EventRefused as error:
            return _error(str(error), 422)
        except DATABASE_ERRORS as error:
            log.exception("sorting event failed", extra={"action": "sorting_event"})
            return _error(database_message(error), 503)
        return JSONResponse({"event_id": event_id}, status_code=201)

    async def video(request: Request) -> Response:
        clip_id = request.path_params["clip_id"]

        def respond() -> Response:
            return videos.response(store.clip_filepath(clip_id))

        try:
            return await run_in_threadpool(respond)
        except media.MediaRefused as error:
            log.warning(str(error), extra={"action": "media_refused", "clip_id": clip_id})
            return PlainTextResponse(str(error), status_code=403)
        except media.MediaNotFound as error:
            return PlainTextResponse(str(error), status_code=404)
        except DATABASE_ERRORS as error:
            return PlainTextResponse(database_message(error), status_code=503)

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
            Route("/", page),
            Route("/api/screen", screen_api),
            Route("/api/status", status_api),
            Route("/api/events", events_api, methods=["POST"]),
            Route("/media/{clip_id:int}", video, methods=["GET", "HEAD"]),
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.videos = videos
    return app


def _parse_event(body: Any) -> dict[str, Any]:
    """The event fields from the page's JSON, with their types checked (the database checks the
    rest and says so in its own words)."""
    if not isinstance(body, dict):
        raise TypeError("expected a JSON object")

    def clip(value: Any, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be a clip id (integer)")
        return value

    candidates = body["candidates"]
    if not isinstance(candidates, list) or not candidates:
        raise TypeError("candidates must be a non-empty list of clip ids")
    if len(candidates) > MAX_CANDIDATES:  # refused, never cut: the event must say what was shown
        raise ValueError(f"at most {MAX_CANDIDATES} candidates per screen, got {len(candidates)}")
    selected = body.get("selected")
    response_time = body.get("response_time_ms")
    if response_time is not None and (
        isinstance(response_time, bool) or not isinstance(response_time, int | float)
    ):
        raise TypeError("response_time_ms must be a number")
    rankings = body.get("candidate_rankings") or []
    if not isinstance(rankings, list) or len(rankings) > MAX_CANDIDATES:
        raise TypeError("candidate_rankings must be a list (one entry per shown candidate)")
    return {
        "mode": normalise_mode(body["mode"]),
        "anchor": clip(body["anchor"], "anchor"),
        "candidates": [clip(value, "candidates[]") for value in candidates],
        "selected": None if selected is None else clip(selected, "selected"),
        "session_id": uuid.UUID(str(body["session_id"])),
        "response_time_ms": None if response_time is None else round(response_time),
        "candidate_rankings": rankings,
        "rejected": [clip(value, "rejected[]") for value in body.get("rejected") or []],
        "anchor_reason": body.get("anchor_reason")
        if isinstance(body.get("anchor_reason"), str)
        else None,
    }


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
