//! Replays the fuzz corpus of the cgroup-path target (tests/fuzz/corpus/cgroup_path)
//! through the fuzz target's own entry function, on stable.

#[path = "../../../tests/fuzz/src/entry/cgroup_path.rs"]
mod cgroup_path;
#[path = "../../../tests/fuzz/src/replay.rs"]
mod replay;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fuzz/corpus");

#[test]
fn cgroup_path_corpus() {
    replay::replay(CORPUS, "cgroup_path", cgroup_path::run);
}
