//! Replays, without nightly, every input the `session` fuzz target (fuzz/fuzz_targets/session.rs)
//! found failing, plus a few hand-written scripts, through the same harness and oracles: no
//! task panics, every accepted request answered or the session closed with a §13.1.1 code,
//! nothing held by the relay and no task alive after the client left.

#[path = "../fuzz/fuzz_targets/session/mod.rs"]
#[allow(dead_code)]
mod harness;

/// Each file under tests/session_fuzz/ is one fuzz input.
#[test]
fn every_recorded_input_passes_the_session_oracles() {
    // SESSION_FUZZ_REPLAY=<dir> replays a fuzz corpus instead.
    let (dir, any) = match std::env::var_os("SESSION_FUZZ_REPLAY") {
        Some(d) => (std::path::PathBuf::from(d), true),
        None => (
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/session_fuzz"),
            false,
        ),
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| any || p.extension().is_some_and(|e| e == "bin"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    let mut failed = Vec::new();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        if let Err(e) = harness::run(&data) {
            failed.push(format!("{}: {e}", f.display()));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
