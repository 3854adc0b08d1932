// Headless-Chromium test of the browser client against `moqlink relay --dev` over WebTransport.
//
//   node test.mjs [path/to/moqlink]      (default: $MOQLINK, else ../target/debug/moqlink)
//
// Starts the relay on a free UDP port in 4950-4969, reads its certificate fingerprint from the
// log, serves this folder over HTTP (a free TCP port in the same range), and drives Debian's
// chromium ($CHROMIUM, default /usr/bin/chromium) with puppeteer-core:
//   (a) page subscribes (draft-14, fingerprint pinned); `moqlink pub` publishes N objects;
//       every object arrives in the page, and within each group in object order;
//   (b) page publishes N objects; `moqlink sub` prints every one, each group in order.
// Every wait is for an explicit event (a log line, a DOM state, a printed line) with a generous
// limit. Screenshots and logs go to $MOQLINK_WEB_OUT (default /tmp/moqlink-web). Exit 0 or 1.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createSocket } from "node:dgram";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";
import { buildBundle } from "./build.mjs";
import { LineWatcher, serveStatic, freeTcpPort } from "./testlib.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const moqlink = resolve(process.argv[2] ?? process.env.MOQLINK ?? join(here, "../target/debug/moqlink"));
const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
const outDir = process.env.MOQLINK_WEB_OUT ?? "/tmp/moqlink-web";
const PORTS = [4950, 4969];
const N = 12; // objects per direction
const PER_GROUP = 4; // objects per group (and subgroup stream)
// Generous limit for each wait (MOQLINK_WEB_LIMIT_MS overrides, e.g. to see a failure sooner).
const LIMIT_MS = Number(process.env.MOQLINK_WEB_LIMIT_MS ?? 30_000);

const children = [];
let browser;
let userDataDir;
const openPages = new Map(); // page -> mode, for artifacts when a step fails

/** Spawns a child with piped stdio, remembered for cleanup. */
function start(name, args) {
  const env = { ...process.env, NO_COLOR: "1" };
  // MOQLINK_WEB_LOG sets every moqlink process's RUST_LOG (e.g. "debug") for debugging.
  if (process.env.MOQLINK_WEB_LOG) env.RUST_LOG = process.env.MOQLINK_WEB_LOG;
  const child = spawn(moqlink, args, { stdio: ["pipe", "pipe", "pipe"], env });
  child.label = name;
  child.stderrLines = new LineWatcher(child.stderr, join(outDir, `${name}.stderr.log`));
  child.stdoutLines = new LineWatcher(child.stdout, join(outDir, `${name}.stdout.log`));
  children.push(child);
  return child;
}

/** Stops a child (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

/** Returns a UDP port in PORTS that we could bind just now. */
async function freeUdpPort() {
  for (let port = PORTS[0]; port <= PORTS[1]; port++) {
    const sock = createSocket("udp4");
    const ok = await new Promise((res) => {
      sock.once("error", () => res(false));
      sock.bind(port, "127.0.0.1", () => res(true));
    });
    await new Promise((res) => (ok ? sock.close(res) : res()));
    if (ok) return port;
  }
  throw new Error(`no free UDP port in ${PORTS[0]}-${PORTS[1]}`);
}

/** Waits until body[data-state] is one of `states` (or error), returns the state. */
async function waitState(page, states, what) {
  const handle = await page
    .waitForFunction(
      (wanted) => {
        const s = document.body.dataset.state;
        return wanted.includes(s) || s === "error" ? s : false;
      },
      { timeout: LIMIT_MS, polling: "mutation" },
      states,
    )
    .catch(async (e) => {
      throw new Error(`${what}: page never reached ${states.join("|")} (${e.message}); page log:\n${await pageLog(page)}`);
    });
  const state = await handle.jsonValue();
  if (state === "error") throw new Error(`${what}: page reported an error; page log:\n${await pageLog(page)}`);
  return state;
}

async function pageLog(page) {
  return page.$eval("#log", (el) => el.textContent).catch(() => "(no log)");
}

async function pageObjects(page) {
  return page.$$eval("#objects li", (lis) =>
    lis.map((li) => ({ group: Number(li.dataset.group), object: Number(li.dataset.object), text: li.textContent.replace(/^.*?: /, "") })),
  );
}

/** Checks `got` (arrival order) against `expected` texts: all present, once, each group in order. */
function checkOrder(got, expected, perGroup, what) {
  const problems = [];
  const texts = got.map((o) => o.text);
  if (texts.length !== expected.length) problems.push(`${texts.length} objects, expected ${expected.length}`);
  const sorted = [...texts].sort((a, b) => expected.indexOf(a) - expected.indexOf(b));
  if (JSON.stringify(sorted) !== JSON.stringify(expected)) problems.push(`objects ${JSON.stringify(texts)} are not ${JSON.stringify(expected)}`);
  // Within a group (one subgroup stream) objects must arrive in order.
  const groupOf = (t) => Math.floor(expected.indexOf(t) / perGroup);
  const lastIndex = new Map();
  for (const t of texts) {
    const i = expected.indexOf(t);
    const g = groupOf(t);
    if (lastIndex.has(g) && lastIndex.get(g) > i) problems.push(`${t} arrived after a later object of its group`);
    lastIndex.set(g, i);
  }
  const strict = JSON.stringify(texts) === JSON.stringify(expected);
  if (problems.length) throw new Error(`${what}: ${problems.join("; ")}`);
  return strict;
}

/** Waits for a child to exit by itself; resolves with [code, signal]. */
async function exitWithin(child, ms, what) {
  if (child.exitCode !== null || child.signalCode !== null) return [child.exitCode, child.signalCode];
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still running after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([once(child, "exit"), limit]);
  } finally {
    clearTimeout(timer);
  }
}

/** Closes the page's MoQT session (WebTransport close, code 0), then the tab. */
async function closePage(page) {
  await page.evaluate(() => window.moqConnection?.close());
  await page.close();
}

async function newPage(httpPort, query) {
  const page = await browser.newPage();
  openPages.set(page, query.mode);
  page.on("close", () => openPages.delete(page));
  await page.setViewport({ width: 900, height: 900 });
  page.on("pageerror", (e) => console.log(`  [page error] ${e.message}`));
  const url = `http://127.0.0.1:${httpPort}/index.html?${new URLSearchParams(query)}`;
  await page.goto(url, { waitUntil: "load", timeout: LIMIT_MS });
  return page;
}

async function main() {
  mkdirSync(outDir, { recursive: true });
  const t0 = performance.now();
  const ms = () => `${Math.round(performance.now() - t0)} ms`;
  await buildBundle();

  const relayPort = await freeUdpPort();
  const relay = start("relay", ["relay", "--bind", `127.0.0.1:${relayPort}`, "--dev"]);
  await relay.stderrLines.waitFor(/relay listening/, LIMIT_MS, "relay start");
  const fingerprint = relay.stderrLines.lines.map((l) => l.match(/fingerprint=([0-9a-f]{64})/)?.[1]).find(Boolean);
  if (!fingerprint) throw new Error("relay did not log its certificate fingerprint");
  const relayUrl = `https://127.0.0.1:${relayPort}/`;
  console.log(`relay ${relayUrl} fingerprint ${fingerprint} (${ms()})`);

  const httpPort = await freeTcpPort(PORTS[0], PORTS[1]);
  const server = await serveStatic(here, httpPort);
  console.log(`page at http://127.0.0.1:${httpPort}/index.html`);

  userDataDir = mkdtempSync(join(tmpdir(), "moqlink-web-chromium-"));
  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    userDataDir,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  console.log(`${await browser.version()} started (${ms()})`);
  const nonce = `${process.pid}-${Date.now().toString(36)}`;
  const tls = ["--tls-fingerprint", fingerprint];

  // (a) moqlink pub -> relay -> page
  {
    const t = performance.now();
    const ns = `moqlink-web/${nonce}/a`;
    const pub = start("pub", ["pub", ...tls, "--namespace", ns, "--track", "text", "--objects-per-group", String(PER_GROUP), relayUrl]);
    await pub.stderrLines.waitFor(/namespace published/, LIMIT_MS, "moqlink pub PUBLISH_NAMESPACE_OK");
    const page = await newPage(httpPort, { mode: "sub", relay: relayUrl, fingerprint, namespace: ns, track: "text", count: String(N) });
    await waitState(page, ["subscribed"], "(a) page SUBSCRIBE");
    const expected = Array.from({ length: N }, (_, i) => `cli-${i}`);
    pub.stdin.write(expected.map((l) => `${l}\n`).join(""));
    await waitState(page, ["done"], "(a) page receiving objects");
    const got = await pageObjects(page);
    const strict = checkOrder(got, expected, PER_GROUP, "(a) moqlink pub -> page");
    const shot = join(outDir, "page-sub.png");
    await page.screenshot({ path: shot, fullPage: true });
    writeFileSync(join(outDir, "page-sub.log"), await pageLog(page));
    console.log(`ok (a) moqlink pub -> relay -> page: ${got.length} objects, each group in order` +
      `${strict ? ", all in publish order" : ""} (${Math.round(performance.now() - t)} ms); screenshot ${shot}`);
    pub.stdin.end();
    const [pubCode] = await exitWithin(pub, LIMIT_MS, "moqlink pub after end of input");
    if (pubCode !== 0) throw new Error(`(a) moqlink pub exited with ${pubCode}`);
    await closePage(page);
  }

  // (b) page -> relay -> moqlink sub
  {
    const t = performance.now();
    const ns = `moqlink-web/${nonce}/b`;
    const expected = Array.from({ length: N }, (_, i) => `web-${i}`);
    const page = await newPage(httpPort, { mode: "pub", relay: relayUrl, fingerprint, namespace: ns, track: "text", count: String(N), "per-group": String(PER_GROUP), prefix: "web-" });
    await waitState(page, ["announced"], "(b) page PUBLISH_NAMESPACE");
    // The page writes its objects the moment the relay's SUBSCRIBE reaches it. moqlink sub's
    // SUBSCRIBE opened the relay's upstream subscription, so the relay answers it from the
    // page's SUBSCRIBE_OK (nothing published yet): with the default Largest Object filter
    // (§9.7) every object arrives. (Before the relay did so, group 0 was lost in 3 of 7 runs.)
    const sub = start("sub", ["sub", ...tls, "--namespace", ns, "--track", "text", "--count", String(N), relayUrl]);
    await sub.stdoutLines.waitForCount(N, LIMIT_MS, "(b) moqlink sub printing objects");
    const got = sub.stdoutLines.lines.slice(0, N).map((text) => ({ text }));
    const strict = checkOrder(got, expected, PER_GROUP, "(b) page -> moqlink sub");
    const shot = join(outDir, "page-pub.png");
    await page.screenshot({ path: shot, fullPage: true });
    writeFileSync(join(outDir, "page-pub.log"), await pageLog(page));
    console.log(`ok (b) page -> relay -> moqlink sub: ${got.length} objects, each group in order` +
      `${strict ? ", all in publish order" : ""} (${Math.round(performance.now() - t)} ms); screenshot ${shot}`);
    const [subCode] = await exitWithin(sub, LIMIT_MS, "moqlink sub after --count objects");
    if (subCode !== 0) throw new Error(`(b) moqlink sub exited with ${subCode}`);
    await closePage(page);
  }
  // (c) page -> relay -> page. @moq/lite always subscribes with the Largest Object filter and
  // the publishing page writes the moment the relay's SUBSCRIBE reaches it: the relay answers
  // the subscribing page from the publisher's SUBSCRIBE_OK, so group 0 is not skipped (it was in
  // 2 of 16 runs before). MOQLINK_WEB_PAGE_TO_PAGE=0 leaves it out.
  if (process.env.MOQLINK_WEB_PAGE_TO_PAGE !== "0") {
    const t = performance.now();
    const ns = `moqlink-web/${nonce}/c`;
    const expected = Array.from({ length: N }, (_, i) => `page-${i}`);
    const pubPage = await newPage(httpPort, { mode: "pub", relay: relayUrl, fingerprint, namespace: ns, track: "text", count: String(N), "per-group": String(PER_GROUP), prefix: "page-" });
    await waitState(pubPage, ["announced"], "(c) publishing page PUBLISH_NAMESPACE");
    const subPage = await newPage(httpPort, { mode: "sub", relay: relayUrl, fingerprint, namespace: ns, track: "text", count: String(N) });
    await waitState(subPage, ["subscribed", "done"], "(c) subscribing page SUBSCRIBE");
    await waitState(subPage, ["done"], "(c) subscribing page receiving objects").catch(async (e) => {
      throw new Error(`${e.message.split("\n")[0]}; received ${JSON.stringify((await pageObjects(subPage)).map((o) => o.text))}`);
    });
    const got = await pageObjects(subPage);
    const strict = checkOrder(got, expected, PER_GROUP, "(c) page -> page");
    const shot = join(outDir, "page-to-page.png");
    await subPage.screenshot({ path: shot, fullPage: true });
    console.log(`ok (c) page -> relay -> page: ${got.length} objects, each group in order` +
      `${strict ? ", all in publish order" : ""} (${Math.round(performance.now() - t)} ms); screenshot ${shot}`);
    await closePage(subPage);
    await closePage(pubPage);
  }
  server.close();
  console.log(`PASS (${ms()})`);
}

let code = 0;
try {
  await main();
} catch (e) {
  code = 1;
  console.error(`FAIL: ${e.stack ?? e}`);
  for (const [page, mode] of openPages) {
    await page.screenshot({ path: join(outDir, `page-${mode}-failed.png`), fullPage: true }).catch(() => {});
    writeFileSync(join(outDir, `page-${mode}-failed.log`), await pageLog(page));
  }
  console.error(`logs in ${outDir}`);
} finally {
  const tStop = performance.now();
  await browser?.close().catch(() => {});
  const tBrowser = performance.now();
  for (const c of [...children].reverse()) await stop(c); // clients first: the relay then has no session to drain
  console.log(`cleanup: browser ${Math.round(tBrowser - tStop)} ms, processes ${Math.round(performance.now() - tBrowser)} ms`);
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(code);
