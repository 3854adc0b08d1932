//! OBJECT_DATAGRAM and its status form (§10.3.1): decoding never panics, errors stay bounded, and
//! what decodes re-encodes (minimal and with 8-byte varints) to bytes that decode the same.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use moqlink_fuzz::{canon, check_detail};
use moqlink_model::data::ObjectDatagram;
use moqlink_model::{Encoding, Version};

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::copy_from_slice(data);
    let d = match ObjectDatagram::decode(&mut b) {
        Ok(d) => d,
        Err(e) => return check_detail(&e),
    };
    let v = Version::DRAFT_14;
    let mut wire = Vec::new();
    d.encode(&mut wire, Encoding::new(v))
        .expect("a decoded datagram encodes");
    let back = ObjectDatagram::decode(&mut Bytes::from(wire.clone())).expect("re-encoded decodes");
    assert_eq!(back, d, "decode(encode(d)) != d");
    let mut again = Vec::new();
    back.encode(&mut again, Encoding::new(v)).unwrap();
    assert_eq!(again, wire, "encoding not stable");
    let mut wide = Vec::new();
    d.encode(&mut wide, Encoding::wide(v))
        .expect("wide encodes");
    let mut back = ObjectDatagram::decode(&mut Bytes::from(wide)).expect("wide form decodes");
    let mut d = d;
    for e in [&mut back.extensions, &mut d.extensions]
        .into_iter()
        .flatten()
    {
        *e = canon(e);
    }
    assert_eq!(back, d, "wide varints change the datagram");
});
