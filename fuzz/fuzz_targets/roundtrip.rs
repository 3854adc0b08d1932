//! decode → encode → decode for every element with an encoder: what decodes re-encodes to bytes
//! that decode to the same value (minimal and with every varint widened to 8 bytes), and the
//! minimal encoding is stable. The first byte picks the element.
#![no_main]

use bytes::{Buf, Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use moqlink_fuzz::{canon, check_detail};
use moqlink_model::data::{Extensions, FetchStream, SubgroupStream};
use moqlink_model::lite::{LiteMessage, MessageKind};
use moqlink_model::params::KeyValuePair;
use moqlink_model::{varint, ControlMessage, DecodeError, Encoding, Version};

const KINDS: [MessageKind; 13] = [
    MessageKind::SessionClient,
    MessageKind::SessionServer,
    MessageKind::SessionUpdate,
    MessageKind::ClientSetup,
    MessageKind::ServerSetup,
    MessageKind::AnnouncePlease,
    MessageKind::AnnounceInit,
    MessageKind::Announce,
    MessageKind::Subscribe,
    MessageKind::SubscribeUpdate,
    MessageKind::SubscribeOk,
    MessageKind::Group,
    MessageKind::Frame,
];

const V: Version = Version::DRAFT_14;

/// Every varint in `b`: the minimal and the 8-byte forms read back as the same value.
fn varints(mut b: &[u8]) {
    while let Ok(v) = varint::read(&mut b) {
        for enc in [Encoding::new(V), Encoding::wide(V)] {
            let mut out = Vec::new();
            varint::write(&mut out, v, enc).expect("a decoded varint encodes");
            let want = if enc.wide_varints { 8 } else { varint::size(v) };
            assert_eq!(out.len(), want);
            assert_eq!(varint::read(&mut &out[..]), Ok(v), "varint {v} changes");
        }
    }
}

fn subgroup(mut b: Bytes) -> Result<(), DecodeError> {
    let s = SubgroupStream::decode(&mut b)?;
    let mut wire = BytesMut::new();
    s.encode(&mut wire, Encoding::new(V))
        .expect("decoded stream encodes");
    let wire = wire.freeze();
    let back = SubgroupStream::decode(&mut wire.clone()).expect("re-encoded decodes");
    assert_eq!(back, s);
    let mut wide = BytesMut::new();
    s.encode(&mut wide, Encoding::wide(V))
        .expect("wide encodes");
    let back = SubgroupStream::decode(&mut wide.freeze()).expect("wide decodes");
    let c = |s: &SubgroupStream| -> Vec<_> {
        let mut o = s.objects.clone();
        o.iter_mut()
            .for_each(|o| o.extensions = canon(&o.extensions));
        o
    };
    assert_eq!((back.header, c(&back)), (s.header, c(&s)));
    Ok(())
}

fn fetch(mut b: Bytes) -> Result<(), DecodeError> {
    let s = FetchStream::decode(&mut b)?;
    let mut wire = BytesMut::new();
    s.encode(&mut wire, Encoding::new(V))
        .expect("decoded stream encodes");
    let back = FetchStream::decode(&mut wire.freeze()).expect("re-encoded decodes");
    assert_eq!(back, s);
    let mut wide = BytesMut::new();
    s.encode(&mut wide, Encoding::wide(V))
        .expect("wide encodes");
    let back = FetchStream::decode(&mut wide.freeze()).expect("wide decodes");
    let c = |s: &FetchStream| -> Vec<_> {
        let mut o = s.objects.clone();
        o.iter_mut()
            .for_each(|o| o.extensions = canon(&o.extensions));
        o
    };
    assert_eq!((back.header, c(&back)), (s.header, c(&s)));
    Ok(())
}

fn pairs(mut b: Bytes) -> Result<(), DecodeError> {
    while b.has_remaining() {
        let p = KeyValuePair::decode(&mut b)?;
        for enc in [Encoding::new(V), Encoding::wide(V)] {
            let mut out = Vec::new();
            p.encode(&mut out, enc).expect("decoded pair encodes");
            let back = KeyValuePair::decode(&mut &out[..]).expect("re-encoded pair decodes");
            assert_eq!(back, p);
        }
    }
    Ok(())
}

fn extensions(mut b: Bytes) -> Result<(), DecodeError> {
    let e = Extensions::decode_block(&mut b)?;
    let mut out = Vec::new();
    e.encode_block(&mut out, Encoding::new(V)).expect("encodes");
    let back = Extensions::decode_block(&mut Bytes::from(out)).expect("decodes");
    assert_eq!(back, e, "minimal re-encoding keeps the bytes received");
    let mut wide = Vec::new();
    e.encode_block(&mut wide, Encoding::wide(V))
        .expect("wide encodes");
    let back = Extensions::decode_block(&mut Bytes::from(wide)).expect("wide decodes");
    assert_eq!(back.pairs(), e.pairs());
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let [which, sel, body @ ..] = data else {
        return;
    };
    let b = Bytes::copy_from_slice(body);
    let res = match which % 7 {
        0 => ControlMessage::decode(&mut b.clone(), V).map(|m| moqlink_fuzz::control_roundtrip(&m)),
        1 => {
            let kind = KINDS[usize::from(*sel >> 1) % KINDS.len()];
            let v = moqlink_fuzz::lite::version(*sel);
            LiteMessage::decode_as(kind, &mut b.clone(), v)
                .map(|m| moqlink_fuzz::lite::roundtrip(&m, v))
        }
        2 => subgroup(b),
        3 => fetch(b),
        4 => {
            varints(data);
            Ok(())
        }
        5 => pairs(b),
        _ => extensions(b),
    };
    if let Err(e) = res {
        check_detail(&e);
    }
});
