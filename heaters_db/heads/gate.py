"""The held-out gate: a new head goes live only if it beats the current space beyond noise.

Rule: over the same holdout events, the paired per-event differences (new - baseline) of triplet
accuracy and of screen top-1 are bootstrapped (percentile bootstrap, ``n_boot`` resamples of the
events with replacement). The head passes when the lower bound of the two-sided (1 - alpha)
interval is above zero for both (by default). The baseline is the active head of the mode, or the
base space for the first head. Requiring both is deliberate: a head fitted to random answers
gains on neither, and a head that only reorders triplets while choosing the wrong clip first on
the screens would make the sorting page worse; the cost is that a real improvement needs enough
holdout events to show up, and until then the old space simply stays live. With fewer than
``min_events`` holdout events carrying a metric the gate refuses outright.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from heaters_db.errors import HeatersError
from heaters_db.heads.metrics import EventMetrics

log = logging.getLogger(__name__)

MIN_EVENTS = 8
_BOOTSTRAP_CHUNK = 250  # resamples per chunk: bounds memory at chunk x events


class GateInputError(HeatersError):
    """The gate was given per-event metrics for two different sets of holdout events."""


@dataclass
class GateDecision:
    """Whether the head may go live, why, and the numbers (JSON-ready for projection_heads.metrics)."""

    passed: bool
    reason: str
    metrics: dict[str, Any] = field(default_factory=dict)


def paired_bootstrap_interval(
    differences: np.ndarray, n_boot: int, alpha: float, rng: np.random.Generator
) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) interval of the mean of paired differences."""
    n = len(differences)
    means = np.empty(n_boot)
    for start in range(0, n_boot, _BOOTSTRAP_CHUNK):
        count = min(_BOOTSTRAP_CHUNK, n_boot - start)
        means[start : start + count] = differences[rng.integers(0, n, size=(count, n))].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _compare(
    new: np.ndarray, baseline: np.ndarray, n_boot: int, alpha: float, seed: int
) -> dict[str, Any]:
    defined = ~np.isnan(new) & ~np.isnan(baseline)
    differences = new[defined] - baseline[defined]
    out: dict[str, Any] = {
        "events": int(defined.sum()),
        "new": _number(new[defined].mean()) if defined.any() else None,
        "baseline": _number(baseline[defined].mean()) if defined.any() else None,
        "difference": _number(differences.mean()) if defined.any() else None,
        "interval": None,
    }
    if defined.any():
        low, high = paired_bootstrap_interval(
            differences, n_boot, alpha, np.random.default_rng(seed)
        )
        out["interval"] = [low, high]
    return out


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _describe(name: str, result: dict[str, Any]) -> str:
    if result["interval"] is None:
        return f"{name}: no events"
    low, high = result["interval"]
    return f"{name} {result['difference']:+.3f} [{low:+.3f}, {high:+.3f}]"


def gate(
    new_per_event: EventMetrics,
    baseline_per_event: EventMetrics,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    min_events: int = MIN_EVENTS,
    require_top1_improvement: bool = True,
) -> GateDecision:
    """Decide whether the new space beats the baseline on the same holdout events.

    With ``require_top1_improvement`` False, screen top-1 need only not be significantly worse
    (upper interval bound >= 0) while triplet accuracy must still improve significantly.
    """
    new_ids, base_ids = (
        np.asarray(new_per_event.event_ids),
        np.asarray(baseline_per_event.event_ids),
    )
    if not np.array_equal(np.sort(new_ids), np.sort(base_ids)):
        raise GateInputError("the new and baseline metrics cover different holdout events")
    order_new, order_base = np.argsort(new_ids), np.argsort(base_ids)
    results = {
        name: _compare(
            np.asarray(getattr(new_per_event, name), dtype=np.float64)[order_new],
            np.asarray(getattr(baseline_per_event, name), dtype=np.float64)[order_base],
            n_boot,
            alpha,
            seed + offset,
        )
        for offset, name in enumerate(("triplet_accuracy", "screen_top1", "reciprocal_rank"))
    }
    triplet, top1 = results["triplet_accuracy"], results["screen_top1"]
    described = f"{_describe('triplet accuracy', triplet)}, {_describe('screen top-1', top1)}"

    if triplet["events"] < min_events or top1["events"] < min_events:
        passed = False
        reason = (
            f"too few holdout events to judge: {triplet['events']} with triplets and "
            f"{top1['events']} with a selection, at least {min_events} of each needed"
        )
    elif triplet["interval"][0] <= 0:
        passed = False
        reason = f"triplet accuracy gain is within holdout noise ({described})"
    elif require_top1_improvement and top1["interval"][0] <= 0:
        passed = False
        reason = f"screen top-1 gain is within holdout noise ({described})"
    elif not require_top1_improvement and top1["interval"][1] < 0:
        passed = False
        reason = f"screen top-1 is significantly worse ({described})"
    else:
        passed = True
        reason = f"beats the baseline beyond holdout noise ({described})"

    confidence = round(100 * (1 - alpha), 6)
    metrics = {
        "passed": passed,
        "reason": reason,
        "rule": (
            f"paired bootstrap over holdout events, {confidence}% interval lower bound > 0 for "
            "triplet accuracy and "
            + ("screen top-1" if require_top1_improvement else "upper bound >= 0 for screen top-1")
        ),
        "events": len(new_ids),
        "n_boot": n_boot,
        "alpha": alpha,
        "seed": seed,
        "min_events": min_events,
        **results,
    }
    log.info(
        "projection head gate",
        extra={"action": "head_gate", "passed": passed, "reason": reason, "events": len(new_ids)},
    )
    return GateDecision(passed=passed, reason=reason, metrics=metrics)
