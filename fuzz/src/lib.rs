//! Helpers shared by the fuzz targets: input-derived chunking, and running an incremental reader
//! over a whole input (one-shot) or over chunks, so a target can require that both agree.

use bytes::Bytes;
use moqlink_model::data::Extensions;
use moqlink_model::{DecodeError, Rule};

/// How a reader run ended: cleanly at FIN, or with the rule the first error named.
pub type End = Result<(), Rule>;

/// Splits `data` into chunks whose sizes follow from `seed` (a xorshift stream; the low three
/// bits cap a chunk at 1, 2, 4 … 128 bytes). Empty chunks appear too: a reader must ignore them.
pub fn chunks(data: &Bytes, seed: u8) -> Vec<Bytes> {
    let cap = 1usize << (seed & 7);
    let mut state = u32::from(seed) | 0x9e37_7900;
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state as usize) % (cap + 1); // 0..=cap
        let end = (at + n).min(data.len());
        out.push(data.slice(at..end));
        at = end;
    }
    out
}

/// Feeds `chunks` to a reader, draining every event after each push, then checks its end.
/// Stops at the first error. Returns the events and how the run ended.
pub fn drive<R, E>(
    reader: &mut R,
    chunks: &[Bytes],
    mut push: impl FnMut(&mut R, Bytes),
    mut next: impl FnMut(&mut R) -> Result<Option<E>, DecodeError>,
    finish: impl Fn(&R) -> Result<(), DecodeError>,
) -> (Vec<E>, End) {
    let mut events = Vec::new();
    for c in chunks {
        push(reader, c.clone());
        loop {
            match next(reader) {
                Ok(Some(ev)) => events.push(ev),
                Ok(None) => break,
                Err(e) => return (events, Err(rule_of(&e))),
            }
        }
    }
    (events, finish(reader).map_err(|e| rule_of(&e)))
}

/// The rule of a reader error; a reader never hands `Short` out.
pub fn rule_of(e: &DecodeError) -> Rule {
    assert!(
        !matches!(e, DecodeError::Short),
        "a reader returned Short instead of Ok(None)"
    );
    check_detail(e);
    e.rule()
}

/// Error details built from peer input stay bounded (issue 12): a detail never exceeds this.
pub const MAX_DETAIL: usize = 512;

/// Asserts an error's detail is bounded.
pub fn check_detail(e: &DecodeError) {
    if let DecodeError::Invalid { detail, .. } = e {
        assert!(
            detail.len() <= MAX_DETAIL,
            "error detail of {} bytes: {detail:.200}",
            detail.len()
        );
    }
}

/// Asserts the one-shot and the chunked run agree: same events, same end.
pub fn assert_agree<E: PartialEq + std::fmt::Debug>(
    one: &(Vec<E>, End),
    chunked: &(Vec<E>, End),
    seed: u8,
) {
    assert_eq!(one.0, chunked.0, "events differ when chunked (seed {seed})");
    assert_eq!(one.1, chunked.1, "end differs when chunked (seed {seed})");
}

/// An extension block in canonical form (minimal varints): what a received block and its widened
/// re-encoding share (the model keeps received blocks byte-exact, so `==` tells them apart).
pub fn canon(e: &Extensions) -> Extensions {
    Extensions::from_pairs(&e.pairs()).expect("decoded pairs encode")
}

/// Data stream checks shared by the `subgroup_stream` and `fetch_stream` targets.
pub mod stream {
    use super::{assert_agree, canon, chunks, drive, End};
    use bytes::{Bytes, BytesMut};
    use moqlink_model::data::{StreamEvent, StreamReader};
    use moqlink_model::limits::DEFAULT_MAX_OBJECT_SIZE;
    use moqlink_model::{Encoding, Version};

    fn run(parts: &[Bytes], max_object: usize) -> (Vec<StreamEvent>, End) {
        let mut r = StreamReader::new(max_object);
        drive(
            &mut r,
            parts,
            |r, b| r.push(b),
            |r| r.next_event(),
            |r| r.finish(),
        )
    }

    /// Re-encodes the events of one stream (header first, objects in order).
    fn encode(events: &[StreamEvent], enc: Encoding) -> Bytes {
        let mut out = BytesMut::new();
        let mut header = None;
        let mut prev = None;
        for ev in events {
            match ev {
                StreamEvent::SubgroupHeader(h) => {
                    h.encode(&mut out, enc).expect("decoded header encodes");
                    header = Some(*h);
                }
                StreamEvent::SubgroupObject(o) => {
                    let h = header.as_ref().expect("an object follows its header");
                    o.encode(&mut out, h, prev, enc)
                        .expect("decoded object encodes");
                    prev = Some(o.object_id);
                }
                StreamEvent::FetchHeader(h) => h.encode(&mut out, enc).expect("header encodes"),
                StreamEvent::FetchObject(o) => o.encode(&mut out, enc).expect("object encodes"),
            }
        }
        out.freeze()
    }

    /// `prefix` (the stream type the target fixes) then the input: chunked and one-shot agree,
    /// and what decoded re-encodes to bytes that decode to the same events.
    pub fn check(prefix: &[u8], seed: u8, body: &[u8]) {
        let mut input = BytesMut::from(prefix);
        input.extend_from_slice(body);
        let input = input.freeze();
        // Half the runs use a small object limit, so the limit's verdict is fuzzed too.
        let max_object = if seed & 0x80 != 0 {
            64
        } else {
            DEFAULT_MAX_OBJECT_SIZE
        };
        let one = run(std::slice::from_ref(&input), max_object);
        let chunked = run(&chunks(&input, seed), max_object);
        assert_agree(&one, &chunked, seed);
        if one.0.is_empty() {
            return;
        }
        let v = Version::DRAFT_14;
        let wire = encode(&one.0, Encoding::new(v));
        let back = run(std::slice::from_ref(&wire), max_object);
        assert_eq!(back.0, one.0, "decode(encode(events)) != events");
        assert_eq!(back.1, Ok(()), "re-encoded stream does not end cleanly");
        assert_eq!(
            encode(&back.0, Encoding::new(v)),
            wire,
            "encoding not stable"
        );
        let wide = encode(&one.0, Encoding::wide(v));
        let back = run(std::slice::from_ref(&wide), max_object);
        assert_eq!(
            canon_events(&back.0),
            canon_events(&one.0),
            "wide varints change events"
        );
        assert_eq!(back.1, Ok(()));
    }

    /// The events with every extension block in canonical form.
    pub fn canon_events(evs: &[StreamEvent]) -> Vec<StreamEvent> {
        evs.iter()
            .cloned()
            .map(|mut e| {
                match &mut e {
                    StreamEvent::SubgroupObject(o) => o.extensions = canon(&o.extensions),
                    StreamEvent::FetchObject(o) => o.extensions = canon(&o.extensions),
                    _ => {}
                }
                e
            })
            .collect()
    }
}

/// moq-lite message checks shared by the `lite_control` and `lite_group` targets.
pub mod lite {
    use moqlink_model::lite::LiteMessage;
    use moqlink_model::{EncodeError, Encoding, Version};

    /// The version an input byte selects: bit 0 picks lite-01 or lite-02.
    pub fn version(b: u8) -> Version {
        if b & 1 == 0 {
            Version::LITE_01
        } else {
            Version::LITE_02
        }
    }

    /// A decoded message re-encodes (minimal, then with 8-byte varints) to bytes that decode the
    /// same, and the minimal encoding is stable.
    pub fn roundtrip(m: &LiteMessage, v: Version) {
        let kind = m.kind();
        let mut wire = Vec::new();
        m.encode(&mut wire, Encoding::new(v))
            .unwrap_or_else(|e| panic!("a decoded {} does not encode: {e}", kind.name()));
        let mut b = bytes::Bytes::from(wire.clone());
        let back = LiteMessage::decode_as(kind, &mut b, v).expect("re-encoded message decodes");
        assert!(
            b.is_empty(),
            "bytes left after a re-encoded {}",
            kind.name()
        );
        assert_eq!(&back, m, "decode(encode(m)) != m");
        let mut again = Vec::new();
        back.encode(&mut again, Encoding::new(v)).unwrap();
        assert_eq!(again, wire, "encoding not stable");
        let mut wide = Vec::new();
        match m.encode(&mut wide, Encoding::wide(v)) {
            Ok(()) => {
                let mut b = bytes::Bytes::from(wide);
                let back = LiteMessage::decode_as(kind, &mut b, v).expect("wide form decodes");
                assert_eq!(&back, m, "wide varints change the message");
            }
            // Widening can push a body past a length limit: the only acceptable refusal.
            Err(EncodeError::Limit { .. }) => {}
            Err(e) => panic!("wide encoding failed: {e}"),
        }
    }
}

/// A decoded draft-14 control message re-encodes (minimal, then with 8-byte varints) to bytes
/// that decode the same, and the minimal encoding is stable.
pub fn control_roundtrip(m: &moqlink_model::ControlMessage) {
    use moqlink_model::{ControlMessage, EncodeError, Encoding, Version};
    let v = Version::DRAFT_14;
    let mut wire = Vec::new();
    m.encode(&mut wire, Encoding::new(v))
        .unwrap_or_else(|e| panic!("a decoded {:?} does not encode: {e}", m.message_type()));
    let back = ControlMessage::decode(&mut &wire[..], v).expect("re-encoded message decodes");
    assert_eq!(&back, m, "decode(encode(m)) != m");
    let mut again = Vec::new();
    back.encode(&mut again, Encoding::new(v)).unwrap();
    assert_eq!(again, wire, "encoding is not stable");
    let mut wide = Vec::new();
    match m.encode(&mut wide, Encoding::wide(v)) {
        Ok(()) => {
            let back = ControlMessage::decode(&mut &wide[..], v).expect("wide form decodes");
            assert_eq!(&back, m, "wide varints change the message");
        }
        // Widening can push a payload past the 16-bit Length: the only acceptable refusal.
        Err(EncodeError::Limit { .. }) => {}
        Err(e) => panic!("wide encoding failed: {e}"),
    }
}
