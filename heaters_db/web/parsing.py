"""What the sorting page's requests may carry, checked before anything reaches the database.

Limits: an event body is at most MAX_EVENT_BYTES (413 beyond), JSON with NaN/Infinity or
nested deeper than MAX_JSON_DEPTH is a 400, more than MAX_CANDIDATES candidates is refused
(never cut); a page's ?undo_ms= / ?poll_ms= are clamped to their ranges.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from heaters_db.web.store import MAX_CANDIDATES, normalise_mode

MAX_EXCLUDED = 50  # anchors the page asks next_anchors to skip (recently decided or skipped)
MAX_EVENT_BYTES = 16 * 1024  # one event is a few hundred bytes
MAX_JSON_DEPTH = 8  # an event is an object holding lists of small objects
UNDO_MS_RANGE = (0, 60_000)
POLL_MS_RANGE = (200, 600_000)


def int_param(request: Request, name: str, default: int, bounds: tuple[int, int]) -> int:
    raw = request.query_params.get(name)
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        value = default
    return max(bounds[0], min(bounds[1], value))


def error_response(message: str, status_code: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code)


class BodyTooLarge(ValueError):
    """The request body is larger than an event can be."""


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes `limit` bytes (a lying or absent Content-Length
    changes nothing: the stream is counted)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"event body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"event body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number an event can hold")


def _checked_depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion. Refuses a string (or key) that is not
    valid Unicode: JSON's \\u escapes can carry a lone surrogate ("\\ud800"), which UTF-8, and
    so the database driver, cannot encode (it failed as a 500 deep in psycopg)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"{item!r} is not valid Unicode (a lone surrogate)") from None
    return deepest


def parse_event_json(body: bytes) -> Any:
    """JSON with only finite numbers, valid Unicode strings and a bounded depth (ValueError
    otherwise)."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if _checked_depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def same_origin(request: Request) -> bool:
    """A cross-site page must not record events in the person's name (CSRF): when the browser
    says where the request comes from, it must be this server."""
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.url.netloc}"


def parse_event(body: Any) -> dict[str, Any]:
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
    for ranking in rankings:  # read by clip id later (a list as an id was a 500 there)
        if not isinstance(ranking, dict):
            raise TypeError("candidate_rankings[] must be objects {clip_id, source, ...}")
        clip(ranking.get("clip_id"), "candidate_rankings[].clip_id")
        if not isinstance(ranking.get("source"), str | None):
            raise TypeError("candidate_rankings[].source must be a string")
    if not isinstance(body["mode"], str):
        raise TypeError("mode must be a string (trick or spot)")
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
