# moqlink for the MoQ interop runner: one image, the role chosen by MOQT_ROLE.
#   MOQT_ROLE=relay   moqlink relay on UDP $MOQT_PORT (default 4443), certificate /certs/cert.pem +
#                     /certs/priv.key, WebTransport and raw QUIC on the same port
#   MOQT_ROLE=client  moqlink-interop against $RELAY_URL, test case $TESTCASE (default: all),
#                     TLS_DISABLE_VERIFY=1 to skip certificate checks; TAP 14 on stdout
# Any other role exits 127. See interop/README.md.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p moqlink -p moqlink-interop

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/moqlink /src/target/release/moqlink-interop /usr/local/bin/
COPY interop/runner/entrypoint.sh /usr/local/bin/moqlink-entrypoint
EXPOSE 4443/udp
ENTRYPOINT ["/usr/local/bin/moqlink-entrypoint"]
