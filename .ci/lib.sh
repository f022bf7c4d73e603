# Shell helpers shared by the CI scripts (sourced, not run).

# Seconds in the timing lines count from CI_START: .ci/run's start when it
# exported it, else this script's.
CI_START=${CI_START:-$(date +%s)}
say() { echo "== $* [$(($(date +%s) - CI_START)) s]"; }

as_postgres() {  # PostgreSQL's tools refuse to run as root
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

APT_UPDATED=""
apt_install() {  # Debian packages; non-zero when there is no apt (or no root/sudo)
  local sudo="" log rc=0
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || return 1
    sudo="sudo"
  fi
  command -v apt-get >/dev/null 2>&1 || return 1
  if [ -z "$APT_UPDATED" ]; then
    $sudo apt-get update -q >/dev/null || return 1
    APT_UPDATED=1
  fi
  log=$(mktemp /tmp/ci-apt-XXXXXX.log)
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@" \
    >"$log" 2>&1 || { rc=$?; tail -20 "$log"; }
  rm -f "$log"
  return "$rc"
}

have_postgres_binaries() {  # initdb from Debian's packages (or on PATH)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
}
