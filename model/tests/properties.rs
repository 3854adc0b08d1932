//! Property tests: arbitrary bytes never panic any decoder, and generated messages, streams and
//! datagrams survive encode -> decode unchanged, minimal and with 8-byte varints.

use bytes::{Bytes, BytesMut};
use moqlink_model::control::*;
use moqlink_model::data::*;
use moqlink_model::json::{self, Kind};
use moqlink_model::params::*;
use moqlink_model::*;
use proptest::prelude::*;

const MAXV: u64 = (1 << 62) - 1;

fn varint() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..64u64,
        64..16384u64,
        16384..(1u64 << 30),
        (1u64 << 30)..=MAXV
    ]
}

fn blob(max: usize) -> impl Strategy<Value = Blob> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Blob::from)
}

fn namespace(min: usize) -> impl Strategy<Value = TrackNamespace> {
    prop::collection::vec(blob(12), min..5).prop_map(TrackNamespace)
}

fn location() -> impl Strategy<Value = Location> {
    (varint(), varint()).prop_map(|(g, o)| Location::new(g, o))
}

fn order(allow_original: bool) -> impl Strategy<Value = GroupOrder> {
    let lo = if allow_original { 0 } else { 1 };
    (lo..3u8).prop_map(|v| match v {
        0 => GroupOrder::Original,
        1 => GroupOrder::Ascending,
        _ => GroupOrder::Descending,
    })
}

fn filter() -> impl Strategy<Value = Filter> {
    prop_oneof![
        Just(Filter::NextGroupStart),
        Just(Filter::LargestObject),
        location().prop_map(|start| Filter::AbsoluteStart { start }),
        (location(), varint())
            .prop_map(|(start, end_group)| Filter::AbsoluteRange { start, end_group }),
    ]
}

fn token() -> impl Strategy<Value = Token> {
    prop_oneof![
        varint().prop_map(|alias| Token::Delete { alias }),
        (varint(), varint(), blob(16)).prop_map(|(alias, token_type, token_value)| {
            Token::Register {
                alias,
                token_type,
                token_value,
            }
        }),
        varint().prop_map(|alias| Token::UseAlias { alias }),
        (varint(), blob(16)).prop_map(|(token_type, token_value)| Token::UseValue {
            token_type,
            token_value
        }),
    ]
}

fn unknown_kv() -> impl Strategy<Value = (u64, KvValue)> {
    prop_oneof![
        (5u64..1000, varint()).prop_map(|(k, v)| (k * 2, KvValue::Varint(v))),
        (5u64..1000, blob(10)).prop_map(|(k, v)| (k * 2 + 1, KvValue::Bytes(v))),
    ]
}

/// Version parameters valid for `ty`: each known one at most once and only where recognised.
fn params(ty: MessageType) -> impl Strategy<Value = VersionParameters> {
    let dt = Parameter::recognised_in(keys::DELIVERY_TIMEOUT, ty);
    let mc = Parameter::recognised_in(keys::MAX_CACHE_DURATION, ty);
    let at = Parameter::recognised_in(keys::AUTHORIZATION_TOKEN, ty);
    (
        prop::option::of(varint()),
        prop::option::of(varint()),
        prop::collection::vec(token(), 0..3),
        prop::collection::vec(unknown_kv(), 0..3),
    )
        .prop_map(move |(d, m, tokens, unknown)| {
            let mut p = Vec::new();
            if let (true, Some(value)) = (dt, d) {
                p.push(Parameter::DeliveryTimeout { value });
            }
            if let (true, Some(value)) = (mc, m) {
                p.push(Parameter::MaxCacheDuration { value });
            }
            if at {
                p.extend(
                    tokens
                        .into_iter()
                        .map(|value| Parameter::AuthorizationToken { value }),
                );
            }
            p.extend(
                unknown
                    .into_iter()
                    .map(|(key, value)| Parameter::Unknown { key, value }),
            );
            Parameters(p)
        })
}

fn setup_params() -> impl Strategy<Value = SetupParameters> {
    (
        prop::option::of(blob(20)),
        prop::option::of(varint()),
        prop::option::of(blob(20)),
        prop::collection::vec(token(), 0..2),
        prop::collection::vec(unknown_kv(), 0..3),
    )
        .prop_map(|(path, max, imp, tokens, unknown)| {
            let mut p = Vec::new();
            if let Some(value) = path {
                p.push(SetupParameter::Path { value });
            }
            if let Some(value) = max {
                p.push(SetupParameter::MaxRequestId { value });
            }
            if let Some(value) = imp {
                p.push(SetupParameter::Implementation { value });
            }
            p.extend(
                tokens
                    .into_iter()
                    .map(|value| SetupParameter::AuthorizationToken { value }),
            );
            p.extend(
                unknown
                    .into_iter()
                    .map(|(key, value)| SetupParameter::Unknown { key, value }),
            );
            Parameters(p)
        })
}

fn subscribe(ty: MessageType) -> impl Strategy<Value = Subscribe> {
    (
        varint(),
        namespace(1),
        blob(16),
        any::<u8>(),
        order(true),
        any::<bool>(),
        filter(),
        params(ty),
    )
        .prop_map(
            |(
                request_id,
                namespace,
                name,
                subscriber_priority,
                group_order,
                forward,
                filter,
                parameters,
            )| Subscribe {
                request_id,
                namespace,
                name,
                subscriber_priority,
                group_order,
                forward,
                filter,
                parameters,
            },
        )
}

fn subscribe_ok(ty: MessageType) -> impl Strategy<Value = SubscribeOk> {
    (
        varint(),
        varint(),
        varint(),
        order(false),
        prop::option::of(location()),
        params(ty),
    )
        .prop_map(
            |(request_id, track_alias, expires, group_order, largest_location, parameters)| {
                SubscribeOk {
                    request_id,
                    track_alias,
                    expires,
                    group_order,
                    largest_location,
                    parameters,
                }
            },
        )
}

fn request_error() -> impl Strategy<Value = RequestError> {
    (varint(), varint(), blob(40)).prop_map(|(request_id, error_code, reason)| RequestError {
        request_id,
        error_code,
        reason,
    })
}

fn fetch_end() -> impl Strategy<Value = FetchEnd> {
    (varint(), prop::option::of(0..MAXV)).prop_map(|(group, object)| FetchEnd { group, object })
}

fn control() -> impl Strategy<Value = ControlMessage> {
    use ControlMessage as C;
    let rr = || varint().prop_map(|request_id| RequestRef { request_id });
    prop_oneof![
        (
            prop::collection::vec(any::<u32>().prop_map(Version), 0..4),
            setup_params()
        )
            .prop_map(|(versions, parameters)| C::ClientSetup(ClientSetup {
                versions,
                parameters
            })),
        (any::<u32>().prop_map(Version), setup_params()).prop_map(|(version, parameters)| {
            C::ServerSetup(ServerSetup {
                version,
                parameters,
            })
        }),
        blob(60).prop_map(|new_session_uri| C::Goaway(Goaway { new_session_uri })),
        varint().prop_map(|max_request_id| C::MaxRequestId(MaxRequestId { max_request_id })),
        varint().prop_map(|max_request_id| C::RequestsBlocked(RequestsBlocked { max_request_id })),
        subscribe(MessageType::Subscribe).prop_map(C::Subscribe),
        subscribe(MessageType::TrackStatus).prop_map(C::TrackStatus),
        subscribe_ok(MessageType::SubscribeOk).prop_map(C::SubscribeOk),
        subscribe_ok(MessageType::TrackStatusOk).prop_map(C::TrackStatusOk),
        request_error().prop_map(C::SubscribeError),
        request_error().prop_map(C::FetchError),
        request_error().prop_map(C::PublishNamespaceError),
        (
            varint(),
            varint(),
            0..MAXV / 2,
            prop::option::of(0..MAXV / 2),
            any::<u8>(),
            any::<bool>(),
            params(MessageType::SubscribeUpdate)
        )
            .prop_map(
                |(
                    request_id,
                    subscription_request_id,
                    g,
                    end,
                    subscriber_priority,
                    forward,
                    parameters,
                )| {
                    C::SubscribeUpdate(SubscribeUpdate {
                        request_id,
                        subscription_request_id,
                        start: Location::new(g, 3),
                        end_group: end.map(|e| g + e),
                        subscriber_priority,
                        forward,
                        parameters,
                    })
                }
            ),
        rr().prop_map(C::Unsubscribe),
        rr().prop_map(C::FetchCancel),
        (varint(), varint(), varint(), blob(30)).prop_map(
            |(request_id, status_code, stream_count, reason)| {
                C::PublishDone(PublishDone {
                    request_id,
                    status_code,
                    stream_count,
                    reason,
                })
            }
        ),
        (
            varint(),
            namespace(1),
            blob(16),
            varint(),
            order(false),
            prop::option::of(location()),
            any::<bool>(),
            params(MessageType::Publish)
        )
            .prop_map(
                |(
                    request_id,
                    namespace,
                    name,
                    track_alias,
                    group_order,
                    largest_location,
                    forward,
                    parameters,
                )| {
                    C::Publish(Publish {
                        request_id,
                        namespace,
                        name,
                        track_alias,
                        group_order,
                        largest_location,
                        forward,
                        parameters,
                    })
                }
            ),
        (
            varint(),
            any::<bool>(),
            any::<u8>(),
            order(false),
            filter(),
            params(MessageType::PublishOk)
        )
            .prop_map(
                |(request_id, forward, subscriber_priority, group_order, filter, parameters)| {
                    C::PublishOk(PublishOk {
                        request_id,
                        forward,
                        subscriber_priority,
                        group_order,
                        filter,
                        parameters,
                    })
                }
            ),
        (
            varint(),
            any::<u8>(),
            order(true),
            namespace(1),
            blob(10),
            location(),
            fetch_end(),
            varint(),
            varint(),
            0..3u8,
            params(MessageType::Fetch)
        )
            .prop_map(
                |(
                    request_id,
                    subscriber_priority,
                    group_order,
                    namespace,
                    name,
                    start,
                    end,
                    jr,
                    js,
                    k,
                    parameters,
                )| {
                    let fetch = match k {
                        0 => FetchKind::Standalone {
                            namespace,
                            name,
                            start,
                            end,
                        },
                        1 => FetchKind::RelativeJoining {
                            joining_request_id: jr,
                            joining_start: js,
                        },
                        _ => FetchKind::AbsoluteJoining {
                            joining_request_id: jr,
                            joining_start: js,
                        },
                    };
                    C::Fetch(Fetch {
                        request_id,
                        subscriber_priority,
                        group_order,
                        fetch,
                        parameters,
                    })
                }
            ),
        (
            varint(),
            order(false),
            any::<bool>(),
            fetch_end(),
            params(MessageType::FetchOk)
        )
            .prop_map(
                |(request_id, group_order, end_of_track, end_location, parameters)| {
                    C::FetchOk(FetchOk {
                        request_id,
                        group_order,
                        end_of_track,
                        end_location,
                        parameters,
                    })
                }
            ),
        (
            varint(),
            namespace(1),
            params(MessageType::PublishNamespace)
        )
            .prop_map(|(request_id, namespace, parameters)| C::PublishNamespace(
                PublishNamespace {
                    request_id,
                    namespace,
                    parameters
                }
            )),
        rr().prop_map(C::PublishNamespaceOk),
        namespace(1)
            .prop_map(|namespace| C::PublishNamespaceDone(PublishNamespaceDone { namespace })),
        (namespace(1), varint(), blob(20)).prop_map(|(namespace, error_code, reason)| {
            C::PublishNamespaceCancel(PublishNamespaceCancel {
                namespace,
                error_code,
                reason,
            })
        }),
        (
            varint(),
            namespace(0),
            params(MessageType::SubscribeNamespace)
        )
            .prop_map(
                |(request_id, namespace_prefix, parameters)| C::SubscribeNamespace(
                    SubscribeNamespace {
                        request_id,
                        namespace_prefix,
                        parameters
                    }
                )
            ),
        rr().prop_map(C::SubscribeNamespaceOk),
        namespace(0).prop_map(
            |namespace_prefix| C::UnsubscribeNamespace(UnsubscribeNamespace { namespace_prefix })
        ),
    ]
}

fn extensions() -> impl Strategy<Value = Extensions> {
    prop::collection::vec(unknown_kv(), 0..3).prop_map(|kv| {
        let pairs: Vec<_> = kv
            .into_iter()
            .map(|(key, value)| KeyValuePair { key, value })
            .collect();
        Extensions::from_pairs(&pairs).unwrap()
    })
}

fn status_payload() -> impl Strategy<Value = (ObjectStatus, Blob)> {
    prop_oneof![
        blob(30).prop_map(|p| (ObjectStatus::Normal, p)),
        Just((ObjectStatus::EndOfGroup, Blob::EMPTY)),
        Just((ObjectStatus::EndOfTrack, Blob::EMPTY)),
    ]
}

fn subgroup_stream() -> impl Strategy<Value = SubgroupStream> {
    let mode = prop_oneof![
        Just(SubgroupIdMode::Zero),
        Just(SubgroupIdMode::FirstObjectId),
        varint().prop_map(SubgroupIdMode::Explicit)
    ];
    (
        varint(),
        varint(),
        mode,
        any::<u8>(),
        any::<bool>(),
        any::<bool>(),
        0..1000u64,
        prop::collection::vec((0..5u64, extensions(), status_payload()), 0..6),
    )
        .prop_map(
            |(
                track_alias,
                group_id,
                subgroup_id,
                publisher_priority,
                extensions_present,
                end_of_group,
                first,
                objs,
            )| {
                let header = SubgroupHeader {
                    track_alias,
                    group_id,
                    subgroup_id,
                    publisher_priority,
                    extensions_present,
                    end_of_group,
                };
                let mut next = first;
                let objects = objs
                    .into_iter()
                    .map(|(gap, ext, (status, payload))| {
                        let object_id = next + gap;
                        next = object_id + 1;
                        let extensions = if extensions_present {
                            ext
                        } else {
                            Extensions::empty()
                        };
                        SubgroupObject {
                            object_id,
                            extensions,
                            status,
                            payload,
                        }
                    })
                    .collect();
                SubgroupStream { header, objects }
            },
        )
}

fn datagram() -> impl Strategy<Value = ObjectDatagram> {
    (
        varint(),
        varint(),
        varint(),
        any::<u8>(),
        any::<bool>(),
        any::<bool>(),
        extensions(),
        prop::option::of(status_payload()),
    )
        .prop_map(
            |(
                track_alias,
                group_id,
                object_id,
                publisher_priority,
                eog,
                id_present,
                ext,
                status,
            )| {
                let extensions = (!ext.is_empty()).then_some(ext);
                match status {
                    Some((s, _)) => ObjectDatagram {
                        track_alias,
                        group_id,
                        object_id,
                        object_id_present: true,
                        publisher_priority,
                        end_of_group: false,
                        extensions,
                        body: DatagramBody::Status(s),
                    },
                    None => ObjectDatagram {
                        track_alias,
                        group_id,
                        object_id: if id_present { object_id } else { 0 },
                        object_id_present: id_present,
                        publisher_priority,
                        end_of_group: eog,
                        extensions,
                        body: DatagramBody::Payload(Blob::from("payload")),
                    },
                }
            },
        )
}

fn encode_all<F: Fn(&mut BytesMut) -> Result<(), EncodeError>>(f: F) -> Bytes {
    let mut out = BytesMut::new();
    f(&mut out).expect("encode");
    out.freeze()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), kind in 0..5usize) {
        let kinds = [Kind::Control, Kind::Subgroup, Kind::Fetch, Kind::Datagram, Kind::Varint];
        let _ = json::decode(kinds[kind], &bytes);
        let _ = json::decode_control_all(&bytes, Version::DRAFT_14);
    }

    #[test]
    fn arbitrary_chunks_never_panic_the_readers(bytes in prop::collection::vec(any::<u8>(), 0..200), cut in 1..17usize) {
        let mut s = StreamReader::new(1024);
        let mut c = ControlReader::new(Version::DRAFT_14);
        for chunk in bytes.chunks(cut) {
            s.push(Bytes::copy_from_slice(chunk));
            c.push(Bytes::copy_from_slice(chunk));
            while let Ok(Some(_)) = s.next_event() {}
            while let Ok(Some(_)) = c.next_message() {}
        }
        let _ = (s.finish(), c.finish());
    }

    #[test]
    fn control_roundtrip(msg in control(), wide in any::<bool>(), cut in 1..9usize) {
        let enc = if wide { Encoding::wide(Version::DRAFT_14) } else { Encoding::new(Version::DRAFT_14) };
        let bytes = encode_all(|b| msg.encode(b, enc));
        prop_assert_eq!(msg.encoded_len_hint(enc), Some(bytes.len()));
        let mut view = bytes.clone();
        let back = ControlMessage::decode(&mut view, Version::DRAFT_14).unwrap();
        prop_assert!(view.is_empty());
        prop_assert_eq!(&back, &msg);
        // Twice in a row, in chunks of `cut`, through the incremental reader.
        let twice = [bytes.clone(), bytes].concat();
        let mut r = ControlReader::new(Version::DRAFT_14);
        let mut read = Vec::new();
        for chunk in twice.chunks(cut) {
            r.push(Bytes::copy_from_slice(chunk));
            while let Some(m) = r.next_message().unwrap() {
                read.push(m);
            }
        }
        prop_assert!(r.finish().is_ok());
        prop_assert_eq!(read, vec![msg.clone(), msg]);
    }

    #[test]
    fn subgroup_roundtrip(stream in subgroup_stream(), wide in any::<bool>(), cut in 1..9usize) {
        let enc = if wide { Encoding::wide(Version::DRAFT_14) } else { Encoding::new(Version::DRAFT_14) };
        let bytes = encode_all(|b| stream.encode(b, enc));
        let back = SubgroupStream::decode(&mut bytes.clone()).unwrap();
        prop_assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::to_value(&stream).unwrap());
        // The same bytes in chunks of `cut` through the incremental reader.
        let mut r = StreamReader::default();
        let mut objects = Vec::new();
        for chunk in bytes.chunks(cut) {
            r.push(Bytes::copy_from_slice(chunk));
            while let Some(ev) = r.next_event().unwrap() {
                if let StreamEvent::SubgroupObject(o) = ev { objects.push(o) }
            }
        }
        r.finish().unwrap();
        prop_assert_eq!(objects.len(), stream.objects.len());
    }

    #[test]
    fn datagram_roundtrip(d in datagram(), wide in any::<bool>()) {
        let enc = if wide { Encoding::wide(Version::DRAFT_14) } else { Encoding::new(Version::DRAFT_14) };
        let bytes = encode_all(|b| d.encode(b, enc));
        let back = ObjectDatagram::decode(&mut bytes.clone()).unwrap();
        prop_assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::to_value(&d).unwrap());
    }
}

trait Hint {
    fn encoded_len_hint(&self, enc: Encoding) -> Option<usize>;
}

impl Hint for ControlMessage {
    /// Type + 2-byte length + payload, as the Sizer counts it.
    fn encoded_len_hint(&self, enc: Encoding) -> Option<usize> {
        let mut s = Sizer::default();
        self.encode_payload(&mut s, enc).ok()?;
        let ty = if enc.wide_varints {
            8
        } else {
            varint::size(self.message_type().code())
        };
        Some(ty + 2 + s.len())
    }
}
