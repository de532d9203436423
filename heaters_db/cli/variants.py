"""`heaters-db variant ...`: which embeddings the database wants (embedding_variants)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click
import psycopg

from heaters_db.cli.output import EMBEDDINGS, QUEUE, connection, json_default, query_rows, table
from heaters_db.errors import HeatersError
from heaters_db.queries import query
from heaters_db.variant_shape import MAX_FRAMES, MIN_STRIDE_SECONDS, shape_problem

STRATEGIES = ("video_full_clip", "video_centered_64", "video_trick_window", "video_moment_windows")
WINDOWS = "video_moment_windows"
# heaters_db.embedding.windows' defaults (not imported: it pulls in torch)
DEFAULT_WINDOW_SECONDS, DEFAULT_STRIDE_SECONDS, DEFAULT_WINDOW_FRAMES = 1.5, 0.5, 16


class UnknownVariant(HeatersError):
    """No embedding variant matches what was named."""


def _find_variant(conn: psycopg.Connection, model_name: str, strategy: str) -> dict[str, Any]:
    rows = query_rows(
        conn, EMBEDDINGS, "variant_by_name", model_name=model_name, generation_strategy=strategy
    )
    if not rows:
        raise UnknownVariant(
            f"no embedding variant {model_name} / {strategy}; `heaters-db variant list` shows them"
        )
    return rows[0]


def parse_variant_specs(conn: psycopg.Connection, specs: Sequence[str]) -> list[int]:
    """`--variant` values: an id, or MODEL:STRATEGY."""
    ids = []
    for spec in specs:
        if spec.isdigit():
            if not query_rows(conn, EMBEDDINGS, "variant_by_id", variant_id=int(spec)):
                raise click.BadParameter(
                    f"no variant {spec} (heaters-db variant list shows them)",
                    param_hint="--variant",
                )
            ids.append(int(spec))
            continue
        model_name, _, strategy = spec.rpartition(":")
        if not model_name or strategy not in STRATEGIES:
            raise click.BadParameter(
                f"{spec!r}: give a variant id or MODEL:STRATEGY (strategy one of {', '.join(STRATEGIES)})",
                param_hint="--variant",
            )
        ids.append(_find_variant(conn, model_name, strategy)["id"])
    return ids


@click.group()
def variant() -> None:
    """Which embeddings the database wants (embedding_variants).

    \b
    A variant is a model plus a generation strategy plus a frame count. Every ENABLED variant
    is computed for every clip that gets a video (a trigger enqueues one embed job per clip and
    variant); the DEFAULT variant is what similar_clips() searches before a mode has an active
    projection head. Vectors live in `embeddings`, one row per (clip, model, strategy).
    """


@variant.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def variant_list(as_json: bool) -> None:
    """Show every variant with its dimension, embedding count and pending jobs."""
    with connection() as conn:
        rows = query_rows(conn, EMBEDDINGS, "variant_list")
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=json_default))
        return
    columns = ["id", "model_name", "generation_strategy", "num_frames", "dim", "is_default",
               "enabled", "window_seconds", "window_stride_seconds", "embeddings",
               "pending_jobs"]  # fmt: skip
    click.echo(table(rows, columns))


@variant.command("add")
@click.argument("model")
@click.argument("strategy", type=click.Choice(STRATEGIES))
@click.option(
    "--frames",
    type=click.IntRange(min=2, max=MAX_FRAMES),
    default=None,
    help="Frames the model sees per clip (even; default 64, or the variant's current value).",
)
@click.option(
    "--window-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help=f"video_moment_windows: length of one window (default {DEFAULT_WINDOW_SECONDS} s).",
)
@click.option(
    "--stride-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help=f"video_moment_windows: seconds between window starts (default {DEFAULT_STRIDE_SECONDS} s, "
    f"at least {MIN_STRIDE_SECONDS}).",
)
@click.option("--default", "make_default", is_flag=True, help="Make it the default variant.")
@click.option(
    "--reembed",
    is_flag=True,
    help="Change the frame count or windows of a variant that has vectors, and enqueue an "
    "embed job for every clip with a video (each old vector serves until it is replaced). "
    "Without it such a change is refused: it would mix vectors made two ways.",
)
@click.option(
    "--backfill/--no-backfill",
    default=True,
    show_default=True,
    help="Enqueue embed jobs for the clips that already have a video.",
)
def variant_add(
    model: str,
    strategy: str,
    frames: int | None,
    window_seconds: float | None,
    stride_seconds: float | None,
    make_default: bool,
    reembed: bool,
    backfill: bool,
) -> None:
    """Add (or re-enable) the variant MODEL STRATEGY.

    \b
    MODEL is a Hugging Face hub id (facebook/vjepa2-vitl-fpc64-256) or a directory name under
    HEATERS_MODEL_DIR; the daemon loads it and records its dimension with the first vector.
    STRATEGY: video_full_clip (frames spread over the whole clip), video_centered_64
    (consecutive frames around the middle), video_trick_window (consecutive frames around
    processing_metadata.trick_apex_time / trick_initiation_time; clips without it are skipped).

    \b
    What happens: new clips get this variant automatically from now on. With --backfill (the
    default) every existing clip with a video that lacks this variant gets an embed job now;
    a running `heaters-db daemon` computes them. --no-backfill leaves that for a later
    `heaters-db embed --missing`. --default switches similar_clips() to this variant (as
    soon as its vectors exist; clips without one are not found).

    \b
    video_moment_windows: vectors of sub-clip windows (moment_embeddings, served by
    similar_moments): --window-seconds long (default 1.5), one every --stride-seconds (default
    0.5), --frames per window (default 16). A window variant cannot be the default.

    \b
    Changing --frames (or the windows) of a variant that already has vectors needs --reembed,
    which re-embeds every clip: similar_clips would otherwise compare vectors made from 64
    frames with vectors made from 16 as if they were alike.
    """
    if strategy == WINDOWS:
        if make_default:
            raise click.BadParameter(
                "a window variant serves similar_moments, not similar_clips", param_hint="--default"
            )
        # The row as it is (re-enabling keeps its shape), else the defaults: the insert half of
        # the upsert is checked against the window constraint even when the row exists.
        existing = _existing_variant(model, strategy) or {
            "num_frames": DEFAULT_WINDOW_FRAMES,
            "window_seconds": DEFAULT_WINDOW_SECONDS,
            "window_stride_seconds": DEFAULT_STRIDE_SECONDS,
        }
        frames = frames or existing["num_frames"]
        window_seconds = window_seconds or existing["window_seconds"]
        stride_seconds = stride_seconds or existing["window_stride_seconds"]
    elif window_seconds is not None or stride_seconds is not None:
        raise click.BadParameter(
            f"only for {WINDOWS}", param_hint="--window-seconds/--stride-seconds"
        )
    if not model.strip():
        raise click.BadParameter("must name a model", param_hint="MODEL")
    problem = shape_problem(frames, window_seconds, stride_seconds)
    if problem:
        raise click.UsageError(problem)
    with connection() as conn:
        with conn.transaction():
            _refuse_mixing_vectors(
                conn, model, strategy, frames, window_seconds, stride_seconds, reembed
            )
            (row,) = query_rows(
                conn,
                EMBEDDINGS,
                "variant_upsert",
                model_name=model,
                generation_strategy=strategy,
                num_frames=frames,
                window_seconds=window_seconds,
                window_stride_seconds=stride_seconds,
            )
            if make_default:
                query_rows(conn, EMBEDDINGS, "variant_clear_default", variant_id=row["id"])
                query_rows(conn, EMBEDDINGS, "variant_set_default", variant_id=row["id"])
        label = f"{row['model_name']}:{row['generation_strategy']}:{row['num_frames']}"
        if row["window_seconds"] is not None:
            label += (
                f" ({row['window_seconds']:g} s windows every {row['window_stride_seconds']:g} s)"
            )
        verb = "added" if row["inserted"] else "enabled"
        click.echo(
            f"variant {row['id']} {label} {verb}" + (", now the default" if make_default else "")
        )
        if reembed:
            (added,) = query_rows(conn, EMBEDDINGS, "enqueue_variant_reembed", variant_id=row["id"])
            click.echo(
                f"enqueued {added['added']} embed jobs to re-embed every clip with a video; "
                "a running `heaters-db daemon` computes them (`heaters-db jobs` shows progress)"
            )
            return
        if not backfill:
            click.echo("no backfill: run `heaters-db embed --missing` to embed existing clips")
            return
        (added,) = query_rows(conn, EMBEDDINGS, "enqueue_variant_backfill", variant_id=row["id"])
        click.echo(
            f"enqueued {added['added']} embed jobs for existing clips lacking this variant; "
            "a running `heaters-db daemon` computes them (`heaters-db jobs` shows progress)"
        )


def _refuse_mixing_vectors(
    conn: psycopg.Connection,
    model: str,
    strategy: str,
    frames: int | None,
    window_seconds: float | None,
    stride_seconds: float | None,
    reembed: bool,
) -> None:
    """A variant's vectors must all be made one way: changing how (frames, windows) while it
    has vectors needs --reembed."""
    rows = query_rows(
        conn, EMBEDDINGS, "variant_by_name", model_name=model, generation_strategy=strategy
    )
    if not rows or reembed:
        return
    existing = rows[0]
    asked = {
        "num_frames": frames,
        "window_seconds": window_seconds,
        "window_stride_seconds": stride_seconds,
    }
    changed = {
        name: (existing[name], value)
        for name, value in asked.items()
        if value is not None and existing[name] is not None and value != existing[name]
    }
    if not changed:
        return
    (count,) = query_rows(conn, EMBEDDINGS, "variant_vector_count", variant_id=existing["id"])
    if count["vectors"]:
        change = ", ".join(f"{name} {old:g} -> {new:g}" for name, (old, new) in changed.items())
        raise HeatersError(
            f"variant {existing['id']} {model} / {strategy} has {count['vectors']} vectors made "
            f"the old way ({change}): changing it would mix two kinds of vectors under one "
            "variant (similar_clips would compare them as alike). Add --reembed to re-embed "
            "every clip with the new settings (each old vector serves until it is replaced)"
        )


@variant.command("disable")
@click.argument("model")
@click.argument("strategy", type=click.Choice(STRATEGIES))
def variant_disable(model: str, strategy: str) -> None:
    """Stop computing MODEL STRATEGY for new clips; skip its queued jobs.

    Its existing vectors stay in `embeddings` (`variant add` enables it again). The default
    variant cannot be disabled: make another one the default first (variant add ... --default).
    Nor can a variant an active or candidate projection head reads: that head keeps serving its
    mode from this variant's vectors, and new clips would get none (train a head on another
    variant first: heaters-db train --mode M --variant ID).
    """
    with connection() as conn:
        row = _find_variant(conn, model, strategy)
        if row["is_default"]:
            raise HeatersError(
                f"variant {row['id']} {model} / {strategy} is the default (similar_clips uses it); "
                "make another variant the default first: heaters-db variant add MODEL STRATEGY --default"
            )
        heads = query_rows(conn, EMBEDDINGS, "heads_on_variant", variant_id=row["id"])
        if heads:
            named = ", ".join(
                f"{h['mode']} v{h['version']} (head {h['id']}, {h['status']})" for h in heads
            )
            raise HeatersError(
                f"variant {row['id']} {model} / {strategy} is what {named} projects: disabled, "
                "new clips would get no vector of it and that mode would never find them. Train "
                "a head on another variant first (heaters-db train --mode M --variant ID)"
            )
        with conn.transaction():
            query_rows(conn, EMBEDDINGS, "variant_disable", variant_id=row["id"])
            with conn.cursor() as cur:
                cur.execute(
                    query(QUEUE, "skip_queued_variant_jobs"),
                    {"variant_id": row["id"], "reason": f"variant {model}:{strategy} disabled"},
                )
                skipped = cur.rowcount
    click.echo(
        f"variant {row['id']} {model} / {strategy} disabled; {skipped} queued jobs skipped; "
        "its existing embeddings stay"
    )


def _existing_variant(model_name: str, strategy: str) -> dict | None:
    with connection() as conn:
        rows = query_rows(
            conn, EMBEDDINGS, "variant_by_name", model_name=model_name, generation_strategy=strategy
        )
    return rows[0] if rows else None


COMMANDS = (variant,)
