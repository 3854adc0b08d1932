#!/usr/bin/env python3
"""The peer matrix: every test client against every relay, over raw QUIC and WebTransport, on
loopback. moqlink's own client and relay take part beside the peers; the peer-to-peer cells are
the baseline that shows what a peer can do at all.

    interop/peers/matrix.py --bin-dir target/release [--peers DIR] [--out interop]

Writes RESULTS.md and results.json to --out. Exits 1 when a cell with moqlink in it fails although
the baseline shows the peer can do that case (a peer client passing it against some peer relay,
or some peer client passing it against the peer relay).
"""

import argparse
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time

TRANSPORTS = ("moqt", "https")
TAP_LINE = re.compile(r"^(not ok|ok) \d+ - (\S+)(.*)$")


def relays(peers, bin_dir, cert, key):
    """Relay name -> (version, command for a port, extra environment)."""
    return {
        "moqlink relay": (
            "this tree",
            lambda port: [os.path.join(bin_dir, "moqlink"), "relay", "--bind", f"127.0.0.1:{port}",
                          "--cert", cert, "--key", key],
            {},
        ),
        "cloudflare moq-relay-ietf": (
            "0.7.19",
            lambda port: [f"{peers}/moq-relay-ietf/bin/moq-relay-ietf", "--bind", f"127.0.0.1:{port}",
                          "--tls-cert", cert, "--tls-key", key,
                          "--coordinator-file", f"/tmp/moqlink-matrix-coord-{port}.json"],
            {},
        ),
        "moq-dev moq-relay": (
            "0.17.10",
            lambda port: [f"{peers}/moq-relay/bin/moq-relay", "--listen", f"127.0.0.1:{port}",
                          "--listen-tls-cert", cert, "--listen-tls-key", key, "--auth-public", "**"],
            {"MOQ_CLIENT_WEBSOCKET_ENABLED": None},
        ),
        "aiomoqt moq-interop-relay": (
            "0.13.3",
            lambda port: [f"{peers}/aiomoqt-venv/bin/moq-interop-relay", "--port", str(port), "--dual",
                          "--cert", cert, "--key", key, "--draft", "14"],
            {},
        ),
    }


def clients(peers, bin_dir):
    """Client name -> (version, list of argument lists for a URL, extra environment)."""
    aio = f"{peers}/aiomoqt-venv/bin/moq-interop-client"
    return {
        "moqlink-interop": (
            "this tree",
            lambda url: [[os.path.join(bin_dir, "moqlink-interop"), "-r", url, "--tls-disable-verify"]],
            {},
        ),
        "cloudflare moq-test-client": (
            "0.1.7",
            lambda url: [[f"{peers}/moq-test-client/bin/moq-test-client", "-r", url, "--tls-disable-verify"]],
            {"RUST_LOG": "off"},
        ),
        "aiomoqt moq-interop-client": (
            "0.13.3",
            lambda url: [[aio, "-r", url, "--tls-disable-verify", "--draft", "14"],
                         [aio, "-r", url, "--tls-disable-verify", "--draft", "14", "-t", "fetch"],
                         [aio, "-r", url, "--tls-disable-verify", "--draft", "14", "-t", "join"]],
            {},
        ),
    }


def environment(extra):
    env = dict(os.environ)
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def parse_tap(text):
    """[(case, status, detail)] from TAP output."""
    out = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = TAP_LINE.match(line)
        if not m:
            continue
        ok, case, rest = m.groups()
        if "# SKIP" in rest:
            status, detail = "skip", rest.split("# SKIP", 1)[1].strip()
        else:
            status, detail = ("pass" if ok == "ok" else "fail"), ""
        if status == "fail":
            block = []
            for follow in lines[i + 1:i + 12]:
                if TAP_LINE.match(follow):
                    break
                s = follow.strip()
                if s.startswith(("message:", "expected:", "received:")):
                    block.append(s)
            detail = "; ".join(block)
        out.append((case, status, detail))
    return out


def run_client(argv, env, timeout):
    try:
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        return p.stdout, p.returncode
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return out, -1
    except FileNotFoundError:
        return "", -2


def start_relay(argv, env, log):
    return subprocess.Popen(argv, env=env, stdout=log, stderr=log, start_new_session=True)


def wait_ready(proc, client, port, limit=30.0):
    """Whether the relay completed a SETUP over raw QUIC within `limit` seconds (a slow start
    on a loaded machine is not a failed cell)."""
    deadline = time.monotonic() + limit
    time.sleep(0.5)
    while time.monotonic() < deadline and proc.poll() is None:
        out, _ = run_client([client, "-r", f"moqt://127.0.0.1:{port}", "--tls-disable-verify",
                             "-t", "setup-only"], dict(os.environ), 5)
        if any(status == "pass" for _, status, _ in parse_tap(out)):
            return True
        time.sleep(0.5)
    return False


def stop(proc):
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=8)
    except Exception:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except Exception:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--peers", default=os.environ.get("MOQLINK_PEERS", os.path.expanduser("~/.cache/moqlink-peers")))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--port", type=int, default=47300)
    ap.add_argument("--timeout", type=int, default=120)
    args = ap.parse_args()
    cert, key = f"{args.peers}/certs/cert.pem", f"{args.peers}/certs/priv.key"
    bin_dir = os.path.abspath(args.bin_dir)
    R, C = relays(args.peers, bin_dir, cert, key), clients(args.peers, bin_dir)
    cells = []
    port = args.port
    logdir = "/tmp/moqlink-matrix-logs"
    os.makedirs(logdir, exist_ok=True)
    for rname, (rver, rcmd, renv) in R.items():
        port += 1
        log = open(f"{logdir}/{rname.replace(' ', '_')}.log", "w")
        proc = start_relay(rcmd(port), environment(renv), log)
        ready = wait_ready(proc, os.path.join(bin_dir, "moqlink-interop"), port)
        if not ready:
            why = "relay did not start" if proc.poll() is not None else "relay not ready after 30 s"
            for cname in C:
                for t in TRANSPORTS:
                    cells.append(dict(relay=rname, client=cname, transport=t, case="*", status="error",
                                      detail=why))
            stop(proc)
            log.close()
            continue
        for cname, (cver, ccmds, cenv) in C.items():
            for t in TRANSPORTS:
                url = f"{t}://127.0.0.1:{port}"
                seen = set()
                for argv in ccmds(url):
                    out, code = run_client(argv, environment(cenv), args.timeout)
                    parsed = parse_tap(out)
                    if not parsed:
                        cells.append(dict(relay=rname, client=cname, transport=t, case="*", status="error",
                                          detail=f"no TAP output (exit {code})"))
                    for case, status, detail in parsed:
                        if case in seen:
                            continue
                        seen.add(case)
                        cells.append(dict(relay=rname, client=cname, transport=t, case=case,
                                          status=status, detail=detail))
                print(f"{rname} <- {cname} over {t}: " +
                      ", ".join(f"{c['case']}={c['status']}" for c in cells
                                if c["relay"] == rname and c["client"] == cname and c["transport"] == t),
                      file=sys.stderr)
        stop(proc)
        log.close()

    # The baseline: what peers do among themselves.
    def passes(relay=None, client=None, case=None, transport=None):
        return any(c["status"] == "pass" and c["case"] == case and c["transport"] == transport
                   and (relay is None or c["relay"] == relay) and (client is None or c["client"] == client)
                   and c["relay"] != "moqlink relay" and c["client"] != "moqlink-interop"
                   for c in cells)

    known = {}
    kpath = os.path.join(os.path.dirname(os.path.abspath(__file__)), "known-deviations.json")
    if os.path.exists(kpath):
        with open(kpath) as f:
            for d in json.load(f)["deviations"]:
                known[(d["client"], d["relay"], d["case"])] = f"peer deviation ({d['section']}): {d['reason']}"
    regressions = []
    for c in cells:
        if c["status"] not in ("fail", "error"):
            continue
        if c["client"] == "moqlink-interop" and c["relay"] != "moqlink relay":
            possible = passes(relay=c["relay"], case=c["case"], transport=c["transport"])
        elif c["relay"] == "moqlink relay" and c["client"] != "moqlink-interop":
            possible = passes(client=c["client"], case=c["case"], transport=c["transport"])
        elif c["relay"] == "moqlink relay":
            possible = True
        else:
            continue
        deviation = known.get((c["client"], c["relay"], c["case"]))
        if deviation:
            c["baseline"] = deviation
            continue
        c["baseline"] = "peer can do it" if possible else "peer cannot (baseline)"
        if possible:
            regressions.append(c)

    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    versions = {n: v for n, (v, _, _) in list(R.items()) + list(C.items())}
    out = dict(date=date, versions=versions, cells=cells, regressions=len(regressions))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(out, f, indent=1)
    with open(os.path.join(args.out, "RESULTS.md"), "w") as f:
        f.write(render(date, versions, cells))
    print(f"{len(cells)} cells, {len(regressions)} regressions", file=sys.stderr)
    for c in regressions:
        print(f"REGRESSION {c['client']} -> {c['relay']} over {c['transport']}: {c['case']} {c['detail']}",
              file=sys.stderr)
    return 1 if regressions else 0


def render(date, versions, cells):
    mark = {"pass": "ok", "fail": "FAIL", "skip": "skip", "error": "ERROR"}
    lines = [
        "# Interop results", "",
        f"Generated by `interop/peers/matrix.py` on {date}, on loopback, every client against every",
        "relay over raw QUIC (`moqt://`, ALPN `moq-00`) and WebTransport (`https://`). Peer-to-peer",
        "cells are the baseline: a FAIL there is the peers' own gap, and a moqlink cell failing where the",
        "baseline also fails is marked as such rather than hidden.", "",
        "| implementation | version |", "|---|---|",
    ]
    lines += [f"| {n} | {v} |" for n, v in versions.items()]
    pairs = []
    for c in cells:
        key = (c["client"], c["relay"])
        if key not in pairs:
            pairs.append(key)
    for client, relay in pairs:
        lines += ["", f"## {client} → {relay}", "", "| case | moqt | https | notes |", "|---|---|---|---|"]
        cases = []
        for c in cells:
            if c["client"] == client and c["relay"] == relay and c["case"] not in cases:
                cases.append(c["case"])
        for case in cases:
            row, notes = [], []
            for t in TRANSPORTS:
                cell = next((c for c in cells if c["client"] == client and c["relay"] == relay
                             and c["transport"] == t and c["case"] == case), None)
                if cell is None:
                    row.append("-")
                    continue
                row.append(mark[cell["status"]])
                note = cell.get("baseline", "")
                if cell["detail"] and cell["status"] != "pass":
                    note = (note + ": " if note else "") + cell["detail"][:160].replace("|", "/")
                if note and note not in notes:
                    notes.append(f"{t}: {note}")
            lines.append(f"| {case} | {row[0]} | {row[1]} | {'; '.join(notes)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
