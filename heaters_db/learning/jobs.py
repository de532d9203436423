"""The learning loop's jobs: train a head for a mode, gate it, store it, re-project and activate.

``train_mode`` is the whole of one training run:

1. read the mode's sorting events (views sorting_screens / sorting_triplets) up to the newest
   one, the watermark, with the base embeddings of the head's base variant (learning/data.py);
2. train a head (heads/train.py) with the shape in heaters_db_settings (head_output_dim, ...),
   fresh from the PCA and, when a head is live, also continued from it; the validation fold
   picks one (heads/capacity.py);
3. gate it on the holdout events' evaluation screens: superior to the base space, and (when a
   head is live) trained on events it was not, not measured worse and non-inferior to it
   (heads/gate.py);
4. store it (learning/store.py) as ``rejected`` with its metrics, or as ``candidate``;
5. for a candidate: re-project every clip, build the index, activate (learning/reproject.py) —
   in-process, or as a ``reproject`` job for the daemon.

The daemon calls ``handle_train_head`` / ``handle_reproject`` for claimed jobs of those kinds;
``heaters-db train --now`` and the tests call ``train_mode`` directly.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from heaters_db import devices
from heaters_db.db import one_row
from heaters_db.errors import HeatersError, JobPostponed, PermanentJobError
from heaters_db.heads.capacity import train_selected
from heaters_db.heads.evaluation import (
    common_events,
    holdout_metrics,
    neighbour_overlap,
    sample_rows,
    space_of,
    summarise,
)
from heaters_db.heads.gate import gate
from heaters_db.heads.train import TrainConfig, TrainingDataError
from heaters_db.learning import store
from heaters_db.learning.data import (
    LoadedEvents,
    NoTrainingEvents,
    latest_event_id,
    load_training_data,
    resolve_variant,
    stored_mode,
)
from heaters_db.learning.fence import Fence, hold
from heaters_db.learning.reproject import catch_up_head, reproject_head
from heaters_db.queries import query

log = logging.getLogger(__name__)

QUERIES = "learning.sql"
Connect = Callable[[], psycopg.Connection]
ACTIVATION_CHOICES = ("inline", "enqueue", "none")
TRAINING_LOCK_POLL_SECONDS = 0.5
MODE_BUSY_RETRY_SECONDS = 30.0  # a daemon job that found its mode held tries again after this
# The reason a train_head job gives the reproject job it queues for a head that passed: that
# job's activation is the gate's, checked against what serves then (reproject.stale_gate).
GATE_PASSED = "passed the held-out gate"
# head_output_dim 0 means "choose by validation"; TrainConfig needs a positive placeholder.
AUTO_OUTPUT_DIM = -1
# TrainConfig fields a train_head job's payload (or `heaters-db train`) may set.
PAYLOAD_FIELDS = ("output_dim", "hidden_dim", "max_epochs", "seed", "temperature", "learning_rate")


# What each PAYLOAD_FIELDS value must be: an integer of at least the minimum, or a positive
# number. A job row is anyone's to write: a wrong type failed deep inside training, after the
# events were loaded, and was retried job_max_attempts times.
PAYLOAD_RULES: dict[str, tuple[type, float]] = {
    "output_dim": (int, 1),
    "hidden_dim": (int, 1),
    "max_epochs": (int, 0),
    "seed": (int, 0),
    "temperature": (float, 0),
    "learning_rate": (float, 0),
}


class BadJobPayload(PermanentJobError):
    """A job's payload is not what its kind reads: dead at once, with what is wrong."""


def job_payload(job: Any) -> dict[str, Any]:
    """The job's payload as a dict of checked values (BadJobPayload otherwise)."""
    payload = getattr(job, "payload", None)
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise BadJobPayload(
            f"job {getattr(job, 'id', '?')}: payload must be a JSON object, got {payload!r}"
        )
    for name, (kind, minimum) in PAYLOAD_RULES.items():
        value = payload.get(name)
        if value is None:
            continue
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if (
            not number
            or (kind is int and not isinstance(value, int))
            or value < minimum
            or (kind is float and value == minimum)
        ):
            wanted = f"an integer of at least {minimum}" if kind is int else "a positive number"
            raise BadJobPayload(
                f"job {getattr(job, 'id', '?')}: payload {name} must be {wanted}, got {value!r}"
            )
    return payload


class TrainingSkipped(HeatersError):
    """There was nothing to train on (no usable sorting events); nothing was stored."""

    def __init__(self, reason: str, result: dict[str, Any]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.result = result


def resolve_device(device: str | None) -> str:
    """The torch device name training and re-projection use (heaters_db.devices' rule)."""
    return str(devices.resolve_device(device))


def _setting(conn: psycopg.Connection, name: str) -> str:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query(QUERIES, "setting"), {"name": name})
        return one_row(cur, "setting")["value"]


def train_config(
    conn: psycopg.Connection, overrides: dict[str, Any] | None = None, device: str = "cpu"
) -> TrainConfig:
    """TrainConfig from heaters_db_settings (head_output_dim, head_hidden_dim, head_max_epochs,
    implicit_negative_weight), with a job payload's or caller's overrides on top."""
    overrides = {
        k: v for k, v in (overrides or {}).items() if k in PAYLOAD_FIELDS and v is not None
    }
    values: dict[str, Any] = {
        # 0 = auto: the shape is chosen by the validation fold (heads/capacity.py).
        "output_dim": int(_setting(conn, "head_output_dim")) or AUTO_OUTPUT_DIM,
        "hidden_dim": int(_setting(conn, "head_hidden_dim")) or None,
        "max_epochs": int(_setting(conn, "head_max_epochs")),
        "implicit_negative_weight": float(_setting(conn, "implicit_negative_weight")),
        "device": device,
    }
    values.update(overrides)
    return TrainConfig(**values)


@dataclass
class _Run:
    """What one training run has learned so far (passed between train_mode's steps)."""

    mode: str
    active: store.HeadRecord | None
    loaded: LoadedEvents
    config: TrainConfig
    seconds: dict[str, float]
    # The live head's module when it maps this run's variant: the warm start, and the gate's
    # "live" space (loaded once for both).
    live_head: Any = None
    trained: Any = None


def _baseline(conn: psycopg.Connection, run: _Run):
    """Per-event holdout metrics of the live head (None without one) and a description of the
    space serving the mode now."""
    loaded, active = run.loaded, run.active
    if active is None:
        return None, {"kind": "base", "base_variant_id": loaded.variant.id}
    described = {"kind": "head", "head_id": active.id, "version": active.version}
    if run.live_head is not None:
        return holdout_metrics(space_of(run.live_head), loaded.data), described
    # The active head maps another variant: evaluate it on that variant's vectors; the gate then
    # compares the events both could score.
    _, head = store.load_projection_head(conn, active.id)
    other = load_training_data(
        conn, loaded.mode, resolve_variant(conn, active.base_variant_id), loaded.through_event_id
    )
    return holdout_metrics(space_of(head), other.data), described


def _load(
    conn: psycopg.Connection,
    mode: str,
    variant_id: int | None,
    overrides: dict[str, Any] | None,
    device: str,
) -> _Run:
    """Step 1: the mode's events up to the watermark, with the base vectors of the variant."""
    started = time.perf_counter()
    mode = stored_mode(conn, mode)
    active = store.active_head(conn, mode)
    if variant_id is None and active is not None:
        variant_id = active.base_variant_id
    variant = resolve_variant(conn, variant_id)
    through = latest_event_id(conn, mode)
    skipped = {"mode": mode, "trained_through_event_id": through, "base_variant_id": variant.id}
    try:
        loaded = load_training_data(conn, mode, variant, through)
    except NoTrainingEvents as exc:
        raise TrainingSkipped(str(exc), {**skipped, "reason": str(exc)}) from exc
    config = train_config(conn, overrides, device)
    live_head = None
    if active is not None and active.base_variant_id == variant.id:
        live_head = store.load_projection_head(conn, active.id)[1]
    return _Run(mode, active, loaded, config, {"load": time.perf_counter() - started}, live_head)


def _train(run: _Run) -> None:
    """Step 2: train a head: fresh, and from the live head; the validation fold chooses (and
    chooses the shape when head_output_dim is 0)."""
    started = time.perf_counter()
    try:
        run.trained = train_selected(
            run.loaded.data,
            run.config,
            auto_shape=run.config.output_dim == AUTO_OUTPUT_DIM,
            live_head=run.live_head,
        )
    except TrainingDataError as exc:
        skipped = {
            "mode": run.mode,
            "trained_through_event_id": run.loaded.through_event_id,
            "base_variant_id": run.loaded.variant.id,
            "reason": str(exc),
        }
        raise TrainingSkipped(str(exc), skipped) from exc
    run.seconds["train"] = time.perf_counter() - started


def _events_new_to_live(run: _Run) -> int | None:
    """The new head's training and validation events the live head never saw (newer than its
    watermark). Not a comparison of counts: clips deleted the documented way take their events
    out of every later training, and a count would refuse every head until it recovered."""
    if run.active is None:
        return None
    watermark = run.active.trained_through_event_id
    return sum(
        1
        for screen in run.loaded.data.screens
        if screen.split != "holdout" and screen.event_id > watermark
    )


def _evaluate(conn: psycopg.Connection, run: _Run) -> tuple[Any, dict[str, Any]]:
    """Step 3: the gate's decision and the metrics stored with the head."""
    data, head = run.loaded.data, run.trained.head
    new_metrics = holdout_metrics(space_of(head), data)
    base_metrics = holdout_metrics(space_of(None), data)
    live_metrics, baseline = _baseline(conn, run)
    if live_metrics is None:
        new_metrics, base_metrics = common_events(new_metrics, base_metrics)
    else:
        new_metrics, base_metrics, live_metrics = common_events(
            new_metrics, base_metrics, live_metrics
        )
    decision = gate(
        new_metrics,
        base_metrics,
        live_metrics,
        new_training_events=len(data.screens),
        live_training_events=None if run.active is None else run.active.training_event_count,
        events_new_to_live=_events_new_to_live(run),
        # E.g. a warm start whose best epoch was 0: restored to the live head's own weights.
        unchanged=run.trained.head.same_space_as(run.live_head),
        margin=float(_setting(conn, "gate_noninferiority_margin")),
    )
    sample = data.base_vectors[sample_rows(len(data.base_vectors))]
    overlap = {"base": neighbour_overlap(space_of(head), space_of(None), sample)}
    if run.live_head is not None:
        overlap["previous"] = neighbour_overlap(space_of(head), space_of(run.live_head), sample)
    metrics = {
        "holdout": summarise(new_metrics),
        "base": summarise(base_metrics),
        "baseline": {
            **baseline,
            **summarise(base_metrics if live_metrics is None else live_metrics),
        },
        "gate": decision.metrics,
        "knn_jaccard_at_10": overlap,
        "training": {
            **{k: v for k, v in run.trained.metrics.items() if k != "config"},
            # The head a warm start continued: the live one, the baseline (for the report).
            **(
                {"warm_start_head_id": baseline["head_id"]}
                if run.trained.metrics["start"] == "warm"
                else {}
            ),
        },
        "config": run.trained.metrics.get("config", asdict(run.config)),
        "data": run.loaded.summary(),
        "seconds": {name: round(value, 3) for name, value in run.seconds.items()},
    }
    return decision, metrics


def _summary(record: store.HeadRecord, run: _Run, decision: Any, metrics: dict) -> dict[str, Any]:
    """The train_head job's result (before what happens after the gate)."""
    return {
        "head_id": record.id,
        "mode": run.mode,
        "version": record.version,
        "status": record.status,
        "passed": decision.passed,
        "reason": decision.reason,
        "trained_through_event_id": run.loaded.through_event_id,
        "events": len(run.loaded.data.screens),
        "holdout": metrics["holdout"],
        "baseline": metrics["baseline"],
        "seconds_train": round(run.seconds["train"], 3),
    }


def train_mode(
    connect: Connect,
    mode: str,
    *,
    variant_id: int | None = None,
    overrides: dict[str, Any] | None = None,
    activation: str = "inline",
    device: str | None = "cpu",
    fence: Fence | None = None,
    exclusive: bool = False,
) -> dict[str, Any]:
    """One training run for a mode; returns a JSON-ready summary (the train_head job's result).

    ``exclusive``: first wait for other exclusive runs and the daemon's running jobs of the
    mode, and hold it (one_run_per_mode); what `train --now` does. A daemon job that finds the
    mode held is postponed (postpone_if_mode_held).

    ``activation``: 'inline' re-projects and activates a head that passed the gate here,
    'enqueue' leaves that to a reproject job, 'none' stores the candidate only.
    ``fence``: the daemon job's claim; every write commits only while it holds (learning/fence.py).
    Raises TrainingSkipped when there is nothing to train on, LeaseLost when the lease is gone.
    """
    if activation not in ACTIVATION_CHOICES:
        raise ValueError(f"activation must be one of {ACTIVATION_CHOICES}")
    device = resolve_device(device)
    with one_run_per_mode(connect, mode) if exclusive else contextlib.nullcontext():
        return _train_mode(connect, mode, variant_id, overrides, activation, device, fence)


@contextlib.contextmanager
def one_run_per_mode(connect: Connect, mode: str) -> Iterator[None]:
    """Wait until no other exclusive run of the mode (`train --now`, `heads activate`) and no
    daemon train_head / reproject job of it is in progress, and hold the mode for the block:
    two at once trained the same events, deadlocked on the activations' index builds, or both
    went live. A run that waited is then gated against whatever the first one left serving.

    Two flags, each set before the other is checked: this run takes a session advisory lock
    (on a connection of its own, polled) and then waits for the mode's running jobs; a daemon
    job is 'running' (claimed) before it checks the lock (postpone_if_mode_held). A job whose
    lease expired (its worker paused or gone) does not hold the mode: its writes are fenced."""
    with connect() as guard:
        guard.autocommit = True  # holds a session lock, never a transaction
        short = mode.removesuffix("_similarity")
        # What pg_stat_activity shows of the holder to a job postponed behind it, or to a run
        # waiting for it (mode_lock_holder): an operator can tell a paused `train --now`.
        name = f"heaters-db: holds {short} (train --now / heads activate)"[:63]
        guard.execute(query(QUERIES, "name_session"), {"name": name})
        # Polled, never a blocking pg_advisory_lock: a statement waiting on the lock holds a
        # snapshot, and the first run's CREATE INDEX CONCURRENTLY waits for every older
        # snapshot to end, which would be a deadlock the server does not detect.
        _poll(
            lambda: _try_lock(guard, mode),
            lambda: (
                f"waiting for the training run or activation of {short} in progress "
                f"({_mode_holder(guard, mode) or 'just ended'})"
            ),
            mode,
        )
        _poll(
            lambda: not _running_mode_jobs(guard, mode),
            lambda: (
                f"waiting for the daemon's job of {short} in progress ("
                + ", ".join(_running_mode_jobs(guard, mode))
                + ")"
            ),
            mode,
        )
        yield


def postpone_if_mode_held(connect: Connect, mode: str) -> None:
    """A daemon job's side of one_run_per_mode: raise JobPostponed (back to the queue, its
    attempt not spent) while a `train --now` or `heads activate` holds the mode. The job does
    not take the lock itself: a worker paused while holding it would keep it, and block the
    worker that took its lease over."""
    with connect() as conn:
        conn.autocommit = True
        if _try_lock(conn, mode):
            conn.execute(query(QUERIES, "unlock_mode"), {"mode": mode})
            return
        holder = _mode_holder(conn, mode)
    raise JobPostponed(
        f"a training run or activation of {mode.removesuffix('_similarity')} is in progress "
        f"(`train --now` or `heads activate`{'; ' + holder if holder else ''}): tried again "
        f"in {MODE_BUSY_RETRY_SECONDS:.0f} s",
        MODE_BUSY_RETRY_SECONDS,
    )


def _mode_holder(conn: psycopg.Connection, mode: str) -> str:
    """Who holds the mode, as far as this role may see ('held by pid 123, ...'); '' when no
    session does any more."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query(QUERIES, "mode_lock_holder"), {"mode": mode})
        row = cur.fetchone()
    if row is None:
        return ""
    parts = [f"pid {row['pid']}"]
    if row["application_name"]:
        parts.append(repr(row["application_name"]))
    if row["usename"]:
        parts.append(f"role {row['usename']}")
    if row["client_addr"]:
        parts.append(f"from {row['client_addr']}")
    if row["last_statement_seconds"] is not None:
        parts.append(f"its last statement {row['last_statement_seconds']} s ago")
    return "held by " + ", ".join(parts) + "; pg_terminate_backend(pid) frees it"


def _try_lock(conn: psycopg.Connection, mode: str) -> bool:
    return bool(
        one_row(conn.execute(query(QUERIES, "try_lock_mode"), {"mode": mode}), "try_lock_mode")[0]
    )


def _running_mode_jobs(conn: psycopg.Connection, mode: str) -> list[str]:
    """The mode's jobs that hold it, described ('job 12 reproject, worker host:123')."""
    with conn.cursor() as cur:
        cur.execute(query(QUERIES, "running_mode_jobs"), {"mode": mode})
        return [f"job {row[0]} {row[1]}, worker {row[2]}" for row in cur.fetchall()]


def _poll(done: Callable[[], bool], waiting_message: Callable[[], str], mode: str) -> None:
    """Poll ``done`` until it holds; log once what it waits for (asked when first logged)."""
    logged = False
    while not done():
        if not logged:
            log.info(waiting_message(), extra={"action": "train_wait", "mode": mode})
            logged = True
        time.sleep(TRAINING_LOCK_POLL_SECONDS)


def _train_mode(
    connect: Connect,
    mode: str,
    variant_id: int | None,
    overrides: dict[str, Any] | None,
    activation: str,
    device: str,
    fence: Fence | None,
) -> dict[str, Any]:
    started = time.perf_counter()
    with connect() as conn:
        run = _load(conn, mode, variant_id, overrides, device)
        _train(run)
        decision, metrics = _evaluate(conn, run)
        record = store.insert_head(
            conn,
            mode=run.mode,
            base_variant_id=run.loaded.variant.id,
            head=run.trained.head,
            status="candidate" if decision.passed else "rejected",
            trained_through_event_id=run.loaded.through_event_id,
            training_event_count=len(run.loaded.data.screens),
            metrics=metrics,
            fence=fence,
        )
    result = _summary(record, run, decision, metrics)
    if decision.passed:
        result.update(_after_gate(connect, record, activation, device, fence))
    result["seconds_total"] = round(time.perf_counter() - started, 3)
    log.info("training run finished", extra={"action": "train_mode_done", **_brief(result)})
    return store.json_ready(result)


def _after_gate(
    connect: Connect, record: store.HeadRecord, activation: str, device: str, fence: Fence | None
) -> dict[str, Any]:
    if activation == "inline":
        reprojected = reproject_head(connect, record.id, device=device, fence=fence, gated=True)
        outcome = reprojected.get("activation", {})
        if outcome.get("activated", True):
            return {"status": "active", "reprojection": reprojected}
        return {"not_activated": outcome["reason"], "reprojection": reprojected}
    if activation == "enqueue":
        return {"reproject_job_id": enqueue_reproject(connect, record, fence)}
    return {}


def enqueue_reproject(
    connect: Connect, record: store.HeadRecord, fence: Fence | None = None
) -> int | None:
    """A reproject job for the head (None when one is already pending)."""
    with connect() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        hold(conn, fence)
        cur.execute(
            query(QUERIES, "enqueue_reproject_job"),
            {"head_id": record.id, "reason": GATE_PASSED},
        )
        row = cur.fetchone()
    return None if row is None else row["job_id"]


def _brief(result: dict[str, Any]) -> dict[str, Any]:
    keys = ("head_id", "mode", "version", "status", "passed", "trained_through_event_id", "events")
    return {k: result.get(k) for k in keys}


def autocommit_factory(connect: Connect) -> Connect:
    """The learning loop holds no transaction open while it trains: autocommit connections."""

    def open_connection() -> psycopg.Connection:
        conn = connect()
        if not conn.autocommit:
            conn.rollback()
            conn.autocommit = True
        return conn

    return open_connection


def handle_train_head(connect: Connect, job: Any, settings: Any = None) -> dict[str, Any]:
    """Daemon handler for a ``train_head`` job: train, gate, store; a head that passed is
    re-projected and activated by a ``reproject`` job (enqueued here; payload
    ``{"activation": "inline"}`` does it in this job instead). No usable events: SkipJob."""
    from heaters_db.queue import SkipJob  # the job kinds sit below the worker, by the queue

    payload = job_payload(job)
    device = resolve_device(payload.get("device") or getattr(settings, "device", "auto"))
    try:
        postpone_if_mode_held(connect, job.mode)
        return train_mode(
            autocommit_factory(connect),
            job.mode,
            variant_id=getattr(job, "variant_id", None),
            overrides=payload,
            activation=payload.get("activation", "enqueue"),
            device=device,
            fence=Fence.of(job),
        )
    except TrainingSkipped as skipped:
        # The result keeps trained_through_event_id: the retrain trigger counts from there.
        raise SkipJob(skipped.reason, skipped.result) from skipped


def handle_reproject(connect: Connect, job: Any, settings: Any = None) -> dict[str, Any]:
    """Daemon handler for a ``reproject`` job: project every clip, index, activate; or, with
    payload ``catch_up`` (queued by the embeddings trigger), project only the rows an active
    head is missing or holds stale. Every write is fenced by the job's lease."""
    payload = job_payload(job)
    fence = Fence.of(job)
    if payload.get("catch_up"):
        return store.json_ready(
            catch_up_head(autocommit_factory(connect), job.projection_head_id, fence)
        )
    device = resolve_device(payload.get("device") or getattr(settings, "device", "auto"))
    # Not beside `train --now` or `heads activate` of the mode (their index builds deadlock);
    # a catch-up, above, builds nothing and waits for nothing. (A job a client queued without
    # a mode runs unguarded.)
    if job.mode is not None:
        postpone_if_mode_held(connect, job.mode)
    reprojected = reproject_head(
        autocommit_factory(connect),
        job.projection_head_id,
        activate=payload.get("activate", True),
        device=device,
        fence=fence,
        # Queued by the gate's pass (train_head), or by `heads activate` / a client.
        gated=payload.get("reason") == GATE_PASSED,
    )
    return store.json_ready(reprojected)


HANDLERS = {"train_head": handle_train_head, "reproject": handle_reproject}
