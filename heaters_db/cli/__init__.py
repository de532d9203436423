"""`heaters-db`: the command line. Each group of commands lives in its own module."""

from __future__ import annotations

import logging
import sys

import click

from heaters_db import __version__
from heaters_db.errors import HeatersError
from heaters_db.settings import get_settings, log_level_name

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"


class _ContextFilter(logging.Filter):
    """Appends structured `extra={...}` fields as key=value, so operators can grep them."""

    STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
        "message",
        "asctime",
        "context",
    }

    def filter(self, record: logging.LogRecord) -> bool:
        extras = {k: v for k, v in record.__dict__.items() if k not in self.STANDARD}
        record.context = "".join(f" {k}={v}" for k, v in extras.items())
        return True


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class HeatersGroup(click.Group):
    """Prints HeatersError messages as one clear line instead of a traceback, and a command's
    own refusals (click.ClickException) in the same "error: ..." form; usage errors keep
    click's form, with the usage line."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except HeatersError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)
        except click.UsageError:
            raise
        except click.ClickException as exc:
            click.secho(f"error: {exc.format_message()}", fg="red", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=HeatersGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="heaters-db")
@click.option(
    "--log-level",
    default=None,
    help="DEBUG, INFO, WARNING... (default: HEATERS_LOG_LEVEL or INFO).",
)
def cli(log_level: str | None) -> None:
    """heaters-db: find clips with the same trick or at the same spot, inside PostgreSQL.

    Database: HEATERS_DATABASE_URL (else DATABASE_URL) when set, else an embedded local
    PostgreSQL under HEATERS_HOME (default ./.heaters), started on demand.
    `heaters-db config` shows every setting.
    """
    if log_level is not None:
        try:
            log_level = log_level_name(log_level)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--log-level") from None
    configure_logging(log_level or get_settings().log_level)


def _register() -> None:
    """Adds the COMMANDS of every module in this package (database.py, daemon.py, ...)."""
    import importlib
    import pkgutil

    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for command in getattr(module, "COMMANDS", ()):
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="heaters-db")
