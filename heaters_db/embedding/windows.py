"""Window variants: a clip's moments as vectors, one per window of `window_seconds`.

A window variant (strategy `video_moment_windows`) cuts a clip into windows of
`window_seconds`, one every `window_stride_seconds` (the last one ends where the clip ends),
and spreads its `num_frames` evenly over each window. A clip shorter than one window is one
window.

`decode_clip_requests` decodes what several variants of one clip need in ONE pass over the file
(each frame once): the full-clip strategies and every window. `embed_windows` turns a decoded
clip's windows into vectors with batched model calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from heaters_db.embedding.model import Encoder
from heaters_db.embedding.sampling import DecodedClip, open_video, strategy_frames
from heaters_db.variant_shape import MAX_WINDOW_FRAMES_PER_CLIP, BadVariantShape, check_shape

WINDOWS = "video_moment_windows"
# A trick lasts 1-2 s: a 1.5 s window holds one, a 0.5 s stride places one within 0.25 s.
DEFAULT_WINDOW_SECONDS = 1.5
DEFAULT_STRIDE_SECONDS = 0.5
DEFAULT_WINDOW_FRAMES = 16
# Windows per model call (16 windows x 16 frames of ViT-L fit a 24 GB GPU in bf16).
WINDOW_BATCH = 16


@dataclass(frozen=True)
class WindowRequest:
    """One window variant's shape."""

    num_frames: int
    window_seconds: float
    stride_seconds: float


@dataclass(frozen=True)
class StrategyRequest:
    """One clip-level strategy (video_full_clip, ...) and what it may need."""

    strategy: str
    num_frames: int
    metadata: dict[str, Any] | None = None
    clip_times: tuple[float | None, float | None] | None = None


@dataclass(frozen=True)
class WindowedClip(DecodedClip):
    """Frames of every window, window after window: frames[i*T:(i+1)*T] belong to spans[i]."""

    spans: list[tuple[float, float]] | None = None


def window_spans(
    start: float, end: float, window_seconds: float, stride_seconds: float
) -> list[tuple[float, float]]:
    """(start, end) of each window of [start, end], in seconds rounded to the millisecond.

    Raises BadVariantShape for a window or stride that is not finite, not positive or below
    MIN_STRIDE_SECONDS (a row written with SQL around `variant add`'s checks).
    """
    check_shape(None, window_seconds, stride_seconds)
    if end - start <= window_seconds:
        return [(round(start, 3), round(end, 3))]
    spans = []
    begin = start
    while begin + window_seconds < end - 1e-6:
        spans.append((round(begin, 3), round(begin + window_seconds, 3)))
        begin += stride_seconds
    last = (round(end - window_seconds, 3), round(end, 3))
    if spans[-1][0] < last[0]:
        spans.append(last)
    return spans


def window_indices(
    starts: np.ndarray, spans: list[tuple[float, float]], num_frames: int
) -> np.ndarray:
    """(len(spans), num_frames) frame indices: frames at the centres of equal slices of each
    window (frames repeat when a window holds fewer frames than num_frames)."""
    starts = np.asarray(starts, dtype=np.float64)
    rows = []
    for begin, end in spans:
        targets = begin + (np.arange(num_frames) + 0.5) * (end - begin) / num_frames
        rows.append(np.clip(np.searchsorted(starts, targets, side="right") - 1, 0, len(starts) - 1))
    return np.stack(rows)


def decode_clip_requests(
    path: str | Path,
    shortest_edge: int | None,
    requests: list[StrategyRequest | WindowRequest],
) -> list[DecodedClip | Exception]:
    """Decode, in one pass over `path`, the frames each request needs.

    One result per request, in order: a DecodedClip (a WindowedClip for a WindowRequest), or
    the exception that request met (e.g. NoTrickMetadata) while the others still decode. An
    error opening or decoding the file itself raises: it concerns every request.
    """
    video = open_video(path, shortest_edge)
    plans: list[tuple[np.ndarray, Any] | Exception] = []
    for request in requests:
        try:
            if isinstance(request, WindowRequest):
                spans = window_spans(
                    float(video.starts[0]),
                    video.end,
                    request.window_seconds,
                    request.stride_seconds,
                )
                _refuse_too_many_frames(path, video.end - float(video.starts[0]), spans, request)
                plans.append((window_indices(video.starts, spans, request.num_frames), spans))
            else:
                plans.append(
                    strategy_frames(
                        video, request.strategy, request.num_frames, request.metadata,
                        request.clip_times,
                    )
                )  # fmt: skip
        except Exception as error:  # this request fails; the others still decode
            plans.append(error)
    index_sets = [plan[0] for plan in plans if not isinstance(plan, Exception)]
    frames = iter(video.read(index_sets)) if index_sets else iter(())
    results: list[DecodedClip | Exception] = []
    for request, plan in zip(requests, plans, strict=True):
        if isinstance(plan, Exception):
            results.append(plan)
            continue
        indices, extra = plan
        flat = [int(i) for i in np.asarray(indices).ravel()]
        times = [float(video.starts[i]) for i in flat]
        if isinstance(request, WindowRequest):
            results.append(WindowedClip(next(frames), flat, times, video.info, None, spans=extra))
        else:
            results.append(DecodedClip(next(frames), flat, times, video.info, extra))
    return results


def _refuse_too_many_frames(
    path: str | Path, seconds: float, spans: list[tuple[float, float]], request: WindowRequest
) -> None:
    frames = len(spans) * request.num_frames
    if frames > MAX_WINDOW_FRAMES_PER_CLIP:
        longest = MAX_WINDOW_FRAMES_PER_CLIP // request.num_frames * request.stride_seconds
        raise BadVariantShape(
            f"{path}: {seconds:.1f} s of clip makes {len(spans)} windows of "
            f"{request.num_frames} frames ({frames} frames, more than the "
            f"{MAX_WINDOW_FRAMES_PER_CLIP} one clip may hold): clips up to about {longest:.0f} s "
            f"fit this variant; cut the clip, or use a longer stride or fewer frames per window"
        )


def embed_windows(
    encoder: Encoder, clips: list[WindowedClip], batch: int = WINDOW_BATCH
) -> list[np.ndarray]:
    """(windows, dim) float32 vectors per clip; all windows of all clips in batches of `batch`.

    Each batch is moved to the device and preprocessed on its own: the float pixels of a long
    clip's windows (4 bytes a value, after the crop) never sit in memory all at once.
    """
    pending: list[torch.Tensor] = []  # uint8 frames of whole windows, (T, H, W, 3) each
    counts = []
    for clip in clips:
        assert clip.spans is not None
        count = len(clip.spans)
        pending += list(clip.frames.reshape(count, -1, *clip.frames.shape[1:]))
        counts.append(count)
    if not pending:
        return []
    vectors = np.concatenate(
        [_embed_batch(encoder, pending[i : i + batch]) for i in range(0, len(pending), batch)]
    )
    offsets = np.cumsum([0, *counts])
    return [vectors[offsets[i] : offsets[i + 1]] for i in range(len(clips))]


def _embed_batch(encoder: Encoder, windows: list[torch.Tensor]) -> np.ndarray:
    # One window at a time: windows of different clips may differ in decoded size until the
    # preprocessing crops them to the same square.
    pixels = [
        encoder.preprocessing(window.to(encoder.device_used, non_blocking=True))
        for window in windows
    ]  # (T, 3, crop, crop) each
    return encoder.embed(torch.stack(pixels))
