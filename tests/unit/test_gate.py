"""The held-out gate (paired bootstrap) and the per-event metrics it is fed."""

import json

import numpy as np
import pytest

from heaters_db.heads import (
    EventMetrics,
    GateInputError,
    Screen,
    Triplets,
    base_space,
    evaluate_events,
    gate,
    knn_jaccard,
    same_label_recall_at_k,
)
from heaters_db.heads.gate import paired_bootstrap_interval


def per_event(triplet: np.ndarray, top1: np.ndarray, event_ids=None) -> EventMetrics:
    triplet, top1 = np.asarray(triplet, float), np.asarray(top1, float)
    ids = np.arange(len(triplet)) if event_ids is None else np.asarray(event_ids)
    return EventMetrics(ids, triplet, top1, top1.copy())


def test_a_clear_improvement_passes():
    rng = np.random.default_rng(0)
    baseline = per_event(rng.uniform(0.4, 0.6, 60), rng.integers(0, 2, 60) * (rng.random(60) < 0.5))
    new = per_event(baseline.triplet_accuracy + 0.2, np.ones(60))
    decision = gate(new, baseline)
    assert decision.passed, decision.reason
    assert decision.metrics["triplet_accuracy"]["interval"][0] > 0.15
    assert decision.metrics["screen_top1"]["events"] == 60
    json.dumps(decision.metrics)


def test_no_difference_and_pure_noise_are_rejected():
    rng = np.random.default_rng(1)
    baseline = per_event(rng.random(80), rng.integers(0, 2, 80))
    same = gate(per_event(baseline.triplet_accuracy, baseline.screen_top1), baseline)
    assert not same.passed
    noisy = gate(per_event(rng.random(80), rng.integers(0, 2, 80)), baseline)
    assert not noisy.passed
    assert "noise" in noisy.reason


def test_triplet_gain_without_top1_gain_fails_unless_top1_need_only_not_be_worse():
    rng = np.random.default_rng(2)
    top1 = rng.integers(0, 2, 50).astype(float)
    baseline = per_event(np.full(50, 0.5), top1)
    new = per_event(np.full(50, 0.8), top1)
    strict = gate(new, baseline)
    assert not strict.passed and "screen top-1" in strict.reason
    assert gate(new, baseline, require_top1_improvement=False).passed
    worse = per_event(np.full(50, 0.8), np.zeros(50))
    assert not gate(
        worse, per_event(np.full(50, 0.5), np.ones(50)), require_top1_improvement=False
    ).passed


def test_too_few_holdout_events_are_refused_with_a_reason():
    baseline = per_event(np.zeros(7), np.zeros(7))
    decision = gate(per_event(np.ones(7), np.ones(7)), baseline)
    assert not decision.passed
    assert "too few holdout events" in decision.reason
    # Events without a selection (NaN top-1) do not count towards the top-1 minimum.
    top1 = np.r_[np.ones(5), np.full(20, np.nan)]
    decision = gate(per_event(np.ones(25), top1), per_event(np.zeros(25), top1 * 0))
    assert not decision.passed and "5 with a selection" in decision.reason
    json.dumps(decision.metrics)


def test_events_are_paired_by_id_and_must_match():
    rng = np.random.default_rng(3)
    triplet = rng.random(30)
    baseline = per_event(triplet, np.zeros(30), event_ids=np.arange(30))
    reordered = np.arange(30)[::-1]
    new = per_event(triplet[::-1] + 0.3, np.ones(30), event_ids=reordered)
    decision = gate(new, baseline)
    assert decision.passed
    assert decision.metrics["triplet_accuracy"]["difference"] == pytest.approx(0.3)
    with pytest.raises(GateInputError):
        gate(per_event(triplet, np.ones(30), event_ids=np.arange(1, 31)), baseline)


def test_gate_is_deterministic_for_a_seed():
    rng = np.random.default_rng(4)
    a, b = (
        per_event(rng.random(40), rng.integers(0, 2, 40)),
        per_event(rng.random(40), rng.integers(0, 2, 40)),
    )
    assert gate(a, b, seed=5).metrics == gate(a, b, seed=5).metrics


def test_bootstrap_interval_brackets_the_mean():
    differences = np.random.default_rng(6).normal(0.1, 0.2, 200)
    low, high = paired_bootstrap_interval(differences, 2000, 0.05, np.random.default_rng(0))
    assert low < differences.mean() < high
    assert high - low == pytest.approx(2 * 1.96 * 0.2 / np.sqrt(200), rel=0.2)


def test_event_metrics_on_a_hand_made_screen():
    # Anchor row 0; in the base space row 1 is closest, then 2, then 3 (4 ties with 2).
    vectors = np.array(
        [[1, 0, 0], [0.9, 0.1, 0], [0.5, 0.5, 0], [0, 1, 0], [0.5, 0.5, 0], [0, 0, 1]],
        dtype=np.float32,
    )
    screens = [
        Screen(10, 0, (1, 2, 3), 1, (3,), "holdout"),  # chosen first: top-1 1, RR 1
        Screen(11, 0, (1, 2, 3), 3, (), "holdout"),  # chosen third: top-1 0, RR 1/3
        Screen(12, 0, (2, 4), 2, (), "holdout"),  # tied with 4: top-1 1/2, RR 1/1.5
        Screen(13, 0, (1, 2), None, (1,), "holdout"),  # none similar: nothing to score
        Screen(14, 0, (1, 2), 2, (), "train"),  # other split: left out
    ]
    metrics = evaluate_events(base_space, vectors, screens)
    assert metrics.event_ids.tolist() == [10, 11, 12, 13]
    np.testing.assert_allclose(metrics.screen_top1[:3], [1, 0, 0.5])
    np.testing.assert_allclose(metrics.reciprocal_rank[:3], [1, 1 / 3, 1 / 1.5])
    assert np.isnan(metrics.screen_top1[3])
    # Derived triplets: event 10 both right (1.0); event 11 wrong on both (rejected none ->
    # implicit); event 12 a tie (0.5).
    np.testing.assert_allclose(metrics.triplet_accuracy[:3], [1, 0, 0.5])
    assert np.isnan(metrics.triplet_accuracy[3])
    summary = metrics.summary()
    assert summary["screen_top1_events"] == 3
    json.dumps(summary)


def test_triplet_accuracy_is_weighted_within_an_event():
    vectors = np.array([[1, 0], [1, 0.1], [0, 1], [1, 0.05]], dtype=np.float32)
    triplets = Triplets(
        event_id=np.array([7, 7]),
        anchor=np.array([0, 0]),
        positive=np.array([1, 1]),
        negative=np.array([2, 3]),  # right about 2 (weight 1), wrong about 3 (weight 0.3)
        weight=np.array([1.0, 0.3]),
        split=np.array(["holdout", "holdout"], dtype=object),
    )
    metrics = evaluate_events(base_space, vectors, [], triplets)
    np.testing.assert_allclose(metrics.triplet_accuracy, [1.0 / 1.3])


def test_neighbour_metrics():
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((4, 16)) * 5
    labels = np.repeat(np.arange(4), 12)
    vectors = centres[labels] + rng.standard_normal((48, 16))
    assert same_label_recall_at_k(vectors, labels, 10).mean() == 1.0
    shuffled_labels = rng.permutation(labels)
    assert same_label_recall_at_k(vectors, shuffled_labels, 10).mean() < 0.5
    assert knn_jaccard(vectors, vectors, 10).tolist() == [1.0] * 48
    assert knn_jaccard(vectors, rng.standard_normal((48, 16)), 10).mean() < 0.5
