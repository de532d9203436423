"""Alembic environment for heaters-db: raw-SQL revisions, no SQLAlchemy models.

Each revision runs in its own transaction (transaction_per_migration), so a failing revision
leaves the database at the previous one. The version table has a heaters-db name so it can never
collide with anything the heaters app or another Alembic project keeps.
"""

from alembic import context
from sqlalchemy import create_engine, pool

from heaters_db.migrations import VERSION_TABLE, sqlalchemy_url

config = context.config
url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
    "sqlalchemy.url"
)
if not url:
    raise SystemExit("no database URL: use heaters-db migrate, or alembic -x url=postgresql://...")

if context.is_offline_mode():
    raise SystemExit(
        "heaters-db migrations run online only (they inspect the existing heaters schema)"
    )

engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
with engine.connect() as connection:
    # Objects land in public, like heaters' tables; the SECURITY DEFINER functions pin the same path.
    connection.exec_driver_sql("SET search_path = public")
    connection.commit()
    context.configure(
        connection=connection,
        target_metadata=None,
        version_table=VERSION_TABLE,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
