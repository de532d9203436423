"""What shape of embedding variant can be computed: frame counts and windows that work.

One rule for the three places a shape arrives: `heaters-db variant add` refuses a bad one with
the option named, the daemon refuses a row that someone wrote with SQL (its embed jobs are dead
at once with the reason, not retried), and revision 0028's CHECK refuses new rows. Pure Python:
the CLI imports it without torch.
"""

from __future__ import annotations

import math

from heaters_db.errors import PermanentJobError

MAX_FRAMES = 256
"""Frames per clip (or per window): 4x what V-JEPA 2 was trained on (fpc64). Attention cost grows
with the square of the frame count; a typo like 6400 would exhaust any GPU on every job."""

MIN_STRIDE_SECONDS = 0.01
"""Seconds between window starts: a finer stride than one frame at 100 fps only repeats
windows, and a stride near zero makes an endless list of them."""

MAX_WINDOW_FRAMES_PER_CLIP = 8192
"""Decoded frames one clip's windows may hold (windows x frames per window): the decoded uint8
frames stay in memory until the clip is embedded, about 2.9 GB at this cap for a 256-pixel short
edge (512 windows of 16 frames: 4 min 16 s of clip at the default 0.5 s stride)."""


class BadVariantShape(PermanentJobError):
    """The variant's frame count or windows cannot be computed as they stand: its embed jobs can
    never succeed until the variant is changed (`heaters-db variant add ... --reembed`)."""


def shape_problem(
    num_frames: int | None, window_seconds: float | None, stride_seconds: float | None
) -> str | None:
    """Why this shape cannot be computed, or None when it can."""
    if num_frames is not None and not 2 <= num_frames <= MAX_FRAMES:
        return f"frames must be between 2 and {MAX_FRAMES}, not {num_frames}"
    if num_frames is not None and num_frames % 2:
        return f"frames must be even (V-JEPA 2 reads frames in pairs), not {num_frames}"
    if (window_seconds is None) != (stride_seconds is None):
        return "a window variant needs both window seconds and stride seconds"
    if window_seconds is not None and not (math.isfinite(window_seconds) and window_seconds > 0):
        return f"window seconds must be a finite number above 0, not {window_seconds}"
    if stride_seconds is not None and not (
        math.isfinite(stride_seconds) and stride_seconds >= MIN_STRIDE_SECONDS
    ):
        return (
            f"stride seconds must be a finite number of at least {MIN_STRIDE_SECONDS}, "
            f"not {stride_seconds}"
        )
    return None


def check_shape(
    num_frames: int | None, window_seconds: float | None, stride_seconds: float | None
) -> None:
    """Raise BadVariantShape naming the problem."""
    problem = shape_problem(num_frames, window_seconds, stride_seconds)
    if problem:
        raise BadVariantShape(f"embedding variant shape refused: {problem}")
