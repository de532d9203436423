"""Which frames of a clip the model sees, decoded straight to the size the model wants.

Three strategies (the `generation_strategy` values heaters-db adds):

- `video_full_clip`: `num_frames` frames spread evenly in time over the whole clip.
- `video_centered_64`: `num_frames` consecutive frames around the clip's midpoint.
- `video_trick_window`: `num_frames` consecutive frames centred on the trick time in
  `processing_metadata` (`trick_apex_time`, else `trick_initiation_time`).

Times map to frames through the decoder's own per-frame timestamps, so variable frame rate
works. A clip shorter than `num_frames` is stretched evenly over time (frames repeat).

Decoding (PyAV to open, decord for only the chosen frames) is heaters_db.embedding.decode.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from heaters_db.embedding.decode import OpenedVideo

# Re-exported: callers know the decoding errors and probes from here.
from heaters_db.embedding.decode import UnusableVideo as UnusableVideo
from heaters_db.embedding.decode import VideoDecodeError as VideoDecodeError
from heaters_db.embedding.decode import VideoInfo as VideoInfo
from heaters_db.embedding.decode import decode_size as decode_size
from heaters_db.embedding.decode import open_video as open_video
from heaters_db.embedding.decode import probe_video as probe_video
from heaters_db.errors import HeatersError

log = logging.getLogger(__name__)

FULL_CLIP = "video_full_clip"
CENTERED = "video_centered_64"
TRICK_WINDOW = "video_trick_window"
STRATEGIES = (FULL_CLIP, CENTERED, TRICK_WINDOW)

# processing_metadata keys holding the trick time, in order of preference (seconds).
TRICK_TIME_KEYS = ("trick_apex_time", "trick_initiation_time")


class NoTrickMetadata(HeatersError):
    """The clip has no usable trick time, so the trick-window strategy cannot place its frames."""


class UnknownStrategy(HeatersError):
    """The generation strategy is not one of the video strategies heaters-db knows."""


@dataclass(frozen=True)
class DecodedClip:
    """Frames chosen by a strategy, with where they came from (for logs and metadata)."""

    frames: torch.Tensor  # uint8 (T, H, W, 3), RGB
    frame_indices: list[int]
    frame_times: list[float]  # seconds from the clip start, one per frame
    info: VideoInfo
    center_time: float | None  # the trick time or midpoint a window was centred on


def resolve_trick_time(
    metadata: dict[str, Any] | None,
    clip_duration: float,
    clip_times: tuple[float | None, float | None] | None = None,
) -> float:
    """Trick time in seconds from the clip start.

    The first key of TRICK_TIME_KEYS present decides. A value inside [0, clip_duration] is
    clip time. A value outside the clip but inside [start_time_seconds, end_time_seconds]
    (`clip_times`) is source-video time and is shifted by start_time_seconds. Anything else
    raises NoTrickMetadata with the reason.
    """
    metadata = metadata or {}
    key = next((k for k in TRICK_TIME_KEYS if metadata.get(k) is not None), None)
    if key is None:
        raise NoTrickMetadata(
            f"no trick metadata: processing_metadata has none of {', '.join(TRICK_TIME_KEYS)}"
        )
    raw = metadata[key]
    try:
        value = float(raw)
    except (TypeError, ValueError) as error:
        raise NoTrickMetadata(f"no trick metadata: {key}={raw!r} is not a number") from error
    if not math.isfinite(value):
        raise NoTrickMetadata(f"no trick metadata: {key}={raw!r} is not a finite number")
    if 0.0 <= value <= clip_duration:
        return value
    start, end = clip_times if clip_times is not None else (None, None)
    if start is not None and end is not None and start <= value <= end:
        shifted = value - start
        if shifted > clip_duration:
            # The file is shorter than its source range says (a trimmed export, say): the
            # window goes to the file's end, and the operator should know the metadata is off.
            log.warning(
                "%s=%g s is %.3f s into the clip, past the file's end (%.3f s): the trick "
                "window is centred on the end",
                key,
                value,
                shifted,
                clip_duration,
                extra={"action": "trick_time_past_end"},
            )
        return min(max(shifted, 0.0), clip_duration)
    source = (
        f" or source range [{start:g}, {end:g}] s" if start is not None and end is not None else ""
    )
    raise NoTrickMetadata(
        f"no trick metadata: {key}={value:g} s lies outside the clip (0-{clip_duration:.3f} s){source}"
    )


def _frame_at(starts: np.ndarray, seconds: float) -> int:
    """Index of the frame shown at `seconds` (the last frame starting at or before it)."""
    index = int(np.searchsorted(starts, seconds, side="right")) - 1
    return min(max(index, 0), len(starts) - 1)


def _spread(starts: np.ndarray, end: float, num_frames: int) -> np.ndarray:
    """`num_frames` frames at the centres of equal time slices of [starts[0], end]."""
    begin = float(starts[0])
    span = max(end - begin, 0.0)
    targets = begin + (np.arange(num_frames) + 0.5) * span / num_frames
    indices = np.searchsorted(starts, targets, side="right") - 1
    return np.clip(indices, 0, len(starts) - 1)


def _window(center: int, frame_count: int, num_frames: int) -> np.ndarray:
    """`num_frames` consecutive indices with `center` at position num_frames // 2.

    Near the ends of the clip the window slides inward rather than repeating edge frames, so
    the trick stays inside the window but may sit off-centre.
    """
    first = min(max(center - num_frames // 2, 0), frame_count - num_frames)
    return np.arange(first, first + num_frames)


def select_indices(
    strategy: str,
    starts: np.ndarray,
    end: float,
    num_frames: int,
    center_time: float | None = None,
) -> np.ndarray:
    """Frame indices for `strategy` given each frame's start time and the clip's end time.

    `center_time` is required for the trick window (seconds from clip start). Pure: the
    decoder is not involved, so unit tests can feed any timestamps.
    """
    if strategy not in STRATEGIES:
        raise UnknownStrategy(
            f"unknown generation strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}"
        )
    if num_frames < 1:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    starts = np.asarray(starts, dtype=np.float64)
    frame_count = len(starts)
    if frame_count == 0:
        raise ValueError("select_indices needs at least one frame")
    if strategy == FULL_CLIP or frame_count < num_frames:
        return _spread(starts, end, num_frames)
    if strategy == CENTERED:
        center_time = (float(starts[0]) + end) / 2
    elif center_time is None:
        raise NoTrickMetadata("no trick metadata: no trick time given for the trick window")
    return _window(_frame_at(starts, center_time), frame_count, num_frames)


# decord prefixes its messages with "[hh:mm:ss] /path/file.cc:123: " and may append a stack.
def strategy_frames(
    video: OpenedVideo,
    strategy: str,
    num_frames: int,
    metadata: dict[str, Any] | None = None,
    clip_times: tuple[float | None, float | None] | None = None,
) -> tuple[np.ndarray, float | None]:
    """(frame indices, centre time) that `strategy` picks in an opened video."""
    if strategy not in STRATEGIES:
        raise UnknownStrategy(
            f"unknown generation strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}"
        )
    center_time = None
    if strategy == TRICK_WINDOW:
        center_time = resolve_trick_time(metadata, video.end, clip_times)
    elif strategy == CENTERED:
        center_time = (float(video.starts[0]) + video.end) / 2
    return select_indices(strategy, video.starts, video.end, num_frames, center_time), center_time


def load_clip_frames(
    path: str | Path,
    strategy: str,
    num_frames: int,
    shortest_edge: int | None,
    metadata: dict[str, Any] | None = None,
    clip_times: tuple[float | None, float | None] | None = None,
) -> DecodedClip:
    """Choose frames with `strategy` and decode them with their short side at `shortest_edge`
    (None: the displayed size). See `decode_frames`; this also returns indices and times."""
    if strategy not in STRATEGIES:
        raise UnknownStrategy(
            f"unknown generation strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}"
        )
    video = open_video(path, shortest_edge)
    indices, center_time = strategy_frames(video, strategy, num_frames, metadata, clip_times)
    (frames,) = video.read([indices])
    return DecodedClip(
        frames=frames,
        frame_indices=[int(i) for i in indices],
        frame_times=[float(video.starts[i]) for i in indices],
        info=video.info,
        center_time=center_time,
    )


def decode_frames(
    path: str | Path, strategy: str, num_frames: int, shortest_edge: int | None, **clip: Any
) -> torch.Tensor:
    """uint8 tensor (num_frames, H, W, 3), RGB, upright, short side = `shortest_edge`.

    `clip`: load_clip_frames' metadata= (the clip's processing_metadata, trick window only) and
    clip_times= ((start, end) of the clip in its source video, to read a trick time given in
    source-video time).
    Raises ClipFileMissing, VideoDecodeError, NoTrickMetadata or UnknownStrategy.
    """
    return load_clip_frames(path, strategy, num_frames, shortest_edge, **clip).frames
