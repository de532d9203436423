"""Real test videos, written with PyAV (H.264 via libx264), and broken files for error paths.

The API other tests rely on:

- `write_video(path, frames=None, *, num_frames, size, fps, rotate, vfr, ...)` writes an MP4.
- Frame builders: `moving_bar`, `index_brightness` (a frame's grey level encodes its index;
  read it back with `brightness_index`), `corner_marker` (white square top-left, for rotation).
- `frame_times(num_frames, fps, vfr)`: the presentation times `write_video` gives each frame.
- Broken inputs: `write_zero_byte`, `write_truncated`, `write_text_file`, `write_audio_only`.

Sizes are (width, height), like ffmpeg. Keep videos tiny: tests decode them for real.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

FrameSource = np.ndarray | Iterable[np.ndarray] | Callable[[int, int, int], np.ndarray]

# Grey levels for `index_brightness`: start above black and step far enough apart that H.264
# and colour-conversion rounding (up to two levels) cannot blur two indices together.
# Indices 0-47 fit in 8 bits.
BRIGHTNESS_BASE = 16
BRIGHTNESS_STEP = 5

# The variable-frame-rate pattern: frame durations alternate long/short (in units of 1/fps).
VFR_DURATIONS = (1.5, 0.5)


def moving_bar(index: int, width: int, height: int) -> np.ndarray:
    """A white vertical bar that moves one step right per frame, on a colour gradient."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[..., 0] = np.linspace(0, 200, width, dtype=np.uint8)[None, :]
    frame[..., 1] = np.linspace(0, 200, height, dtype=np.uint8)[:, None]
    frame[..., 2] = 60
    bar = max(2, width // 8)
    left = (index * max(1, width // 16)) % max(1, width - bar)
    frame[:, left : left + bar] = 255
    return frame


def index_brightness(index: int, width: int, height: int) -> np.ndarray:
    """A flat grey frame whose level encodes `index` (see `brightness_index`)."""
    level = BRIGHTNESS_BASE + BRIGHTNESS_STEP * index
    if level > 255:
        raise ValueError(f"index {index} too large for index_brightness (max level 255)")
    return np.full((height, width, 3), level, np.uint8)


def brightness_index(frame: np.ndarray) -> int:
    """Inverse of `index_brightness` for a decoded (possibly resized) frame."""
    level = float(np.asarray(frame, dtype=np.float64).mean())
    return int(round((level - BRIGHTNESS_BASE) / BRIGHTNESS_STEP))


def corner_marker(index: int, width: int, height: int) -> np.ndarray:
    """Black frame with a white square in the top-left corner (a quarter of the short edge)."""
    frame = np.zeros((height, width, 3), np.uint8)
    side = max(2, min(width, height) // 4)
    frame[:side, :side] = 255
    return frame


def frame_times(num_frames: int, fps: float = 10.0, vfr: bool = False) -> list[float]:
    """Presentation time (seconds) of each frame as `write_video` writes it."""
    if not vfr:
        return [i / fps for i in range(num_frames)]
    times, now = [], 0.0
    for i in range(num_frames):
        times.append(now)
        now += VFR_DURATIONS[i % len(VFR_DURATIONS)] / fps
    return times


def write_video(
    path: str | Path,
    frames: FrameSource | None = None,
    *,
    num_frames: int = 16,
    size: tuple[int, int] = (64, 48),
    fps: float = 10.0,
    codec: str = "libx264",
    rotate: int | None = None,
    vfr: bool = False,
    crf: int = 12,
    faststart: bool = False,
) -> Path:
    """Write an MP4 and return its path.

    frames: an array (T, H, W, 3) uint8, an iterable of (H, W, 3) arrays, or a builder
        `f(index, width, height)`; default `moving_bar`. With a builder, `num_frames` and `size`
        apply; with arrays, they come from the arrays.
    rotate: clockwise display rotation in degrees, as phones write it (the old `rotate` tag;
        stored as a display matrix, which PyAV reports as `frame.rotation == -rotate`).
    vfr: variable frame rate; frame times follow `frame_times(..., vfr=True)`.
    Odd sizes are written as yuv444p (4:2:0 needs even sizes); others as yuv420p.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if frames is None:
        frames = moving_bar
    if callable(frames):
        width, height = size
        builder = frames
        frame_list = [builder(i, width, height) for i in range(num_frames)]
    else:
        frame_list = [np.ascontiguousarray(f, dtype=np.uint8) for f in frames]
        if not frame_list:
            raise ValueError("write_video needs at least one frame")
        height, width = frame_list[0].shape[:2]

    odd = width % 2 or height % 2
    options = {"crf": str(crf)}
    container_options = {"movflags": "faststart"} if faststart else {}
    # Millisecond time base: exact for both the constant and the variable frame-rate patterns.
    time_base = Fraction(1, 1000)
    times = frame_times(len(frame_list), fps, vfr)
    with av.open(str(path), "w", options=container_options) as container:
        stream = container.add_stream(
            codec, rate=Fraction(fps).limit_denominator(1000), options=options
        )
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv444p" if odd else "yuv420p"
        stream.codec_context.time_base = time_base
        if rotate:
            stream.set_display_rotation(-rotate)
        for frame_array, seconds in zip(frame_list, times, strict=True):
            frame = av.VideoFrame.from_ndarray(frame_array, format="rgb24")
            frame.pts = round(seconds * 1000)
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_two_camera_video(
    path: str | Path,
    main: tuple[int, int, int] = (96, 64, 30),
    rear: tuple[int, int, int] = (32, 32, 4),
    rear_first: bool = True,
) -> Path:
    """An MP4 with two H.264 video streams, as a dual-camera dashcam writes: the main camera's
    frames encode their index (`index_brightness`), the small rear camera's are moving bars.
    Each stream is (width, height, frames)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cameras = [(rear, moving_bar), (main, index_brightness)]
    if not rear_first:
        cameras.reverse()
    with av.open(str(path), "w") as container:
        streams = []
        for (width, height, count), builder in cameras:
            stream = container.add_stream("libx264", rate=10, options={"crf": "12"})
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            streams.append((stream, width, height, count, builder))
        for index in range(max(count for _, _, _, count, _ in streams)):
            for stream, width, height, count, builder in streams:
                if index < count:
                    frame = av.VideoFrame.from_ndarray(builder(index, width, height), "rgb24")
                    for packet in stream.encode(frame):
                        container.mux(packet)
        for stream, *_ in streams:
            for packet in stream.encode():
                container.mux(packet)
    return path


SETTLED = 3600.0
"""How long ago the bad files below were last written, by default: long past the decoder's
SETTLING_SECONDS, so they are what they will stay (written_ago=0 is an upload in progress)."""


def _written_ago(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def write_zero_byte(path: str | Path, written_ago: float = SETTLED) -> Path:
    """An empty file with a video name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return _written_ago(path, written_ago)


def write_text_file(path: str | Path, written_ago: float = SETTLED) -> Path:
    """A text file named like a video."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("this is not a video\n" * 64)
    return _written_ago(path, written_ago)


def write_truncated(
    path: str | Path, fraction: float = 0.5, faststart: bool = True, written_ago: float = SETTLED
) -> Path:
    """A real MP4 cut at `fraction` of its bytes.

    With faststart the index (moov) survives and the cut loses frame data: the harder case,
    since the file still opens. Without it the index is lost and the file does not open at all.
    """
    path = Path(path)
    whole = path.with_name(path.stem + ".whole.mp4")
    write_video(whole, num_frames=30, size=(64, 48), faststart=faststart)
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: int(len(data) * fraction)])
    return _written_ago(path, written_ago)


def write_audio_only(path: str | Path, seconds: float = 1.0, sample_rate: int = 16000) -> Path:
    """An MP4 with a single AAC audio stream (a sine tone) and no video."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples_per_frame = 1024
    total = int(seconds * sample_rate)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=sample_rate)
        stream.layout = "mono"
        for start in range(0, total, samples_per_frame):
            t = (np.arange(start, start + samples_per_frame) / sample_rate).astype(np.float32)
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
