//! Replays the committed corpus of every fuzz target (`fuzz/corpus/<target>/`)
//! through the same `check` functions the libFuzzer targets call, so that
//! `cargo test` re-runs every input the fuzzer kept, without cargo-fuzz.

use std::path::Path;

#[test]
fn every_committed_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, check) in pando_fuzz::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("the corpus of {name} ({}): {e}", dir.display()))
            .map(|entry| entry.expect("a corpus entry").path())
            .collect();
        files.sort();
        let start = std::time::Instant::now();
        assert!(!files.is_empty(), "the corpus of {name} is empty");
        for file in &files {
            let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let replay = std::panic::catch_unwind(|| check(&data));
            assert!(replay.is_ok(), "{name} failed on {}", file.display());
        }
        println!("{name}: {} inputs replayed in {:?}", files.len(), start.elapsed());
    }
}
