//! Codec speed: moqlink's draft-14 codec beside cloudflare's `moq-transport` 0.14.2 and
//! `moqtail` 0.11.1, on the same bytes.
//!
//! - `control/decode`, `control/encode`: the draft-14 control messages of
//!   `testvectors/draft14/control/{subscribe,fetch,namespace,publish,track_status}.json` that all
//!   three libraries decode (SETUP is left out: moq-transport frames it apart), one pass over
//!   the set per iteration. Encode starts from each library's own decoded values.
//! - `subgroup/decode`, `subgroup/encode`: one subgroup stream (type 0x10: subgroup 0, no
//!   extensions) of 64 objects × 1,200 bytes, written by hand below from §10.4.2. moqlink
//!   decodes through its incremental `StreamReader` (the relay's receive path); the others
//!   through their object decoders, payloads taken as zero-copy `Bytes` slices where the API
//!   allows.
//!
//! `cargo bench -p moqlink-differential --bench codec`; `bench/codec.py` turns criterion's
//! estimates into the ratio table of `bench/CODEC.md`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use moqlink_model::control::ControlMessage;
use moqlink_model::data::{StreamEvent, StreamReader, SubgroupHeader, SubgroupObject};
use moqlink_model::{Encoding, Version};
use std::path::Path;

const OBJECTS: u64 = 64;
const PAYLOAD: usize = 1200;

/// Valid control vectors' wire images (hex decoded).
fn control_images() -> Vec<Bytes> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testvectors/draft14/control");
    let mut out = Vec::new();
    for f in ["subscribe", "fetch", "namespace", "publish", "track_status"] {
        let text = std::fs::read_to_string(dir.join(format!("{f}.json"))).expect("vector file");
        let v: serde_json::Value = serde_json::from_str(&text).expect("vector json");
        for vec in v["vectors"].as_array().expect("vectors") {
            if vec.get("decoded").is_some() {
                let hex = vec["hex"].as_str().expect("hex");
                out.push(Bytes::from(hex::decode(hex).expect("hex digits")));
            }
        }
    }
    out
}

/// The images every library decodes whole, with each library's decoded values.
struct ControlSet {
    images: Vec<Bytes>,
    ours: Vec<ControlMessage>,
    mt: Vec<moq_transport::message::Message>,
    mtail: Vec<moqtail::model::control::control_message::ControlMessage>,
}

fn control_set() -> ControlSet {
    use moq_transport::coding::Decode;
    let mut set = ControlSet {
        images: vec![],
        ours: vec![],
        mt: vec![],
        mtail: vec![],
    };
    for img in control_images() {
        let mut a = img.clone();
        let ours = ControlMessage::decode(&mut a, Version::DRAFT_14);
        let mut b = &img[..];
        let mt = moq_transport::message::Message::decode(&mut b);
        let mut c = img.clone();
        let mtail = moqtail::model::control::control_message::ControlMessage::deserialize(&mut c);
        if let (Ok(o), Ok(m), Ok(t)) = (ours, mt, mtail) {
            if a.is_empty() && b.is_empty() && c.is_empty() {
                set.images.push(img);
                set.ours.push(o);
                set.mt.push(m);
                set.mtail.push(t);
            }
        }
    }
    assert!(set.images.len() >= 20, "too few shared control vectors");
    set
}

fn bench_control(c: &mut Criterion) {
    use moq_transport::coding::{Decode, Encode};
    let set = control_set();
    let bytes: usize = set.images.iter().map(|b| b.len()).sum();
    eprintln!("control set: {} messages, {bytes} bytes", set.images.len());
    let mut g = c.benchmark_group("control/decode");
    g.throughput(Throughput::Elements(set.images.len() as u64));
    g.bench_function("moqlink", |b| {
        b.iter(|| {
            for img in &set.images {
                let mut buf = img.clone();
                black_box(ControlMessage::decode(&mut buf, Version::DRAFT_14).ok());
            }
        })
    });
    g.bench_function("moq-transport", |b| {
        b.iter(|| {
            for img in &set.images {
                let mut buf = &img[..];
                black_box(moq_transport::message::Message::decode(&mut buf).ok());
            }
        })
    });
    g.bench_function("moqtail", |b| {
        b.iter(|| {
            for img in &set.images {
                let mut buf = img.clone();
                black_box(
                    moqtail::model::control::control_message::ControlMessage::deserialize(&mut buf)
                        .ok(),
                );
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("control/encode");
    g.throughput(Throughput::Elements(set.images.len() as u64));
    let enc = Encoding::new(Version::DRAFT_14);
    let mut out = BytesMut::with_capacity(64 * 1024);
    g.bench_function("moqlink", |b| {
        b.iter(|| {
            out.clear();
            for m in &set.ours {
                m.encode(&mut out, enc).expect("encode");
            }
            black_box(out.len())
        })
    });
    g.bench_function("moq-transport", |b| {
        b.iter(|| {
            out.clear();
            for m in &set.mt {
                m.encode(&mut out).expect("encode");
            }
            black_box(out.len())
        })
    });
    g.bench_function("moqtail", |b| {
        b.iter(|| {
            out.clear();
            for m in &set.mtail {
                // moqtail returns each message as its own Bytes.
                out.put(m.serialize().expect("encode"));
            }
            black_box(out.len())
        })
    });
    g.finish();
}

/// SUBGROUP_HEADER type 0x10 {alias 7, group 3, priority 128}, then objects 0..63, each
/// {delta 0 after the first (ID 0), length 1200 (2-byte varint 0x44b0), payload}: §10.4.2.
fn subgroup_stream() -> Bytes {
    let mut b = BytesMut::new();
    b.put_slice(&[0x10, 0x07, 0x03, 0x80]);
    for i in 0..OBJECTS {
        b.put_slice(&[0x00, 0x44, 0xb0]);
        b.put_bytes(i as u8, PAYLOAD);
    }
    b.freeze()
}

fn bench_subgroup(c: &mut Criterion) {
    use moq_transport::coding::{Decode, Encode};
    let stream = subgroup_stream();
    let mut g = c.benchmark_group("subgroup/decode");
    g.throughput(Throughput::Elements(OBJECTS));
    g.bench_function("moqlink", |b| {
        b.iter(|| {
            let mut r = StreamReader::default();
            r.push(stream.clone());
            let mut n = 0;
            while let Ok(Some(ev)) = r.next_event() {
                if let StreamEvent::SubgroupObject(o) = ev {
                    n += o.payload.len();
                }
            }
            assert_eq!(n, PAYLOAD * OBJECTS as usize);
            black_box(n)
        })
    });
    g.bench_function("moq-transport", |b| {
        b.iter(|| {
            let mut buf = stream.clone();
            let h = moq_transport::data::StreamHeader::decode(&mut buf).expect("header");
            black_box(&h);
            let mut n = 0;
            while buf.has_remaining() {
                let o = moq_transport::data::SubgroupObject::decode(&mut buf).expect("object");
                let payload = buf.copy_to_bytes(o.payload_length);
                n += payload.len();
            }
            assert_eq!(n, PAYLOAD * OBJECTS as usize);
            black_box(n)
        })
    });
    g.bench_function("moqtail", |b| {
        b.iter(|| {
            let mut buf = stream.clone();
            let h = moqtail::model::data::subgroup_header::SubgroupHeader::deserialize(&mut buf)
                .expect("header");
            let ext = h.header_type.has_extensions();
            let mut prev = None;
            let mut n = 0;
            while buf.has_remaining() {
                let o = moqtail::model::data::subgroup_object::SubgroupObject::deserialize(
                    &mut buf, &prev, ext,
                )
                .expect("object");
                prev = Some(o.object_id);
                n += o.payload.as_ref().map_or(0, |p| p.len());
            }
            assert_eq!(n, PAYLOAD * OBJECTS as usize);
            black_box(n)
        })
    });
    g.finish();

    // Each library's own decoded values, encoded back into one stream per iteration.
    let enc = Encoding::new(Version::DRAFT_14);
    let mut buf = stream.clone();
    let ours_h = SubgroupHeader::decode(&mut buf).expect("header");
    let mut ours = Vec::new();
    let mut prev = None;
    while buf.has_remaining() {
        let o = SubgroupObject::decode(&mut buf, &ours_h, prev).expect("object");
        prev = Some(o.object_id);
        ours.push(o);
    }
    let mut buf = stream.clone();
    let mt_h = moq_transport::data::StreamHeader::decode(&mut buf).expect("header");
    let mut mt = Vec::new();
    while buf.has_remaining() {
        let o = moq_transport::data::SubgroupObject::decode(&mut buf).expect("object");
        let p = buf.copy_to_bytes(o.payload_length);
        mt.push((o, p));
    }
    let mut buf = stream.clone();
    let tail_h =
        moqtail::model::data::subgroup_header::SubgroupHeader::deserialize(&mut buf).expect("hdr");
    let ext = tail_h.header_type.has_extensions();
    let mut tail = Vec::new();
    let mut prev = None;
    while buf.has_remaining() {
        let o = moqtail::model::data::subgroup_object::SubgroupObject::deserialize(
            &mut buf, &prev, ext,
        )
        .expect("object");
        prev = Some(o.object_id);
        tail.push(o);
    }

    let mut g = c.benchmark_group("subgroup/encode");
    g.throughput(Throughput::Elements(OBJECTS));
    let mut out = BytesMut::with_capacity(stream.len() * 2);
    g.bench_function("moqlink", |b| {
        b.iter(|| {
            out.clear();
            ours_h.encode(&mut out, enc).expect("header");
            let mut prev = None;
            for o in &ours {
                o.encode(&mut out, &ours_h, prev, enc).expect("object");
                prev = Some(o.object_id);
            }
            assert_eq!(out.len(), stream.len());
            black_box(out.len())
        })
    });
    g.bench_function("moq-transport", |b| {
        b.iter(|| {
            out.clear();
            mt_h.encode(&mut out).expect("header");
            for (o, p) in &mt {
                o.encode(&mut out).expect("object");
                out.put_slice(p);
            }
            assert_eq!(out.len(), stream.len());
            black_box(out.len())
        })
    });
    g.bench_function("moqtail", |b| {
        b.iter(|| {
            out.clear();
            out.put(tail_h.serialize().expect("header"));
            let mut prev = None;
            for o in &tail {
                out.put(o.serialize(prev, ext).expect("object"));
                prev = Some(o.object_id);
            }
            assert_eq!(out.len(), stream.len());
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench_control, bench_subgroup);
criterion_main!(benches);
