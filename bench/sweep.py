#!/usr/bin/env python3
"""Side-by-side relay benchmark: moqlink, cloudflare and moq-dev relays on loopback, the same
`moqlink bench` sweep against each, in one run. Writes bench/RESULTS.md (medians with ranges and
ratios) and bench/results.svg (relay CPU per delivered object and p99 latency against N).

Each (relay, N, run) gets a fresh relay process so its idle RSS is a clean baseline. Runs are
interleaved (run 1 of every relay and N, then run 2...) so slow drifts of a shared machine fall on
every relay alike.

    bench/sweep.py                              # N = 25,100,200,400, 3 runs, 15 s each
    bench/sweep.py --ns 25,100 --runs 1 --duration 5 --out /tmp/r.md --svg /tmp/r.svg

Needs the peers installed by interop/peers/install.sh (~/.cache/moqlink-peers) and a release
build of moqlink (`cargo build --release`).
"""

import argparse
import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "interop", "peers"))
import matrix  # noqa: E402  (the peers' start commands live there, one place)

RELAYS = ["moqlink relay", "cloudflare moq-relay-ietf", "moq-dev moq-relay"]
SHORT = {"moqlink relay": "moqlink", "cloudflare moq-relay-ietf": "cloudflare",
         "moq-dev moq-relay": "moq-dev"}
COLORS = {"moqlink": "#1f77b4", "cloudflare": "#ff7f0e", "moq-dev": "#2ca02c"}


def start_relay(cmd, env, log):
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                         start_new_session=True)
    time.sleep(2.0)
    if p.poll() is not None:
        raise RuntimeError(f"relay exited at start: {' '.join(cmd)}")
    return p


def stop_relay(p):
    try:
        os.killpg(p.pid, signal.SIGINT)
        p.wait(timeout=8)
    except Exception:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def relay_pid(p):
    """The relay process itself (the peers start directly, so it is the child)."""
    return p.pid


def one_run(args, name, version, cmd_for, env, n, port, log):
    p = start_relay(cmd_for(port), env, log)
    try:
        bench = [os.path.join(args.bin_dir, "moqlink"), "bench", f"moqt://127.0.0.1:{port}",
                 "--tls-disable-verify", "-n", str(n), "--rate", str(args.rate),
                 "--size", str(args.size), "--group-len", str(args.group_len),
                 "--duration", str(args.duration), "--relay-pid", str(relay_pid(p)), "--json"]
        out = subprocess.run(bench, capture_output=True, text=True,
                             timeout=args.duration + 120)
        if out.returncode != 0:
            return {"error": out.stderr.strip().splitlines()[-1:] or ["failed"]}
        d = json.loads(out.stdout)
        r = d.get("relay", {})
        return {
            "cpu_us": r.get("cpu_us_per_object"),
            "p99_ms": d["latency"].get("p99_ms"),
            "p50_ms": d["latency"].get("p50_ms"),
            "delivered": d.get("delivered_pct"),
            "rss_kb": r.get("rss_per_subscriber_kb"),
            "failed": d.get("failed_sessions", 0),
        }
    finally:
        stop_relay(p)


def med(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None, None, None
    return statistics.median(vals), min(vals), max(vals)


def fmt(m, digits=1):
    v, lo, hi = m
    if v is None:
        return "–"
    if lo == hi:
        return f"{v:.{digits}f}"
    return f"{v:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def ratio(a, b):
    if a[0] is None or b[0] is None or b[0] == 0:
        return "–"
    return f"{a[0] / b[0]:.2f}×"


def svg(results, ns, path):
    """Two panels: CPU µs per delivered object and p99 ms against N, one line per relay."""
    w, h, pad = 420, 300, 50
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * w}" height="{h + 40}" '
             'font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>']
    for panel, (key, title) in enumerate([("cpu_us", "relay CPU µs per delivered object"),
                                          ("p99_ms", "p99 publish→deliver latency, ms")]):
        x0 = panel * w
        series = {}
        for relay in results:
            pts = []
            for n in ns:
                v = med([r.get(key) for r in results[relay].get(n, [])])[0]
                if v is not None:
                    pts.append((n, v))
            series[SHORT[relay]] = pts
        ymax = max([v for pts in series.values() for _, v in pts] + [1]) * 1.1
        nmin, nmax = min(ns), max(ns)

        def X(n):
            return x0 + pad + (n - nmin) / max(nmax - nmin, 1) * (w - 2 * pad)

        def Y(v):
            return h - pad + 20 - v / ymax * (h - 2 * pad)
        parts.append(f'<text x="{x0 + w / 2}" y="20" text-anchor="middle">{title}</text>')
        parts.append(f'<line x1="{X(nmin)}" y1="{Y(0)}" x2="{X(nmax)}" y2="{Y(0)}" stroke="black"/>')
        parts.append(f'<line x1="{X(nmin)}" y1="{Y(0)}" x2="{X(nmin)}" y2="{Y(ymax)}" stroke="black"/>')
        for n in ns:
            parts.append(f'<text x="{X(n)}" y="{Y(0) + 15}" text-anchor="middle">{n}</text>')
        for i in range(5):
            v = ymax * i / 4
            parts.append(f'<text x="{X(nmin) - 5}" y="{Y(v) + 4}" text-anchor="end">{v:.0f}</text>')
        parts.append(f'<text x="{x0 + w / 2}" y="{h + 30}" text-anchor="middle">subscribers (N)</text>')
        for k, (name, pts) in enumerate(series.items()):
            c = COLORS[name]
            if len(pts) > 1:
                d = " ".join(f"{X(n):.1f},{Y(v):.1f}" for n, v in pts)
                parts.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="2"/>')
            for n, v in pts:
                parts.append(f'<circle cx="{X(n):.1f}" cy="{Y(v):.1f}" r="3" fill="{c}"/>')
            parts.append(f'<text x="{x0 + w - 100}" y="{40 + 15 * k}" fill="{c}">{name}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "release"))
    ap.add_argument("--peers", default=os.path.expanduser("~/.cache/moqlink-peers"))
    ap.add_argument("--ns", default="25,100,200,400")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--rate", type=int, default=30)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--group-len", type=int, default=30)
    ap.add_argument("--relays", default=",".join(SHORT[r] for r in RELAYS))
    ap.add_argument("--port", type=int, default=5200)
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--svg", default=os.path.join(HERE, "results.svg"))
    ap.add_argument("--json", default=None, help="also write the raw results here")
    args = ap.parse_args()

    ns = [int(x) for x in args.ns.split(",")]
    wanted = set(args.relays.split(","))
    cert = os.path.join(args.peers, "certs", "cert.pem")
    key = os.path.join(args.peers, "certs", "priv.key")
    table = matrix.relays(args.peers, args.bin_dir, cert, key)
    relays = [r for r in RELAYS if SHORT[r] in wanted]
    load_before = os.getloadavg()
    started = datetime.datetime.now(datetime.timezone.utc)
    results = {r: {} for r in relays}
    log = open(os.path.join("/tmp", "moqlink-sweep-relays.log"), "w")
    port = args.port
    for run in range(args.runs):
        for n in ns:
            for relay in relays:
                version, cmd_for, extra = table[relay]
                r = one_run(args, relay, version, cmd_for, matrix.environment(extra), n, port, log)
                port += 1
                results[relay].setdefault(n, []).append(r)
                print(f"run {run + 1} N={n} {SHORT[relay]}: {r}", file=sys.stderr, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({SHORT[r]: v for r, v in results.items()}, f, indent=1)

    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    lines = [
        "# Relay benchmark, side by side",
        "",
        f"Written by `bench/sweep.py` on {started:%Y-%m-%d %H:%M} UTC: moqlink `{commit}`, "
        + ", ".join(f"{r} {table[r][0]}" for r in relays if r != "moqlink relay") + ".",
        f"One publisher at {args.rate} objects/s × {args.size} B, {args.group_len} objects per "
        f"group; N subscriber sessions, one raw QUIC connection each (`moqlink bench`, "
        f"{args.duration} s measured per run, a fresh relay per run); {args.runs} run(s) per "
        f"point, interleaved. Machine: {os.cpu_count()} cores, load average "
        f"{load_before[0]:.1f} at the start. Cells: median (min–max).",
        "",
        "| N | relay | CPU µs per delivered object | p99 ms | delivered % | RSS KB per subscriber |",
        "|---|---|---|---|---|---|",
    ]
    for n in ns:
        for relay in relays:
            rs = results[relay].get(n, [])
            errs = [r["error"] for r in rs if "error" in r]
            ok = [r for r in rs if "error" not in r]
            row = (f"| {n} | {SHORT[relay]} | {fmt(med([r['cpu_us'] for r in ok]))} | "
                   f"{fmt(med([r['p99_ms'] for r in ok]))} | "
                   f"{fmt(med([r['delivered'] for r in ok]))} | "
                   f"{fmt(med([r['rss_kb'] for r in ok]), 0)} |")
            if errs:
                row += f" {len(errs)} run(s) failed: {errs[0]}"
            lines.append(row)
    if "moqlink relay" in relays:
        lines += ["", "Ratios of medians (moqlink ÷ peer; below 1 is better for moqlink):", "",
                  "| N | vs | CPU per object | p99 | RSS per subscriber |", "|---|---|---|---|---|"]
        for n in ns:
            me = [r for r in results["moqlink relay"].get(n, []) if "error" not in r]
            for relay in relays:
                if relay == "moqlink relay":
                    continue
                them = [r for r in results[relay].get(n, []) if "error" not in r]
                cells = [ratio(med([r[k] for r in me]), med([r[k] for r in them]))
                         for k in ("cpu_us", "p99_ms", "rss_kb")]
                lines.append(f"| {n} | {SHORT[relay]} | " + " | ".join(cells) + " |")
    lines += ["", f"![CPU per object and p99 against N]({os.path.basename(args.svg)})", ""]
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    svg(results, ns, args.svg)
    print(f"wrote {args.out} and {args.svg}", file=sys.stderr)


if __name__ == "__main__":
    main()
