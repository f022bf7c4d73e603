#!/usr/bin/env bash
# Run a command with a PostgreSQL server the tests can use:
#
#   .ci/postgres.sh COMMAND [ARGS...]
#
# A server at 127.0.0.1:$PG_PORT (default 5432) that lets user postgres in
# without a password is used as it is. Otherwise: install PostgreSQL from
# Debian's packages if absent, start a stopped Debian cluster configured for
# that port, or else a private throw-away cluster (trust auth; on another free
# port when that one is taken), stopped and removed when COMMAND ends.
#
# Database `test` is created if missing; COMMAND gets PG_PORT and
# PLACEMENT_TEST_DATABASE_URL (postgresql+asyncpg://postgres@127.0.0.1:$PG_PORT/test)
# and this script exits with its status. Needs the project's venv (asyncpg).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=.ci/lib.sh
. .ci/lib.sh

PG_HOST=127.0.0.1
PG_PORT=${PG_PORT:-5432}
PYTHON=${PYTHON:-.venv/bin/python}
PRIVATE_PG=""
PRIVATE_PG_BIN=""

[ "$#" -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

cleanup() {
  if [ -n "$PRIVATE_PG" ]; then
    as_postgres "$PRIVATE_PG_BIN/pg_ctl" -D "$PRIVATE_PG/data" -m immediate -w stop \
      >/dev/null 2>&1 || true
    rm -rf "$PRIVATE_PG"
  fi
}
trap cleanup EXIT

pg_answers() {  # port -> 0 when PostgreSQL accepts user postgres there
  "$PYTHON" - "$1" <<'EOF' >/dev/null 2>&1
import asyncio, sys
import asyncpg
async def main(port):
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres",
                                 database="postgres", timeout=5)
    await conn.close()
asyncio.run(main(int(sys.argv[1])))
EOF
}

port_free() {  # port -> 0 when nothing listens on 127.0.0.1:port
  "$PYTHON" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

ensure_postgres() {
  if pg_answers "$PG_PORT"; then
    return
  fi
  echo "no PostgreSQL answers at $PG_HOST:$PG_PORT"
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "installing PostgreSQL from Debian's packages"
    apt_install postgresql postgresql-client
  fi
  # A Debian cluster configured for this port that is merely stopped.
  local started=""
  if command -v pg_lsclusters >/dev/null 2>&1; then
    while read -r version name port _; do
      if [ "$port" = "$PG_PORT" ]; then
        echo "starting cluster $version/$name"
        pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start && started=1
      fi
    done < <(pg_lsclusters -h 2>/dev/null || true)
  fi
  if [ -n "$started" ]; then
    for _ in $(seq 1 20); do port_free "$PG_PORT" || break; sleep 0.5; done
    sleep 1
    if pg_answers "$PG_PORT"; then return; fi
    echo "(that server does not let user postgres in without a password)"
  fi
  # A private throw-away cluster from the installed binaries, trust auth.
  PRIVATE_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --no-create-home postgres
  fi
  PRIVATE_PG=$(mktemp -d /tmp/ci-pg-XXXXXX)
  chmod 755 "$PRIVATE_PG"
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$PRIVATE_PG"; fi
  if ! port_free "$PG_PORT"; then
    PG_PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  fi
  echo "starting a private PostgreSQL cluster ($PRIVATE_PG_BIN) on $PG_HOST:$PG_PORT"
  as_postgres "$PRIVATE_PG_BIN/initdb" -D "$PRIVATE_PG/data" -A trust -U postgres -E UTF8 \
    --no-locale >/dev/null
  as_postgres "$PRIVATE_PG_BIN/pg_ctl" -D "$PRIVATE_PG/data" -l "$PRIVATE_PG/log" -w \
    -o "-c listen_addresses=$PG_HOST -c port=$PG_PORT -c unix_socket_directories=$PRIVATE_PG -c fsync=off -c synchronous_commit=off -c max_connections=200" \
    start >/dev/null
  pg_answers "$PG_PORT" || { cat "$PRIVATE_PG/log"; echo "PostgreSQL did not start"; exit 1; }
}

create_test_database() {
  "$PYTHON" - "$PG_PORT" <<'EOF'
import asyncio, sys
import asyncpg
async def main(port):
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres",
                                 database="postgres", timeout=10)
    if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'test'"):
        await conn.execute("CREATE DATABASE test")
    await conn.close()
asyncio.run(main(int(sys.argv[1])))
EOF
}

ensure_postgres
create_test_database
export PG_PORT
export PLACEMENT_TEST_DATABASE_URL="postgresql+asyncpg://postgres@$PG_HOST:$PG_PORT/test"
rc=0
"$@" || rc=$?
exit "$rc"
