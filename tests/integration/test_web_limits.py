"""The sorting page's limits (Starlette TestClient, real database): a body size limit,
400 for non-finite numbers, lone surrogates and absurd nesting, extra candidates refused rather than cut, the
optional access token, and a non-loopback bind that must name its allowed hosts."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from heaters_db.cli.sorting import sort
from heaters_db.web.app import MAX_EVENT_BYTES, create_app
from tests.integration.test_web_app import event_for, next_screen, settings_for
from tests.support.sorting_library import Library, make_library

JSON = {"content-type": "application/json"}


@pytest.fixture
def library(conn: psycopg.Connection, tmp_path: Path) -> Library:
    return make_library(conn, tmp_path / "media", clips=10)


def event_count(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM clip_sorting_events").fetchone()[0]


def post_raw(client: TestClient, body: bytes):
    return client.post("/api/events", content=body, headers=JSON)


def test_oversized_non_finite_and_deep_bodies_are_refused_with_4xx(
    db_url: str, library: Library, conn: psycopg.Connection, tmp_path: Path
) -> None:
    with TestClient(create_app(db_url, settings_for(tmp_path))) as client:
        event = event_for(next_screen(client)["screen"], 1)
        huge = json.dumps({**event, "padding": "x" * (MAX_EVENT_BYTES + 1)}).encode()
        response = post_raw(client, huge)
        assert response.status_code == 413, response.text

        for constant in ("Infinity", "-Infinity", "NaN"):
            text = json.dumps(event).replace(
                '"response_time_ms": 812', f'"response_time_ms": {constant}'
            )
            response = post_raw(client, text.encode())
            assert response.status_code == 400 and "not a number" in response.json()["error"]

        # A lone surrogate is valid JSON but no UTF-8 string: refused here, not a 500 in the
        # database driver.
        for field in ("anchor_reason", "candidate_rankings"):
            broken = {**event, field: "\ud800" if field == "anchor_reason" else [{"\ud800": 1}]}
            response = post_raw(client, json.dumps(broken).encode())
            assert response.status_code == 400, response.text
            assert "not valid Unicode" in response.json()["error"]

        deep = b"[" * 5000 + b"]" * 5000  # within the size limit, absurdly nested
        response = post_raw(client, deep)
        assert response.status_code == 400 and "nested" in response.json()["error"]

        assert event_count(conn) == 0
        assert client.post("/api/events", json=event).status_code == 201  # a real one still goes
        assert event_count(conn) == 1


def test_more_than_nine_candidates_are_refused_not_cut(
    db_url: str, library: Library, conn: psycopg.Connection, tmp_path: Path
) -> None:
    with TestClient(create_app(db_url, settings_for(tmp_path))) as client:
        event = event_for(next_screen(client)["screen"], None)
        others = [c for c in library.clip_ids if c != event["anchor"]]
        response = client.post(
            "/api/events", json={**event, "candidates": others[:9] + [others[0]]}
        )
        assert response.status_code == 400 and "at most 9 candidates" in response.json()["error"]
    assert event_count(conn) == 0


def test_access_token_is_required_when_set(db_url: str, library: Library, tmp_path: Path) -> None:
    app = create_app(db_url, settings_for(tmp_path), access_token="s3cret-token")
    with TestClient(app) as client:
        assert client.get("/").status_code == 401
        assert (
            client.get("/api/screen", headers={"authorization": "Bearer wrong"}).status_code == 401
        )
        ok = client.get("/api/screen", headers={"authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200
        page = client.get("/?token=s3cret-token")  # once in the URL, then a cookie
        assert page.status_code == 200 and "heaters_sort_token" in page.headers["set-cookie"]
        assert client.get("/api/status").status_code == 200  # the cookie carries it


def test_non_loopback_bind_requires_allowed_hosts(db_url: str, tmp_path: Path) -> None:
    env = {"HEATERS_DATABASE_URL": db_url, "HEATERS_HOME": str(tmp_path / "home")}
    result = CliRunner().invoke(sort, ["--host", "0.0.0.0", "--port", "0"], env=env)
    assert result.exit_code != 0
    assert "--allowed-host" in str(result.exception) or "--allowed-host" in result.output


def test_allowed_hosts_refuse_other_host_headers(
    db_url: str, library: Library, tmp_path: Path
) -> None:
    app = create_app(db_url, settings_for(tmp_path), allowed_hosts=["sorter.example"])
    with TestClient(app, base_url="http://sorter.example") as client:
        assert client.get("/api/status").status_code == 200
        rebound = client.get("/api/status", headers={"host": "rebound.example"})
        assert rebound.status_code == 400
