"""Training a projection head from sorting screens (InfoNCE over what was shown).

The database layer reads the views ``sorting_screens`` / ``sorting_triplets`` and the base
embeddings, and hands them over as a ``TrainingData`` (rows of one base-vector array); nothing here
touches the database.

Loss, per screen (anchor a, shown candidates c, temperature T)::

    logit_c    = cos(f(a), f(c)) / T + log(weight_c)     weight: selected 1, rejected 1 (hard),
                                                         other shown 0.3 (implicit)
    logit_none = tau / T                                 tau: a learned cosine threshold
    loss       = cross-entropy(softmax([logit_c..., logit_none]), target)

with the target the selected candidate, or the "none" slot when the sorter said none was similar.
Adding log(weight) scales a negative's share of the softmax, hence how hard it is pushed away.
The none slot models the sorter's answer as "pick the most similar, if it beats a threshold", so a
"none similar" screen still pushes every shown candidate below tau, and a screen with a selection
also pulls the selected one above it. An optional triplet-margin term (``triplet_weight``, 0 by
default) exists for triplets that do not come from screens: the screen softmax already contains
every (anchor, selected, other shown) triplet, so adding the same triplets again would only
double-count them.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from heaters_db.errors import ConfigurationError
from heaters_db.heads.metrics import (
    SPLITS,
    Screen,
    Triplets,
    evaluate_events,
    head_space,
)
from heaters_db.heads.module import ProjectionHead, default_hidden_dim
from heaters_db.heads.training_data import TrainingData as TrainingData
from heaters_db.heads.training_data import TrainingDataError as TrainingDataError

log = logging.getLogger(__name__)


MIN_VALIDATION_SCREENS = 20
# Below MIN_VALIDATION_SCREENS a warm start's number of epochs is chosen by cross-validation over
# the train screens (folds grouped by anchor), once the folds hold a few screens and one anchor
# each at least; with fewer still, the train loss decides. Three of the held-out check's four
# drops (benchmarks/README.md) were warm starts that ran every epoch on the train loss beside a
# fold of 8-16 validation screens.
CROSS_VALIDATION_FOLDS = 5
MIN_CROSS_VALIDATION_SCREENS = 4 * CROSS_VALIDATION_FOLDS


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters; ``hidden_dim`` None means 8 x output_dim (2048 for 256)."""

    output_dim: int = 256
    hidden_dim: int | None = None
    temperature: float = 0.1
    hard_negative_weight: float = 1.0
    implicit_negative_weight: float = 0.3
    learn_none: bool = True
    triplet_weight: float = 0.0
    triplet_margin: float = 0.1
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    # Pull towards the starting weights (L2-SP, Li et al. 2018): the live head for a warm start
    # (the PCA projection for a fresh one). heads/capacity.py offers warm starts with and
    # without it, and the validation fold chooses.
    start_decay: float = 0.0
    batch_size: int = 64
    # The database's head_max_epochs default (revision 0021): 200 let warm starts drift and
    # fixed-shape heads lag on the learning-curve matrix (README, "SQL API").
    max_epochs: int = 60
    patience: int = 20
    min_delta: float = 1e-4
    seed: int = 0
    device: str = "cpu"
    pca_max_samples: int = 50_000

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ConfigurationError("temperature must be positive")
        if self.hard_negative_weight <= 0 or self.implicit_negative_weight < 0:
            raise ConfigurationError(
                "negative weights must be positive (an implicit weight of 0 ignores them)"
            )
        if self.batch_size < 1 or self.max_epochs < 0 or self.patience < 1:
            raise ConfigurationError("batch_size and patience must be >= 1, max_epochs >= 0")
        if self.start_decay < 0:
            raise ConfigurationError("start_decay must be >= 0")


@dataclass
class TrainResult:
    """The best head (by validation loss), the per-epoch history and summary metrics."""

    head: ProjectionHead
    history: list[dict[str, Any]]
    best_epoch: int
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class _ScreenBatch:
    """Screens as padded arrays: candidate rows, their log-weights (-inf = padding), targets."""

    anchors: np.ndarray  # (S,)
    candidates: np.ndarray  # (S, C)
    log_weights: np.ndarray  # (S, C)
    targets: np.ndarray  # (S,) column of the selected candidate, C for the none slot

    def __len__(self) -> int:
        return len(self.anchors)

    def take(self, index: np.ndarray) -> _ScreenBatch:
        return _ScreenBatch(
            self.anchors[index],
            self.candidates[index],
            self.log_weights[index],
            self.targets[index],
        )


def _pack_screens(screens: Sequence[Screen], config: TrainConfig) -> _ScreenBatch:
    usable = [
        s for s in screens if s.shown_rows() and (config.learn_none or s.selected_row is not None)
    ]
    width = max((len(s.shown_rows()) for s in usable), default=1)
    anchors = np.zeros(len(usable), dtype=np.int64)
    candidates = np.zeros((len(usable), width), dtype=np.int64)
    log_weights = np.full((len(usable), width), -np.inf, dtype=np.float32)
    targets = np.full(len(usable), width, dtype=np.int64)
    hard, implicit = math.log(config.hard_negative_weight), _log(config.implicit_negative_weight)
    for i, screen in enumerate(usable):
        shown = screen.shown_rows()
        rejected = set(screen.rejected_rows)
        anchors[i] = screen.anchor_row
        candidates[i, : len(shown)] = shown
        candidates[i, len(shown) :] = screen.anchor_row  # padding, masked by -inf
        for j, row in enumerate(shown):
            if row == screen.selected_row:
                log_weights[i, j] = 0.0
                targets[i] = j
            else:
                log_weights[i, j] = hard if row in rejected else implicit
    return _ScreenBatch(anchors, candidates, log_weights, targets)


def _log(weight: float) -> float:
    return math.log(weight) if weight > 0 else -math.inf


class _Objective(torch.nn.Module):
    """The head plus the learned "none similar" threshold (a cosine), for the screen softmax."""

    def __init__(self, head: ProjectionHead, none_threshold: float) -> None:
        super().__init__()
        self.head = head
        self.none_threshold = torch.nn.Parameter(torch.tensor(float(none_threshold)))

    def embed(self, base: np.ndarray, rows: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        unique = np.unique(rows)
        device = self.none_threshold.device
        vectors = torch.from_numpy(base[unique]).to(device)
        return self.head(vectors), unique

    def cosines(self, base: np.ndarray, batch: _ScreenBatch) -> torch.Tensor:
        """(S, C) cosine between each screen's anchor and its candidates in head space."""
        rows = np.concatenate([batch.anchors, batch.candidates.ravel()])
        embedded, unique = self.embed(base, rows)
        device = embedded.device
        anchors = embedded[torch.from_numpy(np.searchsorted(unique, batch.anchors)).to(device)]
        candidates = embedded[
            torch.from_numpy(np.searchsorted(unique, batch.candidates)).to(device)
        ]
        return torch.einsum("sk,sck->sc", anchors, candidates)

    def logits(self, base: np.ndarray, batch: _ScreenBatch, config: TrainConfig) -> torch.Tensor:
        cosine = self.cosines(base, batch)
        logits = cosine / config.temperature + torch.from_numpy(batch.log_weights).to(cosine.device)
        if config.learn_none:
            none = (self.none_threshold / config.temperature).expand(len(batch), 1)
            logits = torch.cat([logits, none], dim=1)
        return logits

    def screen_loss(
        self, base: np.ndarray, batch: _ScreenBatch, config: TrainConfig
    ) -> torch.Tensor:
        logits = self.logits(base, batch, config)
        return F.cross_entropy(logits, torch.from_numpy(batch.targets).to(logits.device))

    def triplet_loss(
        self, base: np.ndarray, triplets: Triplets, index: np.ndarray, margin: float
    ) -> torch.Tensor:
        a, p, n = triplets.anchor[index], triplets.positive[index], triplets.negative[index]
        embedded, unique = self.embed(base, np.concatenate([a, p, n]))
        device = embedded.device

        def pick(rows: np.ndarray) -> torch.Tensor:
            return embedded[torch.from_numpy(np.searchsorted(unique, rows)).to(device)]

        ea, ep, en = pick(a), pick(p), pick(n)
        gap = (ea * ep).sum(-1) - (ea * en).sum(-1)
        weight = torch.as_tensor(triplets.weight[index], dtype=torch.float32, device=device)
        return (weight * F.relu(margin - gap)).sum() / weight.sum().clamp_min(1e-12)


def _initial_none_threshold(objective: _Objective, base: np.ndarray, batch: _ScreenBatch) -> float:
    """Halfway between the mean cosine of selected and of other shown candidates at init."""
    if len(batch) == 0:
        return 0.0
    with torch.no_grad():
        cosine = objective.cosines(base, batch).cpu().numpy()
    valid = np.isfinite(batch.log_weights)
    selected = np.zeros_like(valid)
    has = batch.targets < batch.candidates.shape[1]
    selected[np.flatnonzero(has), batch.targets[has]] = True
    others = valid & ~selected
    if selected.any() and others.any():
        return float((cosine[selected].mean() + cosine[others].mean()) / 2)
    return float(np.median(cosine[valid])) if valid.any() else 0.0


def _screen_losses(
    objective: _Objective, base: np.ndarray, batch: _ScreenBatch, config: TrainConfig
) -> np.ndarray:
    """Each screen's loss, in chunks of batch_size, without gradients."""
    losses = np.empty(len(batch), dtype=np.float64)
    with torch.no_grad():
        for start in range(0, len(batch), config.batch_size):
            index = np.arange(start, min(start + config.batch_size, len(batch)))
            part = batch.take(index)
            logits = objective.logits(base, part, config)
            targets = torch.from_numpy(part.targets).to(logits.device)
            losses[index] = F.cross_entropy(logits, targets, reduction="none").cpu().numpy()
    return losses


def _evaluate_loss(
    objective: _Objective, base: np.ndarray, batch: _ScreenBatch, config: TrainConfig
) -> float | None:
    """Mean screen loss over a batch; None without screens (JSON null, not NaN, for jsonb)."""
    if len(batch) == 0:
        return None
    return float(_screen_losses(objective, base, batch, config).mean())


def train_head(
    data: TrainingData,
    config: TrainConfig | None = None,
    start_from: ProjectionHead | None = None,
) -> TrainResult:
    """Fit a head to the train split, stopping early on the validation split's screen loss.

    The holdout split (what the gate judges) is never read here: model selection on the events
    that then judge the head would make the gate optimistic.

    The head starts as the PCA projection of all base vectors (subsampled to pca_max_samples),
    or, given ``start_from`` (the live head, for a warm start), as a copy of that head; its shape
    then overrides the config's. The best epoch's weights (epoch 0 = the starting head) are
    restored, so a warm start stopped on the validation loss never ends worse than the live head
    there. Same data and seed give identical weights on the same device and thread count.
    With fewer than MIN_VALIDATION_SCREENS validation screens (none included), a warm start's
    number of epochs comes from CROSS_VALIDATION_FOLDS folds of the train screens grouped by
    anchor (``_cross_validated_epochs``; the mean held-out loss per epoch is kept in
    ``metrics["cross_validation_loss"]``), and the head is then fitted on every train screen for
    exactly that many. A fresh head there, or a warm start on fewer than
    MIN_CROSS_VALIDATION_SCREENS train screens or CROSS_VALIDATION_FOLDS anchors, trains on the
    train loss up to max_epochs or the patience limit on it.
    """
    config = config or TrainConfig()
    if start_from is not None:
        if start_from.input_dim != data.base_vectors.shape[1]:
            raise ConfigurationError(
                f"cannot warm-start from a head for {start_from.input_dim}-d vectors on "
                f"{data.base_vectors.shape[1]}-d base vectors"
            )
        config = replace(config, output_dim=start_from.output_dim, hidden_dim=start_from.hidden_dim)
    base = data.base_vectors
    train_screens = [s for s in data.screens if s.split == "train"]
    validation_screens = [s for s in data.screens if s.split == "validation"]
    train_batch = _pack_screens(train_screens, config)
    validation_batch = _pack_screens(validation_screens, config)
    if len(train_batch) == 0:
        held = {split: sum(s.split == split for s in data.screens) for split in SPLITS}
        raise TrainingDataError(
            f"no usable training screens: {held['train']} in the train split (each needs shown "
            f"candidates{'' if config.learn_none else ' and a selection'}), "
            f"{held['validation']} validation and {held['holdout']} held out for the gate"
        )
    triplets = data.triplets.select("train") if data.triplets is not None else None
    if not (config.triplet_weight > 0 and triplets is not None and len(triplets) > 0):
        triplets = None  # the screen loss alone

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        objective = _initial_objective(base, train_batch, config, rng, start_from)
        optimizer = _optimizer(objective, config)
        # A handful of validation screens cannot pick an epoch (the untrained PCA head wins by
        # noise): below MIN_VALIDATION_SCREENS the train screens' cross-validation picks a warm
        # start's (its epoch 0 being the live head), and the train loss a fresh head's (the
        # gate protects the live space; cross-validating fresh heads too was measured to cost
        # served recall, benchmarks/README.md).
        monitor = (
            "validation_loss" if len(validation_batch) >= MIN_VALIDATION_SCREENS else "train_loss"
        )
        cv_epochs: int | None = None
        cv_curve: list[float] | None = None
        if (
            monitor == "train_loss"
            and start_from is not None
            and len(train_batch) >= MIN_CROSS_VALIDATION_SCREENS
            and len(np.unique(train_batch.anchors)) >= CROSS_VALIDATION_FOLDS
        ):
            cv_epochs, cv_curve = _cross_validated_epochs(
                objective, base, train_batch, triplets, config
            )
            monitor = "cross_validation"
        history = [_epoch_record(0, objective, base, train_batch, validation_batch, data, config)]
        # With cross-validation the folds chose the epoch and the run goes exactly that far.
        best_value = history[0][monitor] if cv_epochs is None else math.nan
        best_epoch = 0
        best_state = copy.deepcopy(objective.state_dict())
        start_weights = _start_weights(objective) if config.start_decay > 0 else None
        last_epoch = config.max_epochs if cv_epochs is None else cv_epochs
        for epoch in range(1, last_epoch + 1):
            running = _train_epoch(
                objective, optimizer, base, train_batch, triplets, rng, config, start_weights
            )
            # When the validation loss or the folds decide, the epoch's running loss is enough
            # for the record; when the train loss picks the best epoch, it is measured exactly
            # after the epoch.
            running_loss = running if monitor != "train_loss" else None
            record = _epoch_record(
                epoch, objective, base, train_batch, validation_batch, data, config, running_loss
            )
            history.append(record)
            if cv_epochs is not None:
                if epoch == cv_epochs:
                    best_epoch, best_state = epoch, copy.deepcopy(objective.state_dict())
                continue
            if record[monitor] < best_value - config.min_delta:
                best_value, best_epoch = record[monitor], epoch
                best_state = copy.deepcopy(objective.state_dict())
            elif epoch - best_epoch >= config.patience:
                break
        objective.load_state_dict(best_state)

    head = objective.head.cpu().eval()
    metrics = {
        "best_epoch": best_epoch,
        "epochs_run": len(history) - 1,
        "monitor": monitor,
        "start": "pca" if start_from is None else "warm",
        "train_screens": len(train_batch),
        "validation_screens": len(validation_batch),
        **({"cross_validation_loss": cv_curve} if cv_curve is not None else {}),
        "none_threshold": float(objective.none_threshold.item()),
        "parameters": head.parameter_count(),
        "config": asdict(config),
        **{k: v for k, v in history[best_epoch].items() if k != "epoch"},
    }
    log.info(
        "trained projection head",
        extra={
            "action": "head_trained",
            "best_epoch": best_epoch,
            "epochs_run": metrics["epochs_run"],
            "validation_loss": metrics["validation_loss"],
            "train_screens": len(train_batch),
        },
    )
    return TrainResult(head=head, history=history, best_epoch=best_epoch, metrics=metrics)


def _cross_validated_epochs(
    start: _Objective,
    base: np.ndarray,
    train_batch: _ScreenBatch,
    triplets: Triplets | None,
    config: TrainConfig,
) -> tuple[int, list[float]]:
    """How many epochs the train screens support, by CROSS_VALIDATION_FOLDS folds grouped by
    anchor (screens of one anchor are not independent), and the mean held-out screen loss per
    epoch. Each fold trains from ``start``, the final fit's untrained start (a warm start's epoch
    0 is the live head itself), so every train screen gets a held-out loss after each epoch
    count; ``epochs_tied_with_lowest`` turns those into the count."""
    rng = np.random.default_rng(config.seed + 1)  # its own stream: the final fit's is untouched
    anchors = np.unique(train_batch.anchors)
    fold_of_anchor = rng.permutation(len(anchors)) % CROSS_VALIDATION_FOLDS
    fold = fold_of_anchor[np.searchsorted(anchors, train_batch.anchors)]
    losses = np.zeros((len(train_batch), config.max_epochs + 1))
    for k in range(CROSS_VALIDATION_FOLDS):
        fit_index, held_index = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        fit, held = train_batch.take(fit_index), train_batch.take(held_index)
        fit_triplets = None
        if triplets is not None:  # the held fold's anchors are out of the triplet term too
            kept = triplets.take(~np.isin(triplets.anchor, anchors[fold_of_anchor == k]))
            fit_triplets = kept if len(kept) else None
        objective = copy.deepcopy(start)
        with torch.no_grad():  # the threshold's start from this fold's screens alone
            objective.none_threshold.fill_(_initial_none_threshold(objective, base, fit))
        optimizer = _optimizer(objective, config)
        start_weights = _start_weights(objective) if config.start_decay > 0 else None
        losses[held_index, 0] = _screen_losses(objective, base, held, config)
        for epoch in range(1, config.max_epochs + 1):
            _train_epoch(objective, optimizer, base, fit, fit_triplets, rng, config, start_weights)
            objective.eval()
            losses[held_index, epoch] = _screen_losses(objective, base, held, config)
    best = epochs_tied_with_lowest(losses, train_batch.anchors, config.min_delta)
    return best, [float(v) for v in losses.mean(axis=0)]


def epochs_tied_with_lowest(losses: np.ndarray, anchors: np.ndarray, min_delta: float) -> int:
    """The most epochs whose held-out loss is within one standard error of the lowest.

    ``losses`` is (screens, epochs + 1): each screen's held-out loss after each epoch count.
    The lowest is the epoch with the lowest mean; another epoch's excess over it is paired per
    anchor (its screens' mean), and it is tied when the mean excess is at most one standard
    error of it over the anchors (or min_delta). Ties go to more learning, as the gate's go to
    the newer head: choosing the lowest alone kept warm starts at the live head (epoch 0)
    whenever a noisy sorter's folds showed no clear gain, and served recall stalled
    (benchmarks/README.md).
    """
    curve = losses.mean(axis=0)
    lowest = int(curve.argmin())
    per_anchor = per_anchor_means(losses, anchors)
    excess = per_anchor - per_anchor[:, [lowest]]
    count = len(per_anchor)
    error = excess.std(axis=0, ddof=1) / math.sqrt(count) if count > 1 else 0.0
    return int(np.flatnonzero(excess.mean(axis=0) <= np.maximum(error, min_delta)).max())


def per_anchor_means(values: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Each anchor's mean of ``values`` (one row per screen), in sorted anchor order: screens
    of one anchor are not independent, so paired comparisons average them before the error."""
    _, index = np.unique(anchors, return_inverse=True)
    counts = np.bincount(index).reshape((-1,) + (1,) * (values.ndim - 1))
    sums = np.zeros((len(counts),) + values.shape[1:])
    np.add.at(sums, index, values)
    return sums / counts


def validation_screen_losses(
    result: TrainResult, data: TrainingData
) -> tuple[np.ndarray, np.ndarray]:
    """(anchor row, screen loss) of every usable validation screen, for a trained head with the
    none threshold it learned: what a paired comparison of two candidates needs."""
    config = TrainConfig(**result.metrics["config"])
    batch = _pack_screens([s for s in data.screens if s.split == "validation"], config)
    objective = _Objective(copy.deepcopy(result.head), result.metrics["none_threshold"])
    objective = objective.to(config.device).eval()
    return batch.anchors, _screen_losses(objective, data.base_vectors, batch, config)


def _initial_objective(
    base: np.ndarray,
    train_batch: _ScreenBatch,
    config: TrainConfig,
    rng: np.random.Generator,
    start_from: ProjectionHead | None = None,
) -> _Objective:
    """The starting head (a copy of ``start_from``, else the PCA of the base vectors,
    subsampled to pca_max_samples) and its none threshold, fitted to the train screens."""
    if start_from is not None:
        head = copy.deepcopy(start_from).float().train()
    else:
        hidden = config.hidden_dim or default_hidden_dim(config.output_dim)
        head = ProjectionHead(base.shape[1], config.output_dim, hidden)
        sample = base
        if len(base) > config.pca_max_samples:
            sample = base[np.sort(rng.choice(len(base), config.pca_max_samples, replace=False))]
        head.pca_init(sample)
    objective = _Objective(head, 0.0).to(config.device)
    with torch.no_grad():
        objective.none_threshold.fill_(_initial_none_threshold(objective, base, train_batch))
    return objective


def _is_weight_matrix(name: str) -> bool:
    """The parameters both decays act on: weight matrices, not biases or the none threshold."""
    return name.endswith("weight")


def _start_weights(objective: _Objective) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The weight matrices and a copy of their starting values, for start_decay."""
    return [
        (param, param.detach().clone())
        for name, param in objective.named_parameters()
        if _is_weight_matrix(name)
    ]


def _optimizer(objective: _Objective, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay on the weight matrices only (not biases or the threshold)."""
    decay = [p for n, p in objective.named_parameters() if _is_weight_matrix(n)]
    no_decay = [p for n, p in objective.named_parameters() if not _is_weight_matrix(n)]
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
    )


def _train_epoch(
    objective: _Objective,
    optimizer: torch.optim.Optimizer,
    base: np.ndarray,
    train_batch: _ScreenBatch,
    triplets: Triplets | None,
    rng: np.random.Generator,
    config: TrainConfig,
    start_weights: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> float:
    """One pass over the train screens in a random order; returns the mean screen loss. With
    ``start_weights`` (parameter, its starting value), each step also pulls the weights back
    towards the start by learning_rate x start_decay of the distance (decoupled, like AdamW's
    decay towards zero), at most all of it: a larger pull would overshoot the start."""
    objective.train()
    pull = min(1.0, config.learning_rate * config.start_decay)
    order = rng.permutation(len(train_batch))
    running = 0.0
    for start in range(0, len(order), config.batch_size):
        index = order[start : start + config.batch_size]
        loss = screen_loss = objective.screen_loss(base, train_batch.take(index), config)
        running += screen_loss.item() * len(index)
        if triplets is not None:
            sampled = rng.integers(0, len(triplets), size=len(index) * 4)
            loss = loss + config.triplet_weight * objective.triplet_loss(
                base, triplets, sampled, config.triplet_margin
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if start_weights:
            with torch.no_grad():
                for param, initial in start_weights:
                    param.sub_(pull * (param - initial))
    return running / len(order)


def _epoch_record(
    epoch: int,
    objective: _Objective,
    base: np.ndarray,
    train_batch: _ScreenBatch,
    validation_batch: _ScreenBatch,
    data: TrainingData,
    config: TrainConfig,
    train_loss: float | None = None,
) -> dict[str, Any]:
    objective.eval()
    if train_loss is None:
        train_loss = _evaluate_loss(objective, base, train_batch, config)
    record: dict[str, Any] = {
        "epoch": epoch,
        "train_loss": train_loss,
        "validation_loss": _evaluate_loss(objective, base, validation_batch, config),
    }
    if len(validation_batch):
        summary = evaluate_events(
            head_space(objective.head), base, data.screens, split="validation"
        ).summary()
        record["validation_top1"] = summary["screen_top1"]
        record["validation_triplet_accuracy"] = summary["triplet_accuracy"]
    return record
