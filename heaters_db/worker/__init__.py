"""The job worker: a kind-agnostic loop over an explicit mapping kind -> handler.

Layers: db -> queue (Job, Queue, JobLease, Handler, SkipJob) -> job_session (BatchKind,
JobSession) -> job kinds (heaters_db.embed_handler, heaters_db.learning.jobs) -> worker.
`heaters_db.daemon` puts the standard kinds together; nothing below the worker imports it.

- `loop`: `Worker` (claim -> run -> settle, reconnects, signals, shutdown).
- `connection`: its connection, the wait for NOTIFY, and the rule for a connection lost
  while a job ran.
"""

from heaters_db.worker.loop import Worker

__all__ = ["Worker"]
