"""One root exception for everything heaters-db raises on purpose.

Each subclass's docstring says what went wrong; the CLI prints the message and exits non-zero
instead of a traceback.
"""


class HeatersError(Exception):
    """heaters-db could not do what was asked."""


class ConfigurationError(HeatersError):
    """A setting is missing or inconsistent."""


class LocalDatabaseError(HeatersError):
    """The embedded local PostgreSQL cluster could not be created, started or stopped."""


class DatabaseUnavailable(HeatersError):
    """No database could be reached at the configured URL."""


class MigrationError(HeatersError):
    """A schema migration could not be applied or reverted."""


class PermanentJobError(HeatersError):
    """The job's input can never succeed as it stands (an empty or non-video file, a missing
    file, a missing prerequisite): the job is dead-lettered at once with this reason, not retried."""


class JobPostponed(HeatersError):
    """The job cannot start now through no fault of its own (another run holds what it needs):
    it goes back to the queue without spending an attempt and is tried again after ``seconds``."""

    def __init__(self, reason: str, seconds: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.seconds = seconds


class LeaseLost(HeatersError):
    """The job's lease is no longer this worker's (it expired and another worker may have taken
    it): the result was rolled back, not written."""
