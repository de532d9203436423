"""Training heads on synthetic sorting data with planted trick and spot factors."""

import json
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch

from heaters_db.errors import ConfigurationError
from heaters_db.heads import (
    Screen,
    TrainConfig,
    TrainingData,
    TrainingDataError,
    Triplets,
    base_space,
    evaluate_events,
    gate,
    head_space,
    same_label_recall_at_k,
    train_head,
    triplets_from_screens,
)
from heaters_db.heads.train import epochs_tied_with_lowest

DIM = 64
TRICKS, SPOTS, REPEATS = 8, 6, 3


@dataclass
class Library:
    vectors: np.ndarray
    tricks: np.ndarray
    spots: np.ndarray


def make_library(factors: tuple[np.ndarray, np.ndarray], rng: np.random.Generator) -> Library:
    """Clip vector = trick factor + 2 x spot factor + noise: the base space groups by spot, so
    finding the same trick is what a head has to learn."""
    trick_factors, spot_factors = factors
    tricks, spots, vectors = [], [], []
    for trick in range(TRICKS):
        for spot in range(SPOTS):
            for _ in range(REPEATS):
                noise = 0.5 * rng.standard_normal(DIM) / np.sqrt(DIM)
                vectors.append(trick_factors[trick] + 2 * spot_factors[spot] + noise)
                tricks.append(trick)
                spots.append(spot)
    return Library(np.array(vectors, np.float32), np.array(tricks), np.array(spots))


def make_factors(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((TRICKS, DIM)) / np.sqrt(DIM),
        rng.standard_normal((SPOTS, DIM)) / np.sqrt(DIM),
    )


def simulate_screens(
    labels: np.ndarray,
    count: int,
    split: str,
    rng: np.random.Generator,
    first_event: int = 0,
    shown: int = 6,
    random_answers: bool = False,
) -> list[Screen]:
    """A sorter in trick mode: picks the shown clip with the anchor's trick, else "none similar",
    and explicitly rejects about half of the rest. With random_answers it picks at random."""
    screens = []
    rows = np.arange(len(labels))
    for event in range(first_event, first_event + count):
        anchor = int(rng.integers(len(labels)))
        same = rows[(labels == labels[anchor]) & (rows != anchor)]
        other = rows[labels != labels[anchor]]
        candidates = [int(c) for c in rng.choice(other, shown, replace=False)]
        if rng.random() < 0.8:
            candidates[0] = int(rng.choice(same))
        rng.shuffle(candidates)
        if random_answers:
            selected = int(rng.choice(candidates)) if rng.random() < 0.8 else None
        else:
            matches = [c for c in candidates if labels[c] == labels[anchor]]
            selected = matches[0] if matches else None
        rejected = tuple(c for c in candidates if c != selected and rng.random() < 0.5)
        screens.append(Screen(event, anchor, tuple(candidates), selected, rejected, split))
    return screens


def sorting_data(random_answers: bool = False, seed: int = 0) -> tuple[TrainingData, Library]:
    """Train/validation/holdout screens over one library; a second library (same factors, fresh noise)
    measures whether what was learned carries over to clips nobody sorted."""
    rng = np.random.default_rng(seed)
    factors = make_factors(seed)
    library, unseen = make_library(factors, rng), make_library(factors, rng)
    screens = simulate_screens(library.tricks, 200, "train", rng, 0, random_answers=random_answers)
    screens += simulate_screens(
        library.tricks, 40, "validation", rng, 500, random_answers=random_answers
    )
    screens += simulate_screens(
        library.tricks, 80, "holdout", rng, 1000, random_answers=random_answers
    )
    data = TrainingData(library.vectors, {i: i for i in range(len(library.vectors))}, screens)
    return data, unseen


FAST = TrainConfig(
    output_dim=32, hidden_dim=128, batch_size=64, learning_rate=1e-2, max_epochs=25, patience=10
)


def gate_against_base(result, data):
    new = evaluate_events(head_space(result.head), data.base_vectors, data.screens)
    old = evaluate_events(base_space, data.base_vectors, data.screens)
    return gate(new, old)


def test_head_learns_the_planted_trick_factor_and_passes_the_gate():
    data, unseen = sorting_data()
    result = train_head(data, FAST)
    base_recall = same_label_recall_at_k(base_space(unseen.vectors), unseen.tricks, 10).mean()
    head_recall = same_label_recall_at_k(head_space(result.head)(unseen.vectors), unseen.tricks, 10)
    assert base_recall < 0.4
    assert head_recall.mean() > 0.8
    assert head_recall.mean() > base_recall + 0.4
    assert result.best_epoch > 0
    assert result.history[0]["epoch"] == 0  # the untrained PCA head is the first candidate
    assert result.metrics["validation_top1"] > 0.8
    decision = gate_against_base(result, data)
    assert decision.passed, decision.reason
    # What projection_heads.metrics (jsonb, which has no NaN) will hold.
    json.dumps({**result.metrics, "gate": decision.metrics}, allow_nan=False)


def test_head_fitted_to_random_answers_is_rejected_by_the_gate():
    data, _ = sorting_data(random_answers=True, seed=1)
    result = train_head(data, FAST)
    decision = gate_against_base(result, data)
    assert not decision.passed
    assert "noise" in decision.reason


def test_same_seed_gives_identical_weights():
    data, _ = sorting_data(seed=2)
    config = TrainConfig(output_dim=16, hidden_dim=32, max_epochs=4, patience=10, seed=7)
    first, second = train_head(data, config), train_head(data, config)
    for a, b in zip(first.head.parameters(), second.head.parameters(), strict=True):
        assert torch.equal(a, b)
    assert first.history == second.history
    other = train_head(data, TrainConfig(output_dim=16, hidden_dim=32, max_epochs=4, seed=8))
    assert not torch.equal(first.head.hidden_layer.weight, other.head.hidden_layer.weight)


def test_best_epoch_weights_are_restored():
    data, _ = sorting_data(seed=3)
    result = train_head(data, TrainConfig(output_dim=16, hidden_dim=32, max_epochs=25, patience=3))
    losses = [record["validation_loss"] for record in result.history]
    assert losses[result.best_epoch] <= min(losses) + result.metrics["config"]["min_delta"]
    again = evaluate_events(
        head_space(result.head), data.base_vectors, data.screens, split="validation"
    ).summary()
    assert again["screen_top1"] == result.history[result.best_epoch]["validation_top1"]


def test_the_holdout_split_never_touches_training():
    data, _ = sorting_data(seed=3)
    config = TrainConfig(output_dim=16, hidden_dim=32, max_epochs=6, patience=3)
    first = train_head(data, config)
    # Answer every holdout screen the other way round: the trained head must not change.
    flipped = [
        s
        if s.split != "holdout"
        else Screen(s.event_id, s.anchor_row, s.candidate_rows, None, s.candidate_rows, "holdout")
        for s in data.screens
    ]
    second = train_head(TrainingData(data.base_vectors, data.clip_rows, flipped), config)
    for a, b in zip(first.head.parameters(), second.head.parameters(), strict=True):
        assert torch.equal(a, b)
    assert first.history == second.history


def test_tiny_data_with_a_none_screen_trains_and_the_gate_refuses_it():
    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((12, 16)).astype(np.float32)
    screens = [
        Screen(1, 0, (1, 2, 3), 1, (2,), "train"),
        Screen(2, 4, (5, 6, 7), None, (5, 6), "train"),  # "none similar"
        Screen(3, 8, (9, 10, 11), 10, (), "train"),
        Screen(4, 1, (0, 5, 9), 0, (), "holdout"),
        Screen(5, 2, (3, 7), None, (), "holdout"),
    ]
    data = TrainingData(vectors, {100 + i: i for i in range(12)}, screens)
    result = train_head(data, TrainConfig(output_dim=32, hidden_dim=16, max_epochs=5))
    assert result.head.architecture["output_dim"] == 32  # wider than the 16-d input: padded
    decision = gate_against_base(result, data)
    assert not decision.passed
    assert "too few judged events" in decision.reason


def test_none_only_screens_still_train():
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((20, 8)).astype(np.float32)
    screens = [Screen(i, i, (i + 1, i + 2), None, (i + 1,), "train") for i in range(10)]
    result = train_head(
        TrainingData(vectors, {}, screens), TrainConfig(output_dim=8, hidden_dim=8, max_epochs=3)
    )
    assert result.metrics["validation_screens"] == 0
    assert result.metrics["monitor"] == "train_loss"
    assert np.isfinite(result.history[-1]["train_loss"])
    json.dumps(result.metrics, allow_nan=False)


def test_optional_triplet_term_trains():
    data, _ = sorting_data(seed=6)
    triplets = triplets_from_screens(data.screens)
    data = TrainingData(data.base_vectors, data.clip_rows, data.screens, triplets)
    config = TrainConfig(output_dim=16, hidden_dim=32, max_epochs=3, triplet_weight=0.5)
    result = train_head(data, config)
    assert np.isfinite(result.metrics["train_loss"])


def test_a_large_library_only_touches_the_rows_it_needs():
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((100_000, 32)).astype(np.float32)
    screens = [
        Screen(i, int(a), tuple(int(c) for c in rng.integers(0, 100_000, 5)), None, (), split)
        for i, (a, split) in enumerate(
            zip(rng.integers(0, 100_000, 40), ["train"] * 30 + ["holdout"] * 10, strict=True)
        )
    ]
    config = TrainConfig(output_dim=16, hidden_dim=32, max_epochs=2, pca_max_samples=20_000)
    result = train_head(TrainingData(vectors, {}, screens), config)
    assert result.metrics["train_screens"] == 30


def test_from_clip_ids_maps_ids_to_rows_and_skips_clips_without_vectors():
    vectors = np.eye(4, dtype=np.float32)
    data = TrainingData.from_clip_ids(
        [10, 20, 30, 40],
        vectors,
        [
            {
                "event_id": 1,
                "anchor_clip_id": 10,
                "candidate_clip_ids": [20, 30, 99],
                "selected_clip_id": 30,
                "rejected_clip_ids": [20],
                "split": "holdout",
            },
            {
                "event_id": 2,
                "anchor_clip_id": 99,
                "candidate_clip_ids": [20],
                "selected_clip_id": None,
            },
            {
                "event_id": 3,
                "anchor_clip_id": 10,
                "candidate_clip_ids": [20],
                "selected_clip_id": 99,
            },
        ],
        [
            {
                "event_id": 1,
                "anchor_clip_id": 10,
                "positive_clip_id": 30,
                "negative_clip_id": 20,
                "weight": 1.0,
                "split": "holdout",
            },
            {
                "event_id": 1,
                "anchor_clip_id": 10,
                "positive_clip_id": 30,
                "negative_clip_id": 99,
                "weight": 0.3,
                "split": "holdout",
            },
        ],
    )
    assert data.screens == [Screen(1, 0, (1, 2), 2, (1,), "holdout")]
    assert data.triplets.anchor.tolist() == [0] and data.triplets.negative.tolist() == [1]
    assert data.clip_rows == {10: 0, 20: 1, 30: 2, 40: 3}


def test_invalid_config_is_refused():
    with pytest.raises(ConfigurationError):
        TrainConfig(temperature=0)
    with pytest.raises(ConfigurationError):
        TrainConfig(hard_negative_weight=0)
    with pytest.raises(ConfigurationError, match="start_decay"):
        TrainConfig(start_decay=-1)


def test_unusable_data_is_refused_clearly():
    vectors = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(TrainingDataError, match="outside"):
        TrainingData(vectors, {}, [Screen(1, 0, (1, 5), 1)])
    with pytest.raises(TrainingDataError, match="split"):
        TrainingData(vectors, {}, [Screen(1, 0, (1,), 1, (), "test")])
    # Every event held out (a sorter who only ever got evaluation screens): the message says so.
    with pytest.raises(
        TrainingDataError,
        match=r"no usable training screens: 0 in the train split .* 0 validation and 2 held out",
    ):
        train_head(
            TrainingData(
                vectors,
                {},
                [Screen(1, 0, (1,), 1, (), "holdout"), Screen(2, 1, (2,), None, (), "holdout")],
            )
        )
    with pytest.raises(TrainingDataError, match="non-empty"):
        TrainingData(np.zeros((0, 4)), {}, [])
    bad = Triplets(np.array([1]), np.array([0]), np.array([1]), np.array([7]), np.array([1.0]))
    with pytest.raises(TrainingDataError, match="triplet"):
        TrainingData(vectors, {}, [], bad)


def test_capacity_follows_the_data():
    from heaters_db.heads.capacity import candidate_shapes, train_selected

    # A 64-d base with a few dozen events: only the smallest widths, never wider than the base.
    few = candidate_shapes(64, 40)
    assert {shape[0] for shape in few} == {16}
    many = candidate_shapes(1024, 20_000)
    assert max(shape[0] for shape in many) == 256
    assert max(shape[0] for shape in candidate_shapes(64, 20_000)) == 64
    data, _ = sorting_data(seed=7)
    result = train_selected(data, replace(FAST, max_epochs=8), auto_shape=True)
    tried = result.metrics["capacity"]["tried"]
    assert len(tried) > 2
    assert {t["start"] for t in tried} == {"pca"}  # no live head, no warm start
    best = min(t["validation_loss"] for t in tried)
    assert result.metrics["validation_loss"] == best
    assert (
        result.head.architecture["output_dim"] == result.metrics["capacity"]["chosen"]["output_dim"]
    )


def _distance(head, start) -> float:
    return sum(
        float((a - b).detach().pow(2).sum())
        for (name, a), b in zip(head.named_parameters(), start.parameters(), strict=True)
        if name.endswith("weight")
    )


def test_start_decay_holds_a_head_near_where_it_started():
    data, _ = sorting_data(seed=3)
    config = replace(FAST, max_epochs=15, patience=100)
    pca = train_head(data, replace(config, max_epochs=0)).head  # the fresh heads' start
    free = train_head(data, config)
    held = train_head(data, replace(config, start_decay=50.0))
    assert free.best_epoch > 0 and held.best_epoch > 0
    assert 0 < _distance(held.head, pca) < 0.5 * _distance(free.head, pca)
    # A warm start is held near the live head, not near the PCA projection.
    live = free.head
    warm_free = train_head(data, config, start_from=live)
    warm_held = train_head(data, replace(config, start_decay=50.0), start_from=live)
    assert warm_free.best_epoch > 0 and warm_held.best_epoch > 0
    assert 0 < _distance(warm_held.head, live) < 0.5 * _distance(warm_free.head, live)
    # A pull of the whole distance or more puts every step back at the start: the head stays
    # where it began (the best epoch's weights are the start's) instead of overshooting it.
    pinned = train_head(data, replace(config, start_decay=1e6), start_from=live)
    assert _distance(pinned.head, live) < 1e-10


def test_the_validation_fold_chooses_how_far_a_warm_start_moves_from_the_live_head():
    from heaters_db.heads.capacity import START_DECAYS, train_selected

    data, _ = sorting_data(seed=5)
    live = train_head(data, replace(FAST, max_epochs=2)).head
    result = train_selected(data, replace(FAST, max_epochs=8), auto_shape=True, live_head=live)
    tried = result.metrics["capacity"]["tried"]
    warm = [t for t in tried if t["start"] == "warm"]
    assert sorted(t["start_decay"] for t in warm) == sorted(START_DECAYS)
    assert {t["start_decay"] for t in tried if t["start"] == "pca"} == {0.0}  # fresh: free
    assert len({t["validation_loss"] for t in warm}) == 2  # the pull changed the fit
    chosen = result.metrics["capacity"]["chosen"]
    assert chosen["start_decay"] == result.metrics["config"]["start_decay"]
    # The warm start kept (and, unless a fresh head is clearly better, served) is the one with
    # the lower validation loss, and the live head's loss beside it is their common epoch 0.
    kept = min(warm, key=lambda t: t["validation_loss"])
    if chosen["start"] == "warm":
        assert chosen["start_decay"] == kept["start_decay"]
        assert result.metrics["validation_loss"] == kept["validation_loss"]
    else:
        assert result.metrics["capacity"]["fresh_versus_warm"]["clearly_better"]
    # Without validation screens nothing can choose: one warm start, the configured pull.
    blind = train_selected(_with_validation(data, 0), FAST, auto_shape=True, live_head=live)
    blind_warm = [t for t in blind.metrics["capacity"]["tried"] if t["start"] == "warm"]
    assert [t["start_decay"] for t in blind_warm] == [FAST.start_decay]
    # A fixed shape: one warm start too (the pull is part of shaping by the validation fold).
    fixed = train_selected(data, replace(FAST, max_epochs=8), auto_shape=False, live_head=live)
    assert [t["start"] for t in fixed.metrics["capacity"]["tried"]] == ["pca", "warm"]


def _with_validation(data: TrainingData, screens: int) -> TrainingData:
    """The same events with only the first ``screens`` validation screens kept."""
    kept, seen = [], 0
    for screen in data.screens:
        if screen.split == "validation":
            seen += 1
            if seen > screens:
                continue
        kept.append(screen)
    return TrainingData(data.base_vectors, data.clip_rows, kept)


def test_a_warm_start_begins_at_the_live_head_and_never_ends_worse_on_validation():
    data, _ = sorting_data(seed=4)
    live = train_head(_with_validation(data, 40), replace(FAST, max_epochs=3)).head
    untouched = train_head(data, replace(FAST, max_epochs=0), start_from=live)
    for a, b in zip(untouched.head.parameters(), live.parameters(), strict=True):
        assert torch.equal(a, b)
    assert untouched.metrics["start"] == "warm"
    warm = train_head(data, FAST, start_from=live)
    assert warm.history[0]["validation_loss"] == untouched.history[0]["validation_loss"]
    assert warm.metrics["validation_loss"] <= warm.history[0]["validation_loss"]
    # The live head's shape wins over the config's; a head for other vectors is refused.
    wide = train_head(
        data, replace(FAST, output_dim=16, hidden_dim=8, max_epochs=1), start_from=live
    )
    assert wide.head.architecture == live.architecture
    narrow = TrainingData(data.base_vectors[:, :32].copy(), data.clip_rows, data.screens)
    with pytest.raises(ConfigurationError, match="warm-start"):
        train_head(narrow, FAST, start_from=live)


def test_selection_between_fresh_and_warm_heads_follows_the_validation_fold():
    from heaters_db.heads.capacity import can_warm_start, train_selected

    data, _ = sorting_data(seed=5)
    # A poor live head (one epoch at a tiny learning rate): with a full validation fold the
    # candidate with the lowest validation loss wins, whichever start it had.
    live = train_head(data, replace(FAST, max_epochs=1, learning_rate=1e-5)).head
    result = train_selected(data, FAST, auto_shape=False, live_head=live)
    tried = result.metrics["capacity"]["tried"]
    assert [t["start"] for t in tried] == ["pca", "warm"]
    assert result.metrics["validation_loss"] == min(t["validation_loss"] for t in tried)
    # The live head's own validation loss is kept beside the choice (the warm start's epoch 0).
    as_live = train_head(data, replace(FAST, max_epochs=0), start_from=live)
    assert result.metrics["capacity"]["live_validation_loss"] == pytest.approx(
        as_live.metrics["validation_loss"]
    )
    # Too few validation screens to stop on: cross-validation over the train screens picks the
    # warm start's epochs, and on these events it leaves the live head instead of staying
    # frozen at its epoch 0.
    few = train_selected(_with_validation(data, 5), FAST, auto_shape=False, live_head=live)
    assert [t["start"] for t in few.metrics["capacity"]["tried"]] == ["pca", "warm"]
    warm = [t for t in few.metrics["capacity"]["tried"] if t["start"] == "warm"][0]
    assert warm["best_epoch"] > 0, few.metrics["capacity"]
    assert few.metrics["monitor"] == "cross_validation"
    # Without validation screens nothing can show a fresh head clearly better: the warm start.
    none = train_selected(_with_validation(data, 0), FAST, auto_shape=False, live_head=live)
    assert none.metrics["start"] == "warm"
    assert "fresh_versus_warm" not in none.metrics["capacity"]
    assert "live_validation_loss" not in none.metrics["capacity"]
    assert not none.head.same_space_as(live)
    # A fixed shape other than the live head's, or another base width: fresh heads only.
    assert can_warm_start(live, DIM, FAST, False)
    assert not can_warm_start(live, DIM, replace(FAST, output_dim=16), False)
    assert can_warm_start(live, DIM, replace(FAST, output_dim=16), True)
    assert not can_warm_start(live, DIM + 1, FAST, True)
    assert not can_warm_start(None, DIM, FAST, True)


def test_a_fresh_head_replaces_a_warm_start_only_when_clearly_better_on_validation():
    from heaters_db.heads.capacity import (
        FRESH_OVER_WARM_Z,
        choose_candidate,
        fresh_edge_over_warm,
        train_selected,
    )
    from heaters_db.heads.train import validation_screen_losses

    data, _ = sorting_data(seed=5)
    # The per-screen losses average to the validation loss training reported.
    trained = train_head(data, FAST)
    anchors, losses = validation_screen_losses(trained, data)
    assert len(anchors) == len(losses) == trained.metrics["validation_screens"]
    assert losses.mean() == pytest.approx(trained.metrics["validation_loss"], rel=1e-5)
    # A warm start left at a poor live head (one epoch at a tiny learning rate): the fresh head
    # is clearly better and is kept.
    poor = train_head(data, replace(FAST, max_epochs=1, learning_rate=1e-5)).head
    stuck = train_head(data, replace(FAST, max_epochs=0), start_from=poor)
    versus = fresh_edge_over_warm(trained, stuck, data)
    assert versus["clearly_better"], versus
    assert versus["loss_edge"] > FRESH_OVER_WARM_Z * versus["standard_error"]
    assert choose_candidate([trained, stuck], data) == (trained, versus)
    # A good live head: a fresh one that is only as good does not replace its continuation.
    good = trained.head
    kept = train_selected(data, FAST, auto_shape=False, live_head=good)
    versus = kept.metrics["capacity"]["fresh_versus_warm"]
    assert not versus["clearly_better"] and kept.metrics["start"] == "warm", versus
    # The comparison itself: a head against itself has no edge.
    same = fresh_edge_over_warm(trained, trained, data)
    assert same["loss_edge"] == 0 and not same["clearly_better"]


def test_cross_validation_ties_go_to_more_epochs():
    # Ten anchors, one screen each; each epoch's excess over the lowest (epoch 2) is its mean
    # plus +-0.3 across anchors, so one standard error of it is 0.3 / 3 = 0.1.
    means = np.array([0.5, 0.2, 0.0, 0.05, 0.08, 0.3, 0.6])
    spread = np.where(np.arange(10) % 2 == 0, 0.3, -0.3)[:, None] * (means > 0)
    losses = 1.0 + means[None, :] + spread
    anchors = np.arange(10)
    # Epochs 3 and 4 are within one standard error of epoch 2: the most of them, 4.
    assert epochs_tied_with_lowest(losses, anchors, min_delta=1e-4) == 4
    # Without the spread every gain is clear: the lowest itself.
    assert epochs_tied_with_lowest(1.0 + np.tile(means, (10, 1)), anchors, 1e-4) == 2
    # A loss that only rises (an incumbent the events cannot improve): epoch 0, no training.
    rising = 1.0 + np.tile(np.arange(7) * 0.1, (10, 1)) + spread * 0.01
    assert epochs_tied_with_lowest(rising, anchors, 1e-4) == 0
    # Screens of one anchor are averaged before the error: duplicating an anchor's screens
    # does not make its excess look more certain.
    doubled = np.concatenate([losses, losses[:1]])
    assert epochs_tied_with_lowest(doubled, np.concatenate([anchors, [0]]), 1e-4) == 4


def test_a_warm_start_below_a_usable_validation_fold_takes_its_epochs_from_cross_validation():
    data, _ = sorting_data(seed=6)
    few = _with_validation(data, 5)
    # A poor live head and informative events: the folds' held-out loss keeps falling, so the
    # warm start trains on (the final fit runs exactly the epochs the folds chose).
    poor = train_head(data, replace(FAST, max_epochs=1, learning_rate=1e-5)).head
    moved = train_head(few, FAST, start_from=poor)
    assert moved.metrics["monitor"] == "cross_validation"
    curve = moved.metrics["cross_validation_loss"]
    assert len(curve) == FAST.max_epochs + 1
    assert moved.best_epoch == moved.metrics["epochs_run"] > FAST.max_epochs // 2
    assert curve[moved.best_epoch] < curve[0] / 10
    # A live head that already fits these events (the incumbent is as good as they can show):
    # training on only raises the folds' loss, so the warm start stays at epoch 0, the live
    # head itself.
    fitted = train_head(few, replace(FAST, max_epochs=80, patience=200)).head
    kept = train_head(few, FAST, start_from=fitted)
    assert kept.metrics["monitor"] == "cross_validation"
    assert kept.best_epoch == kept.metrics["epochs_run"] == 0, kept.metrics["cross_validation_loss"]
    for a, b in zip(kept.head.parameters(), fitted.parameters(), strict=True):
        assert torch.equal(a, b)
    # Random answers on 40 screens: the folds' loss turns up after a few epochs, and the warm
    # start stops there instead of fitting the noise for every epoch (as it did on the train
    # loss).
    noise, _ = sorting_data(random_answers=True, seed=0)
    train = [s for s in noise.screens if s.split == "train"][:40]
    validation = [s for s in noise.screens if s.split == "validation"][:5]
    small = TrainingData(noise.base_vectors, noise.clip_rows, train + validation)
    live = train_head(TrainingData(noise.base_vectors, noise.clip_rows, train[:20]), FAST).head
    stopped = train_head(small, FAST, start_from=live)
    noise_curve = stopped.metrics["cross_validation_loss"]
    assert 0 < stopped.best_epoch < FAST.max_epochs // 2, noise_curve
    assert noise_curve[-1] > noise_curve[stopped.best_epoch] + 0.5
    assert stopped.metrics["epochs_run"] == stopped.best_epoch
    # A fresh head there trains on the train loss (the gate protects the live space).
    assert train_head(small, FAST).metrics["monitor"] == "train_loss"
    # Fewer train screens than the folds need: the train loss decides, as before.
    tiny = TrainingData(noise.base_vectors, noise.clip_rows, train[:15] + validation)
    assert train_head(tiny, FAST, start_from=live).metrics["monitor"] == "train_loss"
    # A full validation fold stops on itself: no cross-validation.
    full = train_head(data, FAST, start_from=poor)
    assert full.metrics["monitor"] == "validation_loss"
    assert "cross_validation_loss" not in full.metrics
