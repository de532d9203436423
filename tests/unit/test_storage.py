"""Clip path resolution: local paths, heaters keys under media_root, and a real S3 API
(moto's server on 127.0.0.1, started by the test; boto3 talks HTTP to it)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from moto.server import ThreadedMotoServer

from heaters_db.errors import HeatersError, PermanentJobError
from heaters_db.settings import Settings
from heaters_db.storage import (
    ClipFileMissing,
    ClipNotAFile,
    ObjectStoreError,
    new_s3_client,
    resolve_clip_path,
)
from heaters_db.web.media import MediaServer

BUCKET = "heaters-media"


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Fake credentials, and no profile files from this machine."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def bucket(s3_endpoint, aws_env):
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if BUCKET not in existing:
        client.create_bucket(Bucket=BUCKET)
    return client


def settings_for(tmp_path, **values) -> Settings:
    return Settings(home=tmp_path / "home", cache_dir=tmp_path / "cache", **values)


def test_absolute_path_is_used_as_is(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"video")
    assert resolve_clip_path(str(clip), settings_for(tmp_path)) == clip
    with pytest.raises(ClipFileMissing, match="gone.mp4: video file does not exist"):
        resolve_clip_path(str(tmp_path / "gone.mp4"), settings_for(tmp_path))


def test_bare_key_under_media_root(tmp_path):
    media = tmp_path / "media"
    (media / "clips").mkdir(parents=True)
    (media / "clips" / "x.mp4").write_bytes(b"video")
    settings = settings_for(tmp_path, media_root=media)
    assert resolve_clip_path("clips/x.mp4", settings) == media / "clips" / "x.mp4"
    assert resolve_clip_path("./clips/x.mp4", settings) == media / "clips" / "x.mp4"


def test_unresolvable_key_names_the_path_and_the_settings(tmp_path):
    with pytest.raises(ClipFileMissing) as caught:
        resolve_clip_path("clips/y.mp4", settings_for(tmp_path, media_root=tmp_path))
    message = str(caught.value)
    assert "clips/y.mp4" in message
    assert "HEATERS_MEDIA_ROOT" in message and "HEATERS_S3_BUCKET" in message
    assert isinstance(caught.value, HeatersError)
    with pytest.raises(ClipFileMissing, match="HEATERS_MEDIA_ROOT is not set"):
        resolve_clip_path("clips/y.mp4", settings_for(tmp_path))
    with pytest.raises(ClipFileMissing, match="no clip_filepath"):
        resolve_clip_path("", settings_for(tmp_path))
    with pytest.raises(ClipFileMissing, match=r"'\.\.'"):
        resolve_clip_path("../secret.mp4", settings_for(tmp_path, media_root=tmp_path))


def test_s3_url_downloads_once_and_refreshes_on_change(tmp_path, bucket, s3_endpoint):
    bucket.put_object(Bucket=BUCKET, Key="clips/a.mp4", Body=b"first version")
    settings = settings_for(tmp_path, s3_endpoint_url=s3_endpoint)
    local = resolve_clip_path(f"s3://{BUCKET}/clips/a.mp4", settings)
    assert local == tmp_path / "cache" / "s3" / BUCKET / "clips" / "a.mp4"
    assert local.read_bytes() == b"first version"
    first_stat = local.stat()
    # The cached copy carries the object's age (decode.SETTLING_SECONDS reads it), not the
    # download's: a stored object is complete, unlike a local file still being written.
    modified = bucket.head_object(Bucket=BUCKET, Key="clips/a.mp4")["LastModified"]
    assert first_stat.st_mtime == modified.timestamp()  # whole seconds, as S3 reports it

    again = resolve_clip_path(f"s3://{BUCKET}/clips/a.mp4", settings)
    assert again == local
    assert (again.stat().st_ino, again.stat().st_mtime_ns) == (
        first_stat.st_ino,
        first_stat.st_mtime_ns,
    )

    bucket.put_object(Bucket=BUCKET, Key="clips/a.mp4", Body=b"second version!")
    assert (
        resolve_clip_path(f"s3://{BUCKET}/clips/a.mp4", settings).read_bytes() == b"second version!"
    )
    assert not list(local.parent.glob("*.part"))


def test_bare_key_falls_back_to_the_bucket(tmp_path, bucket, s3_endpoint):
    bucket.put_object(Bucket=BUCKET, Key="clips/b.mp4", Body=b"remote clip")
    settings = settings_for(
        tmp_path, media_root=tmp_path / "empty-media", s3_bucket=BUCKET, s3_endpoint_url=s3_endpoint
    )
    local = resolve_clip_path("clips/b.mp4", settings)
    assert local.read_bytes() == b"remote clip"


def test_missing_object_and_bad_urls(tmp_path, bucket, s3_endpoint):
    settings = settings_for(tmp_path, s3_endpoint_url=s3_endpoint)
    with pytest.raises(ClipFileMissing, match="no such object"):
        resolve_clip_path(f"s3://{BUCKET}/clips/absent.mp4", settings)
    with pytest.raises(ClipFileMissing, match="not an s3://bucket/key URL"):
        resolve_clip_path("s3://only-bucket", settings)
    with pytest.raises(ClipFileMissing, match="leave its directory"):
        resolve_clip_path(f"s3://{BUCKET}/../../etc/passwd", settings)


def test_unreachable_object_store_is_an_object_store_error(tmp_path, aws_env):
    # A port nothing listens on: connection refused, reported as a HeatersError.
    settings = settings_for(tmp_path, s3_endpoint_url="http://127.0.0.1:9")
    with pytest.raises(ObjectStoreError, match="unreachable"):
        resolve_clip_path(f"s3://{BUCKET}/clips/a.mp4", settings)


@pytest.mark.parametrize("kind", ["directory", "fifo", "symlink loop"])
def test_a_path_that_exists_but_is_no_file_says_what_it_is(tmp_path, kind):
    # Not "not found, set HEATERS_MEDIA_ROOT" (the wrong setting to send an operator to) and not
    # a RuntimeError traceback retried five times: a permanent error naming what is there.
    root = tmp_path / "media"
    (root / "clips").mkdir(parents=True)
    target = root / "clips" / "x.mp4"
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to("x.mp4")
    expected = {
        "directory": "is a directory, not a video file",
        "fifo": "is not a regular file",
        "symlink loop": "cannot be opened",
    }[kind]
    settings = settings_for(tmp_path, media_root=root)
    for shown in ("clips/x.mp4", str(target)):
        with pytest.raises(ClipNotAFile, match=expected) as caught:
            resolve_clip_path(shown, settings)
        assert isinstance(caught.value, PermanentJobError)
        assert str(caught.value).startswith(shown)
    with pytest.raises(ClipNotAFile, match="is a directory"):
        resolve_clip_path(str(root / "clips") + "/", settings)  # a trailing slash


def test_s3_clients_made_in_many_threads_at_once_all_work(tmp_path, aws_env):
    """The daemon's workers and the web app's request threads make clients concurrently: each
    gets a working one, and one MediaServer makes a single client for all its threads."""
    settings = settings_for(tmp_path, s3_endpoint_url="http://127.0.0.1:9")
    media = MediaServer(settings)
    threads = 8
    start = threading.Barrier(threads)

    def make(_: int) -> tuple[str, object]:
        start.wait()
        url = new_s3_client(settings).generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": "clips/x.mp4"}, ExpiresIn=60
        )
        return url, media.s3_client()

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(make, range(threads)))
    assert all(f"/{BUCKET}/clips/x.mp4" in url and "Signature=" in url for url, _ in results)
    assert len({id(client) for _, client in results}) == 1
