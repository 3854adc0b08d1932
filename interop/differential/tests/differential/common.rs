//! Helpers shared by the two adapters: the README's JSON conventions (bytes, locations,
//! namespaces, versions, group order, object status, parameters, extension headers) on one
//! side and plain Rust values on the other. Nothing here knows about either library.

use serde_json::{json, Value};

pub type Res<T> = Result<T, String>;

/// Why a library decode did not produce a README value.
#[derive(Clone, Debug)]
pub enum Fail {
    /// The library's decoder returned an error: it rejects the input.
    Library(String),
    /// The library panicked on the input (caught): counted as a rejection, and reported.
    Panic(String),
    /// The library decoded a value but left this many input bytes unconsumed.
    Leftover(usize),
    /// The library decoded something the adapter cannot express in the README form.
    Adapter(String),
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fail::Library(e) => write!(f, "library error: {e}"),
            Fail::Panic(e) => write!(f, "library panic: {e}"),
            Fail::Leftover(n) => write!(f, "decoded but left {n} byte(s) unconsumed"),
            Fail::Adapter(e) => write!(f, "adapter: {e}"),
        }
    }
}

/// The five vector kinds under `testvectors/draft14/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VKind {
    Control,
    Subgroup,
    Fetch,
    Datagram,
    Varint,
}

impl VKind {
    pub const ALL: [VKind; 5] = [
        VKind::Control,
        VKind::Subgroup,
        VKind::Fetch,
        VKind::Datagram,
        VKind::Varint,
    ];

    pub fn dir(self) -> &'static str {
        match self {
            VKind::Control => "control",
            VKind::Subgroup => "subgroup",
            VKind::Fetch => "fetch",
            VKind::Datagram => "datagram",
            VKind::Varint => "varint",
        }
    }
}

// ---------------------------------------------------------------------------------------
// JSON field access

pub fn field<'a>(v: &'a Value, key: &str) -> Res<&'a Value> {
    v.get(key).ok_or_else(|| format!("missing key `{key}`"))
}

pub fn u64_of(v: &Value, key: &str) -> Res<u64> {
    field(v, key)?
        .as_u64()
        .ok_or_else(|| format!("`{key}` is not an unsigned number"))
}

pub fn u8_of(v: &Value, key: &str) -> Res<u8> {
    u8::try_from(u64_of(v, key)?).map_err(|_| format!("`{key}` does not fit in 8 bits"))
}

pub fn bool_of(v: &Value, key: &str) -> Res<bool> {
    field(v, key)?
        .as_bool()
        .ok_or_else(|| format!("`{key}` is not a boolean"))
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> Res<&'a str> {
    field(v, key)?
        .as_str()
        .ok_or_else(|| format!("`{key}` is not a string"))
}

pub fn arr_of<'a>(v: &'a Value, key: &str) -> Res<&'a Vec<Value>> {
    field(v, key)?
        .as_array()
        .ok_or_else(|| format!("`{key}` is not an array"))
}

// ---------------------------------------------------------------------------------------
// bytes

/// README: a JSON string when the bytes are UTF-8 without control characters, otherwise
/// `{"hex": ...}`.
pub fn bytes_json(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) if !s.chars().any(|c| (c as u32) < 0x20 || c as u32 == 0x7f) => json!(s),
        _ => json!({ "hex": hex::encode(b) }),
    }
}

pub fn json_bytes(v: &Value) -> Res<Vec<u8>> {
    if let Some(s) = v.as_str() {
        return Ok(s.as_bytes().to_vec());
    }
    if let Some(h) = v.get("hex").and_then(Value::as_str) {
        return hex::decode(h).map_err(|e| format!("bad hex bytes value: {e}"));
    }
    Err(format!("not a bytes value: {v}"))
}

pub fn bytes_of(v: &Value, key: &str) -> Res<Vec<u8>> {
    json_bytes(field(v, key)?)
}

/// For libraries whose field is a Rust `String`: the bytes must be UTF-8.
pub fn string_of(v: &Value, key: &str) -> Res<String> {
    String::from_utf8(bytes_of(v, key)?)
        .map_err(|_| format!("`{key}` is not UTF-8; the library field is a String"))
}

// ---------------------------------------------------------------------------------------
// small structures

pub fn loc_json(group: u64, object: u64) -> Value {
    json!({ "group": group, "object": object })
}

pub fn json_loc(v: &Value) -> Res<(u64, u64)> {
    Ok((u64_of(v, "group")?, u64_of(v, "object")?))
}

/// Fetch end (FETCH and FETCH_OK End Location, "plus 1" on the wire, §9.16.1 / §9.17).
pub fn fetch_end_json(wire_group: u64, wire_object: u64) -> Value {
    if wire_object == 0 {
        json!({ "group": wire_group, "object": null })
    } else {
        json!({ "group": wire_group, "object": wire_object - 1 })
    }
}

pub fn json_fetch_end(v: &Value) -> Res<(u64, u64)> {
    let group = u64_of(v, "group")?;
    let object = match field(v, "object")? {
        Value::Null => 0,
        o => o
            .as_u64()
            .and_then(|o| o.checked_add(1))
            .ok_or("bad fetch end object")?,
    };
    Ok((group, object))
}

/// SUBSCRIBE_UPDATE End Group (§9.10): wire value − 1, null for 0.
pub fn update_end_json(wire: u64) -> Value {
    if wire == 0 {
        Value::Null
    } else {
        json!(wire - 1)
    }
}

pub fn json_update_end(v: &Value) -> Res<u64> {
    match field(v, "end_group")? {
        Value::Null => Ok(0),
        e => e
            .as_u64()
            .and_then(|e| e.checked_add(1))
            .ok_or_else(|| "bad end_group".to_string()),
    }
}

pub fn ns_json<'a>(fields: impl IntoIterator<Item = &'a [u8]>) -> Value {
    Value::Array(fields.into_iter().map(bytes_json).collect())
}

pub fn json_ns(v: &Value, key: &str) -> Res<Vec<Vec<u8>>> {
    arr_of(v, key)?.iter().map(json_bytes).collect()
}

pub fn version_json(v: u64) -> Value {
    json!(format!("0x{v:08x}"))
}

pub fn json_version(v: &Value) -> Res<u64> {
    let s = v.as_str().ok_or("version is not a string")?;
    let h = s.strip_prefix("0x").ok_or("version lacks 0x")?;
    u64::from_str_radix(h, 16).map_err(|e| e.to_string())
}

pub fn group_order_json(g: u8) -> Res<Value> {
    Ok(json!(match g {
        0 => "ORIGINAL",
        1 => "ASCENDING",
        2 => "DESCENDING",
        other => return Err(format!("group order {other}")),
    }))
}

pub fn json_group_order(v: &Value) -> Res<u8> {
    match str_of(v, "group_order")? {
        "ORIGINAL" => Ok(0),
        "ASCENDING" => Ok(1),
        "DESCENDING" => Ok(2),
        other => Err(format!("group order {other}")),
    }
}

pub fn status_json(s: u64) -> Res<Value> {
    Ok(json!(match s {
        0 => "NORMAL",
        1 => "DOES_NOT_EXIST",
        3 => "END_OF_GROUP",
        4 => "END_OF_TRACK",
        other => return Err(format!("object status {other}")),
    }))
}

pub fn json_status(v: &Value) -> Res<u64> {
    match v.as_str().ok_or("status is not a string")? {
        "NORMAL" => Ok(0),
        "DOES_NOT_EXIST" => Ok(1),
        "END_OF_GROUP" => Ok(3),
        "END_OF_TRACK" => Ok(4),
        other => Err(format!("object status {other}")),
    }
}

/// The filter as `(wire type, start, end group)`.
pub type Filter = (u64, Option<(u64, u64)>, Option<u64>);

pub fn filter_json(f: Filter) -> Res<Value> {
    let (t, start, end) = f;
    let need_start = || start.ok_or_else(|| "filter lacks start".to_string());
    Ok(match t {
        1 => json!({ "type": "NEXT_GROUP_START" }),
        2 => json!({ "type": "LARGEST_OBJECT" }),
        3 => {
            let (g, o) = need_start()?;
            json!({ "type": "ABSOLUTE_START", "start": loc_json(g, o) })
        }
        4 => {
            let (g, o) = need_start()?;
            let e = end.ok_or("filter lacks end group")?;
            json!({ "type": "ABSOLUTE_RANGE", "start": loc_json(g, o), "end_group": e })
        }
        other => return Err(format!("filter type {other}")),
    })
}

pub fn json_filter(v: &Value) -> Res<Filter> {
    let f = field(v, "filter")?;
    Ok(match str_of(f, "type")? {
        "NEXT_GROUP_START" => (1, None, None),
        "LARGEST_OBJECT" => (2, None, None),
        "ABSOLUTE_START" => (3, Some(json_loc(field(f, "start")?)?), None),
        "ABSOLUTE_RANGE" => (
            4,
            Some(json_loc(field(f, "start")?)?),
            Some(u64_of(f, "end_group")?),
        ),
        other => return Err(format!("filter {other}")),
    })
}

// ---------------------------------------------------------------------------------------
// key-value pairs: parameters and extension headers

/// A key-value pair as both libraries hold it: even keys carry a varint, odd keys bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kvp {
    Int(u64, u64),
    Bytes(u64, Vec<u8>),
}

/// Where a parameter list sits: setup messages use the setup registry (§9.3.2), all other
/// messages the version-specific one (§9.2.1), recognised per message as the README says.
#[derive(Clone, Copy, Debug)]
pub enum ParamCtx {
    Setup,
    Message(&'static str),
}

impl ParamCtx {
    fn name(self, key: u64) -> Option<&'static str> {
        match self {
            ParamCtx::Setup => match key {
                0x01 => Some("PATH"),
                0x02 => Some("MAX_REQUEST_ID"),
                0x03 => Some("AUTHORIZATION_TOKEN"),
                0x04 => Some("MAX_AUTH_TOKEN_CACHE_SIZE"),
                0x05 => Some("AUTHORITY"),
                0x07 => Some("IMPLEMENTATION"),
                _ => None,
            },
            ParamCtx::Message(m) => {
                let (name, msgs): (&str, &[&str]) = match key {
                    0x02 => (
                        "DELIVERY_TIMEOUT",
                        &[
                            "TRACK_STATUS",
                            "TRACK_STATUS_OK",
                            "PUBLISH",
                            "PUBLISH_OK",
                            "SUBSCRIBE",
                            "SUBSCRIBE_OK",
                            "SUBSCRIBE_UPDATE",
                        ],
                    ),
                    0x03 => (
                        "AUTHORIZATION_TOKEN",
                        &[
                            "PUBLISH",
                            "SUBSCRIBE",
                            "SUBSCRIBE_UPDATE",
                            "SUBSCRIBE_NAMESPACE",
                            "PUBLISH_NAMESPACE",
                            "TRACK_STATUS",
                            "FETCH",
                        ],
                    ),
                    0x04 => (
                        "MAX_CACHE_DURATION",
                        &["PUBLISH", "SUBSCRIBE_OK", "FETCH_OK", "TRACK_STATUS_OK"],
                    ),
                    _ => return None,
                };
                msgs.contains(&m).then_some(name)
            }
        }
    }

    fn key(self, name: &str) -> Option<u64> {
        (0..8).find(|k| self.name(*k) == Some(name))
    }
}

/// Token (§9.2.1.1) codec supplied by the adapter: moqtail has one, moq-transport keeps
/// the parameter as opaque bytes so the test supplies [`token_decode`]/[`token_encode`].
pub struct TokenCodec {
    pub decode: fn(&[u8]) -> Result<Value, Fail>,
    pub encode: fn(&Value) -> Res<Vec<u8>>,
}

pub fn params_json(ctx: ParamCtx, kvps: &[Kvp], tok: &TokenCodec) -> Result<Value, Fail> {
    let mut out = Vec::new();
    for kvp in kvps {
        let (key, val) = match kvp {
            Kvp::Int(k, v) => (*k, json!(v)),
            Kvp::Bytes(k, b) => (*k, bytes_json(b)),
        };
        let entry = match (ctx.name(key), kvp) {
            (Some("AUTHORIZATION_TOKEN"), Kvp::Bytes(_, b)) => {
                json!({ "type": "AUTHORIZATION_TOKEN", "value": (tok.decode)(b)? })
            }
            (Some(name), _) => json!({ "type": name, "value": val }),
            (None, _) => json!({ "type": "UNKNOWN", "key": key, "value": val }),
        };
        out.push(entry);
    }
    Ok(Value::Array(out))
}

pub fn json_params(ctx: ParamCtx, v: &Value, tok: &TokenCodec) -> Res<Vec<Kvp>> {
    let mut out = Vec::new();
    for p in arr_of(v, "parameters")? {
        let t = str_of(p, "type")?;
        let key = if t == "UNKNOWN" {
            u64_of(p, "key")?
        } else {
            ctx.key(t)
                .ok_or_else(|| format!("parameter {t} not known here"))?
        };
        let value = field(p, "value")?;
        let kvp = if key % 2 == 0 {
            Kvp::Int(key, value.as_u64().ok_or("even parameter value")?)
        } else if t == "AUTHORIZATION_TOKEN" {
            Kvp::Bytes(key, (tok.encode)(value)?)
        } else {
            Kvp::Bytes(key, json_bytes(value)?)
        };
        out.push(kvp);
    }
    Ok(out)
}

pub fn ext_json(kvps: &[Kvp]) -> Value {
    Value::Array(
        kvps.iter()
            .map(|k| match k {
                Kvp::Int(k, v) => json!({ "key": k, "value": v }),
                Kvp::Bytes(k, b) => json!({ "key": k, "value": bytes_json(b) }),
            })
            .collect(),
    )
}

pub fn json_ext(v: &Value) -> Res<Vec<Kvp>> {
    let arr = v.as_array().ok_or("extensions is not an array")?;
    arr.iter()
        .map(|e| {
            let key = u64_of(e, "key")?;
            let value = field(e, "value")?;
            Ok(if key % 2 == 0 {
                Kvp::Int(key, value.as_u64().ok_or("even extension value")?)
            } else {
                Kvp::Bytes(key, json_bytes(value)?)
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The token structure for moq-transport, which has no typed token (§9.2.1.1).

fn get_varint(b: &mut &[u8]) -> Res<u64> {
    let first = *b.first().ok_or("token truncated")?;
    let len = 1usize << (first >> 6);
    if b.len() < len {
        return Err("token truncated".into());
    }
    let mut v = u64::from(first & 0x3f);
    for byte in &b[1..len] {
        v = (v << 8) | u64::from(*byte);
    }
    *b = &b[len..];
    Ok(v)
}

pub fn put_varint(out: &mut Vec<u8>, v: u64) {
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

pub fn token_decode(mut b: &[u8]) -> Res<Value> {
    let alias_type = get_varint(&mut b)?;
    let v = match alias_type {
        0 | 2 => {
            let alias = get_varint(&mut b)?;
            if !b.is_empty() {
                return Err("bytes after token alias".into());
            }
            let name = if alias_type == 0 {
                "DELETE"
            } else {
                "USE_ALIAS"
            };
            json!({ "alias_type": name, "alias": alias })
        }
        1 => {
            let alias = get_varint(&mut b)?;
            let token_type = get_varint(&mut b)?;
            json!({ "alias_type": "REGISTER", "alias": alias, "token_type": token_type,
                    "token_value": bytes_json(b) })
        }
        3 => {
            let token_type = get_varint(&mut b)?;
            json!({ "alias_type": "USE_VALUE", "token_type": token_type,
                    "token_value": bytes_json(b) })
        }
        other => return Err(format!("token alias type {other}")),
    };
    Ok(v)
}

pub fn token_encode(v: &Value) -> Res<Vec<u8>> {
    let mut out = Vec::new();
    match str_of(v, "alias_type")? {
        "DELETE" => {
            put_varint(&mut out, 0);
            put_varint(&mut out, u64_of(v, "alias")?);
        }
        "REGISTER" => {
            put_varint(&mut out, 1);
            put_varint(&mut out, u64_of(v, "alias")?);
            put_varint(&mut out, u64_of(v, "token_type")?);
            out.extend(bytes_of(v, "token_value")?);
        }
        "USE_ALIAS" => {
            put_varint(&mut out, 2);
            put_varint(&mut out, u64_of(v, "alias")?);
        }
        "USE_VALUE" => {
            put_varint(&mut out, 3);
            put_varint(&mut out, u64_of(v, "token_type")?);
            out.extend(bytes_of(v, "token_value")?);
        }
        other => return Err(format!("alias type {other}")),
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// datagram type bits (§10.3.1)

pub struct DatagramBits {
    pub status: bool,
    pub extensions: bool,
    pub end_of_group: bool,
    pub object_id_present: bool,
}

pub fn datagram_bits(v: &Value) -> Res<DatagramBits> {
    let status = v.get("status").is_some_and(|s| !s.is_null());
    Ok(DatagramBits {
        status,
        extensions: !field(v, "extensions")?.is_null(),
        end_of_group: bool_of(v, "end_of_group")?,
        object_id_present: bool_of(v, "object_id_present")?,
    })
}

/// The first place two JSON values differ, as a path, or `None` when they are equal.
pub fn first_diff(want: &Value, got: &Value, path: &str) -> Option<String> {
    match (want, got) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                match b.get(k) {
                    None => return Some(format!("{path}.{k}: missing (want {va})")),
                    Some(vb) => {
                        if let Some(d) = first_diff(va, vb, &format!("{path}.{k}")) {
                            return Some(d);
                        }
                    }
                }
            }
            b.keys()
                .find(|k| !a.contains_key(*k))
                .map(|k| format!("{path}.{k}: unexpected key"))
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                if let Some(d) = first_diff(va, vb, &format!("{path}[{i}]")) {
                    return Some(d);
                }
            }
            (a.len() != b.len()).then(|| format!("{path}: length {} want {}", b.len(), a.len()))
        }
        _ if want == got => None,
        _ => Some(format!("{path}: got {got}, want {want}")),
    }
}
