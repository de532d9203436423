"""Serving a clip's video to the browser: a local file with HTTP Range, or a presigned URL.

Browsers need Range requests to seek and loop a <video>; Starlette's FileResponse answers them
(206 with Content-Range, 416 for a range past the end, If-Range). The page never names a path: the
URL carries a clip id and the path comes from `clips.clip_filepath`, located by
heaters_db.storage.locate_clip (one resolver for the decoder and the page), which downloads nothing:

- `/abs/path.mp4`: served as is (the database is trusted to name its own files);
- `clips/x.mp4` (heaters' bare key): `<HEATERS_MEDIA_ROOT>/clips/x.mp4`, refused if the key has
  `..` parts or resolves (through symlinks) outside the media root; when it is not there and
  HEATERS_S3_BUCKET is set, the object `s3://<bucket>/clips/x.mp4`;
- `s3://bucket/key`: the object.

Objects are not proxied: the browser is redirected to a presigned GET URL (boto3, the `s3` extra),
so the object store serves the ranges itself. Only video file types are served.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from starlette.responses import FileResponse, RedirectResponse, Response

from heaters_db.errors import HeatersError
from heaters_db.storage import (
    ClipFileMissing,
    ClipPathRefused,
    ObjectStoreError,
    StoredObject,
    locate_clip,
    new_s3_client,
)

if TYPE_CHECKING:
    from heaters_db.settings import Settings

log = logging.getLogger(__name__)

VIDEO_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
}
PRESIGNED_SECONDS = 3600


class MediaNotFound(HeatersError):
    """The clip's video is not where its clip_filepath says (or the clip has none)."""


class MediaRefused(HeatersError):
    """The clip's path is not served: it leaves the media root or is not a video file."""


def _video_type(name: str, shown: str) -> str:
    media_type = VIDEO_TYPES.get(PurePosixPath(name).suffix.lower())
    if media_type is None:
        raise MediaRefused(f"{shown}: not a video file ({', '.join(sorted(VIDEO_TYPES))})")
    return media_type


def locate(clip_filepath: str | None, settings: Settings) -> Path | StoredObject:
    """Where a clip's video is, by the rules in the module docstring; only video files."""
    if not clip_filepath:
        raise MediaNotFound("clip has no clip_filepath (not exported yet)")
    _video_type(clip_filepath, clip_filepath)
    try:
        location = locate_clip(clip_filepath, settings)
    except ClipPathRefused as error:
        raise MediaRefused(str(error)) from error
    except ClipFileMissing as error:
        raise MediaNotFound(str(error)) from error
    return location


def presigned_url(stored: StoredObject, client: Any, seconds: int = PRESIGNED_SECONDS) -> str:
    """A time-limited GET URL for the object; signing is local, nothing is fetched."""
    return client.generate_presigned_url(
        "get_object", Params={"Bucket": stored.bucket, "Key": stored.key}, ExpiresIn=seconds
    )


class MediaServer:
    """Answers video requests for one app; holds its S3 client (made on first use)."""

    def __init__(self, settings: Settings, s3_client: Any | None = None) -> None:
        self.settings = settings
        self._s3_client = s3_client
        self._s3_client_lock = threading.Lock()

    def s3_client(self) -> Any:
        # Request handlers run in a thread pool: one client is made, by the first of them.
        with self._s3_client_lock:
            if self._s3_client is None:
                try:
                    self._s3_client = new_s3_client(self.settings)
                except ObjectStoreError as error:
                    raise MediaNotFound(f"{error} (object-store clips cannot be shown)") from error
            return self._s3_client

    def response(self, clip_filepath: str | None) -> Response:
        """The clip's video: the file (Range-aware) or a redirect to a presigned object URL."""
        location = locate(clip_filepath, self.settings)
        if isinstance(location, StoredObject):
            url = presigned_url(location, self.s3_client())
            return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
        return FileResponse(
            location,
            media_type=_video_type(location.name, str(location)),
            # The page loops every tile: let the browser keep the bytes for this session.
            headers={"Cache-Control": "private, max-age=3600"},
        )
