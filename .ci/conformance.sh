#!/usr/bin/env bash
# The conformance runner (the reference's own HTTP tests, a fresh server per
# file) on each database named, then the ratchet:
#
#   .ci/conformance.sh [sqlite] [postgres] [mysql]   (default: sqlite)
#
# Prints the per-file table and the summary of each run (not every failure),
# and fails when the runner breaks or a file of tests/conformance/must-pass.txt
# has a failing test. SHARED: the shared folder (default: ../shared beside the
# checkout), with the reference's set-up script and the runner. mysql: the
# MariaDB at 127.0.0.1:$MYSQL_PORT (default 3306), or a private one
# .ci/mariadb.sh starts (and installs) when none answers there.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=.ci/lib.sh
. .ci/lib.sh
ROOT=$(pwd)
SHARED=${SHARED:-$(cd "$ROOT/.." && pwd)/shared}
PYTHON=${PYTHON:-.venv/bin/python}
DBS=("${@:-sqlite}")
WORK=$(mktemp -d /tmp/ci-conformance-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

print_conformance() {  # the per-file table and the closing summary, not every failure
  awk '/^Failures:/ {skip = 1} /^(functional|policy|excluded|wall time|conformance):? / {skip = 0}
       !skip' "$1"
}

if [[ " ${DBS[*]} " == *" postgres "* ]] && ! have_postgres_binaries; then
  apt_install postgresql  # the runner starts a private cluster from these binaries
fi
say "reference venv and conformance runner"
REF_VENV=$(bash "$SHARED/reference/setup" | tail -1)
failed=0
for db in "${DBS[@]}"; do
  say "conformance on $db"
  result="$WORK/conformance-$db.json"
  runner=("$REF_VENV/bin/python" "$SHARED/conformance/run" --server project --checkout "$ROOT"
          --db "$db" --json "$result")
  if [ "$db" = mysql ]; then  # the server .ci/mariadb.sh finds or starts
    # shellcheck disable=SC2016
    runner=(bash .ci/mariadb.sh bash -c '"$@" --mysql-url "mysql://root@127.0.0.1:$MYSQL_PORT"'
            runner "${runner[@]}")
  fi
  PYTHON=$PYTHON "${runner[@]}" >"$WORK/conformance-$db.log" 2>&1 || {
      cat "$WORK/conformance-$db.log"; echo "the conformance run failed"; exit 1; }
  print_conformance "$WORK/conformance-$db.log"
  "$PYTHON" tests/conformance/ratchet.py "$result" tests/conformance/must-pass.txt \
    || failed=1
done
[ "$failed" -eq 0 ] || { echo "ratchet: a must-pass file has a failing test"; exit 1; }
