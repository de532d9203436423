"""The sorting page in a real headless Chromium (Debian's package, driven by Playwright's Python
package; Playwright's own browser downloads are never used): keys make rows, `z` leaves none,
and a refused event shows the database's message to the person.

docker/install-browser-deps.sh (run by `make setup`) installs /usr/bin/chromium; without it these
tests are skipped, saying so.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

from heaters_db.settings import Settings
from heaters_db.web.app import create_app
from tests.support.sorting_library import Library, make_library

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UNDO_MS = 600

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"Debian's chromium is not installed at {CHROMIUM}: run docker/install-browser-deps.sh "
    "(make setup does) to enable the browser tests",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def library(conn: psycopg.Connection, tmp_path: Path) -> Library:
    return make_library(conn, tmp_path / "media", clips=6)


@pytest.fixture
def server(sorter_url: str, library: Library, tmp_path: Path) -> Iterator[str]:
    """The sorting page on 127.0.0.1 and a free port, served by uvicorn in a thread, as a login
    that is only a member of heaters_sorter."""
    settings = Settings(home=tmp_path / "home", media_root=library.media_root)
    app = create_app(sorter_url, settings, allowed_hosts=["127.0.0.1"])
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="sorting-page", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the sorting page did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{server}/?mode=trick&undo_ms={UNDO_MS}&poll_ms=60000")
    expect(page.locator(".tile.anchor video")).to_be_visible()
    try:
        yield page
    finally:
        context.close()


def shown(page: Page) -> tuple[int, list[int]]:
    """The anchor and the candidates (in key order) on the page now."""
    anchor = int(page.locator(".tile.anchor").get_attribute("data-clip"))
    candidates = [
        int(value)
        for value in page.locator(".tile.candidate").evaluate_all(
            "tiles => tiles.map(tile => tile.dataset.clip)"
        )
    ]
    return anchor, candidates


def events(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT anchor_clip_id, selected_clip_id, rejected_clip_ids, candidate_clip_ids, "
        "sorting_mode, session_id, response_time_ms FROM clip_sorting_events ORDER BY id"
    ).fetchall()


def test_number_key_records_one_event(page: Page, conn: psycopg.Connection, tmp_path: Path) -> None:
    # The videos really play: the browser fetched them (Range requests) and decoded H.264.
    page.wait_for_function(
        "() => [...document.querySelectorAll('video')].every(v => v.videoWidth > 0)",
        timeout=15_000,
    )
    page.screenshot(path=str(tmp_path / "sorting-page.png"))
    anchor, candidates = shown(page)
    assert len(candidates) == 5  # six clips: everything but the anchor

    # Tile 4 marked clearly wrong (x 4), tile 5 marked and unmarked, then tile 2 chosen.
    for key in ("x", "4", "x", "5", "x", "5", "2"):
        page.keyboard.press(key)
    # Held for the undo window: nothing is written yet.
    assert events(conn) == []
    expect(page.locator("#count")).to_have_text("1", timeout=UNDO_MS + 5_000)

    [(row_anchor, selected, rejected, row_candidates, mode, session, took)] = events(conn)
    assert row_anchor == anchor and selected == candidates[1]
    assert row_candidates == candidates
    assert rejected == [candidates[3]]
    assert mode == "trick_similarity" and session is not None and took >= 0
    # The page moved on to another anchor.
    expect(page.locator(".tile.anchor")).not_to_have_attribute("data-clip", str(anchor))


def test_undo_leaves_no_row(page: Page, conn: psycopg.Connection) -> None:
    anchor, _ = shown(page)
    page.keyboard.press("1")
    page.keyboard.press("z")
    # Back on the same screen, to choose again.
    expect(page.locator(".tile.anchor")).to_have_attribute("data-clip", str(anchor))
    page.wait_for_timeout(UNDO_MS * 2 + 300)
    assert events(conn) == []
    expect(page.locator("#count")).to_have_text("0")

    page.keyboard.press("0")  # none similar, this time kept
    expect(page.locator("#count")).to_have_text("1", timeout=UNDO_MS + 5_000)
    [(row_anchor, selected, rejected, row_candidates, *_)] = events(conn)
    assert row_anchor == anchor and selected is None and rejected == row_candidates


def test_refused_event_shows_the_database_message(page: Page, conn: psycopg.Connection) -> None:
    anchor, candidates = shown(page)
    # The clip disappears between the screen and the key press: the trigger refuses the event.
    conn.execute("DELETE FROM clips WHERE id = %s", (candidates[-1],))
    page.keyboard.press("1")
    error = page.locator("#error")
    expect(error).to_be_visible(timeout=UNDO_MS + 5_000)
    expect(error).to_contain_text(f"sorting event refused: unknown clip ids {{{candidates[-1]}}}")
    expect(error).to_contain_text(f"anchor clip {anchor} not saved")
    assert events(conn) == []
    expect(page.locator("#count")).to_have_text("0")


def test_new_head_is_announced(
    page: Page, server: str, conn: psycopg.Connection, library: Library
) -> None:
    page.goto(f"{server}/?mode=trick&undo_ms={UNDO_MS}&poll_ms=300")
    expect(page.locator("#head")).to_have_text("trick: no active head (default embeddings)")
    conn.execute(
        "INSERT INTO projection_heads (mode, version, base_variant_id, architecture, weights, "
        "weights_checksum, input_dim, output_dim, metrics, status, activated_at) VALUES "
        "('trick_similarity', 1, %s, '{}', 'x', 'x', 16, 16, "
        """'{"holdout": {"triplet_accuracy": 0.8125, "screen_top1": 0.5}}', 'active', now())""",
        (library.variant_id,),
    )
    expect(page.locator("#notice")).to_contain_text("New trick head v1 activated")
    expect(page.locator("#head")).to_have_text(
        "trick head v1 · holdout triplet accuracy 81%, top-1 50%"
    )
