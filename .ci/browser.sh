#!/usr/bin/env bash
# The Swagger UI browser test: Debian's Chromium (installed when absent), driven
# by Playwright for Python with the system browser (no browser download).
# Screenshots go to $ARTIFACTS (printed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=.ci/lib.sh
. .ci/lib.sh
PYTHON=${PYTHON:-.venv/bin/python}
ARTIFACTS=${ARTIFACTS:-.ci/artifacts/browser}

if [ ! -x /usr/bin/chromium ]; then
  say "installing chromium from Debian's packages"
  apt_install chromium
fi
mkdir -p "$ARTIFACTS"
ARTIFACTS=$(cd "$ARTIFACTS" && pwd)
export ARTIFACTS PLACEMENT_BROWSER_REQUIRED=1
"$PYTHON" -m pytest -q -s -p no:cacheprovider tests/browser
echo "browser screenshots: $ARTIFACTS"
ls -1 "$ARTIFACTS"
