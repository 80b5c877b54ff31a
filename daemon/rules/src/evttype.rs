//! Interned event types and sets of them, used to index rules so an event is
//! only evaluated against rules that can match its type.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

/// Event names known to the engine (Falco's syscall event names). Names not
/// listed here are [`EvtType::UNKNOWN`]: only type-unconstrained rules
/// apply to them.
const NAMES: &[&str] = &[
    "execve",
    "execveat",
    "open",
    "openat",
    "openat2",
    "creat",
    "chmod",
    "fchmod",
    "fchmodat",
    "connect",
    "memfd_create",
    "unlink",
    "unlinkat",
    "clone",
    "clone3",
    "fork",
    "vfork",
    "procexit",
    "accept",
    "accept4",
    "bind",
    "listen",
    "socket",
    "socketpair",
    "sendto",
    "sendmsg",
    "recvfrom",
    "recvmsg",
    "read",
    "write",
    "close",
    "dup",
    "dup2",
    "dup3",
    "symlink",
    "symlinkat",
    "link",
    "linkat",
    "rename",
    "renameat",
    "renameat2",
    "mkdir",
    "mkdirat",
    "rmdir",
    "init_module",
    "finit_module",
    "delete_module",
    "ptrace",
    "setuid",
    "setgid",
    "setresuid",
    "setresgid",
    "setreuid",
    "setregid",
    "setns",
    "unshare",
    "mount",
    "umount",
    "umount2",
    "bpf",
    "userfaultfd",
    "mmap",
    "mprotect",
    "kill",
    "tkill",
    "tgkill",
    "chown",
    "fchown",
    "fchownat",
    "lchown",
    "truncate",
    "ftruncate",
    "capset",
    "prctl",
    "pivot_root",
    "chroot",
    "chdir",
    "fchdir",
    "seccomp",
    "sethostname",
    "ioctl",
    "fcntl",
    "pipe",
    "pipe2",
    "shutdown",
    "setsockopt",
    "getsockopt",
    "io_uring_setup",
    "io_uring_enter",
    "process_vm_readv",
    "process_vm_writev",
    "kexec_load",
    "kexec_file_load",
    "syslog",
    "signaldeliver",
    "switch",
    "container",
    "copy_file_range",
    "sendfile",
    "splice",
    "quotactl",
    "utimensat",
    "inotify_init",
    "inotify_init1",
    "pidfd_open",
    "pidfd_getfd",
    "memfd_secret",
    "nanosleep",
    "exit",
    "exit_group",
    "setpgid",
    "setsid",
    "setrlimit",
    "prlimit",
    "umask",
    "mknod",
    "mknodat",
    "access",
    "faccessat",
    "faccessat2",
    "stat",
    "lstat",
    "fstat",
    "newfstatat",
    "readlink",
    "readlinkat",
    "getdents",
    "getdents64",
    "epoll_create",
    "eventfd",
    "signalfd",
    "timerfd_create",
];

const WORDS: usize = 4;

/// An interned event type (index into the engine's name table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EvtType(u16);

impl EvtType {
    /// Any event name the engine does not know.
    pub const UNKNOWN: EvtType = EvtType(u16::MAX);

    /// Interns `name`; unknown names give [`EvtType::UNKNOWN`].
    pub fn from_name(name: &str) -> EvtType {
        static INDEX: OnceLock<HashMap<&'static str, u16>> = OnceLock::new();
        let index = INDEX.get_or_init(|| {
            NAMES
                .iter()
                .enumerate()
                .map(|(i, n)| (*n, i as u16))
                .collect()
        });
        index.get(name).map_or(EvtType::UNKNOWN, |&i| EvtType(i))
    }

    pub fn name(self) -> Option<&'static str> {
        NAMES.get(usize::from(self.0)).copied()
    }

    pub(crate) fn index(self) -> Option<usize> {
        let i = usize::from(self.0);
        (i < NAMES.len()).then_some(i)
    }

    /// Number of known event types (`0..count()` are valid indexes).
    pub(crate) fn count() -> usize {
        NAMES.len()
    }

    pub(crate) fn from_index(i: usize) -> EvtType {
        EvtType(i as u16)
    }
}

impl fmt::Display for EvtType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name().unwrap_or("<unknown>"))
    }
}

/// A set of known event types, or "any" (unconstrained).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvtTypeSet {
    Any,
    Only([u64; WORDS]),
}

impl EvtTypeSet {
    pub const NONE: EvtTypeSet = EvtTypeSet::Only([0; WORDS]);

    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> (EvtTypeSet, Vec<String>) {
        let mut bits = [0u64; WORDS];
        let mut unknown = Vec::new();
        for n in names {
            match EvtType::from_name(n).index() {
                Some(i) => bits[i / 64] |= 1 << (i % 64),
                None => unknown.push(n.to_string()),
            }
        }
        (EvtTypeSet::Only(bits), unknown)
    }

    pub fn contains(&self, t: EvtType) -> bool {
        match self {
            EvtTypeSet::Any => true,
            EvtTypeSet::Only(bits) => match t.index() {
                Some(i) => bits[i / 64] & (1 << (i % 64)) != 0,
                None => false,
            },
        }
    }

    pub fn is_any(&self) -> bool {
        matches!(self, EvtTypeSet::Any)
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, EvtTypeSet::Only(b) if b.iter().all(|w| *w == 0))
    }

    pub fn union(self, other: EvtTypeSet) -> EvtTypeSet {
        match (self, other) {
            (EvtTypeSet::Only(a), EvtTypeSet::Only(b)) => {
                EvtTypeSet::Only(std::array::from_fn(|i| a[i] | b[i]))
            }
            _ => EvtTypeSet::Any,
        }
    }

    pub fn intersect(self, other: EvtTypeSet) -> EvtTypeSet {
        match (self, other) {
            (EvtTypeSet::Only(a), EvtTypeSet::Only(b)) => {
                EvtTypeSet::Only(std::array::from_fn(|i| a[i] & b[i]))
            }
            (EvtTypeSet::Any, x) | (x, EvtTypeSet::Any) => x,
        }
    }

    /// Names in the set (`None` for "any").
    pub fn names(&self) -> Option<Vec<&'static str>> {
        match self {
            EvtTypeSet::Any => None,
            EvtTypeSet::Only(_) => Some(
                NAMES
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| self.contains(EvtType::from_index(*i)))
                    .map(|(_, n)| *n)
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_fits_and_is_unique() {
        assert!(NAMES.len() <= WORDS * 64);
        let mut v = NAMES.to_vec();
        v.sort_unstable();
        v.dedup();
        assert_eq!(v.len(), NAMES.len());
    }

    #[test]
    fn sets() {
        let (a, unknown) = EvtTypeSet::from_names(["open", "openat", "bogus"]);
        assert_eq!(unknown, vec!["bogus".to_string()]);
        let (b, _) = EvtTypeSet::from_names(["openat", "execve"]);
        assert_eq!(a.intersect(b).names(), Some(vec!["openat"]));
        assert_eq!(a.union(b).names(), Some(vec!["execve", "open", "openat"]));
        assert!(a.intersect(EvtTypeSet::Any) == a);
        assert!(a.union(EvtTypeSet::Any).is_any());
        assert!(a.contains(EvtType::from_name("open")));
        assert!(!a.contains(EvtType::UNKNOWN));
        assert!(EvtTypeSet::Any.contains(EvtType::UNKNOWN));
        assert!(EvtTypeSet::NONE.is_empty());
        assert_eq!(EvtType::from_name("execve").name(), Some("execve"));
    }
}
