"""Training data for a projection head, read from the database.

Only the SQL views are read for the events: ``sorting_screens`` (one row per screen: anchor,
everything shown, the chosen clip or none, the rejected ones) and ``sorting_triplets`` (with the
hard/implicit weights and the deterministic train/holdout split). The vectors are the frozen base
embeddings of the head's base variant: every clip an event refers to, plus a fixed sample of the
library (``context_clips``) so the head's PCA initialisation sees the whole collection, not only
the clips people happened to sort.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row

from heaters_db.db import one_row
from heaters_db.errors import HeatersError
from heaters_db.heads.train import TrainingData
from heaters_db.queries import query
from heaters_db.vector_copy import read_vector_rows

log = logging.getLogger(__name__)

QUERIES = "learning.sql"
DEFAULT_CONTEXT_CLIPS = 20_000


class NoTrainingEvents(HeatersError):
    """There are no usable sorting events (with embedded clips) to train a head on."""


class VariantNotReady(HeatersError):
    """The base variant asked for does not exist or has no embeddings (no dimension) yet."""


@dataclass(frozen=True)
class Variant:
    """The embedding variant whose vectors a head maps (its base variant)."""

    id: int
    model_name: str
    generation_strategy: str
    dim: int

    @property
    def label(self) -> str:
        return f"{self.model_name} / {self.generation_strategy}"


@dataclass
class LoadedEvents:
    """A mode's sorting events as TrainingData, with what it took to build them."""

    mode: str
    variant: Variant
    through_event_id: int
    data: TrainingData
    clip_ids: np.ndarray  # row -> clip id (the inverse of data.clip_rows)
    events_read: int
    dropped_event_ids: list[int] = field(default_factory=list)
    partial_event_ids: list[int] = field(default_factory=list)

    @property
    def train_events(self) -> int:
        return sum(1 for s in self.data.screens if s.split == "train")

    @property
    def validation_events(self) -> int:
        return sum(1 for s in self.data.screens if s.split == "validation")

    @property
    def holdout_events(self) -> int:
        return sum(1 for s in self.data.screens if s.split == "holdout")

    @property
    def evaluation_events(self) -> int:
        return sum(1 for s in self.data.screens if s.split == "holdout" and s.evaluation)

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "base_variant_id": self.variant.id,
            "through_event_id": self.through_event_id,
            "events_read": self.events_read,
            "events_used": len(self.data.screens),
            "train_events": self.train_events,
            "validation_events": self.validation_events,
            "holdout_events": self.holdout_events,
            "evaluation_events": self.evaluation_events,
            "dropped_events": len(self.dropped_event_ids),
            "events_missing_candidates": len(self.partial_event_ids),
            "clips": len(self.clip_ids),
        }


def _one(conn: psycopg.Connection, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The one row of query ``name`` (an aggregate or a function call)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query(QUERIES, name), params)
        return one_row(cur, name)


def stored_mode(conn: psycopg.Connection, mode: str) -> str:
    """'trick' -> 'trick_similarity' (the database's sorting_mode(), with its error message)."""
    return _one(conn, "stored_mode", {"mode": mode})["mode"]


def resolve_variant(conn: psycopg.Connection, variant_id: int | None = None) -> Variant:
    """The variant with that id, else the default variant; it must have a dimension."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query(QUERIES, "variant"), {"variant_id": variant_id}).fetchone()
    if row is None:
        raise VariantNotReady(
            f"no embedding variant {variant_id} (`heaters-db variant list` shows them)"
        )
    if row["dim"] is None:
        raise VariantNotReady(
            f"embedding variant {row['model_name']} / {row['generation_strategy']} has no "
            "embeddings yet (no dimension): embed some clips first"
        )
    return Variant(row["id"], row["model_name"], row["generation_strategy"], int(row["dim"]))


def latest_event_id(conn: psycopg.Connection, mode: str) -> int:
    return int(_one(conn, "latest_event_id", {"mode": mode})["event_id"])


def fetch_vectors(
    conn: psycopg.Connection, variant: Variant, clip_ids: list[int] | None = None, limit: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(clip ids, (n, dim) float32) of the variant: for ``clip_ids``, or a fixed sample of
    ``limit`` clips when clip_ids is None."""
    params: dict[str, Any] = {
        "model_name": variant.model_name,
        "generation_strategy": variant.generation_strategy,
        "dim": variant.dim,
    }
    if clip_ids is None:
        name, params["limit"] = "copy_context_vectors", int(limit)
    else:
        name, params["clip_ids"] = "copy_vectors_of_clips", [int(c) for c in clip_ids]
    with conn.cursor() as cur:
        batches = list(read_vector_rows(cur, query(QUERIES, name), params, variant.dim))
    if not batches:
        return np.zeros(0, dtype=np.int64), np.zeros((0, variant.dim), dtype=np.float32)
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def _variant_clip_count(conn: psycopg.Connection, variant: Variant) -> int:
    row = _one(
        conn,
        "variant_clip_count",
        {
            "model_name": variant.model_name,
            "generation_strategy": variant.generation_strategy,
            "dim": variant.dim,
        },
    )
    return int(row["clips"])


def _referenced_clips(screens: list[dict[str, Any]]) -> set[int]:
    clips: set[int] = set()
    for screen in screens:
        clips.add(screen["anchor_clip_id"])
        clips.update(screen["candidate_clip_ids"] or ())
        clips.update(screen["rejected_clip_ids"] or ())
        if screen["selected_clip_id"] is not None:
            clips.add(screen["selected_clip_id"])
    return clips


def load_training_data(
    conn: psycopg.Connection,
    mode: str,
    variant: Variant,
    through_event_id: int | None = None,
    context_clips: int = DEFAULT_CONTEXT_CLIPS,
) -> LoadedEvents:
    """The mode's sorting events up to ``through_event_id`` (default: the newest) as TrainingData.

    Events whose anchor or chosen clip has no embedding of the variant are dropped (one log line
    lists them); a candidate without an embedding is left off its screen.
    """
    mode = stored_mode(conn, mode)
    if through_event_id is None:
        through_event_id = latest_event_id(conn, mode)
    params = {"mode": mode, "through_event_id": through_event_id}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query(QUERIES, "screens"), params)
        screens = cur.fetchall()
        cur.execute(query(QUERIES, "triplets"), params)
        triplets = cur.fetchall()
    if not screens:
        raise NoTrainingEvents(f"no {mode} sorting events yet")

    referenced = sorted(_referenced_clips(screens))
    ids, vectors = fetch_vectors(conn, variant, referenced)
    whole_library = False
    if context_clips > 0:
        context_ids, context_vectors = fetch_vectors(conn, variant, limit=context_clips)
        extra = ~np.isin(context_ids, ids)
        ids = np.concatenate([ids, context_ids[extra]])
        vectors = np.concatenate([vectors, context_vectors[extra]])
        whole_library = len(context_ids) < context_clips
    if len(ids) == 0:
        raise NoTrainingEvents(
            f"none of the clips in the {mode} sorting events has a {variant.label} embedding"
        )

    data = TrainingData.from_clip_ids(ids.tolist(), vectors, screens, triplets)
    if not whole_library:  # base_vectors is a sample of the library: count it
        data.library_size = max(len(ids), _variant_clip_count(conn, variant))
    kept = {s.event_id for s in data.screens}
    dropped = [s["event_id"] for s in screens if s["event_id"] not in kept]
    known = set(ids.tolist())
    partial = [
        s["event_id"]
        for s in screens
        if s["event_id"] in kept and not set(s["candidate_clip_ids"] or ()) <= known
    ]
    loaded = LoadedEvents(
        mode=mode,
        variant=variant,
        through_event_id=through_event_id,
        data=data,
        clip_ids=ids,
        events_read=len(screens),
        dropped_event_ids=dropped,
        partial_event_ids=partial,
    )
    if dropped or partial:
        log.warning(
            "sorting events refer to clips without base embeddings",
            extra={
                "action": "training_events_dropped",
                "mode": mode,
                "variant": variant.label,
                "dropped_event_ids": dropped[:50],
                "dropped": len(dropped),
                "events_missing_candidates": len(partial),
            },
        )
    if not data.screens:
        raise NoTrainingEvents(
            f"all {len(screens)} {mode} sorting events refer to clips without a {variant.label} embedding"
        )
    log.info("loaded training events", extra={"action": "training_data_loaded", **loaded.summary()})
    return loaded
