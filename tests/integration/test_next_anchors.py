"""next_anchors(mode, n): cold-start medoids, least-asked picks (or ambiguity), random share,
skipping used anchors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psycopg
import pytest

from heaters_db import migrations
from heaters_db.heads.gate import MIN_EVENTS
from tests.support.planted_space import (
    insert_active_head,
    insert_clips,
    insert_embeddings,
    insert_event,
    planted_clusters,
    planted_library,
)
from tests.support.plpython_modules import load_plpython_modules


def set_setting(conn: psycopg.Connection, name: str, value) -> None:
    conn.execute("UPDATE heaters_db_settings SET value = %s WHERE name = %s", (str(value), name))


def anchors(conn: psycopg.Connection, mode: str = "trick", n: int = 1, seed: float = 0.25):
    conn.execute("SELECT setseed(%s)", (seed,))
    return conn.execute("SELECT * FROM next_anchors(%s, %s)", (mode, n)).fetchall()


def medoid(vectors: np.ndarray) -> int:
    """Row with the smallest mean cosine distance to the others."""
    return int((vectors @ vectors.T).sum(axis=1).argmax())


def ask(conn, anchor: int, others: list[int], mode: str = "trick") -> None:
    """One sorting event about `anchor` (two other clips shown, the first picked)."""
    shown = [c for c in others if c != anchor][:2]
    insert_event(conn, mode, anchor, shown, shown[0])


def test_cold_start_picks_the_medoid_of_each_planted_cluster(conn):
    vectors, labels = planted_clusters(clusters=6, per_cluster=25, dim=32, spread=0.02, seed=3)
    _, clip_ids = planted_library(conn, vectors)
    set_setting(conn, "anchor_random_share", 0)
    rows = anchors(conn, n=6)
    assert [r[2] for r in rows] == ["cold_start_medoid"] * 6
    picked = [clip_ids.index(r[0]) for r in rows]
    assert sorted(labels[picked]) == [0, 1, 2, 3, 4, 5]
    for row in picked:
        members = np.flatnonzero(labels == labels[row])
        assert row == members[medoid(vectors[members])]
    # Equal clusters: each one holds 1/6 of the sample.
    assert [r[1] for r in rows] == pytest.approx([1 / 6] * 6)


def test_cold_start_moves_on_to_clusters_nobody_was_asked_about(conn):
    vectors, labels = planted_clusters(clusters=4, per_cluster=20, dim=32, spread=0.02, seed=4)
    _, clip_ids = planted_library(conn, vectors)
    set_setting(conn, "anchor_random_share", 0)
    first = [r[0] for r in anchors(conn, n=2)]
    for anchor in first:
        ask(conn, anchor, clip_ids)
    then = [r[0] for r in anchors(conn, n=2)]
    asked = {labels[clip_ids.index(c)] for c in first}
    assert len(asked) == 2
    assert {labels[clip_ids.index(c)] for c in then} == {0, 1, 2, 3} - asked
    # One at a time, the anchors keep covering new clusters until every cluster has one.
    for anchor in then:
        ask(conn, anchor, clip_ids)
    fifth = anchors(conn)[0][0]
    assert fifth not in first + then


def ask_evaluation(
    conn,
    anchor: int,
    others: list[int],
    selected: bool = True,
    rejected: bool = False,
    mode: str = "trick_similarity",
) -> None:
    """One evaluation screen about `anchor` (two uniform candidates; the first picked, or none;
    the second marked clearly wrong if `rejected`)."""
    shown = [c for c in others if c != anchor][:2]
    conn.execute(
        "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, rejected_clip_ids, "
        "candidate_clip_ids, sorting_mode, anchor_reason, candidate_sources) "
        "VALUES (%s, %s, %s, %s, %s, 'evaluation', %s)",
        (
            anchor,
            shown[0] if selected else None,
            shown[1:] if rejected else [],
            shown,
            mode,
            ["evaluation_random"] * len(shown),
        ),
    )


def test_evaluation_screens_come_first_until_the_gate_has_selections(conn):
    vectors, _ = planted_clusters(clusters=5, per_cluster=20, dim=16, spread=0.05, seed=5)
    _, clip_ids = planted_library(conn, vectors)
    minimum = MIN_EVENTS
    # A fresh mode: the gate has no evaluation screen, so every pick is one.
    assert {r[2] for r in anchors(conn, n=minimum)} == {"evaluation"}
    # "None similar" answers do not count, not even with a clip marked clearly wrong: the
    # gate's power comes from the chosen clips.
    for anchor in clip_ids[:minimum]:
        ask_evaluation(conn, anchor, clip_ids[50:], selected=False)
        ask_evaluation(conn, anchor, clip_ids[50:], selected=False, rejected=True)
    assert {r[2] for r in anchors(conn, n=3)} == {"evaluation"}
    # Nor do screens of other reasons.
    for anchor in clip_ids[20:30]:
        ask(conn, anchor, clip_ids[50:])
    for anchor in clip_ids[30 : 30 + minimum - 1]:
        ask_evaluation(conn, anchor, clip_ids[50:], rejected=True)
    # One selection short: only the first pick must be an evaluation pick.
    set_setting(conn, "anchor_random_share", 1e-9)
    assert [r[2] for r in anchors(conn, n=3)] == [
        "evaluation",
        "cold_start_medoid",
        "cold_start_medoid",
    ]
    # The minimum reached: the share alone decides (here: ~never).
    ask_evaluation(conn, clip_ids[30 + minimum - 1], clip_ids[50:])
    assert {r[2] for r in anchors(conn, n=3)} == {"cold_start_medoid"}
    # An operator who turned evaluation screens off (share 0) is never overridden, not even in
    # a mode without a single evaluation screen.
    set_setting(conn, "anchor_random_share", 0)
    assert {r[2] for r in anchors(conn, mode="spot", n=3)} == {"cold_start_medoid"}


def test_a_library_of_one_clip_gets_no_anchor(conn):
    """No screen can be shown with one clip (no candidate exists): no anchor, not an
    unanswerable one; a second clip makes screens possible."""
    vectors, _ = planted_clusters(clusters=1, per_cluster=2, dim=16, spread=0.05, seed=5)
    variant_id, (only,) = planted_library(conn, vectors[:1])
    assert anchors(conn, n=3) == []
    assert conn.execute("SELECT * FROM evaluation_candidates(%s)", (only,)).fetchall() == []
    insert_embeddings(conn, insert_clips(conn, 1, "second"), vectors[1:], variant_id)
    assert len(anchors(conn, n=1)) == 1


@pytest.mark.parametrize("share", [0, 1], ids=["informative", "evaluation"])
def test_a_library_of_copies_of_one_take_gets_no_anchor(conn, share):
    """Screens never show a near-duplicate of the anchor: in a library where every clip is a
    copy of one take, an anchor would be a screen with no candidates (a client looped on empty
    screens). One clip unlike the rest makes every clip answerable again."""
    rng = np.random.default_rng(31)
    take = rng.normal(size=16).astype(np.float32)
    copies = np.tile(take, (12, 1)) + rng.normal(scale=1e-4, size=(12, 16)).astype(np.float32)
    variant_id, clip_ids = planted_library(conn, copies)
    set_setting(conn, "anchor_random_share", share)
    assert anchors(conn, n=5) == []
    for clip_id in clip_ids[:3]:
        assert conn.execute("SELECT * FROM sorting_candidates(%s)", (clip_id,)).fetchall() == []
    other = rng.normal(size=(1, 16)).astype(np.float32)
    insert_embeddings(conn, insert_clips(conn, 1, "other take"), other, variant_id)
    rows = anchors(conn, n=5)
    assert rows
    for clip_id, _, _ in rows:
        assert conn.execute("SELECT * FROM sorting_candidates(%s)", (clip_id,)).fetchall()


def test_front_loading_stops_after_its_limit_of_evaluation_screens(conn):
    """A sorter who never picks on evaluation screens (or a library whose uniform candidates
    never hold a match) is not asked evaluation screens for ever: after FRONT_LOAD_LIMIT x the
    gate's minimum screens asked, the share alone decides."""
    vectors, _ = planted_clusters(clusters=5, per_cluster=20, dim=16, spread=0.05, seed=5)
    _, clip_ids = planted_library(conn, vectors)
    set_setting(conn, "anchor_random_share", 1e-9)
    (anchor_scores,) = load_plpython_modules("anchor_scores")
    limit = anchor_scores.FRONT_LOAD_LIMIT * MIN_EVENTS
    for anchor in clip_ids[: limit - 1]:
        ask_evaluation(conn, anchor, clip_ids[60:], selected=False, rejected=True)
    # One screen left before the limit, though no selection yet: one evaluation pick.
    assert [r[2] for r in anchors(conn, n=3)] == [
        "evaluation",
        "cold_start_medoid",
        "cold_start_medoid",
    ]
    ask_evaluation(conn, clip_ids[limit - 1], clip_ids[60:], selected=False)
    assert {r[2] for r in anchors(conn, n=3)} == {"cold_start_medoid"}
    # The other mode has its own count.
    assert {r[2] for r in anchors(conn, mode="spot", n=3)} == {"evaluation"}


def test_about_fifteen_percent_of_anchors_are_evaluation_draws(conn):
    vectors, _ = planted_clusters(clusters=5, per_cluster=20, dim=16, spread=0.05, seed=5)
    _, clip_ids = planted_library(conn, vectors)
    for anchor in clip_ids[:MIN_EVENTS]:  # the gate's minimum of judged evaluation screens
        ask_evaluation(conn, anchor, clip_ids[50:])
    conn.execute("SELECT setseed(0.5)")
    reasons = [
        conn.execute("SELECT reason FROM next_anchors('trick', 1)").fetchone()[0]
        for _ in range(300)
    ]
    share = reasons.count("evaluation") / len(reasons)
    assert 0.09 < share < 0.22, share
    assert set(reasons) == {"evaluation", "cold_start_medoid"}


def test_evaluation_anchors_are_clips_nobody_trained_on(conn):
    vectors, _ = planted_clusters(clusters=3, per_cluster=10, dim=16, spread=0.05, seed=4)
    _, clip_ids = planted_library(conn, vectors)
    for anchor in clip_ids[:20]:
        ask(conn, anchor, clip_ids)
    trained = {
        r[0]
        for r in conn.execute(
            "SELECT anchor_clip_id FROM sorting_anchor_splits WHERE split <> 'holdout'"
        ).fetchall()
    }
    assert trained, "some of the 20 anchors must be train or validation anchors"
    set_setting(conn, "anchor_random_share", 1)
    set_setting(conn, "anchor_reuse_after_events", 0)
    picked = [r for i in range(20) for r in anchors(conn, n=3, seed=i / 40)]
    evaluation = {clip for clip, _, reason in picked if reason == "evaluation"}
    assert evaluation and not evaluation & trained


def test_same_seed_same_anchors(conn):
    vectors, _ = planted_clusters(clusters=5, per_cluster=20, dim=16, spread=0.05, seed=6)
    planted_library(conn, vectors)
    runs = []
    for _ in range(2):
        conn.execute("SELECT setseed(0.125)")
        runs.append(
            [conn.execute("SELECT * FROM next_anchors('trick', 3)").fetchall() for _ in range(10)]
        )
    assert runs[0] == runs[1]


def test_recently_used_anchors_are_not_proposed_again(conn):
    vectors, _ = planted_clusters(clusters=3, per_cluster=4, dim=16, spread=0.05, seed=7)
    _, clip_ids = planted_library(conn, vectors)
    for anchor in clip_ids[:9]:
        ask(conn, anchor, clip_ids)
    for share in (0, 1):  # medoids, then only random draws
        set_setting(conn, "anchor_random_share", share)
        rows = anchors(conn, n=3)
        assert sorted(r[0] for r in rows) == clip_ids[9:]
        assert len({r[2] for r in rows}) == 1
        # Asked for more than the unused clips: the least recently used anchors come back.
        rows = anchors(conn, n=5)
        assert sorted(r[0] for r in rows[:3]) == clip_ids[9:]
        assert [(r[0], r[2]) for r in rows[3:]] == [
            (clip_ids[0], "least_recently_used"),
            (clip_ids[1], "least_recently_used"),
        ]
    # Only the last 4 events count as recent: older anchors come back (as informative picks:
    # an evaluation anchor must be a clip nobody trained on).
    set_setting(conn, "anchor_random_share", 0)
    set_setting(conn, "anchor_reuse_after_events", 4)
    rows = anchors(conn, n=8)
    assert sorted(r[0] for r in rows) == clip_ids[:5] + clip_ids[9:]
    assert "least_recently_used" not in {r[2] for r in rows}


def test_no_two_anchors_are_near_duplicates(conn):
    vectors, _ = planted_clusters(clusters=3, per_cluster=10, dim=16, spread=0.2, seed=8)
    # Every clip twice (cosine distance ~1e-6 between the copies).
    doubled = np.repeat(vectors, 2, axis=0)
    doubled[1::2, 0] += 1e-3
    _, clip_ids = planted_library(conn, doubled)
    set_setting(conn, "anchor_random_share", 0)
    rows = anchors(conn, n=30)
    pairs = {clip_ids.index(r[0]) // 2 for r in rows}
    assert len(pairs) == len(rows) == 30
    # Evaluation draws keep the rule too (they were never filtered: a batch held copies).
    set_setting(conn, "anchor_random_share", 1)
    for seed in (0.1, 0.2, 0.3):
        rows = anchors(conn, n=20, seed=seed)
        assert {r[2] for r in rows} <= {"evaluation", "cold_start_medoid"}
        pairs = [clip_ids.index(r[0]) // 2 for r in rows]
        assert len(set(pairs)) == len(pairs), rows


@pytest.mark.parametrize(
    "share, cold_start_events",
    [(1, 0), (0, 1000), (0, 0)],
    ids=["evaluation", "cold_start_medoid", "least_asked"],
)
def test_a_clip_whose_vector_is_all_zeros_is_never_an_anchor(conn, share, cold_start_events):
    # A zero vector has no cosine distance to anything: sorting_candidates and similar_clips
    # refuse it as a query, so an anchor made of it would be a screen nobody can answer. And
    # since nobody answers it, least_asked would offer it again and again.
    vectors = np.random.default_rng(22).normal(size=(8, 16)).astype(np.float32)
    vectors[3] = 0.0
    _, clip_ids = planted_library(conn, vectors)
    for name, value in (
        ("anchor_random_share", share),
        ("anchor_cold_start_events", cold_start_events),
        ("anchor_pool_size", 1000),
        ("near_duplicate_distance", 0),
    ):
        set_setting(conn, name, value)
    picked = [r for s in (0.1, 0.2, 0.3, 0.4) for r in anchors(conn, n=8, seed=s)]
    assert picked
    assert clip_ids[3] not in {clip for clip, _, _ in picked}
    assert len({clip for clip, _, _ in picked}) == 7  # every other clip is still offered
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="all zeros"):
        conn.execute("SELECT * FROM sorting_candidates(%s, 'trick')", (clip_ids[3],)).fetchall()


def test_a_clip_whose_base_vector_is_all_zeros_stays_out_of_the_head_space(conn):
    # Projected, a zero vector used to be the head's bias: a point like any other in the head
    # space, so next_anchors offered it first (nobody could answer it: sorting_candidates
    # refuses it) and similar_clips served it. apply_head maps it to zero, as the base has it.
    vectors = np.random.default_rng(23).normal(size=(8, 16)).astype(np.float32)
    variant_id, clip_ids = planted_library(conn, vectors)
    insert_active_head(conn, "trick", variant_id, clip_ids, vectors[:, :8])
    set_setting(conn, "anchor_random_share", 0)
    set_setting(conn, "anchor_cold_start_events", 0)
    zero = insert_clips(conn, 1, prefix="zero")[0]
    insert_embeddings(conn, [zero], np.zeros((1, 16), dtype=np.float32), variant_id)
    projected = conn.execute(
        "SELECT vector_norm(p.embedding) FROM projected_embeddings p "
        "JOIN projection_heads h ON h.id = p.projection_head_id AND h.status = 'active' "
        "WHERE p.clip_id = %s",
        (zero,),
    ).fetchone()
    assert projected == (0.0,)  # projected by the trigger through the head's real weights
    picked = {clip for s in (0.1, 0.2, 0.3) for clip, _, _ in anchors(conn, n=9, seed=s)}
    assert picked == set(clip_ids)
    served = conn.execute("SELECT clip_id FROM similar_clips(%s, 'trick', 20)", (clip_ids[0],))
    assert zero not in {row[0] for row in served}
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="all zeros"):
        conn.execute("SELECT * FROM similar_clips(%s, 'trick')", (zero,)).fetchall()


def ambiguous_library(dim=16, count=150, seed=9):
    """Random clips, plus three whose two nearest neighbours are exactly equally close (a top-1 /
    top-2 margin of zero): those are the most ambiguous anchors."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(count, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    planted = []
    for query in (0, 1, 2):
        q = vectors[query]
        directions = rng.normal(size=(2, dim))
        directions -= np.outer(directions @ q, q)
        directions[1] -= (
            directions[1] @ directions[0] / (directions[0] @ directions[0]) * directions[0]
        )
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        angle = 0.2  # cosine distance 1 - cos(0.2) = 0.02 from the query
        twins = np.cos(angle) * q + np.sin(angle) * directions
        vectors = np.vstack([vectors, twins])
        planted.append(query)
    return vectors.astype(np.float32), planted


def test_after_the_cold_start_the_least_asked_clips_come_first(conn):
    vectors = np.random.default_rng(21).normal(size=(6, 16)).astype(np.float32)
    _, clip_ids = planted_library(conn, vectors)
    for name, value in (
        ("anchor_cold_start_events", 0),
        ("anchor_random_share", 0),
        ("anchor_pool_size", 1000),
        ("anchor_reuse_after_events", 1),  # only the latest event's anchor waits
        ("holdout_percent", 0),  # every asked clip stays a possible anchor
        ("validation_percent", 0),
    ):
        set_setting(conn, name, value)
    for row in (0, 0, 1, 2):  # clip 0 asked twice, 1 and 2 once (2 the latest)
        ask(conn, clip_ids[row], clip_ids)
    rows = anchors(conn, n=5)
    assert [r[2] for r in rows] == ["least_asked"] * 5
    assert {r[0] for r in rows[:3]} == {clip_ids[3], clip_ids[4], clip_ids[5]}  # never asked
    assert [r[0] for r in rows[3:]] == [clip_ids[1], clip_ids[0]]
    assert [r[1] for r in rows] == pytest.approx([1, 1, 1, 1 / 2, 1 / 3])
    # Ties are broken at random: another seed orders the never-asked clips differently.
    orders = {tuple(r[0] for r in anchors(conn, n=3, seed=s)) for s in (0.1, 0.2, 0.3, 0.4, 0.5)}
    assert len(orders) > 1
    assert all(set(order) == {clip_ids[3], clip_ids[4], clip_ids[5]} for order in orders)


def test_ambiguity_prefers_anchors_with_small_margins(conn):
    vectors, planted = ambiguous_library()
    variant_id, clip_ids = planted_library(conn, vectors)
    # Head space = base space: no disagreement, only the margin speaks.
    insert_active_head(conn, "trick", variant_id, clip_ids, vectors)
    set_setting(conn, "anchor_cold_start_events", 0)
    set_setting(conn, "anchor_ambiguity", 1)  # the opt-in ranking by ambiguity
    set_setting(conn, "anchor_random_share", 0)
    set_setting(conn, "anchor_pool_size", 1000)  # score every clip
    rows = anchors(conn, n=3)
    assert {clip_ids.index(r[0]) for r in rows} == set(planted)
    assert [r[2] for r in rows] == ["ambiguous_margin"] * 3
    assert [r[1] for r in rows] == pytest.approx([0.5] * 3, abs=1e-4)  # (margin 1 + 0) / 2
    # The scores are the margins of the exact neighbours.
    distances = 1 - vectors @ vectors.T
    np.fill_diagonal(distances, np.inf)
    scored = anchors(conn, n=20)
    for clip_id, score, _ in scored:
        nearest = np.sort(distances[clip_ids.index(clip_id)])[:10]
        margin = 1 - (nearest[1] - nearest[0]) / (nearest[-1] - nearest[0])
        assert score == pytest.approx(margin / 2, abs=1e-4)
    assert [s for _, s, _ in scored] == sorted((s for _, s, _ in scored), reverse=True)


def test_after_the_cold_start_without_a_head_ambiguity_in_the_base_space(conn):
    vectors, planted = ambiguous_library(seed=14)
    _, clip_ids = planted_library(conn, vectors)
    set_setting(conn, "anchor_cold_start_events", 2)
    set_setting(conn, "anchor_ambiguity", 1)  # the opt-in ranking by ambiguity
    set_setting(conn, "anchor_random_share", 0)
    set_setting(conn, "anchor_pool_size", 1000)
    assert {r[2] for r in anchors(conn, n=3)} == {"cold_start_medoid"}
    for anchor in clip_ids[10:12]:
        ask(conn, anchor, clip_ids[20:])
    rows = anchors(conn, n=3)
    assert {clip_ids.index(r[0]) for r in rows} == set(planted)
    assert [r[2] for r in rows] == ["ambiguous_margin"] * 3
    assert [r[1] for r in rows] == pytest.approx([1.0] * 3, abs=1e-4)  # the margin alone


def test_head_base_disagreement_finds_clips_the_head_moved(conn):
    rng = np.random.default_rng(10)
    vectors = rng.normal(size=(150, 16)).astype(np.float32)
    variant_id, clip_ids = planted_library(conn, vectors)
    projected = vectors.copy()
    moved = [5, 50, 100]
    projected[moved] = rng.normal(size=(3, 16))  # the head sends these somewhere else entirely
    insert_active_head(conn, "trick", variant_id, clip_ids, projected)
    set_setting(conn, "anchor_cold_start_events", 0)
    set_setting(conn, "anchor_ambiguity", 1)  # the opt-in ranking by ambiguity
    set_setting(conn, "anchor_random_share", 0)
    set_setting(conn, "anchor_pool_size", 1000)
    rows = anchors(conn, n=3)
    assert {clip_ids.index(r[0]) for r in rows} == set(moved)
    # Score = mean of margin ambiguity and kNN disagreement, named after the larger one; with
    # exact neighbours (the HNSW scans are exact on 150 clips).
    head_order = exact_neighbours(projected)
    base_order = exact_neighbours(vectors)
    for clip_id, score, reason in rows:
        row = clip_ids.index(clip_id)
        head_distances = 1 - unit(projected)[row] @ unit(projected)[head_order[row]].T
        margin = 1 - (head_distances[1] - head_distances[0]) / (
            head_distances[-1] - head_distances[0]
        )
        shared = len(set(head_order[row]) & set(base_order[row]))
        disagreement = 1 - shared / (20 - shared)
        assert score == pytest.approx((margin + disagreement) / 2, abs=1e-4)
        assert reason == ("head_base_disagreement" if disagreement > margin else "ambiguous_margin")
    assert "head_base_disagreement" in {r[2] for r in rows}


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def exact_neighbours(vectors: np.ndarray, k: int = 10) -> np.ndarray:
    distances = 1 - unit(vectors) @ unit(vectors).T
    np.fill_diagonal(distances, np.inf)
    return np.argsort(distances, axis=1, kind="stable")[:, :k]


def test_cold_start_with_a_head_clusters_the_head_space(conn):
    base, _ = planted_clusters(clusters=1, per_cluster=60, dim=16, spread=0.3, seed=11)
    projected, labels = planted_clusters(clusters=3, per_cluster=20, dim=8, spread=0.02, seed=12)
    variant_id, clip_ids = planted_library(conn, base)
    insert_active_head(conn, "spot", variant_id, clip_ids, projected)
    set_setting(conn, "anchor_random_share", 0)
    rows = anchors(conn, mode="spot_similarity", n=3)
    assert [r[2] for r in rows] == ["cold_start_medoid"] * 3
    assert sorted(labels[[clip_ids.index(r[0]) for r in rows]]) == [0, 1, 2]
    # The trick mode has no head: it clusters the base space instead, also fine.
    assert len(anchors(conn, mode="trick", n=3)) == 3


def test_empty_library_gives_no_anchors(conn):
    assert anchors(conn, n=3) == []
    insert_clips(conn, 2)  # clips without embeddings are not candidates
    assert anchors(conn, n=3) == []


@pytest.mark.parametrize(
    ("mode", "n", "message"),
    [
        ("skate", 1, "unknown mode"),
        (None, 1, "unknown mode"),
        ("trick", 0, "n must be between 1 and 1000"),
        ("trick", None, "n must be between 1 and 1000"),
    ],
)
def test_bad_arguments_are_refused(conn, mode, n, message):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        conn.execute("SELECT * FROM next_anchors(%s, %s)", (mode, n))


def test_no_default_variant_is_a_clear_error(conn):
    conn.execute("UPDATE embedding_variants SET is_default = false")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="no default"):
        conn.execute("SELECT * FROM next_anchors()")


def test_sorter_role_may_call_the_api_but_not_the_internals(conn):
    vectors, _ = planted_clusters(clusters=2, per_cluster=10, dim=16, spread=0.05, seed=13)
    _, clip_ids = planted_library(conn, vectors)
    conn.execute("SET ROLE heaters_sorter")
    try:
        assert len(conn.execute("SELECT * FROM next_anchors('trick', 2)").fetchall()) == 2
        assert conn.execute(
            "SELECT count(*) FROM sorting_candidates(%s, 'trick', 4)", (clip_ids[0],)
        ).fetchone() == (4,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM next_anchors_pick('trick_similarity', 1)")
    finally:
        conn.execute("RESET ROLE")


def test_downgrade_removes_the_functions_and_settings(db_url):
    migrations.downgrade(db_url, "0009")
    with psycopg.connect(db_url) as conn:
        functions = conn.execute(
            "SELECT count(*) FROM pg_proc WHERE proname IN "
            "('next_anchors', 'next_anchors_pick', 'sorting_candidates')"
        ).fetchone()[0]
        settings = conn.execute(
            "SELECT count(*) FROM heaters_db_settings WHERE name LIKE 'anchor%%' "
            "OR name = 'near_duplicate_distance'"
        ).fetchone()[0]
    assert (functions, settings) == (0, 0)
    migrations.upgrade(db_url, "head")
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM next_anchors()").fetchone() == (0,)


def test_installed_body_is_the_files(conn):
    plpython = Path(__file__).resolve().parents[2] / "plpython"
    (body,) = conn.execute(
        "SELECT prosrc FROM pg_proc WHERE proname = 'next_anchors_pick'"
    ).fetchone()
    source = (plpython / "active_learning.py").read_text()
    assert f"SOURCE = {source!r}" in body, "run `heaters-db migrate` after editing the file"
    # The sibling modules it imports come with it, dependencies first.
    siblings = [
        (name, (plpython / f"{name}.py").read_text())
        for name in ("anchor_clustering", "anchor_scores")
    ]
    assert f"MODULES = {siblings!r}" in body


def test_a_draw_left_out_as_a_near_duplicate_gives_its_slot_to_another_pick(conn):
    # Four clips, two of them near-duplicates (3 and 4): while the front-loading makes every
    # slot an evaluation slot, a batch of two that drew both came back with one anchor.
    vectors = np.array([[1, i, i * i] for i in range(1, 5)], dtype=np.float32)
    planted_library(conn, vectors)
    set_setting(conn, "near_duplicate_distance", 0.01)
    short = [s for s in np.linspace(0.0, 0.99, 60) if len(anchors(conn, n=2, seed=float(s))) != 2]
    assert short == []
