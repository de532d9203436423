"""The `embed` job kind: from a clip and a variant to a row in `embeddings`.

One code path for the daemon and for `heaters-db embed --clip` (and, through
`heaters_db.embedding.embedder`, for heaters' `run_video_embed` task shape). Stages, each timed:

- prepare (caller's thread): load the clip and variant rows, the encoder (once per model per
  process), and check that the model's dimension matches the variant's (filling it when NULL).
- decode (thread pool): resolve `clip_filepath` to a local file (media root, absolute path, S3
  cache), then the embedder's decode stage (frames chosen by the strategy, decoded small).
- model (caller's thread): the embedder's batch stage (crop/normalise, one batched model call).
- database (caller's thread): idempotent upsert on (clip_id, model_name, generation_strategy),
  then the variant's HNSW index once per variant per process.

`EmbedPipeline.stream` runs batches through those stages with the next batch decoding while the
model runs on the current one (`heaters_db.embedding.overlap`); the daemon's embed kind
(heaters_db.embed_handler) and `heaters-db embed --clip` both drive it. Each target ends as one
`EmbedResult` (heaters_db.embedding.embedder), from the decode to the row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import psycopg

from heaters_db import moments  # HOOK issue 12: window variants (moments)
from heaters_db.db import one_row
from heaters_db.embed_targets import EmbedTarget
from heaters_db.embedding.embedder import ClipVideo, Decoded, EmbedResult, decode_stage, model_stage
from heaters_db.embedding.model import Encoder, load_encoder
from heaters_db.embedding.overlap import overlapped
from heaters_db.errors import HeatersError
from heaters_db.failures import CONNECTION, PERMANENT, classify
from heaters_db.index_build import build_concurrently
from heaters_db.queries import query
from heaters_db.settings import Settings
from heaters_db.storage import ClipFileMissing, resolve_clip_path
from heaters_db.variant_shape import check_shape

log = logging.getLogger(__name__)

QUERIES = "embeddings.sql"


class VariantDimensionMismatch(HeatersError):
    """The model produces vectors of another dimension than the embedding variant declares."""


@dataclass
class _Pending:
    """A target whose outcome is known already (skipped, failed early) or is being decoded."""

    target: EmbedTarget
    outcome: EmbedResult | None = None  # known before decoding: skipped, or failed early
    encoder: Encoder | None = None
    decoded: Future[Decoded] | None = None


@dataclass
class PendingBatch:
    """Targets submitted to the decode pool; `EmbedPipeline.run` turns them into results."""

    items: list[_Pending]

    @property
    def targets(self) -> list[EmbedTarget]:
        return [item.target for item in self.items]

    def wait(self) -> None:
        """Block until every decode has finished (used before handing jobs back)."""
        for item in self.items:
            if item.decoded is not None:
                item.decoded.exception()


def hide_model_loading_bars() -> None:
    """No per-tensor "Loading weights" bars from transformers (the daemon's log stays
    grep-able; `embed --clip` shows its own bar). Called by the CLI only."""
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:
        return
    transformers_logging.disable_progress_bar()


class EmbedPipeline:
    """Encoders, a decode pool and the database writes of the embed path."""

    def __init__(self, settings: Settings, device: str | None = None, decode_workers: int = 2):
        self.settings = settings
        self.device = device or settings.device
        self._pool = ThreadPoolExecutor(max_workers=decode_workers, thread_name_prefix="decode")
        self._checked_dims: dict[int, int] = {}
        self._indexed: set[int] = set()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> EmbedPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- prepare ------------------------------------------------------------------------
    def encoder(self, model_name: str) -> Encoder:
        """The loaded encoder for `model_name` (load_encoder caches it: one load per process)."""
        return load_encoder(model_name, device=self.device, model_dir=self.settings.model_dir)

    def check_dimension(
        self, conn: psycopg.Connection, target: EmbedTarget, encoder: Encoder
    ) -> None:
        """Fill the variant's dim when NULL; raise VariantDimensionMismatch when it differs."""
        known = self._checked_dims.get(target.variant_id)
        if known is None:
            row = conn.execute(
                query(QUERIES, "claim_variant_dim"),
                {"variant_id": target.variant_id, "dim": encoder.dim},
            ).fetchone()
            if row is None:  # the variant was deleted meanwhile
                raise VariantDimensionMismatch(
                    f"embedding variant {target.variant} no longer exists"
                )
            known = self._checked_dims[target.variant_id] = int(row[0])
        if known != encoder.dim:
            raise VariantDimensionMismatch(
                f"variant {target.variant} (id {target.variant_id}) has dim {known} but "
                f"{encoder.path} produces {encoder.dim}-d vectors; add a new variant for this "
                "model instead of changing the weights behind an existing one"
            )

    def submit(self, conn: psycopg.Connection, targets: Iterable[EmbedTarget]) -> PendingBatch:
        """Start decoding `targets` in the pool; returns at once."""
        items = []
        load_errors: dict[str, HeatersError] = {}  # try a failing model once per batch
        for target in targets:
            item = _Pending(target)
            items.append(item)
            reason = self._skip_reason(target)
            if reason:
                item.outcome = EmbedResult(target.clip_id, "skipped", message=reason)
                continue
            if not str(target.clip_filepath).strip():  # '' is a bad key, not "no video yet"
                missing = ClipFileMissing(f"clip {target.clip_id} has an empty clip_filepath")
                item.outcome = EmbedResult.failure(target.clip_id, missing)
                continue
            try:
                # A shape stored before revision 0028 checked it: refused before the model
                # loads or the variant row is touched (an UPDATE of it would fail that CHECK).
                check_shape(target.num_frames, target.window_seconds, target.window_stride_seconds)
                if target.model_name in load_errors:
                    raise load_errors[target.model_name]
                try:
                    item.encoder = self.encoder(target.model_name)
                except HeatersError as error:
                    load_errors[target.model_name] = error
                    raise
                self.check_dimension(conn, target, item.encoder)
            except HeatersError as error:
                item.outcome = EmbedResult.failure(target.clip_id, error)
                continue
            except psycopg.Error as error:
                # The database refused this target's variant row (a trigger, a constraint):
                # the target's failure, counted against its job. Raised on, it would end
                # the batch in the queue loop, whose reconnect hands the jobs back uncharged,
                # and the same batch would fail the same way forever.
                failure = classify(error)
                if failure == CONNECTION:
                    raise
                item.outcome = EmbedResult.failure(
                    target.clip_id, error, permanent=failure == PERMANENT
                )
                continue
        # HOOK issue 12: one decode future per target; a clip with a window variant decodes once.
        moments.submit_decodes(self._pool, items, self._decode, self.settings)
        return PendingBatch(items)

    @staticmethod
    def _skip_reason(target: EmbedTarget) -> str | None:
        if not target.enabled:
            return f"variant {target.variant} is disabled"
        if target.clip_filepath is None:
            return f"clip {target.clip_id} has no video (clip_filepath is NULL)"
        return None

    def _decode(self, target: EmbedTarget, encoder: Encoder) -> Decoded:
        """Runs in the pool: local file, then the embedder's decode stage."""
        started = time.perf_counter()
        try:
            path = resolve_clip_path(str(target.clip_filepath), self.settings)
        except HeatersError as error:
            elapsed = time.perf_counter() - started
            seconds = {"decode": elapsed, "total": elapsed}
            failure = EmbedResult.failure(target.clip_id, error, seconds)
            return Decoded(_clip_video(target, str(target.clip_filepath)), None, failure, elapsed)
        decoded = decode_stage(
            _clip_video(target, path),
            target.generation_strategy,
            target.num_frames,
            encoder.preprocessing.shortest_edge,
        )
        decoded.decode_seconds = time.perf_counter() - started  # path resolution included
        return decoded

    # ---- model --------------------------------------------------------------------------
    def run(self, batch: PendingBatch) -> list[EmbedResult]:
        """Wait for the decodes, run the model once per variant group; one result per target,
        in the batch's order (`batch.targets`)."""
        results: list[EmbedResult | None] = [item.outcome for item in batch.items]
        groups: dict[int, list[int]] = {}
        for position, item in enumerate(batch.items):
            if item.outcome is None:
                groups.setdefault(item.target.variant_id, []).append(position)
        for positions in groups.values():
            encoder = batch.items[positions[0]].encoder
            assert encoder is not None
            decoded = [_decoded_or_failure(batch.items[p]) for p in positions]
            # HOOK issue 12: a window variant's batch embeds every window of its clips.
            is_window = moments.is_window(batch.items[positions[0]].target)
            stage = moments.model_stage if is_window else model_stage
            for position, result in zip(positions, stage(encoder, decoded), strict=True):
                # What the job records: the model's version, seconds per stage (no "total").
                seconds = {k: v for k, v in result.seconds.items() if k != "total"}
                results[position] = replace(
                    result, seconds=seconds, model_version=encoder.model_version
                )
        assert all(result is not None for result in results)
        return results  # type: ignore[return-value]

    def stream(
        self,
        conn: psycopg.Connection,
        batches: Iterable[Sequence[EmbedTarget]],
        stopped: Callable[[], bool] | None = None,
    ) -> Generator[list[tuple[EmbedTarget, EmbedResult]], None, None]:
        """Each batch's (target, result) pairs; batch i+1 is taken from `batches` and decodes
        while the model runs on batch i. `stopped()`: checked before a decoded batch runs."""
        return overlapped(
            batches,
            lambda targets: self.submit(conn, targets),
            PendingBatch.wait,
            lambda pending: list(zip(pending.targets, self.run(pending), strict=True)),
            stopped,
        )

    # ---- database -----------------------------------------------------------------------
    def store(self, conn: psycopg.Connection, target: EmbedTarget, result: EmbedResult) -> int:
        """Upsert the embedding (idempotent); returns its id (a window variant: how many
        windows). Call inside the caller's transaction so the row and the job's status
        commit together."""
        assert result.ok and result.embedding is not None
        if result.windows is not None:  # HOOK issue 12: windows go to moment_embeddings
            return moments.store_windows(conn, target, result)
        row = conn.execute(
            query(QUERIES, "upsert_embedding"),
            {
                "clip_id": target.clip_id,
                "embedding": np.asarray(result.embedding, dtype=np.float32),
                "model_name": target.model_name,
                "model_version": result.model_version,
                "generation_strategy": target.generation_strategy,
                "embedding_dim": int(result.embedding.shape[-1]),
            },
        ).fetchone()
        assert row is not None
        return int(row[0])

    def ensure_index(self, conn: psycopg.Connection, target: EmbedTarget) -> None:
        """The variant's HNSW index, once per variant per process, after its first embedding.

        Never fails the job: the index only speeds up search. Two daemons racing to create it
        is expected; the loser's error is logged at debug level.
        """
        if target.variant_id in self._indexed:
            return
        try:
            if moments.is_window(target):  # HOOK issue 12: the moment index (plain build)
                with conn.transaction():
                    name = one_row(
                        conn.execute(
                            moments.ensure_index_query(target), {"variant_id": target.variant_id}
                        ),
                        "ensure_moment_index",
                    )[0]
            elif conn.autocommit:  # the daemon: CONCURRENTLY, heaters' inserts never wait
                name = build_concurrently(conn, "variant", target.variant_id)["index"]
            else:
                with conn.transaction():
                    name = one_row(
                        conn.execute(
                            query(QUERIES, "ensure_variant_index"),
                            {"variant_id": target.variant_id},
                        ),
                        "ensure_variant_index",
                    )[0]
        except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable) as error:
            log.debug("index created by another worker: %s", error)
        except psycopg.DatabaseError as error:
            log.warning(
                "could not create the variant's HNSW index: %s",
                error,
                extra={"action": "ensure_variant_index", "variant": target.variant},
            )
            return
        else:
            log.info(
                "variant index ready",
                extra={
                    "action": "ensure_variant_index",
                    "variant": target.variant,
                    "index": name,
                },
            )
        self._indexed.add(target.variant_id)


def _clip_video(target: EmbedTarget, path: str | Path) -> ClipVideo:
    return ClipVideo(
        clip_id=target.clip_id,
        path=path,
        processing_metadata=target.processing_metadata,
        start_time_seconds=target.start_time_seconds,
        end_time_seconds=target.end_time_seconds,
    )


def _decoded_or_failure(item: _Pending) -> Decoded:
    """The decode future's value; a crash inside the pool becomes that clip's error."""
    assert item.decoded is not None
    try:
        return item.decoded.result()
    except Exception as error:
        log.exception("decode crashed", extra={"action": "decode", "clip_id": item.target.clip_id})
        failure = EmbedResult.failure(item.target.clip_id, error)
        return Decoded(_clip_video(item.target, str(item.target.clip_filepath)), None, failure, 0.0)
