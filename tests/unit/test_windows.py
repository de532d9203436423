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
    embed_windows,
    window_indices,
    window_spans,
)
from heaters_db.errors import PermanentJobError
from heaters_db.variant_shape import MAX_FRAMES, BadVariantShape, shape_problem
from tests.support import videos


def test_window_spans_cover_the_clip_and_end_at_its_end() -> None:
    assert window_spans(0.0, 3.0, 1.5, 0.5) == [(0.0, 1.5), (0.5, 2.0), (1.0, 2.5), (1.5, 3.0)]
    # The stride does not divide the clip: the last window is aligned to the end.
    assert window_spans(0.0, 2.2, 1.5, 0.5) == [(0.0, 1.5), (0.5, 2.0), (0.7, 2.2)]
    # Shorter than one window: one window, the whole clip.
    assert window_spans(0.0, 1.0, 1.5, 0.5) == [(0.0, 1.0)]


@pytest.mark.parametrize(
    ("window", "stride"),
    [(0.0, 0.5), (float("nan"), 0.5), (float("inf"), 0.5), (1.5, float("nan")), (1.5, 1e-9)],
)
def test_window_spans_refuse_shapes_that_cannot_end(window: float, stride: float) -> None:
    # nan compares false with everything and a near-zero stride makes an endless list: both
    # once slipped past `variant add` and hung or broke every embed job of the variant.
    with pytest.raises(BadVariantShape) as refused:
        window_spans(0.0, 3.0, window, stride)
    assert isinstance(refused.value, PermanentJobError)  # dead at once, not retried


def test_variant_shapes_that_can_be_computed_pass() -> None:
    assert shape_problem(64, None, None) is None
    assert shape_problem(MAX_FRAMES, 1.5, 0.01) is None
    assert "between 2 and" in shape_problem(MAX_FRAMES + 2, None, None)
    assert "even" in shape_problem(15, None, None)
    assert "both" in shape_problem(16, 1.5, None)


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


def test_a_clip_too_long_for_its_windows_is_refused_before_decoding(tmp_path: Path) -> None:
    path = videos.write_video(
        tmp_path / "long.mp4", videos.index_brightness, num_frames=40, size=(32, 32)
    )
    # 4 s at a 0.01 s stride: 251 windows of 256 frames, far above what one clip may hold.
    full, windows = decode_clip_requests(
        path,
        None,
        [
            StrategyRequest("video_full_clip", 8),
            WindowRequest(num_frames=256, window_seconds=1.5, stride_seconds=0.01),
        ],
    )
    assert isinstance(windows, BadVariantShape)
    assert "251 windows" in str(windows) and "longer stride" in str(windows)
    assert not isinstance(full, Exception) and full.frames.shape[0] == 8


def test_windows_of_clips_with_different_sizes_embed_as_each_alone(tmp_path: Path, encoder) -> None:
    wide = videos.write_video(
        tmp_path / "wide.mp4", videos.index_brightness, num_frames=30, size=(64, 32)
    )
    tall = videos.write_video(
        tmp_path / "tall.mp4", videos.index_brightness, num_frames=20, size=(32, 48)
    )
    request = WindowRequest(num_frames=4, window_seconds=1.0, stride_seconds=0.5)
    clips = [decode_clip_requests(path, None, [request])[0] for path in (wide, tall)]
    together = embed_windows(encoder, clips, batch=3)  # batches span both clips
    for clip, vectors in zip(clips, together, strict=True):
        (alone,) = embed_windows(encoder, [clip], batch=1)
        assert vectors.shape == (len(clip.spans), encoder.dim)
        np.testing.assert_allclose(vectors, alone, rtol=1e-4, atol=1e-5)
