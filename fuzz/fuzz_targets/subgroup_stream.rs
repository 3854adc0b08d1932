//! The data stream reader on subgroup streams: chunked and one-shot agree (header, objects,
//! payload slices, final verdict); what decoded re-encodes and decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The twelve SUBGROUP_HEADER types (§10.4.2).
const TYPES: [u8; 12] = [
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D,
];

fuzz_target!(|data: &[u8]| {
    let [seed, ty, body @ ..] = data else {
        return;
    };
    let prefix = [TYPES[usize::from(*ty) % TYPES.len()]];
    moqlink_fuzz::stream::check(&prefix, *seed, body);
});
