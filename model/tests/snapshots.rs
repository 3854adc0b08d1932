//! insta snapshots of the decoded form of every valid vector, one snapshot per vector file, so a
//! change in what `moqlink decode` prints shows up in review.

mod common;

use common::{load, KINDS};
use moqlink_model::json;
use serde_json::{Map, Value};

#[test]
fn decoded_forms() {
    for (dir, kind) in KINDS {
        let vectors = load(dir);
        let mut files: Vec<&str> = vectors.iter().map(|v| v.file.as_str()).collect();
        files.dedup();
        for file in files {
            let mut map = Map::new();
            for v in vectors
                .iter()
                .filter(|v| v.file == file && v.decoded.is_some())
            {
                let decoded =
                    json::decode(kind, &v.bytes).unwrap_or_else(|f| panic!("{}: {f}", v.id));
                map.insert(v.id.clone(), decoded);
            }
            if map.is_empty() {
                continue;
            }
            let name = format!("{dir}__{}", file.trim_end_matches(".json"));
            insta::assert_json_snapshot!(name, Value::Object(map));
        }
    }
}
