//! SHA-256 of executed files, for the IoC list. Hashing happens in userspace, at most
//! once per file version: the cache is keyed by (device, inode, mtime, size), so a
//! rewritten file is hashed again and an unchanged one never is.

use std::{
    collections::HashMap,
    fs::File,
    io::Read,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

/// Files larger than this are not hashed (counted as skipped): reading them would stall
/// the event path.
pub const MAX_HASH_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    dev: u64,
    ino: u64,
    mtime: i64,
    mtime_ns: i64,
    size: u64,
}

#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashStats {
    pub hashed: u64,
    pub cache_hits: u64,
    pub unavailable: u64,
    pub too_large: u64,
}

pub struct ExeHasher {
    cache: HashMap<Key, String>,
    capacity: usize,
    pub stats: HashStats,
}

impl ExeHasher {
    pub fn new(capacity: usize) -> ExeHasher {
        ExeHasher {
            cache: HashMap::new(),
            capacity,
            stats: HashStats::default(),
        }
    }

    /// Hashes the executable of an exec: through /proc/PID/exe while the process lives,
    /// else through the root of another live process in its mount namespace (`roots`:
    /// its parent, the container's other processes) + the exec path, accepted only when
    /// the inode is the one the kernel reported.
    pub fn hash_exec(
        &mut self,
        pid: u32,
        roots: &[u32],
        filename: &[u8],
        exe_ino: u64,
    ) -> Option<String> {
        if let Some(h) = self.hash_path(&PathBuf::from(format!("/proc/{pid}/exe")), Some(exe_ino)) {
            return Some(h);
        }
        if filename.first() == Some(&b'/') {
            use std::os::unix::ffi::OsStrExt;
            for root in roots {
                let mut p = PathBuf::from(format!("/proc/{root}/root"));
                p.push(Path::new(std::ffi::OsStr::from_bytes(&filename[1..])));
                if let Some(h) = self.hash_path(&p, Some(exe_ino)) {
                    return Some(h);
                }
            }
        }
        self.stats.unavailable += 1;
        None
    }

    /// Hashes `path` (cached by file identity). `want_ino` guards against a different
    /// file having taken the path.
    pub fn hash_path(&mut self, path: &Path, want_ino: Option<u64>) -> Option<String> {
        let mut f = File::open(path).ok()?;
        let m = f.metadata().ok()?;
        if want_ino.is_some_and(|i| i != 0 && i != m.ino()) {
            return None;
        }
        let key = Key {
            dev: m.dev(),
            ino: m.ino(),
            mtime: m.mtime(),
            mtime_ns: m.mtime_nsec(),
            size: m.size(),
        };
        if let Some(h) = self.cache.get(&key) {
            self.stats.cache_hits += 1;
            return Some(h.clone());
        }
        if m.size() > MAX_HASH_BYTES {
            self.stats.too_large += 1;
            return None;
        }
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => hasher.update(&buf[..n]),
                Err(_) => return None,
            }
        }
        let hex: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if self.cache.len() >= self.capacity {
            // Cheap bound: start over rather than track recency; re-hashing is correct.
            self.cache.clear();
        }
        self.cache.insert(key, hex.clone());
        self.stats.hashed += 1;
        Some(hex)
    }
}

/// Known-bad SHA-256 hashes: one entry per line, `HASH  NAME` (sha256sum's format; the
/// name is optional), `#` comments.
#[derive(Default, Debug, Clone)]
pub struct IocList {
    entries: HashMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IocError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}:1: expected a 64-hex-digit SHA-256, found {found:?}")]
    Syntax {
        file: String,
        line: usize,
        found: String,
    },
}

impl IocList {
    pub fn load(path: &Path) -> Result<IocList, IocError> {
        let text = std::fs::read_to_string(path).map_err(|source| IocError::Io {
            file: path.display().to_string(),
            source,
        })?;
        IocList::parse(&path.display().to_string(), &text)
    }

    pub fn parse(file: &str, text: &str) -> Result<IocList, IocError> {
        let mut entries = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (hash, name) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let hash = hash.to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(IocError::Syntax {
                    file: file.to_string(),
                    line: i + 1,
                    found: hash,
                });
            }
            let name = name.trim().trim_start_matches('*');
            entries.insert(
                hash.clone(),
                if name.is_empty() {
                    hash
                } else {
                    name.to_string()
                },
            );
        }
        Ok(IocList { entries })
    }

    pub fn lookup(&self, sha256: &str) -> Option<&str> {
        self.entries.get(sha256).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_once_per_file_version() {
        let dir = std::env::temp_dir().join(format!("saker-hash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        std::fs::write(&p, b"abc").unwrap();
        let mut h = ExeHasher::new(16);
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(h.hash_path(&p, None).as_deref(), Some(abc));
        assert_eq!(h.hash_path(&p, None).as_deref(), Some(abc));
        assert_eq!((h.stats.hashed, h.stats.cache_hits), (1, 1));
        std::fs::write(&p, b"abcd").unwrap();
        assert_ne!(h.hash_path(&p, None).as_deref(), Some(abc));
        assert_eq!(h.stats.hashed, 2);
        assert_eq!(h.hash_path(&p, Some(1)), None, "another inode is refused");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ioc_list_parses_and_names_bad_lines() {
        let l = IocList::parse(
            "ioc.txt",
            "# c\nBA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD  easyminer\n",
        )
        .unwrap();
        assert_eq!(
            l.lookup("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            Some("easyminer")
        );
        let e = IocList::parse("ioc.txt", "\nnot-a-hash x\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "ioc.txt:2:1: expected a 64-hex-digit SHA-256, found \"not-a-hash\""
        );
    }
}
