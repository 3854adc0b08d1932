#!/bin/sh
# Entry point of the interop-runner image: MOQT_ROLE picks the relay or the test client.
set -e
case "${MOQT_ROLE:-}" in
  relay)
    # Listen on every interface of the container (MOQT_PORT makes the relay bind [::]).
    export MOQT_PORT="${MOQT_PORT:-4443}"
    exec moqlink relay "$@"
    ;;
  client)
    exec moqlink-interop "$@"
    ;;
  *)
    echo "moqlink: MOQT_ROLE must be relay or client (got '${MOQT_ROLE:-}')" >&2
    exit 127
    ;;
esac
