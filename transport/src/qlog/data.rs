//! Data-plane event bodies: subgroup and fetch headers and objects, datagrams
//! (events-04 §4.4-§4.13). Payload bytes are never copied into the trace, only their length.

use super::control::extension_headers;
use moqlink_model::data::{
    DatagramBody, Extensions, FetchObject, ObjectDatagram, SubgroupHeader, SubgroupIdMode,
    SubgroupObject,
};
use serde_json::{json, Map, Value};

fn extensions(m: &mut Map<String, Value>, e: &Extensions) {
    m.insert("extension_headers_length".into(), json!(e.raw().len()));
    if !e.is_empty() {
        m.insert("extension_headers".into(), extension_headers(e));
    }
}

/// `subgroup_header_created` / `_parsed` (§4.6, §4.7): `subgroup_id` is omitted when it is the
/// first object's ID.
pub fn subgroup_header(stream_id: u64, h: &SubgroupHeader) -> Value {
    let mut m = Map::new();
    m.insert("stream_id".into(), json!(stream_id));
    m.insert("track_alias".into(), json!(h.track_alias));
    m.insert("group_id".into(), json!(h.group_id));
    match h.subgroup_id {
        SubgroupIdMode::Zero => {
            m.insert("subgroup_id".into(), json!(0));
        }
        SubgroupIdMode::Explicit(id) => {
            m.insert("subgroup_id".into(), json!(id));
        }
        SubgroupIdMode::FirstObjectId => {}
    }
    m.insert("publisher_priority".into(), json!(h.publisher_priority));
    m.insert("contains_end_of_group".into(), json!(h.end_of_group));
    m.insert("extensions_present".into(), json!(h.extensions_present));
    Value::Object(m)
}

/// `subgroup_object_created` / `_parsed` (§4.8, §4.9). `subgroup_id` is the stream's, once
/// known (the first object's ID in that mode).
pub fn subgroup_object(
    stream_id: u64,
    h: &SubgroupHeader,
    subgroup_id: Option<u64>,
    o: &SubgroupObject,
) -> Value {
    let mut m = Map::new();
    m.insert("stream_id".into(), json!(stream_id));
    m.insert("group_id".into(), json!(h.group_id));
    if let Some(s) = subgroup_id {
        m.insert("subgroup_id".into(), json!(s));
    }
    m.insert("object_id".into(), json!(o.object_id));
    extensions(&mut m, &o.extensions);
    m.insert("object_payload_length".into(), json!(o.payload.len()));
    // draft-14 §10.4.2: the status is on the wire only when the payload is empty.
    if o.payload.is_empty() {
        m.insert("object_status".into(), json!(o.status.code()));
    }
    Value::Object(m)
}

/// `fetch_object_created` / `_parsed` (§4.12, §4.13).
pub fn fetch_object(stream_id: u64, o: &FetchObject) -> Value {
    let mut m = Map::new();
    m.insert("stream_id".into(), json!(stream_id));
    m.insert("group_id".into(), json!(o.group_id));
    m.insert("subgroup_id".into(), json!(o.subgroup_id));
    m.insert("object_id".into(), json!(o.object_id));
    m.insert("publisher_priority".into(), json!(o.publisher_priority));
    extensions(&mut m, &o.extensions);
    m.insert("object_payload_length".into(), json!(o.payload.len()));
    if o.payload.is_empty() {
        m.insert("object_status".into(), json!(o.status.code()));
    }
    Value::Object(m)
}

/// `object_datagram_created` / `_parsed` (§4.4, §4.5).
pub fn datagram(d: &ObjectDatagram) -> Value {
    let mut m = Map::new();
    m.insert("track_alias".into(), json!(d.track_alias));
    m.insert("group_id".into(), json!(d.group_id));
    if d.object_id_present {
        m.insert("object_id".into(), json!(d.object_id));
    }
    m.insert("publisher_priority".into(), json!(d.publisher_priority));
    if let Some(e) = &d.extensions {
        extensions(&mut m, e);
    }
    match &d.body {
        DatagramBody::Payload(p) => {
            m.insert("object_payload".into(), json!({ "length": p.len() }));
        }
        DatagramBody::Status(s) => {
            m.insert("object_status".into(), json!(s.code()));
        }
    }
    m.insert("end_of_group".into(), json!(d.end_of_group));
    Value::Object(m)
}
