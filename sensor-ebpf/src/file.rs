//! File activity: opens that create/write/truncate, chmod family, memfd_create, unlink.
//!
//! Two ways in, same records: fexit programs on the `__x64_sys_*` functions (arguments
//! from the saved user registers and the result in one program, no map; preferred), and
//! syscall tracepoint pairs (arguments remembered at sys_enter in `PENDING`, emitted at
//! sys_exit) where fexit cannot attach. The loader picks per syscall.

use aya_ebpf::{
    helpers::bpf_probe_read_user_str_bytes,
    macros::{fexit, tracepoint},
    programs::{FExitContext, TracePointContext},
};
use saker_common::{class, flag, kind, FileEvent, PATH_LEN};

use crate::{
    kernel::{in_compat_syscall, read_syscall, SysCall},
    output::{count_drop, fill_header, wakeup_flags, wanted, EVENTS},
    syscall::{arg, remember, ret, take, Pending},
};

const AT_FDCWD: i32 = -100;
const O_WRONLY: u32 = 0o1;
const O_RDWR: u32 = 0o2;
const O_CREAT: u32 = 0o100;
const O_TRUNC: u32 = 0o1000;
/// Opens that can change a file; read-only opens are by far the most frequent and are
/// dropped here, before any map or ring-buffer work.
const WRITE_MASK: u32 = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC;

/// Read-only opens of these files are reported too (credential access). Absolute paths
/// only: the check must stay a few instructions on the hottest syscall.
const SENSITIVE: [&[u8; 11]; 3] = [b"/etc/shadow", b"/etc/gshado", b"/etc/sudoer"];

#[inline(always)]
fn is_sensitive(ptr: u64) -> bool {
    let Ok(head) = (unsafe { aya_ebpf::helpers::bpf_probe_read_user(ptr as *const [u8; 11]) })
    else {
        return false;
    };
    // Prefixes: the rules decide on the exact name (shadow, shadow-, gshadow, sudoers…).
    &head == SENSITIVE[0] || &head == SENSITIVE[1] || &head == SENSITIVE[2]
}

/// Whether an open is reported: flags first (no memory read), the path only for read-only
/// opens.
#[inline(always)]
fn open_reported(ptr: u64, flags: u32) -> bool {
    flags & WRITE_MASK != 0 || is_sensitive(ptr)
}

#[inline(always)]
fn remember_open(dfd: i32, ptr: u64, flags: u32, mode: u32) {
    if open_reported(ptr, flags) {
        remember(
            class::FILE,
            &Pending::new(kind::OPEN, dfd, ptr, flags, mode),
        );
    }
}

#[tracepoint(category = "syscalls", name = "sys_enter_openat")]
pub fn sys_enter_openat(ctx: TracePointContext) -> u32 {
    let (Some(dfd), Some(ptr), Some(flags), Some(mode)) = (
        arg::<i64>(&ctx, 0),
        arg::<u64>(&ctx, 1),
        arg::<u64>(&ctx, 2),
        arg::<u64>(&ctx, 3),
    ) else {
        return 0;
    };
    remember_open(dfd as i32, ptr, flags as u32, mode as u32);
    0
}

/// openat2(dfd, path, struct open_how *how, size): flags and mode live in user memory.
#[tracepoint(category = "syscalls", name = "sys_enter_openat2")]
pub fn sys_enter_openat2(ctx: TracePointContext) -> u32 {
    let (Some(dfd), Some(ptr), Some(how)) = (
        arg::<i64>(&ctx, 0),
        arg::<u64>(&ctx, 1),
        arg::<u64>(&ctx, 2),
    ) else {
        return 0;
    };
    let Ok(how) = (unsafe { aya_ebpf::helpers::bpf_probe_read_user(how as *const [u64; 2]) })
    else {
        return 0;
    };
    remember_open(dfd as i32, ptr, how[0] as u32, how[1] as u32);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_creat")]
pub fn sys_enter_creat(ctx: TracePointContext) -> u32 {
    let (Some(ptr), Some(mode)) = (arg::<u64>(&ctx, 0), arg::<u64>(&ctx, 1)) else {
        return 0;
    };
    remember_open(AT_FDCWD, ptr, O_CREAT | O_WRONLY | O_TRUNC, mode as u32);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_chmod")]
pub fn sys_enter_chmod(ctx: TracePointContext) -> u32 {
    if let (Some(ptr), Some(mode)) = (arg::<u64>(&ctx, 0), arg::<u64>(&ctx, 1)) {
        remember(
            class::FILE,
            &Pending::new(kind::CHMOD, AT_FDCWD, ptr, 0, mode as u32),
        );
    }
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_fchmod")]
pub fn sys_enter_fchmod(ctx: TracePointContext) -> u32 {
    if let (Some(fd), Some(mode)) = (arg::<i64>(&ctx, 0), arg::<u64>(&ctx, 1)) {
        remember(
            class::FILE,
            &Pending::new(kind::CHMOD, fd as i32, 0, 0, mode as u32),
        );
    }
    0
}

#[inline(always)]
fn remember_fchmodat(ctx: &TracePointContext) {
    if let (Some(dfd), Some(ptr), Some(mode)) =
        (arg::<i64>(ctx, 0), arg::<u64>(ctx, 1), arg::<u64>(ctx, 2))
    {
        remember(
            class::FILE,
            &Pending::new(kind::CHMOD, dfd as i32, ptr, 0, mode as u32),
        );
    }
}

#[tracepoint(category = "syscalls", name = "sys_enter_fchmodat")]
pub fn sys_enter_fchmodat(ctx: TracePointContext) -> u32 {
    remember_fchmodat(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_fchmodat2")]
pub fn sys_enter_fchmodat2(ctx: TracePointContext) -> u32 {
    remember_fchmodat(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_memfd_create")]
pub fn sys_enter_memfd_create(ctx: TracePointContext) -> u32 {
    if let (Some(ptr), Some(flags)) = (arg::<u64>(&ctx, 0), arg::<u64>(&ctx, 1)) {
        remember(
            class::FILE,
            &Pending::new(kind::MEMFD_CREATE, -1, ptr, flags as u32, 0),
        );
    }
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_unlink")]
pub fn sys_enter_unlink(ctx: TracePointContext) -> u32 {
    if let Some(ptr) = arg::<u64>(&ctx, 0) {
        remember(
            class::FILE,
            &Pending::new(kind::UNLINK, AT_FDCWD, ptr, 0, 0),
        );
    }
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_unlinkat")]
pub fn sys_enter_unlinkat(ctx: TracePointContext) -> u32 {
    if let (Some(dfd), Some(ptr), Some(flags)) = (
        arg::<i64>(&ctx, 0),
        arg::<u64>(&ctx, 1),
        arg::<u64>(&ctx, 2),
    ) {
        remember(
            class::FILE,
            &Pending::new(kind::UNLINK, dfd as i32, ptr, flags as u32, 0),
        );
    }
    0
}

/// Writes one file record (the caller checked `wanted(class::FILE)`).
#[inline(always)]
fn emit(kind: u32, dfd: i32, ptr: u64, flags: u32, mode: u32, ret: i64) {
    let Some(mut entry) = EVENTS.reserve::<FileEvent>(0) else {
        count_drop(class::FILE);
        return;
    };
    let ev = entry.as_mut_ptr();
    unsafe {
        fill_header(&mut (*ev).hdr, kind);
        (*ev).ret = ret;
        (*ev).dfd = dfd;
        (*ev).flags = flags;
        (*ev).mode = mode;
        (*ev).path_len = 0;
        if ptr != 0 {
            match bpf_probe_read_user_str_bytes(ptr as *const u8, &mut (*ev).path) {
                Ok(s) => {
                    (*ev).path_len = s.len() as u32;
                    if s.len() >= PATH_LEN - 1 {
                        (*ev).hdr.flags |= flag::PATH_TRUNCATED;
                    }
                }
                Err(_) => (*ev).hdr.flags |= flag::PATH_TRUNCATED,
            }
        }
    }
    entry.submit(wakeup_flags());
}

/// Shared by every file syscall's exit tracepoint: emit what was remembered, with the result.
#[inline(always)]
fn finish(ctx: &TracePointContext) {
    let Some(p) = take() else {
        return;
    };
    if p.kind == saker_common::kind::CONNECT {
        return;
    }
    emit(p.kind, p.dfd, p.ptr, p.flags, p.mode, ret(ctx));
}

macro_rules! exit_program {
    ($fn_name:ident, $tp:literal) => {
        #[tracepoint(category = "syscalls", name = $tp)]
        pub fn $fn_name(ctx: TracePointContext) -> u32 {
            finish(&ctx);
            0
        }
    };
}

exit_program!(sys_exit_openat, "sys_exit_openat");
exit_program!(sys_exit_openat2, "sys_exit_openat2");
exit_program!(sys_exit_creat, "sys_exit_creat");
exit_program!(sys_exit_chmod, "sys_exit_chmod");
exit_program!(sys_exit_fchmod, "sys_exit_fchmod");
exit_program!(sys_exit_fchmodat, "sys_exit_fchmodat");
exit_program!(sys_exit_fchmodat2, "sys_exit_fchmodat2");
exit_program!(sys_exit_memfd_create, "sys_exit_memfd_create");
exit_program!(sys_exit_unlink, "sys_exit_unlink");
exit_program!(sys_exit_unlinkat, "sys_exit_unlinkat");

// ---- From the saved user registers and the result: shared by the fexit programs on
// `__x64_sys_*` and the raw `sys_exit` dispatcher (syscall.rs). No map, one program per
// syscall.

/// Emits unless the class is off, the task is excluded, or it is an ia32 syscall (whose
/// numbers are not the x86-64 ones: checked here, after the cheap filters).
#[inline(always)]
fn emit_wanted(kind: u32, dfd: i32, ptr: u64, flags: u32, mode: u32, ret: i64) {
    if wanted(class::FILE).is_some() && !in_compat_syscall() {
        emit(kind, dfd, ptr, flags, mode, ret);
    }
}

#[inline(always)]
pub fn on_openat(c: &SysCall, ret: i64) {
    // The hottest syscall: flags, then (read-only) the path prefix, before anything else.
    let flags = c.arg::<2>() as u32;
    let ptr = c.arg::<1>();
    if !open_reported(ptr, flags) {
        return;
    }
    let dfd = c.arg::<0>() as i32;
    let mode = c.arg::<3>() as u32;
    emit_wanted(kind::OPEN, dfd, ptr, flags, mode, ret);
}

/// openat2(dfd, path, struct open_how *how, size): flags and mode live in user memory.
#[inline(always)]
pub fn on_openat2(c: &SysCall, ret: i64) {
    let how = c.arg::<2>();
    let Ok(how) = (unsafe { aya_ebpf::helpers::bpf_probe_read_user(how as *const [u64; 2]) })
    else {
        return;
    };
    let ptr = c.arg::<1>();
    if !open_reported(ptr, how[0] as u32) {
        return;
    }
    let dfd = c.arg::<0>() as i32;
    emit_wanted(kind::OPEN, dfd, ptr, how[0] as u32, how[1] as u32, ret);
}

#[inline(always)]
pub fn on_creat(c: &SysCall, ret: i64) {
    let ptr = c.arg::<0>();
    let mode = c.arg::<1>() as u32;
    emit_wanted(
        kind::OPEN,
        AT_FDCWD,
        ptr,
        O_CREAT | O_WRONLY | O_TRUNC,
        mode,
        ret,
    );
}

#[inline(always)]
pub fn on_chmod(c: &SysCall, ret: i64) {
    let ptr = c.arg::<0>();
    let mode = c.arg::<1>() as u32;
    emit_wanted(kind::CHMOD, AT_FDCWD, ptr, 0, mode, ret);
}

#[inline(always)]
pub fn on_fchmod(c: &SysCall, ret: i64) {
    let fd = c.arg::<0>() as i32;
    let mode = c.arg::<1>() as u32;
    emit_wanted(kind::CHMOD, fd, 0, 0, mode, ret);
}

/// fchmodat and fchmodat2 (whose extra flags are not reported, as before).
#[inline(always)]
pub fn on_fchmodat(c: &SysCall, ret: i64) {
    let dfd = c.arg::<0>() as i32;
    let ptr = c.arg::<1>();
    let mode = c.arg::<2>() as u32;
    emit_wanted(kind::CHMOD, dfd, ptr, 0, mode, ret);
}

#[inline(always)]
pub fn on_memfd_create(c: &SysCall, ret: i64) {
    let ptr = c.arg::<0>();
    let flags = c.arg::<1>() as u32;
    emit_wanted(kind::MEMFD_CREATE, -1, ptr, flags, 0, ret);
}

#[inline(always)]
pub fn on_unlink(c: &SysCall, ret: i64) {
    let ptr = c.arg::<0>();
    emit_wanted(kind::UNLINK, AT_FDCWD, ptr, 0, 0, ret);
}

#[inline(always)]
pub fn on_unlinkat(c: &SysCall, ret: i64) {
    let dfd = c.arg::<0>() as i32;
    let ptr = c.arg::<1>();
    let flags = c.arg::<2>() as u32;
    emit_wanted(kind::UNLINK, dfd, ptr, flags, 0, ret);
}

/// fexit on `long __x64_sys_X(const struct pt_regs *regs)`: ctx argument 0 is the saved
/// user registers, argument 1 the syscall's result.
macro_rules! fexit_program {
    ($fn_name:ident, $func:literal, $handler:ident) => {
        #[fexit(function = $func)]
        pub fn $fn_name(ctx: FExitContext) -> i32 {
            if let Some(c) = read_syscall(ctx.arg::<*const u8>(0)) {
                $handler(&c, ctx.arg::<i64>(1));
            }
            0
        }
    };
}

fexit_program!(fexit_openat, "__x64_sys_openat", on_openat);
fexit_program!(fexit_openat2, "__x64_sys_openat2", on_openat2);
fexit_program!(fexit_creat, "__x64_sys_creat", on_creat);
fexit_program!(fexit_chmod, "__x64_sys_chmod", on_chmod);
fexit_program!(fexit_fchmod, "__x64_sys_fchmod", on_fchmod);
fexit_program!(fexit_fchmodat, "__x64_sys_fchmodat", on_fchmodat);
fexit_program!(fexit_fchmodat2, "__x64_sys_fchmodat2", on_fchmodat);
fexit_program!(
    fexit_memfd_create,
    "__x64_sys_memfd_create",
    on_memfd_create
);
fexit_program!(fexit_unlink, "__x64_sys_unlink", on_unlink);
fexit_program!(fexit_unlinkat, "__x64_sys_unlinkat", on_unlinkat);
