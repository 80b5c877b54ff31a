//! Syscalls, two ways.
//!
//! - One raw tracepoint program on `sys_exit` (every syscall's exit): the saved user
//!   registers still hold the arguments and the number (`orig_ax`), the result is the
//!   tracepoint's second argument, so one program reports each call with no map. Used
//!   where fexit is not permitted.
//! - Fallback: syscall tracepoint pairs; arguments are remembered at sys_enter (per thread)
//!   and the event is emitted at sys_exit with the result. Their records hold the syscall
//!   number at offset 8 and the arguments (or the return value) from offset 16.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    macros::raw_tracepoint,
    programs::{RawTracePointContext, TracePointContext},
};
use saker_common::class;

use crate::{
    file, kernel, net,
    output::{count_drop, wanted, PENDING},
};

/// x86-64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl; a stable ABI).
mod nr {
    pub const CONNECT: i64 = 42;
    pub const CREAT: i64 = 85;
    pub const UNLINK: i64 = 87;
    pub const CHMOD: i64 = 90;
    pub const FCHMOD: i64 = 91;
    pub const OPENAT: i64 = 257;
    pub const UNLINKAT: i64 = 263;
    pub const FCHMODAT: i64 = 268;
    pub const MEMFD_CREATE: i64 = 319;
    pub const OPENAT2: i64 = 437;
    pub const FCHMODAT2: i64 = 452;
}

/// raw_tp `sys_exit` args: (struct pt_regs *regs, long ret). Runs at the exit of every
/// syscall of every task, so the common case (a syscall not watched) is one register read
/// and a compare.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn raw_sys_exit(ctx: RawTracePointContext) -> i32 {
    let Some(c) = kernel::read_syscall(ctx.arg(0)) else {
        return 0;
    };
    let ret: i64 = ctx.arg(1);
    let n = c.nr();
    let watched = matches!(
        n,
        nr::CONNECT
            | nr::CREAT
            | nr::UNLINK
            | nr::CHMOD
            | nr::FCHMOD
            | nr::OPENAT
            | nr::UNLINKAT
            | nr::FCHMODAT
            | nr::MEMFD_CREATE
            | nr::OPENAT2
            | nr::FCHMODAT2
    );
    // ia32 syscalls have other numbers: the handlers check for them before emitting.
    if !watched {
        return 0;
    }
    match n {
        nr::OPENAT => file::on_openat(&c, ret),
        nr::OPENAT2 => file::on_openat2(&c, ret),
        nr::CREAT => file::on_creat(&c, ret),
        nr::CHMOD => file::on_chmod(&c, ret),
        nr::FCHMOD => file::on_fchmod(&c, ret),
        nr::FCHMODAT | nr::FCHMODAT2 => file::on_fchmodat(&c, ret),
        nr::MEMFD_CREATE => file::on_memfd_create(&c, ret),
        nr::UNLINK => file::on_unlink(&c, ret),
        nr::UNLINKAT => file::on_unlinkat(&c, ret),
        nr::CONNECT => net::on_connect(&c, ret),
        _ => {}
    }
    0
}

pub const ARG_BASE: usize = 16;
pub const RET_OFFSET: usize = 16;

/// One remembered syscall.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Pending {
    pub kind: u32,
    pub dfd: i32,
    pub flags: u32,
    pub mode: u32,
    /// User pointer to the path (or memfd name); 0 for none.
    pub ptr: u64,
    /// connect(2): the sockaddr as the caller passed it.
    pub sa: [u8; 28],
    pub _pad: u32,
}

impl Pending {
    pub const fn new(kind: u32, dfd: i32, ptr: u64, flags: u32, mode: u32) -> Self {
        Pending {
            kind,
            dfd,
            flags,
            mode,
            ptr,
            sa: [0; 28],
            _pad: 0,
        }
    }
}

/// Argument `n` of a sys_enter tracepoint record.
#[inline(always)]
pub fn arg<T>(ctx: &TracePointContext, n: usize) -> Option<T> {
    unsafe { ctx.read_at::<T>(ARG_BASE + 8 * n) }.ok()
}

#[inline(always)]
pub fn ret(ctx: &TracePointContext) -> i64 {
    unsafe { ctx.read_at::<i64>(RET_OFFSET) }.unwrap_or(0)
}

/// Remembers a syscall of class `cls` until its exit, if that class is wanted.
#[inline(always)]
pub fn remember(cls: u32, p: &Pending) {
    if wanted(cls).is_none() {
        return;
    }
    let key = bpf_get_current_pid_tgid();
    if PENDING.insert(&key, p, 0).is_err() {
        count_drop(class::PENDING);
    }
}

/// Takes back what `remember` stored for this thread (and forgets it).
#[inline(always)]
pub fn take() -> Option<Pending> {
    let key = bpf_get_current_pid_tgid();
    let p = unsafe { PENDING.get(&key) }.copied();
    if p.is_some() {
        let _ = PENDING.remove(&key);
    }
    p
}
