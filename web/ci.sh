#!/usr/bin/env bash
# Headless-browser test of the web client (issue 14): installs Debian's chromium if missing,
# installs web/'s npm packages from package-lock.json, and runs test.mjs against the given
# moqlink binary. Builds no Rust.
#
#   bash web/ci.sh [path/to/moqlink]     (default target/debug/moqlink, relative to the cwd)
#
# Exits 0 when both directions pass, 1 when the test fails, 0 with a SKIP line when chromium is
# missing and apt-get is not available to install it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
moqlink="${1:-target/debug/moqlink}"
if [ ! -x "$moqlink" ]; then
  echo "web/ci.sh: no moqlink binary at $moqlink (build it first)" >&2
  exit 1
fi
moqlink="$(cd "$(dirname "$moqlink")" && pwd)/$(basename "$moqlink")"
chromium="${CHROMIUM:-/usr/bin/chromium}"

apt_install() {
  # A fresh machine may have no package lists yet: update once and retry.
  DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" \
    || { DEBIAN_FRONTEND=noninteractive apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"; }
}

if [ ! -x "$chromium" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "web/ci.sh: installing Debian's chromium"
    apt_install chromium
  else
    echo "SKIP web/ci.sh: $chromium is missing and apt-get is not available to install it"
    exit 0
  fi
fi

if ! command -v npm >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "web/ci.sh: installing node and npm"
    apt_install nodejs npm
  else
    echo "web/ci.sh: npm is missing and apt-get is not available to install it" >&2
    exit 1
  fi
fi

cd "$here"
npm ci --no-audit --no-fund --loglevel=error
CHROMIUM="$chromium" node test.mjs "$moqlink"
