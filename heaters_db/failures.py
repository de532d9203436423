"""What a failure means for the job that met it: one of three classes, decided in one place.

- CONNECTION: the database went away (connection exception SQLSTATE class 08, admin/crash
  shutdown 57P01-57P03, a socket closed under psycopg, no server at the URL). Nothing is wrong
  with the job: the daemon reconnects to the same URL and hands the job back without spending
  an attempt.
- PERMANENT: the input can never succeed as it stands (`PermanentJobError`: an empty or
  non-video file, a missing file, an empty clip_filepath; a prerequisite the database reports
  missing, SQLSTATE 55000 such as "no default embedding variant"; a data exception, class 22,
  such as vectors of another dimension). The job is dead at once, with the reason.
- JOB: everything else (query cancel, deadlock, lock timeout, out of memory, disk full, an
  exception raised by a function, a Python error): the attempt counts, the error is kept, the
  job is retried with backoff and dead-lettered after job_max_attempts.
"""

from __future__ import annotations

from typing import Literal

import psycopg

from heaters_db.errors import DatabaseUnavailable, PermanentJobError

FailureClass = Literal["connection", "permanent", "job"]
CONNECTION: FailureClass = "connection"
PERMANENT: FailureClass = "permanent"
JOB: FailureClass = "job"

# SQLSTATEs after which the session is gone: the server shut down or crashed.
_SHUTDOWN_STATES = frozenset({"57P01", "57P02", "57P03"})
# A prerequisite is missing ("no default embedding variant", "variant has no dimension yet").
_PREREQUISITE_STATES = frozenset({"55000"})


def classify(error: BaseException) -> FailureClass:
    """The class of `error` (see the module docstring)."""
    if isinstance(error, DatabaseUnavailable):
        return CONNECTION
    if isinstance(error, PermanentJobError):
        return PERMANENT
    if isinstance(error, psycopg.Error):
        state = error.sqlstate
        if state is None:
            # Raised by psycopg itself, not sent by the server: a closed socket, a broken or
            # closed connection, a connect timeout. (Client-side programming errors carry no
            # SQLSTATE either, but they are not OperationalError/InterfaceError.)
            if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
                return CONNECTION
            return JOB
        if state.startswith("08") or state in _SHUTDOWN_STATES:
            return CONNECTION
        if state in _PREREQUISITE_STATES or state.startswith("22"):
            return PERMANENT
    return JOB


def is_connection_lost(error: BaseException) -> bool:
    return classify(error) == CONNECTION


def first_line(error: BaseException) -> str:
    """The error's first line (what a log line or last_error shows), else its type's name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
