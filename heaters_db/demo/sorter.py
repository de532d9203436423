"""The demo's simulated sorter (said plainly: a script, not a person).

It knows each sample clip's planted trick and spot (synthetic_clips.py) and answers a screen the
way a person asked "which clip shows the same trick?" would: the shown clip with the anchor's
trick (the nearest such one in the current space when there are several), or "none similar"
when no shown clip has it. Every other shown clip is rejected.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Answer:
    selected: int | None
    rejected: list[int]
    response_time_ms: int


def answer(
    anchor_label: str, candidates: list[tuple[int, str, float]], rng: random.Random
) -> Answer:
    """candidates: (clip_id, label, distance to the anchor) in screen order."""
    matching = sorted(
        (distance, clip_id) for clip_id, label, distance in candidates if label == anchor_label
    )
    selected = matching[0][1] if matching else None
    rejected = [clip_id for clip_id, _, _ in candidates if clip_id != selected]
    return Answer(selected, rejected, rng.randint(900, 4000))
