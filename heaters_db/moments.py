"""Moments in the embed path and the database: window variants next to the full-clip ones.

heaters_db.embed_jobs calls in here at marked hooks (one call each):

- `submit_decodes`: every target of a batch gets its decode future; the targets of one clip and
  one model, when a window variant is among them, share ONE decode pass (full clip and all
  windows from the same frames, heaters_db.embedding.windows).
- `model_stage`: a window variant's batch: every window of every clip, batched model calls.
- `store_windows`: a clip's windows replace its earlier ones in moment_embeddings (the
  trigger projects them under the live heads).
- `ensure_index_query`: the name of the index query for a variant.

`project_windows` is the re-projection's hook (heaters_db.learning.reproject): the head's window
projections and their index.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import psycopg

from heaters_db.db import one_row
from heaters_db.embedding.embedder import ClipVideo, Decoded, EmbedResult
from heaters_db.embedding.model import Encoder
from heaters_db.embedding.sampling import NoTrickMetadata
from heaters_db.embedding.windows import (
    WINDOWS,
    StrategyRequest,
    WindowedClip,
    WindowRequest,
    decode_clip_requests,
    embed_windows,
)
from heaters_db.errors import HeatersError
from heaters_db.queries import query
from heaters_db.settings import Settings
from heaters_db.storage import resolve_clip_path

log = logging.getLogger(__name__)

QUERIES = "moments.sql"


def is_window(target: Any) -> bool:
    return target.generation_strategy == WINDOWS


def ensure_index_query(target: Any) -> str:
    """The query that builds a variant's HNSW index: its moment index for a window variant."""
    if is_window(target):
        return query(QUERIES, "ensure_moment_index")
    return query("embeddings.sql", "ensure_variant_index")


def _request(target: Any) -> StrategyRequest | WindowRequest:
    if is_window(target):
        return WindowRequest(
            target.num_frames, float(target.window_seconds), float(target.window_stride_seconds)
        )
    return StrategyRequest(
        target.generation_strategy,
        target.num_frames,
        target.processing_metadata,
        (target.start_time_seconds, target.end_time_seconds),
    )


def _failure(clip_id: int, error: BaseException, seconds: float) -> EmbedResult:
    return EmbedResult(
        clip_id=clip_id,
        status="skipped" if isinstance(error, NoTrickMetadata) else "error",
        message=str(error) or type(error).__name__,
        error_type=type(error).__name__,
        seconds={"decode": seconds, "total": seconds},
    )


def decode_group(targets: Sequence[Any], encoder: Encoder, settings: Settings) -> list[Decoded]:
    """One clip's targets (same model) decoded in one pass; one Decoded per target, in order."""
    started = time.perf_counter()
    first = targets[0]
    item = ClipVideo(
        first.clip_id,
        str(first.clip_filepath),
        first.processing_metadata,
        first.start_time_seconds,
        first.end_time_seconds,
    )
    try:
        path = resolve_clip_path(str(first.clip_filepath), settings)
        clips = decode_clip_requests(
            path, encoder.preprocessing.shortest_edge, [_request(t) for t in targets]
        )
    except Exception as error:  # the file itself: every target of the clip fails alike
        if not isinstance(error, HeatersError):
            log.exception("decode crashed", extra={"action": "decode", "clip_id": first.clip_id})
        elapsed = time.perf_counter() - started
        return [
            Decoded(item, None, _failure(first.clip_id, error, elapsed), elapsed) for _ in targets
        ]
    # One pass served them all: each target is charged an equal share of it.
    elapsed = time.perf_counter() - started
    share = elapsed / len(targets)
    # Operators (and tests) see which variants one decode served: with whole-clip claims
    # (claim_jobs) a clip's full-clip and window variants arrive together, even in batches of 1.
    log.info(
        "one decode pass for %d variant(s)",
        len(targets),
        extra={
            "action": "decode_pass",
            "clip_id": first.clip_id,
            "variant_ids": ",".join(str(t.variant_id) for t in targets),
            "seconds": round(elapsed, 3),
        },
    )
    return [
        Decoded(item, None, _failure(first.clip_id, clip, share), share)
        if isinstance(clip, Exception)
        else Decoded(item, clip, None, share)
        for clip in clips
    ]


def submit_decodes(
    pool: ThreadPoolExecutor,
    items: Sequence[Any],
    decode_one: Callable[[Any, Encoder], Decoded],
    settings: Settings,
) -> None:
    """Give each item that still needs one (`outcome` and `decoded` None, `encoder` set) its
    decode future. A clip whose targets of one model include a window variant decodes once."""
    groups: dict[tuple[int, str], list[Any]] = {}
    for item in items:
        if item.outcome is None and item.decoded is None and item.encoder is not None:
            groups.setdefault((item.target.clip_id, item.target.model_name), []).append(item)
    for group in groups.values():
        if not any(is_window(item.target) for item in group):
            for item in group:
                item.decoded = pool.submit(decode_one, item.target, item.encoder)
            continue
        shared = pool.submit(decode_group, [i.target for i in group], group[0].encoder, settings)
        for position, item in enumerate(group):
            item.decoded = _part_of(shared, position)


def _part_of(shared: Future, position: int) -> Future:
    """A future for element `position` of `shared`'s list result."""
    part: Future = Future()

    def settle(done: Future) -> None:
        error = done.exception()
        if error is not None:
            part.set_exception(error)
        else:
            part.set_result(done.result()[position])

    shared.add_done_callback(settle)
    return part


def model_stage(encoder: Encoder, decoded: Sequence[Decoded]) -> list[EmbedResult]:
    """Embed the windows of a batch of decoded clips of one window variant; results in order."""
    results: dict[int, EmbedResult] = {}
    ready = [(p, d) for p, d in enumerate(decoded) if d.failure is None]
    for position, entry in enumerate(decoded):
        if entry.failure is not None:
            results[position] = entry.failure
    if ready:
        started = time.perf_counter()
        clips = [entry.clip for _, entry in ready]
        try:
            vectors = embed_windows(encoder, clips)  # type: ignore[arg-type]
            model_error = None
        except Exception as error:  # the whole batch failed in the model; report it per clip
            log.exception("model failure", extra={"action": "embed_windows", "clips": len(ready)})
            vectors, model_error = [], error
        share = (time.perf_counter() - started) / len(ready)
        for row, (position, entry) in enumerate(ready):
            clip = entry.clip
            assert isinstance(clip, WindowedClip) and clip.spans is not None
            seconds = {"decode": entry.decode_seconds, "model": share}
            seconds["total"] = sum(seconds.values())
            if model_error is not None:
                results[position] = EmbedResult(
                    clip_id=entry.item.clip_id,
                    status="error",
                    message=f"model failed: {model_error}",
                    error_type=type(model_error).__name__,
                    seconds=seconds,
                )
                continue
            results[position] = EmbedResult(  # (windows, dim) and the windows' spans
                clip_id=entry.item.clip_id,
                status="ok",
                embedding=vectors[row],
                frame_indices=clip.frame_indices,
                seconds=seconds,
                windows=list(clip.spans),
            )
    return [results[position] for position in range(len(decoded))]


def store_windows(conn: psycopg.Connection, target: Any, result: EmbedResult) -> int:
    """Replace the clip's windows of this variant with the result's; returns how many. Call
    inside the caller's transaction so the rows and the job's status commit together."""
    assert result.windows is not None
    vectors = np.asarray(result.embedding, dtype=np.float32)
    conn.execute(
        query(QUERIES, "delete_clip_windows"),
        {"clip_id": target.clip_id, "variant_id": target.variant_id},
    )
    with conn.cursor() as cur:
        cur.executemany(
            query(QUERIES, "insert_window"),
            [
                {
                    "clip_id": target.clip_id,
                    "variant_id": target.variant_id,
                    "start_seconds": start,
                    "end_seconds": end,
                    "embedding": vector,
                    "model_version": result.model_version,
                }
                for (start, end), vector in zip(result.windows, vectors, strict=True)
            ],
        )
    return len(result.windows)


def project_windows(conn: psycopg.Connection, head_id: int) -> dict[str, Any]:
    """The head's window projections (all of them, replaced) and their HNSW index."""
    started = time.perf_counter()
    with conn.transaction():
        (rows,) = one_row(
            conn.execute(query(QUERIES, "project_moment_embeddings"), {"head_id": head_id}),
            "project_moment_embeddings",
        )
    return {"moment_rows": rows, "seconds_moments": round(time.perf_counter() - started, 3)}
