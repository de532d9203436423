"""`heaters-db embed`, `jobs` and `variant ...`: embeddings, the queue, and which variants to compute."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
import psycopg
from psycopg.rows import dict_row
from tqdm import tqdm

from heaters_db.db import connect, database_url
from heaters_db.errors import HeatersError
from heaters_db.queries import query
from heaters_db.settings import get_settings

if TYPE_CHECKING:  # heaters_db.embed_jobs imports torch: only `embed --clip` needs it
    from heaters_db.embed_jobs import EmbedTarget, Outcome

STRATEGIES = ("video_full_clip", "video_centered_64", "video_trick_window", "video_moment_windows")
WINDOWS = "video_moment_windows"
# heaters_db.embedding.windows' defaults (not imported: it pulls in torch)
DEFAULT_WINDOW_SECONDS, DEFAULT_STRIDE_SECONDS, DEFAULT_WINDOW_FRAMES = 1.5, 0.5, 16
EMBEDDINGS = "embeddings.sql"
QUEUE = "queue.sql"


class UnknownVariant(HeatersError):
    """No embedding variant matches what was named."""


class UnknownClip(HeatersError):
    """No clip has the id that was given."""


@contextmanager
def _connection() -> Iterator[psycopg.Connection]:
    with connect(database_url(), autocommit=True) as conn:
        yield conn


def _rows(conn: psycopg.Connection, file: str, name: str, **params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query(file, name), params)
        return cur.fetchall() if cur.description else []


def _format(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[_format(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _json_default(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


# ---- variants ------------------------------------------------------------------------------
def _find_variant(conn: psycopg.Connection, model_name: str, strategy: str) -> dict[str, Any]:
    rows = _rows(
        conn, EMBEDDINGS, "variant_by_name", model_name=model_name, generation_strategy=strategy
    )
    if not rows:
        raise UnknownVariant(
            f"no embedding variant {model_name} / {strategy}; `heaters-db variant list` shows them"
        )
    return rows[0]


def _variant_ids(conn: psycopg.Connection, specs: Sequence[str]) -> list[int]:
    """`--variant` values: an id, or MODEL:STRATEGY."""
    ids = []
    for spec in specs:
        if spec.isdigit():
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
    with _connection() as conn:
        rows = _rows(conn, EMBEDDINGS, "variant_list")
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=_json_default))
        return
    columns = ["id", "model_name", "generation_strategy", "num_frames", "dim", "is_default",
               "enabled", "window_seconds", "window_stride_seconds", "embeddings",
               "pending_jobs"]  # fmt: skip
    click.echo(_table(rows, columns))


@variant.command("add")
@click.argument("model")
@click.argument("strategy", type=click.Choice(STRATEGIES))
@click.option(
    "--frames",
    type=click.IntRange(min=2),
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
    help=f"video_moment_windows: seconds between window starts (default {DEFAULT_STRIDE_SECONDS} s).",
)
@click.option("--default", "make_default", is_flag=True, help="Make it the default variant.")
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
    """
    if strategy == WINDOWS:
        if make_default:
            raise click.BadParameter(
                "a window variant serves similar_moments, not similar_clips", param_hint="--default"
            )
        is_new = not _rows_exist(model, strategy)
        if is_new:
            frames = frames or DEFAULT_WINDOW_FRAMES
            window_seconds = window_seconds or DEFAULT_WINDOW_SECONDS
            stride_seconds = stride_seconds or DEFAULT_STRIDE_SECONDS
    elif window_seconds is not None or stride_seconds is not None:
        raise click.BadParameter(
            f"only for {WINDOWS}", param_hint="--window-seconds/--stride-seconds"
        )
    if frames is not None and frames % 2:
        raise click.BadParameter(
            "must be even (V-JEPA 2 reads frames in pairs)", param_hint="--frames"
        )
    with _connection() as conn:
        with conn.transaction():
            (row,) = _rows(
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
                _rows(conn, EMBEDDINGS, "variant_clear_default", variant_id=row["id"])
                _rows(conn, EMBEDDINGS, "variant_set_default", variant_id=row["id"])
        label = f"{row['model_name']}:{row['generation_strategy']}:{row['num_frames']}"
        if row["window_seconds"] is not None:
            label += (
                f" ({row['window_seconds']:g} s windows every {row['window_stride_seconds']:g} s)"
            )
        verb = "added" if row["inserted"] else "enabled"
        click.echo(
            f"variant {row['id']} {label} {verb}" + (", now the default" if make_default else "")
        )
        if not backfill:
            click.echo("no backfill: run `heaters-db embed --missing` to embed existing clips")
            return
        (added,) = _rows(conn, EMBEDDINGS, "enqueue_variant_backfill", variant_id=row["id"])
        click.echo(
            f"enqueued {added['added']} embed jobs for existing clips lacking this variant; "
            "a running `heaters-db daemon` computes them (`heaters-db jobs` shows progress)"
        )


@variant.command("disable")
@click.argument("model")
@click.argument("strategy", type=click.Choice(STRATEGIES))
def variant_disable(model: str, strategy: str) -> None:
    """Stop computing MODEL STRATEGY for new clips; skip its queued jobs.

    Its existing vectors stay in `embeddings` (`variant add` enables it again). The default
    variant cannot be disabled: make another one the default first (variant add ... --default).
    """
    with _connection() as conn:
        row = _find_variant(conn, model, strategy)
        if row["is_default"]:
            raise HeatersError(
                f"variant {row['id']} {model} / {strategy} is the default (similar_clips uses it); "
                "make another variant the default first: heaters-db variant add MODEL STRATEGY --default"
            )
        with conn.transaction():
            _rows(conn, EMBEDDINGS, "variant_disable", variant_id=row["id"])
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


def _rows_exist(model_name: str, strategy: str) -> bool:
    with _connection() as conn:
        return bool(
            _rows(conn, EMBEDDINGS, "variant_by_name", model_name=model_name,
                  generation_strategy=strategy)
        )  # fmt: skip


# ---- embed ---------------------------------------------------------------------------------
def _enqueue(conn: psycopg.Connection, clip_ids: list[int], only_missing: bool) -> int:
    if not clip_ids:
        return 0
    (row,) = _rows(
        conn, EMBEDDINGS, "enqueue_embed_jobs", clip_ids=clip_ids, only_missing=only_missing
    )
    return int(row["added"])


def _describe(outcome: Outcome) -> str:
    target = outcome.target
    head = f"clip {target.clip_id} {target.variant}"
    if outcome.status == "ok":
        assert outcome.embedding is not None
        seconds = sum(outcome.seconds.values())
        return f"{head}: embedding {outcome.embedding_id} ({outcome.embedding.shape[-1]}-d) in {seconds:.2f} s"
    if outcome.status == "skipped":
        return f"{head}: skipped ({outcome.message})"
    return f"{head}: FAILED {outcome.error}"


@click.command()
@click.option(
    "--missing",
    is_flag=True,
    help="Enqueue an embed job for every clip (with a video) lacking an enabled variant.",
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
    with _connection() as conn:
        if missing:
            ids = [r["id"] for r in _rows(conn, EMBEDDINGS, "clips_missing_embeddings")]
            added = _enqueue(conn, ids, only_missing=True)
            click.echo(
                f"{len(ids)} clips lack an embedding of an enabled variant; enqueued {added} "
                "new embed jobs (pending ones are not duplicated); a running "
                "`heaters-db daemon` computes them"
            )
            return
        variant_ids = _variant_ids(conn, variant_specs) if variant_specs else None
        failed = _embed_now(conn, list(clip_ids), variant_ids, device)
    if failed:
        sys.exit(1)


def _targets(
    conn: psycopg.Connection, clip_id: int, variant_ids: list[int] | None
) -> list[EmbedTarget]:
    from heaters_db.embed_jobs import load_targets_for_clip

    if not _rows(conn, EMBEDDINGS, "clip_exists", clip_id=clip_id):
        raise UnknownClip(f"no clip with id {clip_id}")
    targets = load_targets_for_clip(conn, clip_id, variant_ids)
    if not targets:
        raise UnknownVariant("no variant to compute: none is enabled (heaters-db variant add ...)")
    return targets


def _embed_now(
    conn: psycopg.Connection, clip_ids: list[int], variant_ids: list[int] | None, device: str | None
) -> int:
    """Embed the clips in-process (decode of clip i+1 overlaps the model on clip i)."""
    from heaters_db.embed_jobs import EmbedPipeline, hide_model_loading_bars

    hide_model_loading_bars()
    failed = 0
    with EmbedPipeline(get_settings(), device) as pipeline:
        bar = tqdm(total=len(clip_ids), unit="clip", disable=len(clip_ids) < 2, file=sys.stderr)
        pending = pipeline.submit(conn, _targets(conn, clip_ids[0], variant_ids))
        for position in range(len(clip_ids)):
            current = pending
            current.wait()
            if position + 1 < len(clip_ids):
                pending = pipeline.submit(conn, _targets(conn, clip_ids[position + 1], variant_ids))
            for outcome in pipeline.run(current):
                if outcome.status == "ok":
                    with conn.transaction():
                        pipeline.store(conn, outcome)
                    pipeline.ensure_index(conn, outcome.target)
                elif outcome.status == "error":
                    failed += 1
                tqdm.write(_describe(outcome), file=sys.stdout)
            bar.update(1)
        bar.close()
    return failed


# ---- jobs ----------------------------------------------------------------------------------
@click.command()
@click.option("--errors", "error_limit", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many recent errors to show.")  # fmt: skip
@click.option("--dead", is_flag=True, help="Only dead-lettered jobs in the error list.")
@click.option("--traceback", "tracebacks", is_flag=True, help="Print each error's traceback.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (status, running, errors).")
def jobs(error_limit: int, dead: bool, tracebacks: bool, as_json: bool) -> None:
    """Queue health: counts per kind and status, running leases, recent errors.

    \b
    status: queued (waiting, maybe until run_after after a failed attempt), running (leased by
    a daemon; expired_leases counts leases whose daemon stopped renewing them — the next claim
    requeues them), done, skipped (nothing to do, e.g. no trick metadata), dead (failed
    job_max_attempts times; error and traceback kept). Requeue a dead job with SQL:
    UPDATE pipeline_jobs SET status = 'queued', attempts = 0, run_after = now() WHERE id = ...;
    """
    with _connection() as conn:
        status = _rows(conn, QUEUE, "queue_status")
        running = _rows(conn, QUEUE, "running_leases", limit=50)
        errors = _rows(
            conn, QUEUE, "recent_errors", status="dead" if dead else None, limit=error_limit
        )
    if as_json:
        payload = {"status": status, "running": running, "errors": errors}
        click.echo(json.dumps(payload, indent=2, default=_json_default))
        return
    click.echo("queue")
    click.echo(_table(status, ["kind", "status", "jobs", "oldest_inserted_at", "next_run_after",
                               "expired_leases", "workers"]) if status else "  (empty)")  # fmt: skip
    click.echo("\nrunning")
    click.echo(_table(running, ["job_id", "kind", "clip_id", "model_name", "generation_strategy",
                                "attempts", "lease_owner", "lease_expires_at", "expired"])
               if running else "  (none)")  # fmt: skip
    click.echo("\nrecent errors")
    if not errors:
        click.echo("  (none)")
    for row in errors:
        where = (
            f"clip {row['clip_id']} ({row['clip_filepath']})"
            if row["clip_id"]
            else row["mode"] or ""
        )
        when = (
            f"retry at {_format(row['run_after'])}"
            if row["status"] == "queued"
            else f"at {_format(row['updated_at'])}"
        )
        click.echo(
            f"job {row['job_id']} {row['kind']} {row['status']} attempt {row['attempts']}/"
            f"{row['max_attempts']} {where} {when}"
        )
        click.echo(f"  {row['last_error']}")
        if tracebacks and row["last_traceback"]:
            click.echo("  " + row["last_traceback"].rstrip().replace("\n", "\n  "))


COMMANDS = (embed, jobs, variant)
