"""`heaters-db embed`: queue the backfill, or embed clips now in this process."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click
import psycopg
from tqdm import tqdm

from heaters_db.cli.output import EMBEDDINGS, connection, query_rows
from heaters_db.cli.variants import UnknownVariant, parse_variant_specs
from heaters_db.errors import HeatersError
from heaters_db.settings import get_settings

if TYPE_CHECKING:  # heaters_db.embed_jobs imports torch: only `embed --clip` needs it
    from heaters_db.embed_targets import EmbedTarget
    from heaters_db.embedding.embedder import EmbedResult


class UnknownClip(HeatersError):
    """No clip has the id that was given."""


def _enqueue(conn: psycopg.Connection, clip_ids: list[int], only_missing: bool) -> int:
    if not clip_ids:
        return 0
    (row,) = query_rows(
        conn, EMBEDDINGS, "enqueue_embed_jobs", clip_ids=clip_ids, only_missing=only_missing
    )
    return int(row["added"])


def _describe(target: EmbedTarget, result: EmbedResult, embedding_id: int | None) -> str:
    head = f"clip {target.clip_id} {target.variant}"
    if result.ok:
        assert result.embedding is not None
        seconds = sum(result.seconds.values())
        dim = result.embedding.shape[-1]
        return f"{head}: embedding {embedding_id} ({dim}-d) in {seconds:.2f} s"
    if result.status == "skipped":
        return f"{head}: skipped ({result.message})"
    return f"{head}: FAILED {result.error}"


@click.command()
@click.option(
    "--missing",
    is_flag=True,
    help="Enqueue an embed job for every clip (with a video) lacking an enabled variant, "
    "dead jobs included, and for every clip whose re-embed after a new video died (its old "
    "vector still serves); a clip with a current embedding is not redone.",
)
@click.option(
    "--clip",
    "clip_ids",
    type=int,
    multiple=True,
    metavar="ID",
    help="Embed this clip now, in this process (repeatable).",
)
@click.option(
    "--variant",
    "variant_specs",
    multiple=True,
    metavar="ID|MODEL:STRATEGY",
    help="With --clip: only these variants (default: every enabled one). Repeatable.",
)
@click.option("--device", default=None, help="auto, cpu, cuda, cuda:1 (default: HEATERS_DEVICE).")
def embed(
    missing: bool, clip_ids: tuple[int, ...], variant_specs: tuple[str, ...], device: str | None
) -> None:
    """Compute V-JEPA 2 embeddings: queue the backfill, or embed clips right now.

    \b
    heaters-db embed --missing
        The backfill as durable jobs: every clip with a video that lacks an embedding of an
        enabled variant gets an embed job (pending ones are not duplicated). A running
        `heaters-db daemon` computes them; `heaters-db daemon --once` drains them and exits.
    heaters-db embed --clip 42 [--clip 43 ...] [--variant facebook/vjepa2-vitl-fpc64-256:video_full_clip]
        Embeds now, in this process, without the queue (loads the model here), and upserts the
        vectors; a progress bar shows when there are several clips. Exit code 1 if any failed.
    """
    if missing == bool(clip_ids):
        raise click.UsageError("give either --missing or --clip ID")
    if variant_specs and not clip_ids:
        raise click.UsageError(
            "--variant applies to --clip (the backfill covers every enabled variant)"
        )
    with connection() as conn:
        if missing:
            ids = [r["id"] for r in query_rows(conn, EMBEDDINGS, "clips_missing_embeddings")]
            added = _enqueue(conn, ids, only_missing=True)
            click.echo(
                f"{len(ids)} clips lack an embedding of an enabled variant (or their re-embed "
                f"after a new video died); enqueued {added} "
                "new embed jobs (pending ones are not duplicated); a running "
                "`heaters-db daemon` computes them"
            )
            return
        variant_ids = parse_variant_specs(conn, variant_specs) if variant_specs else None
        failed = _embed_now(conn, list(clip_ids), variant_ids, device)
    if failed:
        sys.exit(1)


def _targets(
    conn: psycopg.Connection, clip_id: int, variant_ids: list[int] | None
) -> list[EmbedTarget]:
    from heaters_db.embed_targets import load_targets_for_clip

    if not query_rows(conn, EMBEDDINGS, "clip_exists", clip_id=clip_id):
        raise UnknownClip(f"no clip with id {clip_id}")
    targets = load_targets_for_clip(conn, clip_id, variant_ids)
    if not targets:
        which = "none of those given is enabled" if variant_ids else "none is enabled"
        raise UnknownVariant(f"no variant to compute: {which} (heaters-db variant add ...)")
    return targets


def _embed_now(
    conn: psycopg.Connection, clip_ids: list[int], variant_ids: list[int] | None, device: str | None
) -> int:
    """Embed the clips in-process, one batch per clip (clip i+1 decodes while the model runs
    on clip i: EmbedPipeline.stream)."""
    from heaters_db.embed_jobs import EmbedPipeline, hide_model_loading_bars

    hide_model_loading_bars()
    failed = 0
    batches = (_targets(conn, clip_id, variant_ids) for clip_id in clip_ids)
    with EmbedPipeline(get_settings(), device) as pipeline:
        bar = tqdm(total=len(clip_ids), unit="clip", disable=len(clip_ids) < 2, file=sys.stderr)
        for results in pipeline.stream(conn, batches):
            for target, result in results:
                embedding_id = None
                if result.ok:
                    with conn.transaction():
                        embedding_id = pipeline.store(conn, target, result)
                    pipeline.ensure_index(conn, target)
                elif result.status == "error":
                    failed += 1
                tqdm.write(_describe(target, result, embedding_id), file=sys.stdout)
            bar.update(1)
        bar.close()
    return failed


COMMANDS = (embed,)
