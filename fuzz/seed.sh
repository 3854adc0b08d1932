#!/usr/bin/env bash
# Writes the wire images of testvectors/ into fuzz/corpus/<target>/ as seed inputs, each laid out
# as its target reads it (chunking seed byte, selector bytes, then the bytes). Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
python3 - <<'PY'
import glob, hashlib, json, os

SEED = 0x06  # chunks of up to 64 bytes; the fuzzer mutates it
SUBGROUP_TYPES = [0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D]
LITE_MODE = {"request": 0, "session_response": 1, "session_compat_response": 2,
             "announce_response": 3, "subscribe_response": 4}
# The first message a lite stream carries, as an index into the roundtrip target's kind list.
FIRST_REQUEST = {0x00: 0, 0x01: 5, 0x02: 8, 0x20: 3}
FIRST_RESPONSE = {"session_response": 1, "session_compat_response": 4,
                  "announce_response": 6, "subscribe_response": 10}

def vectors(pattern):
    for path in sorted(glob.glob(pattern)):
        for v in json.load(open(path))["vectors"]:
            yield path, v, bytes.fromhex(v["hex"])

def put(target, data):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

for _, v, b in vectors("../testvectors/draft14/control/*.json"):
    put("control_reader", bytes([SEED]) + b)
    put("roundtrip", bytes([0, 0]) + b)
for _, v, b in vectors("../testvectors/draft14/subgroup/*.json"):
    if b and b[0] in SUBGROUP_TYPES:
        put("subgroup_stream", bytes([SEED, SUBGROUP_TYPES.index(b[0])]) + b[1:])
    put("roundtrip", bytes([2, 0]) + b)
for _, v, b in vectors("../testvectors/draft14/fetch/*.json"):
    if b and b[0] == 0x05:
        put("fetch_stream", bytes([SEED]) + b[1:])
    put("roundtrip", bytes([3, 0]) + b)
for _, v, b in vectors("../testvectors/draft14/datagram/*.json"):
    put("datagram", b)
for _, v, b in vectors("../testvectors/draft14/varint/*.json"):
    put("roundtrip", bytes([4, 0]) + b)
for path, v, b in vectors("../testvectors/lite0[12]/*.json"):
    ver = 0 if "/lite01/" in path else 1
    stream = v["stream"]
    if stream == "group":
        put("lite_group", bytes([SEED, ver]) + b)
        put("roundtrip", bytes([1, (11 << 1) | ver]) + b[1:])
        continue
    put("lite_control", bytes([SEED, (LITE_MODE[stream] << 1) | ver]) + b)
    if stream == "request" and b and b[0] in FIRST_REQUEST:
        put("roundtrip", bytes([1, (FIRST_REQUEST[b[0]] << 1) | ver]) + b[1:])
    elif stream in FIRST_RESPONSE:
        put("roundtrip", bytes([1, (FIRST_RESPONSE[stream] << 1) | ver]) + b)
PY
for d in corpus/*/; do echo "$d: $(ls "$d" | wc -l) seeds"; done
