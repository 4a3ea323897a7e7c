#!/usr/bin/env bash
# Installs the Debian packages a mode needs when they are missing. Only as root;
# otherwise it says what to install and fails.
#
#   scripts/ensure-system.sh run              # what `make run` needs to run the service
#   scripts/ensure-system.sh test             # that plus what only the tests need
#   scripts/ensure-system.sh --dry-run MODE   # print the mode's packages (one a line), change nothing
#
# run: python3-venv, Chromium (Debian's build: Playwright's own download cannot reach its
#      host here), redis-server and postgresql (`signer up` starts private ones).
# test: also nodejs and npm (the real TikTok-Live-Connector client runs in the tests) and
#      prometheus (the ops tests check the alert rules with promtool and run a real one).
set -euo pipefail

dry_run=0
if [ "${1:-}" = "--dry-run" ]; then
  dry_run=1
  shift
fi
mode="${1:-test}"
case "$mode" in
  run) packages=(python3-venv chromium redis-server postgresql) ;;
  test) packages=(python3-venv chromium redis-server postgresql nodejs npm prometheus) ;;
  *)
    echo "usage: $0 [--dry-run] run|test" >&2
    exit 2
    ;;
esac

if [ "$dry_run" -eq 1 ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

have_chromium() {
  [ -n "${SIGNER_CHROMIUM_PATH:-}" ] && [ -x "${SIGNER_CHROMIUM_PATH}" ] && return 0
  command -v chromium >/dev/null 2>&1 && return 0
  [ -x /usr/bin/chromium ] && return 0
  return 1
}

# Whether a package's programs are already here (from Debian or elsewhere).
present() {
  case "$1" in
    python3-venv) python3 -c 'import ensurepip, venv' >/dev/null 2>&1 ;;
    chromium) have_chromium ;;
    redis-server) command -v redis-server >/dev/null 2>&1 ;;
    postgresql) ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 ;;
    nodejs) command -v node >/dev/null 2>&1 ;;
    npm) command -v npm >/dev/null 2>&1 ;;
    prometheus) command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}

missing=()
for package in "${packages[@]}"; do
  present "$package" || missing+=("$package")
done

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
