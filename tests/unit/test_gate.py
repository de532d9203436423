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
from heaters_db.heads.metrics import _FIELDS as FIELDS


def per_event(
    percentile, event_ids=None, anchors=None, evaluation=True, library=None
) -> EventMetrics:
    """Per-event metrics with the deciding judged rank score given (the others follow it, the
    library percentile too unless ``library`` gives it)."""
    percentile = np.asarray(percentile, float)
    n = len(percentile)
    ids = np.arange(n) if event_ids is None else np.asarray(event_ids)
    top1 = (percentile > 0.9).astype(float)
    top1[np.isnan(percentile)] = np.nan
    return EventMetrics(
        ids,
        percentile.copy(),
        top1,
        top1.copy(),
        percentile if library is None else np.asarray(library, float),
        ids if anchors is None else np.asarray(anchors),
        np.full(n, evaluation, dtype=bool),
        percentile.copy(),
        percentile.copy(),
    )


def test_a_clear_improvement_over_the_base_space_passes():
    rng = np.random.default_rng(0)
    base = per_event(rng.uniform(0.3, 0.7, 60))
    decision = gate(per_event(np.clip(base.judged_rank_score + 0.25, 0, 1)), base)
    assert decision.passed, decision.reason
    assert "beats the base space" in decision.reason
    assert decision.metrics["vs_base"]["judged_rank_score"]["interval"][0] > 0.15
    assert decision.metrics["judged_on"] == "evaluation screens"
    assert decision.metrics["vs_live"] is None
    json.dumps(decision.metrics)


def test_no_difference_and_pure_noise_are_rejected():
    rng = np.random.default_rng(1)
    base = per_event(rng.random(80))
    same = gate(per_event(base.judged_rank_score), base)
    assert not same.passed
    noisy = gate(per_event(rng.random(80)), base)
    assert not noisy.passed
    assert "does not beat the base space beyond noise" in noisy.reason


def test_a_head_exactly_as_good_as_the_base_passes_about_one_round_in_twenty():
    """The level of the superiority test: on 400 simulated holdouts where the new head's judged
    rank score and library percentile are the base's plus independent symmetric noise (40 events
    of 20 anchors), about 5 % pass on either metric and no more than 10 % (the Bonferroni split
    keeps two chances from doubling the level)."""
    rng = np.random.default_rng(5)
    anchors = np.repeat(np.arange(20), 2)
    passed = {"judged": 0, "library": 0, "either": 0}
    for trial in range(400):
        base_rank, base_library = rng.uniform(0.3, 0.7, 40), rng.uniform(0.3, 0.7, 40)
        new_rank = np.clip(base_rank + rng.normal(0, 0.08, 40), 0, 1)
        new_library = np.clip(base_library + rng.normal(0, 0.08, 40), 0, 1)
        decision = gate(
            per_event(new_rank, anchors=anchors, library=new_library),
            per_event(base_rank, anchors=anchors, library=base_library),
            seed=trial,
        )
        tests = decision.metrics["vs_base_tests"]
        passed["judged"] += tests["judged_rank_score"]["beats_base"]
        passed["library"] += tests["library_percentile"]["beats_base"]
        passed["either"] += decision.passed
    assert 0.02 <= passed["either"] / 400 <= 0.10, passed
    assert passed["judged"] / 400 <= 0.06 and passed["library"] / 400 <= 0.06, passed


def _gain_of(standard_errors: float, rng: np.random.Generator, n: int = 40) -> np.ndarray:
    step = rng.normal(0, 0.08, n)
    return step - step.mean() + standard_errors * step.std() / np.sqrt(n)


@pytest.mark.parametrize("gaining", ["judged_rank_score", "library_percentile"])
def test_a_small_gain_on_either_metric_beats_the_base(gaining):
    """A gain of 2.3 standard errors on one metric, the other level: above its one-sided 97.5 %
    bound (the Bonferroni half of 5 %), so the head passes, named by the metric that showed it;
    at a 1 % level (one-sided 99.5 % each) it does not."""
    rng = np.random.default_rng(7)
    base_rank, base_library = rng.uniform(0.3, 0.7, 40), rng.uniform(0.3, 0.7, 40)
    step = _gain_of(2.3, rng)
    new_rank = base_rank + (step if gaining == "judged_rank_score" else 0.0)
    new_library = base_library + (step if gaining == "library_percentile" else 0.0)
    new = per_event(new_rank, library=new_library)
    base = per_event(base_rank, library=base_library)
    small = gate(new, base)
    assert small.passed, small.reason
    assert gaining.replace("_", " ") in small.reason
    assert [
        name for name, test in small.metrics["vs_base_tests"].items() if test["beats_base"]
    ] == [gaining]
    strict = gate(new, base, alpha=0.02)
    assert not strict.passed and "does not beat the base space" in strict.reason


def test_the_library_percentile_alone_needs_the_minimum_of_events():
    """A library percentile shown on fewer than min_events selections (the other judged events
    being "none similar" with clips marked wrong) does not pass on its own."""
    rng = np.random.default_rng(8)
    base_rank = rng.uniform(0.3, 0.7, 30)
    library = np.full(30, np.nan)
    library[:6] = 0.2
    decision = gate(
        per_event(base_rank, library=library + 0.6), per_event(base_rank, library=library)
    )
    assert decision.metrics["vs_base_tests"]["library_percentile"]["events"] == 6
    assert not decision.passed and "does not beat the base space" in decision.reason


def test_a_perfect_live_head_is_replaced_by_an_as_good_head_trained_on_more_events():
    rng = np.random.default_rng(2)
    base = per_event(rng.uniform(0.3, 0.7, 40))
    perfect = per_event(np.ones(40))

    def against_perfect(new_events: int, live_events: int, new_to_live: int):
        return gate(
            per_event(np.ones(40)),
            base,
            perfect,
            new_training_events=new_events,
            live_training_events=live_events,
            events_new_to_live=new_to_live,
        )

    decision = against_perfect(200, 100, 100)
    assert decision.passed, decision.reason
    assert "ties go to the newer head" in decision.reason
    assert decision.metrics["vs_live"]["judged_rank_score"]["difference"] == 0
    assert decision.metrics["events_new_to_live"] == 100
    # The same head trained on no event the live one was not stays out.
    stale = against_perfect(100, 100, 0)
    assert not stale.passed
    assert (
        "trained on no event the live head was not: no training or validation event is newer "
        "than the live head's (100 events in all, holdout included; the live head 100)"
    ) in stale.reason
    # Nothing new is the reason given first, whatever the screens measured: a stale retrain
    # measured worse than the live head (or than the base) is refused as stale, not as noise.
    stale_and_worse = gate(
        per_event(np.zeros(40)),
        base,
        perfect,
        new_training_events=100,
        live_training_events=100,
        events_new_to_live=0,
    )
    assert stale_and_worse.reason.startswith("trained on no event the live head was not")
    # Clips deleted the documented way take their events out of later trainings: a head can
    # learn from fewer events than the live head did and still have seen events it had not.
    fewer_but_newer = against_perfect(80, 100, 12)
    assert fewer_but_newer.passed, fewer_but_newer.reason
    assert fewer_but_newer.metrics["new_training_events"] == 80


def test_a_head_measured_worse_than_the_live_head_is_refused_even_within_the_margin():
    rng = np.random.default_rng(3)
    base = per_event(rng.uniform(0.2, 0.6, 60))
    live = per_event(np.clip(base.judged_rank_score + 0.35, 0, 1))
    clearly_worse = per_event(np.clip(base.judged_rank_score + 0.15, 0, 1))
    decision = gate(clearly_worse, base, live, new_training_events=90, live_training_events=60)
    assert not decision.passed and "measured worse than the live head" in decision.reason
    # 0.01 worse on every event: well inside the margin, still not served (a served head must
    # not get worse), whatever the margin.
    slightly_worse = per_event(live.judged_rank_score - 0.01)
    for margin in (0.05, 0.5):
        decision = gate(
            slightly_worse,
            base,
            live,
            new_training_events=90,
            live_training_events=60,
            margin=margin,
        )
        assert not decision.passed and "measured worse than the live head" in decision.reason
        assert decision.metrics["vs_live"]["judged_rank_score"]["difference"] == pytest.approx(
            -0.01
        )


def test_a_head_not_shown_non_inferior_waits_for_evidence_or_a_wider_margin():
    rng = np.random.default_rng(8)
    base = per_event(rng.uniform(0.1, 0.3, 20))
    live = per_event(np.full(20, 0.6))
    # On average a little better than the live head, but too few and too noisy screens to rule
    # out being worse by more than the margin.
    noise = rng.normal(0, 0.3, 20)
    noisy = per_event(0.6 + noise - noise.mean() + 0.01)
    decision = gate(noisy, base, live, new_training_events=90, live_training_events=60)
    assert not decision.passed
    assert "worse than the live head by more than the margin 0.05" in decision.reason
    assert decision.metrics["vs_live"]["judged_rank_score"]["interval"][0] < -0.05
    wider = gate(noisy, base, live, new_training_events=90, live_training_events=60, margin=0.5)
    assert wider.passed and "at least as good as the live head" in wider.reason


def test_the_live_head_unchanged_is_not_served_again():
    """A warm start that stayed at epoch 0 has the live head's weights: its differences are all
    zero, which the tie rule would pass; re-serving it would only redo the re-projection."""
    rng = np.random.default_rng(10)
    base = per_event(rng.uniform(0.3, 0.5, 40))
    live = per_event(np.clip(base.judged_rank_score + 0.3, 0, 1))
    same = per_event(live.judged_rank_score)
    kwargs = {"new_training_events": 90, "live_training_events": 60}
    assert gate(same, base, live, **kwargs).passed
    decision = gate(same, base, live, unchanged=True, **kwargs)
    assert not decision.passed and "the live head unchanged" in decision.reason
    assert decision.metrics["unchanged"] is True
    json.dumps(decision.metrics)


def test_too_few_judged_events_are_refused_with_a_reason():
    decision = gate(per_event(np.ones(7)), per_event(np.zeros(7)))
    assert not decision.passed
    assert "too few judged events: 7 with a selection or a clip marked wrong" in decision.reason
    # Events without a selection (NaN) do not count.
    values = np.r_[np.ones(5), np.full(20, np.nan)]
    decision = gate(per_event(values), per_event(values * 0))
    assert not decision.passed and "too few judged events: 5" in decision.reason
    json.dumps(decision.metrics)


def test_evaluation_screens_decide_when_there_are_enough_of_them():
    rng = np.random.default_rng(4)
    # 30 biased screens where the new head looks great, 30 evaluation screens where it does not.
    biased = per_event(np.ones(30), evaluation=False)
    honest = per_event(rng.uniform(0.3, 0.7, 30), event_ids=np.arange(30, 60))
    both = EventMetrics(*(np.r_[getattr(biased, f), getattr(honest, f)] for f in FIELDS))
    base_values = np.r_[np.full(30, 0.5), honest.judged_rank_score]
    base = per_event(base_values, event_ids=np.arange(60))
    base.evaluation[:] = both.evaluation
    decision = gate(both, base)
    assert decision.metrics["judged_on"] == "evaluation screens"
    assert decision.metrics["judged_events"] == 30
    assert not decision.passed
    # Without enough evaluation screens every holdout event is judged, and the reason says so.
    biased_base = per_event(np.full(30, 0.5), evaluation=False)
    fallback = gate(biased, biased_base)
    assert fallback.passed and fallback.metrics["judged_on"].startswith("all holdout events")


def test_the_bootstrap_resamples_anchors_not_events():
    rng = np.random.default_rng(5)
    # 4 anchors x 10 events each, the gain carried by one anchor only: with events as the unit it
    # would look certain; by anchor it is not.
    gain = np.r_[np.full(10, 0.4), np.zeros(30)] + rng.normal(0, 0.01, 40)
    anchors = np.repeat(np.arange(4), 10)
    base = per_event(np.full(40, 0.5), anchors=anchors)
    new = per_event(0.5 + gain, anchors=anchors)
    by_anchor = gate(new, base)
    by_event = gate(per_event(0.5 + gain), per_event(np.full(40, 0.5)))
    assert by_event.passed and not by_anchor.passed
    assert by_anchor.metrics["vs_base"]["judged_rank_score"]["anchors"] == 4


def test_events_are_paired_by_id_and_must_match():
    rng = np.random.default_rng(3)
    values = rng.uniform(0.2, 0.6, 30)
    base = per_event(values)
    new = per_event(values[::-1] + 0.3, event_ids=np.arange(30)[::-1])
    decision = gate(new, base)
    assert decision.passed
    assert decision.metrics["vs_base"]["judged_rank_score"]["difference"] == pytest.approx(0.3)
    with pytest.raises(GateInputError):
        gate(per_event(values, event_ids=np.arange(1, 31)), base)


def test_gate_is_deterministic_for_a_seed():
    rng = np.random.default_rng(4)
    a, b = per_event(rng.random(40)), per_event(rng.random(40))
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
    # Library percentile (all 6 rows, without the anchor and the chosen clip): clip 1 beats all
    # 4 others; clip 3 beats none and ties with clip 5 (half).
    np.testing.assert_allclose(metrics.library_percentile[:2], [1.0, 0.5 / 4])
    assert np.isnan(metrics.library_percentile[3])
    # Top-rank score 1 / (1 + R / 10): clip 1 has rank 0; 3.5 of the 4 others are closer than
    # clip 3. In a library of 1,000 clips (these 6 rows a sample of it) the same share is
    # 873.25 clips closer.
    np.testing.assert_allclose(metrics.top_rank_score[:2], [1.0, 1 / 1.35])
    assert np.isnan(metrics.top_rank_score[3])
    # Judged rank score: event 10 half its chosen clip's 1.0 and half (1 - the score of clip 3,
    # marked wrong: 3.5 of 4 others closer, as for event 11); event 13 said none similar and
    # marked clip 1 wrong (nothing closer: score 1), so it is judged 1 - 1 = 0.
    np.testing.assert_allclose(
        metrics.judged_rank_score,
        [0.5 * (1 + 1 - 1 / 1.35), 1 / 1.35, metrics.top_rank_score[2], 0],
    )
    sampled = evaluate_events(base_space, vectors, screens, library_size=1000)
    np.testing.assert_allclose(sampled.top_rank_score[:2], [1.0, 1 / (1 + 873.25 / 10)])
    np.testing.assert_allclose(sampled.library_percentile, metrics.library_percentile)
    assert metrics.anchors.tolist() == [0, 0, 0, 0]
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
