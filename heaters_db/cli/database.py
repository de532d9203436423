"""`heaters-db db ...`, `migrate`, `config`: the database and its schema."""

from __future__ import annotations

import json

import click

from heaters_db import migrations
from heaters_db.db import database_url, redact
from heaters_db.localdb import LocalCluster
from heaters_db.settings import Settings, get_settings


@click.group()
def db() -> None:
    """The embedded local PostgreSQL (for development and the demo).

    It lives under HEATERS_HOME (default ./.heaters), listens on 127.0.0.1 only, and runs as the
    `postgres` user when started by root. Not used when HEATERS_DATABASE_URL / DATABASE_URL is set.
    """


def _cluster() -> LocalCluster:
    return LocalCluster(get_settings().home)


@db.command()
def up() -> None:
    """Create (first time) and start the local cluster; print its URL."""
    click.echo(_cluster().up())


@db.command()
def down() -> None:
    """Stop the local cluster (its data stays)."""
    stopped = _cluster().down()
    click.echo("stopped" if stopped else "not running")


@db.command()
def status() -> None:
    """Show where the local cluster lives and whether it runs (JSON)."""
    click.echo(json.dumps(_cluster().status(), indent=2))


@db.command()
def url() -> None:
    """Print the URL every command uses (the configured one, else the local cluster's)."""
    click.echo(database_url(get_settings(), start_local=False))


@click.command()
@click.argument("revision", default="head")
@click.option(
    "--check",
    is_flag=True,
    help="Report what migrate REVISION would do (revisions to apply or undo; at head also the "
    "functions/views/triggers/grants that differ from sql/) and change nothing; exit status 1 "
    "when there is something to do.",
)
@click.option(
    "--drop-data",
    is_flag=True,
    help="Let a downgrade delete what it must: sorting events (past 0005), projection heads "
    "(0006), video embeddings (0002), event provenance (0013), moment embeddings (0015), head "
    "activation history (0027), the tables heaters-db created (base). Without it such a "
    "downgrade is refused, naming the rows, and nothing changes.",
)
def migrate(revision: str, check: bool, drop_data: bool) -> None:
    """Bring the schema to REVISION (default: head).

    Two steps: the Alembic revisions not applied yet (run-once changes to tables), then, at
    head, every function, view, trigger and grant re-applied from sql/ and plpython/ — so a
    function changed by hand, or left behind by an older release, is put back as the files say.
    It prints what changed; at an up-to-date head that is "nothing to change".

    Works on an empty database (creates heaters-compatible source_videos, clips, embeddings) and
    on an existing heaters database (leaves its tables and rows intact; extends the
    generation_strategy_must_be_valid constraint). `heaters-db migrate base` removes everything
    heaters-db added and restores the original constraint. Needs a role that may create
    extensions (vector, plpython3u) the first time.

    A downgrade (REVISION older than the database's) that would delete rows nothing can
    recompute, sorting events first, is refused unless --drop-data is given.
    """
    url = database_url()
    if check:
        steps, drift = migrations.check(url, revision)
        for step in steps:
            click.echo(step)
        for change in drift:
            click.echo(f"{change} (would be re-applied)")
        if steps or drift:
            raise SystemExit(1)
        at = migrations.current_revision(url)
        click.echo(
            f"{redact(url)} is at revision {at}, no drift"
            if revision == "head"
            else f"{redact(url)} is at revision {at}: nothing to do"
        )
        return
    changes = migrations.migrate(url, revision, drop_data=drop_data)
    for change in changes:
        click.echo(str(change))
    if revision == "head" and not changes:
        click.echo("functions, views, triggers and grants: nothing to change")
    click.echo(f"{redact(url)} is at revision {migrations.current_revision(url)}")


@click.command()
def config() -> None:
    """Show the settings in force and the environment variable for each."""
    settings = get_settings()
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if name == "database_url":
            value = settings.resolved_database_url
            value = redact(value) if value else "(embedded local cluster)"
        click.echo(f"HEATERS_{name.upper():<16} = {value}")
        click.echo(f"    {field.description}")


COMMANDS = (db, migrate, config)
