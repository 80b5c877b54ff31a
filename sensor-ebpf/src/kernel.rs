//! Reading kernel structs at offsets the loader computed from BTF.

use aya_ebpf::helpers::{bpf_get_current_task, bpf_probe_read_kernel};
use saker_common::{Offsets, REGS_WINDOW};

/// Written by the loader before load (`EbpfLoader::set_global`); read-only afterwards, so
/// the verifier sees the values as constants.
#[unsafe(no_mangle)]
static OFFSETS: Offsets = Offsets {
    task_pid: 0,
    task_tgid: 0,
    task_real_parent: 0,
    task_mm: 0,
    task_loginuid: 0,
    task_nsproxy: 0,
    task_exit_code: 0,
    nsproxy_mnt_ns: 0,
    nsproxy_pid_ns: 0,
    mnt_ns_inum: 0,
    pid_ns_inum: 0,
    mm_arg_start: 0,
    mm_arg_end: 0,
    mm_exe_file: 0,
    file_f_inode: 0,
    file_dentry: 0,
    inode_i_ino: 0,
    inode_i_sb: 0,
    inode_i_nlink: 0,
    sb_s_dev: 0,
    sb_s_magic: 0,
    dentry_name: 0,
    ovl_inode_vfs_inode: 0,
    ovl_inode_upperdentry: 0,
    binprm_filename: 0,
    have_ovl: 0,
    regs_arg0: 0,
    regs_arg1: 0,
    regs_arg2: 0,
    regs_arg3: 0,
    regs_nr: 0,
    regs_window: 0,
    task_ti_status: 0,
};

/// One offset, read through a volatile load so the compiler cannot fold the zeros above.
macro_rules! off {
    ($f:ident) => {
        unsafe { core::ptr::read_volatile(core::ptr::addr_of!(OFFSETS.$f)) as usize }
    };
}

const OVERLAYFS_SUPER_MAGIC: u64 = 0x794c_7630;

#[inline(always)]
pub fn current_task() -> *const u8 {
    unsafe { bpf_get_current_task() as *const u8 }
}

/// Reads a `T` at `base + off`; 0-valued on fault or NULL base.
#[inline(always)]
fn read<T: Default>(base: *const u8, off: usize) -> T {
    if base.is_null() {
        return T::default();
    }
    unsafe { bpf_probe_read_kernel(base.wrapping_add(off) as *const T) }.unwrap_or_default()
}

#[inline(always)]
fn read_ptr(base: *const u8, off: usize) -> *const u8 {
    read::<u64>(base, off) as *const u8
}

#[inline(always)]
pub fn task_pid(task: *const u8) -> u32 {
    read::<u32>(task, off!(task_pid))
}

#[inline(always)]
pub fn task_tgid(task: *const u8) -> u32 {
    read::<u32>(task, off!(task_tgid))
}

#[inline(always)]
pub fn task_ppid(task: *const u8) -> u32 {
    task_tgid(read_ptr(task, off!(task_real_parent)))
}

#[inline(always)]
pub fn task_loginuid(task: *const u8) -> u32 {
    read::<u32>(task, off!(task_loginuid))
}

#[inline(always)]
pub fn task_exit_code(task: *const u8) -> u32 {
    read::<u32>(task, off!(task_exit_code))
}

/// (mount ns inode, pid ns inode); zeros once the task has dropped its namespaces (exit).
#[inline(always)]
pub fn task_namespaces(task: *const u8) -> (u32, u32) {
    let nsproxy = read_ptr(task, off!(task_nsproxy));
    if nsproxy.is_null() {
        return (0, 0);
    }
    let mnt = read_ptr(nsproxy, off!(nsproxy_mnt_ns));
    let pid = read_ptr(nsproxy, off!(nsproxy_pid_ns));
    (
        read::<u32>(mnt, off!(mnt_ns_inum)),
        read::<u32>(pid, off!(pid_ns_inum)),
    )
}

#[inline(always)]
pub fn task_mm(task: *const u8) -> *const u8 {
    read_ptr(task, off!(task_mm))
}

/// (arg_start, arg_end) of an mm.
#[inline(always)]
pub fn mm_args(mm: *const u8) -> (u64, u64) {
    (
        read::<u64>(mm, off!(mm_arg_start)),
        read::<u64>(mm, off!(mm_arg_end)),
    )
}

/// A syscall's number and arguments 0..=3, from its saved user registers.
pub struct SysCall {
    window: [u64; REGS_WINDOW / 8],
}

impl SysCall {
    #[inline(always)]
    fn word(&self, off: usize) -> u64 {
        // The loader checked that every register lies 8-aligned inside the window; the
        // offsets are constants to the verifier, so this folds to one stack load.
        let i = off.wrapping_sub(off!(regs_window)) / 8;
        self.window.get(i).copied().unwrap_or(0)
    }

    #[inline(always)]
    pub fn nr(&self) -> i64 {
        self.word(off!(regs_nr)) as i64
    }

    #[inline(always)]
    pub fn arg<const N: usize>(&self) -> u64 {
        self.word(match N {
            0 => off!(regs_arg0),
            1 => off!(regs_arg1),
            2 => off!(regs_arg2),
            _ => off!(regs_arg3),
        })
    }
}

/// Reads the registers a syscall program needs with one helper call (this runs at every
/// syscall's exit).
#[inline(always)]
pub fn read_syscall(regs: *const u8) -> Option<SysCall> {
    if regs.is_null() {
        return None;
    }
    let base = off!(regs_window);
    let window =
        unsafe { bpf_probe_read_kernel(regs.wrapping_add(base) as *const [u64; REGS_WINDOW / 8]) }
            .ok()?;
    Some(SysCall { window })
}

const TS_COMPAT: u32 = 0x0002;

/// Whether the current task is in a 32-bit (ia32) syscall, whose numbers are not the
/// x86-64 ones.
#[inline(always)]
pub fn in_compat_syscall() -> bool {
    read::<u32>(current_task(), off!(task_ti_status)) & TS_COMPAT != 0
}

#[inline(always)]
pub fn binprm_filename(bprm: *const u8) -> *const u8 {
    read_ptr(bprm, off!(binprm_filename))
}

/// What the sensor learns about an executable file.
#[derive(Default)]
pub struct ExeInfo {
    pub dev: u32,
    pub ino: u64,
    pub overlay: bool,
    pub upper_layer: bool,
    pub memfd: bool,
}

#[inline(always)]
pub fn exe_info(mm: *const u8) -> ExeInfo {
    let mut info = ExeInfo::default();
    let file = read_ptr(mm, off!(mm_exe_file));
    if file.is_null() {
        return info;
    }
    let inode = read_ptr(file, off!(file_f_inode));
    if inode.is_null() {
        return info;
    }
    info.ino = read::<u64>(inode, off!(inode_i_ino));
    let sb = read_ptr(inode, off!(inode_i_sb));
    info.dev = read::<u32>(sb, off!(sb_s_dev));
    let magic = read::<u64>(sb, off!(sb_s_magic));
    if magic == OVERLAYFS_SUPER_MAGIC {
        info.overlay = true;
        if off!(have_ovl) != 0 {
            // The vfs inode is embedded in `struct ovl_inode`: step back to its start,
            // then a non-NULL upper dentry means the file exists on the upper layer.
            let ovl = inode.wrapping_sub(off!(ovl_inode_vfs_inode));
            info.upper_layer = !read_ptr(ovl, off!(ovl_inode_upperdentry)).is_null();
        }
    }
    // memfd files are unlinked shmem files whose dentry is named "memfd:<name>"; both
    // checks together keep a regular file that is merely called "memfd:x" out.
    let nlink = read::<u32>(inode, off!(inode_i_nlink));
    if nlink == 0 {
        let dentry = read_ptr(file, off!(file_dentry));
        let name = read_ptr(dentry, off!(dentry_name));
        let prefix = read::<[u8; 6]>(name, 0);
        info.memfd = &prefix == b"memfd:";
    }
    info
}
