//! Adapter for `moqtail` 0.11.1 ("Draft 14-compliant").
//!
//! Public API used: `model::control::control_message::ControlMessage::{deserialize,
//! serialize}` (Type (i) + Length (16) framing, every draft-14 control message), the
//! per-message structs, `model::data::{subgroup_header, subgroup_object, fetch_header,
//! fetch_object, datagram_object, datagram_status}`, `model::parameter::authorization_token`
//! and `model::common::varint`. Error codes are closed enums in moqtail, so a code outside
//! its table cannot be built or decoded.

use crate::common::*;
use bytes::{Buf, Bytes, BytesMut};
use moqtail::model::common::location::Location;
use moqtail::model::common::pair::KeyValuePair;
use moqtail::model::common::reason_phrase::ReasonPhrase;
use moqtail::model::common::tuple::{Tuple, TupleField};
use moqtail::model::common::varint::{BufMutVarIntExt, BufVarIntExt};
use moqtail::model::control::client_setup::ClientSetup;
use moqtail::model::control::constant::{
    FetchErrorCode, FetchType, FilterType, GroupOrder, PublishDoneStatusCode, PublishErrorCode,
    PublishNamespaceErrorCode, SubscribeErrorCode, SubscribeNamespaceErrorCode,
};
use moqtail::model::control::control_message::{ControlMessage, ControlMessageTrait};
use moqtail::model::control::fetch::{Fetch, JoiningFetchProps, StandAloneFetchProps};
use moqtail::model::control::fetch_cancel::FetchCancel;
use moqtail::model::control::fetch_error::FetchError;
use moqtail::model::control::fetch_ok::FetchOk;
use moqtail::model::control::goaway::GoAway;
use moqtail::model::control::max_request_id::MaxRequestId;
use moqtail::model::control::publish::Publish;
use moqtail::model::control::publish_done::PublishDone;
use moqtail::model::control::publish_error::PublishError;
use moqtail::model::control::publish_namespace::PublishNamespace;
use moqtail::model::control::publish_namespace_cancel::PublishNamespaceCancel;
use moqtail::model::control::publish_namespace_done::PublishNamespaceDone;
use moqtail::model::control::publish_namespace_error::PublishNamespaceError;
use moqtail::model::control::publish_namespace_ok::PublishNamespaceOk;
use moqtail::model::control::publish_ok::PublishOk;
use moqtail::model::control::requests_blocked::RequestsBlocked;
use moqtail::model::control::server_setup::ServerSetup;
use moqtail::model::control::subscribe::Subscribe;
use moqtail::model::control::subscribe_error::SubscribeError;
use moqtail::model::control::subscribe_namespace::SubscribeNamespace;
use moqtail::model::control::subscribe_namespace_error::SubscribeNamespaceError;
use moqtail::model::control::subscribe_namespace_ok::SubscribeNamespaceOk;
use moqtail::model::control::subscribe_ok::SubscribeOk;
use moqtail::model::control::subscribe_update::SubscribeUpdate;
use moqtail::model::control::track_status::TrackStatus;
use moqtail::model::control::track_status_error::TrackStatusError;
use moqtail::model::control::track_status_ok::TrackStatusOk;
use moqtail::model::control::unsubscribe::Unsubscribe;
use moqtail::model::control::unsubscribe_namespace::UnsubscribeNamespace;
use moqtail::model::data::constant::{ObjectStatus, SubgroupHeaderType};
use moqtail::model::data::datagram_object::DatagramObject;
use moqtail::model::data::datagram_status::DatagramStatus;
use moqtail::model::data::fetch_header::FetchHeader;
use moqtail::model::data::fetch_object::FetchObject;
use moqtail::model::data::subgroup_header::SubgroupHeader;
use moqtail::model::data::subgroup_object::SubgroupObject;
use moqtail::model::parameter::authorization_token::AuthorizationToken;
use serde_json::{json, Value};

fn lib<E: std::fmt::Debug>(e: E) -> Fail {
    Fail::Library(format!("{e:?}"))
}

fn ad(e: String) -> Fail {
    Fail::Adapter(e)
}

fn s<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// moqtail's own Token codec (§9.2.1.1); a failure there is the library rejecting it.
const TOKEN: TokenCodec = TokenCodec {
    decode: token_to_json,
    encode: json_to_token,
};

fn token_to_json(b: &[u8]) -> Result<Value, Fail> {
    let t = AuthorizationToken::deserialize(&mut Bytes::copy_from_slice(b)).map_err(lib)?;
    let alias = || {
        t.token_alias
            .ok_or_else(|| ad("token without alias".into()))
    };
    let ty = || t.token_type.ok_or_else(|| ad("token without type".into()));
    let val = || bytes_json(t.token_value.as_deref().unwrap_or_default());
    Ok(match t.alias_type {
        0 => json!({ "alias_type": "DELETE", "alias": alias()? }),
        1 => json!({ "alias_type": "REGISTER", "alias": alias()?, "token_type": ty()?,
                     "token_value": val() }),
        2 => json!({ "alias_type": "USE_ALIAS", "alias": alias()? }),
        3 => json!({ "alias_type": "USE_VALUE", "token_type": ty()?, "token_value": val() }),
        other => return Err(ad(format!("alias type {other}"))),
    })
}

fn json_to_token(v: &Value) -> Res<Vec<u8>> {
    let value = || bytes_of(v, "token_value").map(Bytes::from);
    let t = match str_of(v, "alias_type")? {
        "DELETE" => AuthorizationToken::new_delete(u64_of(v, "alias")?),
        "REGISTER" => AuthorizationToken::new_register(
            u64_of(v, "alias")?,
            u64_of(v, "token_type")?,
            value()?,
        ),
        "USE_ALIAS" => AuthorizationToken::new_use_alias(u64_of(v, "alias")?),
        "USE_VALUE" => AuthorizationToken::new_use_value(u64_of(v, "token_type")?, value()?),
        other => return Err(format!("alias type {other}")),
    };
    Ok(t.serialize().map_err(s)?.to_vec())
}

// ---------------------------------------------------------------------------------------
// conversions of small types

fn kvp(k: &KeyValuePair) -> Kvp {
    match k {
        KeyValuePair::VarInt { type_value, value } => Kvp::Int(*type_value, *value),
        KeyValuePair::Bytes { type_value, value } => Kvp::Bytes(*type_value, value.to_vec()),
    }
}

fn to_kvp(k: &Kvp) -> Res<KeyValuePair> {
    match k {
        Kvp::Int(key, v) => KeyValuePair::try_new_varint(*key, *v).map_err(s),
        Kvp::Bytes(key, b) => KeyValuePair::try_new_bytes(*key, Bytes::from(b.clone())).map_err(s),
    }
}

fn kvps(p: &[KeyValuePair]) -> Vec<Kvp> {
    p.iter().map(kvp).collect()
}

fn to_kvps(k: &[Kvp]) -> Res<Vec<KeyValuePair>> {
    k.iter().map(to_kvp).collect()
}

fn params(ctx: ParamCtx, p: &[KeyValuePair]) -> Result<Value, Fail> {
    params_json(ctx, &kvps(p), &TOKEN)
}

fn to_params(ctx: ParamCtx, v: &Value) -> Res<Vec<KeyValuePair>> {
    to_kvps(&json_params(ctx, v, &TOKEN)?)
}

fn ns(t: &Tuple) -> Value {
    ns_json(t.fields.iter().map(TupleField::as_bytes))
}

fn to_ns(v: &Value, key: &str) -> Res<Tuple> {
    Ok(Tuple {
        fields: json_ns(v, key)?
            .into_iter()
            .map(|b| TupleField::new(Bytes::from(b)))
            .collect(),
    })
}

fn name(t: &TupleField) -> Value {
    bytes_json(t.as_bytes())
}

fn to_name(v: &Value) -> Res<TupleField> {
    Ok(TupleField::new(Bytes::from(bytes_of(v, "name")?)))
}

fn loc(l: &Location) -> Value {
    loc_json(l.group, l.object)
}

fn to_loc(v: &Value) -> Res<Location> {
    let (g, o) = json_loc(v)?;
    Ok(Location::new(g, o))
}

fn order(g: GroupOrder) -> Result<Value, Fail> {
    group_order_json(g as u8).map_err(ad)
}

fn to_order(v: &Value) -> Res<GroupOrder> {
    GroupOrder::try_from(json_group_order(v)?).map_err(s)
}

fn filter(t: FilterType, start: &Option<Location>, end: Option<u64>) -> Result<Value, Fail> {
    filter_json((t as u64, start.as_ref().map(|l| (l.group, l.object)), end)).map_err(ad)
}

fn to_filter(v: &Value) -> Res<(FilterType, Option<Location>, Option<u64>)> {
    let (t, start, end) = json_filter(v)?;
    Ok((
        FilterType::try_from(t).map_err(s)?,
        start.map(|(g, o)| Location::new(g, o)),
        end,
    ))
}

/// moqtail's ReasonPhrase keeps its text private; read it back from its own encoding.
fn reason(r: &ReasonPhrase) -> Result<Value, Fail> {
    let mut b = r.serialize().map_err(lib)?;
    let len = b.get_vi().map_err(lib)?;
    if len as usize != b.remaining() {
        return Err(ad("reason phrase re-encoding".into()));
    }
    Ok(bytes_json(&b))
}

fn to_reason(v: &Value) -> Res<ReasonPhrase> {
    ReasonPhrase::try_new(string_of(v, "reason")?).map_err(s)
}

fn status(st: ObjectStatus) -> Result<Value, Fail> {
    status_json(st as u64).map_err(ad)
}

fn to_status(v: &Value) -> Res<ObjectStatus> {
    ObjectStatus::try_from(json_status(v)?).map_err(s)
}

fn err_msg(ty: &str, id: u64, code: u64, r: &ReasonPhrase) -> Result<Value, Fail> {
    Ok(json!({ "type": ty, "request_id": id, "error_code": code, "reason": reason(r)? }))
}

fn opt_params(p: &Option<Vec<KeyValuePair>>) -> &[KeyValuePair] {
    p.as_deref().unwrap_or_default()
}

fn largest(v: &Value) -> Res<Option<Location>> {
    match field(v, "largest_location")? {
        Value::Null => Ok(None),
        l => Ok(Some(to_loc(l)?)),
    }
}

// ---------------------------------------------------------------------------------------
// decode

pub fn decode(kind: VKind, input: &[u8]) -> Result<Value, Fail> {
    let mut buf = Bytes::copy_from_slice(input);
    let v = match kind {
        VKind::Control => message_json(&ControlMessage::deserialize(&mut buf).map_err(lib)?)?,
        // moqtail's receiver (transport/data_stream_handler.rs) picks the header parser by
        // the first byte: 0x05 is a fetch stream, anything else goes to SubgroupHeader
        // (FetchHeader::deserialize itself does not check the type). The adapter does too.
        VKind::Subgroup | VKind::Fetch => {
            let fetch = buf.first() == Some(&0x05);
            let v = if fetch {
                decode_fetch(&mut buf)?
            } else {
                decode_subgroup(&mut buf)?
            };
            if fetch != (kind == VKind::Fetch) {
                let other = if fetch { "fetch" } else { "subgroup" };
                return Err(ad(format!("moqtail reads this as a {other} stream")));
            }
            v
        }
        VKind::Datagram => decode_datagram(&mut buf)?,
        VKind::Varint => json!({ "value": buf.get_vi().map_err(lib)? }),
    };
    if buf.has_remaining() {
        return Err(Fail::Leftover(buf.remaining()));
    }
    Ok(v)
}

fn message_json(msg: &ControlMessage) -> Result<Value, Fail> {
    use ControlMessage as C;
    let p = |name: &'static str, kv: &[KeyValuePair]| params(ParamCtx::Message(name), kv);
    Ok(match msg {
        C::ClientSetup(x) => json!({
            "type": "CLIENT_SETUP",
            "versions": x.supported_versions.iter().map(|v| version_json(u64::from(*v))).collect::<Vec<_>>(),
            "parameters": params(ParamCtx::Setup, &x.setup_parameters)?,
        }),
        C::ServerSetup(x) => json!({
            "type": "SERVER_SETUP", "version": version_json(u64::from(x.selected_version)),
            "parameters": params(ParamCtx::Setup, &x.setup_parameters)?,
        }),
        C::Goaway(x) => json!({
            "type": "GOAWAY",
            "new_session_uri": bytes_json(x.new_session_uri.as_deref().unwrap_or("").as_bytes()),
        }),
        C::MaxRequestId(x) => json!({ "type": "MAX_REQUEST_ID", "max_request_id": x.request_id }),
        C::RequestsBlocked(x) => {
            json!({ "type": "REQUESTS_BLOCKED", "max_request_id": x.maximum_request_id })
        }
        C::Subscribe(x) => json!({
            "type": "SUBSCRIBE", "request_id": x.request_id, "namespace": ns(&x.track_namespace),
            "name": name(&x.track_name), "subscriber_priority": x.subscriber_priority,
            "group_order": order(x.group_order)?, "forward": x.forward,
            "filter": filter(x.filter_type, &x.start_location, x.end_group)?,
            "parameters": p("SUBSCRIBE", &x.subscribe_parameters)?,
        }),
        C::TrackStatus(x) => json!({
            "type": "TRACK_STATUS", "request_id": x.request_id, "namespace": ns(&x.track_namespace),
            "name": name(&x.track_name), "subscriber_priority": x.subscriber_priority,
            "group_order": order(x.group_order)?, "forward": x.forward,
            "filter": filter(x.filter_type, &x.start_location, x.end_group)?,
            "parameters": p("TRACK_STATUS", &x.subscribe_parameters)?,
        }),
        C::SubscribeOk(x) => json!({
            "type": "SUBSCRIBE_OK", "request_id": x.request_id, "track_alias": x.track_alias,
            "expires": x.expires, "group_order": order(x.group_order)?,
            "largest_location": x.largest_location.as_ref().filter(|_| x.content_exists).map(loc),
            "parameters": p("SUBSCRIBE_OK", opt_params(&x.subscribe_parameters))?,
        }),
        C::TrackStatusOk(x) => json!({
            "type": "TRACK_STATUS_OK", "request_id": x.request_id, "track_alias": x.track_alias,
            "expires": x.expires, "group_order": order(x.group_order)?,
            "largest_location": x.largest_location.as_ref().filter(|_| x.content_exists).map(loc),
            "parameters": p("TRACK_STATUS_OK", opt_params(&x.subscribe_parameters))?,
        }),
        C::SubscribeError(x) => err_msg(
            "SUBSCRIBE_ERROR",
            x.request_id,
            x.error_code as u64,
            &x.reason_phrase,
        )?,
        C::TrackStatusError(x) => err_msg(
            "TRACK_STATUS_ERROR",
            x.request_id,
            x.error_code as u64,
            &x.reason_phrase,
        )?,
        C::PublishError(x) => err_msg(
            "PUBLISH_ERROR",
            x.request_id,
            x.error_code as u64,
            &x.reason_phrase,
        )?,
        C::FetchError(x) => err_msg(
            "FETCH_ERROR",
            x.request_id,
            x.error_code as u64,
            &x.reason_phrase,
        )?,
        C::PublishNamespaceError(x) => err_msg(
            "PUBLISH_NAMESPACE_ERROR",
            x.request_id,
            x.error_code as u64,
            &x.reason_phrase,
        )?,
        C::SubscribeNamespaceError(x) => err_msg(
            "SUBSCRIBE_NAMESPACE_ERROR",
            x.request_id,
            x.error_code as u64,
            &x.reason_phrase,
        )?,
        C::SubscribeUpdate(x) => json!({
            "type": "SUBSCRIBE_UPDATE", "request_id": x.request_id,
            "subscription_request_id": x.subscription_request_id,
            "start": loc(&x.start_location), "end_group": update_end_json(x.end_group),
            "subscriber_priority": x.subscriber_priority, "forward": x.forward,
            "parameters": p("SUBSCRIBE_UPDATE", &x.subscribe_parameters)?,
        }),
        C::Unsubscribe(x) => json!({ "type": "UNSUBSCRIBE", "request_id": x.request_id }),
        C::FetchCancel(x) => json!({ "type": "FETCH_CANCEL", "request_id": x.request_id }),
        C::PublishNamespaceOk(x) => {
            json!({ "type": "PUBLISH_NAMESPACE_OK", "request_id": x.request_id })
        }
        C::SubscribeNamespaceOk(x) => {
            json!({ "type": "SUBSCRIBE_NAMESPACE_OK", "request_id": x.request_id })
        }
        C::PublishDone(x) => json!({
            "type": "PUBLISH_DONE", "request_id": x.request_id,
            "status_code": x.status_code as u64, "stream_count": x.stream_count,
            "reason": reason(&x.reason_phrase)?,
        }),
        C::Publish(x) => json!({
            "type": "PUBLISH", "request_id": x.request_id, "namespace": ns(&x.track_namespace),
            "name": name(&x.track_name), "track_alias": x.track_alias,
            "group_order": order(x.group_order)?,
            "largest_location": x.largest_location.as_ref().filter(|_| x.content_exists == 1).map(loc),
            "forward": x.forward == 1, "parameters": p("PUBLISH", &x.parameters)?,
        }),
        C::PublishOk(x) => json!({
            "type": "PUBLISH_OK", "request_id": x.request_id, "forward": x.forward == 1,
            "subscriber_priority": x.subscriber_priority, "group_order": order(x.group_order)?,
            "filter": filter(x.filter_type, &x.start_location, x.end_group)?,
            "parameters": p("PUBLISH_OK", &x.parameters)?,
        }),
        C::Fetch(x) => {
            let fetch = match x.fetch_type {
                FetchType::StandAlone => {
                    let f = x
                        .standalone_fetch_props
                        .as_ref()
                        .ok_or(ad("no standalone".into()))?;
                    json!({
                        "type": "STANDALONE", "namespace": ns(&f.track_namespace),
                        "name": name(&f.track_name), "start": loc(&f.start_location),
                        "end": fetch_end_json(f.end_location.group, f.end_location.object),
                    })
                }
                t => {
                    let j = x
                        .joining_fetch_props
                        .as_ref()
                        .ok_or(ad("no joining".into()))?;
                    let kind = if t == FetchType::RelativeFetch {
                        "RELATIVE_JOINING"
                    } else {
                        "ABSOLUTE_JOINING"
                    };
                    json!({ "type": kind, "joining_request_id": j.joining_request_id,
                            "joining_start": j.joining_start })
                }
            };
            json!({
                "type": "FETCH", "request_id": x.request_id,
                "subscriber_priority": x.subscriber_priority,
                "group_order": order(x.group_order)?, "fetch": fetch,
                "parameters": p("FETCH", &x.parameters)?,
            })
        }
        C::FetchOk(x) => json!({
            "type": "FETCH_OK", "request_id": x.request_id, "group_order": order(x.group_order)?,
            "end_of_track": x.end_of_track,
            "end_location": fetch_end_json(x.end_location.group, x.end_location.object),
            "parameters": p("FETCH_OK", &x.subscribe_parameters)?,
        }),
        C::PublishNamespace(x) => json!({
            "type": "PUBLISH_NAMESPACE", "request_id": x.request_id,
            "namespace": ns(&x.track_namespace),
            "parameters": p("PUBLISH_NAMESPACE", &x.parameters)?,
        }),
        C::PublishNamespaceDone(x) => {
            json!({ "type": "PUBLISH_NAMESPACE_DONE", "namespace": ns(&x.track_namespace) })
        }
        C::PublishNamespaceCancel(x) => json!({
            "type": "PUBLISH_NAMESPACE_CANCEL", "namespace": ns(&x.track_namespace),
            "error_code": x.error_code as u64, "reason": reason(&x.reason_phrase)?,
        }),
        C::SubscribeNamespace(x) => json!({
            "type": "SUBSCRIBE_NAMESPACE", "request_id": x.request_id,
            "namespace_prefix": ns(&x.track_namespace_prefix),
            "parameters": p("SUBSCRIBE_NAMESPACE", &x.parameters)?,
        }),
        C::UnsubscribeNamespace(x) => json!({
            "type": "UNSUBSCRIBE_NAMESPACE", "namespace_prefix": ns(&x.track_namespace_prefix),
        }),
        C::Switch(_) => return Err(ad("SWITCH (0x22) is not a draft-14 message".into())),
    })
}

fn object_json(payload: &Option<Bytes>, st: Option<ObjectStatus>) -> Result<(Value, Value), Fail> {
    match (payload, st) {
        (Some(p), None) => Ok((json!("NORMAL"), bytes_json(p))),
        (None, Some(s)) => Ok((status(s)?, json!(""))),
        _ => Err(ad("object with both or neither payload and status".into())),
    }
}

fn decode_subgroup(buf: &mut Bytes) -> Result<Value, Fail> {
    let h = SubgroupHeader::deserialize(buf).map_err(lib)?;
    let t = h.header_type;
    let subgroup_id = if t.subgroup_id_is_zero() {
        json!("ZERO")
    } else if t.subgroup_id_is_first_object_id() {
        json!("FIRST_OBJECT_ID")
    } else {
        json!({ "EXPLICIT": h.subgroup_id.ok_or(ad("no subgroup id".into()))? })
    };
    let header = json!({
        "track_alias": h.track_alias, "group_id": h.group_id, "subgroup_id": subgroup_id,
        "publisher_priority": h.publisher_priority, "extensions_present": t.has_extensions(),
        "end_of_group": t.contains_end_of_group(),
    });
    let mut objects = Vec::new();
    let mut prev = None;
    while buf.has_remaining() {
        let o = SubgroupObject::deserialize(buf, &prev, t.has_extensions()).map_err(lib)?;
        prev = Some(o.object_id);
        let (status_v, payload) = object_json(&o.payload, o.object_status)?;
        let ext = o.extension_headers.as_deref().map(kvps).unwrap_or_default();
        objects.push(json!({
            "object_id": o.object_id, "extensions": ext_json(&ext), "status": status_v,
            "payload": payload,
        }));
    }
    Ok(json!({ "header": header, "objects": objects }))
}

fn decode_fetch(buf: &mut Bytes) -> Result<Value, Fail> {
    let h = FetchHeader::deserialize(buf).map_err(lib)?;
    let mut objects = Vec::new();
    while buf.has_remaining() {
        let o = FetchObject::deserialize(buf).map_err(lib)?;
        let (status_v, payload) = object_json(&o.payload, o.object_status)?;
        let ext = o.extension_headers.as_deref().map(kvps).unwrap_or_default();
        objects.push(json!({
            "group_id": o.group_id, "subgroup_id": o.subgroup_id, "object_id": o.object_id,
            "publisher_priority": o.publisher_priority, "extensions": ext_json(&ext),
            "status": status_v, "payload": payload,
        }));
    }
    Ok(json!({ "header": { "request_id": h.request_id }, "objects": objects }))
}

fn decode_datagram(buf: &mut Bytes) -> Result<Value, Fail> {
    // The two datagram families are separate types in moqtail; the caller picks by the
    // leading type, as moqtail's own receiver does.
    let ty = buf.clone().get_vi().map_err(lib)?;
    let ext = |e: &Option<Vec<KeyValuePair>>| {
        e.as_deref()
            .map(|e| ext_json(&kvps(e)))
            .unwrap_or(Value::Null)
    };
    if ty == 0x20 || ty == 0x21 {
        let d = DatagramStatus::deserialize(buf).map_err(lib)?;
        return Ok(json!({
            "track_alias": d.track_alias, "group_id": d.group_id, "object_id": d.object_id,
            "object_id_present": true, "publisher_priority": d.publisher_priority,
            "end_of_group": false, "extensions": ext(&d.extension_headers),
            "status": status(d.object_status)?,
        }));
    }
    let d = DatagramObject::deserialize(buf).map_err(lib)?;
    // moqtail's model has no "Object ID present" flag: its encoder omits exactly the
    // Object ID 0, so that is what its value says.
    Ok(json!({
        "track_alias": d.track_alias, "group_id": d.group_id, "object_id": d.object_id,
        "object_id_present": d.object_id != 0, "publisher_priority": d.publisher_priority,
        "end_of_group": d.end_of_group, "extensions": ext(&d.extension_headers),
        "payload": bytes_json(&d.payload),
    }))
}

// ---------------------------------------------------------------------------------------
// encode

pub fn encode(kind: VKind, v: &Value) -> Res<Vec<u8>> {
    let out: Bytes = match kind {
        VKind::Control => encode_control(v)?,
        VKind::Subgroup => encode_subgroup(v)?,
        VKind::Fetch => encode_fetch(v)?,
        VKind::Datagram => encode_datagram(v)?,
        VKind::Varint => {
            let mut b = BytesMut::new();
            b.put_vi(u64_of(v, "value")?).map_err(s)?;
            b.freeze()
        }
    };
    Ok(out.to_vec())
}

fn ser<T: ControlMessageTrait>(m: T) -> Res<Bytes> {
    m.serialize().map_err(|e| format!("library encode: {e:?}"))
}

fn code<T: TryFrom<u64>>(v: &Value, key: &str) -> Res<T>
where
    T::Error: std::fmt::Debug,
{
    T::try_from(u64_of(v, key)?).map_err(|e| format!("moqtail has no code for `{key}`: {e:?}"))
}

fn version_u32(v: &Value) -> Res<u32> {
    u32::try_from(json_version(v)?).map_err(|_| "version above 32 bits".to_string())
}

fn encode_control(v: &Value) -> Res<Bytes> {
    let ty = str_of(v, "type")?;
    let p = |n: &'static str| to_params(ParamCtx::Message(n), v);
    let id = || u64_of(v, "request_id");
    match ty {
        "CLIENT_SETUP" => ser(ClientSetup::new(
            arr_of(v, "versions")?
                .iter()
                .map(version_u32)
                .collect::<Res<_>>()?,
            to_params(ParamCtx::Setup, v)?,
        )),
        "SERVER_SETUP" => ser(ServerSetup::new(
            version_u32(field(v, "version")?)?,
            to_params(ParamCtx::Setup, v)?,
        )),
        "GOAWAY" => {
            let uri = string_of(v, "new_session_uri")?;
            ser(GoAway {
                new_session_uri: (!uri.is_empty()).then_some(uri),
            })
        }
        "MAX_REQUEST_ID" => ser(MaxRequestId {
            request_id: u64_of(v, "max_request_id")?,
        }),
        "REQUESTS_BLOCKED" => ser(RequestsBlocked {
            maximum_request_id: u64_of(v, "max_request_id")?,
        }),
        "SUBSCRIBE" | "TRACK_STATUS" => {
            let (filter_type, start_location, end_group) = to_filter(v)?;
            let (track_namespace, track_name) = (to_ns(v, "namespace")?, to_name(v)?);
            let (subscriber_priority, group_order) =
                (u8_of(v, "subscriber_priority")?, to_order(v)?);
            let forward = bool_of(v, "forward")?;
            if ty == "SUBSCRIBE" {
                ser(Subscribe {
                    request_id: id()?,
                    track_namespace,
                    track_name,
                    subscriber_priority,
                    group_order,
                    forward,
                    filter_type,
                    start_location,
                    end_group,
                    subscribe_parameters: p("SUBSCRIBE")?,
                })
            } else {
                ser(TrackStatus {
                    request_id: id()?,
                    track_namespace,
                    track_name,
                    subscriber_priority,
                    group_order,
                    forward,
                    filter_type,
                    start_location,
                    end_group,
                    subscribe_parameters: p("TRACK_STATUS")?,
                })
            }
        }
        "SUBSCRIBE_OK" | "TRACK_STATUS_OK" => {
            let largest_location = largest(v)?;
            let params = p(if ty == "SUBSCRIBE_OK" {
                "SUBSCRIBE_OK"
            } else {
                "TRACK_STATUS_OK"
            })?;
            let subscribe_parameters = (!params.is_empty()).then_some(params);
            let group_order = to_order(v)?;
            if group_order == GroupOrder::Original {
                // moqtail's serializer reaches `unreachable!()` here.
                return Err("moqtail cannot encode group order 0 in SUBSCRIBE_OK".into());
            }
            if ty == "SUBSCRIBE_OK" {
                ser(SubscribeOk {
                    request_id: id()?,
                    track_alias: u64_of(v, "track_alias")?,
                    expires: u64_of(v, "expires")?,
                    group_order,
                    content_exists: largest_location.is_some(),
                    largest_location,
                    subscribe_parameters,
                })
            } else {
                ser(TrackStatusOk {
                    request_id: id()?,
                    track_alias: u64_of(v, "track_alias")?,
                    expires: u64_of(v, "expires")?,
                    group_order,
                    content_exists: largest_location.is_some(),
                    largest_location,
                    subscribe_parameters,
                })
            }
        }
        "SUBSCRIBE_ERROR" => ser(SubscribeError {
            request_id: id()?,
            error_code: code::<SubscribeErrorCode>(v, "error_code")?,
            reason_phrase: to_reason(v)?,
        }),
        "TRACK_STATUS_ERROR" => ser(TrackStatusError {
            request_id: id()?,
            error_code: code::<SubscribeErrorCode>(v, "error_code")?,
            reason_phrase: to_reason(v)?,
        }),
        "PUBLISH_ERROR" => ser(PublishError {
            request_id: id()?,
            error_code: code::<PublishErrorCode>(v, "error_code")?,
            reason_phrase: to_reason(v)?,
        }),
        "FETCH_ERROR" => ser(FetchError {
            request_id: id()?,
            error_code: code::<FetchErrorCode>(v, "error_code")?,
            reason_phrase: to_reason(v)?,
        }),
        "PUBLISH_NAMESPACE_ERROR" => ser(PublishNamespaceError {
            request_id: id()?,
            error_code: code::<PublishNamespaceErrorCode>(v, "error_code")?,
            reason_phrase: to_reason(v)?,
        }),
        "SUBSCRIBE_NAMESPACE_ERROR" => ser(SubscribeNamespaceError {
            request_id: id()?,
            error_code: code::<SubscribeNamespaceErrorCode>(v, "error_code")?,
            reason_phrase: to_reason(v)?,
        }),
        "SUBSCRIBE_UPDATE" => ser(SubscribeUpdate {
            request_id: id()?,
            subscription_request_id: u64_of(v, "subscription_request_id")?,
            start_location: to_loc(field(v, "start")?)?,
            end_group: json_update_end(v)?,
            subscriber_priority: u8_of(v, "subscriber_priority")?,
            forward: bool_of(v, "forward")?,
            subscribe_parameters: p("SUBSCRIBE_UPDATE")?,
        }),
        "UNSUBSCRIBE" => ser(Unsubscribe { request_id: id()? }),
        "FETCH_CANCEL" => ser(FetchCancel { request_id: id()? }),
        "PUBLISH_NAMESPACE_OK" => ser(PublishNamespaceOk { request_id: id()? }),
        "SUBSCRIBE_NAMESPACE_OK" => ser(SubscribeNamespaceOk { request_id: id()? }),
        "PUBLISH_DONE" => ser(PublishDone {
            request_id: id()?,
            status_code: code::<PublishDoneStatusCode>(v, "status_code")?,
            stream_count: u64_of(v, "stream_count")?,
            reason_phrase: to_reason(v)?,
        }),
        "PUBLISH" => {
            let largest_location = largest(v)?;
            ser(Publish {
                request_id: id()?,
                track_namespace: to_ns(v, "namespace")?,
                track_name: to_name(v)?,
                track_alias: u64_of(v, "track_alias")?,
                group_order: to_order(v)?,
                content_exists: u8::from(largest_location.is_some()),
                largest_location,
                forward: u8::from(bool_of(v, "forward")?),
                parameters: p("PUBLISH")?,
            })
        }
        "PUBLISH_OK" => {
            let (filter_type, start_location, end_group) = to_filter(v)?;
            ser(PublishOk {
                request_id: id()?,
                forward: u8::from(bool_of(v, "forward")?),
                subscriber_priority: u8_of(v, "subscriber_priority")?,
                group_order: to_order(v)?,
                filter_type,
                start_location,
                end_group,
                parameters: p("PUBLISH_OK")?,
            })
        }
        "FETCH" => {
            let f = field(v, "fetch")?;
            let (fetch_type, standalone_fetch_props, joining_fetch_props) = match str_of(f, "type")?
            {
                "STANDALONE" => {
                    let (eg, eo) = json_fetch_end(field(f, "end")?)?;
                    let props = StandAloneFetchProps {
                        track_namespace: to_ns(f, "namespace")?,
                        track_name: to_name(f)?,
                        start_location: to_loc(field(f, "start")?)?,
                        end_location: Location::new(eg, eo),
                    };
                    (FetchType::StandAlone, Some(props), None)
                }
                t => {
                    let props = JoiningFetchProps {
                        joining_request_id: u64_of(f, "joining_request_id")?,
                        joining_start: u64_of(f, "joining_start")?,
                    };
                    let ft = if t == "RELATIVE_JOINING" {
                        FetchType::RelativeFetch
                    } else {
                        FetchType::AbsoluteFetch
                    };
                    (ft, None, Some(props))
                }
            };
            ser(Fetch {
                request_id: id()?,
                subscriber_priority: u8_of(v, "subscriber_priority")?,
                group_order: to_order(v)?,
                fetch_type,
                standalone_fetch_props,
                joining_fetch_props,
                parameters: p("FETCH")?,
            })
        }
        "FETCH_OK" => {
            let (eg, eo) = json_fetch_end(field(v, "end_location")?)?;
            ser(FetchOk {
                request_id: id()?,
                group_order: to_order(v)?,
                end_of_track: bool_of(v, "end_of_track")?,
                end_location: Location::new(eg, eo),
                subscribe_parameters: p("FETCH_OK")?,
            })
        }
        "PUBLISH_NAMESPACE" => ser(PublishNamespace {
            request_id: id()?,
            track_namespace: to_ns(v, "namespace")?,
            parameters: p("PUBLISH_NAMESPACE")?,
        }),
        "PUBLISH_NAMESPACE_DONE" => ser(PublishNamespaceDone {
            track_namespace: to_ns(v, "namespace")?,
        }),
        "PUBLISH_NAMESPACE_CANCEL" => ser(PublishNamespaceCancel {
            track_namespace: to_ns(v, "namespace")?,
            error_code: code::<PublishNamespaceErrorCode>(v, "error_code")?,
            reason_phrase: to_reason(v)?,
        }),
        "SUBSCRIBE_NAMESPACE" => ser(SubscribeNamespace {
            request_id: id()?,
            track_namespace_prefix: to_ns(v, "namespace_prefix")?,
            parameters: p("SUBSCRIBE_NAMESPACE")?,
        }),
        "UNSUBSCRIBE_NAMESPACE" => ser(UnsubscribeNamespace {
            track_namespace_prefix: to_ns(v, "namespace_prefix")?,
        }),
        other => Err(format!("message type {other}")),
    }
}

fn encode_subgroup(v: &Value) -> Res<Bytes> {
    let h = field(v, "header")?;
    let ext_present = bool_of(h, "extensions_present")?;
    let (bits, subgroup_id) = match field(h, "subgroup_id")? {
        Value::String(x) if x == "ZERO" => (0x00, Some(0)),
        Value::String(x) if x == "FIRST_OBJECT_ID" => (0x02, None),
        e => (0x04, Some(u64_of(e, "EXPLICIT")?)),
    };
    let t =
        0x10 | bits | u64::from(ext_present) | if bool_of(h, "end_of_group")? { 0x08 } else { 0 };
    let header = SubgroupHeader {
        header_type: SubgroupHeaderType::try_from(t).map_err(s)?,
        track_alias: u64_of(h, "track_alias")?,
        group_id: u64_of(h, "group_id")?,
        subgroup_id,
        publisher_priority: u8_of(h, "publisher_priority")?,
    };
    let mut out = BytesMut::from(&header.serialize().map_err(s)?[..]);
    let mut prev = None;
    for o in arr_of(v, "objects")? {
        let object_id = u64_of(o, "object_id")?;
        let payload = bytes_of(o, "payload")?;
        let obj = SubgroupObject {
            object_id,
            extension_headers: if ext_present {
                Some(to_kvps(&json_ext(field(o, "extensions")?)?)?)
            } else {
                None
            },
            object_status: Some(to_status(field(o, "status")?)?),
            payload: (!payload.is_empty()).then(|| Bytes::from(payload)),
        };
        out.extend_from_slice(&obj.serialize(prev, ext_present).map_err(s)?);
        prev = Some(object_id);
    }
    Ok(out.freeze())
}

fn encode_fetch(v: &Value) -> Res<Bytes> {
    let h = FetchHeader::new(u64_of(field(v, "header")?, "request_id")?);
    let mut out = BytesMut::from(&h.serialize().map_err(s)?[..]);
    for o in arr_of(v, "objects")? {
        let payload = bytes_of(o, "payload")?;
        let ext = to_kvps(&json_ext(field(o, "extensions")?)?)?;
        let obj = FetchObject {
            group_id: u64_of(o, "group_id")?,
            subgroup_id: u64_of(o, "subgroup_id")?,
            object_id: u64_of(o, "object_id")?,
            publisher_priority: u8_of(o, "publisher_priority")?,
            extension_headers: (!ext.is_empty()).then_some(ext),
            object_status: if payload.is_empty() {
                Some(to_status(field(o, "status")?)?)
            } else {
                None
            },
            payload: (!payload.is_empty()).then(|| Bytes::from(payload)),
        };
        out.extend_from_slice(&obj.serialize().map_err(s)?);
    }
    Ok(out.freeze())
}

fn encode_datagram(v: &Value) -> Res<Bytes> {
    let b = datagram_bits(v)?;
    let extension_headers = match field(v, "extensions")? {
        Value::Null => None,
        e => Some(to_kvps(&json_ext(e)?)?),
    };
    let (track_alias, group_id, object_id, publisher_priority) = (
        u64_of(v, "track_alias")?,
        u64_of(v, "group_id")?,
        u64_of(v, "object_id")?,
        u8_of(v, "publisher_priority")?,
    );
    if b.status {
        return DatagramStatus {
            track_alias,
            group_id,
            object_id,
            publisher_priority,
            extension_headers,
            object_status: to_status(field(v, "status")?)?,
        }
        .serialize()
        .map_err(s);
    }
    DatagramObject::new_with_options(
        track_alias,
        group_id,
        object_id,
        publisher_priority,
        extension_headers,
        Bytes::from(bytes_of(v, "payload")?),
        b.end_of_group,
    )
    .serialize()
    .map_err(s)
}
