// The page: subscribes to a track and lists its objects (mode=sub), or publishes a namespace and
// writes text objects when the track is subscribed (mode=pub). Progress goes into the DOM:
// body[data-state] is loading|connecting|connected|subscribed (SUBSCRIBE_OK received)|announced
// (PUBLISH_NAMESPACE_OK received)|publishing|done|error,
// <ol id="objects"> has one <li data-group data-object> per object, <pre id="log"> the steps.
import { Broadcast, Path } from "@moq/lite";
import { connectDraft14 } from "./connect.js";

const params = new URLSearchParams(location.search);
const logEl = document.getElementById("log");
const listEl = document.getElementById("objects");
const statusEl = document.getElementById("status");

function log(line) {
  const stamp = (performance.now() / 1000).toFixed(3);
  logEl.textContent += `[${stamp}] ${line}\n`;
}

function setState(state, extra) {
  document.body.dataset.state = state;
  statusEl.textContent = extra ? `${state}: ${extra}` : state;
}

function addObject(group, object, text) {
  const li = document.createElement("li");
  li.dataset.group = String(group);
  li.dataset.object = String(object);
  li.textContent = `group ${group} object ${object}: ${text}`;
  listEl.appendChild(li);
}

// The library's warnings and errors go into the page log too.
for (const level of ["warn", "error"]) {
  const orig = console[level].bind(console);
  console[level] = (...args) => {
    log(`moq ${level}: ${args.map(String).join(" ")}`);
    orig(...args);
  };
}

function required(name) {
  const value = params.get(name);
  if (!value) throw new Error(`missing URL parameter ${name}`);
  return value;
}

async function subscribe(conn, namespace, trackName, count) {
  const broadcast = conn.consume(Path.from(namespace));
  const track = broadcast.subscribe(trackName, 128);
  log(`SUBSCRIBE ${namespace} / ${trackName}`);
  let received = 0;
  const readers = [];
  for (;;) {
    const group = await track.recvGroup();
    if (!group) break;
    // One subgroup stream per group: its objects arrive in order; groups are read concurrently.
    readers.push(
      (async () => {
        for (let object = 0; ; object++) {
          const frame = await group.readFrame();
          if (!frame) break;
          addObject(group.sequence, object, new TextDecoder().decode(frame));
          received++;
          if (count && received >= count) {
            setState("done", `${received} objects`);
            track.close();
          }
        }
      })(),
    );
  }
  await Promise.allSettled(readers);
  if (document.body.dataset.state !== "done") setState("done", `track ended after ${received} objects`);
}

async function publish(conn, namespace, trackName, count, perGroup, prefix) {
  const broadcast = new Broadcast();
  conn.publish(Path.from(namespace), broadcast);
  log(`PUBLISH_NAMESPACE ${namespace}; waiting for a SUBSCRIBE to ${trackName}`);
  for (;;) {
    const request = await broadcast.requested();
    if (!request) break;
    const { track } = request;
    if (track.name !== trackName) {
      log(`SUBSCRIBE for unknown track ${track.name}`);
      track.close(new Error("not found"));
      continue;
    }
    setState("publishing");
    log(`SUBSCRIBE for ${trackName}: writing ${count} objects, ${perGroup} per group`);
    let group;
    for (let i = 0; i < count; i++) {
      if (i % perGroup === 0) {
        group?.close();
        group = track.appendGroup();
      }
      const text = `${prefix}${i}`;
      group.writeString(text);
      addObject(group.sequence, i % perGroup, text);
    }
    group?.close();
    // Stay connected: the test ends the page; closing here could cut the streams short.
    setState("done", `${count} objects written`);
  }
}

async function main() {
  const mode = params.get("mode") ?? "sub";
  const relay = required("relay");
  const namespace = required("namespace");
  const trackName = required("track");
  const count = Number(params.get("count") ?? "0");
  document.getElementById("heading").textContent =
    `Objects (${mode === "pub" ? "published to" : "received from"} ${namespace} / ${trackName})`;
  setState("connecting");
  // SUBSCRIBE_OK / PUBLISH_NAMESPACE_OK as seen on the control stream move the state on, so a
  // test can wait for them before it starts the other side.
  const conn = await connectDraft14(relay, params.get("fingerprint"), log, (direction, name) => {
    if (direction !== "received") return;
    if (name === "SUBSCRIBE_OK" && document.body.dataset.state === "connected") setState("subscribed");
    if (name === "PUBLISH_NAMESPACE_OK" && document.body.dataset.state === "connected") setState("announced");
  });
  window.moqConnection = conn;
  setState("connected", conn.version);
  if (mode === "pub") {
    const perGroup = Math.max(1, Number(params.get("per-group") ?? "5"));
    await publish(conn, namespace, trackName, count || 10, perGroup, params.get("prefix") ?? "web-");
  } else {
    await subscribe(conn, namespace, trackName, count);
  }
}

main().catch((err) => {
  log(`error: ${err?.stack ?? err}`);
  setState("error", String(err?.message ?? err));
});
