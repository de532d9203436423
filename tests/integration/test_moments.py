"""Moments end to end: window variants through `variant add` and `embed`, real H.264 clips, the
tiny V-JEPA 2, and similar_moments / similar_moments_to_embedding in SQL.

The library: clips A and B hold the same short planted motion (a flickering, drifting
checkerboard filling the frame) at different times, on different backgrounds; C and D are A's and
B's backgrounds alone, for as long. Over the whole clip A looks most like C, so similar_clips(A)
ranks C first; the planted moment of A finds B's, at B's time.
"""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from psycopg import sql

from heaters_db import migrations
from heaters_db.embedding.windows import window_spans
from tests.integration.conftest import TINY_DIM, TINY_FRAMES, MediaRoot, insert_clips, job_rows
from tests.integration.test_embed_cli import Invoke, add_tiny_variant, invoke  # noqa: F401
from tests.integration.test_similarity import HEAD_DIM, insert_head, project, random_head
from tests.support import videos
from tests.support.tiny_model import TINY_MODEL_NAME

FPS = 10.0
SECONDS = 6.0
SIZE = (64, 64)
PLANT_SECONDS = 1.5
WINDOW, STRIDE = 1.5, 0.5
PLANT_A, PLANT_B = 1.0, 3.7  # B's does not start on a window boundary


def planted(index: int, width: int, height: int) -> np.ndarray:
    """The planted motion: a saturated green field with a white bar sweeping fast across it
    (visually very distinct, so even the random tiny model separates it from the backgrounds)."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[..., 1] = 230
    left = (index * width // 5) % (width - 12)
    frame[:, left : left + 12] = 255
    return frame


def background_a(index: int, width: int, height: int) -> np.ndarray:
    return videos.moving_bar(index, width, height)


def background_b(index: int, width: int, height: int) -> np.ndarray:
    """A dark blue field with a red square circling slowly."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[..., 2] = 120
    cx = int(width / 2 + width / 4 * np.cos(index / 6))
    cy = int(height / 2 + height / 4 * np.sin(index / 6))
    frame[max(cy - 6, 0) : cy + 6, max(cx - 6, 0) : cx + 6] = (220, 30, 30)
    return frame


def line(background, plant_at: float | None) -> list[np.ndarray]:
    frames = []
    for index in range(int(SECONDS * FPS)):
        seconds = index / FPS
        if plant_at is not None and plant_at <= seconds < plant_at + PLANT_SECONDS:
            frames.append(planted(index - round(plant_at * FPS), *SIZE))
        else:
            frames.append(background(index, *SIZE))
    return frames


def write_library(media_root: MediaRoot) -> dict[str, str]:
    clips = {
        "A": (background_a, PLANT_A),
        "B": (background_b, PLANT_B),
        "C": (background_a, None),
        "D": (background_b, None),
    }
    keys = {}
    for name, (background, plant_at) in clips.items():
        path = media_root.root / "clips" / f"moments-{name}.mp4"
        if not path.exists():
            videos.write_video(path, line(background, plant_at), fps=FPS)
        keys[name] = f"clips/moments-{name}.mp4"
    return keys


@pytest.fixture
def variants(invoke: Invoke, conn: psycopg.Connection) -> dict[str, int]:  # noqa: F811
    """The tiny model's full-clip variant (the default) and its window variant, the only enabled
    ones: {"full": id, "windows": id}."""
    add_tiny_variant(invoke, "--default", "--no-backfill")
    conn.execute(
        "UPDATE embedding_variants SET enabled = false WHERE model_name <> %s", (TINY_MODEL_NAME,)
    )
    added = invoke(
        "variant", "add", TINY_MODEL_NAME, "video_moment_windows", "--frames", str(TINY_FRAMES),
        "--window-seconds", str(WINDOW), "--stride-seconds", str(STRIDE), "--no-backfill",
    )  # fmt: skip
    assert "1.5 s windows every 0.5 s" in added.output
    rows = conn.execute(
        "SELECT generation_strategy, id FROM embedding_variants WHERE enabled"
    ).fetchall()
    ids = dict(rows)
    return {"full": ids["video_full_clip"], "windows": ids["video_moment_windows"]}


@pytest.fixture
def library(
    invoke: Invoke,  # noqa: F811
    conn: psycopg.Connection,
    media_root: MediaRoot,
    variants: dict[str, int],
) -> dict[str, int]:
    keys = write_library(media_root)
    ids = dict(zip(keys, insert_clips(conn, list(keys.values())), strict=True))
    conn.execute("DELETE FROM pipeline_jobs")
    clip_args = [arg for clip_id in ids.values() for arg in ("--clip", str(clip_id))]
    invoke("embed", *clip_args)
    return ids


def test_a_disabled_window_variant_is_enabled_again_with_its_shape(
    invoke: Invoke,  # noqa: F811
    conn: psycopg.Connection,
    variants: dict[str, int],
) -> None:
    # Re-adding without the window options kept failing with a CheckViolation traceback.
    invoke("variant", "disable", TINY_MODEL_NAME, "video_moment_windows")
    again = invoke("variant", "add", TINY_MODEL_NAME, "video_moment_windows", "--no-backfill")
    assert f"variant {variants['windows']} " in again.output and "enabled" in again.output
    assert "1.5 s windows every 0.5 s" in again.output
    shape = conn.execute(
        "SELECT enabled, num_frames, window_seconds, window_stride_seconds "
        "FROM embedding_variants WHERE id = %s",
        (variants["windows"],),
    ).fetchone()
    assert shape == (True, TINY_FRAMES, WINDOW, STRIDE)


def moments(conn: psycopg.Connection, sql: str, params: tuple) -> list[tuple]:
    return conn.execute(sql, params).fetchall()


def test_planted_moment_finds_the_other_clip_at_its_time(
    conn: psycopg.Connection, library: dict[str, int]
) -> None:
    # One window row per window, full-clip vectors stay one per clip.
    spans = window_spans(0.0, SECONDS, WINDOW, STRIDE)
    counts = dict(conn.execute(
        "SELECT clip_id, count(*) FROM moment_embeddings GROUP BY clip_id").fetchall())  # fmt: skip
    assert counts == dict.fromkeys(library.values(), len(spans))
    assert conn.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 4

    # Over the whole clip, A's nearest is C (same background), not B.
    clips = conn.execute("SELECT clip_id FROM similar_clips(%s, 'trick', 3)", (library["A"],))
    ranked = [row[0] for row in clips.fetchall()]
    assert ranked[0] == library["C"], ranked

    hits = moments(
        conn,
        "SELECT clip_id, start_seconds, end_seconds, distance, rank FROM similar_moments(%s, %s, %s, 'trick', 3)",
        (library["A"], PLANT_A, PLANT_A + PLANT_SECONDS),
    )
    clip_id, start, end, distance, rank = hits[0]
    assert (clip_id, rank) == (library["B"], 1), hits
    planted_middle = PLANT_B + PLANT_SECONDS / 2
    assert abs((start + end) / 2 - planted_middle) <= STRIDE, hits
    assert start < PLANT_B + PLANT_SECONDS and end > PLANT_B
    # Merged: moments of one clip never overlap, ranks follow distances.
    assert [h[4] for h in hits] == list(range(1, len(hits) + 1))
    assert [h[3] for h in hits] == sorted(h[3] for h in hits)
    for a in hits:
        for b in hits:
            if a is not b and a[0] == b[0]:
                assert a[2] <= b[1] or b[2] <= a[1], hits
    assert library["A"] not in [h[0] for h in hits]

    # The same search from a raw window vector (A's planted window) finds B's moment first too.
    vector = conn.execute(
        "SELECT embedding FROM moment_embeddings WHERE clip_id = %s AND start_seconds = %s",
        (library["A"], PLANT_A),
    ).fetchone()[0]
    raw = moments(
        conn, "SELECT clip_id, start_seconds, end_seconds FROM similar_moments_to_embedding(%s, 'trick', 5)",
        (vector,),
    )  # fmt: skip
    found = [r for r in raw if r[0] != library["A"]]
    assert found[0][0] == library["B"]
    assert abs((found[0][1] + found[0][2]) / 2 - planted_middle) <= STRIDE


def test_similar_moments_errors_name_the_problem(
    conn: psycopg.Connection, library: dict[str, int]
) -> None:
    def error(*params: object) -> str:
        with pytest.raises(psycopg.Error) as caught, conn.transaction():
            conn.execute("SELECT * FROM similar_moments(%s, %s, %s, %s, %s)", params).fetchall()
        return str(caught.value)

    a = library["A"]
    assert "unknown clip 999999" in error(999999, 0.0, 1.0, "trick", 5)
    assert "outside clip" in error(a, 5.0, 9.0, "trick", 5)
    assert "outside clip" in error(a, 2.0, 1.0, "trick", 5)
    assert "unknown mode" in error(a, 0.0, 1.0, "style", 5)
    assert "k must be between" in error(a, 0.0, 1.0, "trick", 0)

    # A raw query vector of zeros gave a NaN distance for every window; one of tiny norm gave
    # distance 0 to everything, and now ranks as the same vector at unit scale.
    def raw(scale: float) -> list[tuple]:
        vector = np.random.default_rng(4).normal(size=TINY_DIM).astype(np.float32) * scale
        return conn.execute(
            "SELECT * FROM similar_moments_to_embedding(%s::real[]::vector, 'spot', 3)",
            (vector.tolist(),),
        ).fetchall()

    with pytest.raises(psycopg.errors.InvalidParameterValue, match="all zeros"):
        raw(0.0)
    unit, tiny = raw(1.0), raw(1e-41)
    assert [r[:3] for r in tiny] == [r[:3] for r in unit]
    assert [r[3] for r in tiny] == pytest.approx([r[3] for r in unit], abs=1e-5)
    conn.execute(
        "INSERT INTO clips (clip_identifier, clip_filepath) VALUES ('late', 'clips/late.mp4')"
    )
    late = conn.execute("SELECT id FROM clips WHERE clip_identifier = 'late'").fetchone()[0]
    message = error(late, 0.0, 1.0, "trick", 5)
    assert f"clip {late} has no window embeddings" in message and "embed job: queued" in message
    # A disabled window variant says so, and how to enable it again; without one, how to add it.
    conn.execute(
        "UPDATE embedding_variants SET enabled = false WHERE generation_strategy = %s",
        ("video_moment_windows",),
    )
    message = error(a, 0.0, 1.0, "trick", 5)
    assert f"the window variant of model {TINY_MODEL_NAME} is disabled" in message, message
    assert "enables it again" in message
    conn.execute(
        "DELETE FROM embedding_variants WHERE generation_strategy = %s", ("video_moment_windows",)
    )
    message = error(a, 0.0, 1.0, "trick", 5)
    assert f"no window variant of model {TINY_MODEL_NAME}" in message, message


def test_embed_missing_counts_windows_as_done(
    invoke: Invoke,  # noqa: F811
    conn: psycopg.Connection,
    library: dict[str, int],
) -> None:
    output = invoke("embed", "--missing").output
    assert output.startswith("0 clips lack"), output
    conn.execute("DELETE FROM moment_embeddings WHERE clip_id = %s", (library["B"],))
    output = invoke("embed", "--missing").output
    assert output.startswith("1 clips lack"), output
    jobs = conn.execute(
        "SELECT clip_id, variant_id FROM pipeline_jobs WHERE status = 'queued'"
    ).fetchall()
    window_variant = conn.execute(
        "SELECT id FROM embedding_variants WHERE generation_strategy = 'video_moment_windows'"
    ).fetchone()[0]
    assert jobs == [(library["B"], window_variant)]


def test_trick_head_serves_moments(
    invoke: Invoke,  # noqa: F811
    conn: psycopg.Connection,
    library: dict[str, int],
) -> None:
    head = random_head(seed=3, input_dim=TINY_DIM, output_dim=HEAD_DIM)
    head_id = insert_head(conn, head)
    conn.execute("UPDATE projection_heads SET status = 'candidate' WHERE id = %s", (head_id,))
    windows = conn.execute("SELECT count(*) FROM moment_embeddings").fetchone()[0]
    # The re-projection's hook, then activation.
    assert conn.execute("SELECT project_moment_embeddings(%s)", (head_id,)).fetchone()[0] == windows
    conn.execute("SELECT activate_head(%s)", (head_id,))

    query_range = (library["A"], PLANT_A, PLANT_A + PLANT_SECONDS)
    base_query = np.array(
        conn.execute(
            "SELECT moment_query_embedding(%s, %s, %s, (moment_variant('trick')).id)::real[]",
            query_range,
        ).fetchone()[0],
        np.float32,
    )
    rows = conn.execute(
        "SELECT clip_id, embedding::real[] FROM moment_embeddings WHERE clip_id <> %s",
        (library["A"],),
    ).fetchall()
    others = np.array([r[1] for r in rows], np.float32)
    trick = conn.execute(
        "SELECT clip_id, distance FROM similar_moments(%s, %s, %s, 'trick', 3)", query_range
    ).fetchall()
    projected = project(head, others)
    q = project(head, base_query[None])[0]
    cosine = 1.0 - projected @ q / (np.linalg.norm(projected, axis=1) * np.linalg.norm(q))
    assert trick[0][1] == pytest.approx(float(cosine.min()), abs=1e-4)
    assert rows[int(cosine.argmin())][0] == trick[0][0]
    # spot has no head: the base space, other distances.
    spot = conn.execute(
        "SELECT clip_id, distance FROM similar_moments(%s, %s, %s, 'spot', 3)", query_range
    ).fetchall()
    assert spot[0][1] != pytest.approx(trick[0][1], abs=1e-6)

    # A clip embedded again while the head is live: its new windows are projected at once.
    invoke("embed", "--clip", str(library["B"]))
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM moment_embeddings), "
        "(SELECT count(*) FROM projected_moment_embeddings WHERE projection_head_id = %s)",
        (head_id,),
    ).fetchone()
    assert counts == (windows, windows)


def test_a_worker_login_daemon_backfills_windows(
    invoke: Invoke,  # noqa: F811
    conn: psycopg.Connection,
    library: dict[str, int],
    worker_url: str,
    start_daemon,
) -> None:
    """The daemon needs no more than heaters_worker for window variants too: it stores a
    clip's windows and builds the moment index."""
    before = conn.execute(
        "SELECT start_seconds FROM moment_embeddings WHERE clip_id = %s ORDER BY 1", (library["B"],)
    ).fetchall()
    conn.execute("DELETE FROM moment_embeddings WHERE clip_id = %s", (library["B"],))
    conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(moment_index_name(conn))))
    invoke("embed", "--missing")
    daemon = start_daemon(worker_url, "--once")
    assert daemon.wait(120) == 0, daemon.log()
    assert "permission denied" not in daemon.log()
    assert [row["status"] for row in job_rows(conn)] == ["done"]
    after = conn.execute(
        "SELECT start_seconds FROM moment_embeddings WHERE clip_id = %s ORDER BY 1", (library["B"],)
    ).fetchall()
    assert after == before and after
    index = moment_index_name(conn)
    assert conn.execute("SELECT to_regclass(%s) IS NOT NULL", (index,)).fetchone() == (True,)


def moment_index_name(conn: psycopg.Connection) -> str:
    """The window variant's HNSW index (functions/ensure_moment_index.sql names it)."""
    (variant,) = conn.execute(
        "SELECT id FROM embedding_variants WHERE generation_strategy = 'video_moment_windows'"
    ).fetchone()
    return f"moment_embeddings_hnsw_variant_{variant}"


def test_a_window_shape_that_cannot_be_computed_is_refused_everywhere(
    invoke: Invoke,  # noqa: F811
    conn: psycopg.Connection,
    db_url: str,
    media_root: MediaRoot,
    variants: dict[str, int],
    start_daemon,
) -> None:
    """nan, inf or a near-zero stride once slipped past `variant add` and broke (or never ended)
    every embed job of the variant: refused by the CLI, by the table, and by the daemon for a
    row stored before the table refused it."""
    add = ("variant", "add", TINY_MODEL_NAME, "video_moment_windows", "--no-backfill")
    for option, value, words in [
        ("--window-seconds", "nan", "window seconds must be a finite number"),
        ("--window-seconds", "inf", "window seconds must be a finite number"),
        ("--stride-seconds", "1e-9", "stride seconds must be a finite number of at least 0.01"),
        ("--stride-seconds", "nan", "stride seconds must be a finite number of at least 0.01"),
        ("--frames", "100000", "100000 is not in the range 2<=x<=256"),
    ]:
        assert words in invoke(*add, option, value, expect=2).output
    assert "must name a model" in invoke("variant", "add", " ", "video_full_clip", expect=2).output
    shape = "SELECT num_frames, window_seconds, window_stride_seconds FROM embedding_variants"
    stored = conn.execute(f"{shape} WHERE id = %s", (variants["windows"],)).fetchone()
    assert stored == (TINY_FRAMES, WINDOW, STRIDE)
    blank = "SELECT count(*) FROM embedding_variants WHERE btrim(model_name) = ''"
    assert conn.execute(blank).fetchone() == (0,)
    with pytest.raises(psycopg.errors.CheckViolation, match="embedding_variants_computable"):
        conn.execute(
            "UPDATE embedding_variants SET window_stride_seconds = 'NaN' WHERE id = %s",
            (variants["windows"],),
        )

    # A row stored before revision 0028 is kept (NOT VALID); its jobs are dead at the first
    # attempt with the reason, and the clip's other variant is embedded all the same.
    migrations.migrate(db_url, "0027")
    conn.execute(
        "UPDATE embedding_variants SET window_stride_seconds = 1e-9 WHERE id = %s",
        (variants["windows"],),
    )
    migrations.migrate(db_url)
    (clip_id,) = insert_clips(conn, [media_root.good("tiny-stride.mp4")])
    daemon = start_daemon(db_url, "--once")
    assert daemon.wait(120) == 0, daemon.log()
    by_variant = {row["variant_id"]: row for row in job_rows(conn) if row["clip_id"] == clip_id}
    windows = by_variant[variants["windows"]]
    assert (windows["status"], windows["attempts"]) == ("dead", 1)
    assert "BadVariantShape" in windows["last_error"]
    assert "stride seconds must be a finite number of at least 0.01" in windows["last_error"]
    assert by_variant[variants["full"]]["status"] == "done"
