"""Frame selection and decoding on real H.264 files written by the test (PyAV + libx264)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import decord
import numpy as np
import pytest

from heaters_db.embedding import CENTERED, FULL_CLIP, STRATEGIES, TRICK_WINDOW
from heaters_db.embedding.decode import (
    SETTLING_SECONDS,
    UnusableVideo,
    VideoDecodeError,
    _rgb,
    _timeline,
    decode_size,
    open_video,
    probe_video,
)
from heaters_db.embedding.sampling import (
    NoTrickMetadata,
    UnknownStrategy,
    decode_frames,
    load_clip_frames,
    resolve_trick_time,
    select_indices,
)
from heaters_db.errors import HeatersError
from heaters_db.storage import ClipFileMissing
from tests.support import videos

EDGE = 36  # the tiny model's shortest edge (crop 32)
FRAMES = 8

# name -> (write_video kwargs, displayed (width, height))
KINDS = {
    "normal": ({"num_frames": 40, "size": (64, 48)}, (64, 48)),
    "short": ({"num_frames": 5, "size": (64, 48)}, (64, 48)),
    "one_frame": ({"num_frames": 1, "size": (64, 48)}, (64, 48)),
    "odd_size": ({"num_frames": 6, "size": (317, 239)}, (317, 239)),
    "rotated_90": ({"num_frames": 12, "size": (80, 48), "rotate": 90}, (48, 80)),
    "vfr": ({"num_frames": 20, "size": (64, 48), "vfr": True}, (64, 48)),
}


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("sampling")
    return {
        name: videos.write_video(root / f"{name}.mp4", videos.index_brightness, **kwargs)
        for name, (kwargs, _) in KINDS.items()
    }


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("kind", list(KINDS))
def test_every_strategy_gives_n_frames_of_the_model_size(clip_files, kind, strategy):
    path = clip_files[kind]
    width, height = KINDS[kind][1]
    # A trick time inside every clip (the one-frame clip lasts 0.1 s).
    metadata = {"trick_apex_time": 0.05}
    clip = load_clip_frames(path, strategy, FRAMES, EDGE, metadata=metadata)
    expected_w, expected_h = decode_size(width, height, EDGE)
    assert min(expected_w, expected_h) == EDGE
    assert tuple(clip.frames.shape) == (FRAMES, expected_h, expected_w, 3)
    assert clip.frames.dtype.is_floating_point is False and str(clip.frames.dtype) == "torch.uint8"
    assert len(clip.frame_indices) == FRAMES
    assert clip.frame_indices == sorted(clip.frame_indices)
    if kind == "rotated_90":
        return  # the corner-marker check below covers content; brightness is uniform anyway
    # The decoded content is the frame the index names (frames encode their index).
    decoded = [videos.brightness_index(frame.numpy()) for frame in clip.frames]
    assert decoded == clip.frame_indices


def test_probe_reports_display_size_rotation_and_counts(clip_files):
    info = probe_video(clip_files["rotated_90"])
    assert (info.width, info.height, info.rotation) == (48, 80, 90)
    assert (info.stored_width, info.stored_height) == (80, 48)
    assert info.frame_count == 12
    assert info.fps == pytest.approx(10.0)
    assert info.duration == pytest.approx(1.2, abs=0.05)
    odd = probe_video(clip_files["odd_size"])
    assert (odd.width, odd.height, odd.rotation) == (317, 239, 0)


@pytest.mark.parametrize("codec", ["libx264", "libsvtav1"])  # decord turns it; PyAV, for AV1
@pytest.mark.parametrize(
    ("rotate", "corner"), [(90, "top_right"), (270, "bottom_left"), (180, "bottom_right")]
)
def test_rotated_phone_video_comes_out_upright(tmp_path, rotate, corner, codec):
    import av

    if codec not in av.codecs_available:
        pytest.skip(f"PyAV build has no {codec} encoder")
    path = videos.write_video(
        tmp_path / "phone.mp4",
        videos.corner_marker,
        num_frames=4,
        size=(80, 48),
        rotate=rotate,
        codec=codec,
    )
    frames = decode_frames(path, FULL_CLIP, 2, EDGE).numpy()
    height, width = frames.shape[1:3]
    assert (width, height) == ((EDGE, 60) if rotate in (90, 270) else (60, EDGE))
    luma = frames[0].mean(axis=2)
    corners = {
        "top_left": luma[:5, :5].mean(),
        "top_right": luma[:5, -5:].mean(),
        "bottom_left": luma[-5:, :5].mean(),
        "bottom_right": luma[-5:, -5:].mean(),
    }
    # A clockwise turn of the stored picture moves its top-left marker to `corner`.
    assert max(corners, key=corners.get) == corner
    assert corners[corner] > 200 and sorted(corners.values())[-2] < 40


def test_full_clip_spreads_frames_over_the_clip(clip_files):
    clip = load_clip_frames(clip_files["normal"], FULL_CLIP, FRAMES, EDGE)
    assert clip.frame_indices == [2, 7, 12, 17, 22, 27, 32, 37]


def test_centered_takes_consecutive_frames_around_the_midpoint(clip_files):
    clip = load_clip_frames(clip_files["normal"], CENTERED, FRAMES, EDGE)
    assert clip.frame_indices == list(range(16, 24))
    assert clip.center_time == pytest.approx(2.0, abs=1e-3)


def test_short_clip_repeats_frames_evenly(clip_files):
    for strategy in STRATEGIES:
        clip = load_clip_frames(
            clip_files["short"], strategy, FRAMES, EDGE, metadata={"trick_apex_time": 0.2}
        )
        assert clip.frame_indices == [0, 0, 1, 2, 2, 3, 4, 4]


def test_trick_window_is_centred_on_the_apex(clip_files):
    # 40 frames at 10 fps: the apex at 2.0 s is frame 20, which sits at window position 4.
    clip = load_clip_frames(
        clip_files["normal"], TRICK_WINDOW, FRAMES, EDGE, metadata={"trick_apex_time": 2.0}
    )
    assert clip.frame_indices == list(range(16, 24))
    assert videos.brightness_index(clip.frames[FRAMES // 2].numpy()) == 20
    assert clip.center_time == pytest.approx(2.0)


def test_trick_window_falls_back_to_initiation_time(clip_files):
    clip = load_clip_frames(
        clip_files["normal"],
        TRICK_WINDOW,
        FRAMES,
        EDGE,
        metadata={"trick_initiation_time": "1.0", "other": 3},
    )
    assert videos.brightness_index(clip.frames[FRAMES // 2].numpy()) == 10


def test_trick_time_in_source_video_seconds_is_shifted(clip_files):
    # The clip is 10.0-14.0 s of its source; 12.0 s there is 2.0 s into the clip.
    clip = load_clip_frames(
        clip_files["normal"],
        TRICK_WINDOW,
        FRAMES,
        EDGE,
        metadata={"trick_apex_time": 12.0},
        clip_times=(10.0, 14.0),
    )
    assert videos.brightness_index(clip.frames[FRAMES // 2].numpy()) == 20


def test_trick_window_near_the_end_slides_inward(clip_files):
    clip = load_clip_frames(
        clip_files["normal"], TRICK_WINDOW, FRAMES, EDGE, metadata={"trick_apex_time": 3.9}
    )
    assert clip.frame_indices == list(range(32, 40))


def test_trick_window_uses_frame_timestamps_with_variable_frame_rate(clip_files):
    times = videos.frame_times(20, vfr=True)
    # Just after frame 11 starts: index-by-fps would say frame ~12 (9.76 fps average).
    apex = times[11] + 0.01
    clip = load_clip_frames(
        clip_files["vfr"], TRICK_WINDOW, FRAMES, EDGE, metadata={"trick_apex_time": apex}
    )
    assert clip.frame_indices[FRAMES // 2] == 11
    assert videos.brightness_index(clip.frames[FRAMES // 2].numpy()) == 11
    assert clip.frame_times[FRAMES // 2] == pytest.approx(times[11], abs=1e-3)


def test_full_clip_is_uniform_in_time_with_variable_frame_rate(clip_files):
    clip = load_clip_frames(clip_files["vfr"], FULL_CLIP, FRAMES, EDGE)
    gaps = np.diff(clip.frame_times)
    # Slices of ~0.26 s over frames 0.05 or 0.15 s long: every gap is within one frame of it.
    assert gaps.min() > 0.1 and gaps.max() < 0.4


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        (None, "none of trick_apex_time, trick_initiation_time"),
        ({}, "none of"),
        ({"trick_apex_time": None}, "none of"),
        ({"trick_apex_time": "soon"}, "not a number"),
        ({"trick_apex_time": float("nan")}, "not a finite number"),
        ({"trick_apex_time": 9.5}, "outside the clip"),
    ],
)
def test_trick_window_without_usable_metadata_is_refused(clip_files, metadata, reason):
    with pytest.raises(NoTrickMetadata, match="no trick metadata") as caught:
        decode_frames(clip_files["normal"], TRICK_WINDOW, FRAMES, EDGE, metadata=metadata)
    assert reason in str(caught.value)
    assert isinstance(caught.value, HeatersError)


def test_resolve_trick_time_rules():
    assert resolve_trick_time({"trick_apex_time": 1.5}, 4.0) == 1.5
    assert resolve_trick_time({"trick_apex_time": 1.5, "trick_initiation_time": 1.0}, 4.0) == 1.5
    assert resolve_trick_time({"trick_apex_time": 21.0}, 4.0, (20.0, 24.0)) == pytest.approx(1.0)
    with pytest.raises(NoTrickMetadata, match="source range"):
        resolve_trick_time({"trick_apex_time": 30.0}, 4.0, (20.0, 24.0))


def test_a_trick_time_past_the_files_end_is_clamped_and_logged(caplog):
    # The source range says 6 s, the file lasts 4 s: the window goes to the end, loudly.
    with caplog.at_level("WARNING", logger="heaters_db.embedding.sampling"):
        assert resolve_trick_time({"trick_apex_time": 25.0}, 4.0, (20.0, 26.0)) == 4.0
    (record,) = caplog.records
    assert record.action == "trick_time_past_end" and "past the file's end" in record.getMessage()
    caplog.clear()
    with caplog.at_level("WARNING", logger="heaters_db.embedding.sampling"):
        assert resolve_trick_time({"trick_apex_time": 23.0}, 4.0, (20.0, 26.0)) == 3.0
    assert caplog.records == []


def test_unknown_strategy_is_refused(clip_files):
    with pytest.raises(UnknownStrategy, match="keyframe_multi"):
        decode_frames(clip_files["normal"], "keyframe_multi", FRAMES, EDGE)


def test_select_indices_pure_cases():
    starts = np.arange(10) / 10.0
    assert select_indices(FULL_CLIP, starts, 1.0, 5).tolist() == [1, 3, 5, 7, 9]
    assert select_indices(CENTERED, starts, 1.0, 4).tolist() == [3, 4, 5, 6]
    assert select_indices(TRICK_WINDOW, starts, 1.0, 4, center_time=0.0).tolist() == [0, 1, 2, 3]
    assert select_indices(TRICK_WINDOW, starts, 1.0, 10, center_time=0.5).tolist() == list(
        range(10)
    )
    assert select_indices(FULL_CLIP, np.array([0.0]), 0.04, 3).tolist() == [0, 0, 0]


def test_native_size_when_no_shortest_edge(clip_files):
    frames = decode_frames(clip_files["odd_size"], FULL_CLIP, 2, None)
    assert tuple(frames.shape) == (2, 239, 317, 3)


def test_upscales_a_video_smaller_than_the_edge(tmp_path):
    path = videos.write_video(tmp_path / "tiny.mp4", num_frames=4, size=(24, 16))
    assert tuple(decode_frames(path, FULL_CLIP, 4, EDGE).shape) == (4, EDGE, 54, 3)


def test_decord_padded_rows_are_repaired(clip_files):
    # decord 0.6 reports 4 "channels" (row padding) for a 48-pixel-wide frame; _rgb drops the pad.
    path = str(clip_files["normal"])
    raw = decord.VideoReader(path, width=48, height=36)[3].asnumpy()
    assert raw.shape == (36, 48, 4)
    repaired = _rgb(raw, 48, 36, path)
    assert repaired.shape == (36, 48, 3)
    # A flat frame stays flat (no padding bytes interleaved) at frame 3's grey level; this
    # even-width scaler path runs about 1.5 levels dark, hence the tolerance.
    assert np.ptp(repaired.astype(int)) <= 2
    level = videos.BRIGHTNESS_BASE + 3 * videos.BRIGHTNESS_STEP
    assert abs(float(repaired.mean()) - level) <= 3


BAD_INPUTS = {
    "zero_byte": (videos.write_zero_byte, "empty"),
    "text_file": (videos.write_text_file, "not a readable video container"),
    "truncated_index_lost": (
        lambda p: videos.write_truncated(p, 0.5, faststart=False),
        "not a readable video container",
    ),
    "truncated_half": (lambda p: videos.write_truncated(p, 0.5), "decode"),
    "truncated_tail": (lambda p: videos.write_truncated(p, 0.9), "truncated"),
    "audio_only": (videos.write_audio_only, "no video stream"),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_inputs_raise_a_heaters_error_naming_file_and_cause(tmp_path, kind):
    writer, cause = BAD_INPUTS[kind]
    path = writer(tmp_path / f"{kind}.mp4")
    with pytest.raises(VideoDecodeError) as caught:
        decode_frames(path, FULL_CLIP, FRAMES, EDGE)
    message = str(caught.value)
    assert str(path) in message
    assert cause in message


@pytest.mark.parametrize(
    "writer",
    [
        videos.write_zero_byte,
        lambda p, written_ago: videos.write_truncated(p, 0.6, False, written_ago),
    ],
    ids=["zero_byte", "index_not_written_yet"],
)
def test_a_file_still_being_written_is_retried_and_a_settled_one_is_dead(tmp_path, writer):
    # An upload in progress (ffmpeg's MP4 writes its index last) looks like a broken file. A job
    # dead at once is never queued again when the upload completes, so a file modified within
    # SETTLING_SECONDS gets a retryable error; the same bytes settled for an hour are permanent.
    fresh = writer(tmp_path / "uploading.mp4", written_ago=0)
    with pytest.raises(VideoDecodeError, match="maybe still being written: retryable") as caught:
        decode_frames(fresh, FULL_CLIP, FRAMES, EDGE)
    assert not isinstance(caught.value, UnusableVideo)
    settled = writer(tmp_path / "settled.mp4", written_ago=SETTLING_SECONDS + 60)
    with pytest.raises(UnusableVideo):
        decode_frames(settled, FULL_CLIP, FRAMES, EDGE)
    # Dated a year ahead (a wrong clock): nothing will settle it, dead at once, saying why.
    future = writer(tmp_path / "future.mp4", written_ago=-365 * 86400)
    with pytest.raises(UnusableVideo, match="s in the future: a wrong clock"):
        decode_frames(future, FULL_CLIP, FRAMES, EDGE)
    # The upload completes: the retried job decodes it.
    videos.write_video(fresh, num_frames=12, size=(64, 48))
    assert decode_frames(fresh, FULL_CLIP, FRAMES, EDGE).shape[0] == FRAMES


@pytest.mark.parametrize("change", ["rewritten", "appended", "removed"])
def test_a_file_changed_while_it_was_read_is_retried_not_embedded(tmp_path, change):
    # A clip replaced in place between opening and reading (an upload over the old file, a copy
    # still growing): frames of the two versions would mix. The read is refused with a
    # retryable error; the retry reads the file as it then stands.
    path = videos.write_video(tmp_path / "clip.mp4", num_frames=12, size=(64, 48))
    video = open_video(path, EDGE)
    if change == "rewritten":  # the same bytes written again: only the modified time moves
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    elif change == "appended":
        with path.open("ab") as file:
            file.write(b"\0" * 16)
    else:
        path.unlink()
    with pytest.raises(VideoDecodeError, match="while it was being read") as caught:
        video.read([np.arange(4)])
    assert not isinstance(caught.value, UnusableVideo)
    assert str(path) in str(caught.value)
    if change != "removed":  # the retry opens the file as it now stands, and decodes it
        (frames,) = open_video(path, EDGE).read([np.arange(4)])
        assert frames.shape[0] == 4


def test_missing_file_raises_clip_file_missing(tmp_path):
    path = tmp_path / "nowhere.mp4"
    with pytest.raises(ClipFileMissing, match="nowhere.mp4: video file does not exist"):
        decode_frames(path, FULL_CLIP, FRAMES, EDGE)


def test_a_file_the_daemon_may_not_read_says_permission_denied(tmp_path):
    path = videos.write_video(tmp_path / "locked.mp4", num_frames=4)
    path.chmod(0)
    probe = (
        "import sys; from heaters_db.embedding.decode import probe_video\n"
        "try:\n    probe_video(sys.argv[1])\nexcept Exception as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    command = [sys.executable, "-c", probe, str(path)]
    if os.geteuid() == 0:  # root reads any file: drop the capabilities that let it
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv")
        caps = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.startswith("UnusableVideo "), result.stdout + result.stderr
    assert "permission denied (the daemon's user may not read it" in result.stdout


def test_directory_is_not_a_video(tmp_path):
    with pytest.raises(VideoDecodeError, match="not a regular file"):
        probe_video(tmp_path)


def test_a_codec_decord_lacks_is_decoded_with_pyav(tmp_path, caplog):
    # decord's bundled ffmpeg has no AV1 decoder (phones, web exports): such clips were dead as
    # "re-encode to H.264" although PyAV's decodes them.
    import av

    if "libsvtav1" not in av.codecs_available:
        pytest.skip("PyAV build has no AV1 encoder")
    path = videos.write_video(
        tmp_path / "av1.mp4",
        videos.index_brightness,
        num_frames=30,
        size=(64, 48),
        codec="libsvtav1",
    )
    assert probe_video(path).codec == "av1"
    with pytest.raises(decord.DECORDError, match="cannot find video stream"):
        decord.VideoReader(str(path))
    with caplog.at_level("INFO", logger="heaters_db.embedding.decode"):
        clip = load_clip_frames(path, FULL_CLIP, FRAMES, EDGE)
    assert "decord could not open this file; decoded it front to back with PyAV" in caplog.text
    assert tuple(clip.frames.shape) == (FRAMES, EDGE, 48, 3)
    # The frames are the ones the indices name (brightness encodes the frame number), spread
    # over the clip as for any other file.
    assert [videos.brightness_index(f.numpy()) for f in clip.frames] == clip.frame_indices
    h264 = videos.write_video(
        tmp_path / "h264.mp4", videos.index_brightness, num_frames=30, size=(64, 48)
    )
    assert clip.frame_indices == load_clip_frames(h264, FULL_CLIP, FRAMES, EDGE).frame_indices
    # Rotated AV1 comes out upright too: test_rotated_phone_video_comes_out_upright.
    # The other answer: an AV1 file whose frame data is damaged past its first third decodes
    # with neither, and the error says so (a VideoDecodeError: retried, then dead, with the
    # cause). The packets' own bytes are overwritten, wherever the encoder put them.
    with av.open(str(path)) as container:
        packets = [
            (packet.pos, packet.size)
            for packet in container.demux(container.streams.video[0])
            if packet.size > 4 and packet.pos is not None
        ]
    damaged = bytearray(path.read_bytes())
    for position, size in packets[len(packets) // 3 :]:
        damaged[position + 2 : position + size] = bytes((7 * i) % 256 for i in range(size - 2))
    broken = tmp_path / "damaged_av1.mp4"
    broken.write_bytes(bytes(damaged))
    with pytest.raises(VideoDecodeError, match="PyAV could not decode it either") as caught:
        load_clip_frames(broken, FULL_CLIP, FRAMES, EDGE)
    assert str(broken) in str(caught.value)


def test_a_raw_h264_stream_decord_cannot_open_is_read_with_pyav(tmp_path, caplog):
    # An elementary stream without a container (dashcams, Raspberry Pi cameras): decord cannot
    # size it ("Failed to measure duration/frame-count") and such clips were dead.
    path = videos.write_video(
        tmp_path / "dashcam.h264", videos.index_brightness, num_frames=30, size=(64, 48)
    )
    with pytest.raises(decord.DECORDError, match="Failed to measure duration"):
        decord.VideoReader(str(path))
    with caplog.at_level("INFO", logger="heaters_db.embedding.decode"):
        clip = load_clip_frames(path, FULL_CLIP, FRAMES, EDGE)
    assert "decord could not open this file" in caplog.text
    assert clip.frames.shape[0] == FRAMES
    assert [videos.brightness_index(f.numpy()) for f in clip.frames] == clip.frame_indices
    assert clip.frame_indices[-1] >= 25  # spread over all 30 frames, not a prefix


@pytest.mark.parametrize("rear_first", [True, False], ids=["rear-first", "main-first"])
def test_of_two_camera_streams_the_main_one_is_probed_and_decoded(tmp_path, caplog, rear_first):
    # decord reads a stream of its own choosing (the small rear camera, whichever came first),
    # while the probe took the first: frames of one stream were stretched to the other's size.
    path = videos.write_two_camera_video(tmp_path / "dashcam.mp4", rear_first=rear_first)
    with caplog.at_level("INFO", logger="heaters_db.embedding.decode"):
        clip = load_clip_frames(path, FULL_CLIP, FRAMES, EDGE)
    info = probe_video(path)
    assert (info.width, info.height, info.video_streams) == (96, 64, 2)
    assert info.stream_index == (1 if rear_first else 0)
    assert "2 video streams in one file: embedding the largest" in caplog.text
    assert [videos.brightness_index(f.numpy()) for f in clip.frames] == clip.frame_indices
    assert clip.frame_indices[-1] >= 25  # spread over the main camera's 30 frames


def test_a_strip_of_extreme_aspect_ratio_is_refused_and_16_to_1_is_not(tmp_path):
    # 1920 x 8 would be decoded at 61,440 x 256 per frame for a 256-pixel crop: out of memory,
    # again on every retry. Refused at once (UnusableVideo: the job is dead with the reason).
    strip = videos.write_video(tmp_path / "strip.mp4", num_frames=4, size=(340, 16))
    with pytest.raises(UnusableVideo, match=r"340x16 pixels is 21:1, beyond the 16:1"):
        decode_frames(strip, FULL_CLIP, 2, EDGE)
    wide = videos.write_video(tmp_path / "wide.mp4", num_frames=4, size=(256, 16))
    assert tuple(decode_frames(wide, FULL_CLIP, 2, EDGE).shape) == (2, EDGE, 16 * EDGE, 3)


def test_metadata_that_is_not_utf8_does_not_stop_a_video(tmp_path):
    # An old camera's Latin-1 tags: PyAV's av.open raised UnicodeDecodeError (not a
    # HeatersError) before a frame was read, for a video whose frames all decode.
    import av

    path = tmp_path / "latin1.mp4"
    with av.open(str(path), "w", metadata_encoding="latin-1") as container:
        container.metadata["title"] = "été à Lyon"
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(10):
            frame = av.VideoFrame.from_ndarray(videos.index_brightness(index, 64, 48), "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(UnicodeDecodeError):
        av.open(str(path)).close()
    assert probe_video(path).frame_count == 10
    clip = load_clip_frames(path, FULL_CLIP, 4, EDGE)
    assert [videos.brightness_index(f.numpy()) for f in clip.frames] == clip.frame_indices


def test_a_last_frame_of_bogus_duration_does_not_take_the_clip_over():
    # 20 frames at 10 fps whose last one claims ten minutes (a muxer's error, kept by MKV):
    # uniform-in-time sampling drew that one frame 16 times.
    times = np.stack([np.arange(20) / 10, np.arange(1, 21) / 10], axis=1)
    times[-1, 1] = 601.9
    starts, end = _timeline(times, 10.0)
    assert end == pytest.approx(2.0)
    assert _timeline(np.array([[0.0, 601.9]]), 10.0)[1] == pytest.approx(601.9)  # one frame
    vfr = np.array([[0.0, 0.15], [0.15, 0.2], [0.2, 0.35]])  # held no longer than the longest
    assert _timeline(vfr, 10.0)[1] == pytest.approx(0.35)


def test_timeline_falls_back_to_the_frame_rate_without_timestamps():
    good = np.array([[0.0, 0.1], [0.1, 0.2], [0.2, 0.3]])
    starts, end = _timeline(good, 10.0)
    assert starts.tolist() == [0.0, 0.1, 0.2] and end == pytest.approx(0.3)
    broken = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [np.nan, np.nan]])
    starts, end = _timeline(broken, 4.0)
    assert starts.tolist() == [0.0, 0.25, 0.5, 0.75] and end == 1.0


def test_a_stream_decord_cannot_seek_in_is_decoded_front_to_back(tmp_path, caplog):
    # MPEG-TS (cameras, screen recorders) has no index: decord fails with "Unable to handle
    # EOF ... corrupted frames" although every frame decodes, and such clips were retried until
    # dead as corrupt.
    path = videos.write_video(
        tmp_path / "camera.ts", videos.index_brightness, num_frames=30, size=(64, 48)
    )
    reader = decord.VideoReader(str(path), width=65, height=48)
    with pytest.raises(decord.DECORDError, match="corrupted frames"):
        [reader[int(i)].asnumpy() for i in (0, 10, 29)]
    with caplog.at_level("INFO", logger="heaters_db.embedding.decode"):
        clip = load_clip_frames(path, FULL_CLIP, FRAMES, EDGE)
    assert "decoded it front to back with PyAV" in caplog.text
    assert clip.frames.shape[0] == FRAMES
    # The frames are the ones the indices name (brightness encodes the frame number).
    assert [videos.brightness_index(f.numpy()) for f in clip.frames] == clip.frame_indices
    # The other answer, a file PyAV cannot decode either, is BAD_INPUTS' truncated_tail: it
    # takes this path too and still fails with decord's cause.
