#!/usr/bin/env bash
# Installs the peer implementations moqlink is tested against, from the package registries only
# (crates.io, PyPI), into a cache directory outside the repository. Later runs skip what exists.
#
#   interop/peers/install.sh [DIR]        DIR defaults to $MOQLINK_PEERS or ~/.cache/moqlink-peers
#
# Versions are pinned to the draft-14 era each peer was released in (see ../../README.md).
set -euo pipefail

DIR="${1:-${MOQLINK_PEERS:-$HOME/.cache/moqlink-peers}}"
mkdir -p "$DIR"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_PEERS:-$DIR/target}"

install_crate() { # root-dir crate version [extra cargo args...]
  local root="$1" crate="$2" version="$3"; shift 3
  local bin="$DIR/$root/bin/$crate"
  if [ -x "$bin" ]; then return 0; fi
  echo "installing $crate $version into $DIR/$root" >&2
  cargo install --quiet --root "$DIR/$root" "$@" "$crate@$version"
}

# cloudflare/moq-rs, draft-14 line (later versions speak draft-16); --locked keeps the
# dependency set they were released with.
install_crate moq-relay-ietf moq-relay-ietf 0.7.19 --locked
install_crate moq-test-client moq-test-client 0.1.7 --locked
install_crate moq-clock-ietf moq-clock-ietf 0.6.15 --locked
# moq-dev relay: draft-14 as a compatibility version beside moq-lite. Its lockfile pins a
# webpki-roots release the registry mirror lacks, so it resolves fresh; iroh is left out.
install_crate moq-relay moq-relay 0.17.10 --no-default-features --features noq,websocket
# moq-lite peers (SETUP-negotiated lite-02 / lite-01).
install_crate moq-relay-0.10.5 moq-relay 0.10.5 --locked
install_crate moq-clock-0.10.5 moq-clock 0.10.5 --locked
install_crate moq-clock-0.10.21 moq-clock 0.10.21 --locked

# aiomoqt (Python >= 3.12): relay and strict interop client.
if [ ! -x "$DIR/aiomoqt-venv/bin/moq-interop-relay" ]; then
  py=""
  for c in "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.1[2-9]*/bin/python3.1[2-9] python3.12 python3.13; do
    if "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then py="$c"; break; fi
  done
  [ -n "$py" ] || { echo "aiomoqt needs Python >= 3.12" >&2; exit 1; }
  "$py" -m venv "$DIR/aiomoqt-venv"
  "$DIR/aiomoqt-venv/bin/pip" install --quiet aiomoqt==0.13.3
fi

# A loopback certificate for the peer relays (ECDSA P-256, 10 days, localhost and 127.0.0.1).
# (regenerated when it has less than two days left: a kept machine may run CI weeks later)
if [ ! -f "$DIR/certs/cert.pem" ] || ! openssl x509 -checkend 172800 -noout -in "$DIR/certs/cert.pem" >/dev/null 2>&1; then
  mkdir -p "$DIR/certs"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$DIR/certs/priv.key" -out "$DIR/certs/cert.pem" -days 10 -nodes \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" 2>/dev/null
fi
echo "$DIR"
