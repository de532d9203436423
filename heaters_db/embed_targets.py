"""What an embed job or `heaters-db embed --clip` embeds: a (clip, variant) pair, from the database.

`EmbedTarget` carries what the stages need (rows of the `embed_job_targets` and `clip_targets`
queries, sql/queries/embeddings.sql); `result_json` is the job's `result` for one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from heaters_db.embedding.embedder import EmbedResult
from heaters_db.queries import query

QUERIES = "embeddings.sql"


@dataclass(frozen=True)
class EmbedTarget:
    """One (clip, variant) pair to embed, with what the stages need (embeddings.sql rows)."""

    clip_id: int
    clip_filepath: str | None
    variant_id: int
    model_name: str
    generation_strategy: str
    num_frames: int
    dim: int | None = None
    enabled: bool = True
    job_id: int | None = None
    processing_metadata: dict[str, Any] | None = None
    start_time_seconds: float | None = None
    end_time_seconds: float | None = None
    window_seconds: float | None = None  # HOOK issue 12: window variants only
    window_stride_seconds: float | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> EmbedTarget:
        return cls(**{k: v for k, v in row.items() if k in cls.__dataclass_fields__})

    @property
    def variant(self) -> str:
        """`model:strategy:frames`, as the logs print it."""
        return f"{self.model_name}:{self.generation_strategy}:{self.num_frames}"


def result_json(
    target: EmbedTarget,
    result: EmbedResult,
    *,
    embedding_id: int | None = None,
    worker: str | None = None,
) -> dict[str, Any]:
    """The embed job's `result` jsonb (seconds per stage; the embedding's id, dim and model
    version when it was written, the reason otherwise)."""
    payload: dict[str, Any] = {
        "clip_id": target.clip_id,
        "variant": target.variant,
        "seconds": {k: round(v, 4) for k, v in result.seconds.items()},
    }
    if result.ok:
        assert result.embedding is not None
        payload |= {
            "embedding_id": embedding_id,
            "embedding_dim": int(result.embedding.shape[-1]),
            "model_version": result.model_version,
            "frame_indices": result.frame_indices,
        }
    else:
        payload["reason"] = result.message
    if worker:
        payload["worker"] = worker
    return payload


def load_targets_for_jobs(
    conn: psycopg.Connection, job_ids: Sequence[int]
) -> dict[int, EmbedTarget]:
    """job id -> target, for embed jobs whose clip and variant still exist."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query(QUERIES, "embed_job_targets"), {"job_ids": list(job_ids)})
        return {row["job_id"]: EmbedTarget.from_row(row) for row in cur.fetchall()}


def load_targets_for_clip(
    conn: psycopg.Connection, clip_id: int, variant_ids: Sequence[int] | None = None
) -> list[EmbedTarget]:
    """The clip with every enabled variant (or the variants named)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            query(QUERIES, "clip_targets"),
            {"clip_id": clip_id, "variant_ids": list(variant_ids) if variant_ids else None},
        )
        return [EmbedTarget.from_row(row) for row in cur.fetchall()]
