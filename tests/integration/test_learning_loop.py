"""The learning loop end to end on a synthetic library with planted trick and spot factors.

Sorting events go in as real rows; the retrain trigger queues train_head jobs; the job handlers
train, gate, store, re-project and activate; similar_clips serves the new space. Dimensions are
small (base 64, head 32, hidden 64) and torch runs on one thread, so the file stays quick on two
shared cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psycopg
import pytest
import torch
from psycopg import sql
from psycopg.rows import dict_row

from heaters_db.daemon import Daemon
from heaters_db.db import connect
from heaters_db.heads.module import ProjectionHead
from heaters_db.heads.train import TrainConfig
from heaters_db.learning import jobs, store
from heaters_db.learning.reproject import project_batch, reproject_head
from heaters_db.queue import Queue
from heaters_db.settings import Settings
from tests.integration.conftest import wait_until
from tests.support.simulated_sorter import (
    SimulatedSorter,
    insert_clips,
    insert_embeddings,
    insert_library,
    label_recall,
    make_library,
    make_test_variant,
    neighbours,
    sort_round,
)

BASE_DIM, HEAD_DIM, HIDDEN_DIM = 64, 32, 64
TRAIN_SETTINGS = {
    "holdout_percent": "30",
    "head_output_dim": str(HEAD_DIM),
    "head_hidden_dim": str(HIDDEN_DIM),
    "head_max_epochs": "150",
    # Only the rounds below trigger training; the trigger test sets its own value.
    "retrain_every": "150",
}
ROUND_EVENTS = 160
# The trick rounds go through the product path: a share of evaluation screens the gate judges.
# The spot round and the random-answer test send no provenance (an old client): the gate falls
# back to every holdout event.
EVALUATION_SHARE = 0.25


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_database(pg_server, template: str) -> tuple[str, object]:
    dbname = f"test_learning_{uuid.uuid4().hex[:10]}"
    janitor = pg_server.janitor(dbname, template_dbname=template)
    janitor.init()
    return pg_server.url(dbname), janitor


def prepare(conn: psycopg.Connection, settings: dict[str, str] = TRAIN_SETTINGS):
    for name, value in settings.items():
        conn.execute("UPDATE heaters_db_settings SET value = %s WHERE name = %s", (value, name))
    make_test_variant(conn, BASE_DIM)
    library = make_library(dim=BASE_DIM)
    insert_library(conn, library)
    return library


def factory(url: str):
    return lambda: connect(url, autocommit=True)


def run_learning_jobs(url: str) -> list[dict]:
    """Run the daemon until the train_head / reproject queue is drained; the jobs it ended."""
    ended = "SELECT id, kind, status, result FROM pipeline_jobs WHERE kind <> 'embed' AND finished_at IS NOT NULL ORDER BY id"
    with connect(url, autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
        before = {row["id"] for row in cur.execute(ended).fetchall()}
    daemon = Daemon(Settings(device="cpu"), url, kinds=["train_head", "reproject"], once=True)
    assert daemon.run() == 0
    with connect(url, autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
        return [row for row in cur.execute(ended).fetchall() if row["id"] not in before]


def head_status(conn: psycopg.Connection, mode: str) -> list[tuple[int, str]]:
    return conn.execute(
        "SELECT version, status FROM projection_heads WHERE mode = sorting_mode(%s) ORDER BY version",
        (mode,),
    ).fetchall()


class Trained:
    """The module's database after the trick and spot rounds, with what was measured on the way."""

    def __init__(self, url, library, recall, results, trick_head_id, spot_head_id):
        self.url = url
        self.library = library
        self.recall = recall
        self.results = results
        self.trick_head_id = trick_head_id
        self.spot_head_id = spot_head_id


def worker_login(conn: psycopg.Connection, url: str) -> tuple[str, str]:
    """(role, URL) of a new login that is only a member of heaters_worker: the daemon's
    training, gate, re-projection, index build and activation run with no more than that."""
    role, password = f"worker_login_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    conn.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE heaters_worker").format(
            sql.Identifier(role), sql.Literal(password)
        )
    )
    info = psycopg.conninfo.conninfo_to_dict(url)
    return role, f"postgresql://{role}:{password}@{info['host']}:{info['port']}/{info['dbname']}"


@pytest.fixture(scope="module")
def trained(pg_server, migrated_template) -> Iterator[Trained]:
    url, janitor = make_database(pg_server, migrated_template)
    role = None
    try:
        with connect(url, autocommit=True) as conn:
            role, worker_url = worker_login(conn, url)
            library = prepare(conn)
            queries = library.clip_ids[::4]
            recall = {
                ("base", label): label_recall(conn, library, "trick", label, queries=queries)
                for label in ("trick", "spot")
            }
            results = []
            # Trick: two rounds; the retrain trigger queues the job, the handlers run it.
            for round_number in range(2):
                sort_round(
                    conn,
                    library,
                    SimulatedSorter(library, "trick", seed=round_number),
                    ROUND_EVENTS,
                    seed=10 + round_number,
                    evaluation_share=EVALUATION_SHARE,
                )
                results += run_learning_jobs(worker_url)
            # Spot: one larger round, trained by hand (what `heaters-db train --now` runs).
            sort_round(conn, library, SimulatedSorter(library, "spot", seed=5), 200, seed=20)
            conn.execute("UPDATE pipeline_jobs SET status = 'skipped' WHERE status = 'queued'")
            results.append(jobs.train_mode(factory(worker_url), "spot"))
            for space in ("trick", "spot"):
                for label in ("trick", "spot"):
                    recall[(space, label)] = label_recall(
                        conn, library, space, label, queries=queries
                    )
            trick_head = conn.execute("SELECT active_head_id('trick')").fetchone()[0]
            spot_head = conn.execute("SELECT active_head_id('spot')").fetchone()[0]
        yield Trained(url, library, recall, results, trick_head, spot_head)
    finally:
        janitor.drop()
        if role is not None:
            with connect(pg_server.url("postgres"), autocommit=True) as admin:
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


# ---- the loop learns -------------------------------------------------------------------------
def test_trick_head_beats_the_base_space(trained: Trained) -> None:
    assert trained.trick_head_id is not None, trained.results
    base, head = trained.recall[("base", "trick")], trained.recall[("trick", "trick")]
    assert head > base + 0.2, (base, head)
    ran = [(job["kind"], job["status"]) for job in trained.results if "kind" in job]
    assert ran[0] == ("train_head", "done"), trained.results
    # Each head that passed was re-projected and went live, retiring the one before it (a good
    # live head does not freeze the mode: the rule's two answers are in tests/unit/test_gate.py).
    activations = [
        job["result"]["activation"]
        for job in trained.results
        if job.get("kind") == "reproject" and job["status"] == "done"
    ]
    assert activations and activations[-1]["head_id"] == trained.trick_head_id, trained.results
    for earlier, later in zip(activations, activations[1:], strict=False):
        assert later["retired_head_id"] == earlier["head_id"], activations
    with connect(trained.url, autocommit=True) as conn:
        gate = store.get_head(conn, trained.trick_head_id).metrics["gate"]
    assert gate["judged_on"] == "evaluation screens", gate
    assert gate["deciding_metric"] == "judged_rank_score", gate
    if gate["vs_live"] is not None:
        against_live = gate["vs_live"][gate["deciding_metric"]]
        assert against_live["difference"] >= 0 and against_live["interval"][0] > -gate["margin"]


def test_spot_head_learns_spot_not_trick(trained: Trained) -> None:
    assert trained.spot_head_id is not None, trained.results[-1]
    recall = trained.recall
    assert recall[("spot", "spot")] > recall[("base", "spot")] + 0.15, recall
    assert recall[("spot", "trick")] <= recall[("base", "trick")] + 0.02, recall


def test_stored_metrics_and_watermarks(trained: Trained) -> None:
    with connect(trained.url, autocommit=True) as conn:
        head = store.get_head(conn, trained.trick_head_id)
        newest = conn.execute(
            "SELECT max(id) FROM clip_sorting_events WHERE sorting_mode = 'trick_similarity'"
        ).fetchone()[0]
    assert head.status == "active" and head.activated_at is not None
    assert 0 < head.trained_through_event_id <= newest
    assert head.metrics["gate"]["passed"] is True
    # What went live beat the base space on one of the superiority metrics (the judged rank
    # score or the library percentile, each at its Bonferroni level), and the stored numbers
    # show it (triplet accuracy over every holdout candidate is no longer one: it counts
    # equally-right clips as negatives).
    gate = head.metrics["gate"]
    shown = [test for test in gate["vs_base_tests"].values() if test["beats_base"]]
    assert shown, gate
    assert all(t["new"] > t["baseline"] and t["interval"][0] > 0 for t in shown), gate
    # A head trained while another served the mode also tried continuing that one (the warm
    # start, heads/capacity.py); the stored metrics say which start won and from which head.
    with connect(trained.url, autocommit=True) as conn:
        heads = store.list_heads(conn, "trick_similarity")
    for later in heads:
        if (later.metrics.get("gate") or {}).get("vs_live") is None:
            continue
        training = later.metrics["training"]
        assert [t["start"] for t in training["capacity"]["tried"]] == ["pca", "warm"], training
        if training["start"] == "warm":
            earlier = {h.id: h.version for h in heads if h.version < later.version}
            assert training["warm_start_head_id"] in earlier, training
    assert head.architecture == {
        "type": "pca_residual_mlp",
        "input_dim": BASE_DIM,
        "output_dim": HEAD_DIM,
        "hidden_dim": HIDDEN_DIM,
        "activation": "gelu_tanh",
    }


# ---- storage: SQL apply_head == torch ---------------------------------------------------------
def test_apply_head_matches_torch_on_stored_weights(trained: Trained) -> None:
    with connect(trained.url, autocommit=True) as conn:
        record, head = store.load_projection_head(conn, trained.trick_head_id)
        rows = conn.execute(
            "SELECT e.clip_id, e.embedding, apply_head(%s, e.embedding), p.embedding "
            "FROM embeddings e JOIN projected_embeddings p "
            "  ON p.clip_id = e.clip_id AND p.projection_head_id = %s "
            "WHERE e.model_name = %s ORDER BY e.clip_id LIMIT 40",
            (record.id, record.id, record.model_name),
        ).fetchall()
    base = np.stack([r[1].to_numpy() for r in rows])
    in_sql = np.stack([r[2].to_numpy() for r in rows])
    copied = np.stack([r[3].to_numpy() for r in rows])
    in_torch = project_batch(head, base)
    assert np.abs(in_sql - in_torch).max() <= 1e-5
    assert np.abs(copied - in_torch).max() <= 1e-5


# ---- new clips are projected at once ----------------------------------------------------------
def test_clip_embedded_after_activation_is_searchable_at_once(trained: Trained) -> None:
    library = trained.library
    rng = np.random.default_rng(99)
    with connect(trained.url, autocommit=True) as conn:
        clip_id = int(insert_clips(conn, 1, prefix="late")[0])
        insert_embeddings(conn, np.array([clip_id]), library.make_vector(3, 2, rng)[None, :])
        projected = conn.execute(
            "SELECT projection_head_id FROM projected_embeddings WHERE clip_id = %s ORDER BY 1",
            (clip_id,),
        ).fetchall()
        found = neighbours(conn, [clip_id], "trick")[clip_id]
    assert [r[0] for r in projected] == sorted([trained.trick_head_id, trained.spot_head_id])
    assert len(found) == 10
    same_trick = np.mean([library.tricks[library.row_of(c)] == 3 for c in found])
    assert same_trick >= 0.6, same_trick


# ---- rollback ---------------------------------------------------------------------------------
def test_rollback_restores_the_previous_heads_results_exactly(trained: Trained) -> None:
    library = trained.library
    queries = library.clip_ids[::37]
    with connect(trained.url, autocommit=True) as conn:
        before = trick_results(conn, queries)
        # A new version goes live without the gate (the untrained PCA head): results change.
        newer = insert_pca_candidate(conn, library, metrics={"note": "test"})
        reproject_head(factory(trained.url), newer.id)
        during = trick_results(conn, queries)
        result = store.rollback_head(conn, "trick")
        after = trick_results(conn, queries)
        assert store.get_head(conn, newer.id).status == "retired"
        with pytest.raises(store.HeadStateError, match="only a candidate or a retired head"):
            store.activate_head(conn, trained.trick_head_id)
    assert during != before
    assert result["head_id"] == trained.trick_head_id and result["retired_head_id"] == newer.id
    assert after == before


def trick_results(conn: psycopg.Connection, queries: np.ndarray) -> list[tuple]:
    """(query, neighbour, distance) rows of similar_clips(q, 'trick') for each query, in order."""
    return conn.execute(
        "SELECT q, s.clip_id, s.distance FROM unnest(%s::integer[]) q, "
        "LATERAL similar_clips(q, 'trick') s ORDER BY q, s.rank",
        (queries.tolist(),),
    ).fetchall()


# A candidate's metrics as the gate leaves them when it was compared with the base space.
GATED_ON_BASE = {"baseline": {"kind": "base"}}


def sort_and_skip_jobs(
    conn: psycopg.Connection, library, sorter: SimulatedSorter, events: int, seed: int
) -> list[int]:
    """A round of sorting with evaluation screens, its queued jobs (the retrain trigger's) set
    aside: the test runs what it wants itself. The events' ids."""
    ids = sort_round(conn, library, sorter, events, seed=seed, evaluation_share=EVALUATION_SHARE)
    conn.execute("UPDATE pipeline_jobs SET status = 'skipped' WHERE status = 'queued'")
    return ids


def insert_pca_candidate(conn: psycopg.Connection, library, metrics: dict) -> store.HeadRecord:
    """The untrained PCA head of the library's base space, stored as a trick candidate."""
    pca = ProjectionHead(BASE_DIM, HEAD_DIM, HIDDEN_DIM).pca_init(library.vectors)
    variant = conn.execute("SELECT (default_variant()).id").fetchone()[0]
    return store.insert_head(
        conn,
        mode="trick_similarity",
        base_variant_id=variant,
        head=pca,
        status="candidate",
        trained_through_event_id=0,
        training_event_count=0,
        metrics=metrics,
    )


# ---- the gate ---------------------------------------------------------------------------------
def test_gate_rejects_a_head_trained_on_random_answers(pg_server, migrated_template) -> None:
    url, janitor = make_database(pg_server, migrated_template)
    try:
        with connect(url, autocommit=True) as conn:
            library = prepare(conn)
            # An active head to protect: the untrained PCA head, activated by hand.
            live = insert_pca_candidate(conn, library, metrics={})
            reproject_head(factory(url), live.id)
            queries = library.clip_ids[::23]
            before = neighbours(conn, queries, "trick")
            sort_round(
                conn, library, SimulatedSorter(library, "trick", random_answers=True), 200, seed=3
            )
            result = jobs.train_mode(factory(url), "trick")
            rejected = store.get_head(conn, result["head_id"])
            after = neighbours(conn, queries, "trick")
            active = conn.execute("SELECT active_head_id('trick')").fetchone()[0]
            # An operator may override the gate, but only saying so (--force), and it is kept.
            env = {**os.environ, "HEATERS_DATABASE_URL": url, "OMP_NUM_THREADS": "1"}
            command = [str(Path(sys.executable).parent / "heaters-db"), "heads", "activate"]
            refused = subprocess.run(
                [*command, str(rejected.id)], env=env, capture_output=True, text=True, timeout=120
            )
            still_active = conn.execute("SELECT active_head_id('trick')").fetchone()[0]
            forced = subprocess.run(
                [*command, str(rejected.id), "--force", "--note", "test override"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            overridden = store.get_head(conn, rejected.id)
            again = subprocess.run(
                [*command, str(rejected.id)], env=env, capture_output=True, text=True, timeout=120
            )
    finally:
        janitor.drop()
    assert refused.returncode != 0 and "use --force" in refused.stderr, refused.stderr
    assert still_active == live.id
    assert forced.returncode == 0, forced.stderr
    assert "overriding the gate" in forced.stderr
    assert overridden.status == "active"
    assert overridden.metrics["gate"] == rejected.metrics["gate"]  # the gate's numbers are kept
    assert overridden.metrics["override"]["forced"] is True
    assert overridden.metrics["override"]["note"] == "test override"
    assert overridden.metrics["override"]["gate_reason"] == rejected.metrics["gate"]["reason"]
    # Activating the head that serves is refused, as activate_head() refuses it (it re-projected
    # every clip for nothing).
    assert again.returncode == 1 and "is already active" in again.stderr, again.stderr
    assert result["passed"] is False and rejected.status == "rejected", result
    assert rejected.metrics["gate"]["passed"] is False
    assert (
        rejected.metrics["holdout"]["events"] > 0 and rejected.metrics["baseline"]["kind"] == "head"
    )
    assert active == live.id
    assert after == before


def test_a_warm_start_left_at_the_live_head_is_not_served_again(
    pg_server, migrated_template
) -> None:
    """With no epochs to train, the warm start is the live head itself and wins on validation
    over the untrained PCA candidate: the gate refuses it as unchanged, and the live head and
    its projections stay as they were (no new version goes live, nothing is re-projected)."""
    url, janitor = make_database(pg_server, migrated_template)
    try:
        with connect(url, autocommit=True) as conn:
            library = prepare(conn)
            sort_and_skip_jobs(
                conn, library, SimulatedSorter(library, "trick", seed=7), 260, seed=30
            )
            first = jobs.train_mode(factory(url), "trick", activation="none")
            if not first["passed"]:
                store.override_rejected_head(conn, first["head_id"], "test: a live head to keep")
            reproject_head(factory(url), first["head_id"])
            # A few screens sorted since: the retrain has something new to learn from, so that
            # it is the unchanged weights the gate refuses, not the lack of new events.
            sort_and_skip_jobs(
                conn, library, SimulatedSorter(library, "trick", seed=8), 20, seed=31
            )
            queries = library.clip_ids[::23]
            before = neighbours(conn, queries, "trick")
            again = jobs.train_mode(factory(url), "trick", overrides={"max_epochs": 0})
            unchanged = store.get_head(conn, again["head_id"])
            after = neighbours(conn, queries, "trick")
            active = conn.execute("SELECT active_head_id('trick')").fetchone()[0]
    finally:
        janitor.drop()
    training = unchanged.metrics["training"]
    assert training["validation_screens"] >= 20, training
    assert training["start"] == "warm" and training["best_epoch"] == 0, training["capacity"]
    assert training["warm_start_head_id"] == first["head_id"]
    assert again["passed"] is False and unchanged.status == "rejected"
    assert "the live head unchanged" in again["reason"], again["reason"]
    assert unchanged.metrics["gate"]["events_new_to_live"] > 0
    assert unchanged.metrics["gate"]["unchanged"] is True
    assert active == first["head_id"] and after == before


def test_after_clips_are_deleted_a_head_with_newer_events_is_still_judged(
    pg_server, migrated_template
) -> None:
    """Deleting clips the documented way takes their events out of every later training: the
    next head learns from fewer events than the live head did. It has still seen events the
    live head had not, and the gate judges it on its screens (it used to refuse every head as
    "not more than the live head's" until the count recovered); with nothing new since the live
    head, a retrain is refused as before."""
    url, janitor = make_database(pg_server, migrated_template)
    try:
        with connect(url, autocommit=True) as conn:
            library = prepare(conn)
            trick = SimulatedSorter(library, "trick", seed=7)
            first_ids = sort_and_skip_jobs(conn, library, trick, 220, seed=30)
            first = jobs.train_mode(factory(url), "trick", activation="none")
            if not first["passed"]:
                store.override_rejected_head(conn, first["head_id"], "test: a live head to keep")
            reproject_head(factory(url), first["head_id"])
            newer_ids = sort_and_skip_jobs(conn, library, trick, 40, seed=31)
            # The anchors of the first 100 events go, clips no newer event names.
            newer_clips = {
                int(c)
                for (c,) in conn.execute(
                    "SELECT unnest(anchor_clip_id || candidate_clip_ids) FROM clip_sorting_events "
                    "WHERE id = ANY(%s)",
                    (newer_ids,),
                ).fetchall()
            }
            gone = [
                int(c)
                for (c,) in conn.execute(
                    "SELECT DISTINCT anchor_clip_id FROM clip_sorting_events WHERE id = ANY(%s)",
                    (first_ids[:100],),
                ).fetchall()
                if int(c) not in newer_clips
            ]
            with conn.transaction():
                conn.execute("SET LOCAL heaters_db.allow_clip_delete = 'on'")
                conn.execute("DELETE FROM clips WHERE id = ANY(%s)", (gone,))
            second = jobs.train_mode(factory(url), "trick", activation="none")
            gate_metrics = store.get_head(conn, second["head_id"]).metrics["gate"]
            live = store.get_head(conn, first["head_id"])
            # Nothing new since the head that now serves: refused, whatever the screens say.
            # The second head serves whichever way its gate went (on another CPU its screens
            # may measure it worse), so that the retrain below has nothing new to learn from.
            if not second["passed"]:
                store.override_rejected_head(conn, second["head_id"], "test: the newest live")
            reproject_head(factory(url), second["head_id"])
            again = jobs.train_mode(factory(url), "trick", activation="none")
    finally:
        janitor.drop()
    assert second["events"] < live.training_event_count, (second["events"], live)
    assert gate_metrics["live_training_events"] == live.training_event_count
    assert 0 < gate_metrics["events_new_to_live"] <= len(newer_ids)
    assert "trained on no event" not in second["reason"], second["reason"]
    assert "not more than" not in second["reason"], second["reason"]
    assert again["passed"] is False
    assert again["reason"].startswith("trained on no event the live head was not"), again


# ---- the retrain trigger ----------------------------------------------------------------------
def train_jobs(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT mode, status, payload ->> 'events_through' FROM pipeline_jobs "
        "WHERE kind = 'train_head' ORDER BY id"
    ).fetchall()


def test_retrain_trigger_enqueues_one_job_per_retrain_every_events(
    conn: psycopg.Connection, db_url: str
) -> None:
    library = prepare(conn, {"retrain_every": "5"})
    sorter = SimulatedSorter(library, "trick")
    listener = psycopg.connect(db_url, autocommit=True)  # info.dsn leaves the password out
    listener.execute("LISTEN heaters_db_jobs")
    try:
        sort_round(conn, library, sorter, 4, seed=1, batch=1)
        assert train_jobs(conn) == []
        (fifth,) = sort_round(conn, library, sorter, 1, seed=2, batch=1)
        assert train_jobs(conn) == [("trick_similarity", "queued", str(fifth))]
        notes = [n.payload for n in listener.notifies(timeout=1, stop_after=1)]
        assert any('"train_head"' in note for note in notes), notes
        sort_round(conn, library, sorter, 6, seed=3, batch=1)  # pending: no second job
        sort_round(conn, library, SimulatedSorter(library, "spot"), 4, seed=4, batch=1)
        assert len(train_jobs(conn)) == 1  # spot counts its own events
    finally:
        listener.close()
    # The job ran and was rejected: its head's watermark holds further jobs back until
    # retrain_every more events arrive (a rejected training does not re-trigger every event).
    newest = conn.execute(
        "SELECT max(id) FROM clip_sorting_events WHERE sorting_mode = 'trick_similarity'"
    ).fetchone()[0]
    conn.execute("UPDATE pipeline_jobs SET status = 'done' WHERE kind = 'train_head'")
    store.insert_head(
        conn,
        mode="trick_similarity",
        base_variant_id=conn.execute("SELECT (default_variant()).id").fetchone()[0],
        head=ProjectionHead(BASE_DIM, HEAD_DIM, HIDDEN_DIM),
        status="rejected",
        trained_through_event_id=newest,
        training_event_count=11,
        metrics={},
    )
    sort_round(conn, library, sorter, 4, seed=5, batch=1)
    assert len(train_jobs(conn)) == 1
    sort_round(conn, library, sorter, 1, seed=6, batch=1)
    assert [status for _, status, _ in train_jobs(conn)] == ["done", "queued"]
    # A skipped job (nothing to train on) also moves the watermark.
    conn.execute("UPDATE pipeline_jobs SET status = 'skipped' WHERE status = 'queued'")
    sort_round(conn, library, sorter, 4, seed=7, batch=1)
    assert len(train_jobs(conn)) == 2


def test_train_job_without_events_is_skipped(conn: psycopg.Connection, db_url: str) -> None:
    prepare(conn, {})
    job_id, enqueued = conn.execute("SELECT * FROM enqueue_train_job('spot', 'test')").fetchone()
    assert enqueued
    assert conn.execute("SELECT * FROM enqueue_train_job('spot', 'again')").fetchone() == (
        job_id,
        False,
    )
    (job,) = run_learning_jobs(db_url)
    assert job["id"] == job_id and job["status"] == "skipped", job
    assert job["result"]["reason"] == "no spot_similarity sorting events yet"
    assert job["result"]["trained_through_event_id"] == 0


def test_a_new_database_trains_with_the_library_defaults(conn: psycopg.Connection) -> None:
    """What train_head() does without a config is what a new database's settings ask for."""
    config, defaults = jobs.train_config(conn), TrainConfig()
    assert config.max_epochs == defaults.max_epochs
    assert config.implicit_negative_weight == defaults.implicit_negative_weight


# ---- the command line -------------------------------------------------------------------------
def test_heads_list_and_report_commands(trained: Trained, tmp_path: Path) -> None:
    env = {**os.environ, "HEATERS_DATABASE_URL": trained.url, "OMP_NUM_THREADS": "1"}
    command = [str(Path(sys.executable).parent / "heaters-db")]
    listed = subprocess.run(
        [*command, "heads", "list"], env=env, capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    assert "trick" in listed.stdout and "spot" in listed.stdout and "active" in listed.stdout
    output = tmp_path / "report.png"
    report = subprocess.run(
        [*command, "report", "--output", str(output)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert report.returncode == 0, report.stderr
    assert output.is_file() and output.stat().st_size > 1000
    assert str(output) in report.stdout
    assert "jaccard" in report.stdout.lower()
    assert (
        " from " in report.stdout and " pca " in report.stdout
    )  # where each head's training began
    # The numbers behind each gate decision, on the evaluation screens.
    assert "evaluation screens" in report.stdout and "vs_base judged_rank_score" in report.stdout
    queued = [
        subprocess.run(
            [*command, "train", "--mode", "spot", *options],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        for options in (["--epochs", "5"], [], ["--epochs", "7"])
    ]
    assert [q.returncode for q in queued] == [0, 0, 1], queued[0].stderr
    assert "queued for spot" in queued[0].stdout and "already pending" in queued[1].stdout
    # Options for a mode whose job is pending would not apply to it: said, not dropped.
    assert "is already queued for spot" in queued[2].stderr
    assert "the options given (max_epochs 7) would not apply" in queued[2].stderr
    with connect(trained.url, autocommit=True) as conn:
        payload = conn.execute(
            "SELECT payload FROM pipeline_jobs WHERE kind = 'train_head' AND status = 'queued'"
        ).fetchone()[0]
    assert payload["max_epochs"] == 5 and "events_through" in payload


def test_train_wait_prints_what_now_prints_and_a_dead_job_exits_1(
    conn: psycopg.Connection, db_url: str
) -> None:
    """`train --wait` waits for the daemon's train_head job and, when the head passed, for the
    reproject job that activates it; then it prints --now's line, with the head's status."""
    # No retrain trigger: the only train_head job is the one `train --wait` queues.
    library = prepare(conn, {**TRAIN_SETTINGS, "retrain_every": "10000"})
    env = {**os.environ, "HEATERS_DATABASE_URL": db_url, "OMP_NUM_THREADS": "1"}
    command = [str(Path(sys.executable).parent / "heaters-db"), "train", "--mode", "spot"]
    # Nothing sorted yet: refused at once, as --now refuses it, not a job the daemon skips.
    nothing = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert nothing.returncode == 1, nothing.stdout
    assert "no spot_similarity sorting events yet: nothing to train on" in nothing.stderr
    assert (
        conn.execute("SELECT count(*) FROM pipeline_jobs WHERE kind = 'train_head'").fetchone()[0]
        == 0
    )
    # The spot round of the module's database: its head passes the gate.
    sort_round(conn, library, SimulatedSorter(library, "spot", seed=5), 200, seed=20)

    def start_waiting() -> tuple[subprocess.Popen, str]:
        waiting = subprocess.Popen(
            [*command, "--wait", "--timeout", "300"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert waiting.stdout is not None
        queued = waiting.stdout.readline()  # the job is in the queue once this is printed
        assert "queued for spot" in queued, (queued, waiting.stderr and waiting.stderr.read())
        return waiting, queued

    waiting, _ = start_waiting()
    run_learning_jobs(db_url)
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    # Passed, re-projected by its reproject job and live: --wait says "active", as --now does.
    assert head_status(conn, "spot") == [(1, "active")]
    assert "spot_similarity v1 (head " in out and "): active - beats the base space" in out, out

    # A job that dies: the waiting command says so on stderr and exits 1.
    waiting, _ = start_waiting()
    conn.execute(
        "UPDATE pipeline_jobs SET status = 'dead', last_error = 'the head did not fit' "
        "WHERE kind = 'train_head' AND status = 'queued'"
    )
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 1, (out, err)
    assert "died: the head did not fit" in err, err


# ---- activation after the gate ---------------------------------------------------------------
def test_a_queued_activation_waits_for_nothing_newer_to_have_gone_live(
    pg_server, migrated_template
) -> None:
    """A reproject job the gate's pass queued activates its candidate only while what it was
    gated against still serves: a queued v3 had replaced a v4 that went live meanwhile, and
    silently undone an operator's rollback. `heads activate` by hand is not held back."""
    url, janitor = make_database(pg_server, migrated_template)
    try:
        with connect(url, autocommit=True) as conn:
            library = prepare(conn)
            conn.execute("UPDATE pipeline_jobs SET status = 'skipped' WHERE status = 'queued'")
            first = insert_pca_candidate(conn, library, metrics=GATED_ON_BASE)
            second = insert_pca_candidate(conn, library, metrics=GATED_ON_BASE)
            for record in (first, second):
                assert jobs.enqueue_reproject(factory(url), record) is not None
            ended = {row["result"]["head_id"]: row for row in run_learning_jobs(url)}
            # The first goes live; the second was gated against the base space, which no
            # longer serves: it stays a candidate and its job says why.
            assert conn.execute("SELECT active_head_id('trick')").fetchone()[0] == first.id
            assert store.get_head(conn, second.id).status == "candidate"
            activation = ended[second.id]["result"]["activation"]
            assert activation["activated"] is False
            assert "gated against the base space, but trick v1" in activation["reason"]

            # Gated against the first, queued, then the operator rolls the first back.
            third = insert_pca_candidate(
                conn, library, metrics={"baseline": {"kind": "head", "head_id": first.id}}
            )
            jobs.enqueue_reproject(factory(url), third)
            store.rollback_head(conn, "trick")
            (ended,) = run_learning_jobs(url)
            assert conn.execute("SELECT active_head_id('trick')").fetchone()[0] is None
            assert store.get_head(conn, third.id).status == "candidate"
            assert "the base space serves the mode now" in ended["result"]["activation"]["reason"]

            # An operator's activation of the same candidate is theirs to make.
            reproject_head(factory(url), second.id)
            assert conn.execute("SELECT active_head_id('trick')").fetchone()[0] == second.id
    finally:
        janitor.drop()


def test_the_gate_still_holding_is_checked_under_the_activation_lock(
    pg_server, migrated_template
) -> None:
    """The check that what the candidate was gated against still serves is made in the
    activation's own transaction, under the mode's lock: an activation that committed while the
    gated one waited for that lock is not undone by it (the check used to run just before)."""
    url, janitor = make_database(pg_server, migrated_template)
    try:
        with connect(url, autocommit=True) as conn, connect(url) as other:
            library = prepare(conn)
            conn.execute("UPDATE pipeline_jobs SET status = 'skipped' WHERE status = 'queued'")
            gated = insert_pca_candidate(conn, library, metrics=GATED_ON_BASE)
            rival = insert_pca_candidate(conn, library, metrics=GATED_ON_BASE)
            reproject_head(factory(url), gated.id, activate=False)  # its rows and index exist
            # An operator's activation of the rival holds the mode's lock, not yet committed.
            other.execute(
                "SELECT pg_advisory_xact_lock(hashtext('heaters_db.activate_head'), "
                "hashtext('trick_similarity'))"
            )
            with ThreadPoolExecutor(max_workers=1) as pool:
                waiting = pool.submit(reproject_head, factory(url), gated.id, gated=True)
                wait_until(
                    lambda: (
                        waiting.done()
                        or conn.execute(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                        ).fetchone()[0]
                    ),
                    what="the gated activation waiting for the mode's lock",
                )
                other.execute("SELECT activate_head(%s)", (rival.id,))
                other.commit()
                result = waiting.result(timeout=300)
            active = conn.execute("SELECT active_head_id('trick')").fetchone()[0]
            status = store.get_head(conn, gated.id).status
    finally:
        janitor.drop()
    assert active == rival.id
    assert status == "candidate"
    assert result["activation"]["activated"] is False, result["activation"]
    assert (
        "gated against the base space, but trick v2 (#2) serves" in result["activation"]["reason"]
    )


def test_two_training_runs_of_a_mode_at_once_run_one_after_the_other(
    pg_server, migrated_template
) -> None:
    """Two `train --now` at once trained the same events side by side: a deadlock on the
    activation's index build (a raw traceback and a stray candidate), or two identical heads both
    gone live. The second now waits, and is gated against what the first left serving."""
    url, janitor = make_database(pg_server, migrated_template)
    try:
        with connect(url, autocommit=True) as conn:
            library = prepare(conn)
            sorter = SimulatedSorter(library, "trick", seed=3)
            sort_and_skip_jobs(conn, library, sorter, 200, seed=31)
            with ThreadPoolExecutor(max_workers=2) as pool:
                runs = [
                    pool.submit(jobs.train_mode, factory(url), "trick", exclusive=True)
                    for _ in range(2)
                ]  # what two `train --now` run
                results = [run.result(timeout=600) for run in runs]  # neither raised
            first, second = sorted(results, key=lambda result: result["head_id"])
            later = store.get_head(conn, second["head_id"])
            activations = conn.execute(
                "SELECT count(*) FROM projection_head_activations"
            ).fetchone()[0]
            active = conn.execute("SELECT active_head_id('trick')").fetchone()[0]
    finally:
        janitor.drop()
    if first["status"] == "active":
        assert later.metrics["baseline"]["kind"] == "head"
        assert later.metrics["baseline"]["head_id"] == first["head_id"]
        assert second["passed"] is False  # the same events: not trained on more
        assert active == first["head_id"] and activations == 1
    else:  # the first was refused: the second met the base space too
        assert later.metrics["baseline"]["kind"] == "base"
        assert activations <= 1


def test_a_daemon_job_and_train_now_of_a_mode_take_turns(
    pg_server, migrated_template, caplog
) -> None:
    """A daemon's reproject (or train_head) job that finds `train --now` / `heads activate`
    holding the mode goes back to the queue, its attempt not spent, and runs once the mode is
    free; an exclusive run waits for the mode's job running under a live lease, and not for
    one whose lease expired (a paused worker: its writes are fenced)."""
    url, janitor = make_database(pg_server, migrated_template)
    try:
        with connect(url, autocommit=True) as conn:
            library = prepare(conn)
            conn.execute("UPDATE pipeline_jobs SET status = 'skipped' WHERE status = 'queued'")
            first = insert_pca_candidate(conn, library, metrics=GATED_ON_BASE)
            job_id = jobs.enqueue_reproject(factory(url), first)
            with jobs.one_run_per_mode(factory(url), "trick"):  # what `train --now` holds
                assert run_learning_jobs(url) == []  # postponed, not ended
                postponed = conn.execute(
                    "SELECT status, attempts, last_error, run_after > now() FROM pipeline_jobs "
                    "WHERE id = %s",
                    (job_id,),
                ).fetchone()
            assert postponed[:2] == ("queued", 0), postponed
            assert "a training run or activation of trick is in progress" in postponed[2]
            # It names the session that holds the mode, so a paused `train --now` can be found.
            assert "held by pid " in postponed[2], postponed[2]
            assert "'heaters-db: holds trick (train --now / heads activate)'" in postponed[2]
            assert postponed[3] is True
            conn.execute("UPDATE pipeline_jobs SET run_after = now() WHERE id = %s", (job_id,))
            (ended,) = run_learning_jobs(url)
            assert (ended["id"], ended["status"]) == (job_id, "done")
            assert conn.execute("SELECT active_head_id('trick')").fetchone()[0] == first.id

            # A worker runs the mode's next job: an exclusive run waits for it.
            second = insert_pca_candidate(conn, library, metrics=GATED_ON_BASE)
            running_id = jobs.enqueue_reproject(factory(url), second)
            (claimed,) = Queue(conn, "paused-worker", 60).claim(["reproject"], 1)
            assert claimed.id == running_id
            entered = threading.Event()

            def exclusive_run() -> None:
                with jobs.one_run_per_mode(factory(url), "trick"):
                    entered.set()

            with caplog.at_level("INFO", logger="heaters_db.learning.jobs"):
                waiter = threading.Thread(target=exclusive_run)
                waiter.start()
                wait_until(
                    lambda: (
                        f"waiting for the daemon's job of trick in progress (job {running_id} "
                        "reproject, worker paused-worker)" in caplog.text
                    ),
                    30,
                    what="the exclusive run to wait for the running job",
                )
                assert not entered.is_set()
                # The worker is paused past its lease: the mode is free.
                conn.execute(
                    "UPDATE pipeline_jobs SET lease_expires_at = now() - interval '1 second' "
                    "WHERE id = %s",
                    (running_id,),
                )
                waiter.join(30)
            assert entered.is_set()
    finally:
        janitor.drop()
