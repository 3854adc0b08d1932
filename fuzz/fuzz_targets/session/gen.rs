//! Typed control messages and data stream bytes built from fuzz input: mostly well-formed and
//! about things the session knows (its own request IDs, the relay's requests, a few namespaces
//! and track aliases), so requests meet each other; sometimes anything.

use super::input::Input;
use moqlink_model::control::*;
use moqlink_model::params::{KvValue, Parameter, Token, VersionParameters};
use moqlink_model::{Blob, GroupOrder, Location, MessageType, TrackNamespace};

/// What the script knows when it builds the next message.
#[derive(Default)]
pub struct Known {
    /// The Request ID the relay expects next from us (client IDs: even, from 0).
    pub next_id: u64,
    /// Requests we sent, in order.
    pub ours: Vec<(u64, MessageType)>,
    /// Requests the relay sent us, in order.
    pub relays: Vec<(u64, MessageType)>,
    /// Track aliases we gave (PUBLISH, SUBSCRIBE_OK) and the relay gave (SUBSCRIBE_OK, PUBLISH).
    pub aliases: Vec<u64>,
    /// The relay's requests we have answered.
    pub answered_relay: Vec<u64>,
}

const FIELDS: [&str; 3] = ["a", "b", "c"];
const NAMES: [&str; 3] = ["t", "u", ""];

/// A track namespace: one or two of a few fields mostly, sometimes empty, long or odd.
pub fn namespace(inp: &mut Input) -> TrackNamespace {
    match inp.byte() % 16 {
        0 => TrackNamespace(Vec::new()),
        1 => TrackNamespace((0..inp.below(40)).map(|_| Blob::from("x")).collect()),
        2 => TrackNamespace(vec![Blob::new(inp.bytes(40))]),
        n => {
            let len = 1 + usize::from(n % 2);
            TrackNamespace((0..len).map(|_| field(inp)).collect())
        }
    }
}

fn field(inp: &mut Input) -> Blob {
    Blob::from(FIELDS[inp.below(FIELDS.len())])
}

/// A track name.
pub fn name(inp: &mut Input) -> Blob {
    if inp.chance(5) {
        return Blob::new(inp.bytes(64));
    }
    Blob::from(NAMES[inp.below(NAMES.len())])
}

fn location(inp: &mut Input) -> Location {
    Location::new(inp.number(), inp.number())
}

fn order(inp: &mut Input) -> GroupOrder {
    [
        GroupOrder::Original,
        GroupOrder::Ascending,
        GroupOrder::Descending,
    ][inp.below(3)]
}

fn filter(inp: &mut Input) -> Filter {
    match inp.byte() % 4 {
        0 => Filter::NextGroupStart,
        1 => Filter::LargestObject,
        2 => Filter::AbsoluteStart {
            start: location(inp),
        },
        _ => Filter::AbsoluteRange {
            start: location(inp),
            end_group: inp.number(),
        },
    }
}

fn token(inp: &mut Input) -> Token {
    match inp.byte() % 4 {
        0 => Token::Delete {
            alias: inp.number(),
        },
        1 => Token::Register {
            alias: inp.number(),
            token_type: inp.number(),
            token_value: Blob::new(inp.bytes(32)),
        },
        2 => Token::UseAlias {
            alias: inp.number(),
        },
        _ => Token::UseValue {
            token_type: inp.number(),
            token_value: Blob::new(inp.bytes(32)),
        },
    }
}

/// Version-specific parameters: none most of the time.
pub fn params(inp: &mut Input) -> VersionParameters {
    let mut p = VersionParameters::new();
    if !inp.chance(20) {
        return p;
    }
    for _ in 0..inp.below(4) {
        p.push(match inp.byte() % 5 {
            0 => Parameter::DeliveryTimeout {
                value: inp.number(),
            },
            1 => Parameter::MaxCacheDuration {
                value: inp.number(),
            },
            2 => Parameter::AuthorizationToken { value: token(inp) },
            3 => Parameter::Unknown {
                key: inp.number().wrapping_mul(2),
                value: KvValue::Varint(inp.number()),
            },
            _ => Parameter::Unknown {
                key: inp.number().wrapping_mul(2) | 1,
                value: KvValue::Bytes(Blob::new(inp.bytes(16))),
            },
        });
    }
    p
}

fn reason(inp: &mut Input) -> Blob {
    if inp.chance(10) {
        Blob::new(inp.bytes(64))
    } else {
        Blob::from("r")
    }
}

/// Picks one of `list` (or anything, sometimes).
fn pick(inp: &mut Input, list: &[(u64, MessageType)], want: &[MessageType]) -> u64 {
    let matching: Vec<u64> = list
        .iter()
        .filter(|(_, t)| want.is_empty() || want.contains(t))
        .map(|(id, _)| *id)
        .collect();
    if matching.is_empty() || inp.chance(8) {
        return inp.number();
    }
    matching[inp.below(matching.len())]
}

/// A track alias: one already in use mostly.
pub fn alias(inp: &mut Input, known: &Known) -> u64 {
    if known.aliases.is_empty() || inp.chance(15) {
        return inp.number();
    }
    known.aliases[inp.below(known.aliases.len())]
}

/// A new request's ID: the expected one mostly (the harness checks the sequence as it sends).
fn request_id(inp: &mut Input, known: &Known) -> u64 {
    if inp.chance(4) {
        return inp.number();
    }
    known.next_id
}

fn subscribe(inp: &mut Input, id: u64) -> Subscribe {
    Subscribe {
        request_id: id,
        namespace: namespace(inp),
        name: name(inp),
        subscriber_priority: inp.byte(),
        group_order: order(inp),
        forward: !inp.chance(10),
        filter: filter(inp),
        parameters: params(inp),
    }
}

/// A new request from us.
pub fn request(inp: &mut Input, known: &mut Known) -> ControlMessage {
    use MessageType as T;
    let ty = [
        T::Subscribe,
        T::Subscribe,
        T::Fetch,
        T::TrackStatus,
        T::PublishNamespace,
        T::PublishNamespace,
        T::SubscribeNamespace,
        T::Publish,
        T::SubscribeUpdate,
    ][inp.below(9)];
    let id = request_id(inp, known);
    match ty {
        T::Subscribe => ControlMessage::Subscribe(subscribe(inp, id)),
        T::TrackStatus => ControlMessage::TrackStatus(subscribe(inp, id)),
        T::Fetch => {
            let fetch = match inp.byte() % 3 {
                0 => FetchKind::Standalone {
                    namespace: namespace(inp),
                    name: name(inp),
                    start: location(inp),
                    end: FetchEnd {
                        group: inp.number(),
                        object: inp.chance(50).then(|| inp.number()),
                    },
                },
                1 => FetchKind::RelativeJoining {
                    joining_request_id: pick(inp, &known.ours, &[T::Subscribe]),
                    joining_start: inp.number(),
                },
                _ => FetchKind::AbsoluteJoining {
                    joining_request_id: pick(inp, &known.ours, &[T::Subscribe]),
                    joining_start: inp.number(),
                },
            };
            ControlMessage::Fetch(Fetch {
                request_id: id,
                subscriber_priority: inp.byte(),
                group_order: order(inp),
                fetch,
                parameters: params(inp),
            })
        }
        T::PublishNamespace => ControlMessage::PublishNamespace(PublishNamespace {
            request_id: id,
            namespace: namespace(inp),
            parameters: params(inp),
        }),
        T::SubscribeNamespace => ControlMessage::SubscribeNamespace(SubscribeNamespace {
            request_id: id,
            namespace_prefix: namespace(inp),
            parameters: params(inp),
        }),
        T::Publish => {
            let track_alias = if inp.chance(70) {
                known.aliases.len() as u64 + 100
            } else {
                alias(inp, known)
            };
            known.aliases.push(track_alias);
            ControlMessage::Publish(Publish {
                request_id: id,
                namespace: namespace(inp),
                name: name(inp),
                track_alias,
                group_order: [GroupOrder::Ascending, GroupOrder::Descending][inp.below(2)],
                largest_location: inp.chance(50).then(|| location(inp)),
                forward: !inp.chance(10),
                parameters: params(inp),
            })
        }
        _ => ControlMessage::SubscribeUpdate(SubscribeUpdate {
            request_id: id,
            subscription_request_id: pick(inp, &known.ours, &[T::Subscribe]),
            start: location(inp),
            end_group: inp.chance(50).then(|| inp.number()),
            subscriber_priority: inp.byte(),
            forward: inp.chance(50),
            parameters: params(inp),
        }),
    }
}

/// A message that is no new request from us: cancellations, notices, and messages a client
/// must not send.
pub fn notice(inp: &mut Input, known: &mut Known) -> ControlMessage {
    use MessageType as T;
    match inp.byte() % 12 {
        0 | 1 => ControlMessage::Unsubscribe(RequestRef {
            request_id: pick(inp, &known.ours, &[T::Subscribe]),
        }),
        2 => ControlMessage::FetchCancel(RequestRef {
            request_id: pick(inp, &known.ours, &[T::Fetch]),
        }),
        3 | 4 => ControlMessage::PublishNamespaceDone(PublishNamespaceDone {
            namespace: namespace(inp),
        }),
        5 => ControlMessage::UnsubscribeNamespace(UnsubscribeNamespace {
            namespace_prefix: namespace(inp),
        }),
        6 => ControlMessage::PublishDone(PublishDone {
            request_id: pick(inp, &known.ours, &[T::Publish]),
            status_code: inp.number(),
            stream_count: inp.number(),
            reason: reason(inp),
        }),
        7 => ControlMessage::MaxRequestId(MaxRequestId {
            max_request_id: inp.number().saturating_add(1),
        }),
        8 => ControlMessage::RequestsBlocked(RequestsBlocked {
            max_request_id: inp.number(),
        }),
        9 => ControlMessage::Goaway(Goaway {
            new_session_uri: Blob::new(inp.bytes(16)),
        }),
        10 => ControlMessage::PublishNamespaceCancel(PublishNamespaceCancel {
            namespace: namespace(inp),
            error_code: inp.number(),
            reason: reason(inp),
        }),
        _ => ControlMessage::ClientSetup(ClientSetup {
            versions: vec![moqlink_model::Version::DRAFT_14],
            parameters: Default::default(),
        }),
    }
}

/// An answer to one of the relay's requests (or to a made-up one, sometimes).
pub fn answer(inp: &mut Input, known: &mut Known) -> ControlMessage {
    use MessageType as T;
    let (id, ty) = if known.relays.is_empty() || inp.chance(5) {
        let ty = [T::Subscribe, T::Fetch, T::TrackStatus, T::PublishNamespace][inp.below(4)];
        (inp.number(), ty)
    } else {
        known.relays[inp.below(known.relays.len())]
    };
    known.answered_relay.push(id);
    let ok = !inp.chance(25);
    let err = |inp: &mut Input| RequestError {
        request_id: id,
        error_code: inp.number(),
        reason: reason(inp),
    };
    match (ty, ok) {
        (T::Subscribe, true) | (T::TrackStatus, true) => {
            let track_alias = if inp.chance(80) {
                known.aliases.len() as u64 + 200
            } else {
                alias(inp, known)
            };
            if ty == T::Subscribe {
                known.aliases.push(track_alias);
            }
            let m = SubscribeOk {
                request_id: id,
                track_alias,
                expires: inp.number(),
                group_order: [GroupOrder::Ascending, GroupOrder::Descending][inp.below(2)],
                largest_location: inp.chance(50).then(|| location(inp)),
                parameters: params(inp),
            };
            if ty == T::Subscribe {
                ControlMessage::SubscribeOk(m)
            } else {
                ControlMessage::TrackStatusOk(m)
            }
        }
        (T::Subscribe, false) => ControlMessage::SubscribeError(err(inp)),
        (T::TrackStatus, false) => ControlMessage::TrackStatusError(err(inp)),
        (T::Fetch, true) => ControlMessage::FetchOk(FetchOk {
            request_id: id,
            group_order: [GroupOrder::Ascending, GroupOrder::Descending][inp.below(2)],
            end_of_track: inp.chance(30),
            end_location: FetchEnd {
                group: inp.number(),
                object: inp.chance(50).then(|| inp.number()),
            },
            parameters: params(inp),
        }),
        (T::Fetch, false) => ControlMessage::FetchError(err(inp)),
        (T::Publish, true) => ControlMessage::PublishOk(PublishOk {
            request_id: id,
            forward: inp.chance(80),
            subscriber_priority: inp.byte(),
            group_order: order(inp),
            filter: filter(inp),
            parameters: params(inp),
        }),
        (T::Publish, false) => ControlMessage::PublishError(err(inp)),
        (T::SubscribeNamespace, true) => {
            ControlMessage::SubscribeNamespaceOk(RequestRef { request_id: id })
        }
        (T::SubscribeNamespace, false) => ControlMessage::SubscribeNamespaceError(err(inp)),
        (_, true) => ControlMessage::PublishNamespaceOk(RequestRef { request_id: id }),
        (_, false) => ControlMessage::PublishNamespaceError(err(inp)),
    }
}

/// Appends a QUIC varint.
pub fn put_varint(out: &mut Vec<u8>, v: u64) {
    let v = v.min((1 << 62) - 1);
    if v < 1 << 6 {
        out.push(v as u8);
    } else if v < 1 << 14 {
        out.extend_from_slice(&((v as u16) | 0x4000).to_be_bytes());
    } else if v < 1 << 30 {
        out.extend_from_slice(&((v as u32) | 0x8000_0000).to_be_bytes());
    } else {
        out.extend_from_slice(&(v | 0xc000_0000_0000_0000).to_be_bytes());
    }
}

/// The first bytes of a subgroup stream: its header.
pub fn subgroup_header(inp: &mut Input, known: &Known) -> (Vec<u8>, bool) {
    const TYPES: [u64; 12] = [
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D,
    ];
    let ty = if inp.chance(3) {
        inp.number()
    } else {
        TYPES[inp.below(TYPES.len())]
    };
    let mut out = Vec::new();
    put_varint(&mut out, ty);
    put_varint(&mut out, alias(inp, known));
    put_varint(&mut out, inp.number());
    if ty & 0x04 != 0 {
        put_varint(&mut out, inp.number());
    }
    out.push(inp.byte());
    (out, ty & 0x01 != 0)
}

/// One object of a subgroup or fetch stream (after any per-object header fields).
pub fn object_body(inp: &mut Input, extensions: bool, out: &mut Vec<u8>) {
    if extensions {
        if inp.chance(80) {
            out.push(0);
        } else {
            let ext = inp.bytes(16);
            put_varint(out, ext.len() as u64);
            out.extend_from_slice(&ext);
        }
    }
    let payload = inp.bytes(48);
    if payload.is_empty() {
        out.push(0);
        put_varint(out, [0, 1, 3, 4, 7][inp.below(5)]);
    } else {
        let declared = if inp.chance(5) {
            inp.number()
        } else {
            payload.len() as u64
        };
        put_varint(out, declared);
        out.extend_from_slice(&payload);
    }
}

/// One object of a subgroup stream.
pub fn subgroup_object(inp: &mut Input, extensions: bool) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, inp.number() % 4);
    object_body(inp, extensions, &mut out);
    out
}

/// The first bytes of a fetch stream: FETCH_HEADER for one of the relay's FETCHes.
pub fn fetch_header(inp: &mut Input, known: &Known) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, 0x05);
    put_varint(&mut out, pick(inp, &known.relays, &[MessageType::Fetch]));
    out
}

/// One object of a fetch stream.
pub fn fetch_object(inp: &mut Input) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..3 {
        put_varint(&mut out, inp.number());
    }
    out.push(inp.byte());
    object_body(inp, true, &mut out);
    out
}

/// An OBJECT_DATAGRAM or its status form.
pub fn datagram(inp: &mut Input, known: &Known) -> Vec<u8> {
    if inp.chance(5) {
        return inp.bytes(64);
    }
    let ty = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x20, 0x21][inp.below(10)];
    let mut out = Vec::new();
    put_varint(&mut out, ty);
    put_varint(&mut out, alias(inp, known));
    put_varint(&mut out, inp.number());
    if ty & 0x04 == 0 {
        put_varint(&mut out, inp.number());
    }
    out.push(inp.byte());
    if ty & 0x01 != 0 {
        let ext = inp.bytes(8);
        put_varint(&mut out, ext.len() as u64);
        out.extend_from_slice(&ext);
    }
    if ty >= 0x20 {
        put_varint(&mut out, [0, 1, 3, 4, 9][inp.below(5)]);
    } else {
        out.extend_from_slice(&inp.bytes(48));
    }
    out
}
