"""`heaters-db jobs`: queue health (counts, running leases, recent errors)."""

from __future__ import annotations

import json

import click
import psycopg

from heaters_db.cli.output import QUEUE, connection, format_value, json_default, query_rows, table


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
    job_max_attempts times; error and traceback kept). Run a dead job again once its cause is
    fixed: heaters-db requeue JOB_ID.
    """
    with connection() as conn:
        status = query_rows(conn, QUEUE, "queue_status")
        running = query_rows(conn, QUEUE, "running_leases", limit=50)
        errors = query_rows(
            conn, QUEUE, "recent_errors", status="dead" if dead else None, limit=error_limit
        )
    if as_json:
        payload = {"status": status, "running": running, "errors": errors}
        click.echo(json.dumps(payload, indent=2, default=json_default))
        return
    click.echo("queue")
    click.echo(table(status, ["kind", "status", "jobs", "oldest_inserted_at", "next_run_after",
                               "expired_leases", "workers"]) if status else "  (empty)")  # fmt: skip
    click.echo("\nrunning")
    click.echo(table(running, ["job_id", "kind", "clip_id", "model_name", "generation_strategy",
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
            f"retry at {format_value(row['run_after'])}"
            if row["status"] == "queued"
            else f"at {format_value(row['updated_at'])}"
        )
        click.echo(
            f"job {row['job_id']} {row['kind']} {row['status']} attempt {row['attempts']}/"
            f"{row['max_attempts']} {where} {when}"
        )
        click.echo(f"  {row['last_error']}")
        if tracebacks and row["last_traceback"]:
            click.echo("  " + row["last_traceback"].rstrip().replace("\n", "\n  "))


@click.command()
@click.argument("job_ids", nargs=-1, type=click.IntRange(min=1), required=True)
def requeue(job_ids: tuple[int, ...]) -> None:
    """Run dead (or skipped) jobs again, from their first attempt.

    \b
    For a job that died on a cause since fixed (a file restored, a daemon's disk freed): it is
    queued again with its attempts reset, and a running daemon picks it up. Its last error stays
    in `heaters-db jobs` until the next attempt. A job already queued, running or done is left
    alone; so is a dead job whose work a newer queued or running job already does (an embed of
    the same clip and variant, a training of the same mode): the message names it. Exit status
    1 when any job given was not requeued.
    """
    not_requeued = 0
    with connection() as conn:
        for job_id in job_ids:
            try:
                with conn.transaction():
                    rows = query_rows(conn, QUEUE, "requeue_job", job_id=job_id)
            except psycopg.errors.UniqueViolation as error:
                not_requeued += 1
                click.echo(
                    f"job {job_id} not requeued: a queued or running job already does the same "
                    f"work ({error.diag.message_detail}); `heaters-db jobs` shows it"
                )
                continue
            if rows:
                click.echo(f"job {job_id} ({rows[0]['kind']}) requeued")
                continue
            not_requeued += 1
            state = query_rows(conn, QUEUE, "job_state", job_id=job_id)
            click.echo(
                f"job {job_id} not requeued: it is {state[0]['status']}"
                if state
                else f"job {job_id} not requeued: no such job"
            )
    if not_requeued:
        raise SystemExit(1)


COMMANDS = (jobs, requeue)
