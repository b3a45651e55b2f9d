#!/usr/bin/env bash
# Entrypoint of the PostgreSQL stand-in, following the official image's docker-entrypoint.sh:
# on an empty $PGDATA it runs initdb, starts a temporary server on the local socket only, creates
# $POSTGRES_DB, runs /docker-entrypoint-initdb.d/*, stops it, then execs the real server.
set -Eeo pipefail

# `docker run image -c fsync=off` means `postgres -c fsync=off`
if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi
if [ "$1" != 'postgres' ]; then exec "$@"; fi

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

# started as root (e.g. --user 0): fix ownership, then continue as postgres
if [ "$(id -u)" = '0' ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 0700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

# VAR_FILE support like the official image
file_env() {
  local var=$1 fileVar="${1}_FILE" def=${2:-}
  if [ -n "${!var:-}" ] && [ -n "${!fileVar:-}" ]; then
    echo >&2 "error: both $var and $fileVar are set (but are exclusive)"; exit 1
  fi
  local val=$def
  if [ -n "${!var:-}" ]; then val=${!var}; elif [ -n "${!fileVar:-}" ]; then val=$(< "${!fileVar}"); fi
  export "$var"="$val"
  unset "$fileVar"
}

process_init_files() {
  local f
  for f in "$@"; do
    case "$f" in
      *.sh)
        if [ -x "$f" ]; then echo "$0: running $f"; "$f"
        else echo "$0: sourcing $f"; . "$f"; fi ;;
      *.sql)    echo "$0: running $f"; psql_run -f "$f"; echo ;;
      *.sql.gz) echo "$0: running $f"; gunzip -c "$f" | psql_run; echo ;;
      *.sql.xz) echo "$0: running $f"; xzcat "$f" | psql_run; echo ;;
      *)        echo "$0: ignoring $f" ;;
    esac
  done
}

psql_run() {
  PGHOST= PGHOSTADDR= psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc \
    --dbname "${psql_db:-$POSTGRES_DB}" "$@"
}

mkdir -p "$PGDATA"
chmod 0700 "$PGDATA" 2>/dev/null || true

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=}"

  if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != 'trust' ]; then
    cat >&2 <<'MSG'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
       (or set POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a password)
MSG
    exit 1
  fi

  # shellcheck disable=SC2086
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") $POSTGRES_INITDB_ARGS

  auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  printf '\nhost all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"

  # temporary server: unix socket only, so nothing outside sees it before init is done
  PGUSER=$POSTGRES_USER pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start

  if [ "$POSTGRES_DB" != 'postgres' ]; then
    psql_db=postgres psql_run --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db" ;'
    echo
  fi
  shopt -s nullglob
  process_init_files /docker-entrypoint-initdb.d/*
  shopt -u nullglob

  PGUSER=$POSTGRES_USER pg_ctl -D "$PGDATA" -m fast -w stop
  unset PGPASSWORD
  echo
  echo 'PostgreSQL init process complete; ready for start up.'
  echo
else
  echo
  echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
  echo
fi

exec "$@"
