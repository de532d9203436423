"""Window sampling and the one-pass decode of heaters_db.embedding.windows, on real H.264 files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from heaters_db.embedding.sampling import NoTrickMetadata, load_clip_frames
from heaters_db.embedding.windows import (
    StrategyRequest,
    WindowedClip,
    WindowRequest,
    decode_clip_requests,
    window_indices,
    window_spans,
)
from tests.support import videos


def test_window_spans_cover_the_clip_and_end_at_its_end() -> None:
    assert window_spans(0.0, 3.0, 1.5, 0.5) == [(0.0, 1.5), (0.5, 2.0), (1.0, 2.5), (1.5, 3.0)]
    # The stride does not divide the clip: the last window is aligned to the end.
    assert window_spans(0.0, 2.2, 1.5, 0.5) == [(0.0, 1.5), (0.5, 2.0), (0.7, 2.2)]
    # Shorter than one window: one window, the whole clip.
    assert window_spans(0.0, 1.0, 1.5, 0.5) == [(0.0, 1.0)]
    with pytest.raises(ValueError):
        window_spans(0.0, 3.0, 0.0, 0.5)


def test_window_indices_spread_frames_inside_each_window() -> None:
    starts = np.arange(30) / 10.0  # 10 fps, 3 s
    indices = window_indices(starts, [(0.0, 1.5), (1.5, 3.0)], 4)
    assert indices.tolist() == [[1, 5, 9, 13], [16, 20, 24, 28]]


def test_one_pass_gives_the_full_clip_and_every_window(tmp_path: Path) -> None:
    path = videos.write_video(
        tmp_path / "line.mp4", videos.index_brightness, num_frames=40, size=(32, 32)
    )
    full, windows, trick = decode_clip_requests(
        path,
        None,
        [
            StrategyRequest("video_full_clip", 8),
            WindowRequest(num_frames=4, window_seconds=1.5, stride_seconds=0.5),
            StrategyRequest("video_trick_window", 8, metadata={}),
        ],
    )
    alone = load_clip_frames(path, "video_full_clip", 8, None)
    assert full.frame_indices == alone.frame_indices
    assert torch.equal(full.frames, alone.frames)
    assert isinstance(windows, WindowedClip)
    assert windows.spans == window_spans(0.0, 4.0, 1.5, 0.5)
    assert windows.frames.shape[0] == 4 * len(windows.spans)
    # Each window's frames are the ones inside it (brightness encodes the frame index).
    decoded = [videos.brightness_index(frame.numpy()) for frame in windows.frames]
    for number, (begin, end) in enumerate(windows.spans):
        for index in decoded[number * 4 : number * 4 + 4]:
            assert begin <= index / 10.0 < end
    # A request that cannot be served fails alone.
    assert isinstance(trick, NoTrickMetadata)
