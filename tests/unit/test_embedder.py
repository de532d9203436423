"""embed_clips and run_video_embed end to end: real videos, the tiny model via from_pretrained."""

from __future__ import annotations

import json

import numpy as np
import pytest

from heaters_db.embedding.embedder import ClipVideo, embed_clips, run_video_embed
from heaters_db.embedding.sampling import CENTERED, FULL_CLIP, TRICK_WINDOW, UnknownStrategy
from heaters_db.settings import get_settings
from tests.support import videos
from tests.support.tiny_model import TINY_HIDDEN_SIZE, TINY_MODEL_NAME

FRAMES = 8  # model_dir / encoder: tests/unit/conftest.py


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    return {
        "bar": videos.write_video(root / "bar.mp4", num_frames=24, size=(64, 48)),
        "bar_portrait": videos.write_video(root / "portrait.mp4", num_frames=12, size=(48, 64)),
        "short": videos.write_video(root / "short.mp4", num_frames=3, size=(64, 48)),
        "text": videos.write_text_file(root / "text.mp4"),
        "audio": videos.write_audio_only(root / "audio.mp4"),
    }


@pytest.fixture
def heaters_model_dir(model_dir, monkeypatch):
    """HEATERS_MODEL_DIR pointing at the tiny model, as the daemon would see it."""
    monkeypatch.setenv("HEATERS_MODEL_DIR", str(model_dir))
    get_settings.cache_clear()
    yield model_dir
    monkeypatch.delenv("HEATERS_MODEL_DIR")
    get_settings.cache_clear()


def test_one_bad_clip_does_not_fail_the_batch(encoder, clips, tmp_path):
    trick = {"trick_apex_time": 1.2}
    items = [
        ClipVideo(1, clips["bar"], trick),
        ClipVideo(2, clips["text"], trick),
        ClipVideo(3, tmp_path / "missing.mp4", trick),
        ClipVideo(4, clips["bar"], None),  # no trick metadata
        ClipVideo(5, clips["short"], {"trick_apex_time": 0.1}),
        ClipVideo(6, clips["audio"], trick),
        ClipVideo(7, clips["bar_portrait"], {"trick_initiation_time": 0.5}),
    ]
    results = embed_clips(encoder, items, TRICK_WINDOW, FRAMES, batch_size=3)
    assert [r.clip_id for r in results] == [1, 2, 3, 4, 5, 6, 7]
    assert [r.status for r in results] == ["ok", "error", "error", "skipped", "ok", "error", "ok"]
    for result in results:
        if result.ok:
            assert result.embedding.shape == (TINY_HIDDEN_SIZE,)
            assert result.embedding.dtype == np.float32
            assert set(result.seconds) == {"decode", "preprocess", "model", "total"}
            assert len(result.frame_indices) == FRAMES
        else:
            assert result.embedding is None and result.message
    assert (
        "text.mp4" in results[1].message
        and results[1].error_type == "UnusableVideo"
        and results[1].permanent
    )
    assert "missing.mp4" in results[2].message and results[2].error_type == "ClipFileMissing"
    assert "no trick metadata" in results[3].message
    assert "no video stream" in results[5].message


def test_vectors_do_not_depend_on_batching(encoder, clips):
    items = [
        ClipVideo(i, clips[name]) for i, name in enumerate(["bar", "short", "bar_portrait", "bar"])
    ]
    together = embed_clips(encoder, items, FULL_CLIP, FRAMES, batch_size=4)
    apart = embed_clips(encoder, items, FULL_CLIP, FRAMES, batch_size=1, decode_workers=1)
    for a, b in zip(together, apart, strict=True):
        np.testing.assert_allclose(a.embedding, b.embedding, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(together[0].embedding, together[3].embedding, rtol=1e-5, atol=1e-6)
    assert not np.allclose(together[0].embedding, together[1].embedding)


def test_strategies_see_different_frames(encoder, clips):
    item = [ClipVideo(1, clips["bar"], {"trick_apex_time": 0.3})]
    vectors = {
        strategy: embed_clips(encoder, item, strategy, FRAMES)[0]
        for strategy in (FULL_CLIP, CENTERED, TRICK_WINDOW)
    }
    assert vectors[CENTERED].frame_indices == list(range(8, 16))
    assert vectors[TRICK_WINDOW].frame_indices == list(range(0, 8))
    assert not np.allclose(vectors[FULL_CLIP].embedding, vectors[CENTERED].embedding)


def test_refuses_bad_arguments(encoder, clips):
    assert embed_clips(encoder, [], FULL_CLIP, FRAMES) == []
    with pytest.raises(UnknownStrategy):
        embed_clips(encoder, [ClipVideo(1, clips["bar"])], "keyframe_multi", FRAMES)
    with pytest.raises(ValueError, match="tubelet"):
        embed_clips(encoder, [ClipVideo(1, clips["bar"])], FULL_CLIP, 7)


def test_run_video_embed_success_shape(heaters_model_dir, encoder, clips):
    out = run_video_embed(11, str(clips["bar"]), TINY_MODEL_NAME, FULL_CLIP, num_frames=FRAMES)
    json.dumps(out)  # heaters reads it as JSON
    assert out["status"] == "success"
    assert (out["clip_id"], out["model_name"], out["generation_strategy"]) == (
        11,
        TINY_MODEL_NAME,
        FULL_CLIP,
    )
    assert len(out["embedding"]) == TINY_HIDDEN_SIZE
    assert all(isinstance(value, float) for value in out["embedding"])
    metadata = out["metadata"]
    assert metadata["embedding_dimension"] == TINY_HIDDEN_SIZE
    assert metadata["device_used"] == "cpu"
    assert metadata["model_version"] == encoder.model_version
    assert metadata["num_frames"] == FRAMES
    assert len(metadata["frame_indices"]) == FRAMES
    assert metadata["processing_seconds"] > 0
    assert "error" not in out
    # The same code path as embed_clips: the same vector.
    (direct,) = embed_clips(encoder, [ClipVideo(11, clips["bar"])], FULL_CLIP, FRAMES)
    np.testing.assert_allclose(out["embedding"], direct.embedding, rtol=1e-6, atol=1e-6)


def test_run_video_embed_reports_errors_and_skips(heaters_model_dir, clips, tmp_path):
    broken = run_video_embed(12, clips["text"], TINY_MODEL_NAME, FULL_CLIP, num_frames=FRAMES)
    assert broken["status"] == "error" and "text.mp4" in broken["error"]
    assert "embedding" not in broken
    skipped = run_video_embed(13, clips["bar"], TINY_MODEL_NAME, TRICK_WINDOW, num_frames=FRAMES)
    assert skipped["status"] == "skipped" and "no trick metadata" in skipped["error"]
    trick = run_video_embed(
        14,
        clips["bar"],
        TINY_MODEL_NAME,
        TRICK_WINDOW,
        num_frames=FRAMES,
        processing_metadata={"trick_apex_time": 11.0},
        start_time_seconds=10.0,
        end_time_seconds=12.4,
        heaters_extra_option=True,
    )
    assert trick["status"] == "success"
    assert trick["metadata"]["frame_indices"] == list(range(6, 14))
    unknown = run_video_embed(
        15, clips["bar"], TINY_MODEL_NAME, "keyframe_multi", num_frames=FRAMES
    )
    assert unknown["status"] == "error" and unknown["error_type"] == "UnknownStrategy"
    # An absolute path that does not exist fails without asking the hub (no network in tests).
    absent = str(tmp_path / "absent-model")
    no_model = run_video_embed(16, clips["bar"], absent, FULL_CLIP, num_frames=FRAMES)
    assert no_model["status"] == "error" and no_model["error_type"] == "ModelLoadError"
    assert f"no model directory at {absent}" in no_model["error"]


def test_an_av1_clip_embeds_like_the_same_frames_in_h264(encoder, tmp_path):
    # decord cannot decode AV1; the decoder falls back to PyAV (heaters_db.embedding.decode).
    import av

    if "libsvtav1" not in av.codecs_available:
        pytest.skip("PyAV build has no AV1 encoder")
    av1 = videos.write_video(tmp_path / "av1.mp4", num_frames=24, size=(64, 48), codec="libsvtav1")
    h264 = videos.write_video(tmp_path / "h264.mp4", num_frames=24, size=(64, 48))
    first, second = embed_clips(encoder, [ClipVideo(1, av1), ClipVideo(2, h264)], FULL_CLIP, FRAMES)
    assert first.ok and second.ok, (first.message, second.message)
    assert first.frame_indices == second.frame_indices
    cosine = float(
        first.embedding
        @ second.embedding
        / (np.linalg.norm(first.embedding) * np.linalg.norm(second.embedding))
    )
    assert cosine > 0.99, cosine
