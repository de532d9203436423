"""The demo's simulated sorter (said plainly: a script, not a person).

It knows each sample clip's planted trick and spot (synthetic_clips.py) and answers a screen the
way a person asked "which clip shows the same trick?" would: one of the shown clips with the
anchor's trick -- any of them, since several can be equally right and a person does not follow
the current space's ordering -- or "none similar" when no shown clip has it. Like a person it
marks only some clearly wrong clips (a different trick) as rejected, each with probability
``reject_share``; the other clips not chosen are left unmarked (implicit negatives).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

REJECT_SHARE = 0.5


@dataclass
class Answer:
    selected: int | None
    rejected: list[int]
    response_time_ms: int


def answer(
    anchor_label: str,
    candidates: list[tuple[int, str, float]],
    rng: random.Random,
    reject_share: float = REJECT_SHARE,
) -> Answer:
    """candidates: (clip_id, label, distance to the anchor) in screen order."""
    matching = [clip_id for clip_id, label, _ in candidates if label == anchor_label]
    selected = rng.choice(matching) if matching else None
    rejected = [
        clip_id
        for clip_id, label, _ in candidates
        if label != anchor_label and rng.random() < reject_share
    ]
    return Answer(selected, rejected, rng.randint(900, 4000))
