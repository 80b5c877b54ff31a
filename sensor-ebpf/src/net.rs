//! Network activity: connect(2) on IPv4/IPv6 sockets.
//!
//! Preferred: fexit on `__x64_sys_connect` (arguments and result in one program); fallback:
//! the sys_enter/sys_exit tracepoint pair with the address remembered in `PENDING`.

use aya_ebpf::{
    helpers::bpf_probe_read_user,
    macros::{fexit, tracepoint},
    programs::{FExitContext, TracePointContext},
};
use saker_common::{class, kind, ConnectEvent};

use crate::{
    kernel::{in_compat_syscall, read_syscall, SysCall},
    output::{count_drop, fill_header, wakeup_flags, wanted, EVENTS},
    syscall::{arg, remember, ret, take, Pending},
};

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// Copies an IPv4/IPv6 sockaddr from user memory; `None` for other families (AF_UNIX,
/// netlink, …), which are not reported, or an unreadable address.
#[inline(always)]
fn read_sockaddr(ptr: u64) -> Option<[u8; 28]> {
    let family = unsafe { bpf_probe_read_user(ptr as *const u16) }.ok()?;
    if family != AF_INET && family != AF_INET6 {
        return None;
    }
    if let Ok(sa) = unsafe { bpf_probe_read_user(ptr as *const [u8; 28]) } {
        return Some(sa);
    }
    // A sockaddr_in at the very end of a mapping: 16 bytes is all there is.
    let short = unsafe { bpf_probe_read_user(ptr as *const [u8; 16]) }.ok()?;
    let mut sa = [0u8; 28];
    sa[..16].copy_from_slice(&short);
    Some(sa)
}

/// Writes one connect record (the caller checked `wanted(class::NET)`).
#[inline(always)]
fn emit(fd: i32, sa: &[u8; 28], ret: i64) {
    let Some(mut entry) = EVENTS.reserve::<ConnectEvent>(0) else {
        count_drop(class::NET);
        return;
    };
    let ev = entry.as_mut_ptr();
    let family = u16::from_ne_bytes([sa[0], sa[1]]);
    unsafe {
        fill_header(&mut (*ev).hdr, kind::CONNECT);
        (*ev).ret = ret;
        (*ev).fd = fd;
        (*ev).family = family;
        (*ev).port = u16::from_be_bytes([sa[2], sa[3]]);
        let mut addr = [0u8; 16];
        if family == AF_INET {
            addr[..4].copy_from_slice(&sa[4..8]);
        } else {
            addr.copy_from_slice(&sa[8..24]);
        }
        (*ev).addr = addr;
    }
    entry.submit(wakeup_flags());
}

/// connect(fd, uservaddr, addrlen): the address is copied at entry (what the caller asked
/// for).
#[tracepoint(category = "syscalls", name = "sys_enter_connect")]
pub fn sys_enter_connect(ctx: TracePointContext) -> u32 {
    let (Some(fd), Some(ptr)) = (arg::<i64>(&ctx, 0), arg::<u64>(&ctx, 1)) else {
        return 0;
    };
    let Some(sa) = read_sockaddr(ptr) else {
        return 0;
    };
    let mut p = Pending::new(kind::CONNECT, fd as i32, ptr, 0, 0);
    p.sa = sa;
    remember(class::NET, &p);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_connect")]
pub fn sys_exit_connect(ctx: TracePointContext) -> u32 {
    let Some(p) = take() else {
        return 0;
    };
    if p.kind != kind::CONNECT {
        return 0;
    }
    emit(p.dfd, &p.sa, ret(&ctx));
    0
}

/// connect(2) from the saved user registers and the result (fexit or raw `sys_exit`).
/// The address is read from the caller's memory when the syscall returns (the kernel
/// copied it at entry; a thread that rewrites it meanwhile can mislead this copy, as it
/// could the tracepoint's).
#[inline(always)]
pub fn on_connect(c: &SysCall, ret: i64) {
    if wanted(class::NET).is_none() || in_compat_syscall() {
        return;
    }
    let Some(sa) = read_sockaddr(c.arg::<1>()) else {
        return;
    };
    emit(c.arg::<0>() as i32, &sa, ret);
}

#[fexit(function = "__x64_sys_connect")]
pub fn fexit_connect(ctx: FExitContext) -> i32 {
    if let Some(c) = read_syscall(ctx.arg::<*const u8>(0)) {
        on_connect(&c, ctx.arg::<i64>(1));
    }
    0
}
