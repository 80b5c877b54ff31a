//! The one typed event every stage after decoding sees.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::bstr::BString;

/// A decoded sensor event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Wall-clock time, nanoseconds since the Unix epoch (from the boot-time stamp).
    pub time_ns: i64,
    /// Kernel boot-time stamp, nanoseconds.
    pub ktime_ns: u64,
    pub process: Process,
    pub body: Body,
}

/// The task an event is about (for `Fork`: the new child).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Process {
    /// Thread id.
    pub tid: u32,
    /// Process id.
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    /// Audit login uid; `None` when unset.
    pub loginuid: Option<u32>,
    /// `task->comm` (at most 15 bytes).
    pub comm: BString,
    pub cgroup_id: u64,
    pub mnt_ns: u32,
    pub pid_ns: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
// Externally tagged (`{"exec": {…}}`): binary formats (bincode captures) cannot decode
// internally tagged enums.
#[serde(rename_all = "snake_case")]
pub enum Body {
    Exec(Exec),
    Fork,
    Exit(Exit),
    File(FileOp),
    Connect(Connect),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exec {
    /// The path given to execve as the kernel resolved it (`bprm->filename`).
    pub filename: BString,
    pub args: Vec<BString>,
    pub args_truncated: bool,
    pub filename_truncated: bool,
    pub exe_dev: u32,
    pub exe_ino: u64,
    /// On an overlay filesystem (a container image or its upper layer).
    pub exe_overlay: bool,
    /// On the overlay's upper layer: written after the image was built (drift).
    pub exe_upper_layer: bool,
    /// A memfd: fileless execution.
    pub exe_memfd: bool,
    /// Killed by the sensor before its first instruction (drift prevention).
    pub prevented: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exit {
    /// Raw wait status: `(code << 8) | signal`.
    pub raw: u32,
    /// Exit code when the process exited normally.
    pub code: Option<u8>,
    /// Signal number when the process was killed.
    pub signal: Option<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Open,
    Chmod,
    MemfdCreate,
    Unlink,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileOp {
    pub op: FileKind,
    /// The path as the caller passed it (memfd_create: the memfd's name). Relative paths
    /// are relative to `dfd` (-100 = the process's working directory).
    pub path: BString,
    pub path_truncated: bool,
    pub dfd: i32,
    pub flags: u32,
    pub mode: u32,
    /// Return value: fd or 0 on success, `-errno` on failure.
    pub ret: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Connect {
    pub fd: i32,
    pub addr: IpAddr,
    pub port: u16,
    /// 0 on success, `-errno` otherwise (e.g. -111 refused, -115 in progress).
    pub ret: i64,
}

/// `dfd` value meaning "relative to the working directory".
pub const AT_FDCWD: i32 = -100;

impl Event {
    /// Falco-style event type name (`evt.type`).
    pub fn type_name(&self) -> &'static str {
        match &self.body {
            Body::Exec(_) => "execve",
            Body::Fork => "clone",
            Body::Exit(_) => "procexit",
            Body::File(f) => match f.op {
                FileKind::Open => "openat",
                FileKind::Chmod if f.path.is_empty() => "fchmod",
                FileKind::Chmod if f.dfd == AT_FDCWD => "chmod",
                FileKind::Chmod => "fchmodat",
                FileKind::MemfdCreate => "memfd_create",
                FileKind::Unlink => "unlinkat",
            },
            Body::Connect(_) => "connect",
        }
    }
}
