//! The moq-lite Group stream reader (uni stream type, GROUP, FRAMEs), both versions: chunked and
//! one-shot agree (header, frames, payload slices, final verdict); what decoded re-encodes and
//! decodes the same.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use moqlink_fuzz::{assert_agree, chunks, drive, End};
use moqlink_model::limits::DEFAULT_MAX_OBJECT_SIZE;
use moqlink_model::lite::{GroupEvent, GroupReader, LiteMessage};
use moqlink_model::Version;

fn run(v: Version, max_frame: usize, parts: &[Bytes]) -> (Vec<GroupEvent>, End) {
    let mut r = GroupReader::with_max_frame(v, max_frame);
    drive(
        &mut r,
        parts,
        |r, b| r.push(b),
        |r| r.next_event(),
        |r| r.finish(),
    )
}

fuzz_target!(|data: &[u8]| {
    let [seed, mode, body @ ..] = data else {
        return;
    };
    let v = moqlink_fuzz::lite::version(*mode);
    // Half the runs use a small frame limit, so the limit's verdict is fuzzed too.
    let max_frame = if mode & 2 != 0 {
        16
    } else {
        DEFAULT_MAX_OBJECT_SIZE
    };
    let input = Bytes::copy_from_slice(body);
    let one = run(v, max_frame, std::slice::from_ref(&input));
    let chunked = run(v, max_frame, &chunks(&input, *seed));
    assert_agree(&one, &chunked, *seed);
    for ev in &one.0 {
        moqlink_fuzz::lite::roundtrip(&LiteMessage::from(ev.clone()), v);
    }
});
