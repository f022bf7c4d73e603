#!/usr/bin/env bash
# What the Galera tests (make test-galera) need, installed from Debian's
# packages when absent: MariaDB's server (mariadbd, mariadb-install-db, the
# client), galera-4 (the replication provider) and rsync (state transfer).
# The tests start their own nodes on loopback; nothing here starts a server.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=.ci/lib.sh
. .ci/lib.sh

missing=()
[ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || missing+=(mariadb-client)
[ -f /usr/lib/galera/libgalera_smm.so ] || missing+=(galera-4)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]} from Debian's packages"
  apt_install "${missing[@]}"
fi
# As root the nodes run as user mysql (rsync state transfer refuses root).
if [ "$(id -u)" -eq 0 ] && ! id mysql >/dev/null 2>&1; then
  useradd --system --no-create-home mysql
fi
