"""What a head is trained on: base vectors (one row per clip) and the sorting events that refer
to those rows, as the database layer (heaters_db.learning.data) hands them over."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from heaters_db.errors import HeatersError
from heaters_db.heads.metrics import SPLITS, Screen, Triplets

log = logging.getLogger(__name__)


class TrainingDataError(HeatersError):
    """The sorting events cannot train a projection head (none usable, or inconsistent rows)."""


@dataclass
class TrainingData:
    """Base vectors (one row per clip) and the sorting events that refer to those rows.

    ``library_size``: how many clips the library has when base_vectors holds only a sample of it
    (None: base_vectors is the whole library); the top-rank score scales ranks to it.
    """

    base_vectors: np.ndarray
    clip_rows: dict[int, int]
    screens: list[Screen]
    triplets: Triplets | None = None
    library_size: int | None = None

    def __post_init__(self) -> None:
        self.base_vectors = np.asarray(self.base_vectors, dtype=np.float32)
        if self.base_vectors.ndim != 2 or len(self.base_vectors) == 0:
            raise TrainingDataError(
                f"base vectors must be a non-empty (n_clips, d) array, got {self.base_vectors.shape}"
            )
        if not np.isfinite(self.base_vectors).all():
            raise TrainingDataError("base vectors contain NaN or infinite values")
        n = len(self.base_vectors)
        for screen in self.screens:
            if screen.split not in SPLITS:
                raise TrainingDataError(f"event {screen.event_id}: unknown split {screen.split!r}")
            rows = (screen.anchor_row, *screen.shown_rows())
            if min(rows) < 0 or max(rows) >= n:
                raise TrainingDataError(
                    f"event {screen.event_id} refers to a row outside 0..{n - 1}"
                )
        if self.triplets is not None and len(self.triplets):
            triplet_rows = np.concatenate(
                [self.triplets.anchor, self.triplets.positive, self.triplets.negative]
            )
            if triplet_rows.min() < 0 or triplet_rows.max() >= n:
                raise TrainingDataError(f"a triplet refers to a row outside 0..{n - 1}")

    @classmethod
    def from_clip_ids(
        cls,
        clip_ids: Sequence[int],
        base_vectors: np.ndarray,
        screens: Iterable[Mapping[str, Any]],
        triplets: Iterable[Mapping[str, Any]] | None = None,
    ) -> TrainingData:
        """Build from rows keyed by clip id, as the sorting views return them.

        Screen keys: event_id, anchor_clip_id, candidate_clip_ids, selected_clip_id (None = none
        similar), rejected_clip_ids, split, evaluation (optional). Triplet keys: event_id, anchor_clip_id,
        positive_clip_id, negative_clip_id, weight, split. Clips without a base vector are left
        out: a candidate is dropped from its screen; a screen whose anchor or selected clip (or a
        triplet any of whose clips) lacks a vector is skipped.
        """
        clip_rows = {int(clip_id): row for row, clip_id in enumerate(clip_ids)}
        kept: list[Screen] = []
        for record in screens:
            anchor = clip_rows.get(int(record["anchor_clip_id"]))
            selected_id = record.get("selected_clip_id")
            selected = None if selected_id is None else clip_rows.get(int(selected_id))
            if anchor is None or (selected_id is not None and selected is None):
                log.info(
                    "skipping sorting event without base vectors",
                    extra={"action": "head_training_skip_event", "event_id": record["event_id"]},
                )
                continue
            kept.append(
                Screen(
                    event_id=int(record["event_id"]),
                    anchor_row=anchor,
                    candidate_rows=_known_rows(record.get("candidate_clip_ids"), clip_rows),
                    selected_row=selected,
                    rejected_rows=_known_rows(record.get("rejected_clip_ids"), clip_rows),
                    split=record.get("split") or "train",
                    evaluation=bool(record.get("evaluation")),
                )
            )
        table = None
        if triplets is not None:
            columns: list[list[Any]] = [[], [], [], [], [], []]
            for record in triplets:
                rows = [
                    clip_rows.get(int(record[key]))
                    for key in ("anchor_clip_id", "positive_clip_id", "negative_clip_id")
                ]
                if None in rows:
                    continue
                values = [int(record["event_id"]), *rows, float(record["weight"])]
                for column, value in zip(
                    columns, [*values, record.get("split") or "train"], strict=True
                ):
                    column.append(value)
            table = Triplets.from_columns(columns)
        return cls(np.asarray(base_vectors), clip_rows, kept, table)


def _known_rows(clip_ids: Iterable[int] | None, clip_rows: Mapping[int, int]) -> tuple[int, ...]:
    return tuple(clip_rows[int(c)] for c in (clip_ids or ()) if int(c) in clip_rows)
