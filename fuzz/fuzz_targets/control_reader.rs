//! The draft-14 control stream reader: fed in input-derived chunks it produces the same messages
//! and the same end as fed the whole input at once; every message decoded re-encodes (minimal and
//! with 8-byte varints) to bytes that decode to the same message.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use moqlink_fuzz::{assert_agree, chunks, drive};
use moqlink_model::control::ControlReader;
use moqlink_model::{ControlMessage, Version};

fn run(parts: &[Bytes]) -> (Vec<ControlMessage>, moqlink_fuzz::End) {
    let mut r = ControlReader::new(Version::DRAFT_14);
    drive(
        &mut r,
        parts,
        |r, b| r.push(b),
        |r| r.next_message(),
        |r| r.finish(),
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    let input = Bytes::copy_from_slice(rest);
    let one = run(std::slice::from_ref(&input));
    let chunked = run(&chunks(&input, seed));
    assert_agree(&one, &chunked, seed);
    for m in &one.0 {
        moqlink_fuzz::control_roundtrip(m);
    }
});
