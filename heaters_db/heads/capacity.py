"""Model selection on the validation fold: the head's size, and whether to continue the live head.

Shapes. With ``head_output_dim`` = 0 (auto), a training run fits a few shapes -- output widths up
to the base's own width, hidden = 2 x output -- and keeps the one with the lowest validation
screen loss (the validation fold, never the gate's holdout). How many shapes grows with the
events: a few dozen events only try the smallest ones, so a 64-d base with 40 events does not get
a million-parameter head. Without validation screens the smallest shape is used. A fixed
``head_output_dim`` trains that one shape.

Regularisation, chosen by the validation fold: early stopping, the width, and for the warm start
how far it may move from the live head. The warm start comes twice, free and held near the live
head (START_DECAYS: each step pulls its weights back towards the live head's, L2-SP), and the
lower validation loss keeps one. The shapes used to come with two AdamW weight decays (towards
zero, 1e-4 and 1e-2) instead; at this learning rate and these step counts the pull was nominal
(the two fits' validation losses differed by 0.007 % at the median over 699 fits of the
learning-curve matrix), so that choice was noise and cost half the fits. Holding fresh heads
near their PCA start as well was measured and dropped (below).

Warm start. When a head already serves the mode (same base width, and the configured shape if
one is fixed), one more candidate starts from a copy of the live head instead of from the PCA,
whatever the size of the validation fold (two, free and held, when the fold shapes the heads).
Heads trained from scratch on each round's events vary from run to run by more than a round of
new events improves them (in the learning-curve matrix
a fifth of new heads were worse than the live one by over 0.02 of recall, and the gate cannot
see differences that small on a few dozen screens). A warm start stays in the live head's
solution and differs from it by what the new events taught. With train.MIN_VALIDATION_SCREENS
validation screens or more, its epoch 0 is the live head itself and early stopping on the
validation loss ends it no worse than the live head there. With fewer (train.py: a handful of
validation screens cannot pick an epoch), cross-validation over the train screens picks its
epochs, ties going to more of them: the live head moves as far as the new events support, and
stays (epoch 0, the live head itself) when its folds' loss only rises. Before, it trained on the
train loss for every epoch, and three of the held-out check's four drops were such warm starts.
The fresh candidates still compete, so a live head stuck in a poor solution can be replaced once
the fold can show it.

Which candidate wins: among the fresh ones, the lowest validation screen loss. Against a warm
start, a fresh head must be *clearly* better: its validation loss lower per anchor by more than
FRESH_OVER_WARM_Z standard errors of the paired difference (without validation screens nothing
can show that, and the warm start stays). Measured on two runs of the learning-curve matrix
where the lowest validation loss chose, heads continued from the live one were almost never
worse than it in truth (1 of 199 by more than 0.02 of recall), while fresh heads chosen after
150 screens were worse in 31 of 118 rounds (mean gain +0.013), and one of them, which every
evaluation metric rated level with the live one, made served recall drop. So a small validation
edge is not enough to throw the live head's solution away; a live head stuck in a poor one still
loses to a clear edge.

Warm starts on small folds, measured on the learning-curve matrix (50 runs, 300 rounds): against
warm starts only from train.MIN_VALIDATION_SCREENS validation screens, new heads truly worse than
the live one fell from 14 to 7, mean served recall after 100 screens rose from 0.553 to 0.641 and
after 300 from 0.791 to 0.804, and the round where served recall lagged a better head went. A
sign-flip randomisation test in place of the 2 standard errors (exact on few anchors: fewer than 6
can never show an edge) was measured on 20 runs of the matrix and dropped: drops 1 -> 3, served
recall lower at every checkpoint (0.638 -> 0.624 after 100 screens), since the warm starts it kept
drifted too. The live head's own validation loss is recorded beside the choice
(``live_validation_loss``); on the same runs it was no second signal for the gate: the validation
screens' candidates come from the live space, and 6 heads truly better than the live one by over 0.1
of recall had a higher validation loss than it, as did 3 of the 4 truly worse. Also refusing a fresh
head on a fold below MIN_VALIDATION_SCREENS (the one drop left came from such a fold) was measured
and dropped: 12 truly worse, 2 drops, 1 lagging round, 0.799 after 300; the two differ by what a
rerun moves, and the simpler rule measured better. Moving a warm start that no fold could stop
only half-way from the live head (weights interpolated, as WiSE-FT does) was measured on 20
repeatable runs and dropped: truly worse heads 4 -> 1, but the one drop moved to a warm start
stopped on a 20-screen fold, and served recall after 100 screens fell (0.621 -> 0.608).

The held warm start, measured on the learning-curve matrix (50 runs, against the weight-decay
pair): drops 4 -> 0, truly worse new heads 10 -> 5 of 240 (none served), paired served recall
-0.010 [-0.016, -0.005] after 100 screens and -0.005 [-0.012, +0.000] over the whole curve.
Unlike WiSE-FT's fixed half-way step it is a candidate the validation fold can turn down (it
kept the held one in about 4 rounds out of 10). Holding the fresh heads near their PCA start as
well gave 1 drop and 6 truly worse, but -0.026 [-0.042, -0.012] after 100 screens: on a first
round's 5-screen fold the held fresh head won and learned less. Offering the held candidates
only from MIN_VALIDATION_SCREENS validation screens left the first 100 screens unchanged and 3
of the 4 drops in place (23 runs).

FRESH_OVER_WARM_Z 3 instead of 2 was measured on the held-out check (learning_curves.py
--held-out, its first 36 runs), where one of its two drops was a fresh head 2.02 standard
errors ahead of the warm start: that drop went, another came (a warm start kept where a fresh head had been
chosen, wide_1024 seed 5 at 150 screens, 0.06 of recall), and served recall was level (paired
over the whole curve -0.000 [-0.002, +0.001]). Either start can drift by more than the gate's
screens resolve; the threshold only moves which one does. So did comparing the two on the
order of the validation screens (the share of the other shown clips ranked below the chosen
one) instead of their loss, measured on both full matrices and dropped: the check's drop went,
one came on each matrix, and served recall fell (-0.005 and -0.003 over the whole curve).
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Any

from heaters_db.heads.module import ProjectionHead, default_hidden_dim
from heaters_db.heads.train import (
    TrainConfig,
    TrainingData,
    TrainResult,
    per_anchor_means,
    train_head,
    validation_screen_losses,
)

log = logging.getLogger(__name__)

OUTPUT_WIDTHS = (16, 32, 64, 128, 256)
# How strongly a warm start is pulled back to the live head's weights (TrainConfig.start_decay):
# free, or held near it. At learning rate 1e-3, 10 pulls by 1 % of the distance per step.
START_DECAYS = (0.0, 10.0)
FRESH_OVER_WARM_Z = 2.0  # standard errors a fresh head's validation edge must exceed


def candidate_shapes(input_dim: int, train_screens: int) -> list[tuple[int, int]]:
    """(output_dim, hidden_dim) of the fresh heads to try, smallest first: widths no wider than
    the base and about one width per doubling of the training screens beyond 25."""
    widths = [w for w in OUTPUT_WIDTHS if w <= max(input_dim, OUTPUT_WIDTHS[0])]
    allowed = 1
    screens = max(train_screens, 1)
    while screens >= 50 and allowed < len(widths):
        allowed += 1
        screens //= 2
    return [(w, 2 * w) for w in widths[:allowed]]


def can_warm_start(
    live_head: ProjectionHead | None, input_dim: int, config: TrainConfig, auto_shape: bool
) -> bool:
    """Whether the live head can seed a candidate: a head that maps vectors of this width and,
    when the operator fixed a shape, has that shape (a changed setting means fresh heads)."""
    if live_head is None or live_head.input_dim != input_dim:
        return False
    if auto_shape:
        return True
    hidden = config.hidden_dim or default_hidden_dim(config.output_dim)
    return (live_head.output_dim, live_head.hidden_dim) == (config.output_dim, hidden)


def train_selected(
    data: TrainingData,
    config: TrainConfig,
    *,
    auto_shape: bool,
    live_head: ProjectionHead | None = None,
) -> TrainResult:
    """Train every candidate (the shapes, fresh, and the warm starts from ``live_head`` where
    they apply), return the one the validation fold prefers. The comparison is kept in
    ``metrics["capacity"]``: every candidate's start, shape, validation loss and the choice."""
    validation_screens = sum(1 for s in data.screens if s.split == "validation")
    if auto_shape:
        train_screens = sum(1 for s in data.screens if s.split == "train")
        shapes = candidate_shapes(data.base_vectors.shape[1], train_screens)
        if not validation_screens:
            shapes = shapes[:1]
        starts: list[tuple[TrainConfig, ProjectionHead | None]] = [
            (replace(config, output_dim=w, hidden_dim=h), None) for w, h in shapes
        ]
    else:
        starts = [(config, None)]
    if can_warm_start(live_head, data.base_vectors.shape[1], config, auto_shape):
        # Shaped by the validation fold, the warm start comes free and held near the live head;
        # without validation screens nothing could choose between the two.
        decays = START_DECAYS if auto_shape and validation_screens else (config.start_decay,)
        starts += [(replace(config, start_decay=d), live_head) for d in decays]

    tried: list[dict[str, Any]] = []
    results: list[TrainResult] = []
    for shaped, start_from in starts:
        result = train_head(data, shaped, start_from=start_from)
        results.append(result)
        used = result.metrics["config"]  # a warm start's shape is the live head's
        tried.append(
            {
                "start": result.metrics["start"],
                "output_dim": used["output_dim"],
                "hidden_dim": used["hidden_dim"],
                "weight_decay": used["weight_decay"],
                "start_decay": used["start_decay"],
                "parameters": result.metrics["parameters"],
                "validation_loss": result.metrics.get("validation_loss"),
                "best_epoch": result.best_epoch,
            }
        )
    best, versus_warm = choose_candidate(results, data)
    chosen = best.metrics["config"]
    best.metrics["capacity"] = {
        "rule": (
            "lowest validation screen loss among the fresh candidates; against a warm start a "
            f"fresh one must be lower per anchor by more than {FRESH_OVER_WARM_Z} standard errors"
        ),
        "tried": tried,
        "chosen": {
            "start": best.metrics["start"],
            **{k: chosen[k] for k in ("output_dim", "hidden_dim", "weight_decay", "start_decay")},
        },
        **({"fresh_versus_warm": versus_warm} if versus_warm else {}),
        **live_validation_loss(results),
    }
    log.info(
        "head chosen by validation",
        extra={"action": "head_capacity", **best.metrics["capacity"]["chosen"]},
    )
    return best


def _warm_start(results: list[TrainResult]) -> TrainResult | None:
    """The warm start with the lowest validation loss (the free one and the one held near the
    live head compete like the fresh shapes do), or the only one."""
    warm = [r for r in results if r.metrics["start"] == "warm"]
    if len(warm) > 1 and all(r.metrics.get("validation_loss") is not None for r in warm):
        return min(warm, key=lambda r: r.metrics["validation_loss"])
    return warm[0] if warm else None


def live_validation_loss(results: list[TrainResult]) -> dict[str, float]:
    """The live head's own loss on today's validation fold (a warm start's epoch 0), so the
    chosen head can be read against the one it would replace; empty without a warm start or
    validation screens."""
    warm = _warm_start(results)
    loss = warm.history[0].get("validation_loss") if warm is not None else None
    return {"live_validation_loss": loss} if loss is not None else {}


def choose_candidate(
    results: list[TrainResult], data: TrainingData
) -> tuple[TrainResult, dict[str, Any] | None]:
    """The candidate to keep, and the fresh-versus-warm comparison when there was a warm start."""
    scored = [r for r in results if r.metrics.get("validation_loss") is not None]
    fresh = [r for r in scored if r.metrics["start"] == "pca"]
    warm = _warm_start(results)
    if warm is None:
        lowest = min(scored, key=lambda r: r.metrics["validation_loss"]) if scored else results[0]
        return lowest, None
    if not fresh:  # no validation screens: nothing can show a fresh head clearly better
        return warm, None
    best_fresh = min(fresh, key=lambda r: r.metrics["validation_loss"])
    comparison = fresh_edge_over_warm(best_fresh, warm, data)
    return (best_fresh if comparison["clearly_better"] else warm), comparison


def fresh_edge_over_warm(
    fresh: TrainResult, warm: TrainResult, data: TrainingData
) -> dict[str, Any]:
    """How much lower the fresh head's validation screen loss is than the warm start's: the mean
    over anchors (screens of one anchor are not independent) of the paired difference, its
    standard error, and whether it exceeds FRESH_OVER_WARM_Z of them."""
    anchors, fresh_losses = validation_screen_losses(fresh, data)
    _, warm_losses = validation_screen_losses(warm, data)
    per_anchor = per_anchor_means(warm_losses - fresh_losses, anchors)
    edge = float(per_anchor.mean())
    error = (
        float(per_anchor.std(ddof=1) / math.sqrt(len(per_anchor)))
        if len(per_anchor) > 1
        else math.inf
    )
    return {
        "loss_edge": edge,
        "standard_error": error if math.isfinite(error) else None,
        "anchors": len(per_anchor),
        "clearly_better": bool(edge > FRESH_OVER_WARM_Z * error),
    }
