//! The kernel ↔ userspace ABI of the saker sensor.
//!
//! This is the only place the layouts of ring-buffer records, the config map and the
//! load-time kernel offsets are written down. Every record starts with [`Header`]; its
//! `kind` says which body follows. All types are `#[repr(C)]`, plain old data, and sized
//! so that no implicit padding is left uninitialised by the eBPF side.
#![no_std]

/// Length of `task_struct.comm`.
pub const COMM_LEN: usize = 16;
/// Bytes of a path kept per event (longer paths are cut and flagged).
pub const PATH_LEN: usize = 1024;
/// Bytes of argv kept per exec (NUL-separated, as in the process's memory).
pub const ARGS_LEN: usize = 4096;

/// Record kinds (value of `Header::kind`).
pub mod kind {
    pub const EXEC: u32 = 1;
    pub const FORK: u32 = 2;
    pub const EXIT: u32 = 3;
    pub const OPEN: u32 = 4;
    pub const CHMOD: u32 = 5;
    pub const MEMFD_CREATE: u32 = 6;
    pub const UNLINK: u32 = 7;
    pub const CONNECT: u32 = 8;
}

/// Event classes: the unit of enabling (config bitmask) and of drop counting.
pub mod class {
    pub const EXEC: u32 = 0;
    pub const LIFECYCLE: u32 = 1;
    pub const FILE: u32 = 2;
    pub const NET: u32 = 3;
    /// Not a class of records: syscall entries that could not be remembered until exit
    /// (the per-thread pending map was full), which loses that file/net event.
    pub const PENDING: u32 = 4;
    pub const COUNT: u32 = 5;

    pub const ALL_MASK: u32 = (1 << EXEC) | (1 << LIFECYCLE) | (1 << FILE) | (1 << NET);

    pub const NAMES: [&str; COUNT as usize] = ["exec", "lifecycle", "file", "net", "pending"];
}

/// Bits of `Header::flags`.
pub mod flag {
    /// The executable lives on an overlayfs upper layer (written after the image).
    pub const EXE_UPPER_LAYER: u32 = 1 << 0;
    /// The executable is a memfd (fileless execution).
    pub const EXE_MEMFD: u32 = 1 << 1;
    /// argv was longer than [`super::ARGS_LEN`] and was cut.
    pub const ARGS_TRUNCATED: u32 = 1 << 2;
    /// A path was longer than [`super::PATH_LEN`] and was cut (or unreadable).
    pub const PATH_TRUNCATED: u32 = 1 << 3;
    /// The sensor killed this exec before its first instruction (drift prevention).
    pub const PREVENTED: u32 = 1 << 4;
    /// The executable is on an overlay filesystem at all (container image or upper).
    pub const EXE_OVERLAY: u32 = 1 << 5;
}

/// Common prefix of every record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub kind: u32,
    pub flags: u32,
    /// `bpf_ktime_get_boot_ns()`: nanoseconds since boot, including suspend.
    pub ktime_ns: u64,
    /// Thread id.
    pub pid: u32,
    /// Process id (thread group id).
    pub tgid: u32,
    /// Process id of the real parent.
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    /// Audit login uid (`u32::MAX` when unset).
    pub loginuid: u32,
    /// cgroup v2 id of the task (inode of its cgroup2 directory).
    pub cgroup_id: u64,
    /// Inode of the mount namespace.
    pub mnt_ns: u32,
    /// Inode of the pid namespace the task's children get.
    pub pid_ns: u32,
    pub comm: [u8; COMM_LEN],
}

/// sched_process_exec: the new image of a process.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecEvent {
    pub hdr: Header,
    /// `exe_file->f_inode->i_sb->s_dev` (kernel encoding: major << 20 | minor).
    pub exe_dev: u32,
    /// Bytes of `filename` used (without NUL).
    pub filename_len: u32,
    pub exe_ino: u64,
    /// Bytes of `args` used (NUL-separated arguments).
    pub args_len: u32,
    pub _pad: u32,
    /// The path passed to execve (as the kernel resolved it in `bprm->filename`).
    pub filename: [u8; PATH_LEN],
    pub args: [u8; ARGS_LEN],
}

/// sched_process_fork for a new process (threads are not reported). The header
/// describes the child: `pid`/`tgid` are the child's, `ppid` the forking process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ForkEvent {
    pub hdr: Header,
}

/// sched_process_exit of a thread-group leader.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ExitEvent {
    pub hdr: Header,
    /// `task->exit_code`: (status << 8) | signal, as wait(2) encodes it.
    pub exit_code: u32,
    pub _pad: u32,
}

/// A file syscall: open that creates/writes/truncates, chmod family, memfd_create, unlink.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FileEvent {
    pub hdr: Header,
    /// Syscall return value (fd or 0 on success, -errno on failure).
    pub ret: i64,
    /// Directory fd the path is relative to (`AT_FDCWD` = -100), or the fd for fchmod.
    pub dfd: i32,
    /// open flags / memfd flags / unlinkat flags.
    pub flags: u32,
    /// Mode argument (open with O_CREAT, chmod).
    pub mode: u32,
    /// Bytes of `path` used. 0 for fchmod (path comes from the fd).
    pub path_len: u32,
    /// Path as passed by the caller (for memfd_create: the memfd name).
    pub path: [u8; PATH_LEN],
}

/// connect(2) on an IPv4 or IPv6 socket.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnectEvent {
    pub hdr: Header,
    pub ret: i64,
    pub fd: i32,
    /// AF_INET (2) or AF_INET6 (10).
    pub family: u16,
    /// Destination port, host byte order.
    pub port: u16,
    /// IPv4 in the first 4 bytes, or the 16-byte IPv6 address (network order).
    pub addr: [u8; 16],
}

/// Runtime configuration, index 0 of the `CONFIG` array map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Bitmask of enabled classes (`1 << class::X`).
    pub enabled: u32,
    /// Events of this process are not reported (the daemon itself). 0 = none.
    pub self_tgid: u32,
    /// Non-zero: kill execs from an overlay upper layer in containers (drift prevention),
    /// unless the task's cgroup id is in `PREVENT_ALLOW`.
    pub prevent_drift: u32,
    /// Mount namespace inode of the host (init); tasks elsewhere count as in a container.
    pub host_mnt_ns: u32,
    /// Non-zero: report only tasks in this cgroup v2 id (scoping a node to one workload,
    /// and exact accounting in tests). 0 = every cgroup.
    pub cgroup_filter: u64,
}

/// Byte offsets of kernel struct fields, computed from BTF at load time and written into
/// the eBPF object's `OFFSETS` global before load. A zero offset is only valid where the
/// field really is at 0 (the loader fails on missing fields).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offsets {
    pub task_pid: u32,
    pub task_tgid: u32,
    pub task_real_parent: u32,
    pub task_mm: u32,
    pub task_loginuid: u32,
    pub task_nsproxy: u32,
    pub task_exit_code: u32,
    pub nsproxy_mnt_ns: u32,
    pub nsproxy_pid_ns: u32,
    pub mnt_ns_inum: u32,
    pub pid_ns_inum: u32,
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    pub mm_exe_file: u32,
    pub file_f_inode: u32,
    pub file_dentry: u32,
    pub inode_i_ino: u32,
    pub inode_i_sb: u32,
    pub inode_i_nlink: u32,
    pub sb_s_dev: u32,
    pub sb_s_magic: u32,
    pub dentry_name: u32,
    pub ovl_inode_vfs_inode: u32,
    pub ovl_inode_upperdentry: u32,
    pub binprm_filename: u32,
    /// 1 when `ovl_inode` was found in BTF (the upper-layer check is possible).
    pub have_ovl: u32,
    /// `struct pt_regs` members holding syscall arguments 0..=3 (x86-64: di, si, dx, r10)
    /// and the syscall number (orig_ax), for the programs that get the saved user
    /// registers (fexit on `__x64_sys_*`, raw tracepoint `sys_exit`).
    pub regs_arg0: u32,
    pub regs_arg1: u32,
    pub regs_arg2: u32,
    pub regs_arg3: u32,
    pub regs_nr: u32,
    /// Start of the [`REGS_WINDOW`]-byte span of `struct pt_regs` that holds all of the
    /// above (read with one helper call per syscall).
    pub regs_window: u32,
    /// `task_struct.thread_info.status` (x86: `TS_COMPAT` marks a 32-bit syscall, whose
    /// numbers differ).
    pub task_ti_status: u32,
}

/// Bytes of `struct pt_regs` read per syscall: x86-64's r10..orig_ax.
pub const REGS_WINDOW: usize = 72;

/// Name of the offsets global in the eBPF object.
pub const OFFSETS_GLOBAL: &str = "OFFSETS";

/// Map names, shared by both sides.
pub mod maps {
    pub const EVENTS: &str = "EVENTS";
    pub const CONFIG: &str = "CONFIG";
    pub const DROPS: &str = "DROPS";
    pub const PENDING: &str = "PENDING";
    pub const PREVENT_ALLOW: &str = "PREVENT_ALLOW";
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all types are #[repr(C)], Copy, contain only integers/arrays of integers,
    // and have no padding that is not an explicit field.
    unsafe impl aya::Pod for Config {}
    unsafe impl aya::Pod for Offsets {}
}

/// Size checks: the decoder relies on these exact layouts.
const _: () = {
    assert!(core::mem::size_of::<Header>() == 72);
    assert!(core::mem::size_of::<ExecEvent>() == 72 + 24 + PATH_LEN + ARGS_LEN);
    assert!(core::mem::size_of::<ForkEvent>() == 72);
    assert!(core::mem::size_of::<ExitEvent>() == 80);
    assert!(core::mem::size_of::<FileEvent>() == 72 + 24 + PATH_LEN);
    assert!(core::mem::size_of::<ConnectEvent>() == 72 + 32);
};
