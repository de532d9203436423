# PostgreSQL for heaters-db: Debian 12 (bookworm) packages, PL/Python (plpython3u) with numpy,
# and pgvector >= 0.8 built from Debian's source package — installed by the project's own
# docker/install-system-deps.sh, the same script `make setup` runs on the machines the tests run on.
#
# Build from the repository root:  docker build -f docker/postgres.Dockerfile -t heaters-db/postgres .
# Run:  docker run -e POSTGRES_PASSWORD=... -v heaters-pgdata:/var/lib/postgresql/data -p 5432:5432 heaters-db/postgres
FROM debian:bookworm-slim

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# A fixed uid/gid (999, as in the official postgres image) so a bind-mounted data directory can be
# chowned ahead of time; the Debian packages reuse an existing `postgres` user.
RUN groupadd --system --gid 999 postgres \
 && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql --shell /bin/bash postgres \
 && mkdir -p /var/lib/postgresql \
 && chown postgres:postgres /var/lib/postgresql

# Debian's postgresql-common creates and starts a "main" cluster on install; the entrypoint creates
# the cluster in the data volume instead, so switch that off before the server package arrives.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-common \
 && sed -ri 's/^#?\s*create_main_cluster\s*=.*$/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf \
 && grep -q '^create_main_cluster = false$' /etc/postgresql-common/createcluster.conf \
 && rm -rf /var/lib/apt/lists/*

COPY docker/install-system-deps.sh /usr/local/lib/heaters-db/install-system-deps.sh

# The project's script installs the server, plpython3u, python3-numpy and pgvector. The compilers
# and server headers it needs to build pgvector are removed again in the same layer.
RUN bash /usr/local/lib/heaters-db/install-system-deps.sh \
 && pg_major="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -n 1)" \
 && test -f "/usr/share/postgresql/${pg_major}/extension/vector.control" \
 && DEBIAN_FRONTEND=noninteractive apt-get purge -y --auto-remove build-essential dpkg-dev "postgresql-server-dev-${pg_major}" \
 && test -f "/usr/share/postgresql/${pg_major}/extension/vector.control" \
 && test -f "/usr/lib/postgresql/${pg_major}/lib/plpython3.so" \
 && python3 -c 'import numpy' \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*

# The socket directory and an empty data directory owned by postgres: a new named volume copies
# this ownership, so the entrypoint (not root) can initdb into it.
ENV PGDATA=/var/lib/postgresql/data
RUN mkdir -p /var/run/postgresql "$PGDATA" \
 && chown postgres:postgres /var/run/postgresql "$PGDATA" \
 && chmod 2775 /var/run/postgresql \
 && chmod 700 "$PGDATA"
VOLUME ["/var/lib/postgresql/data"]

COPY --chmod=755 docker/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh

# Numeric, so Kubernetes' runAsNonRoot can check it; 999 is postgres (created above).
USER 999:999
WORKDIR /var/lib/postgresql
EXPOSE 5432

# Healthy only once the server accepts TCP connections (the first-start initdb listens on the
# socket only), so `depends_on: condition: service_healthy` waits for the real server.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=6 \
  CMD ["/bin/sh", "-c", "pg_isready --quiet --host=127.0.0.1 --username=\"${POSTGRES_USER:-postgres}\" --dbname=\"${POSTGRES_DB:-${POSTGRES_USER:-postgres}}\""]

# SIGINT is PostgreSQL's "fast" shutdown: it ends sessions and stops cleanly within Docker's grace
# period, where SIGTERM ("smart") would wait for every client (the daemon) to disconnect.
STOPSIGNAL SIGINT
ENTRYPOINT ["postgres-entrypoint.sh"]
CMD ["postgres"]
