"""plpython/active_learning.py: the numpy pieces of next_anchors(), also under /usr/bin/python3."""

import shutil
import subprocess
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

from tests.support.plpython_modules import load_plpython_modules

PLPYTHON = Path(__file__).resolve().parents[2] / "plpython"
# The modules next_anchors_pick's body is made of (heaters_db.rerunnable.plpython_modules).
MODULES = ("anchor_clustering", "anchor_scores", "active_learning")
SYSTEM_PYTHON = "/usr/bin/python3"


# One namespace for the tests: every function of the three modules (their names are distinct).
al = types.SimpleNamespace(
    **{k: v for m in load_plpython_modules(*MODULES) for k, v in vars(m).items()}
)


def planted(clusters=5, per_cluster=40, dim=32, spread=0.05, seed=0, sizes=None):
    """Unit rows around random centres; `sizes` gives per-cluster counts (default equal)."""
    rng = np.random.default_rng(seed)
    centres = al.normalize_rows(rng.normal(size=(clusters, dim)))
    counts = sizes or [per_cluster] * clusters
    labels = np.repeat(np.arange(clusters), counts)
    rows = centres[labels] + rng.normal(scale=spread, size=(len(labels), dim))
    return al.normalize_rows(rows), labels, centres


def test_decode_vectors_reads_pgvector_binary_form():
    # vector_send('[1,2,3]') and vector_send('[1.5,-2,0]') as PostgreSQL returns them.
    rows = [
        bytes.fromhex("000300003f8000004000000040400000"),
        bytes.fromhex("000300003fc00000c000000000000000"),
    ]
    decoded = al.decode_vectors(rows, 3)
    assert decoded.dtype == np.float32
    np.testing.assert_array_equal(decoded, [[1, 2, 3], [1.5, -2, 0]])
    assert al.decode_vectors([], 3).shape == (0, 3)
    with pytest.raises(ValueError, match="dimensions"):
        al.decode_vectors(rows, 2)


def test_kmeans_finds_planted_clusters_with_a_fixed_seed():
    rows, labels, _ = planted(clusters=6)
    centres, found = al.spherical_kmeans(rows, 6)
    # Each found cluster is exactly one planted cluster.
    for cluster in range(6):
        assert len(set(labels[found == cluster])) == 1
    assert len(set(found)) == 6
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 1.0, rtol=1e-5)
    again, found_again = al.spherical_kmeans(rows, 6)
    np.testing.assert_array_equal(found, found_again)
    np.testing.assert_array_equal(centres, again)


def test_kmeans_keeps_k_clusters_when_rows_repeat():
    rows = al.normalize_rows(np.repeat(np.eye(3, 8), [10, 1, 1], axis=0))
    _, labels = al.spherical_kmeans(rows, 3)
    assert sorted(np.bincount(labels, minlength=3)) == [1, 1, 10]


def test_medoid_is_the_member_closest_to_the_others():
    rows, labels, _ = planted(clusters=3, per_cluster=25)
    central = al.centrality(rows, labels, 3)
    for cluster in range(3):
        members = np.flatnonzero(labels == cluster)
        mean_distance = (1 - rows[members] @ rows[members].T).mean(axis=1)
        assert members[central[members].argmax()] == members[mean_distance.argmin()]


def test_cold_start_picks_one_medoid_per_planted_cluster():
    rows, labels, _ = planted(clusters=5, sizes=[80, 60, 50, 40, 30])
    picks = al.cold_start_picks(rows, 5)
    assert sorted(labels[[row for row, _ in picks]]) == [0, 1, 2, 3, 4]
    # Biggest cluster first; the score is the cluster's share of the sample.
    assert [score for _, score in picks] == sorted((s for _, s in picks), reverse=True)
    assert picks[0][1] == pytest.approx(80 / 260)
    # Each pick is its cluster's medoid.
    central = al.centrality(rows, labels, 5)
    for row, _ in picks:
        members = np.flatnonzero(labels == labels[row])
        assert row == members[central[members].argmax()]


def test_cold_start_goes_to_clusters_without_an_anchor():
    rows, labels, _ = planted(clusters=4, per_cluster=50)
    first = al.cold_start_picks(rows, 2)
    used_rows = [row for row, _ in first]
    then = al.cold_start_picks(rows, 2, used=rows[used_rows], excluded=used_rows)
    covered = {labels[r] for r in used_rows}
    assert {labels[row] for row, _ in then} == set(range(4)) - covered


def test_cold_start_on_a_projection_still_finds_the_clusters():
    rows, labels, _ = planted(clusters=5, per_cluster=40, dim=512, spread=0.02)
    projection = al.random_projection(512)
    assert projection.shape == (512, al.CLUSTER_DIMENSIONS)
    assert al.random_projection(64) is None
    picks = al.cold_start_picks(rows, 5, projection=projection)
    assert sorted(labels[[row for row, _ in picks]]) == [0, 1, 2, 3, 4]


def test_cold_start_skips_excluded_rows_and_near_duplicates():
    rows, labels, _ = planted(clusters=2, per_cluster=30)
    medoid = al.cold_start_picks(rows, 1)[0][0]
    # A copy of the medoid, and the medoid excluded: the copy is a near-duplicate of nothing
    # chosen, so it may be picked; with the medoid used, the copy is refused.
    rows = np.vstack([rows, rows[medoid]])
    picks = al.cold_start_picks(
        rows, 3, used=rows[[medoid]], excluded=[medoid], duplicate_distance=0.01
    )
    assert medoid not in [r for r, _ in picks]
    assert len(rows) - 1 not in [r for r, _ in picks]


def test_near_duplicate_threshold():
    base = al.normalize_rows(np.array([[1.0, 0.0, 0.0]]))
    close = al.normalize_rows(np.array([[1.0, 0.05, 0.0]]))[0]  # cosine distance ~0.00125
    far = al.normalize_rows(np.array([[1.0, 0.5, 0.0]]))[0]  # ~0.106
    assert al.near_duplicate(close, base, 0.01)
    assert not al.near_duplicate(far, base, 0.01)
    assert not al.near_duplicate(close, [], 0.01)


def test_margin_scores_rank_ambiguous_queries_first():
    distances = [
        [0.10, 0.11, 0.30, 0.40],  # two near-equal first neighbours: ambiguous
        [0.10, 0.35, 0.38, 0.40],  # clear nearest neighbour
        [0.20, 0.25, 0.27, np.nan],  # NaN padding is ignored
        [0.1, 0.2],  # too few neighbours to judge
    ]
    scores = al.margin_scores(distances)
    assert scores[0] == pytest.approx(1 - 0.01 / 0.30)
    assert scores[1] == pytest.approx(1 - 0.25 / 0.30)
    assert scores[2] == pytest.approx(1 - 0.05 / 0.07)
    assert scores[3] == 0.0
    assert scores[0] > scores[2] > scores[1]
    assert al.margin_scores([[0.2, 0.2, 0.2]])[0] == pytest.approx(1.0)


def test_jaccard_disagreement_and_reasons():
    disagreement = al.jaccard_disagreement([[1, 2, 3], [1, 2], []], [[1, 2, 3], [3, 4], []])
    np.testing.assert_allclose(disagreement, [0.0, 1.0, 0.0])
    assert al.ambiguity_reasons([0.9]) == [(0.9, "ambiguous_margin")]
    assert al.ambiguity_reasons([0.9, 0.2], [0.1, 0.8]) == [
        (pytest.approx(0.5), "ambiguous_margin"),
        (pytest.approx(0.5), "head_base_disagreement"),
    ]


def test_spread_picks_best_scores_without_near_duplicates():
    rows = al.normalize_rows(np.array([[1, 0, 0], [1, 0.01, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]))
    scores = [0.9, 0.95, 0.5, 0.7, 0.1]
    # Row 1 has the best score; row 0 duplicates it; then 3, 2.
    assert al.spread_picks(rows, scores, 3, 0.01) == [1, 3, 2]
    # Near a recent anchor: row 3 is avoided.
    assert al.spread_picks(rows, scores, 2, 0.01, avoid=rows[[3]]) == [1, 2]


def test_random_slots_share():
    rng = np.random.default_rng(1)
    slots = al.random_slots(20_000, 0.15, rng)
    assert slots.dtype == bool
    assert 0.14 < slots.mean() < 0.16


def test_evaluation_deficit_is_front_loaded_until_the_gate_has_selections():
    minimum = al.GATE_MIN_EVENTS
    # Below the gate's minimum of selections every pick of the deficit is an evaluation pick ...
    assert al.evaluation_deficit(3, 3) == minimum - 3
    slots = al.random_slots(10, 0.15, np.random.default_rng(2), deficit=al.evaluation_deficit(3, 3))
    assert slots[: minimum - 3].all()
    assert slots[minimum - 3 :].sum() < 10 - (minimum - 3)
    # ... screens asked without a selection do not reduce it ...
    assert al.evaluation_deficit(0, 20) == minimum
    # ... at or above the minimum the share alone decides (a surplus is no negative deficit) ...
    assert al.evaluation_deficit(minimum, minimum) == al.evaluation_deficit(99, 120) == 0
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    assert (al.random_slots(50, 0.15, rng_a, 0) == al.random_slots(50, 0.15, rng_b)).all()
    # ... and a share of 0 (evaluation screens turned off) is never overridden.
    assert not al.random_slots(10, 0.0, np.random.default_rng(4), deficit=8).any()


def test_evaluation_deficit_stops_at_its_limit_of_screens_asked():
    minimum, limit = al.GATE_MIN_EVENTS, al.FRONT_LOAD_LIMIT * al.GATE_MIN_EVENTS
    # Near the limit only the room left is asked for, though selections are still missing ...
    assert al.evaluation_deficit(0, limit - 3) == 3
    assert al.evaluation_deficit(1, limit - 1) == 1
    # ... and at or past it nothing, whatever the selections.
    assert al.evaluation_deficit(0, limit) == al.evaluation_deficit(2, limit + 10) == 0
    # A limit of 1 x the minimum: front-loading never asks more screens than the gate needs.
    assert al.evaluation_deficit(0, minimum - 2, limit=1) == 2


def test_front_loading_follows_the_gates_minimum():
    from heaters_db.heads.gate import MIN_EVENTS

    assert al.GATE_MIN_EVENTS == MIN_EVENTS


@pytest.mark.skipif(not shutil.which(SYSTEM_PYTHON), reason="no system python3")
def test_runs_under_the_system_python_postgres_uses():
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        sys.path.insert(0, {str(PLPYTHON)!r})
        import active_learning
        import anchor_clustering as al
        rng = np.random.default_rng(0)
        centres = al.normalize_rows(rng.normal(size=(4, 256)))
        labels = np.repeat(np.arange(4), 30)
        rows = al.normalize_rows(centres[labels] + rng.normal(scale=0.01, size=(120, 256)))
        picks = al.cold_start_picks(rows, 4, projection=al.random_projection(256))
        print(sorted(labels[[r for r, _ in picks]]))
        """
    )
    result = subprocess.run(
        [SYSTEM_PYTHON, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[0, 1, 2, 3]"
