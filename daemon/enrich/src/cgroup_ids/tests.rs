use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use super::*;
use crate::cgroup::Runtime;

const ID: &str = "4f1c0f2b0c4b3e0d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f";
const UID: &str = "0b6c2a52-5f3e-4b0c-9c1a-2d6f1e3b4a59";

/// A directory tree shaped like a cgroup2 hierarchy (directory inodes stand in for ids).
struct FakeHierarchy(PathBuf);

impl FakeHierarchy {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "saker-enrich-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for p in [
            format!("kubepods/besteffort/pod{UID}/{ID}"),
            "system.slice/sshd.service".to_owned(),
            format!("docker/{}", "b".repeat(64)),
        ] {
            std::fs::create_dir_all(dir.join(p)).expect("create fake cgroup dirs");
        }
        Self(dir)
    }

    fn ino(&self, rel: &str) -> u64 {
        std::fs::metadata(self.0.join(rel)).expect("stat").ino()
    }
}

impl Drop for FakeHierarchy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn app() -> Option<ContainerRef> {
    Some(ContainerRef {
        id: ID.to_owned(),
        runtime: Runtime::Unknown,
        pod_uid: Some(UID.to_owned()),
    })
}

#[test]
fn walk_finds_a_container_id_and_caches_its_neighbours() {
    let h = FakeHierarchy::new("walk");
    let cache = CgroupIdCache::with_root(Some(h.0.clone()), 64);
    let id = h.ino(&format!("kubepods/besteffort/pod{UID}/{ID}"));
    assert_eq!(cache.cached(id), None);
    assert_eq!(cache.resolve(id), app());
    assert_eq!(cache.cached(id), Some(app()));
    // A host cgroup resolves to None and is remembered as host.
    let sshd = h.ino("system.slice/sshd.service");
    std::thread::sleep(MIN_WALK_INTERVAL);
    assert_eq!(cache.resolve(sshd), None);
    assert_eq!(cache.cached(sshd), Some(None));
    // The root is the host.
    let root = h.ino("");
    assert_eq!(cache.resolve(root), None);
}

#[test]
fn paths_resolve_without_a_walk() {
    let h = FakeHierarchy::new("paths");
    let cache = CgroupIdCache::with_root(Some(h.0.clone()), 64);
    let path = format!("/kubepods/besteffort/pod{UID}/{ID}");
    assert_eq!(cache.resolve_path(&path), app());
    assert_eq!(cache.id_of_path(&path), Some(h.ino(&path[1..])));
    assert_eq!(cache.cached(h.ino(&path[1..])), Some(app()));
    assert_eq!(cache.id_of_path("/../etc"), None);
    assert_eq!(cache.id_of_path("/does/not/exist"), None);
}

#[test]
fn unknown_ids_are_rate_limited_and_remembered_briefly() {
    let h = FakeHierarchy::new("miss");
    let cache = CgroupIdCache::with_root(Some(h.0.clone()), 64);
    assert_eq!(cache.resolve(u64::MAX), None);
    // Created after the failed walk: still unknown within the miss TTL...
    let late = h.0.join(format!("kubepods/besteffort/pod{UID}/late"));
    std::fs::create_dir_all(&late).expect("mkdir");
    let late_id = std::fs::metadata(&late).expect("stat").ino();
    assert_eq!(cache.resolve(late_id), None, "walks are rate-limited");
    // ...and found once a walk is allowed again.
    std::thread::sleep(MISS_TTL + MIN_WALK_INTERVAL);
    assert_eq!(
        cache.resolve(late_id),
        Some(ContainerRef {
            id: "late".to_owned(),
            runtime: Runtime::Unknown,
            pod_uid: Some(UID.to_owned()),
        })
    );
}

#[test]
fn without_a_cgroup2_mount_ids_stay_unknown() {
    let cache = CgroupIdCache::with_root(None, 4);
    assert_eq!(cache.resolve(1), None);
    assert_eq!(cache.id_of_path("/"), None);
    cache.insert(7, app());
    assert_eq!(cache.resolve(7), app());
}

#[test]
fn bounded() {
    let cache = CgroupIdCache::with_root(None, 3);
    for id in 0..10 {
        cache.insert(id, None);
    }
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.cached(0), None);
    assert_eq!(cache.cached(9), Some(None));
    assert_eq!(CgroupIdCache::with_root(None, 0).len(), 0);
}

#[test]
fn own_process_through_the_host_hierarchy() {
    let cache = CgroupIdCache::new(16);
    let Some(root) = cache.root().map(Path::to_path_buf) else {
        return; // no cgroup2 on this host
    };
    let me = std::process::id();
    let content = std::fs::read_to_string(format!("/proc/{me}/cgroup")).expect("own cgroup");
    let expected = cgroup::parse_proc_cgroup(&content);
    assert_eq!(cache.resolve_pid(me, None), expected);
    if let Some(path) = cgroup::unified_path(&content) {
        let dir = root.join(path.trim_start_matches('/'));
        if let Ok(meta) = std::fs::metadata(dir) {
            assert_eq!(cache.cached(meta.ino()), Some(expected.clone()));
        }
    }
    // A gone pid falls back to the id.
    cache.insert(42, app());
    assert_eq!(cache.resolve_pid(u32::MAX, Some(42)), app());
    assert_eq!(cache.resolve_pid(u32::MAX, None), None);
}

#[test]
fn mountinfo_parsing() {
    let hybrid = "25 24 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n\
                  26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n\
                  27 25 0:24 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
    assert_eq!(
        cgroup2_mount_in(hybrid),
        Some(PathBuf::from("/sys/fs/cgroup/unified"))
    );
    let pure = "30 1 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
    assert_eq!(
        cgroup2_mount_in(pure),
        Some(PathBuf::from("/sys/fs/cgroup"))
    );
    let escaped = "30 1 0:26 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n";
    assert_eq!(cgroup2_mount_in(escaped), Some(PathBuf::from("/mnt/my cg")));
    assert_eq!(
        cgroup2_mount_in("27 25 0:24 / /x rw - cgroup cgroup rw\n"),
        None
    );
    for junk in [
        "",
        " - ",
        "a b c - cgroup2",
        "\\",
        "x\\0",
        "x\\999 - cgroup2 y",
    ] {
        let _ = cgroup2_mount_in(junk);
        let _ = unescape_octal(junk);
    }
    assert_eq!(unescape_octal("a\\134b\\011"), "a\\b\t");
}
