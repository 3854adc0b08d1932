//! Control messages as `$MOQTControlMessage` values (events-04 §5.6 and its subsections), with
//! the setup and version parameters (§5.2, §5.3), byte strings (§5.4) and locations (§5.5).
//!
//! Fields are logged as they are on the wire: SUBSCRIBE_UPDATE's `end_group` and the FETCH /
//! FETCH_OK `end_location` carry the draft-14 "plus one" encoding (0 = open / whole group).

use moqlink_model::control::*;
use moqlink_model::data::Extensions;
use moqlink_model::params::{KvValue, Parameter, SetupParameter, Token};
use moqlink_model::{Blob, Location, TrackNamespace, Version};
use serde_json::{json, Map, Value};

/// Decodes one framed control message and returns its payload length and its qlog form.
pub(super) fn from_wire(framed: &[u8]) -> Option<(u64, Value)> {
    use bytes::Buf;
    let mut b = bytes::Bytes::copy_from_slice(framed);
    let msg = ControlMessage::decode(&mut b.clone(), Version::DRAFT_14).ok()?;
    // Type (i) then Length (16): the length as the wire gives it.
    moqlink_model::varint::read(&mut b).ok()?;
    let length = u64::from(b.try_get_u16().ok()?);
    Some((length, control_message(&msg)))
}

/// A byte string (§5.4): `value` when it is UTF-8, else `value_bytes` in hex.
fn byte_string(b: &Blob) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => json!({ "value": s }),
        Err(_) => json!({ "value_bytes": hex::encode(b.bytes()) }),
    }
}

fn namespace(ns: &TrackNamespace) -> Value {
    Value::Array(ns.0.iter().map(byte_string).collect())
}

fn location(l: &Location) -> Value {
    json!({ "group": l.group, "object": l.object })
}

/// Bytes of a RawInfo written in hex; the rest is left out (`length` still counts it all). A
/// peer's extension headers or GOAWAY URI are as long as its limits allow, and every event
/// waits in the trace queue.
const RAW_DATA_MAX: usize = 64;

/// RawInfo (qlog main schema): the length and, in hex, up to [`RAW_DATA_MAX`] of the bytes.
pub(super) fn raw(b: &[u8]) -> Value {
    json!({ "length": b.len(), "data": hex::encode(&b[..b.len().min(RAW_DATA_MAX)]) })
}

/// `reason` when UTF-8, else `reason_bytes` (events-04 §4).
fn reason(m: &mut Map<String, Value>, r: &Blob) {
    match std::str::from_utf8(r) {
        Ok(s) => m.insert("reason".into(), json!(s)),
        Err(_) => m.insert("reason_bytes".into(), json!(hex::encode(r.bytes()))),
    };
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn unknown(key: u64, value: &KvValue) -> Value {
    match value {
        KvValue::Varint(v) => json!({ "name": "unknown", "name_bytes": key, "value": v }),
        KvValue::Bytes(b) => json!({
            "name": "unknown", "name_bytes": key, "length": b.len(), "value_bytes": raw(b),
        }),
    }
}

/// RawInfo with the length only: a credential is never written to a trace.
fn secret(b: &[u8]) -> Value {
    json!({ "length": b.len() })
}

/// Token fields shared by both authorization token forms; `alias_type` is added by the caller.
fn token_fields(t: &Token) -> Map<String, Value> {
    let mut m = Map::new();
    match t {
        Token::Delete { alias } | Token::UseAlias { alias } => {
            m.insert("token_alias".into(), json!(alias));
        }
        Token::Register {
            alias,
            token_type,
            token_value,
        } => {
            m.insert("token_alias".into(), json!(alias));
            m.insert("token_type".into(), json!(token_type));
            m.insert("token_value".into(), secret(token_value));
        }
        Token::UseValue {
            token_type,
            token_value,
        } => {
            m.insert("token_type".into(), json!(token_type));
            m.insert("token_value".into(), secret(token_value));
        }
    }
    m
}

fn alias_type(t: &Token) -> (u64, &'static str) {
    match t {
        Token::Delete { .. } => (0, "delete"),
        Token::Register { .. } => (1, "register"),
        Token::UseAlias { .. } => (2, "use_alias"),
        Token::UseValue { .. } => (3, "use_value"),
    }
}

fn text(b: &Blob) -> Value {
    json!(String::from_utf8_lossy(b))
}

/// The PATH without its query: relays take tokens from `?jwt=` / `?token=` there, and a trace
/// never holds credentials.
fn path(b: &Blob) -> Value {
    match b.iter().position(|&c| c == b'?') {
        Some(q) => json!(format!(
            "{}?<query left out>",
            String::from_utf8_lossy(&b[..q])
        )),
        None => text(b),
    }
}

/// A setup parameter (§5.2).
fn setup_parameter(p: &SetupParameter) -> Value {
    match p {
        SetupParameter::Path { value } => json!({ "name": "path", "value": path(value) }),
        SetupParameter::Authority { value } => {
            json!({ "name": "authority", "value": text(value) })
        }
        SetupParameter::MaxRequestId { value } => {
            json!({ "name": "max_request_id", "value": value })
        }
        SetupParameter::MaxAuthTokenCacheSize { value } => {
            json!({ "name": "max_auth_token_cache_size", "value": value })
        }
        SetupParameter::Implementation { value } => {
            json!({ "name": "implementation", "value": text(value) })
        }
        SetupParameter::AuthorizationToken { value } => {
            let mut m = token_fields(value);
            m.insert("name".into(), json!("authorization_token"));
            // §5.2: $MOQTAliasType is text in setup parameters.
            m.insert("alias_type".into(), json!(alias_type(value).1));
            Value::Object(m)
        }
        SetupParameter::Unknown { key, value } => unknown(*key, value),
    }
}

/// A version-specific parameter (§5.3).
fn parameter(p: &Parameter) -> Value {
    match p {
        Parameter::DeliveryTimeout { value } => {
            json!({ "name": "delivery_timeout", "value": value })
        }
        Parameter::MaxCacheDuration { value } => {
            json!({ "name": "max_cache_duration", "value": value })
        }
        Parameter::AuthorizationToken { value } => {
            let mut m = token_fields(value);
            m.insert("name".into(), json!("authorization_token"));
            // §5.3: alias_type is a uint64 in message parameters.
            m.insert("alias_type".into(), json!(alias_type(value).0));
            Value::Object(m)
        }
        Parameter::Unknown { key, value } => unknown(*key, value),
    }
}

fn parameters(m: &mut Map<String, Value>, ps: &moqlink_model::params::VersionParameters) {
    m.insert("number_of_parameters".into(), json!(ps.0.len()));
    if !ps.0.is_empty() {
        m.insert(
            "parameters".into(),
            Value::Array(ps.0.iter().map(parameter).collect()),
        );
    }
}

fn setup_parameters(m: &mut Map<String, Value>, ps: &moqlink_model::params::SetupParameters) {
    m.insert("number_of_parameters".into(), json!(ps.0.len()));
    if !ps.0.is_empty() {
        m.insert(
            "setup_parameters".into(),
            Value::Array(ps.0.iter().map(setup_parameter).collect()),
        );
    }
}

/// Filter Type with its Start Location / End Group, under the names `start_key`/`end_group`.
fn filter(m: &mut Map<String, Value>, f: &Filter, start_key: &str) {
    m.insert("filter_type".into(), json!(f.code()));
    match f {
        Filter::NextGroupStart | Filter::LargestObject => {}
        Filter::AbsoluteStart { start } => {
            m.insert(start_key.into(), location(start));
        }
        Filter::AbsoluteRange { start, end_group } => {
            m.insert(start_key.into(), location(start));
            m.insert("end_group".into(), json!(end_group));
        }
    }
}

fn request_error(ty: &str, e: &RequestError) -> Value {
    let mut m = obj(json!({ "type": ty, "request_id": e.request_id, "error_code": e.error_code }));
    reason(&mut m, &e.reason);
    Value::Object(m)
}

fn subscribe(ty: &str, s: &Subscribe) -> Value {
    let mut m = obj(json!({
        "type": ty,
        "request_id": s.request_id,
        "track_namespace": namespace(&s.namespace),
        "track_name": byte_string(&s.name),
        "subscriber_priority": s.subscriber_priority,
        "group_order": s.group_order.code(),
        "forward": u8::from(s.forward),
    }));
    filter(&mut m, &s.filter, "start_location");
    parameters(&mut m, &s.parameters);
    Value::Object(m)
}

fn subscribe_ok(ty: &str, s: &SubscribeOk) -> Value {
    let mut m = obj(json!({
        "type": ty,
        "request_id": s.request_id,
        "track_alias": s.track_alias,
        "expires": s.expires,
        "group_order": s.group_order.code(),
        "content_exists": u8::from(s.largest_location.is_some()),
    }));
    if let Some(l) = &s.largest_location {
        m.insert("largest_location".into(), location(l));
    }
    parameters(&mut m, &s.parameters);
    Value::Object(m)
}

/// A FETCH end as on the wire: object + 1, or 0 for the whole group (draft-14 §9.16).
fn fetch_end(e: &FetchEnd) -> Value {
    let object = e.object.map_or(0, |o| o.saturating_add(1));
    json!({ "group": e.group, "object": object })
}

fn fetch(f: &Fetch) -> Value {
    let mut m = obj(json!({
        "type": "fetch",
        "request_id": f.request_id,
        "subscriber_priority": f.subscriber_priority,
        "group_order": f.group_order.code(),
    }));
    match &f.fetch {
        FetchKind::Standalone {
            namespace: ns,
            name,
            start,
            end,
        } => {
            m.insert("fetch_type".into(), json!("standalone"));
            m.insert(
                "standalone_fetch".into(),
                json!({
                    "track_namespace": namespace(ns),
                    "track_name": byte_string(name),
                    "start_location": location(start),
                    "end_location": fetch_end(end),
                }),
            );
        }
        FetchKind::RelativeJoining {
            joining_request_id,
            joining_start,
        }
        | FetchKind::AbsoluteJoining {
            joining_request_id,
            joining_start,
        } => {
            let ty = if matches!(f.fetch, FetchKind::RelativeJoining { .. }) {
                "relative_joining"
            } else {
                "absolute_joining"
            };
            m.insert("fetch_type".into(), json!(ty));
            m.insert(
                "joining_fetch".into(),
                json!({ "joining_request_id": joining_request_id, "joining_start": joining_start }),
            );
        }
    }
    // §5.6.15: MOQTFetch has no number_of_parameters, only the list.
    if !f.parameters.0.is_empty() {
        m.insert(
            "parameters".into(),
            Value::Array(f.parameters.0.iter().map(parameter).collect()),
        );
    }
    Value::Object(m)
}

/// The `$MOQTControlMessage` form of `msg` (events-04 §5.6.x, one per message type).
pub fn control_message(msg: &ControlMessage) -> Value {
    use ControlMessage as M;
    match msg {
        M::ClientSetup(s) => {
            let versions: Vec<u64> = s.versions.iter().map(|v| u64::from(v.0)).collect();
            let mut m = obj(json!({
                "type": "client_setup",
                "number_of_supported_versions": versions.len(),
                "supported_versions": versions,
            }));
            setup_parameters(&mut m, &s.parameters);
            Value::Object(m)
        }
        M::ServerSetup(s) => {
            let mut m = obj(json!({ "type": "server_setup", "selected_version": s.version.0 }));
            setup_parameters(&mut m, &s.parameters);
            Value::Object(m)
        }
        M::Goaway(g) => json!({
            "type": "goaway",
            "length": g.new_session_uri.len(),
            "new_session_uri": raw(&g.new_session_uri),
        }),
        M::MaxRequestId(m) => json!({ "type": "max_request_id", "request_id": m.max_request_id }),
        M::RequestsBlocked(b) => {
            json!({ "type": "requests_blocked", "maximum_request_id": b.max_request_id })
        }
        M::Subscribe(s) => subscribe("subscribe", s),
        M::TrackStatus(s) => subscribe("track_status", s),
        M::SubscribeOk(s) => subscribe_ok("subscribe_ok", s),
        M::TrackStatusOk(s) => subscribe_ok("track_status_ok", s),
        M::SubscribeError(e) => request_error("subscribe_error", e),
        M::PublishError(e) => request_error("publish_error", e),
        M::FetchError(e) => request_error("fetch_error", e),
        M::TrackStatusError(e) => request_error("track_status_error", e),
        M::PublishNamespaceError(e) => request_error("publish_namespace_error", e),
        M::SubscribeNamespaceError(e) => request_error("subscribe_namespace_error", e),
        M::SubscribeUpdate(u) => {
            let mut m = obj(json!({
                "type": "subscribe_update",
                "request_id": u.request_id,
                "subscription_request_id": u.subscription_request_id,
                "start_location": location(&u.start),
                "end_group": u.end_group.map_or(0, |g| g.saturating_add(1)),
                "subscriber_priority": u.subscriber_priority,
                "forward": u8::from(u.forward),
            }));
            parameters(&mut m, &u.parameters);
            Value::Object(m)
        }
        M::Unsubscribe(r) => json!({ "type": "unsubscribe", "request_id": r.request_id }),
        M::FetchCancel(r) => json!({ "type": "fetch_cancel", "request_id": r.request_id }),
        M::PublishNamespaceOk(r) => {
            json!({ "type": "publish_namespace_ok", "request_id": r.request_id })
        }
        M::SubscribeNamespaceOk(r) => {
            json!({ "type": "subscribe_namespace_ok", "request_id": r.request_id })
        }
        M::PublishDone(d) => {
            let mut m = obj(json!({
                "type": "publish_done",
                "request_id": d.request_id,
                "status_code": d.status_code,
                "stream_count": d.stream_count,
            }));
            reason(&mut m, &d.reason);
            Value::Object(m)
        }
        M::Publish(p) => {
            let mut m = obj(json!({
                "type": "publish",
                "request_id": p.request_id,
                "track_namespace": namespace(&p.namespace),
                "track_name": byte_string(&p.name),
                "track_alias": p.track_alias,
                "group_order": p.group_order.code(),
                "content_exists": u8::from(p.largest_location.is_some()),
                "forward": u8::from(p.forward),
            }));
            if let Some(l) = &p.largest_location {
                m.insert("largest".into(), location(l));
            }
            parameters(&mut m, &p.parameters);
            Value::Object(m)
        }
        M::PublishOk(p) => {
            let mut m = obj(json!({
                "type": "publish_ok",
                "request_id": p.request_id,
                "forward": u8::from(p.forward),
                "subscriber_priority": p.subscriber_priority,
                "group_order": p.group_order.code(),
            }));
            filter(&mut m, &p.filter, "start");
            parameters(&mut m, &p.parameters);
            Value::Object(m)
        }
        M::Fetch(f) => fetch(f),
        M::FetchOk(f) => {
            let mut m = obj(json!({
                "type": "fetch_ok",
                "request_id": f.request_id,
                "group_order": f.group_order.code(),
                "end_of_track": u8::from(f.end_of_track),
                "end_location": fetch_end(&f.end_location),
            }));
            parameters(&mut m, &f.parameters);
            Value::Object(m)
        }
        M::PublishNamespace(p) => {
            let mut m = obj(json!({
                "type": "publish_namespace",
                "request_id": p.request_id,
                "track_namespace": namespace(&p.namespace),
            }));
            parameters(&mut m, &p.parameters);
            Value::Object(m)
        }
        M::PublishNamespaceDone(d) => json!({
            "type": "publish_namespace_done",
            "track_namespace": namespace(&d.namespace),
        }),
        M::PublishNamespaceCancel(c) => {
            let mut m = obj(json!({
                "type": "publish_namespace_cancel",
                "track_namespace": namespace(&c.namespace),
                "error_code": c.error_code,
            }));
            reason(&mut m, &c.reason);
            Value::Object(m)
        }
        M::SubscribeNamespace(s) => {
            let mut m = obj(json!({
                "type": "subscribe_namespace",
                "request_id": s.request_id,
                "track_namespace_prefix": namespace(&s.namespace_prefix),
            }));
            parameters(&mut m, &s.parameters);
            Value::Object(m)
        }
        M::UnsubscribeNamespace(u) => json!({
            "type": "unsubscribe_namespace",
            "track_namespace_prefix": namespace(&u.namespace_prefix),
        }),
    }
}

/// Extension headers as `[* MOQTExtensionHeader]` (§5.7): varint values for even types,
/// length and RawInfo payload for odd ones.
pub(super) fn extension_headers(e: &Extensions) -> Value {
    Value::Array(
        e.pairs()
            .iter()
            .map(|p| match &p.value {
                KvValue::Varint(v) => json!({ "header_type": p.key, "header_value": v }),
                KvValue::Bytes(b) => json!({
                    "header_type": p.key, "header_length": b.len(), "payload": raw(b),
                }),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_logged_without_its_query_and_raw_bytes_are_cut() {
        let p = Blob::from("/moq?jwt=secret");
        assert_eq!(path(&p), json!("/moq?<query left out>"));
        assert_eq!(path(&Blob::from("/moq")), json!("/moq"));
        let r = raw(&[0xab; 1000]);
        assert_eq!(r["length"], 1000);
        assert_eq!(r["data"].as_str().unwrap().len(), 2 * RAW_DATA_MAX);
    }
}
