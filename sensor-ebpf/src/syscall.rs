//! Syscall entry/exit pairing: arguments are remembered at sys_enter (per thread) and the
//! event is emitted at sys_exit with the result. The syscall tracepoints' records hold the
//! syscall number at offset 8 and the arguments (or the return value) from offset 16.

use aya_ebpf::{helpers::bpf_get_current_pid_tgid, programs::TracePointContext};
use saker_common::class;

use crate::output::{count_drop, wanted, PENDING};

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
