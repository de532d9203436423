"""Typed settings, read from environment variables (prefix ``HEATERS_``).

`heaters-db config` prints the values in force. Only the CLI and the daemon read settings;
library functions take what they need as arguments.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from heaters_db.errors import ConfigurationError

ENV_PREFIX = "HEATERS_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL. Falls back to DATABASE_URL, then to the embedded local cluster.",
    )
    home: Path = Field(
        default=Path(".heaters"),
        description="Directory for the embedded cluster, caches and demo data.",
    )
    media_root: Path | None = Field(
        default=None, description="Directory that heaters' clip keys (clips/x.mp4) are relative to."
    )
    s3_bucket: str | None = Field(
        default=None,
        description="Bucket for heaters' bare clip keys when they are not under media_root.",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO, R2...); unset for AWS."
    )
    cache_dir: Path | None = Field(
        default=None, description="Download cache for object-store clips (default: <home>/cache)."
    )
    model_dir: Path | None = Field(
        default=None,
        description="If <model_dir>/<model_name> exists, it is loaded instead of the hub id.",
    )
    device: str = Field(
        default="auto", description="Torch device for the daemon: auto, cpu, cuda, cuda:1."
    )
    batch_size: int = Field(default=4, ge=1, description="Clips per model call in the daemon.")
    lease_seconds: int = Field(
        default=300, ge=5, description="How long a claimed job is leased before others may take it."
    )
    embed_max_seconds: float = Field(
        default=900.0,
        gt=0,
        description="Longest an embed job may run: past it its lease is no longer renewed.",
    )
    train_head_max_seconds: float = Field(
        default=4 * 3600.0,
        gt=0,
        description="Longest a train_head job may run: past it its lease is no longer renewed.",
    )
    reproject_max_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="Longest a reproject job may run: past it its lease is no longer renewed.",
    )
    poll_seconds: float = Field(
        default=10.0, gt=0, description="Queue poll interval when no NOTIFY arrives."
    )
    sort_access_token: str | None = Field(
        default=None,
        description="When set, the sorting page (heaters-db sort) answers only requests that "
        "carry it (Authorization: Bearer, or ?token= once, then a cookie).",
    )
    log_level: str = Field(default="INFO", description="Python logging level.")

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        return log_level_name(value)

    def max_running_seconds(self, kind: str) -> float | None:
        """The maximum running time of a job kind (None for a kind without a setting)."""
        value = getattr(self, f"{kind}_max_seconds", None)
        return float(value) if value is not None else None

    @property
    def resolved_database_url(self) -> str | None:
        """HEATERS_DATABASE_URL, else DATABASE_URL, else None (use the embedded cluster)."""
        return self.database_url or os.environ.get("DATABASE_URL") or None

    @property
    def resolved_cache_dir(self) -> Path:
        return self.cache_dir or self.home / "cache"


def log_level_name(value: str) -> str:
    """A logging level's name in capitals, refused (ValueError) unless Python knows it."""
    name = str(value).strip().upper()
    if not isinstance(logging.getLevelName(name), int):
        raise ValueError(f"unknown log level {value!r} (one of {', '.join(LOG_LEVELS)})")
    return name


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings from the environment; a value that does not parse or is out of range is a
    ConfigurationError naming its environment variable (the CLI prints it as one line)."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{ENV_PREFIX}{'_'.join(str(part) for part in problem['loc']).upper()}="
            f"{problem.get('input')!r}: {problem['msg']}"
            for problem in error.errors()
        )
        raise ConfigurationError(f"bad setting: {problems}") from None
