//! Kernel struct offsets from BTF, for the eBPF programs' `OFFSETS` global.

use saker_btf::{resolve_all, Btf};
use saker_common::{Offsets, REGS_WINDOW};

use super::SensorError;

/// The fields the programs read, as (struct, dotted member path). Order matters: it is the
/// order of the `Offsets` fields filled below.
const REQUIRED: [(&str, &str); 25] = [
    ("task_struct", "pid"),
    ("task_struct", "tgid"),
    ("task_struct", "real_parent"),
    ("task_struct", "mm"),
    ("task_struct", "loginuid"),
    ("task_struct", "nsproxy"),
    ("task_struct", "exit_code"),
    ("nsproxy", "mnt_ns"),
    ("nsproxy", "pid_ns_for_children"),
    ("mnt_namespace", "ns.inum"),
    ("pid_namespace", "ns.inum"),
    ("mm_struct", "arg_start"),
    ("mm_struct", "arg_end"),
    ("mm_struct", "exe_file"),
    ("file", "f_inode"),
    ("file", "f_path.dentry"),
    ("inode", "i_ino"),
    ("inode", "i_sb"),
    ("inode", "i_nlink"),
    ("super_block", "s_dev"),
    ("super_block", "s_magic"),
    ("dentry", "d_name.name"),
    ("linux_binprm", "filename"),
    ("ovl_inode", "vfs_inode"),
    ("ovl_inode", "__upperdentry"),
];

/// x86-64 syscall argument registers in `struct pt_regs`, in argument order, the
/// syscall number, and the thread status holding `TS_COMPAT` (the programs that get the
/// saved user registers read them).
const SYSCALL_REGS: [(&str, &str); 6] = [
    ("pt_regs", "di"),
    ("pt_regs", "si"),
    ("pt_regs", "dx"),
    ("pt_regs", "r10"),
    ("pt_regs", "orig_ax"),
    ("task_struct", "thread_info.status"),
];

/// The [`SYSCALL_REGS`] offsets and the start of the window the programs read them from,
/// or `None` when this kernel is not x86-64 (or its registers do not fit one
/// [`REGS_WINDOW`]): the file and network programs then use the syscall tracepoints.
pub fn syscall_regs(btf: &Btf) -> Option<([u32; 6], u32)> {
    let v = resolve_all(btf, &SYSCALL_REGS).ok()?;
    let regs = &v[..5];
    let base = *regs.iter().min()?;
    let fits = regs
        .iter()
        .all(|&o| (o - base) % 8 == 0 && (o - base) as usize + 8 <= REGS_WINDOW);
    fits.then_some(([v[0], v[1], v[2], v[3], v[4], v[5]], base))
}

/// Resolves every offset the programs need. A missing field fails with its name; only the
/// overlay fields are optional (overlayfs may be a module without BTF): the upper-layer
/// check is then off and reported as such. The syscall registers are optional too (see
/// [`syscall_regs`]).
pub fn from_btf(btf: &Btf) -> Result<Offsets, SensorError> {
    let regs = syscall_regs(btf);
    let (core, ovl) = REQUIRED.split_at(REQUIRED.len() - 2);
    let v = resolve_all(btf, core).map_err(SensorError::Btf)?;
    let ovl = resolve_all(btf, ovl).ok();
    Ok(Offsets {
        task_pid: v[0],
        task_tgid: v[1],
        task_real_parent: v[2],
        task_mm: v[3],
        task_loginuid: v[4],
        task_nsproxy: v[5],
        task_exit_code: v[6],
        nsproxy_mnt_ns: v[7],
        nsproxy_pid_ns: v[8],
        mnt_ns_inum: v[9],
        pid_ns_inum: v[10],
        mm_arg_start: v[11],
        mm_arg_end: v[12],
        mm_exe_file: v[13],
        file_f_inode: v[14],
        file_dentry: v[15],
        inode_i_ino: v[16],
        inode_i_sb: v[17],
        inode_i_nlink: v[18],
        sb_s_dev: v[19],
        sb_s_magic: v[20],
        dentry_name: v[21],
        binprm_filename: v[22],
        regs_arg0: regs.map_or(0, |(r, _)| r[0]),
        regs_arg1: regs.map_or(0, |(r, _)| r[1]),
        regs_arg2: regs.map_or(0, |(r, _)| r[2]),
        regs_arg3: regs.map_or(0, |(r, _)| r[3]),
        regs_nr: regs.map_or(0, |(r, _)| r[4]),
        regs_window: regs.map_or(0, |(_, base)| base),
        task_ti_status: regs.map_or(0, |(r, _)| r[5]),
        ovl_inode_vfs_inode: ovl.as_ref().map_or(0, |o| o[0]),
        ovl_inode_upperdentry: ovl.as_ref().map_or(0, |o| o[1]),
        have_ovl: u32::from(ovl.is_some()),
    })
}
