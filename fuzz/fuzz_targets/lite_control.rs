//! The moq-lite bidirectional stream reader, both versions, every stream type and direction:
//! chunked and one-shot agree (messages, final verdict); every message re-encodes and decodes
//! the same.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use moqlink_fuzz::{assert_agree, chunks, drive, End};
use moqlink_model::lite::{BiStreamType, ControlReader, LiteMessage};
use moqlink_model::Version;

fn reader(mode: u8, v: Version) -> ControlReader {
    match (mode >> 1) % 5 {
        0 => ControlReader::accept(v),
        1 => ControlReader::response(v, BiStreamType::Session),
        2 => ControlReader::response(v, BiStreamType::SessionCompat),
        3 => ControlReader::response(v, BiStreamType::Announce),
        _ => ControlReader::response(v, BiStreamType::Subscribe),
    }
}

fn run(mode: u8, v: Version, parts: &[Bytes]) -> (Vec<LiteMessage>, End) {
    let mut r = reader(mode, v);
    drive(
        &mut r,
        parts,
        |r, b| r.push(b),
        |r| r.next_message(),
        |r| r.finish(),
    )
}

fuzz_target!(|data: &[u8]| {
    let [seed, mode, body @ ..] = data else {
        return;
    };
    let v = moqlink_fuzz::lite::version(*mode);
    let input = Bytes::copy_from_slice(body);
    let one = run(*mode, v, std::slice::from_ref(&input));
    let chunked = run(*mode, v, &chunks(&input, *seed));
    assert_agree(&one, &chunked, *seed);
    for m in &one.0 {
        moqlink_fuzz::lite::roundtrip(m, v);
    }
});
