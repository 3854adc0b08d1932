//! Drives the relay's per-session handler over an in-memory connection with a script read from
//! the input (see `session/mod.rs` for the script and its oracles).
//!
//! Run: `cd fuzz && cargo +nightly fuzz run session -O -a -s none -- -rss_limit_mb=2048`
//! (no sanitizer: the code under test is safe Rust, and without one it runs ~10x faster;
//! `-a` keeps overflow checks). Inputs that fail go to tests/session_fuzz/*.bin, replayed by
//! `cargo test -p moqlink --test session_fuzz`; `SESSION_FUZZ_DEBUG=1` prints what each
//! script did, `SESSION_FUZZ_REPLAY=<dir>` replays a whole corpus there.

#![no_main]

#[path = "session/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = harness::run(data) {
        panic!("oracle failed: {e}");
    }
});
