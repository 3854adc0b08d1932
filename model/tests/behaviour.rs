//! Hand-written wire images for the typed accessors, limits and readers, each checked against
//! the draft text cited.

use bytes::Bytes;
use moqlink_model::control::*;
use moqlink_model::data::*;
use moqlink_model::params::*;
use moqlink_model::*;

fn bytes(hex: &str) -> Bytes {
    Bytes::from(hex::decode(hex.replace(' ', "")).unwrap())
}

#[test]
fn token_structures_follow_9_2_1_1() {
    // REGISTER: alias type 01, alias 05, token type 00, value "abc" (the rest).
    let t = Token::parse(bytes("01 05 00 616263")).unwrap();
    assert_eq!(
        t,
        Token::Register {
            alias: 5,
            token_type: 0,
            token_value: Blob::from("abc")
        }
    );
    // §9.3.2.4: a registered token occupies 16 bytes + its value in the cache.
    assert_eq!(t.cache_size(), 19);
    // USE_VALUE with an empty value is well-formed.
    assert!(matches!(
        Token::parse(bytes("03 07")).unwrap(),
        Token::UseValue { token_type: 7, .. }
    ));
    // DELETE with bytes after the alias cannot be decoded: KEY_VALUE_FORMATTING_ERROR.
    let e = Token::parse(bytes("00 05 ff")).unwrap_err();
    assert_eq!(e.code(), SessionErrorCode::KeyValueFormattingError);
    // Alias type 4 is not defined.
    assert_eq!(
        Token::parse(bytes("04")).unwrap_err().rule(),
        Rule::KeyValueFormat
    );
    assert_eq!(
        Token::parse(Bytes::new()).unwrap_err().rule(),
        Rule::KeyValueFormat
    );
}

#[test]
fn setup_accessors_read_typed_values() {
    // CLIENT_SETUP: 1 version draft-14; 4 parameters: PATH "/x", MAX_REQUEST_ID 100,
    // IMPLEMENTATION "m", MAX_AUTH_TOKEN_CACHE_SIZE 64 (0x4040).
    let wire = bytes("20 0017 01 c0000000ff00000e 04 01 02 2f78 02 4064 07 01 6d 04 4040");
    let ControlMessage::ClientSetup(s) =
        ControlMessage::decode(&mut wire.clone(), Version::DRAFT_14).unwrap()
    else {
        panic!("not CLIENT_SETUP")
    };
    assert_eq!(s.parameters.path().map(|p| &p[..]), Some(&b"/x"[..]));
    assert_eq!(s.parameters.max_request_id(), Some(100));
    assert_eq!(
        s.parameters.implementation().map(|p| p.to_string()),
        Some("m".into())
    );
    assert_eq!(s.parameters.max_auth_token_cache_size(), Some(64));
    assert_eq!(s.parameters.authority(), None);
}

#[test]
fn extension_accessors_follow_section_11() {
    // 3C 02: Prior Group ID Gap 2; 3E 01: Prior Object ID Gap 1; 0B 04 (02 05 03 00): Immutable
    // Extensions holding key 2 = 5 and key 3 = "" .
    let ext = Extensions::from_raw(bytes("3c02 3e01 0b04 0205 0300")).unwrap();
    assert_eq!(ext.prior_group_id_gap().unwrap(), Some(2));
    assert_eq!(ext.prior_object_id_gap().unwrap(), Some(1));
    let inner = ext.immutable().unwrap().unwrap();
    assert_eq!(
        inner,
        vec![
            KeyValuePair::varint(2, 5),
            KeyValuePair::bytes(3, Blob::EMPTY)
        ]
    );
    // §11.1: more than one Prior Group ID Gap makes the track malformed.
    assert!(Extensions::from_raw(bytes("3c01 3c02"))
        .unwrap()
        .prior_group_id_gap()
        .is_err());
    // §11.2: Immutable Extensions inside Immutable Extensions is malformed.
    assert!(Extensions::from_raw(bytes("0b02 0b00"))
        .unwrap()
        .immutable()
        .is_err());
    // A pair crossing the block's end breaks the Extension Headers Length.
    assert_eq!(
        Extensions::from_raw(bytes("0105 61")).unwrap_err().rule(),
        Rule::ExtensionHeadersLength
    );
    // The received bytes are kept exactly, even when not minimal (4-byte varint 0x80000002).
    let odd = Extensions::from_raw(bytes("3c 80000002")).unwrap();
    assert_eq!(odd.raw().as_ref(), &hex::decode("3c80000002").unwrap()[..]);
}

#[test]
fn stream_reader_waits_for_whole_objects_and_bounds_memory() {
    // §10.4.2: 10 header (alias 1, group 2, priority 3), object delta 0, length 0x4010 (16),
    // payload of 16 bytes.
    let mut r = StreamReader::new(1024);
    r.push(bytes("10 01 02 03"));
    assert!(matches!(
        r.next_event().unwrap(),
        Some(StreamEvent::SubgroupHeader(_))
    ));
    assert_eq!(r.pending_object(), None);
    // §9.7: the object's first byte has arrived, so it is the Largest Object from here on.
    r.push(bytes("00 4010 0001020304"));
    assert_eq!(r.next_event().unwrap(), None);
    assert_eq!(r.pending_object(), Some(0));
    r.push(bytes("05060708090a0b0c0d0e"));
    assert_eq!(r.next_event().unwrap(), None);
    assert_eq!(r.pending_object(), Some(0));
    r.push(bytes("0f"));
    let Some(StreamEvent::SubgroupObject(o)) = r.next_event().unwrap() else {
        panic!()
    };
    assert_eq!(o.payload.len(), 16);
    assert_eq!(r.pending_object(), None);
    // The next object's head (delta 2: Object ID 3) with one payload byte of 5.
    r.push(bytes("02 05 61"));
    assert_eq!(r.next_event().unwrap(), None);
    assert_eq!(r.pending_object(), Some(3));
    r.push(bytes("62636465"));
    assert!(matches!(
        r.next_event().unwrap(),
        Some(StreamEvent::SubgroupObject(SubgroupObject {
            object_id: 3,
            ..
        }))
    ));
    r.finish().unwrap();
    // An object announcing more than the reader's limit is refused before it is buffered.
    let mut small = StreamReader::new(8);
    small.push(bytes("10 01 02 03 00 4010"));
    small.next_event().unwrap();
    assert_eq!(small.next_event().unwrap_err().rule(), Rule::ObjectTooLarge);
    // An Extension Headers Length beyond the limit is refused as soon as it is readable, before
    // any of the block is buffered: type 0x11 (extensions, §10.4.2), alias 1, group 2, priority
    // 3; Object ID delta 0, Extension Headers Length 104857600 (4-byte varint 0x86400000).
    let mut huge = StreamReader::default();
    huge.push(bytes("11 01 02 03 00 86400000"));
    huge.next_event().unwrap();
    assert_eq!(huge.next_event().unwrap_err().rule(), Rule::ObjectTooLarge);
    // The same in a fetch stream (§10.4.4): FETCH_HEADER 0x05 for request 0, then group 0,
    // subgroup 0, object 0, priority 0x80, Extension Headers Length 104857600.
    let mut huge = StreamReader::default();
    huge.push(bytes("05 00 00 00 00 80 86400000"));
    huge.next_event().unwrap();
    assert_eq!(huge.next_event().unwrap_err().rule(), Rule::ObjectTooLarge);
    // A head whose extension block is still arriving waits, then decodes: 2 extension bytes
    // (type 0x02, even, so a varint value: 0x05), payload length 1, payload "z".
    let mut ext = StreamReader::default();
    ext.push(bytes("11 01 02 03 00 02 02"));
    ext.next_event().unwrap();
    assert_eq!(ext.next_event().unwrap(), None);
    ext.push(bytes("05"));
    assert_eq!(ext.next_event().unwrap(), None);
    ext.push(bytes("01 7a"));
    let Some(StreamEvent::SubgroupObject(o)) = ext.next_event().unwrap() else {
        panic!("no object")
    };
    assert_eq!((o.object_id, &o.payload[..]), (0, &b"z"[..]));
    // FIN inside an object is truncation.
    let mut cut = StreamReader::new(64);
    cut.push(bytes("10 01 02 03 00 05 6162"));
    cut.next_event().unwrap();
    assert_eq!(cut.next_event().unwrap(), None);
    assert_eq!(cut.finish().unwrap_err().rule(), Rule::Truncated);
}

#[test]
fn payloads_are_slices_of_the_input() {
    let wire = bytes("10 01 02 03 00 04 61626364");
    let mut view = wire.clone();
    let s = SubgroupStream::decode(&mut view).unwrap();
    let p = s.objects[0].payload.bytes();
    let start = wire.as_ptr() as usize;
    let at = p.as_ptr() as usize;
    assert!(
        at >= start && at + p.len() <= start + wire.len(),
        "payload was copied"
    );
}

#[test]
fn limits_are_enforced_on_encode() {
    let long = Blob::from(vec![b'a'; 1025]);
    let e = ControlMessage::SubscribeError(RequestError {
        request_id: 0,
        error_code: 4,
        reason: long,
    })
    .encode(&mut Vec::new(), Encoding::default())
    .unwrap_err();
    assert!(matches!(
        e,
        EncodeError::Limit {
            rule: Rule::ReasonPhraseTooLong,
            ..
        }
    ));
    let e = ControlMessage::PublishNamespaceDone(PublishNamespaceDone {
        namespace: TrackNamespace::default(),
    })
    .encode(&mut Vec::new(), Encoding::default())
    .unwrap_err();
    assert!(matches!(
        e,
        EncodeError::Limit {
            rule: Rule::NamespaceFieldCount,
            ..
        }
    ));
    // A 70,000-byte GOAWAY payload cannot fit the 16-bit Length even before the URI limit... the
    // URI limit (8,192) fires first.
    let e = ControlMessage::Goaway(Goaway {
        new_session_uri: Blob::from(vec![b'u'; 8193]),
    })
    .encode(&mut Vec::new(), Encoding::default())
    .unwrap_err();
    assert!(matches!(
        e,
        EncodeError::Limit {
            rule: Rule::GoawayUriTooLong,
            ..
        }
    ));
}

#[test]
fn control_reader_reassembles_split_messages() {
    // SUBSCRIBE_NAMESPACE_OK (12 0001 07) then MAX_REQUEST_ID (15 0001 0a), split mid-length.
    let mut r = ControlReader::new(Version::DRAFT_14);
    r.push(bytes("12 00"));
    assert_eq!(r.next_message().unwrap(), None);
    r.push(bytes("01 07 15"));
    assert!(matches!(
        r.next_message().unwrap(),
        Some(ControlMessage::SubscribeNamespaceOk(RequestRef {
            request_id: 7
        }))
    ));
    assert_eq!(r.next_message().unwrap(), None);
    r.push(bytes("0001 0a"));
    assert!(matches!(
        r.next_message().unwrap(),
        Some(ControlMessage::MaxRequestId(MaxRequestId {
            max_request_id: 10
        }))
    ));
    r.finish().unwrap();
    // An undefined type is refused as soon as it is read (§9: unknown types close the session).
    let mut bad = ControlReader::new(Version::DRAFT_14);
    bad.push(bytes("01"));
    assert_eq!(
        bad.next_message().unwrap_err().code(),
        SessionErrorCode::ProtocolViolation
    );
}

#[test]
fn fetch_end_means_the_drafts_range() {
    // §9.16.1: wire {5, 0} is the whole of group 5; wire {5, 3} ends with object 2.
    let whole = FetchEnd::decode(&mut bytes("05 00")).unwrap();
    assert_eq!(
        whole,
        FetchEnd {
            group: 5,
            object: None
        }
    );
    assert!(whole.covers(Location::new(5, 1_000_000)));
    let partial = FetchEnd::decode(&mut bytes("05 03")).unwrap();
    assert_eq!(
        partial,
        FetchEnd {
            group: 5,
            object: Some(2)
        }
    );
    assert!(partial.covers(Location::new(5, 2)) && !partial.covers(Location::new(5, 3)));
}

#[test]
fn registry_is_one_to_one() {
    let mut codes = std::collections::HashSet::new();
    for t in MessageType::ALL {
        assert!(codes.insert(t.code()), "duplicate code 0x{:x}", t.code());
        assert_eq!(MessageType::from_code(t.code()), Some(*t));
    }
    assert_eq!(MessageType::ALL.len(), 30);
    for c in SessionErrorCode::ALL {
        assert_eq!(SessionErrorCode::from_code(c.code()), Some(c));
    }
    // Reserved codes of Table 1 are not messages.
    for reserved in [0x01, 0x40, 0x41] {
        assert_eq!(MessageType::from_code(reserved), None);
    }
}

#[test]
fn versions_parse_and_label() {
    assert_eq!("draft-14".parse::<Version>().unwrap(), Version::DRAFT_14);
    assert_eq!("0xff0dad02".parse::<Version>().unwrap(), Version::LITE_02);
    assert_eq!(Version::DRAFT_14.label(), "draft-14");
    assert!(Version::LITE_01.is_lite() && !Version::DRAFT_14.is_lite());
    assert_eq!(Version::DRAFT_14.to_string(), "0xff00000e");
}

/// §9.7: a Largest Object subscription starts at {Largest.Group, Largest.Object + 1}, and at
/// {0, 0} on a track with no object yet; Group Order 0x0 means the publisher's order.
#[test]
fn largest_object_start_and_original_group_order() {
    assert_eq!(
        Location::after_largest(Some(Location::new(3, 7))),
        Location::new(3, 8)
    );
    assert_eq!(Location::after_largest(None), Location::new(0, 0));
    assert_eq!(
        GroupOrder::Original.or_publisher(GroupOrder::Descending),
        GroupOrder::Descending
    );
    assert_eq!(
        GroupOrder::Ascending.or_publisher(GroupOrder::Descending),
        GroupOrder::Ascending
    );
}
