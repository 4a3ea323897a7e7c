#!/usr/bin/env bash
# Installs what the project needs from Debian when it is missing: python3-venv,
# redis-server and Chromium (Debian's build: Playwright's own download cannot reach its host here). Only as root; otherwise it says what to install and fails.
set -euo pipefail

missing=()
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
have_chromium() {
  [ -n "${SIGNER_CHROMIUM_PATH:-}" ] && [ -x "${SIGNER_CHROMIUM_PATH}" ] && return 0
  command -v chromium >/dev/null 2>&1 && return 0
  [ -x /usr/bin/chromium ] && return 0
  ls "${PLAYWRIGHT_BROWSERS_PATH:-$HOME/.cache/ms-playwright}"/chromium-*/chrome-linux*/chrome \
    >/dev/null 2>&1 && return 0
  return 1
}
have_chromium || missing+=(chromium)
# The queue's tests start a private Redis of their own (never the machine's shared one).
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# The real TikTok-Live-Connector client runs in the tests.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# `signer up` runs a private Postgres from Debian's binaries when no DATABASE_URL is given.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
# The ops tests check the alert rules with promtool and run a real Prometheus.
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || missing+=(prometheus)

[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing ${missing[*]} from Debian"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
