"""Comparing spaces on the database's events: the base space, stored heads, a freshly trained one.

Used by the gate step of a training run (heaters_db/learning/jobs.py) and by the quality report
(heaters_db/learning/report.py). Everything here works on arrays already read from the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from heaters_db.heads.metrics import (
    EventMetrics,
    Space,
    base_space,
    evaluate_events,
    even_rows,
    head_space,
    knn_jaccard,
)
from heaters_db.heads.module import ProjectionHead
from heaters_db.heads.train import TrainingData

NEIGHBOURS = 10
# Clips compared for kNN Jaccard: an exact k-NN over this many rows in every space.
JACCARD_SAMPLE = 2000


def space_of(head: ProjectionHead | None) -> Space:
    """The head's space, or the base space for None."""
    return base_space if head is None else head_space(head)


def restrict_events(metrics: EventMetrics, event_ids: np.ndarray | Sequence[int]) -> EventMetrics:
    """The per-event metrics of only these events (both sides of a gate must cover the same)."""
    return metrics.take(np.isin(metrics.event_ids, np.asarray(event_ids, dtype=np.int64)))


def common_events(*metrics: EventMetrics) -> tuple[EventMetrics, ...]:
    """Each restricted to the events they all share."""
    shared = metrics[0].event_ids
    for other in metrics[1:]:
        shared = np.intersect1d(shared, other.event_ids)
    return tuple(restrict_events(m, shared) for m in metrics)


def holdout_metrics(space: Space, data: TrainingData) -> EventMetrics:
    """Per-event holdout metrics of a space on a TrainingData."""
    return evaluate_events(
        space,
        data.base_vectors,
        data.screens,
        data.triplets,
        split="holdout",
        library_size=data.library_size,
    )


def summarise(metrics: EventMetrics) -> dict[str, Any]:
    """Means over the events, JSON-ready, with MRR under its usual name too."""
    summary = metrics.summary()
    summary["mrr"] = summary["reciprocal_rank"]
    return summary


def sample_rows(count: int) -> np.ndarray:
    """Evenly spread row indices (deterministic) for neighbour comparisons."""
    return even_rows(count, JACCARD_SAMPLE)


def neighbour_overlap(
    first: Space, second: Space, vectors: np.ndarray, k: int = NEIGHBOURS
) -> float | None:
    """Mean kNN Jaccard@k between two spaces over the same base vectors (None: too few rows)."""
    if len(vectors) <= k:
        return None
    return float(knn_jaccard(first(vectors), second(vectors), k).mean())
