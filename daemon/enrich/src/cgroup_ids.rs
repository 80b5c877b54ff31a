//! Container of a cgroup v2 id (what `bpf_get_current_cgroup_id()` returns: the inode number
//! of the cgroup's directory in the cgroup2 hierarchy), so that events of a process that has
//! already exited can still be attributed.
//!
//! Resolution, cheapest first:
//! 1. the cache (ids are never reused while the host is up, so entries never go stale);
//! 2. [`CgroupIdCache::resolve_pid`] while the process lives: `/proc/PID/cgroup` gives the path,
//!    `stat` of that directory in the cgroup2 mount gives its id;
//! 3. for an unknown id: a walk of the cgroup2 hierarchy comparing directory inode numbers,
//!    which caches every container cgroup it passes. Walks are rate-limited and a miss is
//!    remembered briefly; a cgroup already removed cannot be found this way.
//!
//! The cgroup2 mount is found in `/proc/self/mountinfo` (hybrid hosts mount it at
//! `/sys/fs/cgroup/unified`, pure cgroup2 hosts at `/sys/fs/cgroup`).

use std::num::NonZeroUsize;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;

use crate::cgroup::{self, ContainerRef};

/// How long an id that no walk found is answered from the cache as unknown.
const MISS_TTL: Duration = Duration::from_secs(1);
/// At most one hierarchy walk per this interval.
const MIN_WALK_INTERVAL: Duration = Duration::from_millis(200);
/// Walk limits (a node has a few hundred to a few thousand cgroups).
const MAX_WALK_DIRS: usize = 100_000;
const MAX_WALK_DEPTH: usize = 16;

/// Bounded map `cgroup id → container` (LRU).
pub struct CgroupIdCache {
    root: Option<PathBuf>,
    inner: Mutex<Inner>,
}

struct Inner {
    map: LruCache<u64, Slot>,
    last_walk: Option<Instant>,
}

#[derive(Clone)]
enum Slot {
    /// Resolved: a container, or `None` for a host cgroup.
    Known(Option<ContainerRef>),
    /// Not found by a walk; try again after this instant.
    Missing(Instant),
}

impl CgroupIdCache {
    /// A cache of at most `capacity` ids over the host's cgroup2 mount (if any).
    pub fn new(capacity: usize) -> Self {
        Self::with_root(cgroup2_mount(), capacity)
    }

    /// A cache over the cgroup2 hierarchy mounted at `root` (`None`: resolve only through
    /// `/proc/PID/cgroup`, without ids).
    pub fn with_root(root: Option<PathBuf>, capacity: usize) -> Self {
        let cap = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            root,
            inner: Mutex::new(Inner {
                map: LruCache::new(cap),
                last_walk: None,
            }),
        }
    }

    /// The cgroup2 mount point in use.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Number of cached ids.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records what `cgroup_id` resolves to.
    pub fn insert(&self, cgroup_id: u64, container: Option<ContainerRef>) {
        self.lock().map.put(cgroup_id, Slot::Known(container));
    }

    /// The cached answer for `cgroup_id`, without any I/O: `None` if unknown, `Some(None)` for
    /// a host cgroup.
    pub fn cached(&self, cgroup_id: u64) -> Option<Option<ContainerRef>> {
        match self.lock().map.get(&cgroup_id) {
            Some(Slot::Known(c)) => Some(c.clone()),
            _ => None,
        }
    }

    /// The container of `pid`, read from `/proc/PID/cgroup` while it lives; its cgroup's id
    /// (and `cgroup_id`, when the caller has it) is cached on the way. When the process is
    /// gone, falls back to [`CgroupIdCache::resolve`] of `cgroup_id`.
    pub fn resolve_pid(&self, pid: u32, cgroup_id: Option<u64>) -> Option<ContainerRef> {
        if let Some(Some(known)) = cgroup_id.and_then(|id| self.cached(id)) {
            return Some(known);
        }
        let Ok(content) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
            return cgroup_id.and_then(|id| self.resolve(id));
        };
        let container = cgroup::parse_proc_cgroup(&content);
        let stat_id = cgroup::unified_path(&content).and_then(|p| self.id_of_path(p));
        for id in stat_id.into_iter().chain(cgroup_id) {
            self.insert(id, container.clone());
        }
        container
    }

    /// The container of cgroup `path` (e.g. `/kubepods/besteffort/pod…/…`); caches its id.
    pub fn resolve_path(&self, path: &str) -> Option<ContainerRef> {
        let container = cgroup::classify(path);
        if let Some(id) = self.id_of_path(path) {
            self.insert(id, container.clone());
        }
        container
    }

    /// The container of `cgroup_id`: from the cache, else by walking the cgroup2 hierarchy
    /// (rate-limited; see the module docs). `None` for host cgroups and unknown ids.
    pub fn resolve(&self, cgroup_id: u64) -> Option<ContainerRef> {
        let now = Instant::now();
        {
            let mut inner = self.lock();
            match inner.map.get(&cgroup_id) {
                Some(Slot::Known(c)) => return c.clone(),
                Some(Slot::Missing(until)) if now < *until => return None,
                _ => {}
            }
            let recent = inner
                .last_walk
                .is_some_and(|t| now.duration_since(t) < MIN_WALK_INTERVAL);
            if recent || self.root.is_none() {
                inner.map.put(cgroup_id, Slot::Missing(now + MISS_TTL));
                return None;
            }
            inner.last_walk = Some(now);
        }
        let found = self.walk(cgroup_id);
        let mut inner = self.lock();
        match found {
            Some(container) => {
                inner.map.put(cgroup_id, Slot::Known(container.clone()));
                container
            }
            None => {
                inner.map.put(cgroup_id, Slot::Missing(now + MISS_TTL));
                None
            }
        }
    }

    /// The id of cgroup `path`: the inode of its directory under the cgroup2 mount.
    pub fn id_of_path(&self, path: &str) -> Option<u64> {
        let root = self.root.as_ref()?;
        let rel = path.trim_start_matches('/');
        if rel.split('/').any(|s| s == "..") {
            return None;
        }
        std::fs::metadata(root.join(rel)).ok().map(|m| m.ino())
    }

    /// Walks the hierarchy looking for `target`; caches every container cgroup passed.
    /// `Some(answer)` when the id was found.
    fn walk(&self, target: u64) -> Option<Option<ContainerRef>> {
        let root = self.root.as_ref()?;
        if std::fs::metadata(root).ok()?.ino() == target {
            return Some(None);
        }
        let mut stack = vec![(root.clone(), String::new(), 0usize)];
        let mut seen = 0usize;
        let mut found = None;
        let mut containers = Vec::new();
        while let Some((dir, rel, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                seen += 1;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let path = format!("{rel}/{name}");
                let container = cgroup::classify(&path);
                if entry.ino() == target {
                    found = Some(container.clone());
                }
                if let Some(c) = container {
                    containers.push((entry.ino(), c));
                }
                if depth + 1 < MAX_WALK_DEPTH && seen < MAX_WALK_DIRS {
                    stack.push((entry.path(), path, depth + 1));
                }
            }
            if found.is_some() || seen >= MAX_WALK_DIRS {
                break;
            }
        }
        let mut inner = self.lock();
        for (id, c) in containers {
            if !inner.map.contains(&id) {
                inner.map.put(id, Slot::Known(Some(c)));
            }
        }
        found
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Mount point of the cgroup2 hierarchy: from `/proc/self/mountinfo`, else the first of
/// `/sys/fs/cgroup/unified` (hybrid) and `/sys/fs/cgroup` (pure cgroup2) that is one.
pub fn cgroup2_mount() -> Option<PathBuf> {
    if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
        if let Some(p) = cgroup2_mount_in(&info) {
            return Some(p);
        }
    }
    ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("cgroup.controllers").exists())
}

/// The first cgroup2 mount point in a mountinfo text.
pub fn cgroup2_mount_in(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        if post.split(' ').next()? != "cgroup2" {
            return None;
        }
        Some(PathBuf::from(unescape_octal(pre.split(' ').nth(4)?)))
    })
}

/// Undoes mountinfo's `\NNN` octal escapes (space, tab, newline, backslash).
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b.get(i + 1..i + 4).filter(|d| {
            b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)) && d[0] <= b'3'
        });
        match oct {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
