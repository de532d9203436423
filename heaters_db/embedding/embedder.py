"""Clips in, vectors out: one code path for the daemon and for heaters' embed task shape.

`embed_clips` decodes the next batch in a thread while the model runs on the current one (the
loop is `heaters_db.embedding.overlap.overlapped`, shared with the daemon and the CLI), captures
each clip's failure in its own result, and records seconds per stage. `run_video_embed` wraps
it for one clip and returns the JSON shape of heaters' `run_embed` task.

The two stages are public so a caller with its own pipeline (heaters_db.embed_jobs, which
also resolves clip paths and writes rows) runs the same code: `decode_stage` (any thread)
and `model_stage` (the thread that owns the model). `EmbedResult` is the one result type of a
clip all the way to the database row and the job's result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from heaters_db.embedding.model import Encoder, load_encoder
from heaters_db.embedding.overlap import overlapped
from heaters_db.embedding.sampling import (
    STRATEGIES,
    DecodedClip,
    NoTrickMetadata,
    UnknownStrategy,
    load_clip_frames,
)
from heaters_db.errors import HeatersError, PermanentJobError

log = logging.getLogger(__name__)

Status = Literal["ok", "error", "skipped"]


@dataclass(frozen=True)
class ClipVideo:
    """One clip to embed: its id, a local video file, and what the strategies may need."""

    clip_id: int
    path: Path | str
    processing_metadata: dict[str, Any] | None = None
    start_time_seconds: float | None = None
    end_time_seconds: float | None = None


@dataclass
class EmbedResult:
    """What happened to one clip.

    status: "ok" (embedding set), "skipped" (the strategy does not apply, e.g. no trick
    metadata), or "error" (message says why). seconds: per stage ("decode", "preprocess",
    "model" = this clip's share of its batch, "total"). A window variant's result has
    `embedding` (windows, dim) and `windows`, their spans in seconds.
    """

    clip_id: int
    status: Status
    embedding: np.ndarray | None = None
    message: str | None = None
    error_type: str | None = None
    frame_indices: list[int] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    permanent: bool = False  # the error can never go away as the input stands (PermanentJobError)
    traceback: str | None = None  # where an error that is not a clip problem happened
    model_version: str | None = None
    windows: list[tuple[float, float]] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def error(self) -> str:
        """`Type: message`, what the queue stores as last_error."""
        return f"{self.error_type}: {self.message}" if self.error_type else str(self.message)

    @classmethod
    def failure(
        cls,
        clip_id: int,
        error: BaseException,
        seconds: dict[str, float] | None = None,
        *,
        status: Status = "error",
        message: str | None = None,
        traceback: str | None = None,
        permanent: bool | None = None,
    ) -> EmbedResult:
        """A result that says why `error` ended the clip (permanent, unless told: a
        PermanentJobError)."""
        return cls(
            clip_id=clip_id,
            status=status,
            message=message or str(error) or type(error).__name__,
            error_type=type(error).__name__,
            seconds=dict(seconds or {}),
            permanent=isinstance(error, PermanentJobError) if permanent is None else permanent,
            traceback=traceback,
        )


@dataclass
class Decoded:
    """A clip after `decode_stage`: its frames, or the failure result that ends it early."""

    item: ClipVideo
    clip: DecodedClip | None
    failure: EmbedResult | None
    decode_seconds: float


def decode_stage(item: ClipVideo, strategy: str, num_frames: int, shortest_edge: int) -> Decoded:
    """Decode one clip's frames for `strategy` (thread-safe; run it in a pool).

    Never raises for a clip problem: a clip without trick metadata becomes a "skipped"
    failure, any other error an "error" failure.
    """
    started = time.perf_counter()
    try:
        clip = load_clip_frames(
            item.path,
            strategy,
            num_frames,
            shortest_edge,
            metadata=item.processing_metadata,
            clip_times=(item.start_time_seconds, item.end_time_seconds),
        )
        return Decoded(item, clip, None, time.perf_counter() - started)
    except NoTrickMetadata as error:
        status: Status = "skipped"
        failure_error: Exception = error
    except HeatersError as error:
        status = "error"
        failure_error = error
    except Exception as error:  # one bad clip must not stop the batch; keep the cause
        log.exception(
            "unexpected decode failure",
            extra={"action": "decode_clip", "clip_id": item.clip_id, "path": str(item.path)},
        )
        status = "error"
        failure_error = error
    elapsed = time.perf_counter() - started
    seconds = {"decode": elapsed, "total": elapsed}
    failure = EmbedResult.failure(item.clip_id, failure_error, seconds, status=status)
    return Decoded(item, None, failure, elapsed)


def model_stage(encoder: Encoder, decoded: Sequence[Decoded]) -> list[EmbedResult]:
    """Crop/normalise and embed one batch of decoded clips in a single model call.

    Results come back in input order; decode failures pass through unchanged.
    """
    results: dict[int, EmbedResult] = {}
    ready: list[tuple[int, Decoded, torch.Tensor, float]] = []
    for position, entry in enumerate(decoded):
        if entry.failure is not None:
            results[position] = entry.failure
            continue
        assert entry.clip is not None
        started = time.perf_counter()
        # uint8 frames travel to the device (4x smaller than float), then crop and normalise there.
        frames = entry.clip.frames.to(encoder.device_used, non_blocking=True)
        ready.append(
            (position, entry, encoder.preprocessing(frames), time.perf_counter() - started)
        )

    if ready:
        started = time.perf_counter()
        try:
            vectors = encoder.embed(torch.stack([pixels for _, _, pixels, _ in ready]))
            model_error = None
        except Exception as error:  # the whole batch failed in the model; report it per clip
            log.exception("model failure", extra={"action": "embed_batch", "clips": len(ready)})
            vectors, model_error = None, error
        model_share = (time.perf_counter() - started) / len(ready)
        for row, (position, entry, _, preprocess_seconds) in enumerate(ready):
            assert entry.clip is not None
            seconds = {
                "decode": entry.decode_seconds,
                "preprocess": preprocess_seconds,
                "model": model_share,
            }
            seconds["total"] = sum(seconds.values())
            if model_error is not None:
                results[position] = EmbedResult(
                    clip_id=entry.item.clip_id,
                    status="error",
                    message=f"model failed: {model_error}",
                    error_type=type(model_error).__name__,
                    frame_indices=entry.clip.frame_indices,
                    seconds=seconds,
                )
            else:
                assert vectors is not None
                results[position] = EmbedResult(
                    clip_id=entry.item.clip_id,
                    status="ok",
                    embedding=vectors[row],
                    frame_indices=entry.clip.frame_indices,
                    seconds=seconds,
                )
    return [results[position] for position in range(len(decoded))]


def embed_clips(
    encoder: Encoder,
    items: Sequence[ClipVideo],
    strategy: str,
    num_frames: int,
    *,
    batch_size: int = 4,
    decode_workers: int = 2,
) -> list[EmbedResult]:
    """Embed `items` with `strategy`; one result per item, in order.

    While the model runs on batch i, a thread pool decodes batch i+1. A clip that cannot be
    decoded gets an "error" result, one without trick metadata a "skipped" result; the others
    still get embedded.
    """
    if strategy not in STRATEGIES:
        raise UnknownStrategy(
            f"unknown generation strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}"
        )
    if num_frames < encoder.tubelet_size or num_frames % encoder.tubelet_size:
        raise ValueError(
            f"num_frames={num_frames} must be a positive multiple of the tubelet size {encoder.tubelet_size}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    batches = [list(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]
    if not batches:
        return []
    edge = encoder.preprocessing.shortest_edge
    results: list[EmbedResult] = []
    with ThreadPoolExecutor(max_workers=decode_workers, thread_name_prefix="decode") as pool:

        def start(batch: list[ClipVideo]) -> list[Future[Decoded]]:
            return [pool.submit(decode_stage, item, strategy, num_frames, edge) for item in batch]

        def run(pending: list[Future[Decoded]]) -> list[EmbedResult]:
            return model_stage(encoder, [future.result() for future in pending])

        for batch_results in overlapped(batches, start, _wait_all, run):
            for result in batch_results:
                log.info(
                    "clip embedded" if result.ok else f"clip {result.status}",
                    extra={
                        "action": "embed_clip",
                        "clip_id": result.clip_id,
                        "status": result.status,
                        "strategy": strategy,
                        "reason": result.message,
                        "seconds": {k: round(v, 4) for k, v in result.seconds.items()},
                    },
                )
            results.extend(batch_results)
    return results


def _wait_all(futures: list[Future[Decoded]]) -> None:
    for future in futures:
        future.exception()


def run_video_embed(
    clip_id: int,
    video_path: str | Path,
    model_name: str,
    generation_strategy: str,
    num_frames: int = 64,
    device: str = "auto",
    *,
    processing_metadata: dict[str, Any] | None = None,
    start_time_seconds: float | None = None,
    end_time_seconds: float | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Embed one clip's video and return heaters' `run_embed` result shape.

    {"status": "success" | "skipped" | "error", "clip_id", "model_name", "generation_strategy",
     "embedding": [float, ...] (success only), "metadata": {...}, "error": message (otherwise)}.
    Never raises for a clip-level problem; a model that cannot load is an "error" result too.
    Extra keyword arguments (heaters passes its own) are ignored.
    """
    started = time.perf_counter()
    base: dict[str, Any] = {
        "clip_id": clip_id,
        "model_name": model_name,
        "generation_strategy": generation_strategy,
    }
    try:
        encoder = load_encoder(model_name, device=device)
        item = ClipVideo(
            clip_id=clip_id,
            path=Path(video_path),
            processing_metadata=processing_metadata,
            start_time_seconds=start_time_seconds,
            end_time_seconds=end_time_seconds,
        )
        (result,) = embed_clips(encoder, [item], generation_strategy, num_frames, batch_size=1)
    except (HeatersError, ValueError) as error:
        return {
            **base,
            "status": "error",
            "error": str(error),
            "error_type": type(error).__name__,
            "metadata": {"clip_id": clip_id, "processing_seconds": time.perf_counter() - started},
        }
    metadata: dict[str, Any] = {
        "clip_id": clip_id,
        "model_type": "vjepa2",
        "embedding_dimension": encoder.dim,
        "device_used": encoder.device_used,
        "model_version": encoder.model_version,
        "num_frames": num_frames,
        "crop_size": encoder.crop_size,
        "processing_seconds": time.perf_counter() - started,
        "stage_seconds": result.seconds,
        "backend": "transformers",
    }
    if result.frame_indices is not None:
        metadata["frame_indices"] = result.frame_indices
    if result.ok:
        assert result.embedding is not None
        return {
            **base,
            "status": "success",
            "embedding": [float(value) for value in result.embedding],
            "metadata": metadata,
        }
    return {
        **base,
        "status": "error" if result.status == "error" else "skipped",
        "error": result.message,
        "error_type": result.error_type,
        "metadata": metadata,
    }
