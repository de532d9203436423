"""The sorting page's database access: one shared connection, the screens, the events.

One connection, guarded by a lock, serves the whole app. The page is a single-person tool: its
queries are short and a person makes one choice every few seconds, so serialising them costs
nothing noticeable, while a pool (psycopg_pool, another dependency) would only add connections the
database must hold open. Video bytes never pass through the lock: clip paths are cached when a
screen is built, and files are streamed outside it. A broken connection (the database restarted)
is replaced on the next call; reads are retried once on a fresh one, writes never (a lost reply
to a committed INSERT must not become a second event).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row

from heaters_db.db import connect
from heaters_db.errors import HeatersError
from heaters_db.queries import query

log = logging.getLogger(__name__)

QUERIES = "sorting_page.sql"
MODES = ("trick", "spot")
MAX_CANDIDATES = 9  # keys 1-9
# Metric keys the learning loop may store in projection_heads.metrics, in display order.
HOLDOUT_METRICS = ("triplet_accuracy", "screen_top1", "reciprocal_rank")

T = TypeVar("T")


class SortingPageError(HeatersError):
    """The sorting page could not read from or write to the database."""


class EventRefused(SortingPageError):
    """The database refused a sorting event (its trigger's message says why)."""


def database_message(error: Exception) -> str:
    """The database's own words for an error (the primary message, without CONTEXT lines)."""
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if primary:
        return primary
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def normalise_mode(mode: str | None) -> str:
    """'trick'/'spot' from any spelling the SQL accepts; ValueError otherwise."""
    value = (mode or "").strip().lower()
    value = value.removesuffix("_similarity")
    if value not in MODES:
        raise ValueError(f"unknown mode {mode!r}: use trick or spot")
    return value


@dataclass(frozen=True)
class Tile:
    """A clip on a screen: the anchor (key None) or a numbered candidate."""

    clip_id: int
    key: int | None = None
    position: int | None = None
    source: str | None = None
    distance: float | None = None
    label: str = ""


@dataclass(frozen=True)
class Screen:
    """One question: an anchor and the candidates shown beside it."""

    mode: str
    anchor: Tile
    anchor_score: float | None
    anchor_reason: str | None
    candidates: tuple[Tile, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "anchor": asdict(self.anchor),
            "anchor_score": self.anchor_score,
            "anchor_reason": self.anchor_reason,
            "candidates": [asdict(tile) for tile in self.candidates],
        }


def _holdout_numbers(metrics: Mapping[str, Any], containers: tuple[str | None, ...]) -> dict:
    found: dict[str, float] = {}
    for name in HOLDOUT_METRICS:
        for container_name in containers:
            container = metrics if container_name is None else metrics.get(container_name)
            value = container.get(name) if isinstance(container, Mapping) else None
            if isinstance(value, Mapping):  # gate results: {"new": ..., "baseline": ...}
                value = value.get("new")
            if isinstance(value, int | float) and not isinstance(value, bool):
                found[name] = float(value)
                break
    return found


def head_summary(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The active head as the page shows it, with whichever holdout metrics were stored.

    The learning loop writes its holdout numbers into projection_heads.metrics under "holdout"
    (and the space it replaced under "baseline"); older or hand-made rows may keep them at the top
    level or only in the gate results. Missing ones are left out, never invented.
    """
    if row is None:
        return None
    metrics = row.get("metrics") or {}
    stored_holdout = metrics.get("holdout")
    holdout = stored_holdout if isinstance(stored_holdout, Mapping) else {}
    activated = row.get("activated_at")
    return {
        "id": row["id"],
        "version": row["version"],
        "activated_at": activated.isoformat() if activated is not None else None,
        "training_event_count": row.get("training_event_count"),
        "holdout": _holdout_numbers(metrics, ("holdout", "gate", None)),
        "baseline": _holdout_numbers(metrics, ("baseline",)),
        "holdout_events": holdout.get("events"),
    }


class SortingStore:
    """Everything the page asks of the database, over one lock-guarded connection."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._lock = threading.Lock()
        self._connection: psycopg.Connection | None = None
        # clip id -> clip_filepath, filled by every screen so video requests skip the database.
        self._paths: dict[int, str | None] = {}

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _connect(self) -> psycopg.Connection:
        if self._connection is None or self._connection.closed or self._connection.broken:
            self._connection = connect(self.database_url, autocommit=True)
        return self._connection

    def _run(self, work: Callable[[psycopg.Connection], T], retry: bool) -> T:
        with self._lock:
            for attempt in (1, 2):
                connection = self._connect()
                try:
                    return work(connection)
                except psycopg.OperationalError:
                    if not connection.broken or not retry or attempt == 2:
                        raise
                    log.warning(
                        "database connection lost; reconnecting", extra={"action": "reconnect"}
                    )
            raise AssertionError("unreachable")

    def _fetch(self, name: str, params: Mapping[str, Any], retry: bool = True) -> list[dict]:
        def work(connection: psycopg.Connection) -> list[dict]:
            with connection.cursor(row_factory=dict_row) as cursor:
                cursor.execute(query(QUERIES, name), params)
                return cursor.fetchall()

        return self._run(work, retry)

    # -- screens -------------------------------------------------------------------------------

    def next_screen(
        self, mode: str, exclude: Iterable[int] = (), candidates: int = 8
    ) -> Screen | None:
        """The next anchor (skipping `exclude`: anchors this page has just decided or skipped and
        the database may not know of yet) with its candidates; None when nothing can be sorted."""
        excluded = set(exclude)
        anchors = self._fetch("next_anchors", {"mode": mode, "n": 1 + len(excluded)})
        if not anchors:
            return None
        # Every proposal already seen in this session: start again from the best one.
        chosen = next((a for a in anchors if a["clip_id"] not in excluded), anchors[0])
        # An evaluation anchor gets candidates drawn without the live head (what the gate judges).
        shown = self._fetch(
            "evaluation_candidates" if chosen["reason"] == "evaluation" else "sorting_candidates",
            {"anchor": chosen["clip_id"], "mode": mode, "n": min(candidates, MAX_CANDIDATES)},
        )[:MAX_CANDIDATES]
        ids = [chosen["clip_id"], *(row["clip_id"] for row in shown)]
        files = {row["id"]: row for row in self._fetch("clip_files", {"clip_ids": ids})}
        for clip_id in ids:
            self._paths[clip_id] = (files.get(clip_id) or {}).get("clip_filepath")

        def label(clip_id: int) -> str:
            return (files.get(clip_id) or {}).get("clip_identifier") or f"clip {clip_id}"

        return Screen(
            mode=mode,
            anchor=Tile(clip_id=chosen["clip_id"], label=label(chosen["clip_id"])),
            anchor_score=chosen["score"],
            anchor_reason=chosen["reason"],
            candidates=tuple(
                Tile(
                    clip_id=row["clip_id"],
                    key=key,
                    position=row["position"],
                    source=row["source"],
                    distance=row["distance"],
                    label=label(row["clip_id"]),
                )
                for key, row in enumerate(shown, start=1)
            ),
        )

    def clip_filepath(self, clip_id: int) -> str | None:
        """The clip's stored path (cached from screens); None for an unknown clip or no file."""
        if clip_id not in self._paths:
            rows = self._fetch("clip_files", {"clip_ids": [clip_id]})
            if not rows:
                return None
            self._paths[clip_id] = rows[0]["clip_filepath"]
        return self._paths[clip_id]

    def active_head(self, mode: str) -> dict[str, Any] | None:
        rows = self._fetch("active_head", {"mode": mode})
        return head_summary(rows[0] if rows else None)

    # -- events --------------------------------------------------------------------------------

    def record_event(
        self,
        *,
        mode: str,
        anchor: int,
        candidates: list[int],
        selected: int | None,
        session_id: uuid.UUID,
        response_time_ms: int | None,
        candidate_rankings: list[dict[str, Any]],
        rejected: Iterable[int] = (),
        anchor_reason: str | None = None,
    ) -> int:
        """INSERT one sorting event and return its id. ``rejected``: only the candidates the
        person marked as clearly wrong (hard negatives); the others not chosen stay implicit.
        ``anchor_reason``: next_anchors' reason for the anchor (None: 'manual'); the candidates'
        sources come from candidate_rankings when every shown clip has one.

        Raises EventRefused with the database's message when the trigger (or a constraint)
        refuses the row.
        """
        params = {
            "mode": mode,
            "anchor": anchor,
            "selected": selected,
            "candidates": candidates,
            # "None similar" keeps its meaning: every candidate shown was wrong.
            "rejected": (
                list(candidates)
                if selected is None
                else [clip for clip in dict.fromkeys(rejected) if clip != selected]
            ),
            "anchor_reason": anchor_reason or "manual",
            "candidate_sources": _sources(candidates, candidate_rankings),
            "session_id": str(session_id),
            "response_time_ms": response_time_ms,
            "candidate_rankings": json.dumps(candidate_rankings),
        }
        try:
            rows = self._fetch("insert_sorting_event", params, retry=False)
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as error:
            # check_violation, foreign_key_violation ... : the event itself is wrong.
            raise EventRefused(database_message(error)) from error
        event_id = rows[0]["id"]
        log.info(
            "sorting event recorded",
            extra={
                "action": "sorting_event",
                "event_id": event_id,
                "clip_id": anchor,
                "mode": mode,
            },
        )
        return event_id


def _sources(candidates: list[int], rankings: list[dict[str, Any]]) -> list[str] | None:
    """One source per candidate, in candidate order, from the page's rankings; None when any
    candidate has none (the event then says its sources are unknown)."""
    by_clip = {r.get("clip_id"): r.get("source") for r in rankings if isinstance(r, dict)}
    sources = [by_clip.get(clip) for clip in candidates]
    named = [source for source in sources if isinstance(source, str)]
    return named if len(named) == len(sources) else None
