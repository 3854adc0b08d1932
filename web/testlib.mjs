// Helpers for test.mjs: line watching on child output, a static file server, a free TCP port.
import { createWriteStream, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize, sep } from "node:path";
import { createInterface } from "node:readline";

/** Collects a stream's lines (ANSI escapes removed, copied to a file) and waits for patterns. */
export class LineWatcher {
  constructor(stream, file) {
    this.lines = [];
    this.waiters = new Set();
    this.ended = false;
    const copy = createWriteStream(file);
    createInterface({ input: stream }).on("line", (raw) => {
      const line = raw.replace(/\x1b\[[0-9;]*m/g, "");
      copy.write(`${line}\n`);
      this.lines.push(line);
      for (const w of this.waiters) w();
    });
    stream.on("end", () => {
      this.ended = true;
      copy.end();
      for (const w of this.waiters) w();
    });
  }

  /** Resolves with the first line matching `re`; rejects after `ms` or at end of stream. */
  waitFor(re, ms, what) {
    return this.#wait(() => this.lines.find((l) => re.test(l)), ms, `${what}: no line matching ${re}`);
  }

  /** Resolves when at least `n` lines were seen; rejects after `ms` or at end of stream. */
  waitForCount(n, ms, what) {
    return this.#wait(() => (this.lines.length >= n ? this.lines.length : undefined), ms, `${what}: ${n} lines expected`);
  }

  #wait(check, ms, failure) {
    return new Promise((resolve, reject) => {
      const done = (fn, v) => {
        clearTimeout(timer);
        this.waiters.delete(poll);
        fn(v);
      };
      const poll = () => {
        const v = check();
        if (v !== undefined) done(resolve, v);
        else if (this.ended) done(reject, new Error(`${failure} (stream ended); last lines:\n${this.lines.slice(-10).join("\n")}`));
      };
      const timer = setTimeout(() => done(reject, new Error(`${failure} within ${ms} ms; last lines:\n${this.lines.slice(-10).join("\n")}`)), ms);
      this.waiters.add(poll);
      poll();
    });
  }
}

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".map": "application/json", ".css": "text/css" };

/** Serves files under `root` on 127.0.0.1:`port`; resolves with the http.Server. */
export async function serveStatic(root, port) {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
    const file = join(root, path);
    if (!file.startsWith(root + sep) || path.includes(`${sep}node_modules${sep}`)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = readFileSync(file);
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return server;
}

/** Returns a TCP port in [from, to] that could be listened on just now. */
export async function freeTcpPort(from, to) {
  for (let port = from; port <= to; port++) {
    const server = createServer();
    const ok = await new Promise((resolve) => {
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => resolve(true));
    });
    if (ok) {
      await new Promise((resolve) => server.close(resolve));
      return port;
    }
  }
  throw new Error(`no free TCP port in ${from}-${to}`);
}
