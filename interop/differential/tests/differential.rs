//! Differential check of moqlink's draft-14 codec against two independent draft-14 codecs
//! from crates.io: cloudflare's `moq-transport` 0.14.2 and `moqtail` 0.11.1.
//!
//! For every vector under `testvectors/draft14/` (read at test time, so the set can grow):
//!
//! * valid vectors, "ours -> theirs": the library decodes the vector's hex; the adapter turns
//!   its structs into the README's decoded JSON form; that must equal `decoded`.
//! * valid vectors, "theirs -> ours": the adapter builds the library's structs from
//!   `decoded`; the library encodes them; `moqlink_model::json::decode` must give back
//!   `decoded`. Whether the library's bytes equal the vector's hex is reported too.
//! * error vectors, "rejects": the library's decoder must refuse the input.
//!
//! Every disagreement must be listed in [`EXPECTED`] with a reason and the draft section;
//! the test fails on a disagreement not listed there and on a listed one that has gone.
//! `cargo test -p moqlink-differential -- --nocapture` prints the summary table.

#[path = "differential/common.rs"]
mod common;
#[path = "differential/mt.rs"]
mod mt;
#[path = "differential/mtail.rs"]
mod mtail;

use common::{first_diff, Fail, VKind};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Lib {
    MoqTransport,
    Moqtail,
}

impl Lib {
    const ALL: [Lib; 2] = [Lib::MoqTransport, Lib::Moqtail];

    fn name(self) -> &'static str {
        match self {
            Lib::MoqTransport => "moq-transport",
            Lib::Moqtail => "moqtail",
        }
    }

    fn from_name(s: &str) -> Lib {
        match s {
            "moq-transport" => Lib::MoqTransport,
            _ => Lib::Moqtail,
        }
    }

    fn decode(self, kind: VKind, input: &[u8]) -> Result<Value, Fail> {
        match self {
            Lib::MoqTransport => mt::decode(kind, input),
            Lib::Moqtail => mtail::decode(kind, input),
        }
    }

    fn encode(self, kind: VKind, v: &Value) -> Result<Vec<u8>, String> {
        match self {
            Lib::MoqTransport => mt::encode(kind, v),
            Lib::Moqtail => mtail::encode(kind, v),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Dir {
    /// The library decodes the vector's bytes.
    OursToTheirs,
    /// The library encodes the vector's decoded value; moqlink decodes the result.
    TheirsToOurs,
    /// The library's decoder is given an error vector.
    Rejects,
}

use Dir::{OursToTheirs as O2T, Rejects as REJ, TheirsToOurs as T2O};
use Lib::{MoqTransport as MT, Moqtail as TAIL};

impl Dir {
    fn name(self) -> &'static str {
        match self {
            O2T => "ours->theirs",
            T2O => "theirs->ours",
            REJ => "rejects",
        }
    }
}

/// Expected disagreements: vector ids, libraries, direction, one-line reason with the draft
/// section. Every (id, library, direction) it expands to must disagree, and every
/// disagreement must be covered. See FINDINGS.md for the evidence behind each reason.
struct Expected(&'static [&'static str], &'static [Lib], Dir, &'static str);

const BOTH: &[Lib] = &[MT, TAIL];

#[rustfmt::skip]
const EXPECTED: &[Expected] = &[
    // ---- valid vectors
    Expected(&["fetch-extensions"], &[MT], O2T,
        "FetchObject extension headers are a count-prefixed KeyValuePairs, not Extension Headers Length in bytes (§10.4.4)"),
    Expected(&["fetch-extensions"], &[MT], T2O,
        "FetchObject writes the number of extension pairs where §10.4.4 has Extension Headers Length in bytes"),
    Expected(&["subscribe-non-utf8-names"], &[MT], O2T,
        "Track Name is a Rust String, so a non-UTF-8 name fails to decode; names are bytes (§2.4.1)"),
    Expected(&["subscribe-non-utf8-names"], &[MT], T2O,
        "Track Name is a Rust String, so a non-UTF-8 name cannot be built (§2.4.1)"),

    // ---- error vectors: control framing
    Expected(&["client-setup-length-one-too-long", "fetch-ok-length-one-too-long",
               "goaway-length-one-too-long", "max-request-id-length-2",
               "publish-done-length-one-too-long", "publish-namespace-ok-length-2",
               "requests-blocked-length-2", "subscribe-length-one-too-long",
               "subscribe-ok-length-one-too-long", "unsubscribe-length-2", "unsubscribe-length-ffff",
               "client-setup-max-request-id-with-length-prefix",
               "client-setup-max-request-id-with-length-prefix-then-path",
               "subscribe-delivery-timeout-with-length-prefix"], &[MT], REJ,
        "Message::decode reads the 16-bit Length and ignores it; unused payload bytes stay on the stream (§9)"),

    // ---- group order
    Expected(&["subscribe-ok-group-order-0", "track-status-ok-group-order-0",
               "publish-ok-group-order-0"], &[MT], REJ,
        "Group Order 0 accepted in SUBSCRIBE_OK, TRACK_STATUS_OK, PUBLISH_OK (only PUBLISH and FETCH_OK check) (§9.8, §9.14, §9.21)"),
    Expected(&["publish-group-order-0", "publish-ok-group-order-0"], &[TAIL], REJ,
        "Group Order 0 accepted in PUBLISH and PUBLISH_OK (§9.13, §9.14)"),

    // ---- names and limits
    Expected(&["subscribe-namespace-0-fields", "track-status-namespace-0-fields",
               "publish-namespace-0-fields", "fetch-standalone-namespace-0-fields",
               "publish-track-namespace-0-fields", "publish-namespace-done-0-fields",
               "publish-namespace-cancel-0-fields"], BOTH, REJ,
        "a Track Namespace with 0 fields is accepted (§2.4.1)"),
    Expected(&["subscribe-namespace-33-fields", "publish-namespace-33-fields",
               "subscribe-namespace-prefix-33-fields", "unsubscribe-namespace-prefix-33-fields"], &[TAIL], REJ,
        "no limit on the number of namespace fields (§2.4.1, §9.28)"),
    Expected(&["subscribe-full-track-name-4097", "subscribe-full-track-name-4097-32-fields",
               "track-status-full-track-name-4097", "publish-full-track-name-4097",
               "fetch-standalone-full-track-name-4097"], BOTH, REJ,
        "no 4,096-byte Full Track Name limit (moq-transport caps each field at 4,096 only) (§2.4.1)"),
    Expected(&["goaway-uri-8193"], &[TAIL], REJ,
        "no 8,192-byte limit on the GOAWAY New Session URI (§9.4)"),

    // ---- parameters
    Expected(&["client-setup-token-alias-type-4", "client-setup-token-delete-trailing",
               "client-setup-token-empty", "client-setup-token-register-missing-type",
               "fetch-token-register-missing-type", "publish-namespace-token-alias-type-4",
               "subscribe-token-alias-type-4", "subscribe-token-alias-varint-cut",
               "subscribe-token-delete-trailing", "subscribe-token-empty",
               "subscribe-token-register-missing-type", "subscribe-token-use-alias-missing-alias",
               "subscribe-token-use-alias-trailing", "subscribe-token-use-value-missing-type"], &[MT], REJ,
        "AUTHORIZATION TOKEN is kept as opaque bytes; the Token structure is never decoded (§9.2.1.1)"),
    Expected(&["client-setup-token-delete-trailing", "subscribe-token-delete-trailing",
               "subscribe-token-use-alias-trailing"], &[TAIL], REJ,
        "AuthorizationToken::deserialize ignores bytes after the alias of DELETE / USE_ALIAS (§9.2.1.1)"),
    Expected(&["client-setup-duplicate-authority", "client-setup-duplicate-max-request-id",
               "client-setup-duplicate-path", "server-setup-duplicate-max-auth-token-cache-size",
               "subscribe-duplicate-delivery-timeout", "subscribe-ok-duplicate-max-cache-duration"], BOTH, REJ,
        "no duplicate-parameter check (the check is a SHOULD) (§9.2)"),
    Expected(&["server-setup-version-2pow62-minus-1"], &[TAIL], REJ,
        "SERVER_SETUP Selected Version is cast `as u32`: 2^62-1 is read as 0xffffffff (§9.3.1)"),
    Expected(&["subscribe-update-end-before-start", "subscribe-update-end-one-below-start"], BOTH, REJ,
        "End Group below the Start group is not checked (§9.10)"),

    // ---- data streams and datagrams
    Expected(&["fetch-extension-length-cuts-pair"], &[MT], REJ,
        "fetch object extensions are read as a count of pairs, so a length that cuts a pair goes unnoticed (§10.4.4)"),
    Expected(&["subgroup-extensions-on-does-not-exist", "datagram-extensions-on-does-not-exist"], BOTH, REJ,
        "extension headers on an Object Does Not Exist are accepted (§10.2.1.2)"),
    Expected(&["fetch-extensions-on-does-not-exist"], &[TAIL], REJ,
        "extension headers on an Object Does Not Exist are accepted (§10.2.1.2)"),
    Expected(&["subgroup-object-id-overflow"], BOTH, REJ,
        "an Object ID Delta taking the Object ID past 2^62-1 is not detected (§10.4.2)"),
    Expected(&["datagram-0x01-empty-extensions", "datagram-0x21-empty-extensions"], &[MT], REJ,
        "Extension Headers Length 0 accepted on a datagram type with extensions (§10.3.1)"),
    Expected(&["datagram-0x20-trailing-bytes", "datagram-0x21-trailing-bytes"], BOTH, REJ,
        "bytes after the Object Status of a status datagram are left unread, not rejected (§10.3.1)"),
    Expected(&["varint-two-values", "varint-two-byte-then-extra"], BOTH, REJ,
        "not a defect: the varint API reads one value and leaves what follows to its caller (RFC 9000 §16)"),
];

// ---------------------------------------------------------------------------------------
// vectors

struct Vector {
    kind: VKind,
    file: String,
    id: String,
    hex: Vec<u8>,
    decoded: Option<Value>,
    error: Option<String>,
}

fn vectors_dir() -> PathBuf {
    match std::env::var_os("MOQLINK_TESTVECTORS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testvectors/draft14"),
    }
}

fn load_vectors() -> Vec<Vector> {
    let root = vectors_dir();
    let mut out = Vec::new();
    for kind in VKind::ALL {
        let dir = root.join(kind.dir());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            let doc: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
            let file = format!(
                "{}/{}",
                kind.dir(),
                path.file_name().unwrap().to_string_lossy()
            );
            for v in doc["vectors"].as_array().expect("`vectors` array") {
                out.push(Vector {
                    kind,
                    file: file.clone(),
                    id: v["id"].as_str().expect("vector id").to_string(),
                    hex: hex::decode(v["hex"].as_str().expect("vector hex")).expect("hex"),
                    decoded: v.get("decoded").cloned(),
                    error: v.get("error").and_then(Value::as_str).map(str::to_string),
                });
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// running the codecs

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with its panics caught and kept off stderr (only on this thread: a failing
/// assertion elsewhere still prints as usual).
fn caught<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                default(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    r.map_err(panic_text)
}

fn guarded_decode(lib: Lib, kind: VKind, input: &[u8]) -> Result<Value, Fail> {
    caught(|| lib.decode(kind, input)).unwrap_or_else(|p| Err(Fail::Panic(p)))
}

fn guarded_encode(lib: Lib, kind: VKind, v: &Value) -> Result<Vec<u8>, String> {
    caught(|| lib.encode(kind, v)).unwrap_or_else(|p| Err(format!("library panicked: {p}")))
}

fn model_kind(kind: VKind) -> moqlink_model::json::Kind {
    use moqlink_model::json::Kind;
    match kind {
        VKind::Control => Kind::Control,
        VKind::Subgroup => Kind::Subgroup,
        VKind::Fetch => Kind::Fetch,
        VKind::Datagram => Kind::Datagram,
        VKind::Varint => Kind::Varint,
    }
}

fn model_decode(kind: VKind, input: &[u8]) -> Result<Value, String> {
    caught(|| {
        moqlink_model::json::decode(model_kind(kind), input).map_err(|f| {
            format!(
                "moqlink rejects: {} ({}) at {}: {}",
                f.rule, f.code, f.offset, f.message
            )
        })
    })
    .unwrap_or_else(|p| Err(format!("moqlink-model panicked: {p}")))
}

/// Error vectors go to a child process: a library that aborts (say, on a huge allocation
/// from a garbage count) must not take the whole test down.
fn isolated_decode(lib: Lib, kind: VKind, input: &[u8]) -> Result<Value, Fail> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_decode",
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(
            "DIFF_CHILD",
            format!("{} {} {}", lib.name(), kind.dir(), hex::encode(input)),
        )
        .output()
        .expect("spawn child test process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("DIFF_CHILD_RESULT "));
    match line.map(serde_json::from_str::<Value>) {
        Some(Ok(r)) => match r["fail"].as_str() {
            None => Ok(r["value"].clone()),
            Some("library") => Err(Fail::Library(r["detail"].as_str().unwrap_or("").into())),
            Some("panic") => Err(Fail::Panic(r["detail"].as_str().unwrap_or("").into())),
            Some("leftover") => Err(Fail::Leftover(r["detail"].as_u64().unwrap_or(0) as usize)),
            Some(_) => Err(Fail::Adapter(r["detail"].as_str().unwrap_or("").into())),
        },
        _ => Err(Fail::Panic(format!(
            "child process died ({}) without a result",
            out.status
        ))),
    }
}

/// Not a test of its own: the child side of [`isolated_decode`]; does nothing unless
/// `DIFF_CHILD` is set.
#[test]
fn child_decode() {
    let Ok(spec) = std::env::var("DIFF_CHILD") else {
        return;
    };
    let mut parts = spec.split(' ');
    let lib = Lib::from_name(parts.next().unwrap());
    let kind_dir = parts.next().unwrap();
    let kind = *VKind::ALL.iter().find(|k| k.dir() == kind_dir).unwrap();
    let input = hex::decode(parts.next().unwrap_or("")).unwrap();
    let r = match guarded_decode(lib, kind, &input) {
        Ok(v) => serde_json::json!({ "value": v }),
        Err(Fail::Library(d)) => serde_json::json!({ "fail": "library", "detail": d }),
        Err(Fail::Panic(d)) => serde_json::json!({ "fail": "panic", "detail": d }),
        Err(Fail::Leftover(n)) => serde_json::json!({ "fail": "leftover", "detail": n }),
        Err(Fail::Adapter(d)) => serde_json::json!({ "fail": "adapter", "detail": d }),
    };
    println!("DIFF_CHILD_RESULT {r}");
}

// ---------------------------------------------------------------------------------------
// the check

struct Row {
    id: String,
    file: String,
    kind: VKind,
    lib: Lib,
    dir: Dir,
    agree: bool,
    detail: String,
    same_bytes: Option<bool>,
}

fn check_valid(v: &Vector, decoded: &Value, lib: Lib, rows: &mut Vec<Row>) {
    let row = |dir, agree, detail: String, same_bytes| Row {
        id: v.id.clone(),
        file: v.file.clone(),
        kind: v.kind,
        lib,
        dir,
        agree,
        detail,
        same_bytes,
    };
    // ours -> theirs
    let (agree, detail) = match guarded_decode(lib, v.kind, &v.hex) {
        Ok(got) => match first_diff(decoded, &got, "$") {
            None => (true, String::new()),
            Some(d) => (false, format!("decodes differently: {d}")),
        },
        Err(f) => (false, f.to_string()),
    };
    rows.push(row(O2T, agree, detail, None));
    // theirs -> ours
    let (agree, detail, same) = match guarded_encode(lib, v.kind, decoded) {
        Err(e) => (false, format!("cannot encode: {e}"), None),
        Ok(bytes) => {
            let same = bytes == v.hex;
            match model_decode(v.kind, &bytes) {
                Ok(got) => match first_diff(decoded, &got, "$") {
                    None => (
                        true,
                        format!("its bytes: {}", hex::encode(&bytes)),
                        Some(same),
                    ),
                    Some(d) => (
                        false,
                        format!(
                            "moqlink decodes its bytes {} differently: {d}",
                            hex::encode(&bytes)
                        ),
                        Some(same),
                    ),
                },
                Err(e) => (
                    false,
                    format!("{e}; its bytes: {}", hex::encode(&bytes)),
                    Some(same),
                ),
            }
        }
    };
    rows.push(row(T2O, agree, detail, same));
}

fn check_error(v: &Vector, lib: Lib, rows: &mut Vec<Row>) {
    let (agree, detail) = match isolated_decode(lib, v.kind, &v.hex) {
        Err(Fail::Library(e)) => (true, format!("rejected: {e}")),
        Err(Fail::Panic(e)) => (true, format!("rejected by panicking: {e}")),
        Err(f @ (Fail::Leftover(_) | Fail::Adapter(_))) => (false, format!("accepted: {f}")),
        Ok(got) => (false, format!("accepted as {got}")),
    };
    rows.push(Row {
        id: v.id.clone(),
        file: v.file.clone(),
        kind: v.kind,
        lib,
        dir: REJ,
        agree,
        detail,
        same_bytes: None,
    });
}

fn short(s: &str) -> String {
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[derive(Default)]
struct Tally {
    valid: usize,
    o2t_agree: usize,
    t2o_agree: usize,
    same_bytes: usize,
    errors: usize,
    rejected: usize,
}

fn print_summary(rows: &[Row], model_vs_vector: &[(String, String)]) {
    let mut t: BTreeMap<(Lib, VKind), Tally> = BTreeMap::new();
    for r in rows {
        let e = t.entry((r.lib, r.kind)).or_default();
        match r.dir {
            O2T => {
                e.valid += 1;
                e.o2t_agree += usize::from(r.agree);
            }
            T2O => {
                e.t2o_agree += usize::from(r.agree);
                e.same_bytes += usize::from(r.same_bytes == Some(true));
            }
            REJ => {
                e.errors += 1;
                e.rejected += usize::from(r.agree);
            }
        }
    }
    println!();
    println!(
        "differential summary: valid vectors the library supports, then agree / disagree per direction;"
    );
    println!("same bytes: the library's encoding equals the vector hex; error vectors: rejected / accepted");
    println!(
        "{:<14} {:<9} | {:>9} | {:>14} | {:>14} | {:>10} | {:>6} {:>9} {:>9}",
        "library",
        "kind",
        "supported",
        "ours->theirs",
        "theirs->ours",
        "same bytes",
        "errors",
        "rejected",
        "accepted"
    );
    println!("{}", "-".repeat(112));
    for ((lib, kind), x) in &t {
        println!(
            "{:<14} {:<9} | {:>9} | {:>6} / {:>5} | {:>6} / {:>5} | {:>10} | {:>6} {:>9} {:>9}",
            lib.name(),
            kind.dir(),
            x.valid,
            x.o2t_agree,
            x.valid - x.o2t_agree,
            x.t2o_agree,
            x.valid - x.t2o_agree,
            x.same_bytes,
            x.errors,
            x.rejected,
            x.errors - x.rejected
        );
    }
    println!();
    println!("disagreements:");
    for r in rows.iter().filter(|r| !r.agree) {
        println!(
            "  {:<44} {:<13} {:<12} {}",
            r.id,
            r.lib.name(),
            r.dir.name(),
            short(&r.detail)
        );
    }
    println!();
    println!("theirs->ours agrees, but the library's bytes differ from the vector's hex:");
    for r in rows
        .iter()
        .filter(|r| r.agree && r.same_bytes == Some(false))
    {
        println!("  {:<44} {:<13} {}", r.id, r.lib.name(), r.detail);
    }
    let panics: Vec<&Row> = rows
        .iter()
        .filter(|r| r.detail.contains("panick"))
        .collect();
    if !panics.is_empty() {
        println!();
        println!("library panics (caught; on error vectors they count as rejections):");
        for r in panics {
            println!(
                "  {:<44} {:<13} {:<12} {}",
                r.id,
                r.lib.name(),
                r.dir.name(),
                short(&r.detail)
            );
        }
    }
    if std::env::var_os("DIFF_VERBOSE").is_some() {
        println!();
        println!("all results (DIFF_VERBOSE):");
        for r in rows {
            let mark = if r.agree { "agree" } else { "DISAGREE" };
            println!(
                "  {:<44} {:<13} {:<12} {:<8} {}",
                r.id,
                r.lib.name(),
                r.dir.name(),
                mark,
                short(&r.detail)
            );
        }
    }
    if !model_vs_vector.is_empty() {
        println!();
        println!(
            "(info) moqlink-model's own decode differs from the vector (`decoded` or `error`):"
        );
        for (id, d) in model_vs_vector {
            println!("  {id:<44} {d}");
        }
    }
}

#[test]
fn differential() {
    let vectors = load_vectors();
    let ids: BTreeSet<&str> = vectors.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(
        ids.len(),
        vectors.len(),
        "vector ids must be unique across files"
    );

    let mut rows = Vec::new();
    let mut model_vs_vector = Vec::new();
    for v in &vectors {
        match (&v.decoded, &v.error) {
            (Some(decoded), _) => {
                for lib in Lib::ALL {
                    check_valid(v, decoded, lib, &mut rows);
                }
                match model_decode(v.kind, &v.hex) {
                    Ok(got) => {
                        if let Some(d) = first_diff(decoded, &got, "$") {
                            model_vs_vector.push((v.id.clone(), d));
                        }
                    }
                    Err(e) => model_vs_vector.push((v.id.clone(), e)),
                }
            }
            (None, Some(rule)) => {
                for lib in Lib::ALL {
                    check_error(v, lib, &mut rows);
                }
                let got = caught(|| moqlink_model::json::decode(model_kind(v.kind), &v.hex));
                match got {
                    Ok(Err(f)) if f.rule == *rule => {}
                    Ok(Err(f)) => {
                        model_vs_vector.push((v.id.clone(), format!("rule {} != {rule}", f.rule)))
                    }
                    Ok(Ok(val)) => {
                        model_vs_vector.push((v.id.clone(), format!("accepted as {val}")))
                    }
                    Err(_) => model_vs_vector.push((v.id.clone(), "moqlink-model panicked".into())),
                }
            }
            (None, None) => panic!("{}: vector {} has neither decoded nor error", v.file, v.id),
        }
    }

    print_summary(&rows, &model_vs_vector);

    let mut expected: BTreeMap<(&str, Lib, Dir), &str> = BTreeMap::new();
    for e in EXPECTED {
        for id in e.0 {
            for lib in e.1 {
                let dup = expected.insert((*id, *lib, e.2), e.3);
                assert!(
                    dup.is_none(),
                    "{id} {} {} twice in EXPECTED",
                    lib.name(),
                    e.2.name()
                );
            }
        }
    }
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for r in &rows {
        let key = (r.id.as_str(), r.lib, r.dir);
        match (r.agree, expected.contains_key(&key)) {
            (false, false) => problems.push(format!(
                "UNEXPECTED disagreement {} [{}] {} {}: {}",
                r.id,
                r.file,
                r.lib.name(),
                r.dir.name(),
                short(&r.detail)
            )),
            (true, true) => problems.push(format!(
                "EXPECTED disagreement no longer disagrees: {} {} {} ({})",
                r.id,
                r.lib.name(),
                r.dir.name(),
                expected[&key]
            )),
            _ => {}
        }
        seen.insert(key);
    }
    for (id, lib, dir) in expected.keys() {
        if !seen.contains(&(*id, *lib, *dir)) {
            problems.push(format!(
                "EXPECTED entry matches no vector: {id} {} {}",
                lib.name(),
                dir.name()
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------
// probes: inputs the vector set does not cover (yet), pinning what each library does.

/// What a library does with a probe input.
enum Want {
    /// Its decoder returns an error.
    Rejects,
    /// Its decoder panics (caught here; in a session that is a crashed task).
    Panics,
    /// Its decoder accepts the input, whatever the adapter can make of the result.
    Accepts,
    /// Its decoder accepts the input and it reads as this JSON.
    Decodes(&'static str),
}

struct Probe {
    what: &'static str,
    kind: VKind,
    hex: &'static str,
    moq_transport: Want,
    moqtail: Want,
}

#[rustfmt::skip]
const PROBES: &[Probe] = &[
    Probe { what: "SUBSCRIBE_NAMESPACE with an empty prefix (§9.28: N of 0 is a PROTOCOL_VIOLATION)",
        kind: VKind::Control, hex: "110003000000",
        moq_transport: Want::Decodes(r#"{"type":"SUBSCRIBE_NAMESPACE","request_id":0,"namespace_prefix":[],"parameters":[]}"#),
        moqtail: Want::Decodes(r#"{"type":"SUBSCRIBE_NAMESPACE","request_id":0,"namespace_prefix":[],"parameters":[]}"#) },
    Probe { what: "UNSUBSCRIBE_NAMESPACE with an empty prefix (§9.31 refers to §9.28)",
        kind: VKind::Control, hex: "14000100",
        moq_transport: Want::Decodes(r#"{"type":"UNSUBSCRIBE_NAMESPACE","namespace_prefix":[]}"#),
        moqtail: Want::Decodes(r#"{"type":"UNSUBSCRIBE_NAMESPACE","namespace_prefix":[]}"#) },
    Probe { what: "SUBSCRIBE_ERROR code 0x11 UNKNOWN_AUTH_TOKEN_ALIAS (§9.2.1.1 uses it; not in the §13.1.2 table)",
        kind: VKind::Control, hex: "050003001100",
        moq_transport: Want::Decodes(r#"{"type":"SUBSCRIBE_ERROR","request_id":0,"error_code":17,"reason":""}"#),
        moqtail: Want::Rejects },
    Probe { what: "SUBSCRIBE_ERROR with an unregistered code 0x100 (§9.9, §13.1.2)",
        kind: VKind::Control, hex: "05000400410000",
        moq_transport: Want::Decodes(r#"{"type":"SUBSCRIBE_ERROR","request_id":0,"error_code":256,"reason":""}"#),
        moqtail: Want::Rejects },
    Probe { what: "PUBLISH_DONE with an unregistered status code 0x8 (§9.12, §13.1.3)",
        kind: VKind::Control, hex: "0b000400080000",
        moq_transport: Want::Decodes(r#"{"type":"PUBLISH_DONE","request_id":0,"status_code":8,"stream_count":0,"reason":""}"#),
        moqtail: Want::Rejects },
    Probe { what: "CLIENT_SETUP offering no versions (§9.3: not a framing error)",
        kind: VKind::Control, hex: "2000020000",
        moq_transport: Want::Decodes(r#"{"type":"CLIENT_SETUP","versions":[],"parameters":[]}"#),
        moqtail: Want::Rejects },
    Probe { what: "SUBSCRIBE_ERROR whose Reason Phrase is not UTF-8 (§1.4.3: the value is UTF-8)",
        kind: VKind::Control, hex: "050004000001ff",
        moq_transport: Want::Rejects, moqtail: Want::Rejects },
    Probe { what: "type 0x22 (SWITCH in later drafts; not in draft-14 Table 1, so unknown_message_type, §9)",
        kind: VKind::Control, hex: "2200080001016101620000",
        moq_transport: Want::Rejects, moqtail: Want::Accepts },
    Probe { what: "SUBSCRIBE whose payload ends after Group Order (truncated, §9.7)",
        kind: VKind::Control, hex: "0300080001016101628001",
        moq_transport: Want::Rejects, moqtail: Want::Panics },
    Probe { what: "PUBLISH whose payload ends after Track Alias (truncated, §9.13)",
        kind: VKind::Control, hex: "1d000700010161016205",
        moq_transport: Want::Rejects, moqtail: Want::Panics },
    Probe { what: "PUBLISH_OK whose payload ends after Request ID (truncated, §9.14)",
        kind: VKind::Control, hex: "1e000100",
        moq_transport: Want::Rejects, moqtail: Want::Panics },
];

/// Not part of the vector comparison: pins each library's behaviour on the [`PROBES`]
/// (FINDINGS.md cites them) and on a datagram re-encoding detail.
#[test]
fn probes() {
    let mut problems = Vec::new();
    println!();
    println!("probes (inputs not in the vector set):");
    for p in PROBES {
        let input = hex::decode(p.hex).unwrap();
        let model = model_decode(p.kind, &input).map_or_else(|e| e, |v| v.to_string());
        println!("  {}", p.what);
        println!("      moqlink-model: {}", short(&model));
        for (lib, want) in [(MT, &p.moq_transport), (TAIL, &p.moqtail)] {
            let got = guarded_decode(lib, p.kind, &input);
            println!(
                "      {:<13}: {}",
                lib.name(),
                got.as_ref()
                    .map_or_else(|e| e.to_string(), |v| v.to_string())
            );
            let ok = match (want, &got) {
                (Want::Rejects, Err(Fail::Library(_))) => true,
                (Want::Panics, Err(Fail::Panic(_))) => true,
                (Want::Accepts, Ok(_) | Err(Fail::Adapter(_) | Fail::Leftover(_))) => true,
                (Want::Decodes(j), Ok(v)) => serde_json::from_str::<Value>(j).unwrap() == *v,
                _ => false,
            };
            if !ok {
                problems.push(format!("probe changed: {} / {}", p.what, lib.name()));
            }
        }
    }
    // moqtail's DatagramObject has no "Object ID present" flag and its serializer omits
    // exactly Object ID 0, so a type 0x00 datagram for Object 0 comes back as type 0x04.
    let d0: Value = serde_json::from_str(
        r#"{"track_alias":1,"group_id":2,"object_id":0,"object_id_present":true,
            "publisher_priority":128,"end_of_group":false,"extensions":null,"payload":"hi"}"#,
    )
    .unwrap();
    let mt_bytes = guarded_encode(MT, VKind::Datagram, &d0).map(hex::encode);
    let tail_bytes = guarded_encode(TAIL, VKind::Datagram, &d0).map(hex::encode);
    println!("  datagram type 0x00 for Object ID 0 (§10.3.1 allows it), re-encoded:");
    println!("      moq-transport: {mt_bytes:?}\n      moqtail      : {tail_bytes:?}");
    if mt_bytes.as_deref() != Ok("00010200806869") || tail_bytes.as_deref() != Ok("040102806869") {
        problems.push("probe changed: datagram 0x00 with Object ID 0".into());
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}
