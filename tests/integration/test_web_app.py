"""The sorting page's HTTP side (Starlette TestClient, real database, real video files): the page
and its JSON API, one row per choice, refusals in the database's words, Range requests, and
paths that must not be served."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from starlette.testclient import TestClient

from heaters_db.cli.sorting import is_loopback
from heaters_db.settings import Settings
from heaters_db.web.app import create_app
from heaters_db.web.store import normalise_mode
from tests.support.sorting_library import Library, make_library


@pytest.fixture
def library(conn: psycopg.Connection, tmp_path: Path) -> Library:
    return make_library(conn, tmp_path / "media", clips=10)


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(home=tmp_path / "home", media_root=tmp_path / "media", **overrides)


@pytest.fixture
def client(sorter_url: str, library: Library, tmp_path: Path) -> Iterator[TestClient]:
    """The page as a login that is only a member of heaters_sorter."""
    with TestClient(create_app(sorter_url, settings_for(tmp_path))) as test_client:
        yield test_client


def next_screen(client: TestClient, **params: str) -> dict[str, Any]:
    response = client.get("/api/screen", params={"mode": "trick", **params})
    assert response.status_code == 200, response.text
    return response.json()


def event_for(screen: dict[str, Any], selected_key: int | None) -> dict[str, Any]:
    """What the page POSTs when the person presses `selected_key` (None: 0, none similar)."""
    candidates = screen["candidates"]
    selected = None
    if selected_key is not None:
        selected = next(c["clip_id"] for c in candidates if c["key"] == selected_key)
    return {
        "mode": screen["mode"],
        "anchor": screen["anchor"]["clip_id"],
        "candidates": [c["clip_id"] for c in candidates],
        "selected": selected,
        "session_id": str(uuid.uuid4()),
        "response_time_ms": 812,
        "candidate_rankings": [
            {k: c[k] for k in ("clip_id", "key", "position", "source", "distance")}
            for c in candidates
        ],
    }


def test_page_shows_anchor_and_numbered_candidates(client: TestClient, library: Library) -> None:
    response = client.get("/?mode=trick&undo_ms=750")
    assert response.status_code == 200, response.text
    html = response.text
    assert 'class="tile anchor"' in html
    assert html.count('class="tile candidate"') == 8  # the default: eight candidates, keys 1-8
    for key in range(1, 9):
        assert f'data-key="{key}"' in html
    assert 'data-key="0"' in html  # "none similar"
    assert "muted loop autoplay" in html
    assert '"undo_ms": 750' in html
    assert "/static/sort.js" in html


def test_screen_api_gives_known_clips_and_skips_excluded_anchors(
    client: TestClient, library: Library
) -> None:
    body = next_screen(client)
    screen = body["screen"]
    anchor = screen["anchor"]["clip_id"]
    shown = [c["clip_id"] for c in screen["candidates"]]
    assert anchor in library.clip_ids and set(shown) <= set(library.clip_ids)
    assert anchor not in shown and len(set(shown)) == len(shown) == 8
    assert [c["key"] for c in screen["candidates"]] == list(range(1, 9))
    assert f'src="/media/{anchor}"' in body["html"]

    later = next_screen(client, exclude=str(anchor))["screen"]
    assert later["anchor"]["clip_id"] != anchor


def test_a_choice_is_one_row(client: TestClient, conn: psycopg.Connection) -> None:
    screen = next_screen(client)["screen"]
    event = event_for(screen, selected_key=3)
    # Only the tile marked clearly wrong is a hard negative; the others stay implicit.
    event["rejected"] = [screen["candidates"][0]["clip_id"]]
    event["anchor_reason"] = screen["anchor_reason"]
    response = client.post("/api/events", json=event)
    assert response.status_code == 201, response.text
    row = conn.execute(
        "SELECT id, anchor_clip_id, selected_clip_id, rejected_clip_ids, candidate_clip_ids, "
        "sorting_mode, session_id, response_time_ms, candidate_rankings FROM clip_sorting_events"
    ).fetchall()
    assert len(row) == 1
    (event_id, anchor, selected, rejected, candidates, mode, session, took, rankings) = row[0]
    assert event_id == response.json()["event_id"]
    assert anchor == event["anchor"] and selected == event["selected"]
    assert candidates == event["candidates"]
    assert rejected == event["rejected"]
    assert mode == "trick_similarity" and str(session) == event["session_id"] and took == 812
    assert rankings == event["candidate_rankings"]
    reason, sources = conn.execute(
        "SELECT anchor_reason, candidate_sources FROM clip_sorting_events"
    ).fetchone()
    assert reason == screen["anchor_reason"]
    assert sources == [c["source"] for c in screen["candidates"]]


def test_none_similar_rejects_every_candidate(client: TestClient, conn: psycopg.Connection) -> None:
    screen = next_screen(client, mode="spot")["screen"]
    event = event_for(screen, selected_key=None)
    assert client.post("/api/events", json=event).status_code == 201
    selected, rejected, mode = conn.execute(
        "SELECT selected_clip_id, rejected_clip_ids, sorting_mode FROM clip_sorting_events"
    ).fetchone()
    assert selected is None and rejected == event["candidates"] and mode == "spot_similarity"


def test_refused_event_returns_the_database_message(
    client: TestClient, conn: psycopg.Connection
) -> None:
    screen = next_screen(client)["screen"]
    event = event_for(screen, selected_key=1)
    event["candidates"] = [*event["candidates"], 999_999]
    response = client.post("/api/events", json=event)
    assert response.status_code == 422
    assert response.json()["error"] == "sorting event refused: unknown clip ids {999999}"

    event = event_for(screen, selected_key=1)
    event["candidates"].append(event["anchor"])
    response = client.post("/api/events", json=event)
    assert response.status_code == 422
    assert "is among its own candidates" in response.json()["error"]
    assert conn.execute("SELECT count(*) FROM clip_sorting_events").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mode": 5}, "mode must be a string"),
        ({"mode": {"a": 1}}, "mode must be a string"),
        ({"candidate_rankings": [{"clip_id": [1], "source": "x"}]}, "clip_id must be a clip id"),
        ({"candidate_rankings": ["x"]}, "candidate_rankings[] must be objects"),
        ({"candidate_rankings": [{"clip_id": 1, "source": 7}]}, "source must be a string"),
    ],
)
def test_a_real_screen_with_one_field_of_the_wrong_type_is_a_400(
    client: TestClient, conn: psycopg.Connection, change: dict, message: str
) -> None:
    # These were 500s: an AttributeError in the mode's spelling, a TypeError in the insert.
    event = event_for(next_screen(client)["screen"], selected_key=1) | change
    response = client.post("/api/events", json=event)
    assert response.status_code == 400, response.text
    assert "malformed event" in response.json()["error"] and message in response.json()["error"]
    assert conn.execute("SELECT count(*) FROM clip_sorting_events").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        ("not json", {"content-type": "application/json"}, 400, "malformed event"),
        (
            "anchor=1",
            {"content-type": "application/x-www-form-urlencoded"},
            415,
            "application/json",
        ),
        ("{}", {"content-type": "application/json"}, 400, "malformed event"),
        (
            '{"mode": "trick"}',
            {"content-type": "application/json", "origin": "http://evil.example"},
            403,
            "cross-origin",
        ),
    ],
)
def test_malformed_or_foreign_posts_are_refused(
    client: TestClient, body: str, headers: dict[str, str], status: int, message: str
) -> None:
    response = client.post("/api/events", content=body, headers=headers)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_status_reports_the_active_head_and_its_holdout_metrics(
    client: TestClient, conn: psycopg.Connection, library: Library
) -> None:
    assert client.get("/api/status").json() == {"heads": {"trick": None, "spot": None}}
    conn.execute(
        "INSERT INTO projection_heads (mode, version, base_variant_id, architecture, weights, "
        "weights_checksum, input_dim, output_dim, metrics, status, activated_at) VALUES "
        "('trick_similarity', 3, %s, '{}', 'x', 'x', 16, 16, "
        """'{"holdout": {"triplet_accuracy": 0.8125}, "gate": {"screen_top1": {"new": 0.5}}}', """
        "'active', now())",
        (library.variant_id,),
    )
    heads = client.get("/api/status").json()["heads"]
    assert heads["spot"] is None
    assert heads["trick"]["version"] == 3
    assert heads["trick"]["holdout"] == {"triplet_accuracy": 0.8125, "screen_top1": 0.5}
    assert heads["trick"]["baseline"] == {}


def test_status_shows_what_the_learning_loop_stores(
    client: TestClient, conn: psycopg.Connection, library: Library
) -> None:
    # The shape learning/jobs.py writes: holdout and baseline summaries, and the gate's verdict.
    metrics = {
        "holdout": {"events": 40, "triplet_accuracy": 0.75, "screen_top1": 0.4, "mrr": 0.6},
        "baseline": {"events": 40, "triplet_accuracy": 0.6, "screen_top1": 0.3},
        "gate": {"passed": True, "triplet_accuracy": {"new": 0.75, "baseline": 0.6}},
    }
    conn.execute(
        "INSERT INTO projection_heads (mode, version, base_variant_id, architecture, weights, "
        "weights_checksum, input_dim, output_dim, metrics, status, activated_at) VALUES "
        "('spot_similarity', 1, %s, '{}', 'x', 'x', 16, 16, %s, 'active', now())",
        (library.variant_id, json.dumps(metrics)),
    )
    spot = client.get("/api/status").json()["heads"]["spot"]
    assert spot["holdout"] == {"triplet_accuracy": 0.75, "screen_top1": 0.4}
    assert spot["baseline"] == {"triplet_accuracy": 0.6, "screen_top1": 0.3}
    assert spot["holdout_events"] == 40


def test_database_errors_reach_the_page(client: TestClient, conn: psycopg.Connection) -> None:
    conn.execute("UPDATE embedding_variants SET is_default = false")
    response = client.get("/")
    assert response.status_code == 503
    assert "no default embedding variant" in response.text
    response = client.get("/api/screen?mode=trick")
    assert response.status_code == 503
    assert "no default embedding variant" in response.json()["error"]


def test_unknown_mode_is_a_clear_400(client: TestClient) -> None:
    response = client.get("/?mode=flip")
    assert response.status_code == 400 and "unknown mode" in response.text


# -- video files -------------------------------------------------------------------------------


def test_video_is_served_with_range_support(client: TestClient, library: Library) -> None:
    clip = library.clip_ids[0]
    data = (library.media_root / "clips" / "clip_00.mp4").read_bytes()
    size = len(data)

    whole = client.get(f"/media/{clip}")
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"

    part = client.get(f"/media/{clip}", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 0-99/{size}"
    assert part.content == data[:100]

    tail = client.get(f"/media/{clip}", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]

    beyond = client.get(f"/media/{clip}", headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"

    head = client.head(f"/media/{clip}")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(size)


@pytest.fixture
def outside_file(tmp_path: Path) -> Path:
    """A video-named file beside, not under, the media root."""
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"not for the browser")
    return secret


def add_clip(conn: psycopg.Connection, clip_filepath: str | None) -> int:
    return conn.execute(
        "INSERT INTO clips (clip_filepath, clip_identifier) VALUES (%s, 'odd') RETURNING id",
        (clip_filepath,),
    ).fetchone()[0]


def test_paths_leaving_the_media_root_are_refused(
    client: TestClient, conn: psycopg.Connection, library: Library, outside_file: Path
) -> None:
    (library.media_root / "clips" / "link.mp4").symlink_to(outside_file)
    for clip_filepath in ("../secret.mp4", "clips/../../secret.mp4", "clips/link.mp4"):
        response = client.get(f"/media/{add_clip(conn, clip_filepath)}")
        assert response.status_code == 403, clip_filepath
        assert b"not for the browser" not in response.content
    # Only video files, even at an absolute path the database names.
    response = client.get(f"/media/{add_clip(conn, '/etc/passwd')}")
    assert response.status_code == 403 and "not a video file" in response.text
    # The URL carries a clip id, never a path.
    assert client.get("/media/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.get("/media/../secret.mp4").status_code == 404


def test_missing_videos_are_404(client: TestClient, conn: psycopg.Connection) -> None:
    assert client.get("/media/987654").status_code == 404
    assert "not exported" in client.get(f"/media/{add_clip(conn, None)}").text
    assert client.get(f"/media/{add_clip(conn, 'clips/gone.mp4')}").status_code == 404
    assert client.get(f"/media/{add_clip(conn, '/nowhere/gone.mp4')}").status_code == 404
    assert client.get(f"/media/{add_clip(conn, 's3://no-key.mp4')}").status_code == 404


def test_object_store_clips_redirect_to_presigned_urls(
    sorter_url: str,
    conn: psycopg.Connection,
    library: Library,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # No profile or endpoint of this machine's: signing must not depend on them.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    settings = settings_for(tmp_path, s3_bucket="heaters-media")
    bare = add_clip(conn, "clips/only-in-bucket.mp4")
    explicit = add_clip(conn, "s3://other-bucket/exports/x.mp4")
    with TestClient(create_app(sorter_url, settings)) as client:
        for clip, bucket, key in (
            (bare, "heaters-media", "clips/only-in-bucket.mp4"),
            (explicit, "other-bucket", "exports/x.mp4"),
        ):
            response = client.get(f"/media/{clip}", follow_redirects=False)
            assert response.status_code == 307
            location = response.headers["location"]
            assert bucket in location and key in location and "Signature=" in location
        # A local file under the media root still wins over the bucket.
        local = client.get(f"/media/{library.clip_ids[0]}", follow_redirects=False)
        assert local.status_code == 200


def test_trusted_hosts_refuse_other_host_headers(
    sorter_url: str, library: Library, tmp_path: Path
) -> None:
    app = create_app(sorter_url, settings_for(tmp_path), allowed_hosts=["127.0.0.1", "localhost"])
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        assert client.get("/api/status").status_code == 200
        response = client.get("/api/status", headers={"host": "rebound.example:8000"})
        assert response.status_code == 400


def test_unreachable_database_is_reported(library: Library, tmp_path: Path) -> None:
    app = create_app("postgresql://heaters@127.0.0.1:1/nowhere", settings_for(tmp_path))
    with TestClient(app) as client:
        response = client.get("/")
        assert response.status_code == 503 and "cannot connect to" in response.text
        event = {"mode": "trick", "anchor": 1, "candidates": [2], "session_id": str(uuid.uuid4())}
        response = client.post("/api/events", json=event)
        assert response.status_code == 503 and "cannot connect to" in response.json()["error"]


def test_sort_command_serves_the_page_on_loopback(
    sorter_url: str, library: Library, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "HEATERS_DATABASE_URL": sorter_url,
        "HEATERS_MEDIA_ROOT": str(library.media_root),
        "HEATERS_HOME": str(tmp_path / "home"),
    }
    command = [str(Path(sys.executable).with_name("heaters-db")), "sort", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"{base}/?mode=spot", timeout=5)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(server.communicate()[0].decode()) from None
                time.sleep(0.2)
        assert response.status_code == 200 and 'class="tile anchor"' in response.text
        # Bound to loopback, it answers only loopback names (no DNS rebinding).
        rebound = httpx.get(f"{base}/", headers={"host": f"rebound.example:{port}"}, timeout=5)
        assert rebound.status_code == 400
    finally:
        server.terminate()
        output = server.communicate(timeout=15)[0].decode()
    assert f"sorting page on http://127.0.0.1:{port}/?mode=trick" in output
    assert "warning" not in output


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("192.168.1.4", False),
        ("sorter.example", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    "spelling",
    ["trick", "spot", "TRICK", " spot ", "Trick_Similarity", "spot_similarity", "tricks", "", "x"],
)
def test_the_page_and_sql_sorting_mode_accept_the_same_spellings(
    conn: psycopg.Connection, spelling: str
) -> None:
    """The page checks a mode before it reaches the database (normalise_mode); the database's
    rule is sql/functions/sorting_mode.sql. Both must accept and refuse the same spellings."""
    try:
        page = f"{normalise_mode(spelling)}_similarity"
    except ValueError:
        page = None
    try:
        database = conn.execute("SELECT sorting_mode(%s)", (spelling,)).fetchone()[0]
    except psycopg.errors.InvalidParameterValue:
        database = None
    assert page == database
