"""After the cold start: how unsure the current space is about a clip's neighbours (margin and
kNN disagreement), picks spread apart, and which picks are evaluation draws -- including the
evaluation screens the gate still lacks (plpython/active_learning.py uses them).

A sibling module of active_learning.py (see anchor_clustering.py for the rules it follows).
"""

import numpy as np
from anchor_clustering import near_duplicate

# The gate's minimum of judged evaluation screens (heaters_db.heads.gate.MIN_EVENTS; a unit test
# keeps the two equal): below it no head can go live, so next_anchors asks for these first.
GATE_MIN_EVENTS = 8
# Front-loading stops after this many times GATE_MIN_EVENTS evaluation screens asked, selections
# or not (evaluation_deficit).
FRONT_LOAD_LIMIT = 4


def margin_scores(distances, epsilon=1e-9):
    """Ambiguity of each query from its ascending neighbour distances (rows, NaN-padded):
    1 - (d2 - d1) / (dk - d1), in [0, 1]. 1 = the first two neighbours are equally close
    compared with the spread of the top k (the current space cannot tell which is the match);
    0 = a clear nearest neighbour. Rows with fewer than 3 neighbours score 0."""
    scores = []
    for row in distances:
        row = np.asarray([d for d in row if d is not None and np.isfinite(d)], dtype=np.float64)
        if len(row) < 3:
            scores.append(0.0)
            continue
        row = np.sort(row)
        spread = row[-1] - row[0]
        scores.append(float(np.clip(1.0 - (row[1] - row[0]) / (spread + epsilon), 0.0, 1.0)))
    return np.asarray(scores, dtype=np.float64)


def jaccard_disagreement(first, second):
    """1 - |A & B| / |A | B| for each pair of neighbour-id lists (0 when both are empty)."""
    scores = []
    for a, b in zip(first, second, strict=True):
        a, b = set(a), set(b)
        union = len(a | b)
        scores.append(1.0 - len(a & b) / union if union else 0.0)
    return np.asarray(scores, dtype=np.float64)


def ambiguity_reasons(margin, disagreement=None):
    """(score, reason) per pool clip. With a head, the mean of the margin ambiguity and the
    head/base kNN disagreement, named after the larger of the two."""
    margin = np.asarray(margin, dtype=np.float64)
    if disagreement is None:
        return [(float(m), "ambiguous_margin") for m in margin]
    disagreement = np.asarray(disagreement, dtype=np.float64)
    return [
        (float((m + d) / 2), "ambiguous_margin" if m >= d else "head_base_disagreement")
        for m, d in zip(margin, disagreement, strict=True)
    ]


def spread_picks(vectors, scores, n, duplicate_distance, avoid=None):
    """Rows by descending score, skipping any within `duplicate_distance` (cosine) of a row
    already picked or of `avoid` (recent anchors). Ties keep the input order."""
    chosen_rows, chosen = [], [] if avoid is None else list(avoid)
    for row in np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable"):
        if len(chosen_rows) >= n:
            break
        if near_duplicate(vectors[row], chosen, duplicate_distance):
            continue
        chosen_rows.append(int(row))
        chosen.append(vectors[row])
    return chosen_rows


def random_slots(n, share, rng, deficit=0):
    """Which of n picks are evaluation draws: each with probability `share`, and the first
    `deficit` of them for sure (the evaluation screens the gate still lacks, see
    evaluation_deficit). A share of 0 turns evaluation screens off, deficit included."""
    slots = rng.random(int(n)) < float(share)
    if float(share) > 0:
        slots[: max(0, int(deficit))] = True
    return slots


def evaluation_deficit(selected, asked, minimum=GATE_MIN_EVENTS, limit=FRONT_LOAD_LIMIT):
    """How many more evaluation screens next_anchors asks for before the share alone decides:
    until the mode's held-out evaluation screens have `minimum` answers with a selection, every
    pick is an evaluation pick, but never beyond `limit` x `minimum` such screens asked.

    Below the gate's minimum no head can go live; without front-loading, 15 % of 50 screens leaves
    the gate ~7 judged screens and the first round can never serve (benchmarks/README.md). The
    draws stay uniform anchors with candidates no space chose, so only their timing changes, not
    what they measure; the stopping rule counts answers, which no space under test influences.

    Selections, not every judged answer: the gate's power comes from the chosen clip's rank (a
    clip marked wrong is far down the library in every space, so its score barely separates two
    spaces). Counting a "none similar" with clips marked wrong as well stopped the front-loading
    early and left the gate short of selections: on the held-out learning-curve check, 6 rounds
    in 3 runs where heads 0.2-0.5 of recall above the base were refused, against 1 round counting
    selections (benchmarks/README.md). The limit keeps a library where uniform candidates rarely
    hold a match (many rare tricks), or a sorter who seldom picks on evaluation screens, from
    being asked evaluation screens for ever and training nothing."""
    wanted = max(0, int(minimum) - int(selected))
    room = max(0, int(limit) * int(minimum) - int(asked))
    return min(wanted, room)
