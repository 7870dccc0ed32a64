#!/usr/bin/env bash
# Install, start (loopback only) and prepare a PostgreSQL 15 server for the SQLStore tests.
# For CI on a fresh Debian 12 machine, run as root, no stdin needed; safe to run again (idempotent).
# Usage: export ADARAG_TEST_PG_URL="$(bash .ci/postgres.sh)"   (progress goes to stderr, the URL to stdout)
set -euo pipefail

PG_VERSION="${PG_VERSION:-15}"
PG_CLUSTER="${PG_CLUSTER:-main}"
PG_PORT="${PG_PORT:-5432}"
PG_USER="${PG_USER:-adarag}"
PG_PASSWORD="${PG_PASSWORD:-adarag}"
PG_DB="${PG_DB:-adarag_test}"
export DEBIAN_FRONTEND=noninteractive

log() { echo "[postgres.sh] $*" >&2; }
as_pg() { (cd / && runuser -u postgres -- "$@"); }
psql_pg() { as_pg psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -d postgres "$@"; }

if [ "$(id -u)" -ne 0 ]; then
  log "must run as root (it installs packages and starts a service)"; exit 1
fi

if [ ! -x "/usr/lib/postgresql/${PG_VERSION}/bin/postgres" ]; then
  log "installing postgresql-${PG_VERSION}"
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "postgresql-${PG_VERSION}" "postgresql-client-${PG_VERSION}" >&2
fi

if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "${PG_VERSION} ${PG_CLUSTER}"; then
  log "creating cluster ${PG_VERSION}/${PG_CLUSTER} on port ${PG_PORT}"
  pg_createcluster "$PG_VERSION" "$PG_CLUSTER" --port "$PG_PORT" >&2
fi

# Loopback only, via conf.d (included by Debian's postgresql.conf, read last, so it wins);
# the local socket keeps peer auth for the postgres superuser, TCP uses passwords (pg_hba default).
conf_dir="/etc/postgresql/${PG_VERSION}/${PG_CLUSTER}/conf.d"
mkdir -p "$conf_dir"
wanted_conf="$(printf "listen_addresses = '127.0.0.1'\nport = %s" "$PG_PORT")"
conf_changed=0
if [ "$(cat "$conf_dir/adarag-ci.conf" 2>/dev/null || true)" != "$wanted_conf" ]; then
  printf '%s\n' "$wanted_conf" > "$conf_dir/adarag-ci.conf"
  conf_changed=1
fi
chown -R postgres:postgres "$conf_dir"

if pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" status >/dev/null 2>&1; then
  if [ "$conf_changed" = 1 ]; then
    log "cluster running with other settings; restarting to apply them"
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" restart >&2
  else
    log "cluster already running"
  fi
else
  log "starting cluster"
  pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start >&2
fi

for _ in $(seq 1 60); do
  pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break
  sleep 0.5
done
pg_isready -h 127.0.0.1 -p "$PG_PORT" >&2

# superuser over the local socket (peer auth): role + database, created once, password kept in sync
as_pg psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres \
  -v user="$PG_USER" -v pass="$PG_PASSWORD" -v db="$PG_DB" >&2 <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'user', :'pass')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'user', :'pass') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL

# check the URL's credentials really work over TCP before handing it out
PGPASSWORD="$PG_PASSWORD" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -tAc 'SELECT 1' >/dev/null
log "ready"
echo "postgresql+psycopg://${PG_USER}:${PG_PASSWORD}@127.0.0.1:${PG_PORT}/${PG_DB}"
