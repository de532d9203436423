"""What the sorters' answers say about a space: per-event metrics, and neighbour-set metrics.

A *space* is an embedding function from base vectors (rows of an (n, d) array) to unit vectors:
``base_space`` (the L2-normalised base vectors themselves) or ``head_space(head)``. The event
metrics are returned per sorting event, so gate.py can bootstrap over the same holdout events for
two spaces. Screens and triplets refer to clips by row index into the base-vector array.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from heaters_db.heads.module import NORM_EPSILON, ProjectionHead

Space = Callable[[np.ndarray], np.ndarray]
"""(m, d) base vectors -> (m, k) unit vectors."""

SPLITS = ("train", "validation", "holdout")
"""train: fitted; validation: model selection (early stopping, head size); holdout: the gate and
the report. Fixed per anchor clip at its first event (sql/functions/assign_anchor_split.sql)."""
METRIC_NAMES = (
    "top_rank_score",
    "judged_rank_score",
    "library_percentile",
    "triplet_accuracy",
    "screen_top1",
    "reciprocal_rank",
)
LIBRARY_SAMPLE = 512
SERVED_DEPTH = 10
"""similar_clips' default k: the depth top_rank_score weighs the chosen clip's library rank by."""


@dataclass(frozen=True)
class Screen:
    """One sorting event: an anchor, what was shown next to it, and the answer.

    ``selected_row`` None means the sorter said none of the candidates was similar.
    ``rejected_rows`` are explicit hard negatives; the other shown candidates are implicit ones.
    ``evaluation``: an evaluation screen (uniform anchor, candidates drawn without the live head).
    """

    event_id: int
    anchor_row: int
    candidate_rows: tuple[int, ...]
    selected_row: int | None
    rejected_rows: tuple[int, ...] = ()
    split: str = "train"
    evaluation: bool = False

    def shown_rows(self) -> tuple[int, ...]:
        """Every candidate shown (candidates, then selected and rejected if missing), deduplicated,
        without the anchor."""
        extra = (() if self.selected_row is None else (self.selected_row,)) + self.rejected_rows
        seen: dict[int, None] = {}
        for row in (*self.candidate_rows, *extra):
            if row != self.anchor_row:
                seen.setdefault(int(row), None)
        return tuple(seen)


@dataclass(frozen=True)
class Triplets:
    """Parallel arrays: the anchor was judged closer to the positive than to the negative."""

    event_id: np.ndarray
    anchor: np.ndarray
    positive: np.ndarray
    negative: np.ndarray
    weight: np.ndarray
    split: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))

    def __post_init__(self) -> None:
        n = len(self.anchor)
        for name in ("event_id", "anchor", "positive", "negative", "weight"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"Triplets.{name} has {len(getattr(self, name))} rows, expected {n}"
                )
        if len(self.split) not in (0, n):
            raise ValueError(f"Triplets.split has {len(self.split)} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.anchor)

    @classmethod
    def from_columns(cls, columns: Sequence[Sequence[Any]]) -> Triplets:
        """From six columns: event id, anchor, positive and negative rows, weight, split."""
        event_id, anchor, positive, negative, weight, split = columns
        rows = [np.asarray(c, dtype=np.int64) for c in (event_id, anchor, positive, negative)]
        weights = np.asarray(weight, dtype=np.float64)
        return cls(rows[0], rows[1], rows[2], rows[3], weights, np.asarray(split, dtype=object))

    def select(self, split: str) -> Triplets:
        """The triplets of one split (all of them when no split was given)."""
        if len(self.split) == 0:
            return self
        return self.take(np.asarray(self.split) == split)

    def take(self, keep: np.ndarray) -> Triplets:
        """The rows where ``keep`` (a boolean mask) is true."""
        split = np.asarray(self.split)[keep] if len(self.split) else self.split
        return Triplets(
            self.event_id[keep],
            self.anchor[keep],
            self.positive[keep],
            self.negative[keep],
            self.weight[keep],
            split,
        )


def triplets_from_screens(
    screens: Sequence[Screen], hard_weight: float = 1.0, implicit_weight: float = 0.3
) -> Triplets:
    """(anchor, selected, other shown) for every screen with a selection; rejected -> hard_weight."""
    rows: list[tuple[int, int, int, int, float, str]] = []
    for screen in screens:
        if screen.selected_row is None:
            continue
        rejected = set(screen.rejected_rows)
        for row in screen.shown_rows():
            if row != screen.selected_row:
                weight = hard_weight if row in rejected else implicit_weight
                rows.append(
                    (
                        screen.event_id,
                        screen.anchor_row,
                        screen.selected_row,
                        row,
                        weight,
                        screen.split,
                    )
                )
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[]] * 6
    return Triplets.from_columns(columns)


def base_space(vectors: np.ndarray) -> np.ndarray:
    """The base space: L2-normalised base vectors."""
    vectors = np.asarray(vectors, dtype=np.float64)
    normalised: np.ndarray = vectors / np.maximum(
        np.linalg.norm(vectors, axis=1, keepdims=True), NORM_EPSILON
    )
    return normalised


def head_space(head: ProjectionHead, batch_size: int = 4096) -> Space:
    """The space a head maps into (its forward pass, evaluated without gradients)."""

    def embed(vectors: np.ndarray) -> np.ndarray:
        device = next(head.parameters()).device
        was_training = head.training
        head.eval()
        parts = []
        with torch.no_grad():
            for start in range(0, len(vectors), batch_size):
                chunk = torch.as_tensor(
                    np.asarray(vectors[start : start + batch_size]), dtype=torch.float32
                )
                parts.append(head(chunk.to(device)).cpu().numpy().astype(np.float64))
        head.train(was_training)
        if not parts:
            return np.zeros((0, head.output_dim))
        return np.concatenate(parts)

    return embed


class EmbeddedRows:
    """A space evaluated on only the base rows some events need (no O(n_clips) work)."""

    def __init__(self, space: Space, base_vectors: np.ndarray, rows: np.ndarray) -> None:
        self.rows = np.unique(np.asarray(rows, dtype=np.int64))
        self.vectors = space(np.asarray(base_vectors)[self.rows]) if len(self.rows) else None

    def __getitem__(self, rows: np.ndarray | Sequence[int]) -> np.ndarray:
        if self.vectors is None:
            raise IndexError("no rows were embedded")
        return self.vectors[np.searchsorted(self.rows, np.asarray(rows, dtype=np.int64))]


@dataclass
class EventMetrics:
    """Per-event metrics in one space; NaN where an event has nothing to measure.

    ``library_percentile``: the share of a fixed sample of the library that the space puts
    farther from the anchor than the chosen clip (ties half) -- informative when several shown
    clips are equally right, unlike top-1. ``top_rank_score``: 1 / (1 + R / SERVED_DEPTH), R the
    chosen clip's estimated rank in the whole library (how many clips the space puts closer to
    the anchor), so it weighs what a search serves: a chosen clip in the top 10 scores 1 to 0.5,
    one at rank 100 about 0.09, where the percentile would still be 0.9 in a library of 1,000.
    Both, ``screen_top1`` and ``reciprocal_rank`` need a selection; ``triplet_accuracy`` needs
    triplets. ``anchors``: each event's anchor row (the
    gate resamples anchors, not events); ``evaluation``: whether it was an evaluation screen.
    """

    event_ids: np.ndarray
    triplet_accuracy: np.ndarray
    screen_top1: np.ndarray
    reciprocal_rank: np.ndarray
    library_percentile: np.ndarray | None = None
    anchors: np.ndarray | None = None
    evaluation: np.ndarray | None = None
    top_rank_score: np.ndarray | None = None
    judged_rank_score: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.event_ids)
        if self.judged_rank_score is None:
            self.judged_rank_score = np.full(n, np.nan)
        if self.library_percentile is None:
            self.library_percentile = np.full(n, np.nan)
        if self.top_rank_score is None:
            self.top_rank_score = np.full(n, np.nan)
        if self.anchors is None:
            self.anchors = np.asarray(self.event_ids, dtype=np.int64)  # each its own group
        if self.evaluation is None:
            self.evaluation = np.zeros(n, dtype=bool)

    def take(self, keep: np.ndarray) -> EventMetrics:
        """The events where ``keep`` (a boolean mask or index array) holds."""
        return EventMetrics(
            *(np.asarray(getattr(self, name))[keep] for name in _FIELDS),
        )

    def summary(self) -> dict[str, Any]:
        """Means over the events where each metric is defined, and those counts (JSON-ready)."""
        out: dict[str, Any] = {
            "events": len(self.event_ids),
            "evaluation_events": int(np.sum(self.evaluation)) if self.evaluation is not None else 0,
        }
        for name in METRIC_NAMES:
            values = getattr(self, name)
            defined = values[~np.isnan(values)]
            out[name] = float(defined.mean()) if len(defined) else None
            out[f"{name}_events"] = len(defined)
        return out


_FIELDS = (
    "event_ids",
    "triplet_accuracy",
    "screen_top1",
    "reciprocal_rank",
    "library_percentile",
    "anchors",
    "evaluation",
    "top_rank_score",
    "judged_rank_score",
)


def even_rows(count: int, limit: int) -> np.ndarray:
    """At most ``limit`` row indices of ``count``, evenly spread (deterministic): the library
    sample of library_percentile, and evaluation's rows for neighbour comparisons."""
    if count <= limit:
        return np.arange(count)
    return np.linspace(0, count - 1, limit).round().astype(np.int64)


def evaluate_events(
    space: Space,
    base_vectors: np.ndarray,
    screens: Sequence[Screen],
    triplets: Triplets | None = None,
    split: str | None = "holdout",
    library_rows: np.ndarray | None = None,
    library_size: int | None = None,
) -> EventMetrics:
    """Per-event judged rank score, top-rank score, library percentile, triplet accuracy,
    screen top-1 and reciprocal rank.

    Triplet accuracy is the weighted share of an event's triplets with cos(a, p) > cos(a, n)
    (ties count half). Top-1 is 1 when the selected clip is strictly the closest of the shown
    candidates to the anchor (k-way ties share it: 1/k); the reciprocal rank uses the mean rank
    among ties. The library percentile compares the chosen clip with ``library_rows`` (default:
    an even sample of LIBRARY_SAMPLE rows of base_vectors), leaving out the anchor and the chosen
    clip; the top-rank score scales that comparison to ``library_size`` clips (default: the rows
    of base_vectors; the caller passes the real count when base_vectors is a sample). The judged
    rank score (what the gate decides on) averages the chosen clip's top-rank score and one minus
    the mean top-rank score of the clips marked clearly wrong, whichever exist. Without
    ``triplets`` they are derived from the screens (hard 1.0, implicit 0.3). ``split`` None keeps
    every event.
    """
    if split is not None:
        screens = [s for s in screens if s.split == split]
    if triplets is None:
        triplets = triplets_from_screens(screens)
    elif split is not None:
        triplets = triplets.select(split)
    if library_rows is None:
        library_rows = even_rows(len(base_vectors), LIBRARY_SAMPLE)
    library_rows = np.asarray(library_rows, dtype=np.int64)
    others_in_library = max(int(library_size or len(base_vectors)) - 2, 0)
    event_ids = np.unique(
        np.concatenate(
            [np.array([s.event_id for s in screens], dtype=np.int64), triplets.event_id]
        ).astype(np.int64)
    )
    needed = [triplets.anchor, triplets.positive, triplets.negative, library_rows]
    needed += [np.array([s.anchor_row, *s.shown_rows()], dtype=np.int64) for s in screens]
    embedded = EmbeddedRows(space, base_vectors, np.concatenate(needed))

    triplet_accuracy = np.full(len(event_ids), np.nan)
    if len(triplets):
        anchors = embedded[triplets.anchor]
        gap = np.einsum("ij,ij->i", anchors, embedded[triplets.positive]) - np.einsum(
            "ij,ij->i", anchors, embedded[triplets.negative]
        )
        correct = np.where(gap > 0, 1.0, np.where(gap == 0, 0.5, 0.0))
        index = np.searchsorted(event_ids, triplets.event_id)
        weight = np.asarray(triplets.weight, dtype=np.float64)
        weighted = np.bincount(index, weights=weight * correct, minlength=len(event_ids))
        total = np.bincount(index, weights=weight, minlength=len(event_ids))
        has = total > 0
        triplet_accuracy[has] = weighted[has] / total[has]

    screen_top1 = np.full(len(event_ids), np.nan)
    reciprocal_rank = np.full(len(event_ids), np.nan)
    percentile = np.full(len(event_ids), np.nan)
    top_rank = np.full(len(event_ids), np.nan)
    judged_rank = np.full(len(event_ids), np.nan)
    anchor_of = np.arange(len(event_ids), dtype=np.int64) - len(event_ids)  # unique placeholders
    evaluation = np.zeros(len(event_ids), dtype=bool)
    library = embedded[library_rows] if len(library_rows) else None
    for screen in screens:
        position = np.searchsorted(event_ids, screen.event_id)
        anchor_of[position] = screen.anchor_row
        evaluation[position] = screen.evaluation
        anchor_vector = embedded[[screen.anchor_row]][0]
        ranks = _LibraryRanks(
            library, library_rows, screen.anchor_row, anchor_vector, others_in_library
        )
        # Judged rank: the chosen clip near the top (its top-rank score), the clips marked
        # clearly wrong far from it (1 - their mean score); each counts half when both exist.
        parts = []
        rejected = [r for r in screen.rejected_rows if r != screen.selected_row]
        wrong_similarity = embedded[rejected] @ anchor_vector if rejected else []
        wrong = [
            ranks.closer_share(r, float(sim))
            for r, sim in zip(rejected, wrong_similarity, strict=True)
        ]
        wrong_scores = [ranks.top_rank_score(c) for c in wrong if c is not None]
        if wrong_scores:
            parts.append(1.0 - float(np.mean(wrong_scores)))
        if screen.selected_row is not None:
            shown = np.array(screen.shown_rows(), dtype=np.int64)
            similarity = embedded[shown] @ anchor_vector
            chosen = similarity[shown == screen.selected_row][0]
            greater = int(np.sum(similarity > chosen))
            tied = int(np.sum(similarity == chosen)) - 1
            screen_top1[position] = 0.0 if greater else 1.0 / (1 + tied)
            reciprocal_rank[position] = 1.0 / (1 + greater + tied / 2)
            closer = ranks.closer_share(screen.selected_row, float(chosen))
            if closer is not None:
                percentile[position] = 1.0 - closer
                top_rank[position] = ranks.top_rank_score(closer)
                parts.append(top_rank[position])
        if parts:
            judged_rank[position] = float(np.mean(parts))
    return EventMetrics(
        event_ids,
        triplet_accuracy,
        screen_top1,
        reciprocal_rank,
        percentile,
        anchor_of,
        evaluation,
        top_rank,
        judged_rank,
    )


class _LibraryRanks:
    """Where clips fall among a library sample ordered by similarity to one anchor: the share of
    the sample closer to the anchor, and that share as a top-rank score."""

    def __init__(
        self,
        library: np.ndarray | None,
        library_rows: np.ndarray,
        anchor_row: int,
        anchor_vector: np.ndarray,
        others_in_library: int,
    ) -> None:
        self.library_rows = library_rows
        self.anchor_row = anchor_row
        self.anchor_vector = anchor_vector
        self.others_in_library = others_in_library
        self.against = None if library is None else library @ anchor_vector

    def closer_share(self, row: int, similarity: float) -> float | None:
        """The share of the sample (without the anchor and the clip) closer to the anchor than
        the clip, ties half; None when the sample has no other clip."""
        if self.against is None:
            return None
        others = (self.library_rows != self.anchor_row) & (self.library_rows != row)
        against = self.against[others]
        if len(against) == 0:
            return None
        return float(np.mean(against > similarity) + 0.5 * np.mean(against == similarity))

    def top_rank_score(self, closer: float) -> float:
        """1 / (1 + R / SERVED_DEPTH), R the closer share scaled to the whole library."""
        return 1.0 / (1.0 + closer * self.others_in_library / SERVED_DEPTH)


def nearest_neighbours(embedded: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """(m, k) indices of each row's k most cosine-similar other rows, closest first."""
    embedded = base_space(embedded)  # cosine, even if the rows were not unit vectors
    m = len(embedded)
    k = max(0, min(k, m - 1))
    out = np.empty((m, k), dtype=np.int64)
    if k == 0:
        return out
    for start in range(0, m, chunk):
        similarity = embedded[start : start + chunk] @ embedded.T
        similarity[np.arange(len(similarity)), np.arange(start, start + len(similarity))] = -np.inf
        top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(similarity, top, axis=1), axis=1, kind="stable")
        out[start : start + len(similarity)] = np.take_along_axis(top, order, axis=1)
    return out


def same_label_recall_at_k(embedded: np.ndarray, labels: Sequence[Any], k: int = 10) -> np.ndarray:
    """Per row: the share of its k nearest neighbours that carry the same label.

    With at least k other rows per label this is recall@k of same-label neighbours (the measure
    for planted-factor tests: do clips of one trick come back together).
    """
    label_array = np.asarray(labels)
    neighbours = nearest_neighbours(embedded, k)
    recall: np.ndarray = (label_array[neighbours] == label_array[:, None]).mean(axis=1)
    return recall


def knn_jaccard(first: np.ndarray, second: np.ndarray, k: int = 10) -> np.ndarray:
    """Per row: Jaccard overlap of its k-nearest-neighbour sets in two spaces over the same rows."""
    a, b = nearest_neighbours(first, k), nearest_neighbours(second, k)
    out = np.empty(len(a))
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        sx, sy = set(x.tolist()), set(y.tolist())
        out[i] = len(sx & sy) / len(sx | sy) if sx or sy else 1.0
    return out
