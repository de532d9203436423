"""`heaters-db train`, `heads list | rollback | activate`, `report`: the learning loop by hand.

Normally nothing here is needed: after `retrain_every` new sorting events of a mode the database
queues a train_head job and the daemon runs it. These commands train on demand, show the head
versions, undo an activation, and report how the versions compare.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import psycopg
from psycopg.rows import dict_row

from heaters_db.db import connect, database_url
from heaters_db.errors import HeatersError
from heaters_db.queries import query
from heaters_db.settings import get_settings

QUERIES = "learning.sql"
MODE_CHOICE = click.Choice(["trick", "spot"], case_sensitive=False)
FINAL_STATUSES = ("done", "skipped", "dead")


def _factory():
    url = database_url()
    return lambda: connect(url, autocommit=True)


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@click.command()
@click.option("--mode", type=MODE_CHOICE, required=True, help="Which head to train: trick or spot.")
@click.option(
    "--now",
    is_flag=True,
    help="Train in this process (then gate, store, re-project and activate) instead of queueing "
    "a train_head job for the daemon.",
)
@click.option(
    "--wait",
    is_flag=True,
    help="After queueing, wait until the daemon has trained and gated the head and, when it "
    "passed, re-projected and activated it (its reproject job); print the same line as --now "
    "and the job's result. Exit 1 when a job died.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=3600,
    show_default=True,
    help="Seconds --wait waits at most.",
)
@click.option(
    "--variant",
    "variant_id",
    type=int,
    help="Base variant id (default: the active head's, else the default variant).",
)
@click.option(
    "--output-dim",
    type=click.IntRange(min=0),
    help="Head output dimension (default: setting head_output_dim; 0: chosen by validation).",
)
@click.option(
    "--hidden-dim",
    type=click.IntRange(min=0),
    help="Residual MLP width (default: setting head_hidden_dim).",
)
@click.option(
    "--epochs",
    "max_epochs",
    type=click.IntRange(min=0),
    help="Most epochs (default: setting head_max_epochs).",
)
@click.option("--seed", type=int, help="Training seed (default 0).")
@click.option(
    "--no-activate",
    is_flag=True,
    help="With --now: store a head that passes the gate as a candidate only (activate it later "
    "with `heaters-db heads activate ID`).",
)
def train(
    mode: str,
    now: bool,
    wait: bool,
    timeout: float,
    variant_id: int | None,
    output_dim: int | None,
    hidden_dim: int | None,
    max_epochs: int | None,
    seed: int | None,
    no_activate: bool,
) -> None:
    """Train a projection head for a mode from its sorting events.

    The new head is gated on the held-out evaluation screens: it goes live only if it beats
    the base space beyond the holdout's noise and, when a head serves the mode, is trained on
    events it was not and not measured worse than it (ties go to the newer head); otherwise it is
    stored as rejected with its metrics and the reason (`heaters-db report`). Without --now a
    train_head job is queued (one per mode at a time) and a running `heaters-db daemon` picks
    it up.
    """
    overrides = {
        "output_dim": output_dim,
        "hidden_dim": hidden_dim,
        "max_epochs": max_epochs,
        "seed": seed,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if now and wait:
        raise click.UsageError("--wait is for a queued job: --now trains here and waits anyway")
    from heaters_db.learning import data, jobs  # torch: imported only when a command needs it

    connect_new = _factory()
    if now:
        try:
            result = jobs.train_mode(
                connect_new,
                mode,
                variant_id=variant_id,
                overrides=overrides,
                activation="none" if no_activate else "inline",
                device=get_settings().device,
                exclusive=True,
            )
        except psycopg.errors.DeadlockDetected as error:
            # Beside a daemon's reproject job both build an index and activate: one gives way.
            raise click.ClickException(
                f"the activation met another one of {mode} (a daemon's reproject job?) and the "
                f"database broke the deadlock by ending this one ({error.diag.message_primary}); "
                "the new head, if stored, stays a candidate: `heaters-db heads list`, then "
                "`heads activate ID` or train again"
            ) from error
        click.echo(_head_line(result))
        _echo_json(result)
        return
    with connect_new() as conn, conn.cursor(row_factory=dict_row) as cur:
        if data.latest_event_id(conn, mode) == 0:  # refused now, as --now refuses it
            raise click.ClickException(
                f"no {data.stored_mode(conn, mode)} sorting events yet: nothing to train on"
            )
        cur.execute(
            query(QUERIES, "enqueue_train_job"),
            {"mode": mode, "reason": "requested with heaters-db train", "variant_id": variant_id},
        )
        row = cur.fetchone()
        if row["enqueued"] and overrides:
            cur.execute(
                "UPDATE pipeline_jobs SET payload = payload || %s::jsonb WHERE id = %s",
                (json.dumps(overrides), row["job_id"]),
            )
        if not row["enqueued"] and (overrides or variant_id is not None):
            # One train_head job per mode: the pending one runs as it was queued, so options
            # given now would silently not apply.
            cur.execute(query(QUERIES, "job"), {"job_id": row["job_id"]})
            pending = cur.fetchone() or {}
            raise HeatersError(
                f"train_head job {row['job_id']} is already {pending.get('status', 'pending')} "
                f"for {mode} (payload {json.dumps(pending.get('payload'))}, variant "
                f"{pending.get('variant_id') or 'default'}): the options given "
                f"({_options(overrides, variant_id)}) would not apply to it. Wait for it "
                "(heaters-db jobs), or train now with --now"
            )
    state = "queued" if row["enqueued"] else "already pending"
    click.echo(f"train_head job {row['job_id']} {state} for {mode}")
    if wait:
        click.echo(
            f"waiting up to {timeout:g} s for a `heaters-db daemon` to run it (Ctrl-C stops "
            "waiting; the job stays queued)",
            err=True,
        )
        _wait_and_report(connect_new, row["job_id"], time.monotonic() + timeout)


def _options(overrides: dict[str, Any], variant_id: int | None) -> str:
    named = dict(overrides, **({"variant": variant_id} if variant_id is not None else {}))
    return ", ".join(f"{name} {value}" for name, value in named.items())


def _head_line(result: dict[str, Any]) -> str:
    """One line per training run, the same for --now and --wait."""
    line = (
        f"{result['mode']} v{result['version']} (head {result['head_id']}): {result['status']} "
        f"- {result['reason']}"
    )
    if result.get("not_activated"):
        line += f"; not activated: {result['not_activated']}"
    return line


def _wait_and_report(connect_new, job_id: int, deadline: float) -> None:
    """Wait for the train_head job and, when its head passed the gate, for the reproject job
    that activates it; then print what --now prints. A dead job exits 1."""
    job = _wait_for_job(connect_new, job_id, deadline)
    result = job.get("result") or {}
    reproject_id = result.get("reproject_job_id")
    if job["status"] == "done" and reproject_id is not None:
        reproject = _wait_for_job(connect_new, reproject_id, deadline)
        if reproject["status"] == "dead":
            _echo_json(reproject)
            raise click.ClickException(
                f"reproject job {reproject_id} of head {result['head_id']} died: "
                f"{reproject.get('last_error')}"
            )
        with connect_new() as conn:
            active = conn.execute(
                query(QUERIES, "head_is_active"), {"head_id": result["head_id"]}
            ).fetchone()
        if active and active[0]:
            result = {**result, "status": "active"}
        activation = (reproject.get("result") or {}).get("activation") or {}
        if activation.get("activated") is False:
            result = {**result, "not_activated": activation.get("reason")}
    if job["status"] == "done" and "head_id" in result:
        click.echo(_head_line(result))
    elif job["status"] == "skipped":
        click.echo(f"train_head job {job_id} skipped: {result.get('reason', '')}")
    _echo_json({**job, "result": result} if result else job)
    if job["status"] == "dead":
        raise click.ClickException(f"train_head job {job_id} died: {job.get('last_error')}")


def _wait_for_job(connect_new, job_id: int, deadline: float) -> dict[str, Any]:
    timeout = deadline - time.monotonic()
    with connect_new() as conn, conn.cursor(row_factory=dict_row) as cur:
        while True:
            cur.execute(query(QUERIES, "job"), {"job_id": job_id})
            job = cur.fetchone()
            if job is None or job["status"] in FINAL_STATUSES:
                return job or {"id": job_id, "status": "gone"}
            if time.monotonic() > deadline:
                raise HeatersError(
                    f"job {job_id} is still {job['status']} after waiting {max(timeout, 0):.0f} s "
                    "(is a daemon running?)"
                )
            time.sleep(2)


@click.group()
def heads() -> None:
    """Projection head versions: list them, roll back, activate one."""


def _short(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@heads.command("list")
@click.option("--mode", type=MODE_CHOICE, help="Only this mode (default: both).")
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per head instead of a table."
)
def list_heads(mode: str | None, as_json: bool) -> None:
    """Every head version: status (active / candidate / retired / rejected), when it went live,
    how many events it learned from, and its holdout numbers against the space it replaced."""
    from heaters_db.learning import store

    with _factory()() as conn:
        records = store.list_heads(conn, mode)
    if as_json:
        for record in records:
            values = {k: v for k, v in record.__dict__.items() if k != "weights"}
            click.echo(json.dumps(values, default=str))
        return
    if not records:
        click.echo("no projection heads yet")
        return
    click.echo(
        f"{'id':>4} {'mode':<6} {'ver':>4} {'status':<10} {'events':>7} {'through':>8} "
        f"{'dims':>10} {'triplet':>7} {'base':>7} {'top-1':>7} {'base':>7}  activated"
    )
    for r in records:
        holdout, baseline = r.metrics.get("holdout", {}), r.metrics.get("baseline", {})
        activated = r.activated_at.strftime("%Y-%m-%d %H:%M") if r.activated_at else "-"
        click.echo(
            f"{r.id:>4} {r.mode.removesuffix('_similarity'):<6} {r.version:>4} {r.status:<10} "
            f"{r.training_event_count:>7} {r.trained_through_event_id:>8} "
            f"{f'{r.input_dim}->{r.output_dim}':>10} "
            f"{_short(holdout.get('triplet_accuracy')):>7} {_short(baseline.get('triplet_accuracy')):>7} "
            f"{_short(holdout.get('screen_top1')):>7} {_short(baseline.get('screen_top1')):>7}  {activated}"
        )


@heads.command()
@click.option(
    "--keep",
    default=2,
    show_default=True,
    type=click.IntRange(0),
    help="Retired heads of each mode that keep their projections (the newest versions).",
)
@click.option("--mode", type=MODE_CHOICE, default=None, help="Only this mode.")
def prune(keep: int, mode: str | None) -> None:
    """Free the projected rows and HNSW indexes of older retired heads (the head rows stay;
    `heads activate` on one re-projects it). Writers never wait: the index is dropped
    CONCURRENTLY."""
    from heaters_db.learning import store

    with _factory()() as conn:
        conn.autocommit = True
        pruned = store.prune_retired_heads(conn, keep, mode=mode)
    if not pruned:
        click.echo(f"nothing to prune (keeping {keep} retired head(s) per mode)")
    for head in pruned:
        click.echo(
            f"pruned head {head['id']} ({head['mode']} v{head['version']}): "
            f"{head['rows']} projected rows, index {head['index']}"
        )


@heads.command()
@click.argument("mode", type=MODE_CHOICE)
def rollback(mode: str) -> None:
    """Undo MODE's last activation: retire its active head; the head that activation replaced
    serves again, with its old results (its projections were kept). Rolling back again undoes
    the activation before; undoing the first one leaves the base space serving."""
    from heaters_db.learning import store

    with _factory()() as conn:
        result = store.rollback_head(conn, mode)
    if result["head_id"] is None:
        click.echo(
            f"{mode}: retired head {result['retired_head_id']}; the base variant serves {mode} now"
        )
    else:
        click.echo(
            f"{mode}: v{result['version']} (head {result['head_id']}) is active again; "
            f"retired head {result['retired_head_id']}"
        )


@heads.command()
@click.argument("head_id", type=int)
@click.option(
    "--force",
    is_flag=True,
    help="Activate a head the gate rejected: an operator's override, logged and recorded in the "
    "head's metrics (metrics.override) next to the gate's numbers, which are kept.",
)
@click.option("--note", help="With --force: why (kept in metrics.override.note).")
def activate(head_id: int, force: bool, note: str | None) -> None:
    """Make HEAD_ID serve its mode: a candidate is re-projected and indexed first; a retired
    head (kept rows) goes live at once. A rejected head needs --force."""
    from heaters_db.learning import jobs, store
    from heaters_db.learning.reproject import reproject_head

    if note is not None and not force:
        raise click.UsageError("--note gives the reason for --force: use them together")
    connect_new = _factory()
    override = None
    with connect_new() as conn:
        record = store.get_head(conn, head_id)
        if record.status == "active":  # as activate_head() refuses it: re-projecting is no-op work
            raise click.ClickException(
                f"head {head_id} (v{record.version}) is already active: it serves {record.mode}"
            )
        if force and record.status != "rejected":
            click.echo(
                f"warning: --force has no effect: head {head_id} is {record.status}, not rejected",
                err=True,
            )
        if record.status == "rejected":
            if not force:
                raise click.ClickException(
                    f"head {head_id} was rejected by the gate "
                    f"({record.metrics.get('gate', {}).get('reason', 'no reason recorded')}); "
                    "use --force to activate it anyway"
                )
            override = store.override_rejected_head(conn, head_id, note)
            click.echo(
                f"warning: overriding the gate for head {head_id}: {override.get('gate_reason')}",
                err=True,
            )
        if record.status == "retired":
            result = store.activate_head(conn, head_id)
    if record.status != "retired":
        with jobs.one_run_per_mode(connect_new, record.mode):  # not beside a training run
            result = reproject_head(
                connect_new, head_id, device=jobs.resolve_device(get_settings().device)
            )
    if override is not None:
        result["override"] = override
    _echo_json(result)


@click.command()
@click.option("--mode", type=MODE_CHOICE, help="Only this mode (default: both).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the PNG (default: HEATERS_HOME/reports/heads-<time>.png).",
)
def report(mode: str | None, output: Path | None) -> None:
    """Compare every head version on the current held-out sorting events.

    Per version: the chosen clip's library percentile on the evaluation screens (what the gate
    judges) and on all holdout events, triplet accuracy, screen top-1, MRR, kNN Jaccard@10 with
    the previous version and with the base space, and the numbers behind its gate decision (and
    any --force override). Prints a table and writes a PNG plot.
    """
    from heaters_db.learning.report import build_report, format_report, plot_report

    reports = build_report(_factory(), mode)
    click.echo(format_report(reports))
    if output is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        output = get_settings().home / "reports" / f"heads-{stamp}.png"
    path = plot_report(reports, output)
    click.echo(f"plot written to {path}")


COMMANDS = (train, heads, report)
