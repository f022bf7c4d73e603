#!/usr/bin/env bash
# Run a command with a MariaDB (or MySQL) server the tests can use:
#
#   .ci/mariadb.sh COMMAND [ARGS...]
#
# A server at 127.0.0.1:$MYSQL_PORT (default 3306) that lets root in without a
# password is used as it is. Otherwise: install MariaDB from Debian's packages
# if absent and start a private throw-away server (its own data directory,
# socket and port, a free one when that one is taken; no grant tables, loopback
# only), stopped and removed when COMMAND ends. The machine's own server and
# its configuration are never touched (--no-defaults).
#
# COMMAND gets MYSQL_PORT and PLACEMENT_TEST_DATABASE_URL
# (mysql+asyncmy://root@127.0.0.1:$MYSQL_PORT/test; the tests create their own
# databases beside `test`) and this script exits with its status.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=.ci/lib.sh
. .ci/lib.sh

MYSQL_HOST=127.0.0.1
MYSQL_PORT=${MYSQL_PORT:-3306}
PYTHON=${PYTHON:-.venv/bin/python}
PRIVATE_MYSQL=""

[ "$#" -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

cleanup() {
  if [ -n "$PRIVATE_MYSQL" ]; then
    if [ -f "$PRIVATE_MYSQL/pid" ]; then
      kill "$(cat "$PRIVATE_MYSQL/pid")" 2>/dev/null || true
      for _ in $(seq 1 40); do [ -f "$PRIVATE_MYSQL/pid" ] || break; sleep 0.25; done
    fi
    rm -rf "$PRIVATE_MYSQL"
  fi
}
trap cleanup EXIT

mysql_answers() {  # port -> 0 when root gets in without a password there
  "$PYTHON" - "$1" <<'PY' >/dev/null 2>&1
import asyncio, sys
import asyncmy
async def main(port):
    conn = await asyncmy.connect(host="127.0.0.1", port=port, user="root", connect_timeout=5)
    conn.close()
asyncio.run(main(int(sys.argv[1])))
PY
}

free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ensure_mariadb() {
  if mysql_answers "$MYSQL_PORT"; then
    return
  fi
  echo "no MariaDB/MySQL answers at $MYSQL_HOST:$MYSQL_PORT"
  if [ ! -x /usr/sbin/mariadbd ]; then
    echo "installing MariaDB from Debian's packages"
    apt_install mariadb-server mariadb-client
  fi
  PRIVATE_MYSQL=$(mktemp -d /tmp/ci-mariadb-XXXXXX)
  chmod 755 "$PRIVATE_MYSQL"
  local user=()
  if [ "$(id -u)" -eq 0 ]; then
    id mysql >/dev/null 2>&1 || useradd --system --no-create-home mysql
    chown mysql "$PRIVATE_MYSQL"
    user=(--user=mysql)
  fi
  MYSQL_PORT=$(free_port)
  echo "starting a private MariaDB server on $MYSQL_HOST:$MYSQL_PORT"
  mariadb-install-db --no-defaults "${user[@]}" --datadir="$PRIVATE_MYSQL/data" \
    --auth-root-authentication-method=normal --skip-test-db >"$PRIVATE_MYSQL/install.log" 2>&1 \
    || { cat "$PRIVATE_MYSQL/install.log"; echo "mariadb-install-db failed"; exit 1; }
  /usr/sbin/mariadbd --no-defaults "${user[@]}" --datadir="$PRIVATE_MYSQL/data" \
    --socket="$PRIVATE_MYSQL/sock" --pid-file="$PRIVATE_MYSQL/pid" \
    --bind-address="$MYSQL_HOST" --port="$MYSQL_PORT" --skip-grant-tables \
    --innodb-flush-log-at-trx-commit=2 --max-connections=500 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    >"$PRIVATE_MYSQL/log" 2>&1 &
  for _ in $(seq 1 60); do
    mysql_answers "$MYSQL_PORT" && return
    sleep 0.5
  done
  cat "$PRIVATE_MYSQL/log"; echo "MariaDB did not start"; exit 1
}

ensure_mariadb
export MYSQL_PORT
export PLACEMENT_TEST_DATABASE_URL="mysql+asyncmy://root@$MYSQL_HOST:$MYSQL_PORT/test"
rc=0
"$@" || rc=$?
exit "$rc"
