#!/usr/bin/env bash
# Entrypoint of docker/postgres.Dockerfile; runs as the `postgres` user.
#
# First start (no cluster in $PGDATA): initdb with the superuser $POSTGRES_USER (default postgres)
# and the password from $POSTGRES_PASSWORD or the file named by $POSTGRES_PASSWORD_FILE, create the
# database $POSTGRES_DB (default: the user's name), and allow password (scram-sha-256) logins from
# any address; with $HEATERS_UI_PASSWORD / $HEATERS_DAEMON_PASSWORD, the logins heaters_ui
# (heaters_sorter) and heaters_daemon (heaters_worker). Every start: run postgres in the
# foreground, listening on all interfaces.
#
# `docker run IMAGE -c shared_buffers=1GB` passes the options to postgres; any other command
# (`docker run -it IMAGE bash`) runs instead of the server.
set -euo pipefail

say() { printf '[postgres-entrypoint] %s\n' "$*" >&2; }

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"

# Debian keeps the server programs out of PATH, under /usr/lib/postgresql/<major>/bin.
pg_major="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -n 1)"
PG_BIN="/usr/lib/postgresql/${pg_major}/bin"

password() {
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    # Docker secrets end with a newline that is not part of the password.
    tr -d '\n' < "$POSTGRES_PASSWORD_FILE"
  else
    printf '%s' "${POSTGRES_PASSWORD:-}"
  fi
}

init_cluster() {
  if [ "$(id -u)" -eq 0 ]; then
    say "refusing to run as root: PostgreSQL must run as the postgres user (the image's default USER)"
    exit 1
  fi
  mkdir -p "$PGDATA"
  if [ ! -w "$PGDATA" ]; then
    say "$PGDATA is not writable by $(id -un) (uid $(id -u)): chown a bind-mounted directory to 999:999"
    exit 1
  fi
  chmod 700 "$PGDATA"

  local secret
  secret="$(password)"
  if [ -z "$secret" ]; then
    say "no cluster in $PGDATA yet, and POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) is empty:"
    say "set it; heaters-db connects with a password over the network (no trust authentication)"
    exit 1
  fi

  say "initialising a PostgreSQL ${pg_major} cluster in $PGDATA (superuser $POSTGRES_USER)"
  pwfile="$(mktemp)"  # global: the EXIT trap must still see it if initdb fails
  # The password goes to initdb through a private file, never on a command line (ps would show it).
  trap 'rm -f "$pwfile"' EXIT
  printf '%s\n' "$secret" > "$pwfile"
  # Local socket: trust, as in the official postgres image; the socket exists only inside the
  # container. TCP: scram-sha-256 passwords only.
  "$PG_BIN/initdb" --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 --data-checksums >/dev/null
  rm -f "$pwfile"
  trap - EXIT
  printf '# heaters-db image: password logins from any address (the compose network, the host).\n%s\n' \
    'host all all all scram-sha-256' >> "$PGDATA/pg_hba.conf"

  # A short private start on the socket only (no TCP, so the healthcheck stays red meanwhile).
  "$PG_BIN/pg_ctl" --pgdata="$PGDATA" --options="-c listen_addresses=''" --wait --silent start
  if [ "$POSTGRES_DB" != "postgres" ]; then
    "$PG_BIN/psql" --no-psqlrc --quiet --set=ON_ERROR_STOP=1 --username="$POSTGRES_USER" \
      --dbname=postgres --set=db="$POSTGRES_DB" <<'SQL'
CREATE DATABASE :"db";
SQL
    say "created database $POSTGRES_DB"
  fi
  create_login heaters_ui heaters_sorter "${HEATERS_UI_PASSWORD:-}"
  create_login heaters_daemon heaters_worker "${HEATERS_DAEMON_PASSWORD:-}"
  "$PG_BIN/pg_ctl" --pgdata="$PGDATA" --mode=fast --wait --silent stop
}

# create_login LOGIN GROUP PASSWORD: a login that is only a member of heaters-db's GROUP role
# (heaters_sorter: the sorting page; heaters_worker: the daemon). The group is created NOLOGIN
# here, before `heaters-db migrate` runs, which then finds it and only grants it its privileges.
# Nothing is created without a password. It reaches psql through its environment, not argv.
create_login() {
  local login="$1" group="$2" secret="$3"
  if [ -z "$secret" ]; then
    return
  fi
  HEATERS_LOGIN_PASSWORD="$secret" "$PG_BIN/psql" --no-psqlrc --quiet --set=ON_ERROR_STOP=1 \
    --username="$POSTGRES_USER" --dbname=postgres --set=login="$login" --set=grp="$group" <<'SQL'
\getenv pw HEATERS_LOGIN_PASSWORD
CREATE ROLE :"grp" NOLOGIN;
CREATE ROLE :"login" LOGIN PASSWORD :'pw' IN ROLE :"grp";
SQL
  say "created login $login (member of $group)"
}

# `IMAGE -c x=y` means `IMAGE postgres -c x=y`.
if [ "$#" -eq 0 ] || [ "${1:0:1}" = "-" ]; then
  set -- postgres "$@"
fi

if [ "$1" = "postgres" ]; then
  shift
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    init_cluster
  fi
  say "starting PostgreSQL ${pg_major}, listening on all interfaces"
  exec "$PG_BIN/postgres" -D "$PGDATA" -c listen_addresses='*' "$@"
fi

exec "$@"
