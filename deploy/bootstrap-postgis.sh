#!/usr/bin/env bash
# Make a local PostgreSQL 15 + PostGIS 3 ready for gridgov. Idempotent: safe to run twice,
# and it never drops anything. Reads GRIDGOV_DB__HOST, __PORT, __USER, __NAME (and __SUPERUSER) or the defaults.
set -euo pipefail

PGHOST="${GRIDGOV_DB__HOST:-127.0.0.1}"
PGPORT="${GRIDGOV_DB__PORT:-5432}"
PGSUPER="${GRIDGOV_DB__SUPERUSER:-postgres}"
APP_ROLE="${GRIDGOV_DB__USER:-gridgov}"
APP_DB="${GRIDGOV_DB__NAME:-gridgov}"
PG_MAJOR="${PG_MAJOR:-15}"

say() { printf '\033[1;34m[bootstrap]\033[0m %s\n' "$*"; }
export PGOPTIONS="-c client_min_messages=warning"
psql_super() { psql -h "$PGHOST" -p "$PGPORT" -U "$PGSUPER" -v ON_ERROR_STOP=1 -qtAX "$@"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root for: $*"; return 1; fi
}

# 1. PostGIS packages (the server's extension files), from Debian's registry when missing.
if [ ! -f "/usr/share/postgresql/${PG_MAJOR}/extension/postgis.control" ]; then
  say "installing postgresql-${PG_MAJOR}-postgis-3 (apt)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-${PG_MAJOR}-postgis-3" >/dev/null
fi

# GDAL command line tools (ogr2ogr/ogrinfo) are used by tests and benchmarks to read our output.
if ! command -v ogr2ogr >/dev/null 2>&1; then
  say "installing gdal-bin (apt)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gdal-bin >/dev/null
fi

# 2. The cluster must be up.
if ! pg_isready -h "$PGHOST" -p "$PGPORT" -q; then
  say "starting the local PostgreSQL ${PG_MAJOR} cluster"
  if command -v pg_ctlcluster >/dev/null; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -h "$PGHOST" -p "$PGPORT" -q && break; sleep 1; done
  pg_isready -h "$PGHOST" -p "$PGPORT" -q || { say "PostgreSQL is not reachable at $PGHOST:$PGPORT"; exit 1; }
fi

# 3. Role, database, extension.
if [ "$(psql_super -d postgres -c "SELECT 1 FROM pg_roles WHERE rolname = '${APP_ROLE}'")" != "1" ]; then
  say "creating role ${APP_ROLE}"
  # CREATEDB: the test suite clones per-run databases from a migrated template.
  psql_super -d postgres -c "CREATE ROLE \"${APP_ROLE}\" LOGIN CREATEDB"
fi
if [ "$(psql_super -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '${APP_DB}'")" != "1" ]; then
  say "creating database ${APP_DB}"
  psql_super -d postgres -c "CREATE DATABASE \"${APP_DB}\" OWNER \"${APP_ROLE}\""
fi
psql_super -d "$APP_DB" -c "CREATE EXTENSION IF NOT EXISTS postgis"
say "PostGIS $(psql_super -d "$APP_DB" -c 'SELECT postgis_lib_version()') ready in ${APP_DB} at ${PGHOST}:${PGPORT}"
