//! Differential codec test for moqlink (MoQ Transport draft-14, `0xff00000e`).
//!
//! Everything lives in `tests/`: `tests/differential.rs` feeds every vector under
//! `testvectors/draft14/` to two independent draft-14 codecs from crates.io
//! (cloudflare's `moq-transport` 0.14.2 and `moqtail` 0.11.1) and to
//! `moqlink_model::json`, and compares the results in the vectors' decoded JSON form.
//! See `FINDINGS.md` for what the comparison found.
