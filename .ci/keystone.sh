#!/usr/bin/env bash
# Build (once) the virtualenv holding a real Keystone for the Keystone tests:
#
#   .ci/keystone.sh            prints the venv's path
#
# PyPI `keystone` pins many packages, so it gets its OWN venv, never the
# project's: $PLACEMENT_KEYSTONE_VENV or ~/.cache/placement-keystone/venv.
# Reused when present and complete (idempotent). tests/keystone/conftest.py
# serves `keystone.wsgi.api` from it under gunicorn on a free loopback port.
set -euo pipefail
KEYSTONE_VERSION=${KEYSTONE_VERSION:-30.0.0}
VENV=${PLACEMENT_KEYSTONE_VENV:-$HOME/.cache/placement-keystone/venv}
MARK="$VENV/.keystone-$KEYSTONE_VERSION"

if [ ! -f "$MARK" ]; then
  echo "building Keystone $KEYSTONE_VERSION in $VENV" >&2
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  pip() { "$VENV/bin/python" -m pip -q --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "^WARNING: Location '" || true; } >&2; }
  pip install --upgrade pip
  pip install "keystone==$KEYSTONE_VERSION" gunicorn
  "$VENV/bin/python" -c "import keystone.wsgi.api" 2>/dev/null \
    || "$VENV/bin/python" -c "import keystone.server.wsgi"
  touch "$MARK"
fi
echo "$VENV"
