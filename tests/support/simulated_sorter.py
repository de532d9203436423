"""A synthetic clip library with planted trick and spot factors, and a sorter that answers from them.

Each clip has three latent parts, each a class centre plus a little clip-specific variation:
its trick (``TRICKS`` classes), its spot (``SPOTS``) and a nuisance (camera, light; ``NUISANCES``).
The base embedding mixes the three through random linear maps, plus noise, with the nuisance the
loudest: in the base space a clip's nearest neighbours share its trick only some of the time,
so a head has something to learn.

The simulated sorter answers like a person told "pick the clip with the same trick" (or spot):
among the shown clips of the anchor's class it picks the one whose latent is closest to the
anchor's, says "none similar" when no shown clip shares the class, and explicitly rejects
about half of the others. With ``random_answers`` it picks at random: a head fitted to that
must not pass the gate.

Database helpers (``make_test_variant``, ``insert_library``, ``sort_round``, ``label_recall``)
work on a migrated database through psycopg; other tests (demo, active learning) reuse them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import psycopg

from heaters_db.vector_copy import copy_rows

TRICKS, SPOTS, NUISANCES = 8, 6, 5
LATENT_DIM = 8
MODEL_NAME = "test/synthetic-base"
STRATEGY = "video_full_clip"
MODES = {"trick": "trick_similarity", "spot": "spot_similarity"}


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@dataclass
class SyntheticLibrary:
    """Base vectors with their planted labels and latents; ``clip_ids`` once inserted."""

    vectors: np.ndarray  # (n, dim) float32
    tricks: np.ndarray  # (n,) trick class
    spots: np.ndarray  # (n,) spot class
    trick_latents: np.ndarray  # (n, LATENT_DIM)
    spot_latents: np.ndarray
    make_vector: Callable[[int, int, np.random.Generator], np.ndarray] = field(repr=False)
    clip_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.vectors)

    def labels(self, mode: str) -> np.ndarray:
        return self.tricks if _short(mode) == "trick" else self.spots

    def latents(self, mode: str) -> np.ndarray:
        return self.trick_latents if _short(mode) == "trick" else self.spot_latents

    def row_of(self, clip_id: int) -> int:
        return self._rows()[int(clip_id)]

    def _rows(self) -> dict[int, int]:
        if getattr(self, "_row_map", None) is None or len(self._row_map) != len(self.clip_ids):
            self._row_map = {int(c): i for i, c in enumerate(self.clip_ids)}
        return self._row_map


def _short(mode: str) -> str:
    return mode.removesuffix("_similarity")


def make_library(
    dim: int = 64,
    per_pair: int = 8,
    seed: int = 0,
    trick_scale: float = 0.8,
    spot_scale: float = 0.8,
    nuisance_scale: float = 1.5,
    noise: float = 0.9,
    variation: float = 0.35,
) -> SyntheticLibrary:
    """TRICKS x SPOTS x per_pair clips (384 by default) of ``dim``-d base vectors."""
    rng = np.random.default_rng(seed)
    maps = [rng.standard_normal((dim, LATENT_DIM)) / np.sqrt(dim) for _ in range(3)]
    centres = [
        _unit(rng.standard_normal((count, LATENT_DIM))) for count in (TRICKS, SPOTS, NUISANCES)
    ]
    scales = (trick_scale, spot_scale, nuisance_scale)

    def latent(kind: int, label: int, generator: np.random.Generator) -> np.ndarray:
        jitter = generator.standard_normal(LATENT_DIM) / np.sqrt(LATENT_DIM)
        return centres[kind][label] + variation * jitter

    def vector_from(latents: Sequence[np.ndarray], generator: np.random.Generator) -> np.ndarray:
        mixed = sum(s * (m @ z) for s, m, z in zip(scales, maps, latents, strict=True))
        return (mixed + noise * generator.standard_normal(dim) / np.sqrt(dim)).astype(np.float32)

    tricks, spots, trick_latents, spot_latents, vectors = [], [], [], [], []
    for trick in range(TRICKS):
        for spot in range(SPOTS):
            for _ in range(per_pair):
                parts = [
                    latent(0, trick, rng),
                    latent(1, spot, rng),
                    latent(2, int(rng.integers(NUISANCES)), rng),
                ]
                vectors.append(vector_from(parts, rng))
                tricks.append(trick)
                spots.append(spot)
                trick_latents.append(parts[0])
                spot_latents.append(parts[1])

    def make_vector(trick: int, spot: int, generator: np.random.Generator) -> np.ndarray:
        """A new clip of that trick and spot (e.g. one embedded after a head went live)."""
        parts = [
            latent(0, trick, generator),
            latent(1, spot, generator),
            latent(2, int(generator.integers(NUISANCES)), generator),
        ]
        return vector_from(parts, generator)

    return SyntheticLibrary(
        np.array(vectors, dtype=np.float32),
        np.array(tricks),
        np.array(spots),
        np.array(trick_latents),
        np.array(spot_latents),
        make_vector,
    )


class SimulatedSorter:
    """Answers sorting screens from a library's planted factors (see the module docstring)."""

    def __init__(
        self,
        library: SyntheticLibrary,
        mode: str,
        seed: int = 0,
        random_answers: bool = False,
        reject_share: float = 0.5,
    ) -> None:
        self.library = library
        self.mode = mode
        self.rng = np.random.default_rng(seed)
        self.random_answers = random_answers
        self.reject_share = reject_share

    def answer(self, anchor: int, candidates: Sequence[int]) -> tuple[int | None, list[int]]:
        """(selected clip id or None for "none similar", explicitly rejected clip ids)."""
        if self.random_answers:
            if self.rng.random() < 0.2:
                return None, []
            return int(self.rng.choice(list(candidates))), []
        labels, latents = self.library.labels(self.mode), _unit(self.library.latents(self.mode))
        a = self.library.row_of(anchor)
        same = [c for c in candidates if labels[self.library.row_of(c)] == labels[a]]
        selected = None
        if same:
            selected = max(same, key=lambda c: float(latents[self.library.row_of(c)] @ latents[a]))
        rejected = [
            int(c)
            for c in candidates
            if c != selected
            and labels[self.library.row_of(c)] != labels[a]
            and self.rng.random() < self.reject_share
        ]
        return (None if selected is None else int(selected)), rejected


def make_test_variant(conn: psycopg.Connection, dim: int) -> int:
    """A ``dim``-d variant for synthetic vectors, made the default (others stay, not default)."""
    conn.execute("UPDATE embedding_variants SET is_default = false WHERE is_default")
    row = conn.execute(
        "INSERT INTO embedding_variants (model_name, generation_strategy, num_frames, dim, is_default) "
        "VALUES (%s, %s, 64, %s, true) RETURNING id",
        (MODEL_NAME, STRATEGY, dim),
    ).fetchone()
    return row[0]


def insert_clips(conn: psycopg.Connection, count: int, prefix: str = "synthetic") -> np.ndarray:
    """``count`` clips without a video file (so no embed jobs are queued); their ids."""
    rows = conn.execute(
        "INSERT INTO clips (clip_identifier) "
        "SELECT %s || '-' || g FROM generate_series(1, %s) g RETURNING id",
        (prefix, count),
    ).fetchall()
    return np.array(sorted(r[0] for r in rows), dtype=np.int64)


def insert_embeddings(conn: psycopg.Connection, clip_ids: np.ndarray, vectors: np.ndarray) -> None:
    """Base embeddings of the test variant (binary COPY)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    with conn.cursor() as cur:
        copy_rows(
            cur,
            "COPY embeddings (clip_id, model_name, generation_strategy, embedding_dim, embedding) "
            "FROM STDIN (FORMAT BINARY)",
            [
                ("int4", np.asarray(clip_ids)),
                ("text", MODEL_NAME),
                ("text", STRATEGY),
                ("int4", vectors.shape[1]),
                ("vector", vectors),
            ],
            len(clip_ids),
        )


def insert_library(conn: psycopg.Connection, library: SyntheticLibrary) -> np.ndarray:
    """Clips and embeddings for every library row; sets and returns ``library.clip_ids``."""
    library.clip_ids = insert_clips(conn, len(library))
    insert_embeddings(conn, library.clip_ids, library.vectors)
    return library.clip_ids


def similar_candidates(conn: psycopg.Connection, anchor: int, mode: str, count: int) -> list[int]:
    rows = conn.execute(
        "SELECT clip_id FROM similar_clips(%s, %s, %s) ORDER BY rank", (anchor, mode, count)
    ).fetchall()
    return [r[0] for r in rows]


def screen_candidates(
    conn: psycopg.Connection,
    library: SyntheticLibrary,
    anchor: int,
    mode: str,
    rng: np.random.Generator,
    nearest: int = 4,
    shown: int = 8,
) -> list[int]:
    """What a screen shows: the current space's ``nearest`` neighbours plus random clips, shuffled."""
    candidates = similar_candidates(conn, anchor, mode, nearest)
    for clip in rng.permutation(library.clip_ids):
        if len(candidates) >= shown:
            break
        if clip != anchor and clip not in candidates:
            candidates.append(int(clip))
    rng.shuffle(candidates)
    return candidates


def evaluation_screen(conn: psycopg.Connection, anchor: int, mode: str, n: int = 8):
    """evaluation_candidates(anchor, mode, n): (clip ids, sources) in screen order."""
    rows = conn.execute(
        "SELECT clip_id, source FROM evaluation_candidates(%s, %s, %s) ORDER BY position",
        (anchor, mode, n),
    ).fetchall()
    return [int(r[0]) for r in rows], [r[1] for r in rows]


def sort_round(
    conn: psycopg.Connection,
    library: SyntheticLibrary,
    sorter: SimulatedSorter,
    events: int,
    seed: int = 0,
    candidates: Callable[[int], list[int]] | None = None,
    batch: int = 25,
    evaluation_share: float = 0.0,
) -> list[int]:
    """Insert ``events`` sorting events as real rows (batches of ``batch`` per INSERT); their ids.

    Anchors are random clips; ``candidates(anchor)`` picks what is shown (default:
    ``screen_candidates``, i.e. nearest in the current space plus random clips). With
    ``evaluation_share`` > 0 that share of screens are evaluation screens (evaluation_candidates,
    anchor_reason 'evaluation') and the others say their anchor was a uniform pick ('random');
    with 0 the events carry no provenance ('manual', what an old client sends).
    """
    rng = np.random.default_rng(seed)
    mode = MODES.get(sorter.mode, sorter.mode)
    pick = candidates or (lambda anchor: screen_candidates(conn, library, anchor, mode, rng))
    rows = []
    for _ in range(events):
        anchor = int(rng.choice(library.clip_ids))
        reason, sources = ("random" if evaluation_share > 0 else "manual"), None
        if evaluation_share > 0 and rng.random() < evaluation_share:
            shown, sources = evaluation_screen(conn, anchor, mode)
            reason = "evaluation"
        else:
            shown = pick(anchor)
        selected, rejected = sorter.answer(anchor, shown)
        rows.append(
            (anchor, selected, rejected, shown, mode, int(rng.integers(500, 5000)), reason, sources)
        )
    ids: list[int] = []
    for start in range(0, len(rows), batch):
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, rejected_clip_ids, "
                "candidate_clip_ids, sorting_mode, response_time_ms, anchor_reason, "
                "candidate_sources) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                rows[start : start + batch],
                returning=True,
            )
            while True:
                ids.append(cur.fetchone()[0])
                if not cur.nextset():
                    break
    return ids


def neighbours(
    conn: psycopg.Connection, clip_ids: Sequence[int], mode: str, k: int = 10
) -> dict[int, list[int]]:
    """similar_clips(clip, mode, k) for each clip: {clip: [neighbour ids, closest first]}."""
    return {int(c): similar_candidates(conn, int(c), mode, k) for c in clip_ids}


def label_recall(
    conn: psycopg.Connection,
    library: SyntheticLibrary,
    space_mode: str,
    label_mode: str,
    k: int = 10,
    queries: Sequence[int] | None = None,
) -> float:
    """Mean share of similar_clips(q, space_mode, k) that carry q's ``label_mode`` label."""
    labels = library.labels(label_mode)
    clips = library.clip_ids if queries is None else queries
    shares = []
    for clip, found in neighbours(conn, clips, space_mode, k).items():
        own = labels[library.row_of(clip)]
        shares.append(np.mean([labels[library.row_of(n)] == own for n in found]))
    return float(np.mean(shares))
