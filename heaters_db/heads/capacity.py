"""Head size chosen by the validation fold: small heads for few events or narrow bases.

With ``head_output_dim`` = 0 (auto), a training run fits a few shapes -- output widths up to the
base's own width, hidden = 2 x output, two weight decays -- and keeps the one with the lowest
validation screen loss (the validation fold, never the gate's holdout). How many shapes grows
with the events: a few dozen events only try the smallest ones, so a 64-d base with 40 events
does not get a million-parameter head. Without validation screens the smallest shape is used.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from heaters_db.heads.train import TrainConfig, TrainingData, TrainResult, train_head

log = logging.getLogger(__name__)

OUTPUT_WIDTHS = (16, 32, 64, 128, 256)
WEIGHT_DECAYS = (1e-4, 1e-2)


def candidate_shapes(input_dim: int, train_screens: int) -> list[tuple[int, int, float]]:
    """(output_dim, hidden_dim, weight_decay) to try, smallest first: widths no wider than the
    base and about one width per doubling of the training screens beyond 25."""
    widths = [w for w in OUTPUT_WIDTHS if w <= max(input_dim, OUTPUT_WIDTHS[0])]
    allowed = 1
    screens = max(train_screens, 1)
    while screens >= 50 and allowed < len(widths):
        allowed += 1
        screens //= 2
    return [(w, 2 * w, decay) for w in widths[:allowed] for decay in WEIGHT_DECAYS]


def train_with_capacity_search(data: TrainingData, config: TrainConfig) -> TrainResult:
    """Train every candidate shape, return the best by validation loss; the comparison is kept in
    ``metrics["capacity"]`` (every shape's validation loss and the one chosen)."""
    train_screens = sum(1 for s in data.screens if s.split == "train")
    has_validation = any(s.split == "validation" for s in data.screens)
    shapes = candidate_shapes(data.base_vectors.shape[1], train_screens)
    if not has_validation:
        shapes = shapes[:1]
    tried: list[dict[str, Any]] = []
    best: TrainResult | None = None
    for output_dim, hidden_dim, decay in shapes:
        shaped = replace(config, output_dim=output_dim, hidden_dim=hidden_dim, weight_decay=decay)
        result = train_head(data, shaped)
        loss = result.metrics.get("validation_loss")
        tried.append(
            {
                "output_dim": output_dim,
                "hidden_dim": hidden_dim,
                "weight_decay": decay,
                "parameters": result.metrics["parameters"],
                "validation_loss": loss,
                "best_epoch": result.best_epoch,
            }
        )
        if best is None or (loss is not None and loss < best.metrics["validation_loss"]):
            best = result
    assert best is not None
    chosen = best.metrics["config"]
    best.metrics["capacity"] = {
        "rule": "lowest validation screen loss among the shapes tried",
        "tried": tried,
        "chosen": {k: chosen[k] for k in ("output_dim", "hidden_dim", "weight_decay")},
    }
    log.info(
        "head capacity chosen",
        extra={"action": "head_capacity", **best.metrics["capacity"]["chosen"]},
    )
    return best
