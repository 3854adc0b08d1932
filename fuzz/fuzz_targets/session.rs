//! Drives the relay's per-session handler over an in-memory connection with a script read from
//! the input (see `session/mod.rs` for the script and its oracles).

#![no_main]

#[path = "session/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = harness::run(data) {
        panic!("oracle failed: {e}");
    }
});
