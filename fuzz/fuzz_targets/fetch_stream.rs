//! The data stream reader on fetch streams: chunked and one-shot agree (header, objects,
//! payload slices, final verdict); what decoded re-encodes and decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [seed, body @ ..] = data else {
        return;
    };
    // FETCH_HEADER's stream type (§10.4.4).
    moqlink_fuzz::stream::check(&[0x05], *seed, body);
});
