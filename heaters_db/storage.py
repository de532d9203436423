"""Turn a `clips.clip_filepath` into a local file the decoder can open.

heaters stores object-store keys (`clips/<name>.mp4`); heaters-db also accepts absolute paths
and `s3://bucket/key` URLs:

- `/abs/path.mp4`: used as is.
- `s3://bucket/key`: downloaded once to `<cache_dir>/s3/<bucket>/<key>`; a later call re-uses
  the file while the object's size and ETag are unchanged.
- `clips/x.mp4` (a bare key): `<media_root>/clips/x.mp4` when that file exists, else
  `s3://<s3_bucket>/clips/x.mp4` when a bucket is configured. A key with `..` parts, or one that
  resolves (through symlinks) outside the media root, is refused (ClipPathRefused).

`locate_clip` applies these rules without fetching anything (the sorting page serves what it
finds: heaters_db.web.media); `resolve_clip_path` also downloads an object (the decoder).

boto3 is optional (the `s3` extra) and imported only when an object is fetched.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from heaters_db.errors import HeatersError, PermanentJobError

if TYPE_CHECKING:
    from heaters_db.settings import Settings

log = logging.getLogger(__name__)

S3_PREFIX = "s3://"


class ClipFileMissing(PermanentJobError):
    """The clip's video file could not be found locally or in the object store (permanent: the
    job is dead at once; a new clip_filepath enqueues a new job)."""


class ClipPathRefused(ClipFileMissing):
    """The clip's key would leave its directory: `..` parts, or a symlink out of the media root."""


class ClipNotAFile(PermanentJobError):
    """Something is at the clip's path, but not a video file: a directory, a FIFO or device, a
    symlink loop, a path that cannot be opened (permanent, like a missing file)."""


def _is_local_file(path: Path, shown: str) -> bool:
    """True for a regular file at `path` (symlinks followed), False when nothing is there;
    ClipNotAFile when something else is (named by `shown`, the clip_filepath as stored)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:  # also a dangling symlink
        return False
    except OSError as error:  # a symlink loop (ELOOP), a name too long, a parent not readable
        raise ClipNotAFile(f"{shown}: cannot be opened ({error.strerror or error})") from None
    if stat.S_ISREG(mode):
        return True
    if stat.S_ISDIR(mode):
        raise ClipNotAFile(f"{shown}: is a directory, not a video file")
    raise ClipNotAFile(f"{shown}: is not a regular file (a FIFO, socket or device)")


@dataclass(frozen=True)
class StoredObject:
    """A clip's video in the object store."""

    bucket: str
    key: str


class ObjectStoreError(HeatersError):
    """A clip could not be fetched from the object store."""


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key)."""
    rest = url[len(S3_PREFIX) :]
    bucket, _, key = rest.partition("/")
    if not bucket or not key or key.endswith("/"):
        raise ClipFileMissing(f"{url}: not an s3://bucket/key URL")
    return bucket, key


def _safe_key(key: str, url: str) -> PurePosixPath:
    """The key as a relative path that cannot climb out of the cache directory."""
    parts = PurePosixPath(key).parts
    if any(part in ("..", "") for part in parts) or key.startswith("/"):
        raise ClipPathRefused(f"{url}: key would leave its directory ('..' or empty parts)")
    return PurePosixPath(*parts)


def new_s3_client(settings: Settings) -> Any:
    """An S3 client from its own boto3 Session. ``boto3.client`` makes clients from one shared
    module-level session, and boto3's guide says Session objects are not thread safe (a new one
    per thread); the daemon's workers and the web app's request threads make clients."""
    try:
        import boto3
    except ImportError as error:
        raise ObjectStoreError(
            "boto3 is not installed: install heaters-db[s3] to read s3:// clip paths"
        ) from error
    return boto3.session.Session().client("s3", endpoint_url=settings.s3_endpoint_url or None)


def _etag_file(path: Path) -> Path:
    return path.with_name(path.name + ".etag")


def download_s3(url: str, settings: Settings, client: Any | None = None) -> Path:
    """Fetch `s3://bucket/key` into the cache (if not already there unchanged) and return it."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parse_s3_url(url)
    target = settings.resolved_cache_dir / "s3" / bucket / _safe_key(key, url)
    client = client or new_s3_client(settings)
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            raise ClipFileMissing(f"{url}: no such object in the object store") from error
        raise ObjectStoreError(
            f"{url}: object store refused the request ({code or error})"
        ) from error
    except BotoCoreError as error:
        raise ObjectStoreError(f"{url}: object store unreachable ({error})") from error

    size, etag = int(head["ContentLength"]), str(head.get("ETag", ""))
    etag_file = _etag_file(target)
    if (
        target.is_file()
        and target.stat().st_size == size
        and etag_file.is_file()
        and etag_file.read_text() == etag
    ):
        log.debug("clip cached", extra={"action": "s3_cache_hit", "url": url})
        return target

    target.parent.mkdir(parents=True, exist_ok=True)
    # Download beside the target and rename: another daemon on this host may read the same key.
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".part")
    os.close(handle)
    try:
        client.download_file(bucket, key, partial)
        modified = head.get("LastModified")
        if modified is not None:  # the object's age, not the download's: an object is whole
            os.utime(partial, (modified.timestamp(), modified.timestamp()))  # once it is listed
        os.replace(partial, target)
    except (ClientError, BotoCoreError) as error:
        raise ObjectStoreError(f"{url}: download failed ({error})") from error
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    etag_file.write_text(etag)
    log.info("clip downloaded", extra={"action": "s3_download", "url": url, "bytes": size})
    return target


def locate_clip(clip_filepath: str | None, settings: Settings) -> Path | StoredObject:
    """Where a clip's video is, by the rules in the module docstring, fetching nothing.

    Raises ClipPathRefused for a key that leaves the media root, ClipFileMissing when nothing
    matches (naming the path and the settings to set), ClipNotAFile when what is there is not a
    file (a directory, a FIFO, a symlink loop).
    """
    if not clip_filepath:
        raise ClipFileMissing("clip has no clip_filepath")
    if clip_filepath.startswith(S3_PREFIX):
        return StoredObject(*parse_s3_url(clip_filepath))

    path = Path(clip_filepath)
    if path.is_absolute():
        if not _is_local_file(path, clip_filepath):
            raise ClipFileMissing(f"{path}: video file does not exist")
        return path

    if "\\" in clip_filepath:  # a Windows separator would hide a `..` part
        raise ClipPathRefused(f"{clip_filepath}: key would leave the media root")
    key = str(_safe_key(str(PurePosixPath(clip_filepath)), clip_filepath))
    if settings.media_root is not None:
        root = Path(settings.media_root)
        local = root / key
        try:
            resolved = local.resolve()
        except (RuntimeError, OSError) as error:  # Python 3.11 raises RuntimeError on a loop
            raise ClipNotAFile(f"{clip_filepath}: cannot be opened ({error})") from None
        # The safe rule: a symlink under the media root may not lead out of it.
        if not resolved.is_relative_to(root.resolve()):
            raise ClipPathRefused(
                f"{clip_filepath}: resolves outside HEATERS_MEDIA_ROOT ({root.resolve()})"
            )
        if _is_local_file(local, clip_filepath):
            return local
    if settings.s3_bucket:
        return StoredObject(settings.s3_bucket, key)
    looked = (
        f"not under HEATERS_MEDIA_ROOT={settings.media_root}"
        if settings.media_root is not None
        else "HEATERS_MEDIA_ROOT is not set"
    )
    raise ClipFileMissing(
        f"{clip_filepath}: clip file not found ({looked}, HEATERS_S3_BUCKET is not set); "
        "set HEATERS_MEDIA_ROOT to the directory holding heaters' clip keys, "
        "or HEATERS_S3_BUCKET (and HEATERS_S3_ENDPOINT_URL) to fetch them"
    )


def resolve_clip_path(clip_filepath: str, settings: Settings | None = None) -> Path:
    """A local path for `clip_filepath` (locate_clip), an object downloaded to the cache first.

    Raises ClipFileMissing naming the path and the settings to set when nothing matches, and
    ObjectStoreError when the object store fails.
    """
    if settings is None:
        from heaters_db.settings import get_settings

        settings = get_settings()
    location = locate_clip(clip_filepath, settings)
    if isinstance(location, StoredObject):
        return download_s3(f"{S3_PREFIX}{location.bucket}/{location.key}", settings)
    return location
