// A passive tap on the draft-14 control stream: splits the bytes into control messages
// (Type (i), Length (16), Payload, §9) and reports each message's type, without changing a byte.
// The page uses it to show what was sent and received, and to tell the test when SUBSCRIBE_OK
// or PUBLISH_NAMESPACE_OK arrived (@moq/lite has no event for either).

/** Control message names by type (§9, Table 1 of draft-14). */
export const MESSAGE_NAMES = new Map([
  [0x02, "SUBSCRIBE_UPDATE"], [0x03, "SUBSCRIBE"], [0x04, "SUBSCRIBE_OK"], [0x05, "SUBSCRIBE_ERROR"],
  [0x06, "PUBLISH_NAMESPACE"], [0x07, "PUBLISH_NAMESPACE_OK"], [0x08, "PUBLISH_NAMESPACE_ERROR"],
  [0x09, "PUBLISH_NAMESPACE_DONE"], [0x0a, "UNSUBSCRIBE"], [0x0b, "PUBLISH_DONE"],
  [0x0c, "PUBLISH_NAMESPACE_CANCEL"], [0x0d, "TRACK_STATUS"], [0x0e, "TRACK_STATUS_OK"],
  [0x0f, "TRACK_STATUS_ERROR"], [0x10, "GOAWAY"], [0x11, "SUBSCRIBE_NAMESPACE"],
  [0x12, "SUBSCRIBE_NAMESPACE_OK"], [0x13, "SUBSCRIBE_NAMESPACE_ERROR"],
  [0x14, "UNSUBSCRIBE_NAMESPACE"], [0x15, "MAX_REQUEST_ID"], [0x16, "FETCH"], [0x17, "FETCH_CANCEL"],
  [0x18, "FETCH_OK"], [0x19, "FETCH_ERROR"], [0x1a, "REQUESTS_BLOCKED"], [0x1d, "PUBLISH"],
  [0x1e, "PUBLISH_OK"], [0x1f, "PUBLISH_ERROR"], [0x20, "CLIENT_SETUP"], [0x21, "SERVER_SETUP"],
]);

/** Returns a TransformStream that passes bytes through and calls onMessage(type, length). */
export function controlTap(onMessage) {
  let pending = new Uint8Array(0);
  return new TransformStream({
    transform(chunk, controller) {
      controller.enqueue(chunk);
      const joined = new Uint8Array(pending.length + chunk.length);
      joined.set(pending);
      joined.set(chunk, pending.length);
      let at = 0;
      for (;;) {
        if (at >= joined.length) break;
        // QUIC variable-length integer (RFC 9000 §16): the top two bits give its length.
        const size = 1 << (joined[at] >> 6);
        if (at + size + 2 > joined.length) break;
        let type = joined[at] & 0x3f;
        for (let i = 1; i < size; i++) type = type * 256 + joined[at + i];
        const length = (joined[at + size] << 8) | joined[at + size + 1];
        const end = at + size + 2 + length;
        if (end > joined.length) break;
        onMessage(type, length);
        at = end;
      }
      pending = joined.slice(at);
    },
  });
}

/** Wraps a bidirectional stream's two halves with taps; returns the tapped halves. */
export function tapBidi({ readable, writable }, onMessage) {
  const sent = controlTap((type, length) => onMessage("sent", type, length));
  void sent.readable.pipeTo(writable).catch(() => {});
  const received = readable.pipeThrough(controlTap((type, length) => onMessage("received", type, length)));
  return { readable: received, writable: sent.writable };
}
