"""heaters-db report's columns: where each head's training started, the gate's numbers."""

import numpy as np

from heaters_db.heads import EventMetrics, gate
from heaters_db.learning.report import gate_numbers, training_start

VERSIONS = {11: 1, 12: 2}


def test_the_start_of_fresh_warm_and_held_heads():
    assert training_start({"training": {"start": "pca"}}, VERSIONS) == "pca"
    warm = {"training": {"start": "warm", "warm_start_head_id": 12}}
    assert training_start({**warm, "config": {"start_decay": 0.0}}, VERSIONS) == "v2"
    assert training_start({**warm, "config": {"start_decay": 10.0}}, VERSIONS) == "v2 held"
    # Heads stored before the start pull existed have no start_decay: a plain warm start.
    assert training_start(warm, VERSIONS) == "v2"
    # The head it continued is gone from the list, or the head came from another tool.
    gone = {"training": {"start": "warm", "warm_start_head_id": 99}}
    assert training_start(gone, VERSIONS) == "warm"
    assert training_start({}, VERSIONS) == "-"


def _events(judged, library) -> EventMetrics:
    n = len(judged)
    ids = np.arange(n)
    return EventMetrics(
        ids,
        np.full(n, 0.5),
        np.full(n, 0.5),
        np.full(n, 0.5),
        np.asarray(library, float),
        ids,
        np.ones(n, dtype=bool),
        np.asarray(judged, float),
        np.asarray(judged, float),
    )


def test_gate_numbers_show_each_superiority_test_at_its_level():
    rng = np.random.default_rng(0)
    judged, library = rng.uniform(0.3, 0.7, 30), rng.uniform(0.3, 0.7, 30)
    decision = gate(_events(judged, library + 0.3), _events(judged, library))
    line = gate_numbers({"gate": decision.metrics})
    assert line.startswith("passed: beats the base space"), line
    assert "vs_base judged_rank_score +0.000" in line and "(one-sided 97.5%)" in line, line
    assert "vs_base library_percentile +0.300" in line, line
    # A decision stored before the per-metric tests existed shows its deciding metric.
    stored = {k: v for k, v in decision.metrics.items() if k != "vs_base_tests"}
    old_line = gate_numbers({"gate": stored})
    assert "vs_base judged_rank_score +0.000" in old_line, old_line
    assert "vs_base library_percentile" not in old_line, old_line
