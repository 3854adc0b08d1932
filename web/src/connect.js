// Opens a draft-14 MoQT session over WebTransport with @moq/lite's ietf (draft-14) mode.
//
// @moq/lite's own connect() offers moq-lite-02, moq-lite-01 and draft-14 in one CLIENT_SETUP
// and lets the server pick; moqlink's relay picks the first it supports (§9.3.1), i.e. lite-02.
// To speak draft-14 we do the setup ourselves (offering draft-14 only) and hand the control
// stream to the library's Ietf.Connection, which is what its connect() does after SERVER_SETUP.
// Those modules are not in the package's "exports" map, so they are imported by file path
// (esbuild resolves both spellings to the same file, so there is one copy of each module).
import * as Ietf from "../node_modules/@moq/lite/ietf/index.js";
import { Stream } from "../node_modules/@moq/lite/stream.js";
import { MESSAGE_NAMES, tapBidi } from "./tap.js";

/** CLIENT_SETUP / SERVER_SETUP message types (§9.3). */
const CLIENT_SETUP = 0x20;
const SERVER_SETUP = 0x21;

/** Parses a hex SHA-256 fingerprint ("ab:cd..." or "abcd...") into 32 bytes. */
export function fingerprintBytes(hex) {
  const clean = hex.replace(/[^0-9a-fA-F]/g, "");
  if (clean.length !== 64) throw new Error(`fingerprint must be 32 bytes of hex, got ${clean.length / 2}`);
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Connects to `relay` (an https:// URL) pinning the certificate by its SHA-256 `fingerprint`
 * (hex), runs CLIENT_SETUP/SERVER_SETUP offering draft-14 only, and returns the library's
 * draft-14 Connection. `log` receives one line per step; `onControl(direction, name)` is
 * called for each control message sent or received.
 */
export async function connectDraft14(relay, fingerprint, log, onControl = () => {}) {
  const url = new URL(relay);
  const options = { allowPooling: false };
  if (fingerprint) {
    options.serverCertificateHashes = [{ algorithm: "sha-256", value: fingerprintBytes(fingerprint) }];
  }
  const quic = new WebTransport(url, options);
  quic.closed.then(
    (info) => log(`WebTransport closed: code=${info?.closeCode} reason=${info?.reason}`),
    (err) => log(`WebTransport closed with error: ${err}`),
  );
  await quic.ready;
  log(`WebTransport ready: ${url}`);

  const version = Ietf.Version.DRAFT_14;
  const bidi = await quic.createBidirectionalStream();
  const tapped = tapBidi(bidi, (direction, type, length) => {
    const name = MESSAGE_NAMES.get(type) ?? `0x${type.toString(16)}`;
    log(`control ${direction}: ${name} (${length} bytes)`);
    onControl(direction, name);
  });
  const control = new Stream({ ...tapped, version });
  const params = new Ietf.SetupOptions();
  // Our peer may send up to 100 requests (SUBSCRIBE from the relay when we publish) (§9.3.2.3).
  params.setVarint(Ietf.SetupOption.MaxRequestId, 100n);
  // No PATH and no AUTHORITY: both MUST NOT be sent over WebTransport (§9.3.2.1, §9.3.2.2).
  await control.writer.u53(CLIENT_SETUP);
  await new Ietf.ClientSetup({ versions: [version], parameters: params }).encode(control.writer, version);
  log("CLIENT_SETUP sent (versions: draft-14)");

  const type = await control.reader.u53();
  if (type !== SERVER_SETUP) throw new Error(`expected SERVER_SETUP (0x21), got 0x${type.toString(16)}`);
  const server = await Ietf.ServerSetup.decode(control.reader, version);
  if (server.version !== version) {
    throw new Error(`server selected 0x${server.version.toString(16)}, which was not offered`);
  }
  const maxRequestId = server.parameters.getVarint(Ietf.SetupOption.MaxRequestId) ?? 0n;
  log(`SERVER_SETUP: version=0x${server.version.toString(16)} max_request_id=${maxRequestId}`);
  return new Ietf.Connection({ url, quic, control, maxRequestId, version });
}
