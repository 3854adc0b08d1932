#!/usr/bin/env python3
"""The conformance suite against every relay (moqlink's and the peers'), over raw QUIC and
WebTransport, on loopback; writes interop/CONFORMANCE-RESULTS.md with each check's level.

    interop/peers/conformance.py --bin-dir target/debug [--peers DIR] [--previous OLD.md]

Each relay is started fresh for each transport (`relays()` of matrix.py), the suite runs once
with `--format json`, and the raw JSON of every run is kept in --json-dir. With --previous (an
earlier CONFORMANCE-RESULTS.md), a section lists the cells whose verdict changed.
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from matrix import TRANSPORTS, environment, relays, start_relay, stop, wait_ready  # noqa: E402

SHORT = {
    "moqlink relay": "moqlink",
    "cloudflare moq-relay-ietf": "cloudflare",
    "moq-dev moq-relay": "moq-dev",
    "aiomoqt moq-interop-relay": "aiomoqt",
}
CELL = {"pass": "ok", "fail": "**FAIL**", "todo": "TODO", "skip": "skip", None: "—"}


def run_suite(bin_dir, url, timeout, checks=None):
    argv = [os.path.join(bin_dir, "moqlink-interop"), "--conformance", "-r", url,
            "--tls-disable-verify", "--format", "json"]
    if checks:
        argv += ["-t", checks]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return json.loads(p.stdout)
    except (subprocess.TimeoutExpired, json.JSONDecodeError) as e:
        print(f"suite against {url} gave no JSON: {e}", file=sys.stderr)
        return None


def previous_cells(path):
    """{(check, column): verdict word} from an earlier results file's matrix."""
    cells = {}
    header = None
    with open(path) as f:
        for line in f:
            if line.startswith("| check |"):
                header = [c.strip() for c in line.strip().strip("|").split("|")]
                continue
            if header and line.startswith("| `"):
                cols = [c.strip() for c in line.strip().strip("|").split("|")]
                check = cols[0].strip("`")
                for name, value in zip(header, cols):
                    if " " in name and name.split(" ")[-1] in TRANSPORTS:
                        # Older files wrote pass / warn (a robustness warning, now a missed
                        # SHOULD) and notes in parentheses; the first table naming a cell wins.
                        v = value.replace("*", "").lower().split(" (")[0].strip()
                        v = {"pass": "ok", "warn": "todo"}.get(v, v)
                        cells.setdefault((check, name), v)
    return cells


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--peers", default=os.environ.get("MOQLINK_PEERS", os.path.expanduser("~/.cache/moqlink-peers")))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "CONFORMANCE-RESULTS.md"))
    ap.add_argument("--json-dir", default="/tmp/moqlink-conformance")
    ap.add_argument("--previous")
    ap.add_argument("--notes", help="a Markdown file inserted after the introduction (what varied, why)")
    ap.add_argument("--port", type=int, default=47400)
    ap.add_argument("--timeout", type=int, default=1500)
    ap.add_argument("--checks", help="comma-separated check ids (default: all)")
    ap.add_argument("--reuse", action="store_true",
                    help="start from the JSON runs already in --json-dir; this run's results replace "
                         "theirs check by check (e.g. to add new checks with --checks)")
    ap.add_argument("--render-only", action="store_true",
                    help="run nothing: write --out from the JSON runs already in --json-dir")
    ap.add_argument("--only", help="comma-separated relay short names (moqlink,cloudflare,moq-dev,aiomoqt)")
    args = ap.parse_args()
    cert, key = f"{args.peers}/certs/cert.pem", f"{args.peers}/certs/priv.key"
    bin_dir = os.path.abspath(args.bin_dir)
    os.makedirs(args.json_dir, exist_ok=True)
    R = relays(args.peers, bin_dir, cert, key)
    only = set(args.only.split(",")) if args.only else None
    runs = {}  # column -> json
    versions = {}
    port = args.port
    for rname, (rver, rcmd, renv) in R.items():
        short = SHORT.get(rname, rname)
        if only and short not in only:
            continue
        versions[short] = (rname, rver)
        if args.render_only:
            for t in TRANSPORTS:
                path = f"{args.json_dir}/{short}-{t}.json"
                if os.path.exists(path):
                    with open(path) as f:
                        runs[f"{short} {t}"] = json.load(f)
            continue
        for t in TRANSPORTS:
            port += 1
            column = f"{short} {t}"
            log = open(f"{args.json_dir}/{short}-{t}.log", "w")
            proc = start_relay(rcmd(port), environment(renv), log)
            if not wait_ready(proc, os.path.join(bin_dir, "moqlink-interop"), port):
                print(f"{column}: relay not ready", file=sys.stderr)
                runs[column] = None
            else:
                doc = run_suite(bin_dir, f"{t}://127.0.0.1:{port}", args.timeout, args.checks)
                path = f"{args.json_dir}/{short}-{t}.json"
                if doc and args.reuse and os.path.exists(path):
                    with open(path) as f:
                        old = json.load(f)
                    new = {r["id"]: r for r in doc["results"]}
                    merged = [new.pop(r["id"], r) for r in old["results"]] + list(new.values())
                    doc = {"meta": doc["meta"], "results": merged,
                           "summary": {k: sum(1 for r in merged if r["outcome"] == k)
                                       for k in ("pass", "fail", "todo", "skip")}}
                runs[column] = doc
                if doc:
                    with open(f"{args.json_dir}/{short}-{t}.json", "w") as f:
                        json.dump(doc, f, indent=1)
                    print(f"{column}: {doc['summary']}", file=sys.stderr)
            stop(proc)
            log.close()
    render(args, runs, versions)


def md(s):
    return s.replace("|", "\\|").replace("\n", " ")


def render(args, runs, versions):
    columns = list(runs)
    checks = []  # ordered (id, level, section)
    seen = set()
    for doc in runs.values():
        for r in (doc or {}).get("results", []):
            if r["id"] not in seen:
                seen.add(r["id"])
                checks.append((r["id"], r.get("level", ""), r.get("section", "")))
    result = {c: {r["id"]: r for r in (doc or {}).get("results", [])} for c, doc in runs.items()}
    date = datetime.date.today().isoformat()
    out = [
        "# Conformance suite results",
        "",
        f"`moqlink-interop --conformance` ({len(checks)} checks) on {date}, generated by "
        "`interop/peers/conformance.py`: every relay on loopback, started fresh for each transport, over raw "
        "QUIC (`moqt://`) and WebTransport (`https://`), `--tls-disable-verify`, one run per relay and "
        "transport. Relays are started as in `interop/peers/matrix.py` (cloudflare with a fresh "
        "`--coordinator-file`, moq-dev with `--auth-public '**'`, aiomoqt with `--dual --draft 14`).",
        "",
        "Each check tests one requirement of draft-14 and declares its level. **FAIL** is a missed MUST "
        "or MUST NOT; TODO is a missed SHOULD (TAP `# TODO`, not counted as a failure unless "
        "`--strict`); skip is `peer does not support` (the relay answered NOT_SUPPORTED) or a check that "
        "does not apply. `interop/TRACEABILITY.md` maps every normative sentence to its checks.",
        "",
    ]
    if getattr(args, "notes", None):
        with open(args.notes) as f:
            out += [f.read().strip(), ""]
    out += [
        "| relay | version | transport | pass | MUST failed | SHOULD missed | skip |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in columns:
        short, t = c.rsplit(" ", 1)
        name, ver = versions[short]
        doc = runs[c]
        if not doc:
            out.append(f"| {name} | {ver} | {t} | — | — | — | — (no result) |")
            continue
        s = doc["summary"]
        out.append(f"| {name} | {ver} | {t} | {s['pass']} | {s['fail']} | {s['todo']} | {s['skip']} |")
    out += ["", "## Matrix", "",
            "| check | level | section | " + " | ".join(columns) + " |",
            "|---|---|---|" + "---|" * len(columns)]
    for cid, level, section in checks:
        cells = [CELL[result[c].get(cid, {}).get("outcome")] for c in columns]
        out.append(f"| `{cid}` | {level} | {section} | " + " | ".join(cells) + " |")
    for short, (name, ver) in versions.items():
        label = f"{name} ({ver})" if " " in ver else f"{name} {ver}"
        out += ["", f"## {label}: what it missed", ""]
        any_row = False
        for cid, level, section in checks:
            per = {}
            for t in TRANSPORTS:
                r = result.get(f"{short} {t}", {}).get(cid)
                if r and r["outcome"] in ("fail", "todo", "skip"):
                    if r["outcome"] == "skip":
                        text = f"skip: {r.get('message', '')}"
                    else:
                        word = "MUST failed" if r["outcome"] == "fail" else f"{r.get('missed_level', 'SHOULD')} missed"
                        text = (f"{word} ({r.get('message', '')}): expected {r.get('expected', '')} — "
                                f"received {r.get('received', '')}")
                    per.setdefault(text, []).append(t)
            for text, ts in per.items():
                where = "both" if len(ts) == len(TRANSPORTS) else ts[0]
                out.append(f"- `{cid}` ({level}, {section}) [{where}] {md(text)}")
                any_row = True
        if not any_row:
            out.append("Nothing: every check passed over both transports.")
    if args.previous and os.path.exists(args.previous):
        old = previous_cells(args.previous)
        out += ["", "## Changed since the previous results", "",
                "Cells whose verdict differs from the previous results file (new checks not listed).", ""]
        changed = 0
        for cid, level, _ in checks:
            for c in columns:
                o = old.get((cid, c))
                n = CELL[result[c].get(cid, {}).get("outcome")].replace("*", "").lower()
                if o is not None and o != n:
                    out.append(f"- `{cid}` ({level}) {c}: {o} → {n}")
                    changed += 1
        if not changed:
            out.append("None.")
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
