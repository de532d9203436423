"""A tiny sortable clip library for the sorting page's tests: real H.264 files under a media root,
clips pointing at them by heaters-style keys (`clips/<name>.mp4`), and base embeddings of a small
default variant written straight into the database (no model runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg

from tests.support.videos import moving_bar, write_video

MODEL_NAME = "test/sorting-page"
STRATEGY = "video_full_clip"


@dataclass(frozen=True)
class Library:
    media_root: Path
    variant_id: int
    clip_ids: list[int]


def _vector_text(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


def make_library(
    conn: psycopg.Connection, media_root: Path, clips: int = 6, dim: int = 16, seed: int = 0
) -> Library:
    """`clips` clips with real videos and random unit embeddings of a new default variant of
    dimension `dim` (the built-in 1024-d default stops being the default), indexed."""
    conn.execute("UPDATE embedding_variants SET is_default = false, enabled = false")
    variant_id = conn.execute(
        "INSERT INTO embedding_variants (model_name, generation_strategy, num_frames, dim, "
        "is_default, enabled) VALUES (%s, %s, 16, %s, true, false) RETURNING id",
        (MODEL_NAME, STRATEGY, dim),
    ).fetchone()[0]
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(clips, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    clip_ids = []
    for index, vector in enumerate(vectors):
        key = f"clips/clip_{index:02d}.mp4"
        # Each clip's bar moves at its own speed so the tiles look different on the page.
        write_video(
            media_root / key,
            lambda i, w, h, step=index + 1: moving_bar(i * step, w, h),
            num_frames=20,
            size=(160, 90),
        )
        clip_id = conn.execute(
            "INSERT INTO clips (clip_filepath, clip_identifier) VALUES (%s, %s) RETURNING id",
            (key, f"clip_{index:02d}"),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO embeddings (clip_id, embedding, model_name, generation_strategy, "
            "embedding_dim) VALUES (%s, %s::vector, %s, %s, %s)",
            (clip_id, _vector_text(vector), MODEL_NAME, STRATEGY, dim),
        )
        clip_ids.append(clip_id)
    conn.execute("SELECT ensure_variant_index(%s)", (variant_id,))
    return Library(media_root=media_root, variant_id=variant_id, clip_ids=clip_ids)
