//! Fuzz entry: a `/proc/PID/cgroup` content (or bare cgroup path) through saker-enrich's
//! cgroup parsers. Shared by `fuzz_targets/cgroup_path.rs` and
//! daemon/enrich/tests/fuzz_corpus.rs.

use saker_enrich::cgroup::{classify, parse, parse_proc_cgroup, path_of_line, unified_path};
use saker_enrich::ContainerRef;

fn check(input: &str, c: &Option<ContainerRef>) {
    if let Some(c) = c {
        assert!(!c.id.is_empty(), "empty container id from {input:?}");
        assert!(
            input.contains(&c.id),
            "container id {:?} is not in the input {input:?}",
            c.id
        );
    }
}

/// Panics on a bug: a crash, or a container id that is empty or not taken from the input.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check(text, &parse_proc_cgroup(text));
    let _ = unified_path(text);
    for line in text.lines() {
        check(line, &parse(line));
        let path = path_of_line(line);
        check(path, &classify(path));
    }
}
