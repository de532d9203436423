#!/usr/bin/env bash
# Installs the PostgreSQL pieces heaters-db needs, only where missing:
#   PostgreSQL server, PL/Python (plpython3u), server headers, numpy for PL/Python,
#   and pgvector >= 0.8 (Debian 12 has no package: built from Debian's own source package).
# Idempotent: prints what it checks, and does nothing when everything is there.
# Used by `make setup` and by docker/postgres.Dockerfile, so the image is what the tests exercise.
set -euo pipefail

say() { printf '[system-deps] %s\n' "$*"; }

if [ ! -r /etc/debian_version ]; then
  say "This is not a Debian-family system. Install by hand:"
  say "  PostgreSQL >= 15 server, PL/Python 3 (plpython3u), numpy for the server's python3,"
  say "  and pgvector >= 0.8; or use the Postgres image in docker/ (docker compose -f docker/compose.yaml up)."
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    say "Not root and no sudo: cannot install system packages."; exit 1; fi
fi

# Pick the installed PostgreSQL major version (newest), or install the distribution's default.
# Empty, with status 0, when none is installed: under `set -e -o pipefail` a failing listing of a
# missing directory would end the script silently on a fresh machine (or a fresh Docker image).
pg_major() {
  [ -d /usr/lib/postgresql ] || return 0
  find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -n 1
}
PG_MAJOR="${PG_MAJOR:-$(pg_major)}"

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    say "apt-get update"
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ -z "$PG_MAJOR" ]; then
  apt_install postgresql postgresql-contrib
  PG_MAJOR="$(pg_major)"
fi
PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"
PG_CONFIG="${PG_BIN}/pg_config"
say "PostgreSQL ${PG_MAJOR} at ${PG_BIN}"

missing=()
dpkg -s "postgresql-plpython3-${PG_MAJOR}" >/dev/null 2>&1 || missing+=("postgresql-plpython3-${PG_MAJOR}")
dpkg -s "postgresql-server-dev-${PG_MAJOR}" >/dev/null 2>&1 || missing+=("postgresql-server-dev-${PG_MAJOR}")
dpkg -s python3-numpy >/dev/null 2>&1 || missing+=(python3-numpy)
if [ "${#missing[@]}" -gt 0 ]; then
  apt_install "${missing[@]}"
else
  say "plpython3u, server headers and python3-numpy are installed"
fi

pgvector_version() {
  local control
  control="$("$PG_CONFIG" --sharedir)/extension/vector.control"
  [ -f "$control" ] && sed -n "s/^default_version = '\(.*\)'/\1/p" "$control"
}

version_at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]; }

have="$(pgvector_version || true)"
if [ -n "$have" ] && version_at_least "$have" "0.8.0"; then
  say "pgvector ${have} is installed"
  exit 0
fi

if apt-cache show "postgresql-${PG_MAJOR}-pgvector" >/dev/null 2>&1; then
  apt_install "postgresql-${PG_MAJOR}-pgvector"
  have="$(pgvector_version || true)"
  if [ -n "$have" ] && version_at_least "$have" "0.8.0"; then
    say "pgvector ${have} installed from the distribution"
    exit 0
  fi
fi

# No (recent enough) package: build Debian's source package. A private sources list keeps the
# system's apt configuration untouched.
say "building pgvector from Debian's source package (trixie)"
apt_install build-essential dpkg-dev
work="$(mktemp -d)"
trap '$SUDO rm -rf "$work"' EXIT
# apt downloads as the unprivileged _apt user: it must reach the lists (mktemp's 0700 would not
# let it) and write the source files, else apt warns "Download is performed unsandboxed as root".
chmod 755 "$work"
mkdir -p "$work/lists/partial" "$work/download"
if id _apt >/dev/null 2>&1; then $SUDO chown _apt "$work/download"; fi
echo "deb-src http://deb.debian.org/debian trixie main" > "$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
          -o "Dir::State::Lists=$work/lists")
$SUDO apt-get "${apt_opts[@]}" update -qq
(cd "$work/download" && $SUDO apt-get "${apt_opts[@]}" source --download-only pgvector >/dev/null)
orig=("$work"/download/pgvector_*.orig.tar.*)
say "unpacking ${orig[0]##*/}"
tar -C "$work" -xf "${orig[0]}"
src="$(find "$work" -maxdepth 1 -type d -name 'pgvector-*' | head -n 1)"
# OPTFLAGS="": no -march=native, so the library also runs on other CPUs than the build's (the
# Docker image is built once and run anywhere); pgvector picks its SIMD code at run time.
make -C "$src" -s PG_CONFIG="$PG_CONFIG" with_llvm=no OPTFLAGS="" >/dev/null
$SUDO make -C "$src" -s PG_CONFIG="$PG_CONFIG" with_llvm=no OPTFLAGS="" install >/dev/null
say "pgvector $(pgvector_version) installed"
