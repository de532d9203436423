"""sorting_candidates(anchor, mode, n): nearest, base and control candidates, shuffled."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from tests.support.planted_space import insert_active_head, insert_clips, planted_library


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def ranking(vectors: np.ndarray, anchor_row: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows by cosine distance to the anchor (anchor left out), and those distances."""
    distances = 1 - unit(vectors) @ unit(vectors)[anchor_row]
    distances[anchor_row] = np.inf
    order = np.argsort(distances, kind="stable")[:-1]
    return order, distances[order]


def candidates(conn, anchor: int, mode: str = "trick", n: int = 8, seed: float = 0.5):
    conn.execute("SELECT setseed(%s)", (seed,))
    return conn.execute(
        "SELECT clip_id, position, source, distance FROM sorting_candidates(%s, %s, %s)",
        (anchor, mode, n),
    ).fetchall()


@pytest.fixture
def library(conn):
    """300 random clips in 16 dimensions, the default variant, no head."""
    vectors = np.random.default_rng(1).normal(size=(300, 16)).astype(np.float32)
    variant_id, clip_ids = planted_library(conn, vectors)
    return vectors, variant_id, clip_ids


def test_nearest_and_one_control_without_a_head(conn, library):
    vectors, _, clip_ids = library
    anchor_row = 17
    rows = candidates(conn, clip_ids[anchor_row])
    assert sorted(r[1] for r in rows) == list(range(1, 9))
    assert len({r[0] for r in rows}) == 8 and clip_ids[anchor_row] not in {r[0] for r in rows}
    order, distances = ranking(vectors, anchor_row)
    ranks = {clip_ids[row]: rank for rank, row in enumerate(order, start=1)}
    by_source = {}
    for clip_id, _, source, distance in rows:
        by_source.setdefault(source, []).append(clip_id)
        assert distance == pytest.approx(distances[ranks[clip_id] - 1], abs=1e-5)
    assert sorted(ranks[c] for c in by_source["nearest"]) == list(range(1, 8))
    assert len(by_source["control"]) == 1
    assert 24 <= ranks[by_source["control"][0]] <= 80
    assert set(by_source) == {"nearest", "control"}


def test_positions_are_shuffled(conn, library):
    _, _, clip_ids = library
    orders = set()
    for seed in np.linspace(-0.9, 0.9, 12):
        rows = candidates(conn, clip_ids[3], seed=float(seed))
        assert sorted(r[1] for r in rows) == list(range(1, 9))
        by_position = [r[3] for r in sorted(rows, key=lambda r: r[1])]
        orders.add(tuple(np.argsort(by_position, kind="stable")))
    # The screen order is not the distance order (nor any one fixed order).
    assert len(orders) > 6


def test_controls_vary_between_calls(conn, library):
    _, _, clip_ids = library
    controls = {
        next(r[0] for r in candidates(conn, clip_ids[3], seed=s) if r[2] == "control")
        for s in np.linspace(-0.9, 0.9, 10)
    }
    assert len(controls) > 3


def test_no_near_duplicates_of_the_anchor_or_of_each_other(conn):
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(120, 16)).astype(np.float32)
    anchor_row = 0
    order, _ = ranking(vectors, anchor_row)
    # A copy of the anchor, and two copies of its nearest neighbour: all within 1e-6.
    copies = vectors[[anchor_row, order[0], order[0]]] * np.array([[1.0001], [0.9999], [1.0002]])
    vectors = np.vstack([vectors, copies.astype(np.float32)])
    _, clip_ids = planted_library(conn, vectors)
    rows = candidates(conn, clip_ids[anchor_row], n=8)
    shown = [clip_ids.index(r[0]) for r in rows]
    assert len(shown) == 8
    assert 120 not in shown  # the anchor's copy
    assert len({order[0], 121, 122} & set(shown)) == 1  # one of the three copies
    picked = unit(vectors[shown])
    distances = 1 - picked @ picked.T
    np.fill_diagonal(distances, 1)
    assert distances.min() >= 0.01


def test_base_neighbours_the_head_ranks_low(conn, library):
    vectors, variant_id, clip_ids = library
    # A head space unrelated to the base space.
    projected = np.random.default_rng(3).normal(size=(300, 8)).astype(np.float32)
    insert_active_head(conn, "trick", variant_id, clip_ids, projected)
    anchor_row = 40
    head_order, head_distances = ranking(projected, anchor_row)
    base_order, _ = ranking(vectors, anchor_row)
    head_rank = {clip_ids[row]: rank for rank, row in enumerate(head_order, start=1)}
    base_rank = {clip_ids[row]: rank for rank, row in enumerate(base_order, start=1)}
    for n, wanted in (
        (8, {"nearest": 5, "base": 2, "control": 1}),
        (5, {"nearest": 3, "base": 1, "control": 1}),
        (2, {"nearest": 2}),
    ):
        rows = candidates(conn, clip_ids[anchor_row], n=n)
        sources = [r[2] for r in rows]
        assert {s: sources.count(s) for s in set(sources)} == wanted
        for clip_id, _, source, distance in rows:
            # Distances are always in the current (head) space.
            assert distance == pytest.approx(head_distances[head_rank[clip_id] - 1], abs=1e-5)
            if source == "base":
                assert base_rank[clip_id] <= 2 * n
                assert head_rank[clip_id] > 3 * n
            if source == "nearest":
                assert head_rank[clip_id] <= n
    # The base picks are the best-ranked base neighbours outside the head's top 24.
    rows = candidates(conn, clip_ids[anchor_row], n=8)
    expected = [c for c in sorted(base_rank, key=base_rank.get) if head_rank[c] > 24][:2]
    assert sorted(r[0] for r in rows if r[2] == "base") == sorted(expected)


def test_the_spot_mode_ignores_the_trick_head(conn, library):
    vectors, variant_id, clip_ids = library
    projected = np.random.default_rng(4).normal(size=(300, 8)).astype(np.float32)
    insert_active_head(conn, "trick", variant_id, clip_ids, projected)
    rows = candidates(conn, clip_ids[5], mode="spot")
    assert {r[2] for r in rows} == {"nearest", "control"}
    order, _ = ranking(vectors, 5)
    assert {clip_ids[r] for r in order[:7]} == {r[0] for r in rows if r[2] == "nearest"}


def test_a_small_library_gives_what_it_has(conn):
    vectors = np.random.default_rng(5).normal(size=(5, 16)).astype(np.float32)
    _, clip_ids = planted_library(conn, vectors)
    rows = candidates(conn, clip_ids[0], n=8)
    assert sorted(r[0] for r in rows) == clip_ids[1:]
    assert sorted(r[1] for r in rows) == [1, 2, 3, 4]
    single = candidates(conn, clip_ids[0], n=1)
    order, _ = ranking(vectors, 0)
    assert [(r[0], r[2]) for r in single] == [(clip_ids[order[0]], "nearest")]


def test_errors(conn, library):
    _, _, clip_ids = library
    with pytest.raises(psycopg.errors.NoDataFound, match="unknown clip 999999"):
        conn.execute("SELECT * FROM sorting_candidates(999999)")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown mode"):
        conn.execute("SELECT * FROM sorting_candidates(%s, 'skate')", (clip_ids[0],))
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="n must be between 1 and 100"):
        conn.execute("SELECT * FROM sorting_candidates(%s, 'trick', 0)", (clip_ids[0],))
    (bare,) = insert_clips(conn, 1, prefix="bare")
    with pytest.raises(psycopg.errors.NoDataFound, match=f"clip {bare} has no .* embedding yet"):
        conn.execute("SELECT * FROM sorting_candidates(%s)", (bare,))


def evaluation(conn, anchor: int, n: int = 8, seed: float = 0.5):
    conn.execute("SELECT setseed(%s)", (seed,))
    return conn.execute(
        "SELECT clip_id, position, source, distance FROM evaluation_candidates(%s, 'trick', %s)",
        (anchor, n),
    ).fetchall()


def test_evaluation_candidates_are_uniform_draws_that_no_head_chose(conn, library):
    vectors, variant_id, clip_ids = library
    anchor = clip_ids[40]
    rows = evaluation(conn, anchor)
    assert sorted(r[1] for r in rows) == list(range(1, 9))
    assert {r[2] for r in rows} == {"evaluation_random"}
    assert len({r[0] for r in rows}) == 8 and anchor not in {r[0] for r in rows}
    order, distances = ranking(vectors, 40)
    base_distance = {clip_ids[row]: d for row, d in zip(order, distances, strict=True)}
    for clip_id, _, _, distance in rows:  # distances in the base space, even with a head
        assert distance == pytest.approx(base_distance[clip_id], abs=1e-5)
    # An active head changes nothing: the same seed draws the same clips.
    projected = np.random.default_rng(3).normal(size=(300, 8)).astype(np.float32)
    insert_active_head(conn, "trick", variant_id, clip_ids, projected)
    assert evaluation(conn, anchor) == rows
    # Uniform: over many screens the drawn clips spread over the library, not its neighbourhood.
    drawn = [r[0] for seed in range(40) for r in evaluation(conn, anchor, seed=seed / 50)]
    ranks = {clip_ids[row]: rank for rank, row in enumerate(order, start=1)}
    assert np.median([ranks[c] for c in drawn]) > 100
    # ... and over the whole table, not the first rows the draw is joined back to: each third
    # of the 300 clips (in insertion order) holds about a third of the 320 draws.
    thirds = np.bincount([clip_ids.index(c) * 3 // len(clip_ids) for c in drawn], minlength=3)
    assert all(0.25 < share < 0.42 for share in thirds / len(drawn)), thirds
    with pytest.raises(psycopg.errors.NoDataFound, match="unknown clip 999999"):
        conn.execute("SELECT * FROM evaluation_candidates(999999)")


def test_a_crowd_of_copies_around_the_anchor_does_not_empty_the_screen(conn):
    # 60 exact copies of the anchor's vector: the nearest 30 clips are all near-duplicates of the
    # anchor (never shown), so the screen must come from beyond them, not end up empty.
    rng = np.random.default_rng(4)
    vectors = rng.normal(size=(200, 16)).astype(np.float32)
    vectors[:60] = vectors[0]
    _, clip_ids = planted_library(conn, vectors)
    for n in (1, 4, 8):
        rows = candidates(conn, clip_ids[5], n=n)
        assert len(rows) == n, (n, rows)
        assert not {r[0] for r in rows} & set(clip_ids[:60])
    # Evaluation screens draw uniformly, but never two copies of one clip on a screen either.
    shown = [r[0] for s in range(10) for r in evaluation(conn, clip_ids[100], seed=s / 20)]
    per_screen = [shown[i : i + 8] for i in range(0, len(shown), 8)]
    assert all(len(set(screen) & set(clip_ids[:60])) <= 1 for screen in per_screen)


def test_an_all_zero_vector_is_refused_as_anchor_and_never_drawn(conn):
    vectors = np.random.default_rng(5).normal(size=(12, 16)).astype(np.float32)
    vectors[3] = 0.0
    _, clip_ids = planted_library(conn, vectors)
    for function in ("sorting_candidates", "evaluation_candidates"):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="all zeros"):
            conn.execute(f"SELECT * FROM {function}(%s)", (clip_ids[3],)).fetchall()
    drawn = [row for s in range(10) for row in evaluation(conn, clip_ids[0], n=11, seed=s / 20)]
    assert {row[0] for row in drawn} == set(clip_ids) - {clip_ids[0], clip_ids[3]}
    assert all(np.isfinite(row[3]) for row in drawn)


def test_an_evaluation_screen_is_full_when_copies_crowd_the_library(conn):
    # 180 copies of one clip and 20 distinct clips: the first 32 draws hold about 3 distinct
    # ones, and a screen of them (one copy at most) was half empty. It draws on until it has n
    # or the library has no more: 19 distinct clips besides the anchor, plus one copy.
    rng = np.random.default_rng(6)
    vectors = rng.normal(size=(200, 16)).astype(np.float32)
    vectors[20:] = vectors[20]
    _, clip_ids = planted_library(conn, vectors)
    for seed in (0.1, 0.4, -0.3):
        rows = evaluation(conn, clip_ids[0], n=8, seed=seed)
        assert len(rows) == 8, rows
        assert sorted(r[1] for r in rows) == list(range(1, 9))
        assert len(set(clip_ids[20:]) & {r[0] for r in rows}) <= 1
    # Asked for more than there is: every distinct clip and one copy, no more.
    rows = evaluation(conn, clip_ids[0], n=30)
    assert {r[0] for r in rows} - set(clip_ids[20:]) == set(clip_ids[1:20])
    assert len(rows) == 20
