"""Opening and decoding a video file: PyAV first (cheap, and its errors name the cause), then
decord for only the frames asked for, scaled by ffmpeg to the model's shortest edge. decord 0.6
applies the display-matrix rotation itself (the size it is given is the displayed size), so
phone videos come out upright without a second pass.

Which frames to ask for is heaters_db.embedding.sampling's concern.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from heaters_db.errors import HeatersError, PermanentJobError
from heaters_db.storage import ClipFileMissing

log = logging.getLogger(__name__)


class VideoDecodeError(HeatersError):
    """The clip's video file could not be opened or decoded."""


class UnusableVideo(VideoDecodeError, PermanentJobError):
    """The file can never be decoded as it stands (empty, not a media container, no video
    stream): its embed job is dead at once instead of retried."""


MAX_ASPECT_RATIO = 16.0
"""Longest side over shortest side of a video that is embedded. The model sees a centre crop of
the frame resized to its short side, so a strip of 1920 x 8 pixels would be decoded at
61,440 x 256 per frame (3 GB of uint8 for 64 frames, four times that as floats) to keep a
256-pixel square of it: out of memory on a GPU host, again on every retry. Cinema is 2.4:1, a
360-degree equirectangular video 2:1."""

SETTLING_SECONDS = 300.0
"""A file modified this recently may still be being written (an upload, a copy, an MP4 muxer
that writes its index last): empty or not yet a readable container, it is retried with backoff
rather than dead at once, since the job would not be queued again when the file completes."""


def _unusable(path: Path, message: str) -> VideoDecodeError:
    """UnusableVideo (permanent), or a retryable VideoDecodeError while the file is settling."""
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return UnusableVideo(message)
    if age < -SETTLING_SECONDS:
        # Dated well in the future (a camera's or a file server's wrong clock, `cp -p`): no
        # upload in progress, and waiting would not make it settle before its attempts ran out.
        return UnusableVideo(f"{message} (modified {-age:.0f} s in the future: a wrong clock?)")
    if age < SETTLING_SECONDS:
        return VideoDecodeError(
            f"{message}; modified {max(age, 0):.0f} s ago, maybe still being written: retryable"
        )
    return UnusableVideo(message)


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
    stream_index: int = 0  # which of the container's video streams is the clip (main_stream)
    video_streams: int = 1  # how many it has, cover art left out


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
        raise _unusable(path, f"{path}: file is empty (0 bytes)")


def _open_container(av: Any, path: Path) -> Any:
    """av.open for reading, with metadata that is not UTF-8 (old cameras' Latin-1 tags, a
    damaged header) decoded with replacement characters: PyAV's default raised
    UnicodeDecodeError from av.open itself, for a video whose frames decode."""
    return av.open(str(path), metadata_errors="replace")


def _video_frames(av: Any, path: Path, stream_index: int) -> Iterator[Any]:
    """One video stream's frames (``stream_index`` among the container's video streams),
    decoded front to back by PyAV (the container closes when the caller stops iterating);
    FFmpegError propagates to the caller."""
    with _open_container(av, path) as container:
        yield from container.decode(container.streams.video[stream_index])


def main_stream(av: Any, streams: Any) -> tuple[int, int]:
    """(index of the clip's stream among ``streams``, how many are candidates): the video
    stream with the most pixels, then the most frames, cover art (attached pictures) left out
    unless there is nothing else. A dual-camera dashcam or a multi-angle export holds several:
    the file's first stream can be a small rear camera, and decord chooses by rules of its own,
    so the choice is made here, once, for the probe and both decoders."""
    attached = av.stream.Disposition.attached_pic
    moving = [i for i, stream in enumerate(streams) if not stream.disposition & attached]
    candidates = moving or list(range(len(streams)))
    best = max(
        candidates,
        key=lambda i: (
            (streams[i].codec_context.width or 0) * (streams[i].codec_context.height or 0),
            streams[i].frames or 0,
            -i,
        ),
    )
    return best, len(candidates)


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
        container = _open_container(av, path)
    except PermissionError:  # av's own, an FFmpegError too: said as such, not as a bad format
        raise UnusableVideo(
            f"{path}: permission denied (the daemon's user may not read it; fix the file's "
            "permissions, then `heaters-db requeue`)"
        ) from None
    except av.FFmpegError as error:
        raise _unusable(path, f"{path}: not a readable video container ({error})") from error
    with container:
        if not container.streams.video:
            kinds = sorted({stream.type for stream in container.streams}) or ["none"]
            raise UnusableVideo(f"{path}: no video stream (streams found: {', '.join(kinds)})")
        index, candidates = main_stream(av, container.streams.video)
        stream = container.streams.video[index]
        if candidates > 1:
            log.warning(
                "%s video streams in one file: embedding the largest (video stream %s, %sx%s)",
                candidates,
                index,
                stream.codec_context.width,
                stream.codec_context.height,
                extra={"action": "probe_video", "path": str(path), "stream": index},
            )
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
            stream_index=index,
            video_streams=candidates,
        )


def decode_size(width: int, height: int, shortest_edge: int) -> tuple[int, int]:
    """(width, height) with the short side at `shortest_edge`, aspect kept.

    The long side is truncated, not rounded, exactly as transformers' resize computes it
    (`get_resize_output_image_size`), so decoding at this size equals the processor's resize.
    """
    if width <= height:
        return shortest_edge, max(1, int(shortest_edge * height / width))
    return max(1, int(shortest_edge * width / height)), shortest_edge


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
    The last frame lasts no longer than the longest frame before it: a muxer's bogus duration
    on it (ten minutes, in an MKV) made every frame sampled uniformly in time that one frame.
    """
    starts = times[:, 0]
    end = float(times[-1, 1])
    usable = np.all(np.isfinite(times)) and (len(starts) == 1 or starts[-1] > starts[0])
    if usable:
        if len(starts) > 1:
            end = min(end, float(starts[-1] + np.max(np.diff(starts))))
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
    reader: Any  # decord's VideoReader; None when decord could not open the file (PyAV reads it)
    starts: np.ndarray
    end: float
    width: int
    decode_width: int
    height: int
    version: tuple[int, int] | None = None  # (mtime_ns, size) when it was opened
    open_error: BaseException | None = None  # why decord could not open it (reader None)

    def read(self, index_sets: list[np.ndarray]) -> list[torch.Tensor]:
        """uint8 (len(indices), H, W, 3) per set, decoding the union of the sets once.

        Raises a retryable VideoDecodeError when the file changed since it was opened: frames
        read across a rewrite may mix two videos (or a half-copied one), so nothing of this
        read is embedded; the retry reads the file as it then stands."""
        decord = _import_decord()
        unique = sorted({int(i) for indices in index_sets for i in np.asarray(indices).ravel()})
        if self.reader is None:
            assert self.open_error is not None
            decoded = self._read_front_to_back(unique, self.open_error)
        else:
            try:
                decoded = {
                    index: _rgb(
                        self.reader[index].asnumpy(), self.decode_width, self.height, self.path
                    )
                    for index in unique
                }
            except (RuntimeError, decord.DECORDError) as error:
                self.check_unchanged()  # a rewrite is the likelier cause than a corrupt file
                decoded = self._read_front_to_back(unique, error)
        self.check_unchanged()
        frames = []
        for indices in index_sets:
            stacked = torch.from_numpy(
                np.stack([decoded[int(i)] for i in np.asarray(indices).ravel()])
            )
            if self.decode_width != self.width:
                stacked = _resize_width(stacked, self.width)
            frames.append(stacked)
        return frames

    def _read_front_to_back(
        self, indices: list[int], error: BaseException
    ) -> dict[int, np.ndarray]:
        """The frames decord could not reach, decoded in order with PyAV, upright.

        decord seeks by the container's index; a stream without one (MPEG-TS from cameras and
        screen recorders, some MKV) fails there ("Unable to handle EOF ... corrupted frames")
        although every frame decodes. decord's bundled ffmpeg also lacks decoders PyAV's has
        (AV1): such a file is opened without decord (open_video) and read here only. Front to
        back costs a full pass, so only then; a file that fails this way too is reported with
        decord's cause."""
        av = _import_av()
        wanted = set(indices)
        frames: dict[int, np.ndarray] = {}
        try:
            for index, frame in enumerate(_video_frames(av, self.path, self.info.stream_index)):
                if index in wanted:
                    frames[index] = self._upright(frame)
                    if len(frames) == len(wanted):
                        break
        except av.FFmpegError:
            frames = {}
        if len(frames) < len(wanted):
            raise self.decode_error(error) from error
        log.info(
            "decord could not %s this file; decoded it front to back with PyAV",
            "seek in" if self.reader is not None else "open",
            extra={"action": "decode", "path": str(self.path), "frames": len(frames)},
        )
        return frames

    def _upright(self, frame: Any) -> np.ndarray:
        """A PyAV frame as RGB at the decode size, turned by the display matrix as decord
        turns it (PyAV hands frames over as stored)."""
        turns = self.info.rotation // 90
        width, height = (
            (self.height, self.decode_width) if turns % 2 else (self.decode_width, self.height)
        )
        array = frame.to_ndarray(width=width, height=height, format="rgb24")
        return np.ascontiguousarray(np.rot90(array, k=-turns)) if turns else array

    def check_unchanged(self) -> None:
        """VideoDecodeError (retried) when the file's mtime or size moved since it was opened."""
        if self.version is None:
            return
        now = file_version(self.path)
        if now != self.version:
            what = "was removed" if now is None else "changed"
            raise VideoDecodeError(
                f"{self.path}: the file {what} while it was being read (modified time or "
                "size moved): nothing of this read is kept, retryable"
            )

    def decode_error(self, error: BaseException) -> VideoDecodeError:
        cause = _decord_cause(error)
        if "cannot find video stream" in cause:
            # PyAV found a video stream, so decord's older bundled ffmpeg lacks the decoder (AV1),
            # and PyAV's own decoding failed too (_read_front_to_back).
            cause = (
                f"decord has no decoder for {self.info.codec or 'this'} video and PyAV could "
                "not decode it either; re-encode to H.264"
            )
        return VideoDecodeError(f"{self.path}: decoding failed ({cause})")


def file_version(path: Path) -> tuple[int, int] | None:
    """(mtime_ns, size) of the file, None when it cannot be stat'ed."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def open_video(path: str | Path, shortest_edge: int | None) -> OpenedVideo:
    """Probe `path` and open it with decord, its short side at `shortest_edge` (None: as displayed).

    The file's version (mtime, size) is taken first: `OpenedVideo.read` refuses frames of a file
    that changed meanwhile."""
    path = Path(path)
    version = file_version(path)
    info = probe_video(path)
    long_side, short_side = max(info.width, info.height), min(info.width, info.height)
    if long_side > MAX_ASPECT_RATIO * short_side:
        raise UnusableVideo(
            f"{path}: {info.width}x{info.height} pixels is {long_side / short_side:.0f}:1, beyond "
            f"the {MAX_ASPECT_RATIO:.0f}:1 a clip may have (the model sees a square crop of it; "
            "decoding it at the model's short side would take too much memory)"
        )
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
    video = OpenedVideo(
        path, info, None, np.zeros(0), 0.0, width, decode_width, height, version=version
    )
    try:
        if info.video_streams > 1:
            # decord opens the stream of its own choosing, which need not be main_stream's.
            raise RuntimeError(
                f"{info.video_streams} video streams, and decord cannot be told which to read"
            )
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), width=decode_width, height=height)
        frame_count = len(reader)
        if frame_count < 1:
            raise VideoDecodeError(f"{path}: decoder found no frames")
        times = np.asarray(reader.get_frame_timestamp(list(range(frame_count))), dtype=np.float64)
    except (RuntimeError, decord.DECORDError) as error:
        # PyAV decoded the first frame (probe_video): decord's older bundled ffmpeg lacks the
        # decoder (AV1), or cannot size a stream without a container (a raw .h264 from a
        # dashcam or a Raspberry Pi camera). PyAV reads the whole file instead, front to back;
        # if it cannot either, the error is decord's.
        reader, video.open_error = None, error
        times = _frame_times(path, video, error)
    starts, end = _timeline(times, info.fps)
    video.reader, video.starts, video.end = reader, starts, end
    return video


def _frame_times(path: Path, video: OpenedVideo, decord_error: BaseException) -> np.ndarray:
    """(start, stop) seconds of every frame, as decord's get_frame_timestamp gives them, from a
    PyAV pass over the stream (frames decoded, not converted). When PyAV cannot decode the
    stream either, the error is decord's (``decord_error``, why it could not open the file)."""
    av = _import_av()
    times: list[tuple[float, float]] = []
    try:
        for frame in _video_frames(av, path, video.info.stream_index):
            start = float(frame.time) if frame.time is not None else float("nan")
            length = (
                float(frame.duration * frame.time_base)
                if frame.duration and frame.time_base
                else 0.0
            )
            times.append((start, start + length))
    except av.FFmpegError as error:
        raise video.decode_error(decord_error) from error
    if not times:
        raise video.decode_error(decord_error)
    log.info(
        "decord could not open this file (%s); reading it with PyAV",
        _decord_cause(decord_error),
        extra={"action": "decode", "path": str(path), "frames": len(times)},
    )
    return np.asarray(times, dtype=np.float64)
