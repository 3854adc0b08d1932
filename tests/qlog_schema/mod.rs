//! The event definitions of draft-pardue-moq-qlog-moq-events-04, written by hand from the
//! draft's CDDL (section numbers per event), and a checker for one decoded JSON event against
//! them. Field sets are closed here: a field the draft does not name is reported (the draft's
//! `$$` extension sockets would allow extras, but moqlink adds none, so an unknown name means a
//! misspelt one). The qlog main schema parts used (RawInfo, hexstring, loglevel events) are
//! marked as such.

use serde_json::{Map, Value};

/// A field's type, as the CDDL gives it.
#[derive(Clone, Copy, Debug)]
pub enum Ty {
    /// uint64.
    U64,
    /// uint8.
    U8,
    /// bool.
    Bool,
    /// text.
    Text,
    /// hexstring (main schema: even-length lowercase hex).
    Hex,
    /// RawInfo (main schema: `? length: uint64, ? payload_length: uint64, ? data: hexstring`).
    Raw,
    /// MOQTByteString (§5.4).
    ByteString,
    /// `[ *MOQTByteString]`.
    Tuple,
    /// MOQTLocation (§5.5).
    Location,
    /// `[* uint64]`.
    U64s,
    /// `[* $MOQTParameter]` (§5.3).
    Params,
    /// `[* $MOQTSetupParameter]` (§5.2).
    SetupParams,
    /// `[* MOQTExtensionHeader]` (§5.7).
    ExtHeaders,
    /// `$MOQTControlMessage` (§5.6).
    Message,
    /// One of these text values.
    OneOf(&'static [&'static str]),
    /// A map with these fields.
    Obj(&'static [F]),
}

/// One field: name, type, required (no `?` in the CDDL).
#[derive(Clone, Copy, Debug)]
pub struct F(pub &'static str, pub Ty, pub bool);

use Ty::*;

/// A required field.
macro_rules! r {
    ($n:expr, $t:expr $(,)?) => {
        F($n, $t, true)
    };
}
/// An optional field.
macro_rules! o {
    ($n:expr, $t:expr $(,)?) => {
        F($n, $t, false)
    };
}

// §4.1, §4.2 MOQTControlMessageCreated / MOQTControlMessageParsed.
const CONTROL: &[F] = &[
    r!("stream_id", U64),
    o!("length", U64),
    r!("message", Message),
    o!("raw", Raw),
];
// §4.3 MOQTStreamTypeSet; Owner (§5.1); $MOQTStreamType.
const STREAM_TYPE_SET: &[F] = &[
    o!("owner", OneOf(&["local", "remote"])),
    r!("stream_id", U64),
    r!(
        "stream_type",
        OneOf(&["control", "subgroup_header", "fetch_header"]),
    ),
];
// §4.4, §4.5 MOQTObjectDatagramCreated / Parsed.
const DATAGRAM: &[F] = &[
    r!("track_alias", U64),
    r!("group_id", U64),
    o!("object_id", U64),
    r!("publisher_priority", U8),
    o!("extension_headers_length", U64),
    o!("extension_headers", ExtHeaders),
    o!("object_status", U64),
    o!("object_payload", Raw),
    r!("end_of_group", Bool),
];
// §4.6, §4.7 MOQTSubgroupHeaderCreated / Parsed.
const SUBGROUP_HEADER: &[F] = &[
    r!("stream_id", U64),
    r!("track_alias", U64),
    r!("group_id", U64),
    o!("subgroup_id", U64),
    r!("publisher_priority", U8),
    r!("contains_end_of_group", Bool),
    r!("extensions_present", Bool),
];
// §4.8, §4.9 MOQTSubgroupObjectCreated / Parsed.
const SUBGROUP_OBJECT: &[F] = &[
    r!("stream_id", U64),
    o!("group_id", U64),
    o!("subgroup_id", U64),
    r!("object_id", U64),
    r!("extension_headers_length", U64),
    o!("extension_headers", ExtHeaders),
    r!("object_payload_length", U64),
    o!("object_status", U64),
    o!("object_payload", Raw),
];
// §4.10, §4.11 MOQTFetchHeaderCreated / Parsed.
const FETCH_HEADER: &[F] = &[r!("stream_id", U64), r!("request_id", U64)];
// §4.12, §4.13 MOQTFetchObjectCreated / Parsed.
const FETCH_OBJECT: &[F] = &[
    r!("stream_id", U64),
    r!("group_id", U64),
    r!("subgroup_id", U64),
    r!("object_id", U64),
    r!("publisher_priority", U8),
    r!("extension_headers_length", U64),
    o!("extension_headers", ExtHeaders),
    r!("object_payload_length", U64),
    o!("object_status", U64),
    o!("object_payload", Raw),
];
// qlog main schema, loglevel:warning (LogLevelWarning) and loglevel:info (LogLevelInfo).
const LOG_WARNING: &[F] = &[o!("code", U64), o!("message", Text)];
const LOG_INFO: &[F] = &[r!("message", Text)];

/// The fields of the event named `name` (events-04 Table 1, plus the two main-schema loglevel
/// events moqlink uses for the trace's own notes); `None` for any other name.
pub fn event_fields(name: &str) -> Option<&'static [F]> {
    Some(match name {
        "moqt:control_message_created" | "moqt:control_message_parsed" => CONTROL,
        "moqt:stream_type_set" => STREAM_TYPE_SET,
        "moqt:object_datagram_created" | "moqt:object_datagram_parsed" => DATAGRAM,
        "moqt:subgroup_header_created" | "moqt:subgroup_header_parsed" => SUBGROUP_HEADER,
        "moqt:subgroup_object_created" | "moqt:subgroup_object_parsed" => SUBGROUP_OBJECT,
        "moqt:fetch_header_created" | "moqt:fetch_header_parsed" => FETCH_HEADER,
        "moqt:fetch_object_created" | "moqt:fetch_object_parsed" => FETCH_OBJECT,
        "loglevel:warning" => LOG_WARNING,
        "loglevel:info" => LOG_INFO,
        _ => return None,
    })
}

const LOCATION: &[F] = &[r!("group", U64), r!("object", U64)];
const BYTE_STRING: &[F] = &[o!("value", Text), o!("value_bytes", Hex)];
const RAW: &[F] = &[
    o!("length", U64),
    o!("payload_length", U64),
    o!("data", Hex),
];
// §5.7 MOQTExtensionHeader.
const EXT_HEADER: &[F] = &[
    r!("header_type", U64),
    o!("header_value", U64),
    o!("header_length", U64),
    o!("payload", Raw),
];

/// The control message fields for `type` (events-04 §5.6.1-§5.6.30), without `type` itself.
fn message_fields(ty: &str) -> Option<&'static [F]> {
    // §5.6.6 MOQTSubscribe; §5.6.19 MOQTTrackStatus has the same fields.
    const SUBSCRIBE: &[F] = &[
        r!("request_id", U64),
        r!("track_namespace", Tuple),
        r!("track_name", ByteString),
        r!("subscriber_priority", U8),
        r!("group_order", U8),
        r!("forward", U8),
        r!("filter_type", U64),
        o!("start_location", Location),
        o!("end_group", U64),
        r!("number_of_parameters", U64),
        o!("parameters", Params),
    ];
    // §5.6.7 MOQTSubscribeOk; §5.6.20 MOQTTrackStatusOk has the same fields.
    const SUBSCRIBE_OK: &[F] = &[
        r!("request_id", U64),
        r!("track_alias", U64),
        r!("expires", U64),
        r!("group_order", U8),
        r!("content_exists", U8),
        o!("largest_location", Location),
        r!("number_of_parameters", U64),
        o!("parameters", Params),
    ];
    // Every *_ERROR message (§5.6.8, .14, .17, .21, .24, .29).
    const ERROR: &[F] = &[
        r!("request_id", U64),
        r!("error_code", U64),
        o!("reason", Text),
        o!("reason_bytes", Hex),
    ];
    const REQUEST_ONLY: &[F] = &[r!("request_id", U64)];
    Some(match ty {
        // §5.6.1
        "client_setup" => &[
            r!("number_of_supported_versions", U64),
            r!("supported_versions", U64s),
            r!("number_of_parameters", U64),
            o!("setup_parameters", SetupParams),
        ],
        // §5.6.2
        "server_setup" => &[
            r!("selected_version", U64),
            r!("number_of_parameters", U64),
            o!("setup_parameters", SetupParams),
        ],
        // §5.6.3
        "goaway" => &[o!("length", U64), r!("new_session_uri", Raw)],
        // §5.6.4
        "max_request_id" => REQUEST_ONLY,
        // §5.6.5
        "requests_blocked" => &[r!("maximum_request_id", U64)],
        "subscribe" | "track_status" => SUBSCRIBE,
        "subscribe_ok" | "track_status_ok" => SUBSCRIBE_OK,
        "subscribe_error"
        | "publish_error"
        | "fetch_error"
        | "track_status_error"
        | "publish_namespace_error"
        | "subscribe_namespace_error" => ERROR,
        // §5.6.9
        "subscribe_update" => &[
            r!("request_id", U64),
            r!("subscription_request_id", U64),
            r!("start_location", Location),
            r!("end_group", U64),
            r!("subscriber_priority", U8),
            r!("forward", U8),
            r!("number_of_parameters", U64),
            o!("parameters", Params),
        ],
        // §5.6.10, §5.6.18, §5.6.23, §5.6.28
        "unsubscribe" | "fetch_cancel" | "publish_namespace_ok" | "subscribe_namespace_ok" => {
            REQUEST_ONLY
        }
        // §5.6.11
        "publish_done" => &[
            r!("request_id", U64),
            r!("status_code", U64),
            r!("stream_count", U64),
            o!("reason", Text),
            o!("reason_bytes", Hex),
        ],
        // §5.6.12
        "publish" => &[
            r!("request_id", U64),
            r!("track_namespace", Tuple),
            r!("track_name", ByteString),
            r!("track_alias", U64),
            r!("group_order", U8),
            r!("content_exists", U8),
            o!("largest", Location),
            r!("forward", U8),
            r!("number_of_parameters", U64),
            o!("parameters", Params),
        ],
        // §5.6.13
        "publish_ok" => &[
            r!("request_id", U64),
            r!("forward", U8),
            r!("subscriber_priority", U8),
            r!("group_order", U8),
            r!("filter_type", U64),
            o!("start", Location),
            o!("end_group", U64),
            r!("number_of_parameters", U64),
            o!("parameters", Params),
        ],
        // §5.6.15 MOQTFetch with $MOQTStandaloneFetch, $MOQTJoiningFetch, $MOQTFetchType.
        "fetch" => &[
            r!("request_id", U64),
            r!("subscriber_priority", U8),
            r!("group_order", U8),
            r!(
                "fetch_type",
                OneOf(&["standalone", "absolute_joining", "relative_joining"]),
            ),
            o!(
                "standalone_fetch",
                Obj(&[
                    r!("track_namespace", Tuple),
                    r!("track_name", ByteString),
                    r!("start_location", Location),
                    r!("end_location", Location),
                ]),
            ),
            o!(
                "joining_fetch",
                Obj(&[r!("joining_request_id", U64), r!("joining_start", U64)]),
            ),
            o!("parameters", Params),
        ],
        // §5.6.16
        "fetch_ok" => &[
            r!("request_id", U64),
            r!("group_order", U8),
            r!("end_of_track", U8),
            r!("end_location", Location),
            r!("number_of_parameters", U64),
            o!("parameters", Params),
        ],
        // §5.6.22
        "publish_namespace" => &[
            r!("request_id", U64),
            r!("track_namespace", Tuple),
            r!("number_of_parameters", U64),
            o!("parameters", Params),
        ],
        // §5.6.25
        "publish_namespace_done" => &[r!("track_namespace", Tuple)],
        // §5.6.26
        "publish_namespace_cancel" => &[
            r!("track_namespace", Tuple),
            r!("error_code", U64),
            o!("reason", Text),
            o!("reason_bytes", Hex),
        ],
        // §5.6.27
        "subscribe_namespace" => &[
            r!("request_id", U64),
            r!("track_namespace_prefix", Tuple),
            r!("number_of_parameters", U64),
            o!("parameters", Params),
        ],
        // §5.6.30
        "unsubscribe_namespace" => &[r!("track_namespace_prefix", Tuple)],
        _ => return None,
    })
}

/// §5.2.1-§5.2.7 setup parameters by `name`.
fn setup_parameter_fields(name: &str) -> Option<&'static [F]> {
    Some(match name {
        "authority" | "path" | "implementation" => &[r!("value", Text)],
        "max_request_id" | "max_auth_token_cache_size" => &[r!("value", U64)],
        "authorization_token" => &[
            r!(
                "alias_type",
                OneOf(&["delete", "register", "use_alias", "use_value"]),
            ),
            o!("token_alias", U64),
            o!("token_type", U64),
            o!("token_value", Raw),
        ],
        "unknown" => &[
            r!("name_bytes", U64),
            o!("length", U64),
            o!("value", U64),
            o!("value_bytes", Raw),
        ],
        _ => return None,
    })
}

/// §5.3.1-§5.3.4 version-specific parameters by `name`.
fn parameter_fields(name: &str) -> Option<&'static [F]> {
    Some(match name {
        "authorization_token" => &[
            r!("alias_type", U64),
            o!("token_alias", U64),
            o!("token_type", U64),
            o!("token_value", Raw),
        ],
        "delivery_timeout" | "max_cache_duration" => &[r!("value", U64)],
        "unknown" => &[
            r!("name_bytes", U64),
            o!("length", U64),
            o!("value", U64),
            o!("value_bytes", Raw),
        ],
        _ => return None,
    })
}

fn is_hex(s: &str) -> bool {
    s.len() % 2 == 0
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

fn check_list(
    v: &Value,
    at: &str,
    each: impl Fn(&Value, &str) -> Result<(), String>,
) -> Result<(), String> {
    let a = v.as_array().ok_or(format!("{at}: not an array"))?;
    for (i, x) in a.iter().enumerate() {
        each(x, &format!("{at}[{i}]"))?;
    }
    Ok(())
}

/// A map named by its `key` field (`type` or `name`) with the fields `lookup` gives for it.
fn check_named(
    v: &Value,
    at: &str,
    key: &str,
    lookup: fn(&str) -> Option<&'static [F]>,
) -> Result<(), String> {
    let m = v.as_object().ok_or(format!("{at}: not a map"))?;
    let which = m
        .get(key)
        .and_then(Value::as_str)
        .ok_or(format!("{at}: no text `{key}`"))?;
    let fields = lookup(which).ok_or(format!("{at}: `{key}` {which:?} is not in the draft"))?;
    let mut rest = m.clone();
    rest.remove(key);
    check_fields(&rest, fields, &format!("{at}<{which}>"))
}

/// Checks `v` against `ty`.
pub fn check(v: &Value, ty: Ty, at: &str) -> Result<(), String> {
    let bad = |what: &str| Err(format!("{at}: {v} is not {what}"));
    match ty {
        U64 => v
            .as_u64()
            .map(|_| ())
            .ok_or(())
            .or_else(|_| bad("a uint64")),
        U8 => match v.as_u64() {
            Some(n) if n <= 255 => Ok(()),
            _ => bad("a uint8"),
        },
        Bool => v.as_bool().map(|_| ()).ok_or(()).or_else(|_| bad("a bool")),
        Text => v.as_str().map(|_| ()).ok_or(()).or_else(|_| bad("text")),
        Hex => match v.as_str() {
            Some(s) if is_hex(s) => Ok(()),
            _ => bad("a hexstring"),
        },
        Raw => check(v, Obj(RAW), at),
        ByteString => {
            check(v, Obj(BYTE_STRING), at)?;
            // §5.4: one of the two SHOULD be there.
            let m = v.as_object().unwrap();
            if m.is_empty() {
                return bad("a byte string with value or value_bytes");
            }
            Ok(())
        }
        Tuple => check_list(v, at, |x, a| check(x, ByteString, a)),
        Location => check(v, Obj(LOCATION), at),
        U64s => check_list(v, at, |x, a| check(x, U64, a)),
        Params => check_list(v, at, |x, a| check_named(x, a, "name", parameter_fields)),
        SetupParams => check_list(v, at, |x, a| {
            check_named(x, a, "name", setup_parameter_fields)
        }),
        ExtHeaders => check_list(v, at, |x, a| check(x, Obj(EXT_HEADER), a)),
        Message => check_named(v, at, "type", message_fields),
        OneOf(values) => match v.as_str() {
            Some(s) if values.contains(&s) => Ok(()),
            _ => bad(&format!("one of {values:?}")),
        },
        Obj(fields) => {
            let m = v.as_object().ok_or(format!("{at}: not a map"))?;
            check_fields(m, fields, at)
        }
    }
}

fn check_fields(m: &Map<String, Value>, fields: &[F], at: &str) -> Result<(), String> {
    for F(name, ty, required) in fields {
        match m.get(*name) {
            Some(v) => check(v, *ty, &format!("{at}.{name}"))?,
            None if *required => return Err(format!("{at}: required `{name}` missing")),
            None => {}
        }
    }
    for k in m.keys() {
        if !fields.iter().any(|f| f.0 == k) {
            return Err(format!("{at}: `{k}` is not a field the draft defines here"));
        }
    }
    Ok(())
}
