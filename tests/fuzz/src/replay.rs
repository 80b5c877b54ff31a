//! Corpus replay for `cargo test`: runs every file of `corpus/<target>/` through a fuzz
//! entry function and reports each file that panics. Compiled with `#[path]` by the
//! owning crates' `tests/fuzz_corpus.rs`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// Replays `corpus_root/<target>/*`; panics listing the files that fail. An empty or
/// missing corpus is a failure too (the test would check nothing).
pub fn replay(corpus_root: &str, target: &str, run: impl Fn(&[u8])) {
    let dir = Path::new(corpus_root).join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading corpus {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    let mut failed = Vec::new();
    for f in &files {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()));
        // A panicking input leaves nothing behind that the next one relies on.
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(f.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} corpus files of {target} fail: {failed:?}",
        failed.len(),
        files.len()
    );
}
