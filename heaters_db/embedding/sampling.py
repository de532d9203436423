"""Which frames of a clip the model sees, decoded straight to the size the model wants.

Three strategies (the `generation_strategy` values heaters-db adds):

- `video_full_clip`: `num_frames` frames spread evenly in time over the whole clip.
- `video_centered_64`: `num_frames` consecutive frames around the clip's midpoint.
- `video_trick_window`: `num_frames` consecutive frames centred on the trick time in
  `processing_metadata` (`trick_apex_time`, else `trick_initiation_time`).

Times map to frames through the decoder's own per-frame timestamps, so variable frame rate
works. A clip shorter than `num_frames` is stretched evenly over time (frames repeat).

Decoding: PyAV opens the file first (cheap, and its errors name the cause), then decord
decodes only the chosen frames, scaled by ffmpeg to the model's shortest edge. decord 0.6
applies the display-matrix rotation itself (the size it is given is the displayed size), so
phone videos come out upright without a second pass.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from heaters_db.errors import HeatersError, PermanentJobError
from heaters_db.storage import ClipFileMissing

log = logging.getLogger(__name__)

FULL_CLIP = "video_full_clip"
CENTERED = "video_centered_64"
TRICK_WINDOW = "video_trick_window"
STRATEGIES = (FULL_CLIP, CENTERED, TRICK_WINDOW)

# processing_metadata keys holding the trick time, in order of preference (seconds).
TRICK_TIME_KEYS = ("trick_apex_time", "trick_initiation_time")


class VideoDecodeError(HeatersError):
    """The clip's video file could not be opened or decoded."""


class UnusableVideo(VideoDecodeError, PermanentJobError):
    """The file can never be decoded as it stands (empty, not a media container, no video
    stream): its embed job is dead at once instead of retried."""


class NoTrickMetadata(HeatersError):
    """The clip has no usable trick time, so the trick-window strategy cannot place its frames."""


class UnknownStrategy(HeatersError):
    """The generation strategy is not one of the video strategies heaters-db knows."""


@dataclass(frozen=True)
class VideoInfo:
    """What PyAV reports about a video file, before decoding it with decord.

    `width`/`height` are the displayed size (after rotation); `rotation` is the clockwise
    display rotation in degrees (0, 90, 180 or 270). `frame_count` is the container's count
    (0 when the container does not store one).
    """

    path: Path
    frame_count: int
    fps: float
    width: int
    height: int
    rotation: int
    duration: float
    stored_width: int
    stored_height: int
    codec: str = ""


@dataclass(frozen=True)
class DecodedClip:
    """Frames chosen by a strategy, with where they came from (for logs and metadata)."""

    frames: torch.Tensor  # uint8 (T, H, W, 3), RGB
    frame_indices: list[int]
    frame_times: list[float]  # seconds from the clip start, one per frame
    info: VideoInfo
    center_time: float | None  # the trick time or midpoint a window was centred on


def _import_av() -> Any:
    try:
        import av
    except ImportError as error:  # the `video` extra is missing
        raise VideoDecodeError(
            "PyAV is not installed: install heaters-db[video] to decode clips"
        ) from error
    return av


def _import_decord() -> Any:
    try:
        import decord
    except ImportError as error:
        raise VideoDecodeError(
            "decord is not installed: install heaters-db[video] to decode clips"
        ) from error
    return decord


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ClipFileMissing(f"{path}: video file does not exist")
    if not path.is_file():
        raise UnusableVideo(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise UnusableVideo(f"{path}: file is empty (0 bytes)")


def probe_video(path: str | Path) -> VideoInfo:
    """Open `path` with PyAV, decode its first frame, and describe it.

    Raises ClipFileMissing when the file is absent and VideoDecodeError (message naming the
    file and the cause) when it is empty, not a media container, has no video stream, or
    has no decodable frame.
    """
    av = _import_av()
    path = Path(path)
    _check_file(path)
    try:
        container = av.open(str(path))
    except av.FFmpegError as error:
        raise UnusableVideo(f"{path}: not a readable video container ({error})") from error
    with container:
        if not container.streams.video:
            kinds = sorted({stream.type for stream in container.streams}) or ["none"]
            raise UnusableVideo(f"{path}: no video stream (streams found: {', '.join(kinds)})")
        stream = container.streams.video[0]
        try:
            first = next(container.decode(stream), None)
        except av.FFmpegError as error:
            raise VideoDecodeError(f"{path}: first frame does not decode ({error})") from error
        if first is None:
            raise VideoDecodeError(f"{path}: video stream holds no decodable frame")
        # PyAV reports the display matrix as a counter-clockwise angle; phones and decord speak
        # clockwise. Only quarter turns change the frame's shape; others are treated as upright.
        rotation = int(round(-float(first.rotation or 0))) % 360
        if rotation % 90:
            log.warning(
                "ignoring non-quarter-turn rotation",
                extra={"action": "probe_video", "path": str(path), "rotation": rotation},
            )
            rotation = 0
        stored_width, stored_height = first.width, first.height
        width, height = (
            (stored_height, stored_width)
            if rotation in (90, 270)
            else (stored_width, stored_height)
        )
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        else:
            duration = 0.0
        return VideoInfo(
            path=path,
            frame_count=int(stream.frames or 0),
            fps=fps,
            width=width,
            height=height,
            rotation=rotation,
            duration=duration,
            stored_width=stored_width,
            stored_height=stored_height,
            codec=stream.codec_context.codec.canonical_name or "",
        )


def decode_size(width: int, height: int, shortest_edge: int) -> tuple[int, int]:
    """(width, height) with the short side at `shortest_edge`, aspect kept.

    The long side is truncated, not rounded, exactly as transformers' resize computes it
    (`get_resize_output_image_size`), so decoding at this size equals the processor's resize.
    """
    if width <= height:
        return shortest_edge, max(1, int(shortest_edge * height / width))
    return max(1, int(shortest_edge * width / height)), shortest_edge


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
        return min(max(value - start, 0.0), clip_duration)
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
_DECORD_PREFIX = re.compile(r"^\[[0-9:]+\] \S+:\d+: ")
_DECORD_HINTS = {
    "av_read_frame failed": "the file ends early or its container is corrupt (truncated?)",
    "Error sending packet": "the video data is corrupt",
    "Error reading": "the file cannot be opened",
}


def _decord_cause(error: BaseException) -> str:
    """decord's first message line, without its source-location prefix, plus a plain hint."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    while _DECORD_PREFIX.match(line):
        line = _DECORD_PREFIX.sub("", line, count=1)
    hint = next((h for key, h in _DECORD_HINTS.items() if key in line), None)
    return f"{hint}: {line}" if hint else line


def _timeline(times: np.ndarray, fps: float) -> tuple[np.ndarray, float]:
    """Frame start times and the clip's end from decord's (start, stop) pairs.

    Containers without usable timestamps (missing or all equal) fall back to a constant rate.
    """
    starts = times[:, 0]
    end = float(times[-1, 1])
    usable = np.all(np.isfinite(times)) and (len(starts) == 1 or starts[-1] > starts[0])
    if usable:
        return starts, max(end, float(starts[-1]))
    rate = fps if fps > 0 else 25.0
    return np.arange(len(starts)) / rate, len(starts) / rate


def _rgb(array: np.ndarray, width: int, height: int, path: Path) -> np.ndarray:
    """An (H, W, 3) view of a decord frame.

    decord 0.6 hands back ffmpeg's frame buffer without copying when its row stride is a
    multiple of the width, and then reports stride/width channels (widths 1-4, 6, 8, 12, 16,
    24, 48, 72 give 4 to 96 "channels" including padding). The rows are intact, so the first
    3*width bytes of each row are the picture.
    """
    if array.shape == (height, width, 3):
        return array
    if array.shape[:2] == (height, width) and array.shape[2] > 3:
        return array.reshape(height, -1)[:, : width * 3].reshape(height, width, 3)
    raise VideoDecodeError(
        f"{path}: decoder returned frames of shape {array.shape}, expected {(height, width, 3)}"
    )


def _resize_width(frames: torch.Tensor, width: int) -> torch.Tensor:
    """uint8 (T, H, W', 3) -> (T, H, width, 3), antialiased bilinear like the processor.

    uint8 in channels-last layout takes torch's fast integer path (about 50x faster on CPU
    than float) and rounds the way torchvision's uint8 resize does.
    """
    video = frames.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    resized = F.interpolate(
        video, size=(video.shape[-2], width), mode="bilinear", antialias=True, align_corners=False
    )
    return resized.permute(0, 2, 3, 1).contiguous()


@dataclass
class OpenedVideo:
    """A video opened for decoding at one size: decord's reader and each frame's start time.

    `read` decodes sets of frame indices in one pass (each frame once, however many sets hold
    it), so several strategies or windows of one clip share a decode (heaters_db.embedding.windows).
    """

    path: Path
    info: VideoInfo
    reader: Any
    starts: np.ndarray
    end: float
    width: int
    decode_width: int
    height: int

    def read(self, index_sets: list[np.ndarray]) -> list[torch.Tensor]:
        """uint8 (len(indices), H, W, 3) per set, decoding the union of the sets once."""
        decord = _import_decord()
        unique = sorted({int(i) for indices in index_sets for i in np.asarray(indices).ravel()})
        try:
            decoded = {
                index: _rgb(self.reader[index].asnumpy(), self.decode_width, self.height, self.path)
                for index in unique
            }
        except (RuntimeError, decord.DECORDError) as error:
            raise self.decode_error(error) from error
        frames = []
        for indices in index_sets:
            stacked = torch.from_numpy(
                np.stack([decoded[int(i)] for i in np.asarray(indices).ravel()])
            )
            if self.decode_width != self.width:
                stacked = _resize_width(stacked, self.width)
            frames.append(stacked)
        return frames

    def decode_error(self, error: BaseException) -> VideoDecodeError:
        cause = _decord_cause(error)
        if "cannot find video stream" in cause:
            # PyAV found a video stream, so decord's older bundled ffmpeg lacks the decoder (AV1).
            cause = (
                f"decord has no decoder for {self.info.codec or 'this'} video; re-encode to H.264"
            )
        return VideoDecodeError(f"{self.path}: decoding failed ({cause})")


def open_video(path: str | Path, shortest_edge: int | None) -> OpenedVideo:
    """Probe `path` and open it with decord, its short side at `shortest_edge` (None: as displayed)."""
    path = Path(path)
    info = probe_video(path)
    width, height = (
        decode_size(info.width, info.height, shortest_edge)
        if shortest_edge
        else (info.width, info.height)
    )
    # ffmpeg's scaler, converting to RGB at an even output width, keeps chroma at half the
    # horizontal resolution (it forces full chroma interpolation only for odd widths): colour
    # edges smear over two pixels, far from the processor's full-resolution resize. Decode one
    # column wider instead and take it back to `width` (OpenedVideo.read).
    decode_width = width if width % 2 else width + 1
    decord = _import_decord()
    video = OpenedVideo(path, info, None, np.zeros(0), 0.0, width, decode_width, height)
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), width=decode_width, height=height)
        frame_count = len(reader)
        if frame_count < 1:
            raise VideoDecodeError(f"{path}: decoder found no frames")
        times = np.asarray(reader.get_frame_timestamp(list(range(frame_count))), dtype=np.float64)
    except (RuntimeError, decord.DECORDError) as error:
        raise video.decode_error(error) from error
    starts, end = _timeline(times, info.fps)
    video.reader, video.starts, video.end = reader, starts, end
    return video


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
    path: str | Path,
    strategy: str,
    num_frames: int,
    shortest_edge: int | None,
    metadata: dict[str, Any] | None = None,
    clip_times: tuple[float | None, float | None] | None = None,
) -> torch.Tensor:
    """uint8 tensor (num_frames, H, W, 3), RGB, upright, short side = `shortest_edge`.

    metadata: the clip's processing_metadata (trick window only).
    clip_times: (start_time_seconds, end_time_seconds) of the clip in its source video, used
        to read a trick time given in source-video time.
    Raises ClipFileMissing, VideoDecodeError, NoTrickMetadata or UnknownStrategy.
    """
    return load_clip_frames(path, strategy, num_frames, shortest_edge, metadata, clip_times).frames
