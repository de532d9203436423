"""Synthetic sample clips for the demo, written as real H.264 MP4 files.

Said plainly: these are not snowboard videos. A clip's "spot" is its scene — a background colour
gradient, a stripe texture and a static obstacle bar, fixed per spot. Its "trick" is a motion
pattern of a bright foreground blob (a jump arc, a spin, a slide, ...), fixed per trick, with
per-clip jitter in speed, phase, size and colour. Every trick is filmed at every spot, so "same
trick" and "same spot" are different questions with known answers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Each trick maps normalised time t in [0, 1] (and a per-clip phase) to a blob centre in [0, 1]^2.
TRICKS: dict[str, Callable[[float, float], tuple[float, float]]] = {
    "ollie": lambda t, p: (0.15 + 0.7 * t, 0.75 - 0.5 * math.sin(math.pi * t)),
    "spin": lambda t, p: (
        0.5 + 0.28 * math.cos(2 * math.pi * (2 * t + p)),
        0.5 + 0.28 * math.sin(2 * math.pi * (2 * t + p)),
    ),
    "rail_slide": lambda t, p: (0.1 + 0.8 * t, 0.62),
    "drop_in": lambda t, p: (0.5, 0.1 + 0.8 * t * t),
    "zigzag": lambda t, p: (0.15 + 0.7 * t, 0.5 + 0.3 * math.sin(6 * math.pi * t + p)),
    "manual": lambda t, p: (0.85 - 0.7 * t, 0.85 - 0.7 * t),
    "hop_in_place": lambda t, p: (0.5, 0.7 - 0.35 * abs(math.sin(3 * math.pi * t + p))),
    "carve": lambda t, p: (0.5 + 0.35 * math.sin(2 * math.pi * t + p), 0.2 + 0.6 * t),
}


@dataclass(frozen=True)
class SampleClip:
    identifier: str
    trick: str
    spot: int
    path: Path


def _spot_background(spot: int, size: int) -> np.ndarray:
    """A fixed scene per spot: hue gradient + oriented stripes + a dark obstacle bar."""
    rng = np.random.default_rng(1000 + spot)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = np.array([110.0, 120.0, 130.0]) + rng.uniform(-3, 3, size=3)
    tilt = rng.uniform(-10, 10, size=3)
    image = base + tilt * (xx[..., None] * rng.uniform(-1, 1) + yy[..., None] * rng.uniform(-1, 1))
    angle = rng.uniform(0, math.pi)
    frequency = rng.uniform(4, 14)
    stripes = np.sin(2 * math.pi * frequency * (xx * math.cos(angle) + yy * math.sin(angle)))
    image += 6 * stripes[..., None]
    bar_y = int(size * rng.uniform(0.55, 0.85))
    bar_x0, bar_x1 = sorted(int(size * v) for v in rng.uniform(0.05, 0.95, size=2))
    image[bar_y : bar_y + max(2, size // 24), bar_x0 : max(bar_x1, bar_x0 + size // 4)] = 20
    return np.clip(image, 0, 255).astype(np.uint8)


def _frames(trick: str, spot: int, seed: int, size: int, num_frames: int) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed)
    background = _spot_background(spot, size).astype(np.int16)
    path = TRICKS[trick]
    phase = rng.uniform(0, 1)
    speed = rng.uniform(0.85, 1.15)
    radius = size * rng.uniform(0.18, 0.22)
    colour = np.array([255, rng.uniform(200, 255), rng.uniform(0, 90)])
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(num_frames):
        t = min(1.0, (i / max(num_frames - 1, 1)) * speed)
        cx, cy = path(t, phase)
        mask = (xx - cx * size) ** 2 + (yy - cy * size) ** 2 <= radius**2
        frame = background.copy()
        frame[mask] = colour
        frame += rng.integers(-6, 7, size=frame.shape, dtype=np.int16)  # sensor noise
        yield np.clip(frame, 0, 255).astype(np.uint8)


def write_clip(path: Path, frames: Iterator[np.ndarray], size: int, fps: int) -> None:
    import av  # the `video` extra

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        # Lossless (qp 0): libx264's lossy rate control is not bit-repeatable here (the same
        # frames encode to different bitstreams run to run), and the demo's sorting amplifies a
        # thousandth of a cosine. Lossless, the decoded frames are the frames written (up to the
        # RGB -> YUV 4:2:0 conversion, lossy but deterministic), so a run repeats; ~180 kB a clip.
        stream.options = {"qp": "0", "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_sample_clips(
    directory: Path,
    tricks: int = 6,
    spots: int = 5,
    takes: int = 1,
    size: int = 96,
    fps: int = 15,
    seconds: float = 2.0,
) -> list[SampleClip]:
    """Write tricks x spots x takes clips under directory/clips/; return what each one is."""
    names = list(TRICKS)[:tricks]
    clips = []
    for trick_index, trick in enumerate(names):
        for spot in range(spots):
            for take in range(takes):
                identifier = f"{trick}_spot{spot}_take{take}"
                path = directory / "clips" / f"{identifier}.mp4"
                seed = (trick_index * 1000 + spot) * 100 + take
                frames = _frames(trick, spot, seed, size, int(fps * seconds))
                write_clip(path, frames, size, fps)
                clips.append(SampleClip(identifier, trick, spot, path))
    return clips
