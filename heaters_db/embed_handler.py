"""The `embed` job kind for the worker: claimed batches through `EmbedPipeline`, each job fenced.

A `heaters_db.job_session.BatchKind`: each step claims a batch of embed jobs (the next batch
is claimed and decoding while the model runs on this one: `EmbedPipeline.stream`), then settles
every job of the batch:

- ok: the embedding (or a window variant's windows) and the job's done status commit in one
  fenced transaction (`JobSession.commit`); then the variant's HNSW index, once per process.
- the clip's clip_filepath changed while the job ran: requeued, nothing written.
- skipped (no trick metadata, variant disabled, no video): finish_job skipped, never retried.
- error: `fail_job` (retried with backoff, dead after max_attempts) or, for a permanent input
  error, `dead_letter_job`; a database error while writing is classified like any other
  (heaters_db.failures), a lost connection goes up to the worker.

Results are upserted on (clip_id, model_name, generation_strategy): a job run twice writes one
row.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Generator, Iterator
from contextlib import closing

import psycopg

from heaters_db.embed_jobs import EmbedPipeline
from heaters_db.embed_targets import EmbedTarget, load_targets_for_jobs, result_json
from heaters_db.embedding.embedder import EmbedResult
from heaters_db.failures import PERMANENT, classify, first_line, is_connection_lost
from heaters_db.job_session import JobSession
from heaters_db.queue import Job
from heaters_db.settings import Settings

log = logging.getLogger(__name__)

EMBED = "embed"


class EmbedHandler:
    """The embed kind: `steps(session)` for the worker; the model loads on the first batch."""

    def __init__(
        self, settings: Settings, *, device: str | None = None, batch_size: int | None = None
    ) -> None:
        self.settings = settings
        self.device = device or settings.device
        self.batch_size = batch_size or settings.batch_size
        self._pipeline: EmbedPipeline | None = None

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.close()
            self._pipeline = None

    def steps(self, session: JobSession) -> Generator[None, None, None]:
        """One claimed batch run and settled per step; ends when no embed job is claimable."""
        if self._pipeline is None:
            self._pipeline = EmbedPipeline(self.settings, self.device)
        pipeline = self._pipeline
        jobs: dict[int, Job] = {}

        def claimed() -> Iterator[list[EmbedTarget]]:
            while batch := session.claim(EMBED, self.batch_size):
                targets = load_targets_for_jobs(session.conn, [job.id for job in batch])
                for job in batch:
                    if job.id in targets:
                        jobs[job.id] = job
                    else:  # clip or variant deleted since the job was queued
                        reason = "clip or variant no longer exists"
                        session.finish(job, "skipped", {"reason": reason})
                yield [targets[job.id] for job in batch if job.id in targets]

        with closing(pipeline.stream(session.conn, claimed(), session.stopping)) as stream:
            for results in stream:
                for target, result in results:
                    assert target.job_id is not None
                    self._settle(session, pipeline, jobs.pop(target.job_id), target, result)
                yield

    def _settle(
        self,
        session: JobSession,
        pipeline: EmbedPipeline,
        job: Job,
        target: EmbedTarget,
        result: EmbedResult,
    ) -> None:
        context = {
            "job_id": job.id,
            "clip_id": target.clip_id,
            "variant": target.variant,
            "attempt": job.attempts,
        }
        if result.ok:
            written = _write(session, pipeline, job, target, result)
            if not isinstance(written, EmbedResult):
                if written == "done":
                    pipeline.ensure_index(session.conn, target)
                    seconds = result.seconds
                    log.info(
                        "embedded clip %s",
                        target.clip_id,
                        extra=context
                        | {"action": "embed", "seconds": round(sum(seconds.values()), 3)}
                        | {k: round(v, 3) for k, v in seconds.items()},
                    )
                return
            result = written  # the database refused the write: settled as that error
        if session.requeue_requested(job):  # the failure or skip was about the old file
            session.requeue(job, "clip_filepath changed while the job ran: requeued")
            return
        if result.status == "skipped":
            session.finish(job, "skipped", result_json(target, result, worker=session.worker))
            return
        # The embedder reports clip errors as results, without a Python traceback; keep at
        # least where it happened so a dead-lettered job explains itself.
        detail = result.traceback or (
            f"{result.error}\n  job {job.id} attempt {job.attempts}/{job.max_attempts}, clip "
            f"{target.clip_id} ({target.clip_filepath!r}), variant {target.variant}, "
            f"worker {session.worker}"
        )
        status = session.fail(job, result.error, detail, permanent=result.permanent)
        log.warning(
            "embed failed%s: %s",
            " (permanent: dead at once)" if result.permanent else "",
            result.error,
            extra=context | {"action": "embed_error", "status": status or "lease_lost"},
        )


def _write(
    session: JobSession,
    pipeline: EmbedPipeline,
    job: Job,
    target: EmbedTarget,
    result: EmbedResult,
) -> str | EmbedResult:
    """The fenced write: "done", "lease_lost" or "requeued", or the error result of a write
    the database refused (a lost connection is raised: the worker reconnects)."""
    started = time.perf_counter()

    def write(conn: psycopg.Connection) -> dict:
        embedding_id = pipeline.store(conn, target, result)
        # Includes the fencing lock; the commit itself is not counted.
        result.seconds["database"] = time.perf_counter() - started
        return result_json(target, result, embedding_id=embedding_id, worker=session.worker)

    try:
        return session.commit(job, write)
    except psycopg.DatabaseError as error:
        if is_connection_lost(error):
            raise
        return EmbedResult.failure(
            target.clip_id,
            error,
            result.seconds,
            message=f"writing the embedding failed: {first_line(error)}",
            traceback=traceback.format_exc(),
            permanent=classify(error) == PERMANENT,
        )
