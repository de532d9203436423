"""The sorting page's routes: one object holding what they share (the store, the templates,
the media server and the page's settings), one method per route (listed in heaters_db.web.app).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.templating import Jinja2Templates

from heaters_db.errors import DatabaseUnavailable
from heaters_db.web import media
from heaters_db.web.parsing import (
    MAX_EVENT_BYTES,
    MAX_EXCLUDED,
    POLL_MS_RANGE,
    UNDO_MS_RANGE,
    BodyTooLarge,
    error_response,
    int_param,
    parse_event,
    parse_event_json,
    read_limited,
    same_origin,
)
from heaters_db.web.store import MODES, EventRefused, SortingStore, database_message, normalise_mode

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
# What a request can meet in the database: its refusals and errors, or no database at all.
DATABASE_ERRORS = (psycopg.Error, DatabaseUnavailable)


@dataclass
class SortingRoutes:
    """The handlers of the sorting page. `candidates`: how many candidates a screen shows;
    undo_seconds / poll_seconds: the page's defaults (see heaters_db.web.app.create_app)."""

    store: SortingStore
    videos: media.MediaServer
    default_mode: str
    candidates: int
    undo_seconds: float
    poll_seconds: float
    templates: Jinja2Templates = field(
        default_factory=lambda: Jinja2Templates(directory=str(HERE / "templates"))
    )

    def render_screen(self, screen: Any) -> str:
        return self.templates.get_template("_screen.html").render(screen=screen)

    def load_screen(
        self, mode: str, exclude: list[int]
    ) -> tuple[dict[str, Any] | None, str, str | None]:
        """(screen JSON, its HTML, error message) for the next screen of `mode`."""
        try:
            screen = self.store.next_screen(mode, exclude, self.candidates)
        except DATABASE_ERRORS as error:
            log.exception("next screen failed", extra={"action": "next_screen", "mode": mode})
            return None, self.render_screen(None), database_message(error)
        return (screen.as_json() if screen else None), self.render_screen(screen), None

    def heads(self) -> tuple[dict[str, Any], str | None]:
        """The active head of each mode, or none and the database's message."""
        try:
            return {m: self.store.active_head(m) for m in MODES}, None
        except DATABASE_ERRORS as error:
            log.exception("active heads failed", extra={"action": "active_heads"})
            return {m: None for m in MODES}, database_message(error)

    async def page(self, request: Request) -> Response:
        try:
            mode = normalise_mode(request.query_params.get("mode") or self.default_mode)
        except ValueError as error:
            return PlainTextResponse(str(error), status_code=400)
        screen, html, screen_error = await run_in_threadpool(self.load_screen, mode, [])
        heads, head_error = await run_in_threadpool(self.heads)
        undo_ms = int_param(request, "undo_ms", int(self.undo_seconds * 1000), UNDO_MS_RANGE)
        config = {
            "mode": mode,
            "session_id": str(uuid.uuid4()),
            "undo_ms": undo_ms,
            "poll_ms": int_param(request, "poll_ms", int(self.poll_seconds * 1000), POLL_MS_RANGE),
            "screen": screen,
            "heads": heads,
        }
        return self.templates.TemplateResponse(
            request,
            "sort.html",
            {
                "config": config,
                "mode": mode,
                "screen_html": html,
                "error": screen_error or head_error,
                "undo_seconds": undo_ms / 1000,
            },
            status_code=503 if screen_error else 200,
            headers={"Cache-Control": "no-store"},
        )

    async def screen_api(self, request: Request) -> Response:
        try:
            mode = normalise_mode(request.query_params.get("mode") or self.default_mode)
            raw = request.query_params.get("exclude", "")
            exclude = [int(part) for part in raw.split(",") if part.strip()][-MAX_EXCLUDED:]
        except ValueError as error:
            return error_response(str(error), 400)
        screen, html, screen_error = await run_in_threadpool(self.load_screen, mode, exclude)
        if screen_error:
            return error_response(screen_error, 503)
        return JSONResponse({"screen": screen, "html": html}, headers={"Cache-Control": "no-store"})

    async def status_api(self, request: Request) -> Response:
        heads, head_error = await run_in_threadpool(self.heads)
        if head_error:
            return error_response(head_error, 503)
        return JSONResponse({"heads": heads}, headers={"Cache-Control": "no-store"})

    async def events_api(self, request: Request) -> Response:
        if not same_origin(request):
            return error_response("cross-origin event refused", 403)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            # A form on another site can only send form types without a CORS preflight.
            return error_response("send the event as application/json", 415)
        try:
            body = await read_limited(request, MAX_EVENT_BYTES)
        except BodyTooLarge as error:
            return error_response(str(error), 413)
        try:
            event = parse_event(parse_event_json(body))
        except (ValueError, TypeError, KeyError) as error:
            return error_response(f"malformed event: {error}", 400)
        try:
            event_id = await run_in_threadpool(lambda: self.store.record_event(**event))
        except EventRefused as error:
            return error_response(str(error), 422)
        except DATABASE_ERRORS as error:
            log.exception("sorting event failed", extra={"action": "sorting_event"})
            return error_response(database_message(error), 503)
        return JSONResponse({"event_id": event_id}, status_code=201)

    async def video(self, request: Request) -> Response:
        clip_id = request.path_params["clip_id"]

        def respond() -> Response:
            return self.videos.response(self.store.clip_filepath(clip_id))

        try:
            return await run_in_threadpool(respond)
        except media.MediaRefused as error:
            log.warning(str(error), extra={"action": "media_refused", "clip_id": clip_id})
            return PlainTextResponse(str(error), status_code=403)
        except media.MediaNotFound as error:
            return PlainTextResponse(str(error), status_code=404)
        except DATABASE_ERRORS as error:
            return PlainTextResponse(database_message(error), status_code=503)
