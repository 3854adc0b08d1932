//! Loading the language-neutral vectors of testvectors/draft14.

#![allow(dead_code)]

use moqlink_model::json::Kind;
use serde_json::Value;
use std::path::PathBuf;

pub struct Vector {
    pub file: String,
    pub id: String,
    pub section: String,
    pub hex: String,
    pub bytes: Vec<u8>,
    pub decoded: Option<Value>,
    pub canonical_hex: Option<String>,
    pub error: Option<String>,
    pub error_code: Option<String>,
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testvectors/draft14")
}

pub const KINDS: [(&str, Kind); 5] = [
    ("control", Kind::Control),
    ("subgroup", Kind::Subgroup),
    ("fetch", Kind::Fetch),
    ("datagram", Kind::Datagram),
    ("varint", Kind::Varint),
];

pub fn load(dir: &str) -> Vec<Vector> {
    let mut files: Vec<_> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("testvectors/draft14/{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        for v in doc["vectors"].as_array().expect("vectors array") {
            let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
            let hex = s("hex").unwrap_or_else(|| panic!("{file}: vector without hex"));
            out.push(Vector {
                file: file.clone(),
                id: s("id").expect("id"),
                section: s("spec_section").expect("spec_section"),
                bytes: hex::decode(&hex).unwrap_or_else(|e| panic!("{file}: bad hex: {e}")),
                hex,
                decoded: v.get("decoded").cloned(),
                canonical_hex: s("canonical_hex"),
                error: s("error"),
                error_code: s("error_code"),
            });
        }
    }
    out
}
